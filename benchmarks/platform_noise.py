"""How much the machine itself interrupts us: the context a tail-latency figure needs.

On a VM the hypervisor takes CPU away ("steal" in /proc/stat) in slices of milliseconds; no server
can answer faster than the vCPU it runs on is allowed to run. `hiccups` measures those pauses with a
busy loop per CPU on an otherwise idle machine; `StealMeter` reports the share stolen during a stage.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any


def _cpu_times() -> tuple[int, int]:
    """(steal, total) jiffies over all CPUs."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    steal = fields[7] if len(fields) > 7 else 0
    return steal, sum(fields[:8])


class StealMeter:
    """Share of CPU time the hypervisor took between start() and percent()."""

    def __init__(self) -> None:
        self._start = _cpu_times()

    def start(self) -> StealMeter:
        self._start = _cpu_times()
        return self

    def percent(self) -> float:
        steal, total = _cpu_times()
        elapsed = total - self._start[1]
        return round(100.0 * (steal - self._start[0]) / elapsed, 2) if elapsed > 0 else 0.0


def _spin(seconds: float, threshold: float, queue: Any) -> None:
    clock = time.perf_counter
    end = clock() + seconds
    last = clock()
    gaps: list[float] = []
    while last < end:
        now = clock()
        if now - last > threshold:
            gaps.append(now - last)
        last = now
    queue.put(gaps)


def hiccups(seconds: float = 3.0, threshold: float = 0.0002) -> dict[str, Any]:
    """Pauses a busy loop on every CPU sees while nothing else of ours runs."""
    queue: Any = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_spin, args=(seconds, threshold, queue))
               for _ in range(os.cpu_count() or 1)]
    meter = StealMeter()
    for worker in workers:
        worker.start()
    gaps = [gap for _ in workers for gap in queue.get()]
    for worker in workers:
        worker.join()
    lost = sum(gaps) / (seconds * len(workers))
    return {"seconds": seconds, "cpus": len(workers), "pauses_over_1ms": sum(g > 0.001 for g in gaps),
            "pauses_over_3ms": sum(g > 0.003 for g in gaps), "longest_ms": round(max(gaps, default=0) * 1e3, 2),
            "time_paused_percent": round(100 * lost, 2), "steal_percent": meter.percent()}
