"""Read-only views of the books for the admin API, /metrics and the CLI: the one read side of the
ledger's Redis data (hashrate windows and histories through HashrateBook, rankings by them through
Ranking, workers, accounts, the round, blocks with the effort of the round each closed)."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from pool.config.ledger import LedgerConfig
from pool.shares.blocks import BlockInfo, RefusedBlock, block_info, list_blocks, list_refused
from pool.shares.hashrate import HashrateBook
from pool.shares.keys import Keys
from pool.shares.payouts import PayoutEngine
from pool.shares.ranking import Ranking
from pool.shares.redis_conn import RedisClient, text


class WorkerInfo(msgspec.Struct, frozen=True, kw_only=True):
    worker: str
    account: str
    last_seen: float


class AccountInfo(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    last_seen: float
    shares: int          # all time
    difficulty: float    # all time


class RoundInfo(msgspec.Struct, frozen=True, kw_only=True):
    opened_at: float     # first share of the round (0 when none yet)
    shares: int
    difficulty: float


class LedgerReader:
    def __init__(self, client: Callable[[], RedisClient], keys: Keys, config: LedgerConfig,
                 payouts: PayoutEngine) -> None:
        self._client = client
        self.keys = keys
        self.config = config
        self.payouts = payouts
        self.hashrate = HashrateBook(keys, config)
        self.ranking = Ranking(keys, config, self.hashrate)

    @property
    def client(self) -> RedisClient:
        return self._client()

    # -- totals, workers, accounts, round --------------------------------------------------------
    async def totals(self) -> tuple[int, float]:
        """(accepted shares, accepted difficulty) of the whole pool, all time."""
        raw = await self.client.hmget(self.keys.totals(self.keys.pool), ["n", "d"])
        return int(float(text(raw[0]) or 0)), float(text(raw[1]) or 0)

    async def account_totals(self) -> dict[str, tuple[int, float]]:
        """account -> (shares, difficulty), all time."""
        out: dict[str, tuple[int, float]] = {}
        for tag in self.keys.all_shards():
            shares = await self.client.hgetall(self.keys.account_shares(tag))
            diffs = await self.client.hgetall(self.keys.account_difficulty(tag))
            for name, n in shares.items():
                out[text(name)] = (int(n), float(diffs.get(name, 0)))
        return out

    async def workers(self, account: str | None = None, active_since: float = 0.0) -> list[WorkerInfo]:
        """Workers (of one account or all) last seen at or after `active_since`, newest first."""
        shards = [self.keys.shard(account)] if account is not None else self.keys.all_shards()
        out: list[WorkerInfo] = []
        for tag in shards:
            seen = await self.client.zrangebyscore(self.keys.seen_workers(tag), active_since, "+inf",
                                                   withscores=True)
            for member, score in seen:
                name = text(member)
                owner = name.split(".", 1)[0]
                if account is None or owner == account:
                    out.append(WorkerInfo(worker=name, account=owner, last_seen=float(score)))
        out.sort(key=lambda w: -w.last_seen)
        return out

    async def last_seen_workers(self, account: str | None = None, active_since: float = 0.0) -> dict[str, float]:
        """worker -> last share time, for the workers (of one account or all) seen since `active_since`:
        the shards read in one pipeline, no per-worker objects (a listing of 50,000 workers)."""
        shards = [self.keys.shard(account)] if account is not None else self.keys.all_shards()
        async with self.client.pipeline(transaction=False) as pipe:
            for tag in shards:
                pipe.zrangebyscore(self.keys.seen_workers(tag), active_since, "+inf", withscores=True)
            replies = await pipe.execute()
        out: dict[str, float] = {}
        prefix = None if account is None else account + "."
        for reply in replies:
            for member, score in reply:
                name = text(member)
                if prefix is None or name.startswith(prefix):
                    out[name] = float(score)
        return out

    async def count_seen_workers(self, active_since: float) -> int:
        """How many workers had a share since `active_since` (no names read)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for tag in self.keys.all_shards():
                pipe.zcount(self.keys.seen_workers(tag), active_since, "+inf")
            return sum(int(n) for n in await pipe.execute())

    async def last_seen_of(self, workers: list[str]) -> dict[str, float]:
        """worker -> last share time for the given workers (absent: never seen)."""
        by_shard: dict[str, list[str]] = {}
        for name in workers:
            by_shard.setdefault(self.keys.shard(name.split(".", 1)[0]), []).append(name)
        async with self.client.pipeline(transaction=False) as pipe:
            for tag, names in by_shard.items():
                pipe.zmscore(self.keys.seen_workers(tag), names)
            replies = await pipe.execute()
        return {name: float(score) for names, scores in zip(by_shard.values(), replies, strict=True)
                for name, score in zip(names, scores, strict=True) if score is not None}

    async def accounts(self, active_since: float = 0.0) -> list[AccountInfo]:
        out: list[AccountInfo] = []
        for tag in self.keys.all_shards():
            seen = await self.client.zrangebyscore(self.keys.seen_accounts(tag), active_since, "+inf",
                                                   withscores=True)
            if not seen:
                continue
            names = [text(m) for m, _ in seen]
            shares = await self.client.hmget(self.keys.account_shares(tag), names)
            diffs = await self.client.hmget(self.keys.account_difficulty(tag), names)
            for (name, (_, score)), n, d in zip(zip(names, seen, strict=True), shares, diffs, strict=True):
                out.append(AccountInfo(account=name, last_seen=float(score), shares=int(n or 0),
                                       difficulty=float(d or 0)))
        out.sort(key=lambda a: -a.last_seen)
        return out

    async def round(self) -> RoundInfo:
        """The current round: shares since the last block found by the pool."""
        raw = await self.client.hmget(self.keys.round_current, ["_opened", "_n", "_d"])
        return RoundInfo(opened_at=float(raw[0] or 0), shares=int(float(raw[1] or 0)),
                         difficulty=float(raw[2] or 0))

    # -- blocks and balances ---------------------------------------------------------------------
    async def blocks(self, limit: int = 100) -> list[BlockInfo]:
        return await list_blocks(self.client, self.keys, limit)

    async def refused_blocks(self, limit: int = 100) -> list[RefusedBlock]:
        """Candidates no node took, on any process, newest found first."""
        return await list_refused(self.client, self.keys, limit)

    async def blocks_with_effort(self, limit: int) -> list[tuple[BlockInfo, float | None]]:
        """The blocks, newest found first, each with the accepted difficulty of the round it closed
        (effort = that / the block's network difficulty); None for a round not recorded."""
        client = self.client
        hashes = [text(h) for h in await client.zrevrange(self.keys.blocks, 0, max(0, limit - 1))]
        if not hashes:
            return []
        async with client.pipeline(transaction=False) as pipe:
            for block_hash in hashes:
                pipe.hgetall(self.keys.block(block_hash))
                pipe.hget(self.keys.round_closed(block_hash), "_d")
            replies = await pipe.execute()
        out = []
        for i in range(len(hashes)):
            raw, round_difficulty = replies[2 * i], replies[2 * i + 1]
            if raw:
                info = block_info({text(k): text(v) for k, v in raw.items()})
                out.append((info, float(round_difficulty) if round_difficulty is not None else None))
        return out
