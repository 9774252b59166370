"""Resume across two StratumServers (two "processes" with different extranonce1 prefixes) sharing one
real redis-server as the directory, over real sockets on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from pool.cluster.resume_store import RedisResumeDirectory
from pool.sim.redis_server import RedisProcess
from pool.stratum.events import ShareRecord
from pool.stratum.extranonce import ExtranonceAllocator, ExtranonceExhausted
from pool.stratum.server import StratumServer
from tests.stratum.support import EASY_NBITS, TestJobSource, config, grind, make_job, submit
from tests.stratum.test_server_sockets import Client, connect
from tests.support.waiting import wait_for

BITS = 24           # a 256-value space per prefix: small enough to walk completely


def resume_config(**overrides: Any) -> Any:
    return config(difficulty=1e-9, session_resume_seconds=overrides.pop("park", 30.0), resume_sync_seconds=0.2,
                  resume_loan_seconds=3.0, resume_lookup_timeout=overrides.pop("lookup_timeout", 0.5),
                  resume_heartbeat_seconds=0.2, resume_holder_timeout=0.6,
                  resume_directory_wait=overrides.pop("directory_wait", 0.6), **overrides)


class Node:
    def __init__(self, server: StratumServer, shares: list[ShareRecord]) -> None:
        self.server, self.shares = server, shares

    @property
    def port(self) -> int:
        return self.server.config.ports[0].port

    @property
    def allocator(self) -> ExtranonceAllocator:
        return self.server.allocator


@pytest.fixture
async def make_node() -> AsyncIterator[Callable[..., Any]]:
    started: list[StratumServer] = []
    clients: list[aioredis.Redis] = []
    jobs = TestJobSource()
    jobs.publish(make_job("j1", nbits=EASY_NBITS, height=300))

    async def factory(url: str, name: str, prefix: int, **overrides: Any) -> Node:
        client = aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=1.0)
        clients.append(client)
        directory = RedisResumeDirectory(client, name, key_prefix="gs", prefix_bits=BITS, loan_seconds=3.0)
        cfg = resume_config(**overrides)
        allocator = ExtranonceAllocator(prefix, BITS, park_seconds=cfg.session_resume_seconds, start=0, shared=True)
        shares: list[ShareRecord] = []
        server = StratumServer(cfg, jobs, on_share=shares.append, validate_account=lambda a: True,
                               allocator=allocator, resume_directory=directory, node=name)
        await server.start()
        started.append(server)
        return Node(server, shares)

    yield factory
    for server in started:
        await server.stop(timeout=1.0)
    for client in clients:
        await client.aclose()


async def subscribe(port: int, token: str | None = None, worker: str = "acct.rig") -> tuple[Client, bytes, str]:
    client = await connect(port)
    params = ["cgminer/4.11.1", token] if token else ["cgminer/4.11.1"]
    # Pipelined: authorize arrives in the same packet as the subscribe that waits for the directory.
    await client.send({"id": 1, "method": "mining.subscribe", "params": params},
                      {"id": 2, "method": "mining.authorize", "params": [worker, "x"]})
    reply = await client.recv(timeout=5.0)
    assert reply["id"] == 1, reply
    assert await client.recv() == {"id": 2, "result": True, "error": None}
    await client.until(lambda m: m.get("method") == "mining.notify")
    return client, bytes.fromhex(reply["result"][1]), reply["result"][0][1][1]


async def published(url: str, token: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        for _ in range(200):
            if await client.exists(f"{{gs:resume}}:t:{token}"):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"token {token} never published")
    finally:
        await client.aclose()


async def test_resume_on_another_process_keeps_the_extranonce1_and_shares_count(redis_url: str,
                                                                                make_node: Any) -> None:
    a = await make_node(redis_url, "host-a-w0", prefix=0x0A0000)
    b = await make_node(redis_url, "host-b-w0", prefix=0x0B0000)
    client, en1, token = await subscribe(a.port)
    assert en1[:3] == bytes.fromhex("0a0000")
    client.close()
    await published(redis_url, token)

    again, resumed, same_token = await subscribe(b.port, token)
    assert resumed == en1 and same_token == token
    assert b.allocator.borrowed == 1
    job = b.server.jobs.current_job()
    en2, nonce = grind(job, en1, min_difficulty=1e-9, not_block=False)
    await again.send(submit("acct.rig", "j1", en2, job.ntime, nonce, request_id=9))
    assert await again.until(lambda m: m.get("id") == 9) == {"id": 9, "result": True, "error": None}
    assert b.shares and b.shares[-1].worker == "acct.rig"

    # The token was used up: a second resume with it (here, back on A) gets a fresh value.
    third, other, other_token = await subscribe(a.port, token, worker="acct.other")
    assert other != en1 and other_token != token
    for c in (again, third):
        c.close()


async def test_one_token_claimed_at_once_on_two_processes_succeeds_once(redis_url: str, make_node: Any) -> None:
    a = await make_node(redis_url, "host-a-w0", prefix=0x0A0000)
    b = await make_node(redis_url, "host-b-w0", prefix=0x0B0000)
    client, en1, token = await subscribe(a.port)
    client.close()
    await published(redis_url, token)
    results = await asyncio.gather(subscribe(a.port, token, "acct.x"), subscribe(b.port, token, "acct.y"))
    values = [r[1] for r in results]
    assert values.count(en1) == 1, values
    assert len(set(values)) == 2
    for r in results:
        r[0].close()


async def test_a_lent_value_is_never_reallocated_by_its_owner(redis_url: str, make_node: Any) -> None:
    a = await make_node(redis_url, "host-a-w0", prefix=0x0A0000, park=0.5)
    b = await make_node(redis_url, "host-b-w0", prefix=0x0B0000, park=0.5)
    client, en1, token = await subscribe(a.port)
    client.close()
    await published(redis_url, token)
    moved, resumed, _ = await subscribe(b.port, token)
    assert resumed == en1
    # A's own park of it ends and is settled with the directory, which says B holds the value.
    await wait_for(lambda: not a.allocator.sync_request(time.time())[0] and a.allocator.parked == 0, 10,
                   "A's park to end and be settled")
    assert a.allocator.reserved == 1
    assert a.allocator.is_reserved(en1)
    handed_out: list[bytes] = []
    with pytest.raises(ExtranonceExhausted):
        while True:
            handed_out.append(a.allocator.allocate(time.time())[0])
    assert len(handed_out) == a.allocator.capacity - 1 and en1 not in handed_out
    for value in handed_out:
        a.allocator.release(value)

    # B's miner leaves; B's park of it ends and B gives it back: A may use it again.
    moved.close()
    await wait_for(lambda: b.allocator.borrowed == 0, 10, "B to give the value back")
    await wait_for(lambda: a.allocator.reserved == 0, 10, "A to see it free")
    handed_out = [a.allocator.allocate(time.time())[0] for _ in range(a.allocator.capacity)]
    assert en1 in handed_out


async def test_after_a_restart_the_new_prefix_holder_respects_parks_and_loans(redis_url: str,
                                                                             make_node: Any) -> None:
    a = await make_node(redis_url, "host-a-w0", prefix=0x0A0000)
    clients = [await subscribe(a.port, worker=f"acct.r{i}") for i in range(3)]
    await a.server.stop(timeout=1.0)         # A goes away: its three sessions are parked and published
    for _, _, token in clients:
        await published(redis_url, token)
    b = await make_node(redis_url, "host-b-w0", prefix=0x0B0000)
    moved, resumed, _ = await subscribe(b.port, clients[0][2])
    assert resumed == clients[0][1]
    # A process that takes over prefix 0a0000 starts with every one of them reserved.
    c = await make_node(redis_url, "host-c-w0", prefix=0x0A0000)
    assert all(c.allocator.is_reserved(en1) for _, en1, _ in clients)
    handed_out = []
    with contextlib.suppress(ExtranonceExhausted):
        while True:
            handed_out.append(c.allocator.allocate(time.time())[0])
    assert len(handed_out) == c.allocator.capacity - 3
    assert not {en1 for _, en1, _ in clients} & set(handed_out)
    moved.close()


async def test_redis_down_gives_a_fresh_extranonce1_promptly(make_node: Any) -> None:
    redis = RedisProcess()
    redis.start()
    try:
        a = await make_node(redis.url, "host-a-w0", prefix=0x0A0000)
        client, en1, token = await subscribe(a.port)
        client.close()
        await published(redis.url, token)
    finally:
        redis.stop()
    started = time.monotonic()
    again, fresh, new_token = await subscribe(a.port, token)
    assert fresh != en1 and new_token != token
    assert time.monotonic() - started < 5.0, "the lookup must not hang"
    assert a.server.resume is not None and a.server.resume.counts["failed"] == 1
    again.close()


async def test_a_directory_that_never_answers_times_out_to_a_fresh_extranonce1(redis_url: str,
                                                                              make_node: Any) -> None:
    # A listener that accepts and never replies: the claim hangs until resume_lookup_timeout.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    try:
        node = await make_node(redis_url, "host-a-w0", prefix=0x0A0000, lookup_timeout=0.3)
        silent = aioredis.Redis(host="127.0.0.1", port=hole.getsockname()[1], socket_timeout=30)
        assert node.server.resume is not None
        node.server.resume.directory = RedisResumeDirectory(silent, "host-a-w0", prefix_bits=BITS)
        client, en1, token = await subscribe(node.port, "0a1b2c3d")
        assert en1[:3] == bytes.fromhex("0a0000") and token != "0a1b2c3d"
        assert node.server.resume.counts["failed"] == 1
        client.close()
        await silent.aclose()
    finally:
        hole.close()
