"""One process's stratum view as plain data, and the control actions it runs on itself.

`local_snapshot(parts)` is what every process publishes to Redis and what the admin adapters merge;
`LocalActions` runs a control operation (kick, reconnect, ban, port difficulty, reload) on this
process's stratum server, whether the request came from this process's admin API or another's.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import msgspec

from pool.admin.interfaces import HistogramSnapshot
from pool.admin.metrics import LatencyHistogram
from pool.stratum.stats import Timings

if TYPE_CHECKING:
    from pool.admin_wiring.parts import PoolParts

log = logging.getLogger("geostratum.admin")


class ObservedTimings(Timings):
    """The server's Timings, also feeding cumulative histograms (Timings keeps only recent values)."""

    def __init__(self, keep: int = 64) -> None:
        super().__init__(keep)
        self.fanout_histogram = LatencyHistogram()
        self.block_to_notify_histogram = LatencyHistogram()

    def record_fanout(self, seconds: float, connections: int) -> None:
        super().record_fanout(seconds, connections)
        self.fanout_histogram.observe(seconds)

    def record_block_to_notify(self, seconds: float) -> None:
        super().record_block_to_notify(seconds)
        self.block_to_notify_histogram.observe(seconds)


class ConnRow(msgspec.Struct, array_like=True):
    """One authorized worker on one connection."""

    worker: str
    account: str
    port: int
    address: str
    connected_at: float
    difficulty: float
    user_agent: str
    firmware: str
    country: str
    subdivision: str
    accepted: int
    accepted_difficulty: float
    rejected: dict[str, int]
    last_share_at: float
    best_difficulty: float = 0.0        # the hardest accepted share on this connection


class PortRow(msgspec.Struct, array_like=True):
    port: int
    connections: int
    accepted: int
    accepted_difficulty: float
    blocks: int
    rejected: dict[str, int]            # stratum reject keys ("stale", "job_not_found", ...)
    start_difficulty: float
    min_difficulty: float
    max_difficulty: float


class BanRow(msgspec.Struct, array_like=True):
    target: str
    reason: str
    created_at: float
    until: float                        # 0 = until removed


# Resume claims through the shared directory: resumed, not found (fresh extranonce1), failed (timeout
# or Redis error: fresh extranonce1 too).
RESUME_OUTCOMES = ("claimed", "missed", "failed")


class NodeSnapshot(msgspec.Struct, kw_only=True):
    """Everything the admin views need from one process, small enough to publish every few seconds."""

    node: str
    worker_index: int
    at: float
    started_at: float
    connections: int                    # open sockets (sessions or not)
    ports: list[PortRow]
    rows: list[ConnRow]
    bans: list[BanRow]
    fanout: HistogramSnapshot
    block_to_notify: HistogramSnapshot
    ledger_lag_seconds: float = 0.0
    ledger_pending_shares: int = 0
    journal_bytes: int = 0
    journal_batches: int = 0
    redis_up: bool = False
    resumes: dict[str, int] = msgspec.field(default_factory=dict)   # mining.subscribe resume outcomes

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


def install_timings(parts: PoolParts) -> ObservedTimings:
    server = parts.server
    assert server is not None
    if not isinstance(server.timings, ObservedTimings):
        observed = ObservedTimings()
        observed.fanout.extend(server.timings.fanout)
        observed.block_to_notify.extend(server.timings.block_to_notify)
        server.timings = observed
    return server.timings


