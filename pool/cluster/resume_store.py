"""The Redis side of mining.subscribe resume across processes and hosts (pool.stratum.resume has the
interface and the uniqueness argument).

Keys, all under one hash tag ``{P:resume}`` so every script touches a single Redis Cluster slot:

- ``{P:resume}:t:<token>``           string ``<en1 hex>|<holder>|<held key>``, PX = the park's remaining time
- ``{P:resume}:held:<bits>:<prefix>`` hash ``<en1 hex>`` -> ``<holder>|<expiry ms, Redis clock>``: values of
  that extranonce1 prefix parked in the directory or adopted by a claimer; the hash itself carries a
  PX covering its longest entry, so an abandoned one disappears by itself.

Expiries are durations counted on the Redis clock (TIME inside the scripts), never a host's clock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pool.shares.redis_conn import RedisClient, Script, text
from pool.stratum.resume import DirectorySync, ParkedSession

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function extend(key, ms)
  local left = redis.call('PTTL', key)
  if left < ms then redis.call('PEXPIRE', key, ms) end
end
local function holder_of(v) return string.match(v, '^([^|]*)') end
"""

# KEYS: token key, held key (pairs). ARGV[1] holder; then en1 hex, ttl ms (pairs).
PUBLISH = _NOW + r"""
local n = 0
for i = 1, #KEYS, 2 do
  local en1, ttl = ARGV[i + 1], tonumber(ARGV[i + 2])
  if redis.call('SET', KEYS[i], en1 .. '|' .. ARGV[1] .. '|' .. KEYS[i + 1], 'NX', 'PX', ttl) then
    redis.call('HSET', KEYS[i + 1], en1, ARGV[1] .. '|' .. (now + ttl))
    extend(KEYS[i + 1], ttl)
    n = n + 1
  end
end
return n
"""

# KEYS[1] token key. ARGV[1] claimer, ARGV[2] loan ms. -> nil or {en1 hex, remaining park ms}
CLAIM = _NOW + r"""
local entry = redis.call('GET', KEYS[1])
if not entry then return false end
local left = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
local en1, _, held = string.match(entry, '^([^|]*)|([^|]*)|(.*)$')
local loan = tonumber(ARGV[2])
redis.call('HSET', held, en1, ARGV[1] .. '|' .. (now + loan))
extend(held, loan)
return {en1, left}
"""

# KEYS[1] the caller's own held key. ARGV: holder, loan ms, settle count, then settle triples
# (token key or "", en1 hex, held key), then hold pairs (en1 hex, held key).
# -> the en1 hex values held in KEYS[1] (expired ones are dropped on the way).
SYNC = _NOW + r"""
local me, loan, ns = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local i = 4
for _ = 1, ns do
  local tkey, en1, held = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  if tkey ~= '' then
    local entry = redis.call('GET', tkey)
    if entry and string.match(entry, '^[^|]*|([^|]*)|') == me then redis.call('DEL', tkey) end
  end
  local h = redis.call('HGET', held, en1)
  if h and holder_of(h) == me then redis.call('HDEL', held, en1) end
end
while i < #ARGV do
  local en1, held = ARGV[i], ARGV[i + 1]
  i = i + 2
  local h = redis.call('HGET', held, en1)
  if not h or holder_of(h) == me then
    redis.call('HSET', held, en1, me .. '|' .. (now + loan))
    extend(held, loan)
  end
end
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for j = 1, #all, 2 do
  local expiry = tonumber(string.match(all[j + 1], '|(%d+)$'))
  if expiry and expiry > now then out[#out + 1] = all[j] else redis.call('HDEL', KEYS[1], all[j]) end
end
return out
"""

_HOLDER = re.compile(r"^[A-Za-z0-9._:/-]{1,255}$")


class RedisResumeDirectory:
    """pool.stratum.resume.ResumeDirectory on Redis (single, Sentinel or Cluster).

    `holder` names this process in the held records (unique across hosts, e.g. PoolApp.node);
    `prefix_bits` must match the extranonce allocator's; `loan_seconds` is how long a claimed value
    stays reserved for this process without a renewal."""

    def __init__(self, client: RedisClient, holder: str, *, key_prefix: str = "gs", prefix_bits: int = 8,
                 loan_seconds: float = 120.0) -> None:
        if not _HOLDER.match(holder):
            raise ValueError(f"holder must be 1-255 characters of [A-Za-z0-9._:/-], got {holder!r}")
        if not 0 <= prefix_bits <= 24:
            raise ValueError(f"prefix_bits must be 0..24, got {prefix_bits}")
        if loan_seconds <= 0:
            raise ValueError(f"loan_seconds must be > 0, got {loan_seconds}")
        self.client = client
        self.holder = holder
        self.prefix_bits = prefix_bits
        self.loan_ms = int(loan_seconds * 1000)
        self.tag = f"{{{key_prefix}:resume}}"
        self._publish = Script(PUBLISH)
        self._claim = Script(CLAIM)
        self._sync = Script(SYNC)

    def token_key(self, token: str) -> str:
        return f"{self.tag}:t:{token}"

    def held_key(self, prefix: int) -> str:
        return f"{self.tag}:held:{self.prefix_bits}:{prefix}"

    def held_key_of(self, extranonce1: bytes) -> str:
        return self.held_key(int.from_bytes(extranonce1, "big") >> (32 - self.prefix_bits))

    async def publish(self, sessions: Sequence[ParkedSession], now: float) -> int:
        keys: list[str] = []
        args: list[str | int] = [self.holder]
        for parked in sessions:
            ttl_ms = int((parked.expires - now) * 1000)
            if ttl_ms <= 0:
                continue
            keys += [self.token_key(parked.token), self.held_key_of(parked.extranonce1)]
            args += [parked.extranonce1.hex(), ttl_ms]
        if not keys:
            return 0
        return int(await self._publish(self.client, keys, args))

    async def claim(self, token: str, now: float) -> ParkedSession | None:
        answer = await self._claim(self.client, [self.token_key(token)], [self.holder, self.loan_ms])
        if not answer:
            return None
        extranonce1 = bytes.fromhex(text(answer[0]))
        return ParkedSession(token, extranonce1, now + max(int(answer[1]), 0) / 1000)

    async def sync(self, request: DirectorySync, now: float) -> list[bytes]:
        args: list[str | int] = [self.holder, self.loan_ms, len(request.settle)]
        for parked in request.settle:
            args += [self.token_key(parked.token) if parked.token else "", parked.extranonce1.hex(),
                     self.held_key_of(parked.extranonce1)]
        for extranonce1 in request.hold:
            args += [extranonce1.hex(), self.held_key_of(extranonce1)]
        values = await self._sync(self.client, [self.held_key(request.prefix)], args)
        return [bytes.fromhex(text(v)) for v in values]

    async def reserved(self, prefix: int, now: float) -> list[bytes]:
        """The values of `prefix` held anywhere (read right after leasing a prefix)."""
        return await self.sync(DirectorySync(prefix), now)
