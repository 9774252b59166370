"""What connects the worker processes (on one host or many) for the admin API in worker 0.

Every process publishes a NodeSnapshot every [admin] snapshot_interval_seconds and listens for control
operations on its own Redis list. Key layout (one hash tag, so one Redis Cluster slot):

    P:{P:adm}:snap:<node>   string  msgpack NodeSnapshot, expires after [admin] snapshot_ttl_seconds
    P:{P:adm}:nodes         zset    node -> time of its last snapshot
    P:{P:adm}:ctl:<node>    list    ControlOps for that node (BLPOP'd by it)
    P:{P:adm}:rep:<id>      list    ControlReplies to one operation
    P:{P:adm}:bans          hash    target -> BanRow: bans added through the admin API, applied by
                                    every process at start (so a restarted worker keeps them)

Without Redis everything still works for the local process; `broadcast` says who was not reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid

import msgspec
from redis.exceptions import RedisError

from pool.aio import cancel_and_wait
from pool.bus.local import ControlOp, ControlReply, Identity, LocalActions, local_snapshot
from pool.cluster.snapshot import BanRow, NodeSnapshot
from pool.config import Config
from pool.config.admin import AdminConfig
from pool.shares.ledger import Ledger
from pool.stratum.server import StratumServer

log = logging.getLogger("geostratum.admin")

CONTROL_POLL_SECONDS = 1            # BLPOP timeout of the control listener
REPLY_TTL = 30
INDEX_KEEP_SECONDS = 3600           # index entries older than this are pruned
REDIS_ERRORS = (RedisError, OSError)

_encode = msgspec.msgpack.Encoder().encode
_snapshot = msgspec.msgpack.Decoder(NodeSnapshot)
_op = msgspec.msgpack.Decoder(ControlOp)
_reply = msgspec.msgpack.Decoder(ControlReply)
_ban = msgspec.msgpack.Decoder(BanRow)


class ClusterKeys:
    def __init__(self, prefix: str) -> None:
        self.base = f"{prefix}:{{{prefix}:adm}}"
        self.nodes = f"{self.base}:nodes"
        self.bans = f"{self.base}:bans"

    def snapshot(self, node: str) -> str:
        return f"{self.base}:snap:{node}"

    def control(self, node: str) -> str:
        return f"{self.base}:ctl:{node}"

    def reply(self, op_id: str) -> str:
        return f"{self.base}:rep:{op_id}"


class Broadcast(msgspec.Struct, kw_only=True):
    """What the other processes answered to one control operation."""

    replies: list[ControlReply]
    asked: int                          # processes the operation was sent to
    redis_ok: bool                      # False: nobody else could be asked
    timeout: float = 0.0                # seconds the replies were waited for

    @property
    def missing(self) -> int:
        return self.asked - len(self.replies)

    def note(self) -> str:
        """'' when every process was reached, else why not (for the operator)."""
        if not self.redis_ok:
            return "applied to this process only: Redis is unreachable, other worker processes were not told"
        if self.missing:
            return f"{self.missing} other worker process(es) did not answer within {self.timeout:g} s"
        return ""


class ClusterLink:
    """Snapshot publisher and control listener of one process (every pool process runs one)."""

    @property
    def admin(self) -> AdminConfig:
        return self.config.admin   # read live: a config reload applies at the next round

    def __init__(self, config: Config, me: Identity, server: StratumServer, ledger: Ledger,
                 actions: LocalActions) -> None:
        self.config = config
        self.me = me
        self.server = server
        self.ledger = ledger
        self.keys = ClusterKeys(config.redis.key_prefix)
        self.actions = actions
        self._tasks: list[asyncio.Task[None]] = []
        self._peers_cache: tuple[float, list[NodeSnapshot]] = (0.0, [])
        self.last_publish_at = 0.0
        self.last_error = ""

    @property
    def node(self) -> str:
        return self.me.node

    def local(self) -> NodeSnapshot:
        """This process's snapshot, as it publishes it."""
        return local_snapshot(self.me, self.server, self.ledger)

    def _client(self):  # type: ignore[no-untyped-def]
        return self.ledger.client

    async def start(self) -> None:
        await self._restore_bans()
        self._tasks = [asyncio.create_task(self._publish_loop(), name=f"cluster-publish-{self.node}"),
                       asyncio.create_task(self._listen_loop(), name=f"cluster-control-{self.node}")]

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks, absorb_errors=True)
        self._tasks = []
        with contextlib.suppress(*REDIS_ERRORS):
            client = self._client()
            async with client.pipeline(transaction=False) as pipe:
                pipe.delete(self.keys.snapshot(self.node))
                pipe.zrem(self.keys.nodes, self.node)
                await pipe.execute()

    # -- snapshots ------------------------------------------------------------------------------

    async def publish(self) -> None:
        snapshot = self.local()
        client = self._client()
        async with client.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.snapshot(self.node), _encode(snapshot), ex=math.ceil(self.admin.snapshot_ttl_seconds))
            pipe.zadd(self.keys.nodes, {self.node: snapshot.at})
            pipe.zremrangebyscore(self.keys.nodes, "-inf", snapshot.at - INDEX_KEEP_SECONDS)
            await pipe.execute()
        self.last_publish_at = snapshot.at

    async def _publish_loop(self) -> None:
        while True:
            try:
                await self.publish()
                self.last_error = ""
            except REDIS_ERRORS as exc:
                self.last_error = f"snapshot not published: {exc}"
                log.debug("cluster: %s", self.last_error)
            except Exception:  # a bug here must not stop the loop (or the pool)
                log.exception("cluster snapshot failed")
            await asyncio.sleep(self.admin.snapshot_interval_seconds)

    async def peers(self, max_age: float = 0.5) -> list[NodeSnapshot]:
        """Fresh snapshots of the other processes (cached for max_age seconds); [] without Redis."""
        cached_at, cached = self._peers_cache
        now = time.time()
        if now - cached_at < max_age:
            return cached
        try:
            client = self._client()
            alive_since = now - self.admin.snapshot_ttl_seconds
            names = [n.decode() if isinstance(n, bytes) else n
                     for n in await client.zrangebyscore(self.keys.nodes, alive_since, "+inf")]
            names = [n for n in names if n != self.node]
            blobs = await client.mget([self.keys.snapshot(n) for n in names]) if names else []
        except REDIS_ERRORS as exc:
            self.last_error = f"other worker processes not read: {exc}"
            return []
        if self.last_error.startswith("other worker"):
            self.last_error = ""
        out = []
        for blob in blobs:
            if blob is None:
                continue
            try:
                out.append(_snapshot.decode(blob))
            except msgspec.DecodeError:
                log.warning("cluster: undecodable snapshot (a different version?) ignored")
        self._peers_cache = (now, out)
        return out

    # -- control --------------------------------------------------------------------------------

    async def broadcast(self, op: str, args: dict) -> Broadcast:
        """Send an operation to every other live process and collect their replies."""
        peers = await self.peers(max_age=0.0)
        if not peers:
            # Either alone, or Redis is down (then peers() recorded why).
            try:
                await self._client().ping()
            except REDIS_ERRORS:
                return Broadcast(replies=[], asked=0, redis_ok=False)
            return Broadcast(replies=[], asked=0, redis_ok=True)
        message = ControlOp(id=uuid.uuid4().hex, op=op, args=args, origin=self.node)
        blob = _encode(message)
        reply_key = self.keys.reply(message.id)
        replies: list[ControlReply] = []
        waited = self.admin.control_timeout_seconds
        try:
            client = self._client()
            async with client.pipeline(transaction=False) as pipe:
                for peer in peers:
                    pipe.rpush(self.keys.control(peer.node), blob)
                    pipe.expire(self.keys.control(peer.node), math.ceil(self.admin.snapshot_ttl_seconds * 6))
                await pipe.execute()
            deadline = time.monotonic() + waited
            while len(replies) < len(peers):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                item = await client.blpop([reply_key], timeout=max(0.05, min(left, 1.0)))
                if item is not None:
                    replies.append(_reply.decode(item[1]))
            await client.delete(reply_key)
        except REDIS_ERRORS as exc:
            log.warning("cluster: control %s not delivered to the other processes: %s", op, exc)
            return Broadcast(replies=replies, asked=len(peers), redis_ok=False, timeout=waited)
        return Broadcast(replies=replies, asked=len(peers), redis_ok=True, timeout=waited)

    async def _listen_loop(self) -> None:
        key = self.keys.control(self.node)
        while True:
            try:
                item = await self._client().blpop([key], timeout=CONTROL_POLL_SECONDS)
            except REDIS_ERRORS as exc:
                self.last_error = f"control list not read: {exc}"
                await asyncio.sleep(CONTROL_POLL_SECONDS)
                continue
            if item is None:
                continue
            try:
                op = _op.decode(item[1])
            except msgspec.DecodeError:
                log.warning("cluster: undecodable control message ignored")
                continue
            reply = await self.actions.apply(op)
            log.info("cluster: %s from %s -> %s", op.op, op.origin, "ok" if reply.ok else reply.error)
            try:
                client = self._client()
                async with client.pipeline(transaction=False) as pipe:
                    pipe.rpush(self.keys.reply(op.id), _encode(reply))
                    pipe.expire(self.keys.reply(op.id), REPLY_TTL)
                    await pipe.execute()
            except REDIS_ERRORS as exc:
                log.warning("cluster: reply to %s lost: %s", op.op, exc)

    # -- admin bans survive restarts -------------------------------------------------------------

    async def remember_ban(self, ban: BanRow) -> bool:
        try:
            await self._client().hset(self.keys.bans, ban.target, _encode(ban))
        except REDIS_ERRORS:
            return False
        return True

    async def forget_ban(self, target: str) -> bool:
        try:
            return bool(await self._client().hdel(self.keys.bans, target))
        except REDIS_ERRORS:
            return False

    async def _restore_bans(self) -> None:
        try:
            raw = await self._client().hgetall(self.keys.bans)
        except REDIS_ERRORS as exc:
            log.warning("cluster: admin bans not restored (Redis: %s)", exc)
            return
        now = time.time()
        server = self.server
        expired = []
        for field, blob in raw.items():
            try:
                ban = _ban.decode(blob)
            except msgspec.DecodeError:
                continue
            if ban.until and ban.until <= now:
                expired.append(field)
                continue
            try:
                server.add_ban(ban.target, ban.until - now if ban.until else 0, ban.reason)
            except ValueError:
                expired.append(field)
        if expired:
            with contextlib.suppress(*REDIS_ERRORS):
                await self._client().hdel(self.keys.bans, *expired)