def local_snapshot(parts: PoolParts) -> NodeSnapshot:
    server, ledger = parts.server, parts.ledger
    assert server is not None
    timings = install_timings(parts)
    stats = server.stats()
    rows = []
    for row in server.workers():
        rows.append(ConnRow(
            worker=row["worker"], account=row["account"], port=row["port"], address=row["peer"],
            connected_at=row["connected_at"], difficulty=float(row["difficulty"]), user_agent=row["user_agent"],
            firmware=row["firmware"], country=row["country"], subdivision=row["subdivision"],
            accepted=row["accepted"], accepted_difficulty=row["accepted_difficulty"], rejected=row["rejected"],
            last_share_at=row["last_share_at"], best_difficulty=row.get("best_difficulty", 0.0)))
    ports = [PortRow(port=p["port"], connections=p["connections"], accepted=p["accepted"],
                     accepted_difficulty=p["accepted_difficulty"], blocks=p["blocks"], rejected=p["rejected"],
                     start_difficulty=p["start_difficulty"], min_difficulty=p["min_difficulty"],
                     max_difficulty=p["max_difficulty"]) for p in stats["ports"]]
    bans = [BanRow(target=b.target, reason=b.reason, created_at=b.created_at, until=b.until)
            for b in server.list_bans()]
    snapshot = NodeSnapshot(
        node=parts.node, worker_index=parts.worker_index, at=time.time(), started_at=parts.started_at,
        connections=stats["totals"]["connections"], ports=ports, rows=rows, bans=bans,
        fanout=timings.fanout_histogram.snapshot(), block_to_notify=timings.block_to_notify_histogram.snapshot())
    resume = stats["extranonce"].get("resume")
    if resume:
        snapshot.resumes = {outcome: int(resume.get(outcome, 0)) for outcome in RESUME_OUTCOMES}
    if ledger is not None:
        ls = ledger.stats()
        snapshot.ledger_lag_seconds = ls.lag_s
        snapshot.ledger_pending_shares = ls.pending_shares + ls.queued_shares
        snapshot.journal_bytes = ls.journal_bytes
        snapshot.journal_batches = ls.queued_batches
        snapshot.redis_up = ls.redis_up
    return snapshot


# ---------------------------------------------------------------------------------------------
# control operations
# ---------------------------------------------------------------------------------------------


class ControlOp(msgspec.Struct, kw_only=True):
    id: str
    op: str                             # "kick", "reconnect", "ban", "unban", "port_difficulty", "reload"
    args: dict[str, Any]
    origin: str


class ControlReply(msgspec.Struct, kw_only=True):
    id: str
    node: str
    ok: bool
    count: int = 0                      # connections reached, bans removed, ...
    error: str = ""
    detail: dict[str, Any] = msgspec.field(default_factory=dict)


class LocalActions:
    """Runs control operations on this process's stratum server (and config, for reload)."""

    def __init__(self, parts: PoolParts) -> None:
        self.parts = parts

    @property
    def server(self) -> Any:
        return self.parts.server

    async def apply(self, op: ControlOp) -> ControlReply:
        try:
            count, detail = await self._run(op.op, op.args)
        except (ValueError, KeyError, TypeError) as exc:
            return ControlReply(id=op.id, node=self.parts.node, ok=False, error=str(exc)[:200])
        except Exception as exc:  # e.g. Rejected from a reload without a config file; never a crash
            log.warning("control %s failed: %r", op.op, exc)
            return ControlReply(id=op.id, node=self.parts.node, ok=False, error=str(exc)[:200] or type(exc).__name__)
        return ControlReply(id=op.id, node=self.parts.node, ok=True, count=count, detail=detail)

    async def _run(self, name: str, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        server = self.server
        if name == "kick":
            if args.get("reason"):
                server.show_message(args["worker"], args["reason"])
            return server.kick(args["worker"]), {}
        if name == "reconnect":
            return server.reconnect(args["worker"], args.get("host") or None, args.get("port") or None,
                                    int(args.get("wait", 0))), {}
        if name == "ban":
            server.add_ban(args["target"], float(args["seconds"]), args["reason"])
            return 1, {}
        if name == "unban":
            return int(server.remove_ban(args["target"])), {}
        if name == "port_difficulty":
            port = server.set_port_difficulty(int(args["port"]), start=args.get("start"),
                                              minimum=args.get("minimum"), maximum=args.get("maximum"))
            return 1, {"start": port.start_difficulty, "min": port.min_difficulty, "max": port.max_difficulty}
        if name == "reload":
            from pool.admin_wiring.reload import reload_app

            result = await reload_app(self.parts)
            if not result.ok:
                raise ValueError(result.error)
            return len(result.applied), {"applied": result.applied, "requires_restart": result.requires_restart}
        raise ValueError(f"unknown control operation {name!r}")
