"""pool/aio.py: stopping a component's loops always ends, even when a cancel is swallowed."""

from __future__ import annotations

import asyncio

from pool.aio import cancel_and_wait, wait_set


async def test_wait_set_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 5) is True


async def test_a_cancel_landing_as_the_event_is_set_still_stops_the_loop() -> None:
    """The ledger's flush loops: a share sets the wake event in the same tick as stop() cancels."""
    event = asyncio.Event()
    rounds = 0

    async def flush_loop() -> None:
        nonlocal rounds
        while True:
            await wait_set(event, 30)
            event.clear()
            rounds += 1

    task = asyncio.create_task(flush_loop())
    await asyncio.sleep(0)               # parked in wait_set
    event.set()
    task.cancel()
    async with asyncio.timeout(5):
        await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and rounds == 0


async def test_cancel_and_wait_cancels_again_a_task_that_swallowed_its_cancel() -> None:
    cancels_seen = 0

    async def stubborn() -> None:
        nonlocal cancels_seen
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancels_seen += 1
                if cancels_seen > 1:
                    raise                # the second cancel is taken

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(10):
        await cancel_and_wait(task)
    assert task.cancelled() and cancels_seen == 2


async def test_cancel_and_wait_raises_what_a_task_died_of_unless_absorbed() -> None:
    async def broken() -> None:
        raise ValueError("boom")

    for absorb in (False, True):
        task = asyncio.create_task(broken())
        await asyncio.sleep(0)
        if absorb:
            await cancel_and_wait(task, absorb_errors=True)
        else:
            try:
                await cancel_and_wait(task)
            except ValueError as error:
                assert str(error) == "boom"
            else:
                raise AssertionError("the task's error was not raised")
