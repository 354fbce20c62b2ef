"""The S3 lock file, compatible with Terraform's S3 backend lock."""

from __future__ import annotations

import os
import threading
from typing import (
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _aio
from ._condlock import HeldLockCore, LockInfo, S3LockCore, WaitEvent
from ._errors import InvalidConfiguration, LostReason
from ._lock_base import _REGISTER
from ._lock_base import (
    EXIT_RELEASE_TIMEOUT,
    HeldBase,
    LockBase,
    callback,
    logger,
    read_pem,
    seconds,
    transports,
)

if TYPE_CHECKING:
    import asyncio

__all__ = ["S3Lock", "HeldLock", "Lease", "SyncTransport", "AsyncTransport", "EXIT_RELEASE_TIMEOUT"]


Headers = Sequence[Tuple[str, str]]
#: ``transport(method, url, headers, body) -> (status, headers, body)``.
SyncTransport = Callable[[str, str, Headers, bytes], Tuple[int, Any, bytes]]
#: ``async transport(method, url, headers, body) -> (status, headers, body)``.
AsyncTransport = Callable[[str, str, Headers, bytes], Awaitable[Tuple[int, Any, bytes]]]


class _LostSignal:
    """The lost-lock signal of one held lock: a ``threading.Event``, asyncio
    waiters and the user's ``on_lost`` callback. Fired once, from a condlock
    worker thread. Holds no reference to the held lock (no cycle keeps a
    forgotten lease renewing)."""

    __slots__ = ("event", "reason", "_on_lost", "_waiters", "_mutex")

    def __init__(self, on_lost: Optional[Callable[[LostReason], Any]]) -> None:
        self.event = threading.Event()
        self.reason: Optional[LostReason] = None
        self._on_lost = on_lost
        self._waiters: list = []
        self._mutex = threading.Lock()

    def fire(self, reason: LostReason) -> None:
        with self._mutex:
            if self.reason is not None:
                return
            self.reason = reason
            waiters, self._waiters = self._waiters, []
        self.event.set()
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, fut, reason)
            except RuntimeError:  # that event loop is closed
                pass
        if self._on_lost is not None:
            try:
                self._on_lost(reason)
            except Exception:
                logger().exception("the on_lost callback raised")

    async def wait(self) -> LostReason:
        import asyncio  # lazily: see _aio

        loop = asyncio.get_running_loop()
        fut: asyncio.Future[LostReason] = loop.create_future()
        with self._mutex:
            if self.reason is not None:
                return self.reason
            self._waiters.append((loop, fut))
        try:
            return await fut
        finally:
            with self._mutex:
                if (loop, fut) in self._waiters:
                    self._waiters.remove((loop, fut))


