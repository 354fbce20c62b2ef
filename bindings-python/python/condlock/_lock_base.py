"""What every lock kind shares: user transport and CA bundle arguments,
duration arguments, the held lock as a context manager, the lock object that
remembers what it holds (``acquire()`` / ``release()`` / ``locked()``,
``with``, decorators), and the process's register of held locks (refusing
re-entrant acquisitions, releasing at exit or on SIGTERM)."""

from __future__ import annotations

import contextvars
import functools
import os
import sys
import threading
import weakref
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Generic,
    List,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
    overload,
)

if TYPE_CHECKING:
    import logging

from ._condlock import EXIT_RELEASE_TIMEOUT as _CORE_EXIT_RELEASE_TIMEOUT
from ._condlock import released_unattended
from ._errors import InvalidConfiguration, LockError

#: Seconds a release may take when leaving a ``with`` / ``async with`` block
#: (also after an exception, cancellation or Ctrl-C), at interpreter exit and
#: on SIGTERM (:func:`release_on_sigterm`): a fresh, short deadline so that
#: leaving stays prompt when the store is unreachable. A plain ``release()``
#: retries transient failures for up to 30 s. The value is the core's
#: (``condlock::drive::s3::EXIT_RELEASE_BUDGET``), the same in every binding.
EXIT_RELEASE_TIMEOUT: float = _CORE_EXIT_RELEASE_TIMEOUT


def logger() -> "logging.Logger":
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


