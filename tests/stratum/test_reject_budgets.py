# ruff: noqa: F811  (make_pool and make_node fixtures are imported)
"""Defect 6 of issue 15 over real sockets: reject budgets per connection and per source address end
in a ban while honest miners keep mining, and resume state (the local park and its Redis entry)
exists only for connections that authorized, capped by limits.max_parked_sessions."""

from __future__ import annotations

import contextlib
from typing import Any

import redis.asyncio as aioredis

from pool.chain.types import Job
from pool.config.stratum import LimitsConfig
from tests.stratum.support import NOW, TestJobSource, config, grind, make_job, new_session, send, submit
from tests.stratum.test_hostile_clients import ended
from tests.stratum.test_resume_server import make_node, subscribe  # noqa: F401  (fixture)
from tests.stratum.test_server_sockets import Client, connect, make_pool  # noqa: F401  (fixture)
from tests.support.waiting import wait_for

BUDGETS = {"reject_budget_per_connection": 50, "reject_budget_per_ip": 200, "ban_seconds": 300,
           "submits_per_second": 10_000, "submit_burst": 10_000}


class Miner:
    """An honest miner: valid shares at difficulty 1e-9, ground for its extranonce1."""

    def __init__(self, client: Client, extranonce1: bytes, job: Job) -> None:
        self.client, self.extranonce1, self.job, self.nonce = client, extranonce1, job, 0

    def next_share(self, request_id: int) -> dict[str, Any]:
        en2, self.nonce = grind(self.job, self.extranonce1, min_difficulty=1e-9, start=self.nonce)
        self.nonce += 1
        return submit("acct.w", self.job.job_id, en2, self.job.ntime, self.nonce - 1, request_id=request_id)

    async def share(self, request_id: int) -> dict[str, Any]:
        await self.client.send(self.next_share(request_id))
        return await self.client.until(lambda m: m.get("id") == request_id)


async def miner(pool: Any, source: str) -> Miner:
    client = await connect(pool.port, source=source)
    return Miner(client, await client.handshake(), pool.jobs.current_job())


