"""Lua scripts run inside Redis. Each touches one hash slot only, so it runs on Redis Cluster too."""

from __future__ import annotations

# The rank windows of one shard and kind (pool.shares.ranking): base = "{P:sN}:rk:w" (or ":rk:a").
# Per minute m the ledger adds each name's work to base:d:m (difficulty in bucket units) and base:n:m
# (shares). A rank window is one of two slots, win = base:win or base:win2 (hash: from = the oldest
# minute included, min = the warming-up threshold); while a slot exists, the same increments also go
# to its running sums of the minutes from `from` on: win:n (shares) and the difficulty in win:ok
# (names with at least `min` shares) or win:warm (fewer), so the fastest names are the head of a
# sorted set. Two slots: the one readers use now and the one for the next minute's window, built
# ahead of the minute boundary (RANK_WINDOW's "prepare"), so no reader moves a window at the
# boundary. rank_add moves a name between ok and warm as its count crosses `min`, and drops it when
# its count reaches 0 (a minute leaving the window is added with negative counts). The sums are
# integers, so taking a minute out is exact.
RANK_SLOTS = ("win", "win2")
RANK_ADD = r"""
local rank_slots = {':win', ':win2'}
local function rank_add(win, member, dd, dn, min)
  local n = tonumber(redis.call('ZINCRBY', win .. ':n', dn, member))
  if n <= 0 then
    redis.call('ZREM', win .. ':n', member)
    redis.call('ZREM', win .. ':ok', member)
    redis.call('ZREM', win .. ':warm', member)
    return
  end
  local ok_now, ok_before = n >= min, n - dn >= min
  local to = win .. (ok_now and ':ok' or ':warm')
  if ok_now == ok_before then
    redis.call('ZINCRBY', to, dd, member)
  else
    local from = win .. (ok_before and ':ok' or ':warm')
    local d = tonumber(redis.call('ZSCORE', from, member) or '0') + dd
    redis.call('ZREM', from, member)
    redis.call('ZADD', to, d, member)
  end
end
"""

# Marks fine buckets up (pool.shares.uptime): per bucket start one bit of its coarse bucket's bitmap
# {P:pool}:up:<coarse>; a bit that was not set yet adds the bucket's seconds to its day in
# {P:pool}:upday; the earliest start goes to {P:pool}:first as member "up" (ZADD LT). Idempotent.
# args: fine seconds, coarse seconds, retention seconds, then the bucket starts.
_UP_MARK_FN = r"""
local function up_mark(base, args)
  local fine, coarse, keep = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
  local earliest = nil
  for j = 4, #args do
    local s = tonumber(args[j])
    local c = s - s % coarse
    local key = base .. ':up:' .. string.format('%d', c)
    if redis.call('SETBIT', key, string.format('%d', (s - c) / fine), 1) == 0 then
      redis.call('HINCRBY', base .. ':upday', string.format('%d', math.floor(s / 86400)), fine)
    end
    redis.call('EXPIREAT', key, string.format('%d', c + coarse + keep))
    if earliest == nil or s < earliest then earliest = s end
  end
  if earliest then redis.call('ZADD', base .. ':first', 'LT', string.format('%d', earliest), 'up') end
  return #args - 3
end
"""
UP_MARK = _UP_MARK_FN + "return up_mark(KEYS[1], ARGV)\n"

# Reads the up bitmaps KEYS[1..n-1] (nil where none) and the score of member ARGV[1] of KEYS[n].
UP_READ = r"""
local out = {}
for k = 1, #KEYS - 1 do out[k] = redis.call('GET', KEYS[k]) end
out[#KEYS] = redis.call('ZSCORE', KEYS[#KEYS], ARGV[1])
return out
"""