def seconds(name: str, value: Any) -> Any:
    """``value`` when it is a number of seconds (int or float) or ``None``;
    a :class:`TypeError` naming the argument otherwise (``"10"`` is not a
    duration: the core checks the range, Python the type)."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise TypeError(
        f"{name} must be a number of seconds (int or float), got {type(value).__name__}"
    )


def callback(name: str, value: Any, what: str) -> Any:
    """``value`` when it is callable or ``None``, else InvalidConfiguration."""
    if value is not None and not callable(value):
        raise InvalidConfiguration(f"invalid {name}: must be a callable {what}", field=name)
    return value


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

    # Weak references: the register of held locks must not keep a forgotten
    # leased lock renewing (see _Register).
    __slots__ = ("__weakref__",)

    #: Positional arguments of the release made when leaving a block.
    _exit_release_args: Tuple[Any, ...] = ()
    #: What the ID of ``_exit_names()`` is, in the log line of a failed release.
    _ID_KIND = "lock ID"

    def _exit_names(self) -> Tuple[str, str]:
        """``(lock, ID)`` named when a release on exit fails."""
        raise NotImplementedError

    @property
    def released(self) -> bool:
        raise NotImplementedError

    @property
    def lost(self) -> Any:
        """Why the lock was lost, or ``None`` (an Apstra mutex is never lost)."""
        return None

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

    def __enter__(self: "H") -> "H":
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

    async def __aenter__(self: "H") -> "H":
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


H = TypeVar("H", bound=HeldBase)
L = TypeVar("L", bound=HeldBase)
F = TypeVar("F", bound=Callable[..., Any])


# -- the process's register of held locks -------------------------------------


def _holder_here() -> Tuple[int, Any]:
    """Who is acquiring: the thread, and the asyncio task running on it (or
    None)."""
    task = None
    asyncio = sys.modules.get("asyncio")  # never imported just for this
    if asyncio is not None:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running event loop in this thread
            task = None
    return threading.get_ident(), task


class _Entry:
    __slots__ = ("key", "lock", "thread", "task", "held", "pid")

    def __init__(self, key: Tuple[str, ...], lock: "LockBase[Any]", held: HeldBase) -> None:
        self.key = key
        self.lock = weakref.ref(lock)
        self.thread, task = _holder_here()
        self.task = weakref.ref(task) if task is not None else None
        # A lock without a lease never expires: keep it until it is released,
        # at exit if need be. A leased lock is only watched, so that a
        # forgotten one stops renewing when garbage-collected (and expires).
        lease = getattr(held, "lease", None)
        self.held: Any = weakref.ref(held) if lease is not None else held
        self.pid = os.getpid()

    def get(self) -> Optional[HeldBase]:
        """The held lock while it is still held by this process."""
        held: Optional[HeldBase] = (
            self.held() if isinstance(self.held, weakref.ref) else self.held
        )
        if held is None or self.pid != os.getpid():
            return None
        if held.released or held.lost is not None:
            return None
        return held

    def same_holder(self, thread: int, task: Any) -> bool:
        """Whether an acquisition by ``(thread, task)`` would wait for this
        holder while this holder cannot run: a blocking call on the holder's
        thread (it blocks that thread, and its event loop if any), or the
        holding task itself. A task may wait for a lock held by another task
        or by the code that started its event loop: another task can
        release it."""
        if thread != self.thread:
            return False
        if task is None:
            return True
        mine = self.task() if self.task is not None else None
        return task is mine


class _Register:
    """The locks this process holds, by lock identity (kind, server, lock)."""

    def __init__(self) -> None:
        # Re-entrant: the SIGTERM handler runs on the main thread, possibly
        # while that thread is inside the register.
        self._mutex = threading.RLock()
        self._entries: List[_Entry] = []

    def _live(self) -> List[Tuple[_Entry, HeldBase]]:
        live = []
        for e in self._entries:
            held = e.get()
            if held is not None:
                live.append((e, held))
        self._entries = [e for e, _ in live]
        return live

    def check(self, key: Tuple[str, ...], lock: "LockBase[Any]", forever: bool) -> None:
        """Refuse an acquisition of ``key`` by a holder of it (see
        :meth:`_Entry.same_holder`): through the same lock object always;
        through another object for the same lock when it would wait
        forever. A bounded attempt through another object (``blocking=False``
        or a timeout) is made: it ends by itself, and it is how one process
        plays two holders (tests, demonstrations)."""
        thread, task = _holder_here()
        with self._mutex:
            mine = any(
                e.key == key and e.same_holder(thread, task) and (forever or e.lock() is lock)
                for e, _ in self._live()
            )
        if mine:
            raise lock._core.not_reentrant() from None

    def add(self, key: Tuple[str, ...], lock: "LockBase[Any]", held: HeldBase) -> None:
        with self._mutex:
            self._live()
            self._entries.append(_Entry(key, lock, held))

    def forget(self, removed: Callable[[HeldBase], bool]) -> None:
        """Forget the held locks this process just removed itself
        (force-unlocked): acquiring them again is no longer re-entrant."""
        with self._mutex:
            self._entries = [e for e, h in self._live() if not removed(h)]

    def take_all(self) -> List[HeldBase]:
        """Every lock still held by this process, forgotten by the register."""
        with self._mutex:
            held = [h for _, h in self._live()]
            self._entries = []
        return held

    def forget_all(self) -> None:
        """In a forked child: the parent's locks are not ours."""
        self._entries = []
        self._mutex = threading.RLock()


_REGISTER = _Register()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_REGISTER.forget_all)


def _release_unattended(signal_name: Optional[str]) -> None:
    """Release what this process still holds, each with a short fresh
    deadline, and say so (the core's words). Several locks are released side
    by side, so that exiting takes one deadline at most, not one per lock."""

    def release(held: HeldBase) -> None:
        target, ident = held._exit_names()
        try:
            held.release(*held._exit_release_args)
        except LockError as e:
            held._log_exit_failure(e)
        else:
            logger().warning("%s", released_unattended(target, ident, signal_name))

    held = _REGISTER.take_all()
    threads = []
    for h in held[1:]:
        t = threading.Thread(target=release, args=(h,), name="condlock-exit-release")
        try:
            t.start()
        except RuntimeError:  # no new threads now: one after the other
            release(h)
        else:
            threads.append(t)
    if held:
        release(held[0])
    for t in threads:
        t.join()