def unknown_jobs(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [submit("acct.w", "no-such-job", b"\0" * 8, 0, start + i, request_id=10_000 + start + i)
            for i in range(count)]


async def test_a_connection_past_its_reject_budget_is_banned_an_honest_one_is_not(make_pool: Any) -> None:
    pool = await make_pool(config(difficulty=1e-9, limits=LimitsConfig(**BUDGETS)))
    honest = await miner(pool, "127.0.3.2")
    # Honest: a few rejects (a stale burst after a new block) among its accepted shares.
    await honest.client.send(*unknown_jobs(20))
    for i in range(40):
        assert (await honest.share(100 + i))["result"] is True
    storm = await connect(pool.port, source="127.0.3.1")
    await storm.handshake()
    await storm.send(*unknown_jobs(60))              # 50 is the budget: the 50th reject ends it
    assert await ended(storm)
    bans = {b.target: b.reason for b in pool.server.list_bans()}
    assert bans == {"127.0.3.1": "reject budget exceeded"}
    again = await connect(pool.port, source="127.0.3.1")
    assert await ended(again)
    assert (await honest.share(999))["result"] is True


async def test_an_address_past_its_reject_budget_is_banned_with_all_its_connections(make_pool: Any) -> None:
    pool = await make_pool(config(difficulty=1e-9, limits=LimitsConfig(**BUDGETS)))
    fleet = [await miner(pool, f"127.0.4.{10 + i}") for i in range(5)]
    storm = [await connect(pool.port, source="127.0.4.1") for _ in range(10)]
    for attacker in storm:
        await attacker.handshake()
    # Each connection stays under its own budget (30 < 50); together they pass the address's (200).
    for round_ in range(3):
        for attacker in storm:
            with contextlib.suppress(ConnectionError):   # banned already
                await attacker.send(*unknown_jobs(10, start=round_ * 10))
        for n, honest in enumerate(fleet):    # the honest fleet keeps mining meanwhile
            assert (await honest.share(500 + round_ * 10 + n))["result"] is True
    for attacker in storm:
        assert await ended(attacker)
    assert {b.target: b.reason for b in pool.server.list_bans()} == {
        "127.0.4.1": "reject budget of the address exceeded"}
    for n, honest in enumerate(fleet):
        assert (await honest.share(900 + n))["result"] is True
    assert len(pool.server.reject_budget) <= 1       # state only for addresses with rejects this window


def test_the_budget_is_a_share_of_the_submits_not_a_count_alone() -> None:
    cfg = config(difficulty=1e-9, limits=LimitsConfig(**BUDGETS))
    jobs = TestJobSource()
    jobs.publish(make_job("w1"))
    session = new_session(cfg, jobs)
    send(session, {"id": 1, "method": "mining.subscribe", "params": []})
    send(session, {"id": 2, "method": "mining.authorize", "params": ["acct.w", "x"]})
    honest = Miner(None, session.extranonce1, jobs.current_job())  # type: ignore[arg-type]
    for i in range(200):                              # 200 accepted ...
        assert send(session, honest.next_share(i))[-1]["result"] is True
    for message in unknown_jobs(150):                 # ... and 150 rejects: 43 % < 50 %, not banned
        send(session, message)
    assert session.close_reason is None and session.rejects == 150 and session.submits == 350
    for message in unknown_jobs(60, start=150):       # the 50th more makes 200 of 400: half of them
        send(session, message)
        if session.close_reason:
            break
    assert session.ban_reason == "reject budget exceeded"
    assert session.rejects == 200 and session.submits == 400


async def test_subscribe_churn_leaves_no_resume_state_in_the_pool_or_redis(redis_url: str, make_node: Any) -> None:
    node = await make_node(redis_url, "host-a-w0", prefix=0x0C0000,
                           limits=LimitsConfig(max_parked_sessions=20, max_connections_per_ip=10_000))
    redis = aioredis.Redis.from_url(redis_url)
    try:
        # Subscribe without authorize, disconnect, again: 300 times. Nothing is parked anywhere.
        for _ in range(30):
            batch = [await connect(node.port) for _ in range(10)]
            for client in batch:
                await client.send({"id": 1, "method": "mining.subscribe", "params": ["x/1"]})
            for client in batch:
                await client.until(lambda m: m.get("id") == 1)
                client.close()
            await wait_for(lambda: node.allocator.live == 0, 5, "churned connections released")
        assert node.allocator.parked == 0
        assert not [k async for k in redis.scan_iter("{gs:resume}:t:*")]
        # Authorized ones park, at most max_parked_sessions of them: the oldest parks end first.
        tokens = []
        for _ in range(3):
            batch = [await subscribe(node.port) for _ in range(20)]
            for client, _en1, token in batch:
                tokens.append(token)
                client.close()
            await wait_for(lambda: node.allocator.live == 0, 5, "authorized connections parked")
        assert node.allocator.parked == 20

        async def resume_keys() -> list[bytes]:
            return [k async for k in redis.scan_iter("{gs:resume}:t:*")]

        # The directory sync (every 0.2 s) settles the ended parks: Redis holds the newest 20.
        await wait_for(lambda: node.server.resume.counts["syncs"] > 2, 5, "directory syncs")
        keys = await wait_for(lambda: _exactly(resume_keys, 20), 5, "20 resume keys in Redis")
        assert {k.decode().rsplit(":", 1)[1] for k in keys} == set(tokens[-20:])
        client, _en1, same = await subscribe(node.port, tokens[-1])     # the newest still resumes
        assert same == tokens[-1]
        client.close()
    finally:
        await redis.aclose()


async def _exactly(keys: Any, count: int) -> Any:
    found = await keys()
    return found if len(found) == count else None


def test_an_unauthorized_session_parks_nothing() -> None:
    jobs = TestJobSource()
    jobs.publish(make_job("w1"))
    session = new_session(config(), jobs)
    send(session, {"id": 1, "method": "mining.subscribe", "params": []})
    assert session.allocator.live == 1
    assert session.connection_lost(NOW) is None
    assert session.allocator.live == 0 and session.allocator.parked == 0


async def test_a_trusted_proxy_is_never_banned_by_a_budget(make_pool: Any) -> None:
    # A balancer that sends no PROXY header (proxy_header_required = false) shows its own address for
    # every miner behind it: the address budget does not apply to it, a connection's budget ends that
    # connection, and nobody is banned.
    cfg = config(difficulty=1e-9, limits=LimitsConfig(**BUDGETS), trusted_proxies=["127.0.5.1"],
                 proxy_header_required=False)
    pool = await make_pool(cfg)
    behind = [await miner(pool, "127.0.5.1") for _ in range(10)]
    for n, connection in enumerate(behind):      # 300 rejects over the address, 30 on each connection
        await connection.client.send(*unknown_jobs(30, start=100 * n))
    for n, connection in enumerate(behind):
        assert (await connection.share(5000 + n))["result"] is True
    attacker = await connect(pool.port, source="127.0.5.1")
    await attacker.handshake()
    await attacker.send(*unknown_jobs(60))       # past its own budget (50)
    assert await ended(attacker)
    assert pool.server.list_bans() == []
    honest = await miner(pool, "127.0.5.1")
    assert (await honest.share(1))["result"] is True


async def test_a_full_server_gives_up_its_oldest_unauthorized_connection_not_the_miner(make_pool: Any) -> None:
    # Idle and slowloris sockets filling max_connections must not lock an honest miner out.
    pool = await make_pool(config(difficulty=1e-9, limits=LimitsConfig(max_connections=6)))
    honest = [await miner(pool, f"127.0.6.{n}") for n in (1, 2)]          # authorized first
    idle = [await connect(pool.port, source="127.0.6.9") for _ in range(4)]  # then four that never authorize
    await wait_for(lambda: pool.server.snapshot().connections == 6, 5, "six connections")
    newcomer = await miner(pool, "127.0.6.3")                              # the seventh: the oldest idle goes
    assert await ended(idle[0])
    assert (await newcomer.share(1))["result"] is True
    for n, connection in enumerate(honest):
        assert (await connection.share(10 + n))["result"] is True
    later = [await miner(pool, f"127.0.6.{n}") for n in (4, 5, 6)]          # three more: the other idle go
    for client in idle[1:]:
        assert await ended(client)
    # Every connection authorized now: a newcomer is refused, nobody working is dropped.
    refused = await connect(pool.port, source="127.0.6.7")
    assert await ended(refused)
    for n, connection in enumerate([*honest, newcomer, *later]):
        assert (await connection.share(300 + n))["result"] is True
