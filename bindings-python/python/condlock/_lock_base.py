"""What every lock kind shares: user transport and CA bundle arguments, the
held lock as a context manager, the lock's non-re-entrant ``with`` blocks."""

from __future__ import annotations

import contextvars
import os
from types import TracebackType
from typing import Any, Generic, Optional, Tuple, Type, TypeVar, Union

from ._errors import InvalidConfiguration, LockError



def logger():
    """The ``condlock`` logger. ``logging`` is imported only when something
    is logged from Python: it is two thirds of condlock's import time."""
    import logging

    return logging.getLogger("condlock")


def transports(transport: Any) -> Tuple[Any, Any]:
    """``(sync_transport, async_transport)`` for the core from the user's
    ``transport`` argument (a plain or a coroutine callable, or None)."""
    if transport is None:
        return None, None
    if not callable(transport):
        raise InvalidConfiguration(
            "invalid transport: must be a callable "
            "(method, url, headers, body) -> (status, headers, body)",
            field="transport",
        )
    import inspect  # lazily: only user transports need it

    if inspect.iscoroutinefunction(transport) or inspect.iscoroutinefunction(
        getattr(transport, "__call__", None)
    ):
        return None, transport
    return transport, None


def read_pem(ca_bundle: Union[str, "os.PathLike[str]", bytes, None]) -> Optional[bytes]:
    """The PEM bytes of ``ca_bundle`` (a file path or the bytes themselves)."""
    if ca_bundle is None or isinstance(ca_bundle, bytes):
        return ca_bundle
    try:
        with open(ca_bundle, "rb") as f:
            return f.read()
    except OSError as e:
        raise InvalidConfiguration(
            f"invalid ca_bundle: cannot read {os.fspath(ca_bundle)!r}: {e.strerror}",
            field="ca_bundle",
        ) from None


class HeldBase:
    """A held lock as a context manager that releases on exit.

    Subclasses provide ``release()`` / ``release_async()``, and say how the
    release on exit is made (``_exit_release_args``) and how the lock is named
    when it fails (``_ID_KIND``, ``_exit_names()``)."""

    __slots__ = ()

    #: Positional arguments of the release made when leaving a block.
    _exit_release_args: Tuple[Any, ...] = ()
    #: What the ID of ``_exit_names()`` is, in the log line of a failed release.
    _ID_KIND = "lock ID"

    def _exit_names(self) -> Tuple[str, str]:
        """``(lock, ID)`` named when a release on exit fails."""
        raise NotImplementedError

    def release(self, *args: Any) -> bool:
        raise NotImplementedError

    async def release_async(self, *args: Any) -> bool:
        raise NotImplementedError

    def _log_exit_failure(self, e: LockError) -> None:
        target, ident = self._exit_names()
        logger().error(f"releasing %s ({self._ID_KIND} %s) failed: %s", target, ident, e)

    def _release_on_exit(self, exc: Optional[BaseException]) -> None:
        try:
            self.release(*self._exit_release_args)
        except LockError as e:
            if exc is None:
                raise
            # Do not hide the block's own exception behind the release failure.
            self._log_exit_failure(e)

    async def _release_on_exit_async(self, exc: Optional[BaseException]) -> None:
        try:
            await self.release_async(*self._exit_release_args)
        except LockError as e:
            if exc is None:
                raise
            self._log_exit_failure(e)

    def __enter__(self: "L") -> "L":
        """Return the held lock itself; leaving the block releases it."""
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Release, even when the block raised or got KeyboardInterrupt."""
        self._release_on_exit(exc)

    async def __aenter__(self: "L") -> "L":
        """Return the held lock itself; leaving the block releases it."""
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Release without blocking the loop, even when the block raised or
        was cancelled."""
        await self._release_on_exit_async(exc)


L = TypeVar("L", bound=HeldBase)


class LockBase(Generic[L]):
    """``with lock:`` / ``async with lock:``: acquire, hand the held lock to the
    block, release on exit. Not re-entrant within one thread or task.

    Subclasses provide ``acquire()`` / ``acquire_async()``, call
    ``_init_entered()`` in ``__init__``, and name themselves with ``_KIND``
    and ``_target()``."""

    #: The class name used in messages (``S3Lock``, ``ApstraMutex``).
    _KIND = ""
    _entered: "contextvars.ContextVar[Optional[L]]"

    def _target(self) -> str:
        """The lock, as named in messages."""
        raise NotImplementedError

    def acquire(self) -> L:
        raise NotImplementedError

    async def acquire_async(self) -> L:
        raise NotImplementedError

    def _init_entered(self) -> None:
        self._entered = contextvars.ContextVar(
            f"condlock.{self._KIND}@{id(self):x}", default=None
        )

    def _enter_check(self) -> None:
        if self._entered.get() is not None:
            raise LockError(
                f"{self._target()} is already held by this thread/task through this "
                f"{self._KIND}: condlock locks are not re-entrant (waiting would deadlock on "
                "ourselves)"
            )

    def __enter__(self) -> L:
        """Acquire (waiting forever) and return the held lock."""
        self._enter_check()
        held = self.acquire()
        self._entered.set(held)
        return held

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Release, even when the block raised or got KeyboardInterrupt."""
        held = self._entered.get()
        self._entered.set(None)
        if held is not None:
            held._release_on_exit(exc)

    async def __aenter__(self) -> L:
        """Acquire without blocking the event loop and return the held lock."""
        self._enter_check()
        held = await self.acquire_async()
        self._entered.set(held)
        return held

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Release, even when the block raised or was cancelled."""
        held = self._entered.get()
        self._entered.set(None)
        if held is not None:
            await held._release_on_exit_async(exc)
