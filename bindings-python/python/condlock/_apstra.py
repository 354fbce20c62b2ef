"""The Apstra blueprint mutex, compatible with the Apstra Terraform provider."""

from __future__ import annotations

import os
from typing import Any, Callable, List, Optional, Tuple, Union

from . import _aio
from ._condlock import (
    ApstraClientCore,
    HeldMutexCore,
    ApstraMutexCore,
    BlueprintLockStatus,
    MutexTag,
    WaitEvent,
)
from ._errors import InvalidConfiguration
from ._lock_base import _REGISTER, HeldBase, LockBase, read_pem, seconds, transports

__all__ = ["ApstraClient", "ApstraMutex", "HeldMutex", "ApstraLease", "MutexTag", "BlueprintLockStatus"]


def _forget(tag: Optional[MutexTag]) -> Optional[MutexTag]:
    """A mutex of this process that it force-unlocked itself is no longer
    held: acquiring it again is not re-entrant. Returns ``tag``."""
    if tag is not None:
        tag_id = tag.id
        _REGISTER.forget(lambda held: getattr(held, "tag_id", None) == tag_id)
    return tag


class HeldMutex(HeldBase):
    """A blueprint mutex we hold, returned by :meth:`ApstraMutex.acquire`.

    ``release()`` deletes our tag; calling it again is harmless. A held mutex
    is also a context manager that releases on exit. An Apstra mutex has no
    lease and never expires: condlock keeps a held mutex that the program
    dropped without ``release()``, and releases it at interpreter exit with
    a warning (and on SIGTERM after :func:`condlock.release_on_sigterm`).
    """

    __slots__ = ("_core",)

    def __init__(self, core: HeldMutexCore) -> None:
        self._core = core

    @property
    def tag_id(self) -> str:
        """Our mutex tag's ID."""
        return self._core.tag_id

    @property
    def blueprint_id(self) -> str:
        """The locked blueprint."""
        return self._core.blueprint_id

    @property
    def label(self) -> str:
        """Our tag's label, ``blueprint <ID> locked``."""
        return self._core.label

    @property
    def description(self) -> str:
        """The description we wrote: the expanded message, then our holder token."""
        return self._core.description

    @property
    def token(self) -> str:
        """Our holder token (it ends the description; how we recognise our
        own tag after a lost response)."""
        return self._core.token

    @property
    def recovered(self) -> bool:
        """True when the create response was lost and our tag was recognised
        by its holder token."""
        return self._core.recovered

    @property
    def released(self) -> bool:
        """True once :meth:`release` succeeded (or is in progress)."""
        return self._core.released

    def release(self) -> bool:
        """Release the mutex: delete our tag by its ID, with a fresh deadline
        of its own, not interrupted by Ctrl-C.

        Returns True when this call deleted the tag, False when it had already
        been released or was already gone (someone force-unlocked it; logged
        as a warning). Raises a :class:`LockError` when it cannot, and in a
        forked child (which inherits this object, not the mutex) without
        sending anything."""
        return self._core.release()

    async def release_async(self) -> bool:
        """:meth:`release` for asyncio: never blocks the event loop. The
        release runs to completion even if the awaiting task is cancelled."""
        return await _aio.run(self._core.release_async, wait_for_cleanup=False)

    _ID_KIND = "tag"

    def _exit_names(self) -> "tuple[str, str]":
        return self._core.target, self.tag_id

    def __repr__(self) -> str:
        state = "released" if self.released else "held"
        return f"<condlock.HeldMutex {self._core.target} tag={self.tag_id} {state}>"


