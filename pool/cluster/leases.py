"""Extranonce1 prefix leases: every worker process on every host gets a prefix nobody else holds.

A lease is a Redis key ``{P:lease}:p:<value>`` set with NX and a TTL, owned by a random token;
it is renewed in the background (compare-and-expire) and released on stop (compare-and-delete).
If a renewal finds the key gone or taken (Redis lost it, the process stalled past the TTL), the
lease is marked lost and `on_lost` is called: the caller must stop handing out work with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
import zlib
from collections.abc import Callable

from redis.exceptions import RedisError

from pool.aio import cancel_and_wait
from pool.shares import lua
from pool.shares.keys import Keys
from pool.shares.redis_conn import RedisClient, Script, text

log = logging.getLogger(__name__)


class LeaseError(Exception):
    pass


class PrefixLease:
    def __init__(self, client: RedisClient, keys: Keys, value: int, size_bytes: int, token: str,
                 ttl_s: float, on_lost: Callable[[PrefixLease], None] | None) -> None:
        self.client = client
        self.keys = keys
        self.value = value
        self.size_bytes = size_bytes
        self.token = token
        self.ttl_s = ttl_s
        self.lost = False
        self._on_lost = on_lost
        self._renew = Script(lua.LEASE_RENEW)
        self._release = Script(lua.LEASE_RELEASE)
        self._task: asyncio.Task[None] | None = None

    @property
    def prefix(self) -> bytes:
        """The prefix bytes to put in front of every extranonce1 of this process."""
        return self.value.to_bytes(self.size_bytes, "big")

    @property
    def key(self) -> str:
        return self.keys.lease_key(self.value)

    async def renew(self) -> bool:
        ok = await self._renew(self.client, [self.key], [self.token, int(self.ttl_s * 1000)])
        if not ok and not self.lost:
            self.lost = True
            log.error("extranonce1 prefix lease %d lost (key %s expired or was taken)", self.value, self.key)
            if self._on_lost is not None:
                self._on_lost(self)
        return bool(ok)

    def start_renewing(self, every_s: float) -> None:
        async def loop() -> None:
            while not self.lost:
                await asyncio.sleep(every_s)
                try:
                    await self.renew()
                except (RedisError, OSError) as exc:  # keep trying until the TTL runs out
                    log.warning("lease %d renewal failed: %r", self.value, exc)

        self._task = asyncio.create_task(loop(), name=f"prefix-lease-{self.value}")

    async def release(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if not self.lost:
            with contextlib.suppress(RedisError, OSError):
                await self._release(self.client, [self.key], [self.token])
        self.lost = True


async def lease_prefix(client: RedisClient, owner: str, *, key_prefix: str = "gs", size_bytes: int = 1,
                       ttl_s: float = 30.0, renew_every_s: float | None = None,
                       on_lost: Callable[[PrefixLease], None] | None = None) -> PrefixLease:
    """Lease a free prefix of `size_bytes` bytes for `owner` (e.g. "host-a/worker-3").

    The search starts at a point derived from the owner so a restarting process tends to get its
    old prefix back. Raises LeaseError when every prefix is taken, RedisError when Redis is down
    (the app then falls back to the configured node id)."""
    if size_bytes not in (1, 2, 3):
        raise ValueError(f"size_bytes must be 1, 2 or 3, got {size_bytes}")
    if ttl_s <= 0:
        raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
    keys = Keys(key_prefix, 1)
    space = 1 << (8 * size_bytes)
    start = zlib.crc32(owner.encode()) % space
    token = f"{owner}|{socket.gethostname()}|{uuid.uuid4().hex}"
    ttl_ms = int(ttl_s * 1000)
    for i in range(space):
        value = (start + i) % space
        if await client.set(keys.lease_key(value), token, nx=True, px=ttl_ms):
            lease = PrefixLease(client, keys, value, size_bytes, token, ttl_s, on_lost)
            lease.start_renewing(renew_every_s if renew_every_s is not None else ttl_s / 3)
            return lease
    raise LeaseError(f"all {space} extranonce1 prefixes of {size_bytes} byte(s) are leased")


async def lease_holders(client: RedisClient, key_prefix: str = "gs", size_bytes: int = 1) -> dict[int, str]:
    """Who holds which prefix (for the admin), scanning the small lease space."""
    keys = Keys(key_prefix, 1)
    space = 1 << (8 * size_bytes)
    out: dict[int, str] = {}
    names = [keys.lease_key(v) for v in range(space)]
    for i in range(0, space, 1000):
        values = await client.mget(names[i : i + 1000])
        for j, value in enumerate(values):
            if value is not None:
                out[i + j] = text(value)
    return out
