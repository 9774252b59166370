"""Read-only views of the server for the admin API and metrics."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from pool.config.stratum import PortConfig
from pool.stratum.session_records import Counters


class Timings:
    """Recent fan-out durations and new-block-to-first-notify latencies (seconds)."""

    def __init__(self, keep: int = 64) -> None:
        self.fanout: deque[tuple[float, int]] = deque(maxlen=keep)
        self.block_to_notify: deque[float] = deque(maxlen=keep)

    def record_fanout(self, seconds: float, connections: int) -> None:
        self.fanout.append((seconds, connections))

    def record_block_to_notify(self, seconds: float) -> None:
        self.block_to_notify.append(seconds)

    def snapshot(self) -> dict[str, Any]:
        durations = [d for d, _ in self.fanout]
        return {
            "notify_fanout_last_s": durations[-1] if durations else None,
            "notify_fanout_max_s": max(durations) if durations else None,
            "notify_fanout_last_connections": self.fanout[-1][1] if self.fanout else 0,
            "block_to_first_notify_last_s": self.block_to_notify[-1] if self.block_to_notify else None,
            "block_to_first_notify_max_s": max(self.block_to_notify) if self.block_to_notify else None,
        }


def port_stats(ports: list[PortConfig], counters: dict[int, Counters], protocols: Iterable[Any]) -> list[dict]:
    rows: dict[int, dict[str, Any]] = {}
    for port in ports:
        row = {"port": port.port, "name": port.name or str(port.port), "connections": 0, "subscribed": 0,
               "workers": 0, "farm_proxies": 0, "start_difficulty": port.start_difficulty,
               "min_difficulty": port.min_difficulty, "max_difficulty": port.max_difficulty}
        row.update(counters.get(id(port), Counters()).snapshot())
        rows[id(port)] = row
    for proto in protocols:
        session = proto.session
        row = rows.get(id(proto.port))
        if session is None or row is None:
            continue
        row["connections"] += 1
        row["subscribed"] += session.subscribed
        row["workers"] += len(session.workers)
        row["farm_proxies"] += session.farm_proxy
    return list(rows.values())


def port_totals(ports: list[dict[str, Any]]) -> dict[str, Any]:
    """Accepted, accepted difficulty, blocks and rejects by reason, summed over port rows."""
    totals: dict[str, Any] = {"accepted": 0, "accepted_difficulty": 0.0, "blocks": 0, "rejected": {}}
    for row in ports:
        totals["accepted"] += row["accepted"]
        totals["accepted_difficulty"] += row["accepted_difficulty"]
        totals["blocks"] += row["blocks"]
        for key, value in row["rejected"].items():
            totals["rejected"][key] = totals["rejected"].get(key, 0) + value
    return totals


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
