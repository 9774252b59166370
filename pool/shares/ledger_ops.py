"""Records -> Redis ops for one batch (no I/O): the ledger's own contribution to every batch.

Shares are first folded per (account, worker, fine bucket), so the op count grows with the number
of distinct workers in a batch, not with the number of shares.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import msgspec

from pool.config.ledger import LedgerConfig, PayoutConfig
from pool.shares.journal import BlockFound
from pool.shares.keys import Keys
from pool.shares.record import RedisOp, ShareRecord
from pool.shares.schemes import share_value_msat


class NetworkState(msgspec.Struct, kw_only=True):
    """What the app tells the ledger about the chain."""

    difficulty: float = 0.0
    subsidy_sat: int = 0
    # FPPS: recent blocks' fees / subsidy.
    fee_ratio: float = 0.0


def _fmt(value: float) -> str:
    # repr is the shortest exact round-trip form: Redis parses it back to the same double.
    return repr(float(value))


class LedgerOps:
    def __init__(self, keys: Keys, config: LedgerConfig, payouts: PayoutConfig) -> None:
        self.keys = keys
        self.config = config
        self.payouts = payouts

    def shares(self, records: Iterable[ShareRecord], batch_id: str, now: float,
               network: NetworkState) -> tuple[list[RedisOp], int]:
        """Ops for the shares of one batch; returns (ops, share count)."""
        fine_s = self.config.fine_bucket_s
        coarse_s = self.config.coarse_bucket_s
        per_worker: dict[tuple[str, str, int], list[float]] = {}
        count = 0
        for record in records:
            count += 1
            fine = int(record.timestamp // fine_s) * fine_s
            key = (record.account, record.worker, fine)
            slot = per_worker.get(key)
            if slot is None:
                per_worker[key] = [record.difficulty, 1, record.timestamp]
            else:
                slot[0] += record.difficulty
                slot[1] += 1
                if record.timestamp > slot[2]:
                    slot[2] = record.timestamp
        if not count:
            return [], 0

        keys = self.keys
        # key -> field -> value, for every hash we add to
        adds: dict[str, dict[str, float]] = {}
        seen_w: dict[str, dict[str, float]] = {}
        seen_a: dict[str, dict[str, float]] = {}
        expiries: dict[str, int] = {}
        per_account: dict[str, list[float]] = {}
        pool_fine: dict[int, list[float]] = {}
        pool_coarse: dict[int, list[float]] = {}
        last_ts = 0.0
        for (account, worker, fine), (diff, n, ts) in per_worker.items():
            shard = keys.shard(account)
            coarse = int(fine // coarse_s) * coarse_s
            for resolution, start in ((fine_s, fine), (coarse_s, coarse)):
                bucket = keys.bucket(shard, resolution, start)
                fields = adds.get(bucket)
                if fields is None:
                    fields = adds[bucket] = {}
                    expiries[bucket] = resolution
                fields["w:" + worker] = fields.get("w:" + worker, 0.0) + diff
                fields["a:" + account] = fields.get("a:" + account, 0.0) + diff
            totals = adds.setdefault(keys.totals(shard), {})
            totals[f"w:{worker}:d"] = totals.get(f"w:{worker}:d", 0.0) + diff
            totals[f"w:{worker}:n"] = totals.get(f"w:{worker}:n", 0) + n
            totals[f"a:{account}:d"] = totals.get(f"a:{account}:d", 0.0) + diff
            totals[f"a:{account}:n"] = totals.get(f"a:{account}:n", 0) + n
            sw = seen_w.setdefault(keys.seen_workers(shard), {})
            sw[worker] = max(sw.get(worker, 0.0), ts)
            sa = seen_a.setdefault(keys.seen_accounts(shard), {})
            sa[account] = max(sa.get(account, 0.0), ts)
            acc = per_account.get(account)
            if acc is None:
                per_account[account] = [diff, n]
            else:
                acc[0] += diff
                acc[1] += n
            pf = pool_fine.setdefault(fine, [0.0, 0])
            pf[0] += diff
            pf[1] += n
            pc = pool_coarse.setdefault(coarse, [0.0, 0])
            pc[0] += diff
            pc[1] += n
            last_ts = max(last_ts, ts)

        total_d = math.fsum(v[0] for v in per_account.values())
        for resolution, buckets in ((fine_s, pool_fine), (coarse_s, pool_coarse)):
            for start, (diff, n) in buckets.items():
                bucket = keys.bucket(keys.pool, resolution, start)
                fields = adds.setdefault(bucket, {})
                fields["d"] = fields.get("d", 0.0) + diff
                fields["n"] = fields.get("n", 0) + n
                expiries[bucket] = resolution
        pool_tot = adds.setdefault(keys.totals(keys.pool), {})
        pool_tot["d"] = total_d
        pool_tot["n"] = count
        round_fields = adds.setdefault(keys.round_current, {})
        for account, (diff, _n) in per_account.items():
            round_fields["a:" + account] = diff
        round_fields["_d"] = total_d
        round_fields["_n"] = count

        ops: list[RedisOp] = []
        for key, fields in adds.items():
            args: list[str | int | float] = []
            for name, value in fields.items():
                args.append(name)
                args.append(_fmt(value))
            ops.append(RedisOp("GS.HINCRF", key, tuple(args)))
            resolution = expiries.get(key)
            if resolution is not None:
                retention = (self.config.fine_retention_s if resolution == fine_s
                             else self.config.coarse_retention_s)
                ops.append(RedisOp("EXPIRE", key, (retention + resolution,)))
        for zsets in (seen_w, seen_a):
            for key, members in zsets.items():
                args = []
                for member, ts in members.items():
                    args.append(_fmt(ts))
                    args.append(member)
                ops.append(RedisOp("GS.ZMAX", key, tuple(args)))

        pplns_args: list[str | int | float] = [_fmt(last_ts), self.config.pplns_slice_s, _fmt(total_d)]
        for account, (diff, _n) in per_account.items():
            pplns_args.append(account)
            pplns_args.append(_fmt(diff))
        ops.append(RedisOp("GS.PPLNS_ADD", keys.pplns_base, tuple(pplns_args)))

        scheme = self.payouts.scheme
        if scheme in ("pps", "fpps"):
            ops.extend(self._per_share_credits(per_account, batch_id, now, network))
        return ops, count

    def _per_share_credits(self, per_account: dict[str, list[float]], batch_id: str, now: float,
                           network: NetworkState) -> list[RedisOp]:
        fee_ratio = network.fee_ratio if self.payouts.scheme == "fpps" else 0.0
        args: list[str | int | float] = [self.keys.balances, self.payouts.scheme, batch_id, _fmt(now)]
        for account, (diff, _n) in per_account.items():
            msat = share_value_msat(diff, network.difficulty, network.subsidy_sat, fee_ratio,
                                    self.payouts.fee_percent)
            if msat > 0:
                args.append(account)
                args.append(msat)
        if len(args) == 4:
            return []
        return [RedisOp("GS.CREDIT", self.keys.ledger, tuple(args))]

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
