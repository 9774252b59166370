"""PoolControl over the real pool: each action runs on this process and is sent to every other
worker process through Redis (pool.bus.link); without Redis it still runs here."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import msgspec

from pool.admin.interfaces import (
    BanEntry,
    BanRequest,
    PortDifficulty,
    PortDifficultyUpdate,
    ReconnectRequest,
    Rejected,
    ReloadResult,
)
from pool.admin_wiring.views import PoolViews
from pool.bus.link import Broadcast
from pool.bus.local import ControlOp
from pool.cluster.snapshot import BanRow

if TYPE_CHECKING:
    from pool.stratum.server import StratumServer

log = logging.getLogger("geostratum.admin")


def _normalise(target: str) -> str:
    network = ipaddress.ip_network(target, strict=False)
    return str(network.network_address) if network.num_addresses == 1 else str(network)


class PoolControlAdapter:
    def __init__(self, server: StratumServer, views: PoolViews, reload: Callable[[], Awaitable[ReloadResult]]) -> None:
        self.server = server
        self.views = views
        self.link = views.link
        self.reload = reload

    async def _everywhere(self, op: str, args: dict) -> tuple[int, Broadcast, str]:
        """Run here, then on every other process: (local count, their replies, local error)."""
        local = await self.link.actions.apply(ControlOp(id="local", op=op, args=args, origin=self.link.node))
        if not local.ok:
            return 0, Broadcast(replies=[], asked=0, redis_ok=True), local.error
        sent = await self.link.broadcast(op, args)
        note = sent.note()
        if note:
            log.warning("admin %s: %s", op, note)
        return local.count, sent, local.error

    # -- bans -----------------------------------------------------------------------------------

    async def bans(self) -> list[BanEntry]:
        now = time.time()
        admin_targets = await self._admin_ban_targets()
        entries: dict[str, BanEntry] = {}
        for node in await self.views.nodes():
            for ban in node.bans:
                if (ban.until and ban.until <= now) or ban.target in entries:
                    continue
                entries[ban.target] = BanEntry(
                    target=ban.target, reason=ban.reason, created_at=ban.created_at,
                    expires_at=ban.until or None, source="admin" if ban.target in admin_targets else "auto")
        return sorted(entries.values(), key=lambda b: b.created_at)

    async def _admin_ban_targets(self) -> set[str]:
        try:
            fields = await self.link.ledger.client.hkeys(self.link.keys.bans)
        except Exception:
            return set()
        return {f.decode() if isinstance(f, bytes) else f for f in fields}

    async def add_ban(self, ban: BanRequest) -> BanEntry:
        target = _normalise(ban.target)
        seconds = float(ban.duration_seconds or 0)
        reason = ban.reason or "admin"
        _, sent, error = await self._everywhere("ban", {"target": target, "seconds": seconds, "reason": reason})
        if error:
            raise Rejected(error, 400)
        entry = next(b for b in self.server.list_bans() if b.target == target)
        remembered = await self.link.remember_ban(BanRow(target=target, reason=reason,
                                                         created_at=entry.created_at, until=entry.until))
        note = sent.note() or ("" if remembered else "not saved in Redis: a restarted worker will not have it")
        return BanEntry(target=target, reason=f"{reason} [{note}]" if note else reason,
                        created_at=entry.created_at, expires_at=entry.until or None, source="admin")

    async def remove_ban(self, target: str) -> bool:
        target = _normalise(target)
        local, sent, error = await self._everywhere("unban", {"target": target})
        if error:
            raise Rejected(error, 400)
        forgotten = await self.link.forget_ban(target)
        return bool(local or forgotten or any(r.ok and r.count for r in sent.replies))

    # -- workers --------------------------------------------------------------------------------

    async def kick(self, worker: str, reason: str) -> int:
        local, sent, _ = await self._everywhere("kick", {"worker": worker, "reason": reason})
        return local + sum(r.count for r in sent.replies if r.ok)

    async def reconnect(self, worker: str, request: ReconnectRequest) -> int:
        args = {"worker": worker, "host": request.host, "port": request.port, "wait": request.wait_seconds}
        local, sent, _ = await self._everywhere("reconnect", args)
        return local + sum(r.count for r in sent.replies if r.ok)

    # -- ports ----------------------------------------------------------------------------------

    async def port_difficulties(self) -> list[PortDifficulty]:
        connections: dict[int, int] = {}
        for node in await self.views.nodes():
            for port in node.stratum.ports:
                connections[port.port] = connections.get(port.port, 0) + port.connections
        return [PortDifficulty(port=p.port, start_difficulty=p.start_difficulty, min_difficulty=p.min_difficulty,
                               max_difficulty=p.max_difficulty, connections=connections.get(p.port, 0))
                for p in self.server.config.ports]

    async def set_port_difficulty(self, port: int, update: PortDifficultyUpdate) -> PortDifficulty | None:
        if all(p.port != port for p in self.server.config.ports):
            return None
        given = {k: v for k, v in msgspec.structs.asdict(update).items() if v is not msgspec.UNSET}
        args = {"port": port, "start": given.get("start_difficulty"), "minimum": given.get("min_difficulty"),
                "maximum": given.get("max_difficulty")}
        _, sent, error = await self._everywhere("port_difficulty", args)
        if error:
            raise Rejected(error, 400)
        failed = [r for r in sent.replies if not r.ok]
        if failed:
            log.warning("port difficulty refused by %s: %s", failed[0].node, failed[0].error)
        return next(p for p in await self.port_difficulties() if p.port == port)

    # -- config ---------------------------------------------------------------------------------

    async def reload_config(self) -> ReloadResult:
        result = await self.reload()
        if not result.ok:
            return result
        sent = await self.link.broadcast("reload", {})
        failed = [r for r in sent.replies if not r.ok]
        notes = [sent.note()] if sent.note() else []
        notes += [f"worker {r.node} refused the reload: {r.error}" for r in failed]
        if notes:
            # ReloadResult has no field for this; `error` carries it while ok stays True.
            result.error = "; ".join(notes)
        return result
