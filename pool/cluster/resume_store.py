"""The Redis side of mining.subscribe resume across processes and hosts (pool.stratum.resume has the
interface and the uniqueness argument).

Keys, all under one hash tag ``{P:resume}`` so every script touches a single Redis Cluster slot:

- ``{P:resume}:t:<token>``           string ``<en1 hex>|<holder>|<held key>``, PX = the park's remaining time
- ``{P:resume}:held:<bits>:<prefix>`` hash ``<en1 hex>`` -> ``<holder>|<expiry ms, Redis clock>``: values of
  that extranonce1 prefix parked in the directory or adopted by a claimer; the hash itself carries a
  PX covering its longest entry, so an abandoned one disappears by itself.
- ``{P:resume}:live:<holder>``   hash ``<token>`` -> ``<en1 hex>``: the holder's working sessions; PX = the
  park time, renewed by every heartbeat (so it outlives a dead holder by exactly one park).
- ``{P:resume}:alive:<holder>``  string, PX = the holder timeout, set by every heartbeat.
- ``{P:resume}:holders``         zset holder -> time of its last heartbeat (whose live hashes to look in).
- ``{P:resume}:taken:<holder>``  set of the holder's live tokens another process took over (read and
  cleared by its next heartbeat).

Expiries are durations counted on the Redis clock (TIME inside the scripts), never a host's clock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pool.shares.redis_conn import RedisClient, Script, text
from pool.stratum.resume import DirectorySync, HeldElsewhere, LiveSession, ParkedSession

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function extend(key, ms)
  local left = redis.call('PTTL', key)
  if left < ms then redis.call('PEXPIRE', key, ms) end
end
local function holder_of(v) return string.match(v, '^([^|]*)') end
local function prefix_of(en1, bits) return math.floor(tonumber(en1, 16) / 2 ^ (32 - bits)) end
"""

# KEYS: token key, held key (pairs). ARGV[1] holder, ARGV[2] the holder's live key; then token, en1 hex,
# ttl ms (triples). A parked session is no longer live here.
PUBLISH = _NOW + r"""
local n = 0
for i = 1, #KEYS, 2 do
  local j = 3 + (i - 1) / 2 * 3
  local token, en1, ttl = ARGV[j], ARGV[j + 1], tonumber(ARGV[j + 2])
  redis.call('HDEL', ARGV[2], token)
  if redis.call('SET', KEYS[i], en1 .. '|' .. ARGV[1] .. '|' .. KEYS[i + 1], 'NX', 'PX', ttl) then
    redis.call('HSET', KEYS[i + 1], en1, ARGV[1] .. '|' .. (now + ttl))
    extend(KEYS[i + 1], ttl)
    n = n + 1
  end
end
return n
"""

# KEYS[1] token key. ARGV: claimer, loan ms, token, tag, prefix bits, park ms.
# -> nil, {en1 hex, remaining park ms}, or {'', holder} (live on a holder whose heartbeat is fresh)
CLAIM = _NOW + r"""
local me, loan, token, tag, bits, park = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5]),
  tonumber(ARGV[6])
local entry = redis.call('GET', KEYS[1])
if not entry then
  for _, h in ipairs(redis.call('ZRANGE', tag .. ':holders', 0, -1)) do
    local live = tag .. ':live:' .. h
    local en1 = redis.call('HGET', live, token)
    if en1 then
      if h == me then return false end          -- its old connection is still open here
      if redis.call('EXISTS', tag .. ':alive:' .. h) == 1 then return {'', h} end
      redis.call('HDEL', live, token)
      redis.call('SADD', tag .. ':taken:' .. h, token)
      redis.call('PEXPIRE', tag .. ':taken:' .. h, park)
      local held = tag .. ':held:' .. bits .. ':' .. prefix_of(en1, bits)
      redis.call('HSET', held, en1, me .. '|' .. (now + loan))
      extend(held, loan)
      return {en1, park}
    end
  end
  return false
end
local left = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
local en1, _, held = string.match(entry, '^([^|]*)|([^|]*)|(.*)$')
redis.call('HSET', held, en1, me .. '|' .. (now + loan))
extend(held, loan)
return {en1, left}
"""

# KEYS[1] the caller's own held key. ARGV: holder, loan ms, settle count, tag, prefix bits, prefix,
# then settle triples (token key or "", en1 hex, held key), then hold pairs (en1 hex, held key).
# -> the en1 hex values held in KEYS[1] (expired ones are dropped on the way), and the values of that
# prefix still live on holders whose heartbeat stopped (dead, their miners may still resume).
SYNC = _NOW + r"""
local me, loan, ns = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local tag, bits, prefix = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local i = 7
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
for _, h in ipairs(redis.call('ZRANGE', tag .. ':holders', 0, -1)) do
  if h ~= me and redis.call('EXISTS', tag .. ':alive:' .. h) == 0 then
    for _, en1 in ipairs(redis.call('HVALS', tag .. ':live:' .. h)) do
      if prefix_of(en1, bits) == prefix then out[#out + 1] = en1 end
    end
  end
end
return out
"""

