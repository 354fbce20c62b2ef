"""Type stubs of the Rust extension module ``condlock._condlock``.

Kept in step with ``bindings-python/src`` by ``tests/python/test_stubs.py``.
"""

from asyncio import AbstractEventLoop
from datetime import datetime
from typing import Any, Callable, Optional, Sequence, Tuple, final

__version__: str
EXIT_RELEASE_TIMEOUT: float

_Callback = Callable[[bool, Any], None]

@final
class LockInfo:
    """A lock holder's LockInfo (Terraform's lock body) plus the object's ETag.
    Fields are ``None`` only for an unreadable lock body (then ``error`` says why)."""

    @property
    def id(self) -> Optional[str]:
        """Lock ID (what ``force_unlock`` takes)."""
    @property
    def operation(self) -> Optional[str]:
        """``Operation`` (Terraform: ``OperationTypeApply``...)."""
    @property
    def info(self) -> Optional[str]:
        """``Info``: free text left by the holder."""
    @property
    def who(self) -> Optional[str]:
        """``Who``: ``user@hostname``."""
    @property
    def version(self) -> Optional[str]:
        """``Version`` of the tool that wrote the lock."""
    @property
    def created(self) -> Optional[str]:
        """``Created``: RFC 3339 UTC timestamp, exactly as written."""
    @property
    def created_at(self) -> Optional[datetime]:
        """``Created`` as a timezone-aware UTC ``datetime`` (microseconds), or
        ``None`` when the holder wrote no readable time."""
    @property
    def age(self) -> Optional[float]:
        """Seconds since ``Created``, on this machine's clock, now (negative
        when the holder's clock is ahead), or ``None`` without a readable time."""
    @property
    def path(self) -> Optional[str]:
        """``Path``: ``<bucket>/<state key>``."""
    @property
    def etag(self) -> str:
        """The lock object's ETag (quotes included)."""
    @property
    def last_modified(self) -> Optional[str]:
        """The lock object's ``Last-Modified`` header, when known."""
    @property
    def error(self) -> Optional[str]:
        """Why the lock body could not be read, or ``None``."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class WaitEvent:
    """One wait of an acquisition, as ``on_wait`` callbacks receive it (from
    the core's progress notices). ``str(event)`` is ``message``."""

    @property
    def holder(self) -> Any:
        """Who holds the lock: a ``LockInfo`` (S3), a ``MutexTag`` or a
        ``BlueprintLockStatus`` (Apstra), or ``None``."""
    @property
    def waited(self) -> float:
        """Seconds this acquisition has waited so far."""
    @property
    def next_try_in(self) -> float:
        """Seconds until the next attempt."""
    @property
    def new_holder(self) -> bool:
        """True the first time this acquisition sees this holder."""
    @property
    def message(self) -> str:
        """The core's one-line description of this wait."""

def released_unattended(target: str, id: str, signal: Optional[str] = None) -> str:
    """The core's warning for a lock released without the program asking:
    ``signal=None`` at exit, else on that signal (``"SIGTERM"``)."""

@final
class Operation:
    """An operation started for asyncio."""

    def cancel(self) -> None:
        """Ask the operation to stop (idempotent)."""
    @property
    def cancelled(self) -> bool:
        """True once ``cancel()`` was called."""

@final
class HeldLockCore:
    """The Rust side of ``condlock.HeldLock``."""

    def release(self, timeout: Optional[float] = None) -> bool:
        """Release within ``timeout`` seconds (default 30); True when this call
        deleted the lock. Raises ``LockLost`` for a lost leased lock."""
    def release_async(
        self, event_loop: AbstractEventLoop, callback: _Callback, timeout: Optional[float] = None
    ) -> Operation:
        """Start a release for asyncio."""
    def watch_lost(self, callback: Callable[[Any], Any]) -> None:
        """Call ``callback(reason)`` once if the leased lock is lost."""
    @property
    def lost(self) -> Optional[Any]:
        """Why the lock was lost (``condlock.LostReason``): a leased lock as soon as it is lost, any lock when its release found it gone or replaced; else ``None``."""
    @property
    def lease(self) -> Optional[float]:
        """The lease duration in seconds, or ``None``."""
    @property
    def fencing_token(self) -> Tuple[int, str]:
        """``(generation, current ETag)``."""
    @property
    def generation(self) -> int:
        """Fencing generation (0 without a lease)."""
    @property
    def lock_id(self) -> str:
        """Our lock ID."""
    @property
    def etag(self) -> str:
        """Our lock object's ETag."""
    @property
    def info(self) -> LockInfo:
        """The lock body we wrote."""
    @property
    def released(self) -> bool:
        """True once released."""
    @property
    def url(self) -> str:
        """``s3://bucket/lock key``."""

@final
class S3LockCore:
    """The Rust side of ``condlock.S3Lock``."""

    def __init__(
        self,
        bucket: str,
        key: str,
        *,
        region: Optional[str] = None,
        endpoint: Optional[str] = None,
        access_key_id: Optional[str] = None,
        secret_access_key: Optional[str] = None,
        session_token: Optional[str] = None,
        credentials_provider: Any = None,
        workspace: Optional[str] = None,
        workspace_key_prefix: Optional[str] = None,
        sse_customer_key: Optional[str] = None,
        kms_key_id: Optional[str] = None,
        encrypt: bool = False,
        acl: Optional[str] = None,
        tags: Optional[Sequence[Tuple[str, str]]] = None,
        checksum: bool = True,
        path_style: Optional[bool] = None,
        operation: Optional[str] = None,
        info: Optional[str] = None,
        who: Optional[str] = None,
        transport: Optional[Callable[..., Any]] = None,
        async_transport: Optional[Callable[..., Any]] = None,
        verify_conditional_writes: Optional[str] = None,
        request_timeout: Optional[float] = None,
        connect_timeout: Optional[float] = None,
        verify_tls: bool = True,
        ca_bundle_pem: Optional[bytes] = None,
        max_poll_interval: Optional[float] = None,
        lease: Optional[float] = None,
        takeover: bool = False,
        stale_after: Optional[float] = None,
        dynamodb_table: Optional[str] = None,
        dynamodb_endpoint: Optional[str] = None,
        use_lockfile: Optional[bool] = None,
    ) -> None: ...
    def acquire(
        self,
        blocking: bool = True,
        timeout: Optional[float] = None,
        on_wait: Optional[Callable[[WaitEvent], Any]] = None,
    ) -> HeldLockCore:
        """Acquire (blocking, GIL released, Ctrl-C cancels); ``on_wait`` at
        each wait, from a worker thread."""
    def acquire_async(
        self,
        event_loop: AbstractEventLoop,
        callback: _Callback,
        blocking: bool = True,
        timeout: Optional[float] = None,
        on_wait: Optional[Callable[[WaitEvent], Any]] = None,
    ) -> Operation:
        """Start an acquisition for asyncio."""
    def holder(self) -> Optional[LockInfo]:
        """The current holder, or ``None``."""
    def not_reentrant(self) -> Exception:
        """The error (not raised) for an acquisition by the holding thread or task."""
    def holder_async(self, event_loop: AbstractEventLoop, callback: _Callback) -> Operation:
        """Start reading the holder for asyncio."""
    def force_unlock(self, lock_id: str) -> bool:
        """Remove the lock with this ID; True when deleted."""
    def force_unlock_async(
        self, event_loop: AbstractEventLoop, callback: _Callback, lock_id: str
    ) -> Operation:
        """Start a force-unlock for asyncio."""
    @property
    def bucket(self) -> str:
        """The bucket."""
    @property
    def key(self) -> str:
        """The state key after workspace expansion."""
    @property
    def lock_key(self) -> str:
        """The lock object's key."""
    @property
    def region(self) -> str:
        """The signing region: explicit, else AWS_REGION / AWS_DEFAULT_REGION,
        else the AWS profile's region, else us-east-1 (logged)."""
    @property
    def endpoint(self) -> str:
        """The endpoint."""
    @property
    def who(self) -> str:
        """``Who`` written into our locks."""
    @property
    def url(self) -> str:
        """``s3://bucket/lock key``."""
    @property
    def lease(self) -> Optional[float]:
        """Lease duration of our locks in seconds, or ``None``."""
    @property
    def takeover(self) -> bool:
        """Whether acquisitions take over expired leases."""
    @property
    def stale_after(self) -> Optional[float]:
        """Age after which a lock without a lease is taken over, or ``None``."""

# --- Apstra blueprint mutex ----------------------------------------------------

@final
class MutexTag:
    """A blueprint mutex tag in Apstra's design catalog: who holds the mutex."""

    @property
    def id(self) -> str:
        """The tag ID (what ``force_unlock_tag`` takes)."""
    @property
    def blueprint_id(self) -> str:
        """The locked blueprint's ID."""
    @property
    def label(self) -> str:
        """``blueprint <ID> locked``."""
    @property
    def description(self) -> str:
        """The description as stored: the holder's message (and condlock's token)."""
    @property
    def message(self) -> str:
        """The description without condlock's holder token."""
    @property
    def token(self) -> Optional[str]:
        """condlock's holder token, or ``None`` for a tag condlock did not create."""
    @property
    def created_at(self) -> Optional[str]:
        """``created_at`` as the server sent it."""
    @property
    def age(self) -> Optional[float]:
        """Seconds since ``created_at`` when the tag was read, or ``None``."""
    @property
    def carries_condlock_token(self) -> bool:
        """True when a condlock client created this tag."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class BlueprintLockStatus:
    """Apstra's own blueprint lock (web UI), when it keeps a mutex from being taken."""

    @property
    def lock_status(self) -> str:
        """``unlocked``, ``locked``, ``locked_by_admin``..."""
    @property
    def lock_type(self) -> str:
        """The lock type."""
    @property
    def username(self) -> str:
        """Who holds it."""
    @property
    def first_name(self) -> str:
        """The holder's first name."""
    @property
    def last_name(self) -> str:
        """The holder's last name."""
    @property
    def user_id(self) -> str:
        """The holder's user ID."""
    @property
    def possible_override(self) -> bool:
        """Whether the lock may be overridden."""

@final
class ApstraClientCore:
    """The Rust side of ``condlock.ApstraClient``."""

    def __init__(
        self,
        *,
        url: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        verify_tls: Optional[bool] = None,
        ca_bundle_pem: Optional[bytes] = None,
        request_timeout: Optional[float] = None,
        transport: Optional[Callable[..., Any]] = None,
        async_transport: Optional[Callable[..., Any]] = None,
    ) -> None: ...
    def list_mutexes(self) -> list[MutexTag]:
        """Every blueprint mutex on the server."""
    def list_mutexes_async(self, event_loop: AbstractEventLoop, callback: _Callback) -> Operation:
        """Start listing for asyncio."""
    def stale_mutexes(self, older_than: float) -> list[MutexTag]:
        """The mutexes older than ``older_than`` seconds."""
    def stale_mutexes_async(
        self, event_loop: AbstractEventLoop, callback: _Callback, older_than: float
    ) -> Operation:
        """Start the stale listing for asyncio."""
    def force_unlock_tag(self, tag_id: str) -> Optional[MutexTag]:
        """Delete the mutex tag with this ID; the tag deleted or ``None``."""
    def force_unlock_tag_async(
        self, event_loop: AbstractEventLoop, callback: _Callback, tag_id: str
    ) -> Operation:
        """Start a force-unlock by tag ID for asyncio."""
    def force_unlock_blueprint(self, blueprint_id: str) -> Optional[MutexTag]:
        """Delete the mutex of this blueprint; the tag deleted or ``None``."""
    def force_unlock_blueprint_async(
        self, event_loop: AbstractEventLoop, callback: _Callback, blueprint_id: str
    ) -> Operation:
        """Start a force-unlock by blueprint for asyncio."""
    @property
    def url(self) -> str:
        """The server's base URL (never with credentials)."""
    @property
    def username(self) -> str:
        """The user we log in as."""

@final
class HeldMutexCore:
    """The Rust side of ``condlock.HeldMutex``."""

    def release(self) -> bool:
        """Release; True when this call deleted our tag."""
    def release_async(self, event_loop: AbstractEventLoop, callback: _Callback) -> Operation:
        """Start a release for asyncio."""
    @property
    def tag_id(self) -> str:
        """Our tag's ID."""
    @property
    def blueprint_id(self) -> str:
        """The blueprint ID."""
    @property
    def label(self) -> str:
        """``blueprint <ID> locked``."""
    @property
    def description(self) -> str:
        """The description we wrote."""
    @property
    def token(self) -> str:
        """Our holder token."""
    @property
    def recovered(self) -> bool:
        """True when our tag was recognised by its token after a lost response."""
    @property
    def released(self) -> bool:
        """True once released."""
    @property
    def target(self) -> str:
        """The mutex and the server, as in messages."""

@final
class ApstraMutexCore:
    """The Rust side of ``condlock.ApstraMutex``."""

    def __init__(
        self,
        blueprint_id: str,
        *,
        url: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        message: Optional[str] = None,
        verify_tls: Optional[bool] = None,
        ca_bundle_pem: Optional[bytes] = None,
        request_timeout: Optional[float] = None,
        wait_for_blueprint_unlock: bool = True,
        max_poll_interval: Optional[float] = None,
        client: Optional[ApstraClientCore] = None,
        transport: Optional[Callable[..., Any]] = None,
        async_transport: Optional[Callable[..., Any]] = None,
    ) -> None: ...
    def acquire(
        self,
        blocking: bool = True,
        timeout: Optional[float] = None,
        on_wait: Optional[Callable[[WaitEvent], Any]] = None,
    ) -> HeldMutexCore:
        """Acquire (blocking, GIL released, Ctrl-C cancels); ``on_wait`` at
        each wait, from a worker thread."""
    def acquire_async(
        self,
        event_loop: AbstractEventLoop,
        callback: _Callback,
        blocking: bool = True,
        timeout: Optional[float] = None,
        on_wait: Optional[Callable[[WaitEvent], Any]] = None,
    ) -> Operation:
        """Start an acquisition for asyncio."""
    def holder(self) -> Optional[MutexTag]:
        """The current mutex tag, or ``None``."""
    def not_reentrant(self) -> Exception:
        """The error (not raised) for an acquisition by the holding thread or task."""
    def holder_async(self, event_loop: AbstractEventLoop, callback: _Callback) -> Operation:
        """Start reading the holder for asyncio."""
    def force_unlock(self) -> Optional[MutexTag]:
        """Delete this blueprint's mutex; the tag deleted or ``None``."""
    def force_unlock_async(self, event_loop: AbstractEventLoop, callback: _Callback) -> Operation:
        """Start a force-unlock for asyncio."""
    @property
    def client(self) -> ApstraClientCore:
        """The client this mutex uses."""
    @property
    def blueprint_id(self) -> str:
        """The blueprint ID."""
    @property
    def label(self) -> str:
        """``blueprint <ID> locked``."""
    @property
    def message(self) -> str:
        """The holder message template."""
    @property
    def url(self) -> str:
        """The server's base URL."""
    @property
    def username(self) -> str:
        """The user we log in as."""
    @property
    def target(self) -> str:
        """The mutex and the server, as in messages."""

def run_cli(argv: list[str]) -> int:
    """Run the ``condlock`` command line (``argv[0]`` is the program name) and
    return its exit status (see ``condlock --help``)."""
    ...
