"""Share counts per worker in the books: accepted, and rejected by reason, durable through restarts so
that a worker gone offline still shows its real counts (the live connections' counters go with them).

Rejects are counted by the sessions per worker (Counters.worker_rejects) and taken into the ledger's
next batch, accepted shares from the batch's records: this is a ledger contributor, so both are
journaled with the batch and applied exactly once. Counts are all time from the moment the books began
counting the worker (``since``), which the readers state as the window they cover.

Layout (the shard of the account): ``{P:sN}:tally`` ``wa:<worker>`` accepted, ``wr:<worker>`` rejected,
``ar:<account>`` the account's rejected, ``wt:<worker>`` "firmware|country|subdivision" of its last
accepted share; ``{P:sN}:tally:since`` (sorted set) ``w:<worker>`` /
``a:<account>`` -> when counting began; ``{P:sN}:rej:<worker>`` reject key -> count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import msgspec

from pool.shares.keys import Keys
from pool.shares.redis_conn import RedisClient, text
from pool.shares.redis_ops import RedisOp, split_op
from pool.stratum.events import ShareRecord

MAX_SINCE_SENT = 1_000_000        # names whose start this process already sent (ZMIN makes repeats harmless)


class WorkerTally(msgspec.Struct, frozen=True, kw_only=True):
    accepted: int
    rejected: int
    since: float | None             # when the books began counting it (None: nothing counted yet)
    # As its last accepted share was tagged (what an offline worker's row shows).
    firmware: str = "unknown"
    country: str = "ZZ"
    subdivision: str = ""


def _owner(worker: str) -> str:
    return worker.split(".", 1)[0]


class ShareTallies:
    """Ledger contributor for the per-worker counts, and their one reader. `rejects()` hands over the
    rejects counted since its last call (worker -> reject key -> count)."""

    def __init__(self, keys: Keys, rejects: Callable[[], dict[str, dict[str, int]]] | None = None) -> None:
        self.keys = keys
        self.rejects = rejects or dict
        self._since_sent: set[str] = set()
        self._tags_sent: dict[str, str] = {}      # worker -> the firmware/region this process last wrote

    # -- write side (in the ledger's cutter, never on the share path) ----------------------------
    def ops(self, records: Iterable[ShareRecord], batch_id: str = "") -> list[RedisOp]:
        accepted: dict[str, list] = {}          # worker -> [count, earliest ts, latest record]
        for rec in records:
            seen = accepted.get(rec.worker)
            if seen is None:
                accepted[rec.worker] = [1, rec.timestamp, rec]
            else:
                seen[0] += 1
                if rec.timestamp < seen[1]:
                    seen[1] = rec.timestamp
                if rec.timestamp >= seen[2].timestamp:
                    seen[2] = rec
        rejected = self.rejects()
        if not accepted and not rejected:
            return []
        keys = self.keys
        counts: dict[str, list[str | int | float]] = {}        # tally key -> field, value, ...
        since: dict[str, list[str | int | float]] = {}
        ops: list[RedisOp] = []
        account_rejects: dict[str, int] = {}

        def first(tag: str, member: str, at: float) -> None:
            if member not in self._since_sent:
                since.setdefault(keys.tally_since(tag), []).extend((repr(float(at)), member))
                self._since_sent.add(member)

        tags: dict[str, list[str | int | float]] = {}
        for worker, (n, earliest, latest) in accepted.items():
            tag = keys.shard(_owner(worker))
            counts.setdefault(keys.tally(tag), []).extend(("wa:" + worker, n))
            label = f"{latest.firmware}|{latest.country}|{latest.subdivision}"
            if self._tags_sent.get(worker) != label:
                tags.setdefault(keys.tally(tag), []).extend(("wt:" + worker, label))
                self._tags_sent[worker] = label
            first(tag, "w:" + worker, earliest)
            first(tag, "a:" + _owner(worker), earliest)
        now = time.time()                        # a worker's first reject starts its count when taken
        for worker, reasons in rejected.items():
            account = _owner(worker)
            tag = keys.shard(account)
            total = sum(reasons.values())
            counts.setdefault(keys.tally(tag), []).extend(("wr:" + worker, total))
            account_rejects[account] = account_rejects.get(account, 0) + total
            ops.append(RedisOp("GS.HINCRI", keys.worker_rejects(tag, worker),
                               tuple(x for pair in reasons.items() for x in pair)))
            first(tag, "w:" + worker, now)
            first(tag, "a:" + account, now)
        for account, total in account_rejects.items():
            counts.setdefault(keys.tally(keys.shard(account)), []).extend(("ar:" + account, total))
        for key, args in counts.items():
            ops += split_op("GS.HINCRI", key, args, 2)
        for key, args in since.items():
            ops += split_op("GS.ZMIN", key, args, 2)
        for key, args in tags.items():
            ops += split_op("HSET", key, args, 2)
        if len(self._since_sent) > MAX_SINCE_SENT:
            self._since_sent.clear()
        if len(self._tags_sent) > MAX_SINCE_SENT:
            self._tags_sent.clear()
        return ops

    # -- read side -------------------------------------------------------------------------------
    async def workers(self, client: RedisClient, workers: list[str]) -> dict[str, WorkerTally]:
        """The counts of these workers (full names) in one round trip."""
        if not workers:
            return {}
        by_shard: dict[str, list[str]] = {}
        for name in workers:
            by_shard.setdefault(self.keys.shard(_owner(name)), []).append(name)
        async with client.pipeline(transaction=False) as pipe:
            for tag, names in by_shard.items():
                pipe.hmget(self.keys.tally(tag), [f"w{kind}:{n}" for n in names for kind in "art"])
                pipe.zmscore(self.keys.tally_since(tag), ["w:" + n for n in names])
            replies = await pipe.execute()
        out = {}
        for i, names in enumerate(by_shard.values()):
            counts, starts = replies[2 * i], replies[2 * i + 1]
            for j, name in enumerate(names):
                firmware, country, subdivision = (text(counts[3 * j + 2]) or "unknown|ZZ|").split("|", 2)
                out[name] = WorkerTally(accepted=int(counts[3 * j] or 0), rejected=int(counts[3 * j + 1] or 0),
                                        since=float(starts[j]) if starts[j] is not None else None,
                                        firmware=firmware, country=country, subdivision=subdivision)
        return out

    async def account_rejected(self, client: RedisClient, accounts: list[str]) -> dict[str, tuple[int, float | None]]:
        """account -> (rejected shares, counted since) in one round trip."""
        if not accounts:
            return {}
        async with client.pipeline(transaction=False) as pipe:
            for name in accounts:
                tag = self.keys.shard(name)
                pipe.hget(self.keys.tally(tag), "ar:" + name)
                pipe.zscore(self.keys.tally_since(tag), "a:" + name)
            replies = await pipe.execute()
        return {name: (int(replies[2 * i] or 0), float(replies[2 * i + 1]) if replies[2 * i + 1] is not None else None)
                for i, name in enumerate(accounts)}

    async def reasons(self, client: RedisClient, workers: list[str]) -> dict[str, dict[str, int]]:
        """worker -> reject key -> count, for these workers (absent: no reject counted)."""
        if not workers:
            return {}
        async with client.pipeline(transaction=False) as pipe:
            for name in workers:
                pipe.hgetall(self.keys.worker_rejects(self.keys.shard(_owner(name)), name))
            replies = await pipe.execute()
        return {name: {text(k): int(v) for k, v in raw.items()} for name, raw in zip(workers, replies, strict=True)
                if raw}
