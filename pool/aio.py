"""asyncio helpers every floor shares (bottom floor: imports nothing of the pool)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None, absorb_errors: bool = False) -> None:
    """Cancel the tasks, then wait until each has ended, so nothing it holds outlives the caller's
    stop(). Their CancelledError is absorbed; with absorb_errors, so is any exception they died of
    (the caller is shutting down and has logged what mattered)."""
    live = [task for task in tasks if task is not None]
    for task in live:
        task.cancel()
    absorbed: tuple[type[BaseException], ...] = (
        (asyncio.CancelledError, Exception) if absorb_errors else (asyncio.CancelledError,))
    for task in live:
        with contextlib.suppress(*absorbed):
            await task
