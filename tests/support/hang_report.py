"""A test that hits its timeout reports what every asyncio task is waiting on, then the run stops.

pytest-timeout's own dump (timeout_method = "thread") shows threads only, and an asyncio test that
hangs shows one thread parked in the selector. This plugin takes over pytest-timeout's timer: at the
deadline it prints each pending task's chain of awaits (the await that never returned is the last
line), then ends the process as pytest-timeout would, so the report is the tail of CI's output."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import traceback
from typing import Any

import pytest

_TIMER_KEY = pytest.StashKey[threading.Timer]()


def _await_chain(coro: Any) -> list[str]:
    """Where a coroutine is parked: its frame, then the frame of what it awaits, down to the leaf."""
    lines = []
    while coro is not None and len(lines) < 40:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            lines.append(f"   {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return lines


def _report_and_exit(item: pytest.Item, timeout: float) -> None:
    capture = item.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)     # write to the real stderr, not the test's capture
    tasks = [task for task in list(asyncio.tasks._all_tasks) if not task.done()]
    out = sys.stderr
    print(f"\n++++ Timeout: {item.nodeid} ran past {timeout:g} s; {len(tasks)} pending asyncio tasks ++++",
          file=out)
    for task in tasks:
        print(f"-- {task.get_name()}:", file=out)
        try:
            print("\n".join(_await_chain(task.get_coro())), file=out)
        except Exception as error:     # a task finishing meanwhile; this is a diagnostic only
            print(f"   (stack unavailable: {error!r})", file=out)
    main = sys._current_frames().get(threading.main_thread().ident or 0)
    if main is not None:
        print("-- main thread:\n" + "".join(traceback.format_stack(main, limit=12)), file=out)
    out.flush()
    os._exit(1)


@pytest.hookimpl
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    if not settings.timeout or settings.timeout <= 0:
        return None
    timer = threading.Timer(settings.timeout, _report_and_exit, args=(item, settings.timeout))
    timer.daemon = True
    timer.start()
    item.stash[_TIMER_KEY] = timer
    return True          # this timer replaces pytest-timeout's


@pytest.hookimpl
def pytest_timeout_cancel_timer(item: pytest.Item) -> None:
    timer = item.stash.get(_TIMER_KEY, None)
    if timer is not None:
        timer.cancel()
        del item.stash[_TIMER_KEY]