class ApstraClient:
    """An Apstra server and the login session its operations share, with the
    administration of blueprint mutexes: list them, report stale ones,
    force-unlock one.

    Arguments (keyword-only; bad values raise :class:`InvalidConfiguration`
    naming the argument, a duration that is not a number :class:`TypeError`):

    - ``url``: the server's base URL, with its scheme and any path prefix
      (default ``APSTRA_URL``); it may embed percent-encoded credentials
      (``https://user:p%40ss@apstra.example``).
    - ``username``, ``password``: the login (default ``APSTRA_USER``,
      ``APSTRA_PASS``). The password never appears in any repr, message or
      log record.
    - ``verify_tls``: verify the server's certificate (default True, or the
      opposite of ``APSTRA_TLS_VALIDATION_DISABLED`` when set).
    - ``ca_bundle``: a PEM file path or PEM bytes of certificates to trust
      (an appliance's self-signed certificate works as its own bundle).
    - ``request_timeout``: seconds per request (default
      ``APSTRA_API_TIMEOUT``, else 10).
    - ``transport``: replaces the built-in HTTP client, as for
      :class:`condlock.S3Lock`.
    """

    def __init__(
        self,
        *,
        url: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        verify_tls: Optional[bool] = None,
        ca_bundle: Union[str, "os.PathLike[str]", bytes, None] = None,
        request_timeout: Optional[float] = None,
        transport: Any = None,
    ) -> None:
        seconds("request_timeout", request_timeout)
        sync_t, async_t = transports(transport)
        self._core = ApstraClientCore(
            url=url,
            username=username,
            password=password,
            verify_tls=verify_tls,
            ca_bundle_pem=read_pem(ca_bundle),
            request_timeout=request_timeout,
            transport=sync_t,
            async_transport=async_t,
        )

    @classmethod
    def _wrap(cls, core: ApstraClientCore) -> "ApstraClient":
        self = cls.__new__(cls)
        self._core = core
        return self

    @property
    def url(self) -> str:
        """The server's base URL (never with credentials)."""
        return self._core.url

    @property
    def username(self) -> str:
        """The user we log in as."""
        return self._core.username

    def __repr__(self) -> str:
        return f"<condlock.ApstraClient {self.url} user={self.username!r}>"

    def mutex(self, blueprint_id: str, **options: Any) -> "ApstraMutex":
        """The mutex of ``blueprint_id`` on this server, sharing this client's
        login session. ``options`` are :class:`ApstraMutex`'s ``message``,
        ``wait_for_blueprint_unlock`` and ``max_poll_interval``."""
        return ApstraMutex(blueprint_id, client=self, **options)

    def list_mutexes(self) -> List[MutexTag]:
        """Every blueprint mutex on the server (blueprint, description, tag
        ID, creation time, age, whether condlock created it)."""
        return self._core.list_mutexes()

    async def list_mutexes_async(self) -> List[MutexTag]:
        """:meth:`list_mutexes` for asyncio."""
        return await _aio.run(self._core.list_mutexes_async, wait_for_cleanup=False)

    def stale_mutexes(self, older_than: float = 3600.0) -> List[MutexTag]:
        """The mutexes older than ``older_than`` seconds (by the server's
        ``created_at`` and our clock). A report for a human: nothing is
        deleted. A tag of unknown age is never called stale."""
        return self._core.stale_mutexes(seconds("older_than", older_than))

    async def stale_mutexes_async(self, older_than: float = 3600.0) -> List[MutexTag]:
        """:meth:`stale_mutexes` for asyncio."""
        seconds("older_than", older_than)
        return await _aio.run(
            lambda loop, cb: self._core.stale_mutexes_async(loop, cb, older_than),
            wait_for_cleanup=False,
        )

    def force_unlock_tag(self, tag_id: str) -> Optional[MutexTag]:
        """Delete the mutex tag with this ID, whoever holds it (refused with
        :class:`RequestRejected` for a tag that is not a blueprint mutex).
        Returns the tag deleted, or None when there was none. Use it only
        when the holder is known to be gone."""
        return _forget(self._core.force_unlock_tag(tag_id))

    async def force_unlock_tag_async(self, tag_id: str) -> Optional[MutexTag]:
        """:meth:`force_unlock_tag` for asyncio."""
        return _forget(
            await _aio.run(
                lambda loop, cb: self._core.force_unlock_tag_async(loop, cb, tag_id),
                wait_for_cleanup=False,
            )
        )

    def force_unlock_blueprint(self, blueprint_id: str) -> Optional[MutexTag]:
        """Delete the mutex of ``blueprint_id``, whoever holds it. Returns the
        tag deleted, or None when the blueprint was not locked."""
        return _forget(self._core.force_unlock_blueprint(blueprint_id))

    async def force_unlock_blueprint_async(self, blueprint_id: str) -> Optional[MutexTag]:
        """:meth:`force_unlock_blueprint` for asyncio."""
        return _forget(
            await _aio.run(
                lambda loop, cb: self._core.force_unlock_blueprint_async(loop, cb, blueprint_id),
                wait_for_cleanup=False,
            )
        )


