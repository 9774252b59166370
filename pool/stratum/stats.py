"""The stratum server's typed snapshot (what /metrics, the admin API and the inter-process bus read),
its timing recorders, and the per-worker rows of the admin views."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from pool.config.stratum import PortConfig
from pool.stratum.extranonce import ExtranonceSnapshot
from pool.stratum.resume_link import ResumeSnapshot
from pool.stratum.session_records import Counters

DEFAULT_LATENCY_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class HistogramSnapshot(msgspec.Struct, kw_only=True):
    bounds: list[float]                 # upper bounds, ascending, without +Inf
    counts: list[int]                   # per bucket (not cumulative), len(bounds) + 1 (last is +Inf)
    sum: float
    count: int


class LatencyHistogram:
    """Cumulative counts of observations (seconds) per bucket."""

    def __init__(self, bounds: Sequence[float] = DEFAULT_LATENCY_BOUNDS) -> None:
        if list(bounds) != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError("histogram bounds must be strictly ascending")
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds
        self.count += 1

    def snapshot(self) -> HistogramSnapshot:
        return HistogramSnapshot(bounds=list(self.bounds), counts=list(self.counts), sum=self.sum, count=self.count)


def merge_histograms(parts: list[HistogramSnapshot]) -> HistogramSnapshot:
    """The sum of several processes' histograms (one of a different version's buckets is left out)."""
    first = parts[0]
    counts = [0] * len(first.counts)
    total, n = 0.0, 0
    for part in parts:
        if part.bounds != first.bounds:
            continue                                         # another version's buckets: not addable
        counts = [a + b for a, b in zip(counts, part.counts, strict=True)]
        total += part.sum
        n += part.count
    return HistogramSnapshot(bounds=list(first.bounds), counts=counts, sum=total, count=n)


class Timings:
    """Fan-out durations and new-block-to-first-notify latencies (seconds): every one in a
    cumulative histogram, the most recent ones kept for the benchmarks."""

    def __init__(self, keep: int = 64) -> None:
        self.fanout: deque[tuple[float, int]] = deque(maxlen=keep)
        self.block_to_notify: deque[float] = deque(maxlen=keep)
        self.fanout_histogram = LatencyHistogram()
        self.block_to_notify_histogram = LatencyHistogram()

    def record_fanout(self, seconds: float, connections: int) -> None:
        self.fanout.append((seconds, connections))
        self.fanout_histogram.observe(seconds)

    def record_block_to_notify(self, seconds: float) -> None:
        self.block_to_notify.append(seconds)
        self.block_to_notify_histogram.observe(seconds)

    def recent(self) -> dict[str, Any]:
        durations = [d for d, _ in self.fanout]
        return {
            "notify_fanout_last_s": durations[-1] if durations else None,
            "notify_fanout_max_s": max(durations) if durations else None,
            "notify_fanout_last_connections": self.fanout[-1][1] if self.fanout else 0,
            "block_to_first_notify_last_s": self.block_to_notify[-1] if self.block_to_notify else None,
            "block_to_first_notify_max_s": max(self.block_to_notify) if self.block_to_notify else None,
        }


class PortSnapshot(msgspec.Struct, kw_only=True):
    """One listening port: its difficulty settings, who is on it and the verdicts of its shares."""

    port: int
    name: str
    connections: int                    # sessions on it (sockets past the PROXY header)
    subscribed: int
    workers: int                        # authorized workers (a farm proxy carries many)
    farm_proxies: int
    start_difficulty: float
    min_difficulty: float
    max_difficulty: float
    accepted: int
    accepted_difficulty: float
    blocks: int
    rejected: dict[str, int]            # stratum reject keys ("stale", "job_not_found", ...)


class StratumSnapshot(msgspec.Struct, kw_only=True):
    """One process's stratum server: counters since start, what is connected now, the timings."""

    connections: int                    # open sockets (sessions or not)
    sessions: int
    share_write_failures: int           # shares the consumer (ledger, journal) raised on
    bans: int                           # bans in force
    ports: list[PortSnapshot]
    extranonce: ExtranonceSnapshot
    resume: ResumeSnapshot | None       # None: no shared resume directory
    fanout: HistogramSnapshot           # one job written to every session
    block_to_notify: HistogramSnapshot  # new tip seen -> first clean notify sent

    @property
    def accepted(self) -> int:
        return sum(p.accepted for p in self.ports)

    @property
    def accepted_difficulty(self) -> float:
        return sum(p.accepted_difficulty for p in self.ports)

    def rejected(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for port in self.ports:
            for key, count in port.rejected.items():
                out[key] = out.get(key, 0) + count
        return out


def port_snapshots(ports: list[PortConfig], counters: dict[int, Counters],
                   protocols: Iterable[Any]) -> list[PortSnapshot]:
    rows: dict[int, PortSnapshot] = {}
    for port in ports:
        counted = counters.get(id(port)) or Counters()
        rows[id(port)] = PortSnapshot(
            port=port.port, name=port.name or str(port.port), connections=0, subscribed=0, workers=0,
            farm_proxies=0, start_difficulty=port.start_difficulty, min_difficulty=port.min_difficulty,
            max_difficulty=port.max_difficulty, accepted=counted.accepted,
            accepted_difficulty=counted.accepted_difficulty, blocks=counted.blocks, rejected=dict(counted.rejected))
    for proto in protocols:
        session = proto.session
        row = rows.get(id(proto.port))
        if session is None or row is None:
            continue
        row.connections += 1
        row.subscribed += session.subscribed
        row.workers += len(session.workers)
        row.farm_proxies += session.farm_proxy
    return list(rows.values())


def worker_rows(protocols: Iterable[Any]) -> list[dict[str, Any]]:
    rows = []
    for proto in protocols:
        session = proto.session
        if session is None:
            continue
        for worker in session.workers.values():
            row = worker.snapshot()
            row.update(port=proto.port.port, session_id=session.session_id,
                       difficulty=session.difficulty, firmware=session.firmware,
                       user_agent=session.user_agent, country=session.country,
                       subdivision=session.subdivision, hosting=session.hosting,
                       farm_proxy=session.farm_proxy, peer=session.peer, connected_at=session.connected_at,
                       reported_version=session.info.get("reported-version", ""))
            rows.append(row)
    return rows
