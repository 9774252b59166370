"""The merged view of every pool process (this one live, the others from their Redis snapshots),
and share counts over a window from the processes' cumulative counters."""

from __future__ import annotations

import time
from collections import deque

import msgspec

from pool.admin.interfaces import ShareStats, reject_names
from pool.bus.link import ClusterLink
from pool.cluster.snapshot import ConnRow, NodeSnapshot

SAMPLE_SECONDS = 2.0                # at most one counter sample per this many seconds
KEEP_SECONDS = 3600 + 300           # samples older than the longest window asked for are dropped


class Counters(msgspec.Struct, array_like=True):
    accepted: int
    accepted_difficulty: float
    rejected: dict[str, int]
    ports: dict[int, float]          # port -> accepted difficulty

    @classmethod
    def of(cls, node: NodeSnapshot) -> Counters:
        stratum = node.stratum
        return cls(stratum.accepted, stratum.accepted_difficulty, stratum.rejected(),
                   {p.port: p.accepted_difficulty for p in stratum.ports})


ZERO = Counters(0, 0.0, {}, {})


class Windowed(msgspec.Struct, kw_only=True):
    seconds: float                   # the window, or less when a process's counts before it are unknown
    accepted: int
    accepted_difficulty: float
    rejected: dict[str, int]         # stratum reject keys
    port_difficulty: dict[int, float]


class CounterHistory:
    """Samples of every process's cumulative counters, to answer "how many over the last N s"."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, dict[str, Counters]]] = deque()

    def record(self, nodes: list[NodeSnapshot], now: float) -> None:
        if self.samples and now - self.samples[-1][0] < SAMPLE_SECONDS:
            return
        self.samples.append((now, {n.node: Counters.of(n) for n in nodes}))
        while self.samples and now - self.samples[0][0] > KEEP_SECONDS:
            self.samples.popleft()

    def window(self, nodes: list[NodeSnapshot], seconds: float, now: float) -> Windowed:
        since = now - seconds
        earliest = now
        out = Windowed(seconds=0.0, accepted=0, accepted_difficulty=0.0, rejected={}, port_difficulty={})
        for node in nodes:
            current = Counters.of(node)
            if node.started_at >= since:
                base, start = ZERO, since                    # everything it counted is in the window
            else:
                found = next(((t, s[node.node]) for t, s in self.samples if t >= since and node.node in s), None)
                start, base = found if found else (now, current)
                if base.accepted > current.accepted:         # restarted between samples
                    base = ZERO
            earliest = min(earliest, start)
            out.accepted += current.accepted - base.accepted
            out.accepted_difficulty += current.accepted_difficulty - base.accepted_difficulty
            for key, count in current.rejected.items():
                delta = count - base.rejected.get(key, 0)
                if delta > 0:
                    out.rejected[key] = out.rejected.get(key, 0) + delta
            for port, diff in current.ports.items():
                out.port_difficulty[port] = out.port_difficulty.get(port, 0.0) + diff - base.ports.get(port, 0.0)
        out.seconds = max(1.0, min(seconds, now - earliest))
        return out


class PoolViews:
    """Shared by the state, control and metrics adapters of one admin server."""

    def __init__(self, link: ClusterLink) -> None:
        self.link = link
        self.history = CounterHistory()

    async def nodes(self) -> list[NodeSnapshot]:
        """This process first, then the others that published a fresh snapshot."""
        nodes = [self.link.local(), *await self.link.peers()]
        self.history.record(nodes, time.time())
        return nodes

    def shares(self, nodes: list[NodeSnapshot], seconds: int) -> ShareStats:
        w = self.history.window(nodes, seconds, time.time())
        return ShareStats(window_seconds=seconds, accepted=w.accepted, accepted_difficulty=w.accepted_difficulty,
                          rejected=reject_names(w.rejected), observed_seconds=w.seconds, rejected_seconds=w.seconds,
                          judged_accepted=w.accepted)

    @staticmethod
    def rows(nodes: list[NodeSnapshot]) -> list[ConnRow]:
        return [row for node in nodes for row in node.rows]
