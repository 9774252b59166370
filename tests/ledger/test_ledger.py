"""Ledger behaviour on a real redis-server: totals, contributors, bad input, hashrate, reads, stats."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest
import redis

from pool.cluster.leases import LeaseError, lease_holders, lease_prefix
from pool.config import ConfigError, from_dict
from pool.config.ledger import RedisConfig
from pool.shares.hashrate import HASHES_PER_DIFFICULTY, bucket_starts
from pool.shares.keys import Keys, key_slot, tag_for_slot
from pool.shares.redis_conn import create_redis
from pool.shares.redis_ops import RedisOp
from pool.stratum.events import ShareRecord
from tests.ledger.conftest import RedisCluster
from tests.ledger.support import (
    CountryContributor,
    expected_countries,
    expected_totals,
    flush_until_done,
    make_ledger,
    read_totals,
    record,
)
from tests.support.waiting import wait_for


async def test_totals_batches_and_contributor_applied_once(redis_url: str, journal_dir: Path) -> None:
    ledger = make_ledger(journal_dir, redis_url, flush_max_shares=500, max_batch_shares=1000)
    await ledger.start()
    for i in range(4321):
        ledger.add(record(i))
    await flush_until_done(ledger)
    stats = ledger.snapshot()
    await ledger.stop()
    shares, diff, per_account, countries = read_totals(redis_url)
    want = expected_totals(4321)
    assert (shares, diff, per_account) == want
    assert countries == expected_countries(4321)
    assert stats.shares_flushed == 4321 and stats.batches_flushed >= 5  # no batch above 1000 shares
    assert stats.queued_batches == 0 and stats.pending_shares == 0 and stats.lag_s == 0
    assert stats.redis_up and stats.last_flush_at > 0 and stats.round_trips >= stats.batches_flushed


async def test_bad_input_is_refused_with_a_clear_error(redis_url: str, journal_dir: Path) -> None:
    ledger = make_ledger(journal_dir, redis_url)
    with pytest.raises(RuntimeError, match="not started"):
        ledger.add(record(0))
    await ledger.start()
    with pytest.raises(TypeError, match="ShareRecord"):
        ledger.add({"account": "x"})  # type: ignore[arg-type]
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="difficulty"):
            ledger.add(ShareRecord(timestamp=1.0, account="a", worker="a.b", difficulty=bad,
                                   share_difficulty=1.0, height=1))
    with pytest.raises(ValueError, match="block_hash"):
        await ledger.record_block("xyz", 1, "a", "a.b", 1, 1.0)
    with pytest.raises(ValueError, match="network difficulty"):
        ledger.set_network(0)
    with pytest.raises(ValueError, match="node"):
        make_ledger(journal_dir, redis_url, node="../escape")
    await ledger.stop()


class BadContributor:
    def __init__(self) -> None:
        self.calls = 0

    def ops(self, records: list[ShareRecord], batch_id: str) -> list[RedisOp]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("geo database is being swapped")
        return [RedisOp("FLUSHALL", "{x}", ()), "not an op",  # type: ignore[list-item]
                RedisOp("HINCRBY", "{gs:geo-test}:ok", ("n", len(records)))]


async def test_a_failing_contributor_never_costs_shares(redis_url: str, journal_dir: Path) -> None:
    ledger = make_ledger(journal_dir, redis_url)
    bad = BadContributor()
    ledger.add_contributor(bad)
    with pytest.raises(TypeError):
        ledger.add_contributor(object())  # type: ignore[arg-type]
    await ledger.start()
    for i in range(10):
        ledger.add(record(i))
    await flush_until_done(ledger)
    for i in range(10, 30):
        ledger.add(record(i))
    await flush_until_done(ledger)
    stats = ledger.snapshot()
    await ledger.stop()
    assert read_totals(redis_url)[0] == 30
    assert stats.contributor_errors == 3  # the exception, then FLUSHALL and "not an op"
    assert redis.Redis.from_url(redis_url).hget("{gs:geo-test}:ok", "n") == b"20"


async def test_hashrate_windows_workers_accounts_round(redis_url: str, journal_dir: Path) -> None:
    ledger = make_ledger(journal_dir, redis_url)
    await ledger.start()
    now = time.time()
    # alice.rig0: 6 shares of 1024 in the last minute; bob.rig1: one share of 2048 two hours ago
    for k in range(6):
        ledger.add(ShareRecord(timestamp=now - 5 * k, account="alice", worker="alice.rig0", difficulty=1024.0,
                               share_difficulty=2000.0, height=1))
    ledger.add(ShareRecord(timestamp=now - 7200, account="bob", worker="bob.rig1", difficulty=2048.0,
                           share_difficulty=2048.0, height=1))
    await flush_until_done(ledger)
    reader = ledger.reader
    book = reader.hashrate
    keys = ledger.keys
    alice = (await book.windows(reader.client, keys.shard("alice"), ["w:alice.rig0", "a:alice"], now=now))
    one_minute = alice["w:alice.rig0"].m1
    assert (one_minute.difficulty, one_minute.shares) == (6 * 1024, 6)
    # Covered from its first share (25 s before now): not the window, not the bucket's start.
    assert one_minute.covered_seconds == pytest.approx(25.0)
    # The first share started the clock: 5 shares in the 25 s since it (6 would bias a young worker up).
    assert one_minute.first_share_excluded
    assert one_minute.hashrate == pytest.approx(5 * 1024 * HASHES_PER_DIFFICULTY / 25.0)
    assert one_minute.warming_up and one_minute.low < one_minute.hashrate < one_minute.high
    assert alice["a:alice"].h24.shares == 6
    pool = await book.pool_windows(reader.client, now=now)
    assert pool.h1.difficulty == 6 * 1024  # bob's share is older than an hour
    assert (pool.h24.difficulty, pool.h24.shares) == (6 * 1024 + 2048, 7)
    bob = await book.windows(reader.client, keys.shard("bob"), ["a:bob"], now=now)
    assert bob["a:bob"].h24.difficulty == 2048
    # First observations are durable: the pool's is its start (or its first share, if earlier).
    firsts = await book.first_observed(reader.client, keys.shard("alice"), ["w:alice.rig0", "a:alice"])
    assert firsts == [pytest.approx(now - 25), pytest.approx(now - 25)]
    assert (await book.first_observed(reader.client, keys.pool, ["d"]))[0] == pytest.approx(now - 7200)
    workers = await reader.workers()
    assert [w.worker for w in workers] == ["alice.rig0", "bob.rig1"]
    assert [w.worker for w in await reader.workers(active_since=now - 60)] == ["alice.rig0"]
    assert [w.worker for w in await reader.workers(account="bob")] == ["bob.rig1"]
    accounts = {a.account: a for a in await reader.accounts()}
    assert (accounts["alice"].shares, accounts["alice"].difficulty) == (6, 6144.0)
    history = await book.history(reader.client, keys.shard("alice"), "a:alice", 3600, now=now)
    assert sum(p.shares for p in history.points) == 6
    assert sum(p.hashrate * max(p.seconds, 1.0) for p in history.points) == pytest.approx(6144 * HASHES_PER_DIFFICULTY)
    current = await reader.round()
    assert (current.shares, current.difficulty) == (7, 6144 + 2048)
    assert await reader.account_totals() == {"alice": (6, 6144.0), "bob": (1, 2048.0)}
    await ledger.stop()

    # A restart (a new process, a later start) keeps every first observation: no figure jumps.
    again = make_ledger(journal_dir, redis_url)
    await again.start()
    again.add(ShareRecord(timestamp=now, account="alice", worker="alice.rig0", difficulty=1024.0,
                          share_difficulty=2000.0, height=1))
    await flush_until_done(again)
    assert await book.first_observed(reader.client, keys.shard("alice"), ["w:alice.rig0"]) == [
        pytest.approx(now - 25)]
    assert (await book.first_observed(reader.client, keys.pool, ["d"]))[0] == pytest.approx(now - 7200)
    after = (await book.windows(reader.client, keys.shard("alice"), ["w:alice.rig0"], now=now))["w:alice.rig0"]
    assert after.m1.covered_seconds == pytest.approx(25.0) and after.m1.shares == 7
    await again.stop()


def test_bucket_math() -> None:
    assert bucket_starts(1005.0, 60, 10) == [940, 950, 960, 970, 980, 990, 1000]
    assert bucket_starts(1000.0, 60, 10)[0] == 940


def test_key_layout_keeps_related_keys_in_one_slot() -> None:
    keys = Keys("gs", 16)
    shard = keys.shard("alice")
    assert key_slot(keys.bucket(shard, 10, 0)) == key_slot(keys.seen_workers(shard)) == key_slot(
        keys.account_difficulty(shard))
    assert key_slot(keys.round_current) == key_slot(keys.pplns_slice(3)) == key_slot(keys.totals(keys.pool))
    assert key_slot(keys.ledger) == key_slot(keys.block("ab")) == key_slot(keys.balances)
    for slot in (0, 1, 5000, 16383):
        assert key_slot(keys.marker_key(slot, "batch-1")) == slot
        assert key_slot(tag_for_slot(slot)) == slot


async def test_ledger_on_cluster_reads_back(cluster: RedisCluster, journal_dir: Path) -> None:
    ledger = make_ledger(journal_dir, cluster.url, "cluster", urls=cluster.urls)
    await ledger.start()
    for i in range(1000):
        ledger.add(record(i))
    await flush_until_done(ledger)
    assert await ledger.reader.totals() == expected_totals(1000)[:2]
    assert {w.worker for w in await ledger.reader.workers()} == {record(i).worker for i in range(1000)}
    await ledger.stop()


async def test_prefix_leases_are_unique_renewed_and_released(redis_url: str) -> None:
    client = create_redis(RedisConfig(url=redis_url))
    lost: list[int] = []
    leases = [await lease_prefix(client, f"host-a/worker-{i}", size_bytes=1, ttl_s=1.0, renew_every_s=0.2,
                                 on_lost=lambda lease: lost.append(lease.value)) for i in range(20)]
    values = [lease.value for lease in leases]
    assert len(set(values)) == 20 and all(0 <= v < 256 for v in values)
    assert leases[0].prefix == values[0].to_bytes(1, "big")
    await asyncio.sleep(1.5)  # the time under test: longer than the TTL, and renewals keep them
    holders = await lease_holders(client)
    assert set(holders) == set(values)
    await client.delete(leases[1].key)  # Redis lost one: its owner is told
    await wait_for(lambda: lost, 5, "the lost lease to be noticed")
    assert lost == [values[1]] and leases[1].lost
    for lease in leases:
        await lease.release()
    assert await lease_holders(client) == {}
    await client.aclose()


async def test_prefix_space_exhausted(redis_url: str) -> None:
    client = create_redis(RedisConfig(url=redis_url))
    for value in range(256):
        await client.set(f"{{gs:lease}}:p:{value}", "someone else")
    with pytest.raises(LeaseError):
        await lease_prefix(client, "late", size_bytes=1)
    with pytest.raises(ValueError):
        await lease_prefix(client, "x", size_bytes=4)
    await client.aclose()


@pytest.mark.parametrize(("section", "values", "key"), [
    ("redis", {"mode": "replica"}, "redis.mode"),
    ("redis", {"mode": "sentinel"}, "redis.urls"),
    ("redis", {"key_prefix": "a{b}"}, "redis.key_prefix"),
    ("ledger", {"flush_interval_ms": 0}, "ledger.flush_interval_ms"),
    ("ledger", {"max_batch_shares": 10}, "ledger.max_batch_shares"),
    ("ledger", {"coarse_bucket_s": 601}, "ledger.coarse_bucket_s"),
    ("ledger", {"fine_retention_s": 60}, "ledger.fine_retention_s"),
    ("payouts", {"scheme": "prop"}, "payouts.scheme"),
    ("payouts", {"fee_percent": 100}, "payouts.fee_percent"),
    ("payouts", {"pool_account": "pool"}, "payouts.pool_account"),
])
def test_config_errors_name_the_key(section: str, values: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_dict({section: values})
    assert info.value.key == key


def test_default_config_is_valid() -> None:
    config = from_dict({})
    assert (config.ledger.flush_interval_ms, config.payouts.scheme) == (100, "pplns")
    assert msgspec.json.decode(msgspec.json.encode(config.ledger), type=type(config.ledger)) == config.ledger


def test_contributor_key_layout_used_by_tests() -> None:
    assert CountryContributor.key.startswith("{")


async def test_windows_are_summed_inside_redis(redis_url: str, journal_dir: Path) -> None:
    """The windows the Lua script sums agree with the shares (the ranking: tests/ledger/test_ranking.py)."""
    ledger = make_ledger(journal_dir, redis_url)
    await ledger.start()
    now = time.time()
    work = {"a.fast": 9.0, "a.mid": 4.0, "b.slow": 1.0}
    for name, difficulty in work.items():
        for k in range(3):
            ledger.add(ShareRecord(timestamp=now - 70 * k, account=name.split(".")[0], worker=name,
                                   difficulty=difficulty, share_difficulty=difficulty, height=1))
    ledger.add(ShareRecord(timestamp=now - 1200, account="c", worker="c.old", difficulty=100.0,
                           share_difficulty=100.0, height=1))
    await flush_until_done(ledger)
    book, client = ledger.reader.hashrate, ledger.reader.client
    # 3 shares of 9 in the last 5 minutes.
    fast = (await book.windows(client, ledger.keys.shard("a"), ["w:a.fast"], now=now))["w:a.fast"]
    assert (fast.m5.shares, fast.m5.difficulty, fast.m1.shares) == (3, 27.0, 1)
    assert await ledger.reader.count_seen_workers(now - 86_400) == 4
    await ledger.stop()