def _resolve(fut: "asyncio.Future[Any]", value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


class HeldLock(HeldBase):
    """An S3 lock we hold, returned by :meth:`S3Lock.acquire` (with or without
    a lease: see :attr:`lease`).

    ``release()`` gives it back; calling it again is harmless. A held lock is
    also a context manager (``with lock.acquire(timeout=5): ...``) that releases on
    exit.

    Without a lease duration (``S3Lock(lease=None)``, the default) the lock
    behaves like Terraform's: it never expires. condlock keeps a held lock
    that the program dropped without ``release()``, and releases it at
    interpreter exit with a warning (and on SIGTERM after
    :func:`condlock.release_on_sigterm`). If someone removes it meanwhile
    (``force_unlock``), :meth:`release` returns False, logs a warning and
    sets :attr:`lost` to ``"gone"``; if another holder's lock replaced it,
    :meth:`release` raises :class:`NotOwned` and :attr:`lost` is
    ``"stolen"``. With ``S3Lock(lease=seconds)`` the lock is renewed in the
    background on condlock's own threads (also while Python is busy holding
    the GIL) until released; if it is lost (``"stolen"``, ``"gone"``,
    ``"renewal_failed"``), :attr:`lost` says why, :attr:`lost_event` is set,
    :meth:`wait_lost` / :meth:`wait_lost_async` return, the lock's ``on_lost``
    callback runs, and :meth:`release` (or leaving the ``with`` block) raises
    :class:`LockLost` with that ``reason``. A forgotten leased lock stops
    renewing when garbage-collected, so it expires after its lease.
    """

    __slots__ = ("_core", "_signal")

    def __init__(
        self, core: HeldLockCore, on_lost: Optional[Callable[[LostReason], Any]] = None
    ) -> None:
        self._core = core
        self._signal = _LostSignal(on_lost)
        core.watch_lost(self._signal.fire)

    @property
    def lock_id(self) -> str:
        """Our lock ID (the ``ID`` in the lock body; what ``force_unlock`` takes)."""
        return self._core.lock_id

    @property
    def etag(self) -> str:
        """The current ETag of our lock object: changes with every new holder
        and, with a lease, with every renewal."""
        return self._core.etag

    @property
    def lease(self) -> Optional[float]:
        """The lease duration in seconds, or ``None`` (held like Terraform's
        locks: never expires, never renewed)."""
        return self._core.lease

    @property
    def generation(self) -> int:
        """Fencing generation: 1 for a freshly created leased lock, the
        previous holder's + 1 after each takeover; 0 for a lock without a
        lease. It restarts at 1 after a normal release and a fresh create."""
        return self._core.generation

    @property
    def fencing_token(self) -> Tuple[int, str]:
        """``(generation, etag)``: a resource that remembers the highest token
        it accepted can refuse a holder that was taken over. It does not
        protect a resource that cannot check it (see the README)."""
        return self._core.fencing_token

    @property
    def lost(self) -> Optional[LostReason]:
        """Why the lock was lost (a :class:`LostReason`: a ``str`` equal to
        ``"stolen"``, ``"gone"`` or ``"renewal_failed"``, with ``.kind``,
        ``.message`` and ``.holder``), or ``None`` while it is held and after
        a normal release. A leased lock reports its loss as soon as renewal
        finds it; a lock without a lease when :meth:`release` finds it
        removed (``"gone"``: release returned False) or replaced by another
        holder's lock (``"stolen"``: release raised :class:`NotOwned`)."""
        return self._core.lost

    @property
    def lost_event(self) -> threading.Event:
        """A ``threading.Event`` set when the leased lock is lost."""
        return self._signal.event

    def wait_lost(self, timeout: Optional[float] = None) -> Optional[LostReason]:
        """Block until the leased lock is lost (returns the reason) or
        ``timeout`` seconds pass (returns ``None``). Without a lease, or
        after a normal release, it only returns at the timeout."""
        seconds("timeout", timeout)
        if self._signal.event.wait(timeout):
            return self._signal.reason or self.lost
        return self.lost

    async def wait_lost_async(self) -> LostReason:
        """Await the loss of the leased lock (never completes while it is
        held, nor for a lock without a lease). Typical use: race it against
        the work, e.g. with ``asyncio.wait(..., return_when=FIRST_COMPLETED)``."""
        reason = self.lost
        if reason is not None:
            return reason
        return await self._signal.wait()

    @property
    def info(self) -> LockInfo:
        """The lock body we wrote."""
        return self._core.info

    @property
    def released(self) -> bool:
        """True once :meth:`release` succeeded (or is in progress)."""
        return self._core.released

    @property
    def url(self) -> str:
        """``s3://bucket/lock-key``."""
        return self._core.url

    def release(self, timeout: Optional[float] = None) -> bool:
        """Release the lock: stop renewing (if leased), then one ``DELETE
        If-Match: <our ETag>``, retried on transient failures for up to
        ``timeout`` seconds (default 30), not interrupted by Ctrl-C.

        Returns True when this call deleted the lock, False when there was
        nothing left to delete: a second call, or the first one finding the
        lock removed by someone else (force-unlocked): that one logs a
        warning and sets :attr:`lost` to ``"gone"``. Raises :class:`LockLost`
        (with ``.reason``) when the leased lock was lost; :class:`NotOwned`
        when another holder's lock replaced ours (:attr:`lost` is then
        ``"stolen"`` and the lock counts as released); another
        :class:`LockError` when it cannot release now (call it again); in a
        forked child, which inherits the held lock object but not the lock,
        a :class:`LockError` without sending anything."""
        return self._core.release(seconds("timeout", timeout))

    async def release_async(self, timeout: Optional[float] = None) -> bool:
        """:meth:`release` for asyncio: never blocks the event loop. The
        release runs to completion even if the awaiting task is cancelled."""
        seconds("timeout", timeout)
        return await _aio.run(
            lambda loop, cb: self._core.release_async(loop, cb, timeout),
            wait_for_cleanup=False,
        )

    # A fresh short deadline: leaving must stay prompt (see EXIT_RELEASE_TIMEOUT).
    # A lost leased lock raises LockLost on exit unless the block already raised.
    _exit_release_args = (EXIT_RELEASE_TIMEOUT,)

    def _exit_names(self) -> Tuple[str, str]:
        return self.url, self.lock_id

    def __repr__(self) -> str:
        state = "released" if self.released else "held"
        if self.lost is not None:
            state = f"lost ({self.lost.kind})"
        return f"<condlock.HeldLock {self.url} id={self.lock_id} etag={self.etag} {state}>"


def _forget(lock_id: str) -> None:
    """A lock of this process that it force-unlocked itself is no longer
    held: acquiring it again is not re-entrant."""
    _REGISTER.forget(lambda held: getattr(held, "lock_id", None) == lock_id)


def _credentials_of(session: Any) -> Any:
    """A botocore credentials object from a boto3/botocore session or from
    credentials themselves (anything with ``get_frozen_credentials``)."""
    if hasattr(session, "get_frozen_credentials"):
        return session
    if hasattr(session, "get_credentials"):
        creds = session.get_credentials()
        if creds is None:
            raise InvalidConfiguration(
                "invalid boto3_session: it found no credentials; configure them "
                "(environment, profile, SSO...) or pass access_key_id/secret_access_key",
                field="boto3_session",
            )
        return creds
    raise InvalidConfiguration(
        "invalid boto3_session: expected a boto3.Session, a botocore session or "
        f"botocore credentials, got {type(session).__name__}",
        field="boto3_session",
    )


def _tags(tags: Union[Mapping[str, str], Iterable[Tuple[str, str]], None]) -> Optional[list]:
    if tags is None:
        return None
    items = tags.items() if isinstance(tags, Mapping) else tags
    try:
        return [(str(k), str(v)) for k, v in items]
    except (TypeError, ValueError):
        raise InvalidConfiguration(
            "invalid tags: expected a mapping or (key, value) pairs", field="tags"
        ) from None


class S3Lock(LockBase[HeldLock]):
    """A distributed lock on Terraform's S3 lock file ``<key>.tflock``.

    The lock is the one ``terraform apply`` takes for the same ``bucket``,
    ``key`` and ``workspace``: a ``PUT`` with ``If-None-Match: *`` of a
    LockInfo JSON body. Holding it keeps Terraform (and other condlock users)
    out; Terraform's lock blocks us.

    Three ways to hold it, all releasing what they took:

    - ``with lock:`` / ``async with lock:``, or ``@lock`` /
      ``@lock(timeout=5)`` on a function or coroutine function;
    - ``lock.acquire(timeout=5)`` ... ``lock.release()`` (the habit of
      ``threading.Lock``, filelock and redis-py): the lock object remembers
      what it holds, :meth:`locked` tells;
    - the :class:`HeldLock` returned by :meth:`acquire`, with its own
      ``release()`` and context manager.

    A distributed lock is not re-entrant: acquiring it again from the thread
    or task that holds it raises :class:`LockError` at once instead of
    waiting for itself: through this object always; through another object
    for the same lock (same endpoint, bucket and lock key) when it would
    wait forever (a bounded try, ``blocking=False`` or a timeout, is made as
    usual). Other threads and tasks wait as usual. What the process still
    holds at interpreter exit is released, with a warning; on SIGTERM only
    after :func:`condlock.release_on_sigterm`.

    Arguments (all but ``bucket`` and ``key`` keyword-only; durations are
    numbers of seconds, int or float, else :class:`TypeError`; other bad
    values raise :class:`InvalidConfiguration` naming the argument):

    Which lock:

    - ``bucket``, ``key``: the Terraform backend's ``bucket`` and ``key``
      (the state; the lock is ``<key>.tflock``, so ``key`` must not end in
      ``.tflock``).
    - ``workspace``: the Terraform workspace (``None`` or ``"default"``: the
      key as given; otherwise ``<workspace_key_prefix>/<workspace>/<key>``).
    - ``workspace_key_prefix``: Terraform's setting of that name (default
      ``"env:"``).

    Where and as whom:

    - ``region``: the signing region (default ``AWS_REGION``,
      ``AWS_DEFAULT_REGION``, then ``us-east-1``).
    - ``endpoint``: an S3-compatible endpoint URL with its scheme (default
      ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, then AWS).
    - ``path_style``: path-style addressing (``http://host/bucket/key``);
      default ``None``: path style with ``endpoint``, virtual-hosted on AWS.
    - ``access_key_id``, ``secret_access_key``, ``session_token``: static
      credentials (the first two together).
    - ``boto3_session``: a boto3/botocore session or credentials object,
      read before each request so refreshable credentials work (its
      ``region_name`` is the default region). Without either, the standard
      AWS chain (environment, profiles, SSO, web identity, container and
      instance metadata).

    The lock object written (as Terraform's backend writes it):

    - ``encrypt``: server-side encryption (AES256, or KMS with
      ``kms_key_id``), Terraform's ``encrypt``.
    - ``kms_key_id``: the KMS key (needs ``encrypt=True``).
    - ``sse_customer_key``: an SSE-C key (base64 of 32 bytes), Terraform's
      ``sse_customer_key``; never shown anywhere.
    - ``acl``: a canned ACL (``"bucket-owner-full-control"``...).
    - ``tags``: object tags, a mapping or ``(key, value)`` pairs.
    - ``checksum``: send a SHA-256 checksum with each write (default True;
      buckets with Object Lock need one).

    The lock body (Terraform's LockInfo, shown to whoever waits):

    - ``operation``: ``Operation`` (default ``"condlock"``).
    - ``info``: ``Info``, free text (default empty).
    - ``who``: ``Who`` (default ``user@hostname``, the user from the account
      database, as Terraform writes it).

    Waiting:

    - ``max_poll_interval``: the longest pause between attempts while
      someone else holds the lock (default 16 s, like Terraform; at least
      0.01 s); attempts are spaced by jittered exponential backoff from
      0.5 s.
    - ``on_wait``: a callable given a :class:`WaitEvent` at each wait of each
      acquisition (unless the acquisition passes its own). The first wait of
      an acquisition is also logged at INFO on the ``condlock`` logger
      (``acquiring s3://...: held by ...; waiting``), a new holder at INFO,
      the other waits at DEBUG.

    HTTP client:

    - ``request_timeout``, ``connect_timeout``: per request (default 30 s
      and 10 s).
    - ``verify_tls`` (default True), ``ca_bundle``: a PEM file path or PEM
      bytes of extra certificates to trust.
    - ``transport``: replaces the built-in HTTP client: a callable
      ``(method, url, headers, body) -> (status, headers, body)``, or a
      coroutine function with the same signature. ``headers`` is a list of
      ``(name, value)`` pairs; the returned headers may be a mapping or
      pairs.
    - ``verify_conditional_writes``: ``"once"`` (default: prove, per store
      and process, that the store enforces ``If-None-Match``), ``"always"``
      or ``"never"``.

    Leases (opt-in; see the README):

    - ``lease``: our lock records this duration and is renewed in the
      background every third of it (``PUT If-Match``); if renewal cannot
      continue, the held lock reports the lock lost.
    - ``on_lost``: called with the :class:`LostReason` when a leased lock is
      lost (from a condlock thread).
    - ``takeover``: let acquisitions replace a leased lock whose ETag stayed
      unchanged for its whole lease on our clock (its holder died); among
      many waiters exactly one wins, and the fencing generation goes up by
      one. Needs ``lease`` (refused without: the lock taken over must be
      able to expire in turn).
    - ``stale_after``: take over a lock WITHOUT a lease (Terraform's own)
      once unchanged this long. DANGEROUS for Terraform's locks, which are
      never renewed, so a long ``terraform apply`` would be taken over while
      it still runs; use it only when you know every holder is short-lived.

    DynamoDB (Terraform's ``dynamodb_table``):

    - ``dynamodb_table``: also take Terraform's DynamoDB lock item
      (``LockID`` = ``<bucket>/<key>``) after the lock file, giving the file
      back if the item cannot be had; releasing removes the file, then the
      item (each only if it is still ours). That excludes Terraform
      configurations locking with the table alone or with both. Leases and
      takeovers are refused with a table (:class:`InvalidConfiguration`):
      the item cannot be renewed.
    - ``dynamodb_endpoint``: where the table is served (default
      ``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_ENDPOINT_URL``, else the
      region's).
    - ``use_lockfile``: Terraform's setting: whether the lock file is
      taken. By default (``None``) it is, with or without a table (both
      locks exclude every Terraform configuration of the state, where
      Terraform itself takes only the item when ``use_lockfile`` is not
      set); ``use_lockfile=False`` with ``dynamodb_table`` takes the item
      only, as Terraform before 1.10; without a table it is
      :class:`InvalidConfiguration`.

    Leaving a ``with`` block (or a decorated call) releases with a short
    fresh deadline (:data:`EXIT_RELEASE_TIMEOUT`), and raises
    :class:`LockLost` if the leased lock was lost meanwhile (unless the
    block itself raised).
    """

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
        workspace: Optional[str] = None,
        workspace_key_prefix: str = "env:",
        sse_customer_key: Optional[str] = None,
        kms_key_id: Optional[str] = None,
        encrypt: bool = False,
        acl: Optional[str] = None,
        tags: Union[Mapping[str, str], Iterable[Tuple[str, str]], None] = None,
        checksum: bool = True,
        path_style: Optional[bool] = None,
        operation: str = "condlock",
        info: str = "",
        who: Optional[str] = None,
        boto3_session: Any = None,
        transport: Union[SyncTransport, AsyncTransport, None] = None,
        verify_conditional_writes: str = "once",
        request_timeout: Optional[float] = None,
        connect_timeout: Optional[float] = None,
        verify_tls: bool = True,
        ca_bundle: Union[str, "os.PathLike[str]", bytes, None] = None,
        max_poll_interval: Optional[float] = None,
        lease: Optional[float] = None,
        takeover: bool = False,
        stale_after: Optional[float] = None,
        on_lost: Optional[Callable[[LostReason], Any]] = None,
        dynamodb_table: Optional[str] = None,
        dynamodb_endpoint: Optional[str] = None,
        use_lockfile: Optional[bool] = None,
        on_wait: Optional[Callable[[WaitEvent], Any]] = None,
    ) -> None:
        callback("on_lost", on_lost, "taking the LostReason")
        for name, value in (
            ("request_timeout", request_timeout),
            ("connect_timeout", connect_timeout),
            ("max_poll_interval", max_poll_interval),
            ("lease", lease),
            ("stale_after", stale_after),
        ):
            seconds(name, value)
        provider = None
        if boto3_session is not None:
            provider = _credentials_of(boto3_session)
            if region is None:
                region = getattr(boto3_session, "region_name", None)
        sync_transport, async_transport = transports(transport)
        pem = read_pem(ca_bundle)
        self._core = S3LockCore(
            bucket,
            key,
            region=region,
            endpoint=endpoint,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            session_token=session_token,
            credentials_provider=provider,
            workspace=workspace,
            workspace_key_prefix=workspace_key_prefix,
            sse_customer_key=sse_customer_key,
            kms_key_id=kms_key_id,
            encrypt=encrypt,
            acl=acl,
            tags=_tags(tags),
            checksum=checksum,
            path_style=path_style,
            operation=operation,
            info=info,
            who=who,
            transport=sync_transport,
            async_transport=async_transport,
            verify_conditional_writes=verify_conditional_writes,
            request_timeout=request_timeout,
            connect_timeout=connect_timeout,
            verify_tls=verify_tls,
            ca_bundle_pem=pem,
            max_poll_interval=max_poll_interval,
            lease=lease,
            takeover=takeover,
            stale_after=stale_after,
            dynamodb_table=dynamodb_table,
            dynamodb_endpoint=dynamodb_endpoint,
            use_lockfile=use_lockfile,
        )
        self._on_lost = on_lost
        self._init_lock(on_wait)

    # -- description ---------------------------------------------------------

    @property
    def bucket(self) -> str:
        """The bucket."""
        return self._core.bucket

    @property
    def key(self) -> str:
        """The state key after workspace expansion (``env:/dev/...``)."""
        return self._core.key

    @property
    def lock_key(self) -> str:
        """The lock object's key: ``<key>.tflock``."""
        return self._core.lock_key

    @property
    def region(self) -> str:
        """The signing region: ``region=``, else ``AWS_REGION`` /
        ``AWS_DEFAULT_REGION``, else the ``region`` of the AWS profile
        (``AWS_PROFILE`` or ``default`` in ``~/.aws/config`` or
        ``AWS_CONFIG_FILE``, as boto3 reads it), else ``us-east-1`` (logged at
        INFO on the ``condlock`` logger, naming what was looked at). The
        endpoint follows the same order: ``endpoint=``,
        ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, the profile's
        ``endpoint_url`` (its ``services`` section's ``s3`` entry first)."""
        return self._core.region

    @property
    def endpoint(self) -> str:
        """The store's endpoint (never contains credentials)."""
        return self._core.endpoint

    @property
    def who(self) -> str:
        """``Who`` written into our locks (``user@hostname`` by default)."""
        return self._core.who

    @property
    def lease(self) -> Optional[float]:
        """Lease duration of our locks in seconds, or ``None`` (Terraform-style)."""
        return self._core.lease

    @property
    def takeover(self) -> bool:
        """Whether acquisitions take over leased locks that expired."""
        return self._core.takeover

    @property
    def stale_after(self) -> Optional[float]:
        """Age after which a lock WITHOUT a lease is taken over, or ``None``."""
        return self._core.stale_after

    def __repr__(self) -> str:
        return f"<condlock.S3Lock {self._core.url} endpoint={self.endpoint} region={self.region}>"

    # -- acquiring ------------------------------------------------------------

    def acquire(
        self,
        blocking: bool = True,
        timeout: Optional[float] = None,
        *,
        on_wait: Optional[Callable[[WaitEvent], Any]] = None,
    ) -> HeldLock:
        """Take the lock and return the :class:`HeldLock` (also remembered by
        this object: :meth:`release` and :meth:`locked` use it).

        ``blocking=False`` makes one attempt and raises :class:`LockHeld`
        (with ``.holder``) if someone holds it. Otherwise waits, with jittered
        backoff, up to ``timeout`` seconds (``None`` or ``-1``: forever) and
        raises :class:`LockTimeout` (a :class:`TimeoutError`) when it runs out.
        ``on_wait`` (default: the lock's) is called with a :class:`WaitEvent`
        at each wait, from a condlock thread. The GIL is released while
        waiting; Ctrl-C cancels the wait, removes any lock this call may have
        written, and raises ``KeyboardInterrupt``. Raises :class:`LockError`
        at once when this thread or task already holds the lock (it is not
        re-entrant).
        """
        return self._acquire(blocking, timeout, on_wait)

    async def acquire_async(
        self,
        blocking: bool = True,
        timeout: Optional[float] = None,
        *,
        on_wait: Optional[Callable[[WaitEvent], Any]] = None,
    ) -> HeldLock:
        """:meth:`acquire` for asyncio: never blocks the event loop
        (``on_wait`` runs on the event loop; a coroutine function becomes a
        task). Cancelling the awaiting task cancels the acquisition; any lock
        it may have written is removed before ``CancelledError`` propagates."""
        return await self._acquire_async(blocking, timeout, on_wait)

    def release(self, timeout: Optional[float] = None) -> bool:
        """Release the lock this object acquired last (see
        :meth:`HeldLock.release`: True when deleted, False when there was
        nothing to delete). False when this object holds nothing: calling
        it twice, or after a ``with`` block, is harmless."""
        return self._release(seconds("timeout", timeout))

    async def release_async(self, timeout: Optional[float] = None) -> bool:
        """:meth:`release` for asyncio."""
        return await self._release_async(seconds("timeout", timeout))

    def _acquire_core(self, blocking: bool, timeout: Optional[float], on_wait: Any) -> HeldLock:
        return HeldLock(self._core.acquire(blocking, timeout, on_wait), self._on_lost)

    async def _acquire_core_async(
        self, blocking: bool, timeout: Optional[float], on_wait: Any
    ) -> HeldLock:
        async def undo(core: HeldLockCore) -> None:
            await HeldLock(core).release_async()

        core = await _aio.run(
            lambda loop, cb: self._core.acquire_async(loop, cb, blocking, timeout, on_wait),
            undo=undo,
        )
        return HeldLock(core, self._on_lost)

    def holder(self) -> Optional[LockInfo]:
        """Who holds the lock now (``None``: free), without taking it."""
        return self._core.holder()

    async def holder_async(self) -> Optional[LockInfo]:
        """:meth:`holder` for asyncio."""
        return await _aio.run(self._core.holder_async, wait_for_cleanup=False)

    def force_unlock(self, lock_id: str) -> bool:
        """Remove the lock whose ID is ``lock_id``, like ``terraform
        force-unlock``: only if the current lock carries that ID (else
        :class:`NotOwned`), conditioned on its ETag. Returns True when a lock
        was deleted, False when there was none. Use it only when the holder is
        known to be gone."""
        removed = self._core.force_unlock(lock_id)
        _forget(lock_id)
        return removed

    async def force_unlock_async(self, lock_id: str) -> bool:
        """:meth:`force_unlock` for asyncio."""
        removed = await _aio.run(
            lambda loop, cb: self._core.force_unlock_async(loop, cb, lock_id),
            wait_for_cleanup=False,
        )
        _forget(lock_id)
        return removed

    # -- context managers (LockBase) ----------------------------------------

    _KIND = "S3Lock"

    def _target(self) -> str:
        return self._core.url

    def _identity(self) -> Tuple[str, ...]:
        return ("s3", self._core.endpoint, self._core.url)


#: Deprecated name of :class:`HeldLock` (a held lock is not always a lease).
Lease = HeldLock