def _release_at_exit() -> None:
    _release_unattended(None)


import atexit  # noqa: E402  (registered once the register exists)

atexit.register(_release_at_exit)


def release_on_sigterm() -> None:
    """Release the locks this process holds when it receives SIGTERM (CI
    cancellation, Kubernetes, ``timeout``, ``kill``), then let SIGTERM do
    what it did before: call the previous Python handler, or end the
    process by SIGTERM (exit status 143 in a shell) as by default.

    Without it (the default) SIGTERM ends the process at once: nothing is
    released, a lock without a lease stays held until force-unlocked (a
    leased one expires after its lease). Interpreter exit (including
    ``sys.exit`` and an uncaught exception) releases held locks anyway,
    with a warning. Each release has :data:`EXIT_RELEASE_TIMEOUT` seconds.

    Call it once, from the main thread (Python handles signals there);
    calling it again does nothing. When SIGTERM is ignored
    (``signal.SIG_IGN``) it stays ignored and nothing is installed."""
    import signal

    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN or getattr(previous, "_condlock_release", False):
        return

    def on_sigterm(signum: int, frame: Any) -> Any:
        _release_unattended("SIGTERM")
        if callable(previous):
            return previous(signum, frame)
        # The default action: die by the signal, as if no handler were set.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return None

    on_sigterm._condlock_release = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, on_sigterm)


# -- the lock object ------------------------------------------------------------


def _forever(blocking: bool, timeout: Optional[float]) -> bool:
    """Whether an acquisition may wait without end (the core's reading of
    ``timeout``: None, -1 and infinity are forever)."""
    return bool(blocking) and (timeout is None or timeout == -1 or timeout == float("inf"))


