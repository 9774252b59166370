"""asyncio helpers every floor shares (bottom floor: imports nothing of the pool)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

# How long cancel_and_wait gives a cancelled task before cancelling it again.
RECANCEL_AFTER_S = 1.0


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None, absorb_errors: bool = False) -> None:
    """Cancel the tasks, then wait until each has ended, so nothing it holds outlives the caller's
    stop(). Their CancelledError is absorbed; with absorb_errors, so is any exception they died of
    (the caller is shutting down and has logged what mattered).

    A task still running a while after its cancel is cancelled again: on Python 3.11 a cancel that
    lands while an inner awaitable has just completed can be swallowed (asyncio.wait_for, and library
    code built the same way), and a loop that swallowed it would otherwise keep stop() waiting forever."""
    live = [task for task in tasks if task is not None]
    for task in live:
        task.cancel()
    absorbed: tuple[type[BaseException], ...] = (
        (asyncio.CancelledError, Exception) if absorb_errors else (asyncio.CancelledError,))
    for task in live:
        while not task.done():
            await asyncio.wait({task}, timeout=RECANCEL_AFTER_S)
            if not task.done():
                task.cancel()
        with contextlib.suppress(*absorbed):
            task.result()


async def wait_set(event: asyncio.Event, timeout: float) -> bool:
    """Wait until `event` is set or `timeout` seconds pass; True when it was set.

    asyncio.timeout, not asyncio.wait_for: on Python 3.11 wait_for returns normally when a cancel
    arrives just as the event is set, and the caller's loop then never sees its cancellation."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
