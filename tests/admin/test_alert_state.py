"""The alert monitor's memory across a restart, in a real redis-server, with a real HTTP receiver on
127.0.0.1: a second monitor (a restarted pool) repeats nothing the first one said, misses nothing that
changed while it was down (the node back, a block found, one orphaned, an offline worker back), and sends what the
first one had not delivered when it stopped."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from pool.admin.alerts import AlertMonitor, state_changes
from pool.admin.interfaces import BlockInfo, ComponentHealth
from pool.admin.notify import Notifier
from pool.admin_wiring.alert_store import RedisAlertStore
from pool.config.alerts import AlertsConfig
from pool.stratum.events import ShareRecord
from tests.admin.providers import InMemoryPool
from tests.admin.test_alerts import Receiver, target
from tests.support.waiting import wait_for

T0 = 1_800_000_000.0
TAG = "{gs:pool}"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def block(hash_: str, height: int, status: str = "pending") -> BlockInfo:
    return BlockInfo(height=height, hash=hash_ * 32, found_at=T0, worker="alice.rig", account="alice",
                     status=status, reward_sat=312_500_000)  # type: ignore[arg-type]


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


def monitor(pool: InMemoryPool, client: aioredis.Redis, receiver: Receiver, clock: Clock) -> AlertMonitor:
    config = AlertsConfig(worker_offline_minutes=10, targets=[target(receiver.url + "/hook")])
    return AlertMonitor(config, pool, Notifier(config.targets), pool="p", clock=clock,
                        store=RedisAlertStore(lambda: client, TAG, max_outbox=lambda: 100))


def events(receiver: Receiver) -> list[tuple[str, str]]:
    said = [json.loads(body) for _, _, body in receiver.requests]
    return [(a["event"], a["details"]["hash"][:2] if a["event"].startswith("block") else
             a["worker"] or a["details"].get("component", "")) for a in said]


def node(pool: InMemoryPool, ok: bool) -> None:
    pool.components = [ComponentHealth(name="redis", ok=True), ComponentHealth(name="node:local", ok=ok)]


async def sent(receiver: Receiver, count: int, client: aioredis.Redis | None = None) -> None:
    """`count` requests at the receiver; with `client`, also every reply in (the outbox emptied)."""
    await wait_for(lambda: len(receiver.requests) >= count, 10, f"{count} alerts at the receiver")
    if client is not None:
        await wait_for(lambda: _outbox_empty(client), 10, "the outbox emptied")


async def test_a_restarted_monitor_neither_repeats_nor_misses(redis_client: aioredis.Redis, receiver: Receiver) -> None:
    clock = Clock()
    pool = InMemoryPool(clock=clock)
    pool.connect("alice.rig")
    pool.add_share(ShareRecord(timestamp=T0, account="alice", worker="alice.rig", difficulty=1.0,
                              share_difficulty=1.0, height=100))
    pool.blocks_found = [block("aa", 100, "pending")]
    first = monitor(pool, redis_client, receiver, clock)
    await first.notifier.start()                       # checks are run by the test
    try:
        # alice mines, the node is up, block aa exists; the geolocation database is stale (once a day).
        assert [a.event for a in await first.check()] == ["geo_stale"]
        pool.connections.clear()                            # alice leaves; the node goes down
        node(pool, False)
        clock.now = T0 + 601
        assert sorted(a.event for a in await first.check()) == ["node_down", "worker_offline"]
        await sent(receiver, 3, redis_client)
    finally:
        await first.stop()

    # While the pool is down: the node comes back, another process's block is found, and aa leaves the chain.
    node(pool, True)
    pool.blocks_found.append(block("bb", 101))
    pool.blocks_found[0].status = "orphaned"
    clock.now = T0 + 700
    second = monitor(pool, redis_client, receiver, clock)
    await second.notifier.start()                       # checks are run by the test
    try:
        assert sorted(a.event for a in await second.check()) == ["block_found", "block_orphaned", "node_up"]
        await sent(receiver, 6)
        clock.now = T0 + 800
        assert await second.check() == []                   # said once
        pool.connect("alice.rig")                           # alice is back: known to be offline before
        assert [(a.event, a.worker) for a in await second.check()] == [("worker_online", "alice.rig")]
        await sent(receiver, 7, redis_client)
    finally:
        await second.stop()
    assert events(receiver) == [("geo_stale", ""), ("node_down", "node:local"), ("worker_offline", "alice.rig"),
                                ("node_up", "node:local"), ("block_found", "bb"), ("block_orphaned", "aa"),
                                ("worker_online", "alice.rig")]


async def test_what_a_stopped_monitor_had_not_delivered_is_sent_by_the_next(
        redis_client: aioredis.Redis, receiver: Receiver) -> None:
    clock = Clock()
    pool = InMemoryPool(clock=clock)
    first = monitor(pool, redis_client, receiver, clock)
    await first.notifier.start()                       # checks are run by the test
    try:
        assert [a.event for a in await first.check()] == ["geo_stale"]
        await sent(receiver, 1, redis_client)
        receiver.hang.clear()                               # the receiver takes the request, never answers
        node(pool, False)
        assert [a.event for a in await first.check()] == ["node_down"]
        await sent(receiver, 2)
    finally:
        await first.stop()                                  # cut off mid-send
    assert await redis_client.llen(f"{TAG}:alerts:outbox") == 1
    receiver.hang.set()
    second = monitor(pool, redis_client, receiver, clock)
    await second.notifier.start()                       # checks are run by the test
    try:
        assert await second.check() == []                   # not said again as new ...
        await sent(receiver, 3)                             # ... but the undelivered one is sent
        await wait_for(lambda: _outbox_empty(redis_client), 10, "the outbox emptied")
    finally:
        await second.stop()
    # The send cut off by the stop, then the resend.
    assert [e for e, _ in events(receiver)] == ["geo_stale", "node_down", "node_down"]


async def _outbox_empty(client: aioredis.Redis) -> bool:
    return await client.llen(f"{TAG}:alerts:outbox") == 0


async def test_redis_down_at_start_runs_only_the_node_and_redis_rules_until_it_answers(
        receiver: Receiver, redis_client: aioredis.Redis) -> None:
    clock = Clock()
    pool = InMemoryPool(clock=clock)
    pool.blocks_found = [block("aa", 100)]
    down = aioredis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))   # nothing listens on port 1
    reachable: list[aioredis.Redis] = [down]
    current: Callable[[], aioredis.Redis] = lambda: reachable[0]  # noqa: E731
    config = AlertsConfig(targets=[target(receiver.url + "/hook")])
    watcher = AlertMonitor(config, pool, Notifier(config.targets), clock=clock,
                           store=RedisAlertStore(current, TAG, max_outbox=lambda: 100))
    await watcher.notifier.start()                       # checks are run by the test
    try:
        pool.components = [ComponentHealth(name="redis", ok=False, detail="connection refused"),
                           ComponentHealth(name="node:local", ok=True)]
        assert [a.event for a in await watcher.check()] == ["redis_down", "geo_stale"]
        assert not watcher.restored and pool.calls["blocks"] == 0       # the Redis-backed rules wait
        reachable[0] = redis_client
        pool.components = [ComponentHealth(name="redis", ok=True), ComponentHealth(name="node:local", ok=True)]
        assert [a.event for a in await watcher.check()] == ["redis_up"]
        assert watcher.restored and pool.calls["blocks"] == 1
        assert (await redis_client.hgetall(f"{TAG}:alerts:down")) == {b"redis": b"0"}   # up is the default
    finally:
        await watcher.stop()
        await down.aclose()


async def test_one_monitor_of_many_hosts_runs_and_another_takes_over_when_it_stops(
        redis_client: aioredis.Redis, receiver: Receiver) -> None:
    clock = Clock()
    pool = InMemoryPool(clock=clock)
    here, there = (monitor(pool, redis_client, receiver, clock) for _ in range(2))
    await here.notifier.start()
    await there.notifier.start()
    try:
        assert [a.event for a in await here.check()] == ["geo_stale"]
        node(pool, False)
        assert await there.check() == [] and not there.leader              # stands by: nothing read
        assert pool.calls["health"] == 1
        assert [a.event for a in await here.check()] == ["node_down"]
        await sent(receiver, 2, redis_client)
        await here.stop()                                                   # releases the lease
        node(pool, True)
        assert [a.event for a in await there.check()] == ["node_up"]       # took over, with here's memory
        await sent(receiver, 3)
    finally:
        await here.stop()
        await there.stop()
    assert [e for e, _ in events(receiver)] == ["geo_stale", "node_down", "node_up"]


def test_state_changes_are_the_fields_to_set_and_delete() -> None:
    old = {"seen": {"a": "1", "b": "1"}, "blocks": {"aa": "pending"}}
    new = {"seen": {"b": "1", "c": "1"}, "blocks": {"aa": "confirmed"}, "meta": {}}
    assert state_changes(old, new) == {"seen": ({"c": "1"}, ["a"]), "blocks": ({"aa": "confirmed"}, [])}
    assert state_changes(new, new) == {}
