"""The Apstra blueprint mutex, compatible with the Apstra Terraform provider."""

from __future__ import annotations

import os
from typing import Any, List, Optional, Union

from . import _aio
from ._condlock import (
    ApstraClientCore,
    HeldMutexCore,
    ApstraMutexCore,
    BlueprintLockStatus,
    MutexTag,
)
from ._errors import InvalidConfiguration
from ._lock_base import HeldBase, LockBase, read_pem, transports

__all__ = ["ApstraClient", "ApstraMutex", "HeldMutex", "ApstraLease", "MutexTag", "BlueprintLockStatus"]


class HeldMutex(HeldBase):
    """A blueprint mutex we hold, returned by :meth:`ApstraMutex.acquire`.

    ``release()`` deletes our tag; calling it again is harmless. A held mutex
    is also a context manager that releases on exit. An Apstra mutex has no
    lease and never expires: a held mutex garbage-collected without
    ``release()`` does NOT release it (a warning is logged).
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

    ``url``, ``username`` and ``password`` default to ``APSTRA_URL``,
    ``APSTRA_USER`` and ``APSTRA_PASS``; the URL may embed percent-encoded
    credentials (``https://user:p%40ss@apstra.example``) and a path prefix.
    ``verify_tls`` defaults to True (or to ``APSTRA_TLS_VALIDATION_DISABLED``
    when set); ``ca_bundle`` (a PEM file path or PEM bytes) adds trusted
    roots. ``request_timeout`` is per request, in seconds (default 10, or
    ``APSTRA_API_TIMEOUT``). ``transport`` replaces the built-in HTTP client,
    as for :class:`condlock.S3Lock`. The password never appears in any repr,
    message or log record.
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
        return self._core.stale_mutexes(older_than)

    async def stale_mutexes_async(self, older_than: float = 3600.0) -> List[MutexTag]:
        """:meth:`stale_mutexes` for asyncio."""
        return await _aio.run(
            lambda loop, cb: self._core.stale_mutexes_async(loop, cb, older_than),
            wait_for_cleanup=False,
        )

    def force_unlock_tag(self, tag_id: str) -> Optional[MutexTag]:
        """Delete the mutex tag with this ID, whoever holds it (refused with
        :class:`RequestRejected` for a tag that is not a blueprint mutex).
        Returns the tag deleted, or None when there was none. Use it only
        when the holder is known to be gone."""
        return self._core.force_unlock_tag(tag_id)

    async def force_unlock_tag_async(self, tag_id: str) -> Optional[MutexTag]:
        """:meth:`force_unlock_tag` for asyncio."""
        return await _aio.run(
            lambda loop, cb: self._core.force_unlock_tag_async(loop, cb, tag_id),
            wait_for_cleanup=False,
        )

    def force_unlock_blueprint(self, blueprint_id: str) -> Optional[MutexTag]:
        """Delete the mutex of ``blueprint_id``, whoever holds it. Returns the
        tag deleted, or None when the blueprint was not locked."""
        return self._core.force_unlock_blueprint(blueprint_id)

    async def force_unlock_blueprint_async(self, blueprint_id: str) -> Optional[MutexTag]:
        """:meth:`force_unlock_blueprint` for asyncio."""
        return await _aio.run(
            lambda loop, cb: self._core.force_unlock_blueprint_async(loop, cb, blueprint_id),
            wait_for_cleanup=False,
        )


class ApstraMutex(LockBase[HeldMutex]):
    """The mutex of one Apstra blueprint: the tag ``blueprint <ID> locked``
    in the global design catalog, the same one ``terraform apply`` with the
    Apstra provider takes, so scripts and Terraform exclude each other.

    Server settings (``url``, ``username``, ``password``, ``verify_tls``,
    ``ca_bundle``, ``request_timeout``, ``transport``) are those of
    :class:`ApstraClient`, with the same ``APSTRA_*`` environment defaults;
    or pass ``client=`` to share one client's login session.

    ``message`` is the holder message shown by Apstra's UI and the provider,
    expanded at each acquisition like the provider does (``$VAR``,
    ``${VAR}``, ``$DATE``); default ``$APSTRA_BLUEPRINT_MUTEX_MESSAGE`` or
    ``locked by <user>@<host> (condlock) at $DATE``. condlock appends a short
    holder token to it. With ``wait_for_blueprint_unlock`` (the default, as
    the SDK does) an acquisition first waits until Apstra's own blueprint
    lock is free (or taken by our own user). While someone holds the mutex,
    attempts are spaced by jittered backoff from 0.5 s up to
    ``max_poll_interval`` (default 16 s; at least 0.01 s).

    Use ``with mutex:`` / ``async with mutex:`` (not re-entrant within one
    thread or task), or :meth:`acquire` / :meth:`acquire_async` for an
    :class:`HeldMutex`.
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
    ) -> None:
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
        self._init_entered()

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

    def acquire(self, blocking: bool = True, timeout: Optional[float] = None) -> HeldMutex:
        """Take the mutex and return the :class:`HeldMutex`.

        ``blocking=False`` makes one attempt and raises :class:`LockHeld`
        whose ``holder`` is the holder's :class:`MutexTag` (or a
        :class:`BlueprintLockStatus` when Apstra's own blueprint lock is
        taken). Otherwise waits, with jittered backoff, up to ``timeout``
        seconds (``None`` or ``-1``: forever) and raises :class:`LockTimeout`
        (a :class:`TimeoutError`) when it runs out. The GIL is released while
        waiting; Ctrl-C cancels the wait, removes any tag this call may have
        created, and raises ``KeyboardInterrupt``.
        """
        return HeldMutex(self._core.acquire(blocking, timeout))

    async def acquire_async(
        self, blocking: bool = True, timeout: Optional[float] = None
    ) -> HeldMutex:
        """:meth:`acquire` for asyncio: never blocks the event loop.
        Cancelling the awaiting task cancels the acquisition; any tag it may
        have created is removed before ``CancelledError`` propagates."""

        async def undo(core: HeldMutexCore) -> None:
            await HeldMutex(core).release_async()

        core = await _aio.run(
            lambda loop, cb: self._core.acquire_async(loop, cb, blocking, timeout),
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
        return self._core.force_unlock()

    async def force_unlock_async(self) -> Optional[MutexTag]:
        """:meth:`force_unlock` for asyncio."""
        return await _aio.run(self._core.force_unlock_async, wait_for_cleanup=False)

    # -- context managers (LockBase) ----------------------------------------

    _KIND = "ApstraMutex"

    def _target(self) -> str:
        return self._core.target


#: Deprecated name of :class:`HeldMutex` (an Apstra mutex has no lease).
ApstraLease = HeldMutex
