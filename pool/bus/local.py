"""This process's NodeSnapshot, and the control actions it runs on itself.

`local_snapshot(...)` is what every process publishes to Redis and what the admin adapters merge;
`LocalActions` runs a control operation (kick, reconnect, ban, port difficulty, reload) on this
process's stratum server, whether the request came from this process's admin API or another's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from pool.admin.interfaces import ReloadResult
from pool.cluster.snapshot import BanRow, ConnRow, NodeSnapshot
from pool.shares.ledger import Ledger
from pool.stratum.server import StratumServer

log = logging.getLogger("geostratum.admin")


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """Who this process is, as its snapshots and control replies name it."""

    node: str
    worker_index: int
    started_at: float


def local_snapshot(me: Identity, server: StratumServer, ledger: Ledger) -> NodeSnapshot:
    rows = []
    for row in server.workers():
        rows.append(ConnRow(
            worker=row["worker"], account=row["account"], port=row["port"], address=row["peer"],
            connected_at=row["connected_at"], difficulty=float(row["difficulty"]), user_agent=row["user_agent"],
            firmware=row["firmware"], country=row["country"], subdivision=row["subdivision"],
            accepted=row["accepted"], accepted_difficulty=row["accepted_difficulty"], rejected=row["rejected"],
            last_share_at=row["last_share_at"], best_difficulty=row.get("best_difficulty", 0.0)))
    bans = [BanRow(target=b.target, reason=b.reason, created_at=b.created_at, until=b.until)
            for b in server.list_bans()]
    return NodeSnapshot(node=me.node, worker_index=me.worker_index, at=time.time(), started_at=me.started_at,
                        stratum=server.snapshot(), ledger=ledger.snapshot(), rows=rows, bans=bans)


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

    def __init__(self, node: str, server: StratumServer, reload: Callable[[], Awaitable[ReloadResult]]) -> None:
        self.node = node
        self.server = server
        self.reload = reload

    async def apply(self, op: ControlOp) -> ControlReply:
        try:
            count, detail = await self._run(op.op, op.args)
        except (ValueError, KeyError, TypeError) as exc:
            return ControlReply(id=op.id, node=self.node, ok=False, error=str(exc)[:200])
        except Exception as exc:  # e.g. Rejected from a reload without a config file; never a crash
            log.warning("control %s failed: %r", op.op, exc)
            return ControlReply(id=op.id, node=self.node, ok=False, error=str(exc)[:200] or type(exc).__name__)
        return ControlReply(id=op.id, node=self.node, ok=True, count=count, detail=detail)

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
            result = await self.reload()
            if not result.ok:
                raise ValueError(result.error)
            return len(result.applied), {"applied": result.applied, "requires_restart": result.requires_restart}
        raise ValueError(f"unknown control operation {name!r}")