class LockBase(Generic[L]):
    """What a lock object does besides acquiring: remember the lock it holds
    (``release()``, ``locked()``), ``with lock:`` / ``async with lock:``,
    ``@lock`` decorators, and the refusal of re-entrant acquisitions.

    Subclasses provide ``_acquire_core()`` / ``_acquire_core_async()``, call
    ``_init_lock()`` in ``__init__``, and name themselves with ``_KIND``,
    ``_target()`` and ``_identity()``."""

    #: The class name used in messages (``S3Lock``, ``ApstraMutex``).
    _KIND = ""
    _entered: "contextvars.ContextVar[Optional[L]]"
    _held: Optional[L]
    _on_wait: Optional[Callable[[Any], Any]]
    _core: Any

    def _target(self) -> str:
        """The lock, as named in messages."""
        raise NotImplementedError

    def _identity(self) -> Tuple[str, ...]:
        """What makes two lock objects the same lock (kind, server, lock)."""
        raise NotImplementedError

    def _acquire_core(self, blocking: bool, timeout: Optional[float], on_wait: Any) -> L:
        raise NotImplementedError

    async def _acquire_core_async(
        self, blocking: bool, timeout: Optional[float], on_wait: Any
    ) -> L:
        raise NotImplementedError

    def _init_lock(self, on_wait: Optional[Callable[[Any], Any]]) -> None:
        self._on_wait = callback("on_wait", on_wait, "taking the WaitEvent")
        self._held = None
        self._entered = contextvars.ContextVar(
            f"condlock.{self._KIND}@{id(self):x}", default=None
        )

    # -- acquire / release / locked ------------------------------------------

    def _acquire(self, blocking: bool, timeout: Any, on_wait: Any) -> L:
        seconds("timeout", timeout)
        on_wait = callback("on_wait", on_wait, "taking the WaitEvent") or self._on_wait
        key = self._identity()
        _REGISTER.check(key, self, forever=_forever(blocking, timeout))
        held = self._acquire_core(blocking, timeout, on_wait)
        _REGISTER.add(key, self, held)
        self._held = held
        return held

    async def _acquire_async(self, blocking: bool, timeout: Any, on_wait: Any) -> L:
        seconds("timeout", timeout)
        on_wait = callback("on_wait", on_wait, "taking the WaitEvent") or self._on_wait
        key = self._identity()
        _REGISTER.check(key, self, forever=_forever(blocking, timeout))
        held = await self._acquire_core_async(blocking, timeout, _on_loop(on_wait))
        _REGISTER.add(key, self, held)
        self._held = held
        return held

    def _held_now(self) -> Optional[L]:
        held = self._held
        if held is None or held.released or held.lost is not None:
            return None
        return held

    def locked(self) -> bool:
        """True while this object holds the lock: acquired through it
        (``acquire()``, ``with``, a decorated call) and not yet released nor
        lost. It says nothing about other holders: :meth:`holder` reads the
        store."""
        return self._held_now() is not None

    def _release(self, *args: Any) -> bool:
        held = self._held
        if held is None:
            return False
        return held.release(*args)

    async def _release_async(self, *args: Any) -> bool:
        held = self._held
        if held is None:
            return False
        return await held.release_async(*args)

    # -- with / async with ----------------------------------------------------

    def __enter__(self) -> L:
        """Acquire (waiting forever) and return the held lock."""
        held = self._acquire(True, None, None)
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
        held = await self._acquire_async(True, None, None)
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

    # -- decorators -----------------------------------------------------------

    @overload
    def __call__(self, func: F, /) -> F: ...

    @overload
    def __call__(
        self,
        func: None = None,
        /,
        *,
        blocking: bool = True,
        timeout: Optional[float] = None,
        on_wait: Optional[Callable[[Any], Any]] = None,
    ) -> Callable[[F], F]: ...

    def __call__(
        self,
        func: Optional[F] = None,
        /,
        *,
        blocking: bool = True,
        timeout: Optional[float] = None,
        on_wait: Optional[Callable[[Any], Any]] = None,
    ) -> Any:
        """Decorate a function so that each call runs holding the lock:
        ``@lock`` (waiting forever), or ``@lock(timeout=5)`` /
        ``@lock(blocking=False)`` (raising :class:`LockTimeout` /
        :class:`LockHeld` instead of calling). A coroutine function gets
        ``async with``: the lock is acquired without blocking the event loop.
        The lock is released when the call returns or raises."""
        seconds("timeout", timeout)
        callback("on_wait", on_wait, "taking the WaitEvent")
        if func is None:
            return lambda f: self._decorate(f, blocking, timeout, on_wait)
        return self._decorate(func, blocking, timeout, on_wait)

    def _decorate(self, func: F, blocking: bool, timeout: Any, on_wait: Any) -> F:
        if not callable(func):
            raise TypeError(
                f"{self._KIND} decorates a function, got {type(func).__name__}; for options "
                "write @lock(timeout=...)"
            )
        import inspect  # lazily: only decorators need it

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                held = await self._acquire_async(blocking, timeout, on_wait)
                async with held:
                    return await func(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._acquire(blocking, timeout, on_wait):
                return func(*args, **kwargs)

        return run  # type: ignore[return-value]


def _on_loop(on_wait: Optional[Callable[[Any], Any]]) -> Optional[Callable[[Any], Any]]:
    """For an asyncio acquisition: run ``on_wait`` on the awaiting task's
    event loop (a coroutine function as a task of that loop), not on
    condlock's worker thread."""
    if on_wait is None:
        return None
    import asyncio
    import inspect

    loop = asyncio.get_running_loop()
    is_coroutine = inspect.iscoroutinefunction(on_wait)

    def deliver(event: Any) -> None:
        def run() -> None:
            try:
                if is_coroutine:
                    loop.create_task(on_wait(event))
                else:
                    on_wait(event)
            except Exception:
                logger().exception("the on_wait callback raised")

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # that event loop is closed
            pass

    return deliver
