"""Type stubs of the Rust extension module ``condlock._condlock``.

Kept in step with ``bindings-python/src`` by ``tests/python/test_stubs.py``.
"""

from asyncio import AbstractEventLoop
from typing import Any, Callable, Optional, Sequence, Tuple, final

__version__: str

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
        """``Created``: RFC 3339 UTC timestamp."""
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
class Operation:
    """An operation started for asyncio."""

    def cancel(self) -> None:
        """Ask the operation to stop (idempotent)."""
    @property
    def cancelled(self) -> bool:
        """True once ``cancel()`` was called."""

@final
class S3LeaseCore:
    """The Rust side of ``condlock.Lease``."""

    def release(self) -> bool:
        """Release; True when this call deleted the lock."""
    def release_async(self, event_loop: AbstractEventLoop, callback: _Callback) -> Operation:
        """Start a release for asyncio."""
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
    ) -> None: ...
    def acquire(self, blocking: bool = True, timeout: Optional[float] = None) -> S3LeaseCore:
        """Acquire (blocking, GIL released, Ctrl-C cancels)."""
    def acquire_async(
        self,
        event_loop: AbstractEventLoop,
        callback: _Callback,
        blocking: bool = True,
        timeout: Optional[float] = None,
    ) -> Operation:
        """Start an acquisition for asyncio."""
    def holder(self) -> Optional[LockInfo]:
        """The current holder, or ``None``."""
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
        """The signing region."""
    @property
    def endpoint(self) -> str:
        """The endpoint."""
    @property
    def who(self) -> str:
        """``Who`` written into our locks."""
    @property
    def url(self) -> str:
        """``s3://bucket/lock key``."""
