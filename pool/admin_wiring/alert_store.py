"""The alert monitor's memory in Redis: what it already said (one hash per kind of the rules' state),
the outbox of alerts a target took but has not been through with, and the lease that lets one
monitor of the pool's hosts run at a time; under the pool's hash tag, so every key is in one slot (a
Redis Cluster runs a pipeline of them on one node)."""

from __future__ import annotations

from collections.abc import Callable

from pool.admin.alerts import Changes, StateMap
from pool.shares import lua
from pool.shares.redis_conn import RedisClient, Script, text

KINDS = ("seen", "offline", "dropped", "blocks", "down", "meta")
FIELDS_PER_COMMAND = 1000


class RedisAlertStore:
    def __init__(self, client: Callable[[], RedisClient], tag: str, max_outbox: Callable[[], int]) -> None:
        self._client = client
        self.prefix = f"{tag}:alerts"
        self.max_outbox = max_outbox
        self._renew = Script(lua.LEASE_RENEW)
        self._release = Script(lua.LEASE_RELEASE)

    def key(self, kind: str) -> str:
        return f"{self.prefix}:{kind}"

    @property
    def outbox(self) -> str:
        return f"{self.prefix}:outbox"

    @property
    def lease(self) -> str:
        return f"{self.prefix}:monitor"

    async def claim(self, token: str, ttl_ms: int) -> bool:
        client = self._client()
        if await client.set(self.lease, token, nx=True, px=ttl_ms):
            return True
        return bool(await self._renew(client, [self.lease], [token, ttl_ms]))

    async def release(self, token: str) -> None:
        await self._release(self._client(), [self.lease], [token])

    async def load(self) -> tuple[StateMap, list[bytes]]:
        async with self._client().pipeline(transaction=False) as pipe:
            for kind in KINDS:
                pipe.hgetall(self.key(kind))
            pipe.lrange(self.outbox, 0, -1)
            replies = await pipe.execute()
        state = {kind: {text(k): text(v) for k, v in raw.items()} for kind, raw in zip(KINDS, replies, strict=False)}
        return state, [entry.encode() if isinstance(entry, str) else bytes(entry) for entry in replies[-1]]

    async def save(self, changes: Changes, outbox: list[bytes]) -> None:
        async with self._client().pipeline(transaction=False) as pipe:
            for kind, (sets, gone) in changes.items():
                items = list(sets.items())
                for i in range(0, len(items), FIELDS_PER_COMMAND):
                    pipe.hset(self.key(kind), mapping=dict(items[i:i + FIELDS_PER_COMMAND]))
                for i in range(0, len(gone), FIELDS_PER_COMMAND):
                    pipe.hdel(self.key(kind), *gone[i:i + FIELDS_PER_COMMAND])
            if outbox:
                pipe.rpush(self.outbox, *outbox)
                pipe.ltrim(self.outbox, -max(1, self.max_outbox()), -1)
            await pipe.execute()

    async def delivered(self, entry: bytes) -> None:
        await self._client().lrem(self.outbox, 1, entry)