class ApstraMutex(LockBase[HeldMutex]):
    """The mutex of one Apstra blueprint: the tag ``blueprint <ID> locked``
    in the global design catalog, the same one ``terraform apply`` with the
    Apstra provider takes, so scripts and Terraform exclude each other.

    Held the same three ways as :class:`S3Lock`: ``with mutex:`` /
    ``async with mutex:`` / ``@mutex`` / ``@mutex(timeout=5)``;
    ``mutex.acquire(timeout=5)`` ... ``mutex.release()`` with
    :meth:`locked`; or the :class:`HeldMutex` that :meth:`acquire` returns.
    It is not re-entrant: a second acquisition by the holding thread or task
    raises :class:`LockError` at once, through this object always, through
    another object for the same blueprint and server when it would wait
    forever. What the process still holds at interpreter exit is released
    with a warning.

    Arguments (all but ``blueprint_id`` keyword-only):

    - ``blueprint_id``: the blueprint's ID (the UUID in its address in the
      Apstra UI).
    - ``url``, ``username``, ``password``, ``verify_tls``, ``ca_bundle``,
      ``request_timeout``, ``transport``: the server, as for
      :class:`ApstraClient` (same ``APSTRA_*`` environment defaults).
    - ``client``: an :class:`ApstraClient` whose login session to share
      (then none of the server arguments may be given).
    - ``message``: the holder message shown by Apstra's UI and the provider,
      expanded at each acquisition like the provider does (``$VAR``,
      ``${VAR}``, ``$DATE``); default ``$APSTRA_BLUEPRINT_MUTEX_MESSAGE`` or
      ``locked by <user>@<host> (condlock) at $DATE``. condlock appends a
      short holder token to it.
    - ``wait_for_blueprint_unlock``: first wait until Apstra's own blueprint
      lock is free (or taken by our own user), as the SDK does (default
      True).
    - ``max_poll_interval``: the longest pause between attempts while
      someone holds the mutex (default 16 s; at least 0.01 s); attempts are
      spaced by jittered backoff from 0.5 s.
    - ``on_wait``: a callable given a :class:`WaitEvent` at each wait of
      each acquisition (unless the acquisition passes its own); the first
      wait is also logged at INFO on the ``condlock`` logger.
    """

    def __init__(
        self,
        blueprint_id: str,
        *,
        url: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        message: Optional[str] = None,
        verify_tls: Optional[bool] = None,
        ca_bundle: Union[str, "os.PathLike[str]", bytes, None] = None,
        request_timeout: Optional[float] = None,
        wait_for_blueprint_unlock: bool = True,
        max_poll_interval: Optional[float] = None,
        client: Optional[ApstraClient] = None,
        transport: Any = None,
        on_wait: Optional[Callable[[WaitEvent], Any]] = None,
    ) -> None:
        seconds("request_timeout", request_timeout)
        seconds("max_poll_interval", max_poll_interval)
        if client is not None and not isinstance(client, ApstraClient):
            raise InvalidConfiguration(
                f"invalid client: expected a condlock.ApstraClient, got {type(client).__name__}",
                field="client",
            )
        sync_t, async_t = transports(transport)
        self._core = ApstraMutexCore(
            blueprint_id,
            url=url,
            username=username,
            password=password,
            message=message,
            verify_tls=verify_tls,
            ca_bundle_pem=read_pem(ca_bundle),
            request_timeout=request_timeout,
            wait_for_blueprint_unlock=wait_for_blueprint_unlock,
            max_poll_interval=max_poll_interval,
            client=client._core if client is not None else None,
            transport=sync_t,
            async_transport=async_t,
        )
        self._init_lock(on_wait)

    # -- description ---------------------------------------------------------

    @property
    def blueprint_id(self) -> str:
        """The blueprint."""
        return self._core.blueprint_id

    @property
    def label(self) -> str:
        """The mutex tag's label, ``blueprint <ID> locked``."""
        return self._core.label

    @property
    def message(self) -> str:
        """The holder message template (expanded at each acquisition)."""
        return self._core.message

    @property
    def url(self) -> str:
        """The server's base URL (never with credentials)."""
        return self._core.url

    @property
    def username(self) -> str:
        """The user we log in as."""
        return self._core.username

    @property
    def client(self) -> ApstraClient:
        """The client (server, login session, administration) of this mutex."""
        return ApstraClient._wrap(self._core.client)

    def __repr__(self) -> str:
        return (
            f"<condlock.ApstraMutex blueprint={self.blueprint_id} url={self.url} "
            f"user={self.username!r}>"
        )

    # -- acquiring ------------------------------------------------------------

    def acquire(
        self,
        blocking: bool = True,
        timeout: Optional[float] = None,
        *,
        on_wait: Optional[Callable[[WaitEvent], Any]] = None,
    ) -> HeldMutex:
        """Take the mutex and return the :class:`HeldMutex` (also remembered
        by this object: :meth:`release` and :meth:`locked` use it).

        ``blocking=False`` makes one attempt and raises :class:`LockHeld`
        whose ``holder`` is the holder's :class:`MutexTag` (or a
        :class:`BlueprintLockStatus` when Apstra's own blueprint lock is
        taken). Otherwise waits, with jittered backoff, up to ``timeout``
        seconds (``None`` or ``-1``: forever) and raises :class:`LockTimeout`
        (a :class:`TimeoutError`) when it runs out. ``on_wait`` (default: the
        mutex's) is called with a :class:`WaitEvent` at each wait, from a
        condlock thread. The GIL is released while waiting; Ctrl-C cancels
        the wait, removes any tag this call may have created, and raises
        ``KeyboardInterrupt``. Raises :class:`LockError` at once when this
        thread or task already holds the mutex (it is not re-entrant).
        """
        return self._acquire(blocking, timeout, on_wait)

    async def acquire_async(
        self,
        blocking: bool = True,
        timeout: Optional[float] = None,
        *,
        on_wait: Optional[Callable[[WaitEvent], Any]] = None,
    ) -> HeldMutex:
        """:meth:`acquire` for asyncio: never blocks the event loop
        (``on_wait`` runs on the event loop). Cancelling the awaiting task
        cancels the acquisition; any tag it may have created is removed
        before ``CancelledError`` propagates."""
        return await self._acquire_async(blocking, timeout, on_wait)

    def release(self) -> bool:
        """Release the mutex this object acquired last (see
        :meth:`HeldMutex.release`). False when this object holds nothing:
        calling it twice, or after a ``with`` block, is harmless."""
        return self._release()

    async def release_async(self) -> bool:
        """:meth:`release` for asyncio."""
        return await self._release_async()

    def _acquire_core(self, blocking: bool, timeout: Optional[float], on_wait: Any) -> HeldMutex:
        return HeldMutex(self._core.acquire(blocking, timeout, on_wait))

    async def _acquire_core_async(
        self, blocking: bool, timeout: Optional[float], on_wait: Any
    ) -> HeldMutex:
        async def undo(core: HeldMutexCore) -> None:
            await HeldMutex(core).release_async()

        core = await _aio.run(
            lambda loop, cb: self._core.acquire_async(loop, cb, blocking, timeout, on_wait),
            undo=undo,
        )
        return HeldMutex(core)

    def holder(self) -> Optional[MutexTag]:
        """The current mutex tag (description, tag ID, created_at, age,
        whether condlock created it), or ``None`` when the mutex is free;
        without taking it."""
        return self._core.holder()

    async def holder_async(self) -> Optional[MutexTag]:
        """:meth:`holder` for asyncio."""
        return await _aio.run(self._core.holder_async, wait_for_cleanup=False)

    def force_unlock(self) -> Optional[MutexTag]:
        """Delete this blueprint's mutex whoever holds it (logged). Returns
        the tag deleted, or None when the mutex was free. Use it only when
        the holder is known to be gone."""
        return _forget(self._core.force_unlock())

    async def force_unlock_async(self) -> Optional[MutexTag]:
        """:meth:`force_unlock` for asyncio."""
        return _forget(await _aio.run(self._core.force_unlock_async, wait_for_cleanup=False))

    # -- context managers (LockBase) ----------------------------------------

    _KIND = "ApstraMutex"

    def _target(self) -> str:
        return self._core.target

    def _identity(self) -> Tuple[str, ...]:
        return ("apstra", self._core.url, self._core.blueprint_id)


#: Deprecated name of :class:`HeldMutex` (an Apstra mutex has no lease).
ApstraLease = HeldMutex
