"""Best shares: the highest difficulty a share's hash reached, per worker, account and the pool, all
time and in the current round (since the pool's last block), the way ckpool's bestshare and
public-pool's best difficulty work.

A share's difficulty here is what its header hash reached (diff-1 target / hash, ShareRecord's
share_difficulty), not the difficulty it was credited at. The books ride in the ledger's batches
(this is a ledger contributor), so they are as durable as the shares: journaled, replayed after a
crash, and a maximum applied twice is still the maximum.

Layout (all hashes; a field ``F`` holds the difficulty and ``@F`` when and by whom, "ts worker"):
- ``{P:sN}:best``   ``w:<worker>``, ``a:<account>`` all time (the shard of the account);
- ``{P:pool}:best`` ``pool`` all time;
- the current round ``{P:pool}:round:cur`` ``^pool``, ``^a:<account>``, ``^w:<worker>``: the round's
  bests travel with the round, so the block's batch that renames it to ``round:<blockhash>`` closes
  them with it and the next round starts empty.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import msgspec

from pool.native.work import DIFF1_TARGET
from pool.shares.keys import Keys
from pool.shares.redis_conn import RedisClient, text
from pool.shares.redis_ops import RedisOp, split_op
from pool.stratum.events import ShareRecord

log = logging.getLogger("geostratum.best")

# A hash of zero would be infinitely hard; Redis and Lua want finite numbers.
MAX_DIFFICULTY = 1e300
ROUND_PREFIX = "^"
META_PREFIX = "@"


class BestShare(msgspec.Struct, frozen=True, kw_only=True):
    difficulty: float          # what the share's hash reached (diff-1 / hash)
    at: float                  # unix seconds it was accepted
    worker: str                # the worker that found it


class BestPair(msgspec.Struct, frozen=True, kw_only=True):
    ever: BestShare | None = None       # all time
    round: BestShare | None = None      # since the pool's last block


class AccountBests(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    best: BestPair
    workers: dict[str, BestPair]        # full worker name -> its bests


class BestShares:
    """Ledger contributor for the best-share books, and the one reader of them.

    It also keeps the account records this process knows (seeded from Redis by `load`) to log a
    share that beats its account's record; the log is a courtesy, the books are in Redis.
    """

    def __init__(self, keys: Keys, on_record: Callable[[str, BestShare, float], None] | None = None) -> None:
        self.keys = keys
        self.known: dict[str, float] = {}
        self.pool_known = 0.0
        self._on_record = on_record or _log_record
        self._candidates: list[ShareRecord] = []

    def note_candidate(self, account: str, worker: str, block_hash: str, at: float) -> None:
        """A block candidate counts as the share it was even when the node refused it or it was stale
        (then no ShareRecord carried it): its hash's difficulty rides in the next batch's ops (a
        maximum, so a candidate that was also an accepted share is not counted twice)."""
        try:
            value = int(block_hash, 16)
        except ValueError:
            return
        reached = DIFF1_TARGET / value if value else MAX_DIFFICULTY
        if len(self._candidates) < 1000:
            self._candidates.append(ShareRecord(timestamp=at, account=account, worker=worker, difficulty=0.0,
                                                share_difficulty=reached, height=0))

    @property
    def pool_key(self) -> str:
        return f"{self.keys.pool}:best"

    def shard_key(self, account: str) -> str:
        return f"{self.keys.shard(account)}:best"

    # -- write side (in the ledger's cutter, never on the share path) ----------------------------
    def ops(self, records: Iterable[ShareRecord], batch_id: str = "") -> list[RedisOp]:
        workers: dict[str, tuple[float, float, str]] = {}     # worker -> (difficulty, ts, account)
        if self._candidates:
            records, self._candidates = [*self._candidates, *records], []
        for rec in records:
            value = rec.share_difficulty
            found = workers.get(rec.worker)
            if found is None or value > found[0]:
                workers[rec.worker] = (value, rec.timestamp, rec.account)
        if not workers:
            return []
        accounts: dict[str, tuple[float, float, str]] = {}     # account -> (difficulty, ts, worker)
        for worker, (value, ts, account) in workers.items():
            found = accounts.get(account)
            if found is None or value > found[0]:
                accounts[account] = (value, ts, worker)
        per_shard: dict[str, list[str | float]] = {}
        round_args: list[str | float] = []
        for worker, (value, ts, account) in workers.items():
            args = per_shard.setdefault(self.shard_key(account), [])
            entry = (_finite(value), _meta(ts, worker))
            args += ("w:" + worker, *entry)
            round_args += (ROUND_PREFIX + "w:" + worker, *entry)
        for account, (value, ts, worker) in accounts.items():
            entry = (_finite(value), _meta(ts, worker))
            per_shard[self.shard_key(account)] += ("a:" + account, *entry)
            round_args += (ROUND_PREFIX + "a:" + account, *entry)
            if value > self.known.get(account, 0.0):
                if account in self.known:
                    self._on_record(account, BestShare(difficulty=value, at=ts, worker=worker),
                                    self.known[account])
                self.known[account] = value
        top_account = max(accounts, key=lambda a: accounts[a][0])
        value, ts, worker = accounts[top_account]
        pool_entry = (_finite(value), _meta(ts, worker))
        round_args += (ROUND_PREFIX + "pool", *pool_entry)
        if value > self.pool_known:
            self.pool_known = value
        # A batch of thousands of workers is more arguments than one op may carry: a maximum applied in
        # parts is the same maximum (3 arguments per field: name, difficulty, meta).
        ops = [op for key, args in per_shard.items() for op in split_op("GS.HMAX", key, args, 3)]
        ops.append(RedisOp("GS.HMAX", self.pool_key, ("pool", *pool_entry)))
        ops += split_op("GS.HMAX", self.keys.round_current, round_args, 3)
        return ops

    async def load(self, client: RedisClient) -> None:
        """Seed the account records this process logs against from Redis (call once at start)."""
        for tag in self.keys.all_shards():
            raw = await client.hgetall(f"{tag}:best")
            for field, value in raw.items():
                name = text(field)
                if name.startswith("a:"):
                    self.known[name[2:]] = max(self.known.get(name[2:], 0.0), float(value))
        pool = await client.hget(self.pool_key, "pool")
        self.pool_known = float(pool) if pool is not None else 0.0

    # -- read side -------------------------------------------------------------------------------
    async def account(self, client: RedisClient, account: str, workers: Iterable[str] = ()) -> AccountBests:
        """An account's bests and those of its workers (the named ones and any with a record)."""
        shard = self.shard_key(account)
        ever = {text(k): text(v) for k, v in (await client.hgetall(shard)).items()}
        names = {w for w in workers} | {k[2:] for k in ever if k.startswith("w:")
                                        and k[2:].split(".", 1)[0] == account}
        wanted = ["a:" + account] + ["w:" + n for n in sorted(names)]
        round_fields = [ROUND_PREFIX + f for f in wanted]
        round_raw = await client.hmget(self.keys.round_current,
                                       round_fields + [META_PREFIX + f for f in round_fields])
        half = len(round_fields)
        rounds = {f: (text(v), text(m)) for f, v, m in zip(wanted, round_raw[:half], round_raw[half:], strict=True)}
        pairs = {f: BestPair(ever=_parse(ever.get(f), ever.get(META_PREFIX + f)), round=_parse(*rounds[f]))
                 for f in wanted}
        return AccountBests(account=account, best=pairs["a:" + account],
                            workers={f[2:]: pairs[f] for f in wanted[1:]})

    async def workers(self, client: RedisClient, workers: list[str]) -> dict[str, BestPair]:
        """The bests of these workers (full names), all time and this round, in one round trip; a worker
        without a record is absent."""
        if not workers:
            return {}
        by_shard: dict[str, list[str]] = {}
        for name in workers:
            by_shard.setdefault(self.shard_key(name.split(".", 1)[0]), []).append("w:" + name)
        round_fields = [ROUND_PREFIX + "w:" + name for name in workers]
        async with client.pipeline(transaction=False) as pipe:
            for key, fields in by_shard.items():
                pipe.hmget(key, fields + [META_PREFIX + f for f in fields])
            pipe.hmget(self.keys.round_current, round_fields + [META_PREFIX + f for f in round_fields])
            replies = await pipe.execute()
        ever: dict[str, BestShare | None] = {}
        for fields, raw in zip(by_shard.values(), replies, strict=False):
            half = len(fields)
            for field, value, meta in zip(fields, raw[:half], raw[half:], strict=True):
                ever[field[2:]] = _parse(text(value), text(meta))
        raw = replies[-1]
        half = len(workers)
        out = {}
        for name, value, meta in zip(workers, raw[:half], raw[half:], strict=True):
            pair = BestPair(ever=ever.get(name), round=_parse(text(value), text(meta)))
            if pair.ever is not None or pair.round is not None:
                out[name] = pair
        return out

    async def pool(self, client: RedisClient) -> BestPair:
        ever = await client.hmget(self.pool_key, ["pool", META_PREFIX + "pool"])
        rnd = await client.hmget(self.keys.round_current, [ROUND_PREFIX + "pool", META_PREFIX + ROUND_PREFIX + "pool"])
        return BestPair(ever=_parse(text(ever[0]), text(ever[1])), round=_parse(text(rnd[0]), text(rnd[1])))

    async def closed_round(self, client: RedisClient, block_hash: str) -> BestShare | None:
        """The best share of the round a block closed (the block's own share, or one above it)."""
        raw = await client.hmget(self.keys.round_closed(block_hash),
                                 [ROUND_PREFIX + "pool", META_PREFIX + ROUND_PREFIX + "pool"])
        return _parse(text(raw[0]), text(raw[1]))


def _finite(value: float) -> float:
    return value if value < MAX_DIFFICULTY else MAX_DIFFICULTY


def _meta(ts: float, worker: str) -> str:
    return f"{ts!r} {worker}"


def _parse(value: str | None, meta: str | None) -> BestShare | None:
    if not value:
        return None
    ts, _, worker = (meta or "0 ").partition(" ")
    return BestShare(difficulty=float(value), at=float(ts or 0), worker=worker)


def _log_record(account: str, best: BestShare, previous: float) -> None:
    log.info("new best share for %s: difficulty %.6g by %s (previous record %.6g)", account,
             best.difficulty, best.worker, previous)