# KEYS[1] the holder's live key. ARGV: park ms, then token, en1 hex (pairs).
ANNOUNCE = r"""
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 0
"""

# KEYS: alive, live, holders, taken (all the caller's). ARGV: holder, holder timeout ms, park ms.
# -> the tokens other processes took over since the last heartbeat.
HEARTBEAT = _NOW + r"""
local me, alive_ms, park = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('SET', KEYS[1], '1', 'PX', alive_ms)
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], park) end
redis.call('ZADD', KEYS[3], now, me)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - park - alive_ms)
local taken = redis.call('SMEMBERS', KEYS[4])
if #taken > 0 then redis.call('DEL', KEYS[4]) end
return taken
"""

_HOLDER = re.compile(r"^[A-Za-z0-9._:/-]{1,255}$")


class RedisResumeDirectory:
    """pool.stratum.resume.ResumeDirectory on Redis (single, Sentinel or Cluster).

    `holder` names this process in the held records (unique across hosts, e.g. PoolApp.node);
    `prefix_bits` must match the extranonce allocator's; `loan_seconds` is how long a claimed value
    stays reserved for this process without a renewal; `park_seconds` how long a dead holder's live
    sessions stay resumable; `holder_timeout` how long a holder may miss heartbeats before it is
    taken for dead."""

    def __init__(self, client: RedisClient, holder: str, *, key_prefix: str = "gs", prefix_bits: int = 8,
                 loan_seconds: float = 120.0, park_seconds: float = 600.0, holder_timeout: float = 3.0) -> None:
        if not _HOLDER.match(holder):
            raise ValueError(f"holder must be 1-255 characters of [A-Za-z0-9._:/-], got {holder!r}")
        if not 0 <= prefix_bits <= 24:
            raise ValueError(f"prefix_bits must be 0..24, got {prefix_bits}")
        if loan_seconds <= 0:
            raise ValueError(f"loan_seconds must be > 0, got {loan_seconds}")
        if park_seconds <= 0 or holder_timeout <= 0:
            raise ValueError(f"park_seconds and holder_timeout must be > 0, got {park_seconds}, {holder_timeout}")
        self.client = client
        self.holder = holder
        self.prefix_bits = prefix_bits
        self.loan_ms = int(loan_seconds * 1000)
        self.park_ms = int(park_seconds * 1000)
        self.holder_timeout_ms = int(holder_timeout * 1000)
        self.tag = f"{{{key_prefix}:resume}}"
        self._publish = Script(PUBLISH)
        self._claim = Script(CLAIM)
        self._sync = Script(SYNC)
        self._announce = Script(ANNOUNCE)
        self._heartbeat = Script(HEARTBEAT)

    def token_key(self, token: str) -> str:
        return f"{self.tag}:t:{token}"

    def held_key(self, prefix: int) -> str:
        return f"{self.tag}:held:{self.prefix_bits}:{prefix}"

    def held_key_of(self, extranonce1: bytes) -> str:
        return self.held_key(int.from_bytes(extranonce1, "big") >> (32 - self.prefix_bits))

    def own_key(self, kind: str) -> str:
        """This holder's "live", "alive" or "taken" key."""
        return f"{self.tag}:{kind}:{self.holder}"

    async def publish(self, sessions: Sequence[ParkedSession], now: float) -> int:
        keys: list[str] = []
        args: list[str | int] = [self.holder, self.own_key("live")]
        for parked in sessions:
            ttl_ms = int((parked.expires - now) * 1000)
            if ttl_ms <= 0:
                continue
            keys += [self.token_key(parked.token), self.held_key_of(parked.extranonce1)]
            args += [parked.token, parked.extranonce1.hex(), ttl_ms]
        if not keys:
            return 0
        return int(await self._publish(self.client, keys, args))

    async def claim(self, token: str, now: float) -> ParkedSession | HeldElsewhere | None:
        answer = await self._claim(self.client, [self.token_key(token)],
                                   [self.holder, self.loan_ms, token, self.tag, self.prefix_bits, self.park_ms])
        if not answer:
            return None
        if not answer[0]:
            return HeldElsewhere(text(answer[1]))
        extranonce1 = bytes.fromhex(text(answer[0]))
        return ParkedSession(token, extranonce1, now + max(int(answer[1]), 0) / 1000)

    async def announce(self, sessions: Sequence[LiveSession], now: float) -> None:
        if not sessions:
            return
        args: list[str | int] = [self.park_ms]
        for live in sessions:
            args += [live.token, live.extranonce1.hex()]
        await self._announce(self.client, [self.own_key("live")], args)

    async def heartbeat(self, now: float) -> list[str]:
        keys = [self.own_key("alive"), self.own_key("live"), f"{self.tag}:holders", self.own_key("taken")]
        taken = await self._heartbeat(self.client, keys, [self.holder, self.holder_timeout_ms, self.park_ms])
        return [text(token) for token in taken]

    async def sync(self, request: DirectorySync, now: float) -> list[bytes]:
        args: list[str | int] = [self.holder, self.loan_ms, len(request.settle), self.tag, self.prefix_bits,
                                 request.prefix]
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
