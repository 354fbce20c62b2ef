"""asyncio glue: await an operation running on condlock's Rust runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, TypeVar

if TYPE_CHECKING:
    import asyncio

from ._condlock import Operation

T = TypeVar("T")

# asyncio is imported lazily (it is most of `import condlock`'s cost, and a
# caller of these functions has imported it already).
Start = Callable[["asyncio.AbstractEventLoop", Callable[[bool, Any], None]], Operation]


async def run(
    start: Start,
    *,
    wait_for_cleanup: bool = True,
    undo: Optional[Callable[[Any], Awaitable[None]]] = None,
) -> Any:
    """Start an operation with ``start(loop, callback)`` and await its result
    without blocking the event loop.

    The Rust side calls ``callback(ok, value)`` through
    ``loop.call_soon_threadsafe``. If the awaiting task is cancelled, the
    operation's cancellation token is set; with ``wait_for_cleanup`` the task
    then waits (shielded) until the operation has cleaned up, and if the
    operation had already succeeded, ``undo(result)`` gives it back (a lock
    taken just before the cancellation is released). ``CancelledError`` is
    re-raised in every case.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()

    def callback(ok: bool, value: Any) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    op = start(loop, callback)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        op.cancel()
        if wait_for_cleanup:
            try:
                result = await asyncio.shield(fut)
            except asyncio.CancelledError:
                raise
            except BaseException:
                pass
            else:
                if undo is not None:
                    await asyncio.shield(undo(result))
        else:
            # Nobody will look at the outcome: keep "exception never
            # retrieved" warnings away.
            fut.add_done_callback(_consume)
        raise


def _consume(fut: "asyncio.Future[Any]") -> None:
    if not fut.cancelled():
        fut.exception()
