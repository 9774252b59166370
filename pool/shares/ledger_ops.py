"""Records -> Redis ops for one batch (no I/O): the ledger's own contribution to every batch.

Shares are first folded per (account, worker, fine bucket), so the op count grows with the number
of distinct workers in a batch, not with the number of shares.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from itertools import chain

import msgspec

from pool.config.ledger import LedgerConfig, PayoutConfig
from pool.shares.journal import BlockFound
from pool.shares.keys import Keys
from pool.shares.ranking import RANK_KEEP_S, RANK_MINUTE
from pool.shares.redis_ops import RedisOp
from pool.shares.schemes import share_value_msat
from pool.shares.uptime import mark_args
from pool.stratum.events import ShareRecord


class NetworkState(msgspec.Struct, kw_only=True):
    """What the app tells the ledger about the chain."""

    difficulty: float = 0.0
    subsidy_sat: int = 0
    # FPPS: recent blocks' fees / subsidy.
    fee_ratio: float = 0.0


def _fmt(value: float) -> str:
    return repr(float(value))




def _rank(ranks: dict[tuple[str, str, int], dict[str, list[int]]], at: tuple[str, str, int], name: str,
          difficulty: int, shares: int) -> None:
    members = ranks.get(at)
    if members is None:
        members = ranks[at] = {}
    sums = members.get(name)
    if sums is None:
        members[name] = [difficulty, shares]
    else:
        sums[0] += difficulty
        sums[1] += shares


def _is_count(field: str) -> bool:
    """Share-count bucket fields ("n", "wn:<worker>", "an:<account>") are not scaled by bucket_units."""
    return field == "n" or field[1:3] == "n:"


# Sums travel as msgpack doubles; Redis turns a Lua number back into a string with a round-trip
# exact conversion, so they stay exact for every value a double holds exactly.


class LedgerOps:
    def __init__(self, keys: Keys, config: LedgerConfig, payouts: PayoutConfig, *,
                 started_at: float | None = None) -> None:
        self.keys = keys
        self.config = config
        self.payouts = payouts
        # Fields whose first observation this process already sent (ZADD LT makes repeats harmless;
        # this keeps them out of every batch).
        self._first_sent: set[str] = set()
        self._started_at = started_at            # sent with the first batch (the pool's first observation)

    def shares(self, records: Iterable[ShareRecord], batch_id: str, now: float,
               network: NetworkState) -> tuple[list[RedisOp], int]:
        """Ops for the shares of one batch; returns (ops, share count).

        Per worker: its fine and coarse bucket fields (difficulty and share count), its last-seen
        time and (once) its first share and first authorize. Per account: the same, all-time totals, the round, the
        PPLNS slice and (PPS/FPPS) its credit."""
        fine_s = self.config.fine_bucket_s
        coarse_s = self.config.coarse_bucket_s
        per_worker: dict[tuple[str, int], list] = {}
        count = 0
        lo = hi = 0.0
        fine = 0
        for record in records:
            count += 1
            ts = record.timestamp
            if not lo <= ts < hi:
                fine = int(ts // fine_s) * fine_s
                lo, hi = fine, fine + fine_s
            key = (record.worker, fine)
            slot = per_worker.get(key)
            if slot is None:
                per_worker[key] = [record.account, record.difficulty, 1, ts, ts, record.authorized_at or math.inf]
            else:
                slot[1] += record.difficulty
                slot[2] += 1
                if ts > slot[3]:
                    slot[3] = ts
                elif ts < slot[4]:
                    slot[4] = ts
                if 0 < record.authorized_at < slot[5]:
                    slot[5] = record.authorized_at
        if not count:
            return [], 0

        keys = self.keys
        shard_of = keys.shard
        buckets: dict[tuple[str, int, int], dict[str, float]] = {}   # (tag, resolution, start) -> fields
        seen_w: dict[str, dict[str, float]] = {}
        seen_a: dict[str, dict[str, float]] = {}
        per_account: dict[str, list] = {}      # account -> [diff, n, last ts, shard]
        per_account_bucket: dict[tuple[str, int], list[float]] = {}
        pool_buckets: dict[tuple[int, int], list[float]] = {}
        first: dict[str, float] = {}           # "w:x" / "a:x" -> earliest share of the batch (not yet sent)
        authorized: dict[str, float] = {}      # "w:x" / "a:x" -> earliest authorize of the batch's shares
        # (shard, kind, minute) -> name -> [difficulty in bucket units, shares]: the same integers as
        # the buckets' (pool.shares.ranking ranks by the figure read from them)
        ranks: dict[tuple[str, str, int], dict[str, list[int]]] = {}
        units = self.config.bucket_units
        sent = self._first_sent
        for (worker, fine), (account, diff, n, ts, earliest, since) in per_worker.items():
            acc = per_account.get(account)
            if acc is None:
                acc = per_account[account] = [0.0, 0, 0.0, shard_of(account)]
            acc[0] += diff
            acc[1] += n
            if ts > acc[2]:
                acc[2] = ts
            shard = acc[3]
            coarse = fine - fine % coarse_s
            field, count_field = "w:" + worker, "wn:" + worker
            for bucket in ((shard, fine_s, fine), (shard, coarse_s, coarse)):
                fields = buckets.get(bucket)
                if fields is None:
                    fields = buckets[bucket] = {}
                fields[field] = fields.get(field, 0.0) + diff
                fields[count_field] = fields.get(count_field, 0) + n
            for name in (field, "a:" + account):
                if name not in sent:
                    if earliest < first.get(name, math.inf):
                        first[name] = earliest
                    if since < authorized.get(name, math.inf):
                        authorized[name] = since
            _rank(ranks, (shard, "w", fine - fine % RANK_MINUTE), worker, round(diff * units), n)
            sw = seen_w.get(shard)
            if sw is None:
                sw = seen_w[shard] = {}
            if ts > sw.get(worker, 0.0):
                sw[worker] = ts
            ab = (account, fine)
            sums = per_account_bucket.get(ab)
            if sums is None:
                per_account_bucket[ab] = [diff, n]
            else:
                sums[0] += diff
                sums[1] += n
            pb = pool_buckets.get((fine, coarse))
            if pb is None:
                pool_buckets[(fine, coarse)] = [diff, n]
            else:
                pb[0] += diff
                pb[1] += n

        for (account, fine), (diff, n) in per_account_bucket.items():
            shard = per_account[account][3]
            _rank(ranks, (shard, "a", fine - fine % RANK_MINUTE), account, round(diff * units), n)
            field, count_field = "a:" + account, "an:" + account
            for resolution, start in ((fine_s, fine), (coarse_s, fine - fine % coarse_s)):
                fields = buckets.get((shard, resolution, start))
                if fields is None:
                    fields = buckets[(shard, resolution, start)] = {}
                fields[field] = fields.get(field, 0.0) + diff
                fields[count_field] = fields.get(count_field, 0) + n
        totals_d: dict[str, list] = {}
        totals_n: dict[str, list] = {}
        for account, (diff, n, ts, shard) in per_account.items():
            t = totals_d.get(shard)
            if t is None:
                t = totals_d[shard] = []
                totals_n[shard] = []
            t += (account, diff)
            totals_n[shard] += (account, n)
            sa = seen_a.get(shard)
            if sa is None:
                sa = seen_a[shard] = {}
            sa[account] = ts
        total_d = math.fsum(v[0] for v in per_account.values())
        last_ts = max(v[2] for v in per_account.values())
        for (fine, coarse), (diff, n) in pool_buckets.items():
            for resolution, start in ((fine_s, fine), (coarse_s, coarse)):
                fields = buckets.get((keys.pool, resolution, start))
                if fields is None:
                    fields = buckets[(keys.pool, resolution, start)] = {}
                fields["d"] = fields.get("d", 0.0) + diff
                fields["n"] = fields.get("n", 0) + n

        flat = chain.from_iterable
        # The buckets of these shares were up, whatever became of the heartbeat (a replay after a crash).
        ops: list[RedisOp] = [RedisOp("GS.UP", keys.pool, mark_args(
            fine_s, coarse_s, self.config.coarse_retention_s, (fine for fine, _ in pool_buckets)))]
        for (tag, resolution, start), fields in buckets.items():
            key = keys.bucket(tag, resolution, start)
            # Bucket sums are integers (HINCRBY is cheaper than HINCRBYFLOAT, and these are hot).
            ops.append(RedisOp("GS.HINCRI", key, tuple(flat(
                (name, value if _is_count(name) else round(value * units)) for name, value in fields.items()))))
            retention = self.config.fine_retention_s if resolution == fine_s else self.config.coarse_retention_s
            ops.append(RedisOp("EXPIREAT", key, (start + resolution + retention,)))
        for tag, pairs in totals_d.items():
            ops.append(RedisOp("GS.HINCRF", keys.account_difficulty(tag), tuple(pairs)))
            ops.append(RedisOp("GS.HINCRI", keys.account_shares(tag), tuple(totals_n[tag])))
        ops.append(RedisOp("GS.HINCRF", keys.totals(keys.pool), ("d", total_d, "n", count)))
        ops.append(RedisOp("HSETNX", keys.round_current, ("_opened", last_ts)))
        ops.append(RedisOp("GS.HINCRF", keys.round_current, ("_d", total_d, "_n", count)))
        for zsets, make_key in ((seen_w, keys.seen_workers), (seen_a, keys.seen_accounts)):
            for tag, members in zsets.items():
                ops.append(RedisOp("GS.ZMAX", make_key(tag),
                                   tuple(flat((ts, m) for m, ts in members.items()))))
        ops.extend(self._first_observations(first, authorized, per_account))
        for (tag, kind, minute), members in ranks.items():
            ops.append(RedisOp("GS.RANK", keys.rank_base(tag, kind), (minute, minute + RANK_MINUTE + RANK_KEEP_S, *flat(
                (name, d, n) for name, (d, n) in members.items()))))
        if self._started_at is not None:
            ops.append(self.pool_start(min(self._started_at, min(v[4] for v in per_worker.values()))))
            self._started_at = None

        pplns_args: list[str | int | float] = [last_ts, self.config.pplns_slice_s, total_d]
        for account, values in per_account.items():
            pplns_args.append(account)
            pplns_args.append(values[0])
        ops.append(RedisOp("GS.PPLNS_ADD", keys.pplns_base, tuple(pplns_args)))

        if self.payouts.scheme in ("pps", "fpps"):
            ops.extend(self._per_share_credits(per_account, batch_id, now, network))
        return ops, count

    def _first_observations(self, first: dict[str, float], authorized: dict[str, float],
                            per_account: dict[str, list]) -> list[RedisOp]:
        """ZADD LT of the first share and the first authorize (where the shares carry it) of workers
        and accounts this process has not reported yet: in the batch of their first shares, so no
        bucket of a worker reaches Redis before its observation start does."""
        by_key: dict[str, list[str | float]] = {}
        for times, make_key in ((first, self.keys.first_seen), (authorized, self.keys.authorized)):
            for name, ts in times.items():
                if ts == math.inf:
                    continue                    # shares that did not say when their worker authorized
                kind, _, member = name.partition(":")
                owner = member.split(".", 1)[0] if kind == "w" else member
                tag = per_account[owner][3] if owner in per_account else self.keys.shard(owner)
                by_key.setdefault(make_key(tag, kind), []).extend((_fmt(ts), member))
        if len(self._first_sent) > 1_000_000:
            self._first_sent.clear()
        self._first_sent.update(first)
        return [RedisOp("GS.ZMIN", key, tuple(args)) for key, args in by_key.items()]

    def pool_start(self, at: float) -> RedisOp:
        """The pool's first observation: the earliest start of any of its processes."""
        return RedisOp("ZADD", self.keys.first_seen(self.keys.pool), ("LT", _fmt(at), "d"))

    def _per_share_credits(self, per_account: dict[str, list], batch_id: str, now: float,
                           network: NetworkState) -> list[RedisOp]:
        """The batch's PPS/FPPS credits, to the outbox the PostgreSQL books take them from (pool.money.pps):
        never to a balance in Redis."""
        fee_ratio = network.fee_ratio if self.payouts.scheme == "fpps" else 0.0
        credits: dict[str, int] = {}
        for account, values in per_account.items():
            msat = share_value_msat(values[0], network.difficulty, network.subsidy_sat, fee_ratio,
                                    self.payouts.fee_percent)
            if msat > 0:
                credits[account] = msat
        if not credits:
            return []
        body = msgspec.json.encode(credits).decode()
        return [RedisOp("XADD", self.keys.pps_outbox, ("*", "ref", batch_id, "kind", self.payouts.scheme,
                                                       "ts", _fmt(now), "credits", body))]

    def block(self, block: BlockFound) -> list[RedisOp]:
        """A found block: recorded, its round closed and its PPLNS window end marked, in share order."""
        keys = self.keys
        key = keys.block(block.block_hash)
        fields: tuple[str | int | float, ...] = (
            "hash", block.block_hash, "height", block.height, "account", block.account,
            "worker", block.worker, "node", block.node, "found_at", _fmt(block.found_at),
            "reward_sat", block.reward_sat, "network_difficulty", _fmt(block.network_difficulty),
            "scheme", block.scheme,
        )
        return [
            RedisOp("HSET", key, fields),
            RedisOp("HSETNX", key, ("status", "pending")),
            RedisOp("HSETNX", key, ("confirmations", 0)),
            RedisOp("ZADD", keys.blocks, (_fmt(block.found_at), block.block_hash)),
            RedisOp("SADD", keys.open_blocks, (block.block_hash,)),
            RedisOp("HSETNX", keys.round_current, ("_opened", _fmt(block.found_at))),
            RedisOp("HSET", keys.round_current, ("_block", block.block_hash)),
            RedisOp("RENAME", keys.round_current, (keys.round_closed(block.block_hash),)),
            RedisOp("GS.PPLNS_CLOSE", keys.pplns_base, (block.block_hash, _fmt(block.found_at))),
        ]
