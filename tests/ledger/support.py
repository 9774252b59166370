"""Helpers shared by the ledger tests: deterministic share streams, a geo-like contributor, ledgers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import redis

from pool.config.ledger import LedgerConfig, PayoutConfig, RedisConfig
from pool.shares.blocks import Confirmations
from pool.shares.ledger import Ledger
from pool.shares.redis_ops import RedisOp
from pool.stratum.events import ShareRecord

ACCOUNTS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"]


def record(i: int, timestamp: float | None = None) -> ShareRecord:
    """Share number i of a deterministic stream: integer difficulties so float sums are exact."""
    account = ACCOUNTS[i % len(ACCOUNTS)]
    return ShareRecord(timestamp=time.time() if timestamp is None else timestamp, account=account,
                       worker=f"{account}.rig{i % 11}", difficulty=float(1024 * (1 + i % 5)),
                       share_difficulty=1e9, height=800_000, country="US" if i % 3 else "KZ")


def expected_totals(count: int) -> tuple[int, float, dict[str, tuple[int, float]]]:
    """(shares, difficulty, per account (shares, difficulty)) of the first `count` records."""
    per: dict[str, list[float]] = {}
    total = 0.0
    for i in range(count):
        r = record(i, 0.0)
        total += r.difficulty
        slot = per.setdefault(r.account, [0, 0.0])
        slot[0] += 1
        slot[1] += r.difficulty
    return count, total, {a: (int(v[0]), v[1]) for a, v in per.items()}


class CountryContributor:
    """Stands in for the geo rollups: difficulty per country in its own hash tag."""

    key = "{gs:geo-test}:countries"

    def ops(self, records: list[ShareRecord], batch_id: str) -> list[RedisOp]:
        sums: dict[str, float] = {}
        for r in records:
            sums[r.country] = sums.get(r.country, 0.0) + r.difficulty
        return [RedisOp("HINCRBYFLOAT", self.key, (country, repr(diff))) for country, diff in sums.items()]


def make_ledger(journal_dir: Path, url: str, mode: str = "single", node: str = "test-node",
                urls: list[str] | None = None, payouts: PayoutConfig | None = None,
                confirmations: Confirmations | None = None, **overrides: object) -> Ledger:
    settings: dict[str, object] = {"journal_dir": str(journal_dir), "flush_interval_ms": 20,
                                   "redis_retry_ms": 50, "down_cut_interval_ms": 200}
    settings.update(overrides)
    config = LedgerConfig(**settings)  # type: ignore[arg-type]
    config.validate()
    ledger = Ledger(config, RedisConfig(mode=mode, url=url, urls=urls or [], connect_timeout_s=0.5,
                                        socket_timeout_s=2.0), node, payouts, confirmations=confirmations)
    ledger.add_contributor(CountryContributor())
    return ledger


async def flush_until_done(ledger: Ledger, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await ledger.flush():
        if time.monotonic() > deadline:
            raise AssertionError(f"ledger did not drain: {ledger.snapshot()}")
        await asyncio.sleep(0.05)


def read_totals(url: str, mode: str = "single") -> tuple[int, float, dict[str, tuple[int, float]], dict[str, float]]:
    """What Redis holds: pool totals, per-account totals, and the contributor's per-country sums."""
    client: redis.Redis | redis.RedisCluster
    client = redis.RedisCluster.from_url(url) if mode == "cluster" else redis.Redis.from_url(url)
    n, d = client.hmget("{gs:pool}:tot", ["n", "d"])
    per: dict[str, tuple[int, float]] = {}
    for shard in range(16):
        counts = client.hgetall(f"{{gs:s{shard}}}:acct:n")
        diffs = client.hgetall(f"{{gs:s{shard}}}:acct:d")
        for name, value in counts.items():
            per[name.decode()] = (int(value), float(diffs[name]))
    countries = {k.decode(): float(v) for k, v in client.hgetall(CountryContributor.key).items()}
    client.close()
    return int(float(n or 0)), float(d or 0), per, countries


def expected_countries(count: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for i in range(count):
        r = record(i, 0.0)
        out[r.country] = out.get(r.country, 0.0) + r.difficulty
    return out
