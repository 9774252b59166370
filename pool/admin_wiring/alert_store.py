"""The alert monitor's memory in Redis: what it already said (one hash per kind of the rules' state)
and the outbox of alerts a target took but has not been through with, under the pool's hash tag so
every key is in one slot (a Redis Cluster runs it as one pipeline to one node)."""

from __future__ import annotations

from collections.abc import Callable

from pool.admin.alerts import Changes, StateMap
from pool.shares.redis_conn import RedisClient, text

KINDS = ("seen", "offline", "dropped", "blocks", "down", "meta")
FIELDS_PER_COMMAND = 1000


class RedisAlertStore:
    def __init__(self, client: Callable[[], RedisClient], tag: str, max_outbox: Callable[[], int]) -> None:
        self._client = client
        self.prefix = f"{tag}:alerts"
        self.max_outbox = max_outbox

    def key(self, kind: str) -> str:
        return f"{self.prefix}:{kind}"

    @property
    def outbox(self) -> str:
        return f"{self.prefix}:outbox"

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