# Applies one group of a batch (all ops in one slot) exactly once.
# KEYS[1] = the group's marker key; KEYS[2] (optional) = the marker of the previous group this ledger
# applied in the slot: when Redis no longer has it, it lost acknowledged writes (a failover the client
# rode through, a restart) and -2 says so, applying nothing; -1 = already applied.
# ARGV[1] = marker TTL (s); ARGV[2] = msgpack [[cmd, key, [args]], ...].
# Ops are data; besides plain commands it understands a few GS.* forms the ledger needs:
#   GS.HINCRF key f v f v ...       HINCRBYFLOAT per pair
#   GS.HINCRI key f v f v ...       HINCRBY per pair
#   GS.ZMAX key score m score m ... ZADD GT in chunks (keeps the newest "last seen")
#   GS.HMAX key f v meta ...        per triple: f = v and @f = meta when v beats f (best shares)
#   GS.ZMIN key score m score m ... ZADD LT in chunks (keeps the earliest "first seen")
#   GS.ZINCR key incr m incr m ...  ZINCRBY per pair (rank sets of older versions, in old journals)
#   GS.RANK base minute expire_at name d n ...  a minute's work per name (see RANK_ADD)
#   GS.PPLNS_ADD base ts slice_s total acct d acct d ...   add to the current PPLNS slice
#   GS.PPLNS_CLOSE base blockhash ts                       a block closes the current slice
#   GS.UP pooltag fine coarse retention start start ...     the buckets of the batch's shares were up
# A failing op is counted (returned), never aborts the rest: the marker is already set, and a
# half-applied group would be worse than one bad op.
APPLY = RANK_ADD + _UP_MARK_FN + r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 0 then return -2 end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
local ops = cmsgpack.unpack(ARGV[2])
local errors = 0
local function check(r)
  if type(r) == 'table' and r.err then errors = errors + 1 end
end
local function pplns_current(base, ts, slice_s)
  local cur = redis.call('GET', base .. ':cur')
  if cur then
    local started = tonumber(redis.call('HGET', base .. ':start', cur))
    if started and ts - started < slice_s then return cur end
  end
  cur = tostring(redis.call('INCR', base .. ':cur'))
  redis.call('HSET', base .. ':start', cur, ts)
  redis.call('SETNX', base .. ':first', cur)
  return cur
end
for i = 1, #ops do
  local op = ops[i]
  local cmd, key, args = op[1], op[2], op[3]
  if cmd == 'GS.HINCRF' then
    for j = 1, #args, 2 do check(redis.pcall('HINCRBYFLOAT', key, args[j], args[j + 1])) end
  elseif cmd == 'GS.HINCRI' then
    for j = 1, #args, 2 do check(redis.pcall('HINCRBY', key, args[j], args[j + 1])) end
  elseif cmd == 'GS.ZMAX' then
    for j = 1, #args, 400 do
      check(redis.pcall('ZADD', key, 'GT', unpack(args, j, math.min(j + 399, #args))))
    end
  elseif cmd == 'GS.HMAX' then
    for j = 1, #args, 3 do
      local held = redis.pcall('HGET', key, args[j])
      check(held)
      if type(held) ~= 'table' and tonumber(args[j + 1]) > (tonumber(held) or -1) then
        check(redis.pcall('HSET', key, args[j], args[j + 1], '@' .. args[j], args[j + 2]))
      end
    end
  elseif cmd == 'GS.ZINCR' then
    for j = 1, #args, 2 do check(redis.pcall('ZINCRBY', key, args[j], args[j + 1])) end
  elseif cmd == 'GS.RANK' then
    local dkey, nkey = key .. ':d:' .. args[1], key .. ':n:' .. args[1]
    local live = {}
    for _, suffix in ipairs(rank_slots) do
      local held = redis.call('HMGET', key .. suffix, 'from', 'min')
      local from, min = tonumber(held[1]), tonumber(held[2])
      if from ~= nil and min ~= nil and tonumber(args[1]) >= from then live[#live + 1] = {key .. suffix, min} end
    end
    for j = 3, #args, 3 do
      check(redis.pcall('ZINCRBY', dkey, args[j + 1], args[j]))
      check(redis.pcall('ZINCRBY', nkey, args[j + 2], args[j]))
      for _, slot in ipairs(live) do
        if not pcall(rank_add, slot[1], args[j], tonumber(args[j + 1]), tonumber(args[j + 2]), slot[2]) then
          errors = errors + 1
        end
      end
    end
    check(redis.pcall('EXPIREAT', dkey, args[2]))
    check(redis.pcall('EXPIREAT', nkey, args[2]))
  elseif cmd == 'GS.ZMIN' then
    for j = 1, #args, 400 do
      check(redis.pcall('ZADD', key, 'LT', unpack(args, j, math.min(j + 399, #args))))
    end
  elseif cmd == 'GS.PPLNS_ADD' then
    local cur = pplns_current(key, tonumber(args[1]), tonumber(args[2]))
    local slice = key .. ':sl:' .. cur
    for j = 4, #args, 2 do check(redis.pcall('HINCRBYFLOAT', slice, args[j], args[j + 1])) end
    check(redis.pcall('HINCRBYFLOAT', key .. ':tot', cur, args[3]))
    check(redis.pcall('INCRBYFLOAT', key .. ':sum', args[3]))
  elseif cmd == 'GS.UP' then
    up_mark(key, args)
  elseif cmd == 'GS.PPLNS_CLOSE' then
    local cur = pplns_current(key, tonumber(args[2]), 1e18)
    redis.call('HSET', key .. ':blk', args[1], cur)
    local nxt = tostring(redis.call('INCR', key .. ':cur'))
    redis.call('HSET', key .. ':start', nxt, args[2])
  else
    check(redis.pcall(cmd, key, unpack(args)))
  end
end
return errors
"""

# Drops the oldest PPLNS slices while the rest still holds `keep` difficulty, never past a slice a
# block still needs for its window snapshot. KEYS[1] = pplns base; ARGV[1] = keep; ARGV[2] = max drops.
PPLNS_TRIM = r"""
local base = KEYS[1]
local keep = tonumber(ARGV[1])
local first = tonumber(redis.call('GET', base .. ':first') or '0')
local cur = tonumber(redis.call('GET', base .. ':cur') or '0')
if first == 0 then return 0 end
local guard = cur
local pending = redis.call('HVALS', base .. ':blk')
for i = 1, #pending do
  local n = tonumber(pending[i])
  if n < guard then guard = n end
end
local sum = tonumber(redis.call('GET', base .. ':sum') or '0')
local dropped = 0
while first < guard and dropped < tonumber(ARGV[2]) do
  local t = tonumber(redis.call('HGET', base .. ':tot', first) or '0')
  if sum - t < keep then break end
  redis.call('DEL', base .. ':sl:' .. first)
  redis.call('HDEL', base .. ':tot', first)
  redis.call('HDEL', base .. ':start', first)
  redis.call('INCRBYFLOAT', base .. ':sum', -t)
  sum = sum - t
  first = first + 1
  dropped = dropped + 1
end
redis.call('SET', base .. ':first', first)
return dropped
"""

# Stores a block's PPLNS window once. KEYS[1] = window key, KEYS[2] = pplns base.
# ARGV[1] = block hash, ARGV[2] = N, ARGV[3..] = account, difficulty pairs.
PPLNS_SNAPSHOT = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HDEL', KEYS[2] .. ':blk', ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], '@window', ARGV[2])
for j = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[j], ARGV[j + 1]) end
redis.call('HDEL', KEYS[2] .. ':blk', ARGV[1])
return 1
"""

# Moves a block from one status to another, only if it is still in the expected status (so a retry or
# a second watcher never moves it twice); its money is in the PostgreSQL books (pool.money), never here.
# KEYS[1] = block hash key, KEYS[2] = open-blocks set. ARGV[1] = expected status, ARGV[2] = new status,
# ARGV[3] = block hash, ARGV[4] = ts, ARGV[5] = confirmations, ARGV[6] = "1" to close watching.
BLOCK_TRANSITION = r"""
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'confirmations', ARGV[5], 'updated_at', ARGV[4])
if ARGV[6] == '1' then redis.call('SREM', KEYS[2], ARGV[3]) end
return 1
"""

# Lease helpers: renew / release only while we still own the key.
LEASE_RENEW = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

LEASE_RELEASE = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# The hashrate windows of some fields of one hash tag, summed inside Redis (one call per shard instead
# of one HMGET per bucket from the client). KEYS[1]: any key of the tag (routes the call to its slot).
# ARGV: the buckets' key prefix ("<tag>:b:", Keys.bucket), the fine and coarse resolutions, the number
# of windows, per window two ranges of fine bucket starts and one of coarse ones (start, end
# exclusive; empty when equal), then (difficulty field, count field) pairs. Each bucket is read once
# though the windows overlap. Returns per field: per window the difficulty sum and the share count
# (as exact decimal strings), then the start of the oldest fine and coarse bucket holding the field
# (0 = none).
WINDOW_SUMS = r"""
local prefix, fine_s, coarse_s, n_windows = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local fine_masks, coarse_masks = {}, {}
local function mark(masks, lo, hi, step, flag)
  for s = tonumber(lo), tonumber(hi) - 1, step do masks[s] = bit.bor(masks[s] or 0, flag) end
end
for w = 1, n_windows do
  local r, flag = 4 + (w - 1) * 6, 2 ^ (w - 1)
  mark(fine_masks, ARGV[r + 1], ARGV[r + 2], fine_s, flag)
  mark(fine_masks, ARGV[r + 3], ARGV[r + 4], fine_s, flag)
  mark(coarse_masks, ARGV[r + 5], ARGV[r + 6], coarse_s, flag)
end
local buckets = {}
for _, part in ipairs({{fine_masks, fine_s, true}, {coarse_masks, coarse_s, false}}) do
  local starts = {}
  for s in pairs(part[1]) do starts[#starts + 1] = s end
  table.sort(starts)
  for _, s in ipairs(starts) do
    buckets[#buckets + 1] = {string.format('%s%d:%d', prefix, part[2], s), part[1][s], part[3], s}
  end
end
local fields = {}
for j = 5 + 6 * n_windows, #ARGV do fields[#fields + 1] = ARGV[j] end
local n_fields = #fields / 2
local sums, first_fine, first_coarse = {}, {}, {}
for j = 1, n_fields * n_windows * 2 do sums[j] = 0 end
for f = 1, n_fields do first_fine[f] = 0; first_coarse[f] = 0 end
for _, bucket in ipairs(buckets) do
  local values = redis.call('HMGET', bucket[1], unpack(fields))
  local mask, fine, start = bucket[2], bucket[3], bucket[4]
  for f = 1, n_fields do
    local d, n = values[2 * f - 1], values[2 * f]
    if d then
      if fine then
        if first_fine[f] == 0 then first_fine[f] = start end
      elseif first_coarse[f] == 0 then
        first_coarse[f] = start
      end
      d, n = tonumber(d), tonumber(n or 0)
      for w = 1, n_windows do
        if bit.band(mask, 2 ^ (w - 1)) ~= 0 then
          local base = ((f - 1) * n_windows + w - 1) * 2
          sums[base + 1] = sums[base + 1] + d
          sums[base + 2] = sums[base + 2] + n
        end
      end
    end
  end
end
local out = {}
for f = 1, n_fields do
  for w = 1, n_windows do
    local base = ((f - 1) * n_windows + w - 1) * 2
    out[#out + 1] = string.format('%.17g', sums[base + 1])
    out[#out + 1] = string.format('%.17g', sums[base + 2])
  end
  out[#out + 1] = first_fine[f]
  out[#out + 1] = first_coarse[f]
end
return out
"""

# Reads the rank window (see RANK_ADD) starting at minute `ws`, bringing a slot to it first when
# none is there yet. KEYS[1] = base:win, KEYS[2] = the kind's first-share sorted set, KEYS[3] its
# first-authorize one. ARGV: base, ws, the current minute, min, ttl, max_lag, step (60), then mode
# "top" k | "of" name... | "prepare".
# A slot whose `from` is ws (and built for `min`) is read as it is. Otherwise one slot is brought to
# ws: moved by taking the minutes before ws out of its sums (the one least behind), or rebuilt from
# the minute sets when none is behind within max_lag (missing, another threshold, lagging more than
# max_lag: the minute sets expire; or ahead by more than a step: a reader whose clock is behind).
# "prepare" (the read side's keeper, in the minute before the boundary): also builds the other slot
# for ws + step from the minute sets, unless it is there; the shares after go to both, so at the
# boundary readers find the next window ready. Returns the number of slots built or moved.
# "top": per part (ok, warm) its k largest names that are not young, and every young name (first
# share after ws: its observation may start inside the window, so its order is not its sum's); "of":
# the given names. Returns per name in the window: name, difficulty, shares, first share and first
# authorize ("" unless young or not recorded).
RANK_WINDOW = RANK_ADD + r"""
local first_key, auth_key, base = KEYS[2], KEYS[3], ARGV[1]
local ws, cur, min = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ttl, max_lag, step, mode = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local changed = 0
local function state(win)
  local held = redis.call('HMGET', win, 'from', 'min')
  return tonumber(held[1]), tonumber(held[2])
end
local function rebuild(win, from)
  local dkeys, nkeys = {}, {}
  for m = from, cur + step, step do
    dkeys[#dkeys + 1] = base .. ':d:' .. m
    nkeys[#nkeys + 1] = base .. ':n:' .. m
  end
  local nk, okk, warmk, all, okn = win .. ':n', win .. ':ok', win .. ':warm', win .. ':all', win .. ':okn'
  redis.call('DEL', nk, okk, warmk)
  redis.call('ZUNIONSTORE', nk, #nkeys, unpack(nkeys))
  redis.call('ZUNIONSTORE', all, #dkeys, unpack(dkeys))
  redis.call('ZRANGESTORE', okn, nk, min, '+inf', 'BYSCORE')
  redis.call('ZINTERSTORE', okk, 2, all, okn, 'WEIGHTS', 1, 0)
  redis.call('ZDIFFSTORE', warmk, 2, all, okn)
  redis.call('DEL', all, okn)
  redis.call('HSET', win, 'from', from, 'min', min)
  changed = changed + 1
end
local function move(win, from)
  for m = from, ws - step, step do
    local names = redis.call('ZRANGE', base .. ':n:' .. m, 0, -1, 'WITHSCORES')
    for i = 1, #names, 1000 do
      local batch = {}
      for j = i, math.min(i + 998, #names), 2 do batch[#batch + 1] = names[j] end
      local ds = redis.call('ZMSCORE', base .. ':d:' .. m, unpack(batch))
      for b = 1, #batch do
        rank_add(win, batch[b], -(tonumber(ds[b]) or 0), -tonumber(names[i + 2 * b - 1]), min)
      end
    end
  end
  redis.call('HSET', win, 'from', ws)
  changed = changed + 1
end
local function keep(win)
  redis.call('EXPIRE', win, ttl)
  for _, part in ipairs({':n', ':ok', ':warm'}) do redis.call('EXPIRE', win .. part, ttl + step) end
end
local slots, win = {}, nil
for i, suffix in ipairs(rank_slots) do
  local from, held_min = state(base .. suffix)
  slots[i] = {base .. suffix, held_min == min and from or nil}
  if slots[i][2] == ws then win = slots[i][1] end
end
if win == nil then
  -- the slot least behind ws (moved), else one ahead by at most a step (read as it is: a reader
  -- whose clock is behind), else the missing or oldest one (rebuilt)
  local behind, ahead, spare = nil, nil, nil
  for _, slot in ipairs(slots) do
    local from = slot[2]
    if from ~= nil and from < ws and ws - from <= max_lag and (behind == nil or from > behind[2]) then
      behind = slot
    elseif from ~= nil and from > ws and from - ws <= step and mode ~= 'prepare' then
      ahead = slot
    end
    if spare == nil or from == nil or (spare[2] ~= nil and from < spare[2]) then spare = slot end
  end
  if behind then
    win = behind[1]
    move(win, behind[2])
  elseif ahead then
    win = ahead[1]
  else
    win = spare[1]
    rebuild(win, ws)
  end
end
keep(win)
local nk, okk, warmk = win .. ':n', win .. ':ok', win .. ':warm'
if mode == 'prepare' then
  for _, slot in ipairs(slots) do
    if slot[1] ~= win then
      if slot[2] ~= ws + step then rebuild(slot[1], ws + step) end
      keep(slot[1])
    end
  end
  return changed
end
local out = {}
local function emit(name, first)
  local n = redis.call('ZSCORE', nk, name)
  if not n then return end
  local d = redis.call('ZSCORE', okk, name) or redis.call('ZSCORE', warmk, name) or '0'
  local auth = first and redis.call('ZSCORE', auth_key, name)
  out[#out + 1] = name; out[#out + 1] = d; out[#out + 1] = n; out[#out + 1] = first or ''
  out[#out + 1] = auth or ''
end
if mode == 'top' then
  local k = tonumber(ARGV[9])
  local young = redis.call('ZRANGEBYSCORE', first_key, '(' .. ws, '+inf', 'WITHSCORES')
  local is_young = {}
  for i = 1, #young, 2 do
    is_young[young[i]] = true
    emit(young[i], young[i + 1])
  end
  for _, part in ipairs({okk, warmk}) do
    local head = redis.call('ZREVRANGE', part, 0, k - 1 + #young / 2)
    local taken = 0
    for i = 1, #head do
      if taken >= k then break end
      if not is_young[head[i]] then
        emit(head[i], nil)
        taken = taken + 1
      end
    end
  end
else
  for j = 9, #ARGV do emit(ARGV[j], redis.call('ZSCORE', first_key, ARGV[j])) end
end
return out
"""
