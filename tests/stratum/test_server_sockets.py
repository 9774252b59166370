"""The asyncio server over real sockets on loopback: handshake, fan-out, bad input, limits, PROXY, IPv6."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pool.config.errors import ConfigError
from pool.config.stratum import LimitsConfig, StratumConfig
from pool.stratum import proxy
from pool.stratum.events import ShareRecord
from pool.stratum.server import StratumServer
from tests.stratum.support import EASY_NBITS, TestJobSource, config, grind, make_job, submit
from tests.support.waiting import wait_for


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, *messages: Any) -> None:
        self.writer.write(b"".join(m if isinstance(m, bytes) else json.dumps(m).encode() + b"\n"
                                   for m in messages))
        await self.writer.drain()

    async def recv(self, timeout: float = 2.0) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        if not line:
            raise EOFError
        return json.loads(line)

    async def until(self, predicate: Callable[[dict], bool], timeout: float = 2.0) -> dict[str, Any]:
        while True:
            message = await self.recv(timeout)
            if predicate(message):
                return message

    async def closed(self, timeout: float = 2.0) -> bool:
        """True once the pool has closed the connection, by FIN or by reset (an abort is a close);
        False when it is still open after `timeout` seconds of silence."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), timeout):
                pass
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return True

    async def handshake(self, worker: str = "acct.w") -> bytes:
        await self.send({"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.11.1"]},
                        {"id": 2, "method": "mining.authorize", "params": [worker, "x"]})
        result = (await self.until(lambda m: m.get("id") == 1))["result"]
        assert (await self.until(lambda m: m.get("id") == 2))["result"] is True
        await self.until(lambda m: m.get("method") == "mining.notify")
        return bytes.fromhex(result[1])

    def close(self) -> None:
        self.writer.close()


async def connect(port: int, source: str = "127.0.0.1", host: str = "127.0.0.1", **kw: Any) -> Client:
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0), limit=1 << 20, **kw)
    return Client(reader, writer)


class Pool:
    def __init__(self, server: StratumServer, jobs: TestJobSource, shares: list[ShareRecord],
                 tagged: list[str]) -> None:
        self.server, self.jobs, self.shares, self.tagged = server, jobs, shares, tagged

    @property
    def port(self) -> int:
        return self.server.config.ports[0].port


@pytest.fixture
async def make_pool() -> AsyncIterator[Callable[..., Any]]:
    started: list[StratumServer] = []

    async def factory(cfg: StratumConfig | None = None, job: Any = None) -> Pool:
        jobs = TestJobSource()
        jobs.publish(job or make_job("w1"))
        shares: list[ShareRecord] = []
        tagged: list[str] = []

        def tag(ip: str) -> tuple[str, str, bool]:
            tagged.append(ip)
            return ("DE", "BY", ip.startswith("203."))

        server = StratumServer(cfg or config(difficulty=1e-9), jobs, on_share=shares.append,
                               validate_account=lambda account: account != "bad", tag_connection=tag,
                               node="test-node")
        await server.start()
        started.append(server)
        return Pool(server, jobs, shares, tagged)

    yield factory
    for server in started:
        await server.stop(timeout=1.0)


async def test_pipelined_handshake_share_block_and_fanout(make_pool: Any) -> None:
    pool = await make_pool(job=make_job("w1", nbits=EASY_NBITS, height=200))
    client = await connect(pool.port)
    await client.send(
        {"id": 1, "method": "mining.configure", "params": [["version-rolling"], {"version-rolling.mask": "ffffffff"}]},
        {"id": 2, "method": "mining.subscribe", "params": ["bmminer/2.0.0"]},
        {"id": 3, "method": "mining.authorize", "params": ["acct.rig1", "x"]})
    assert (await client.recv())["id"] == 1          # configure reply is the first line
    en1 = bytes.fromhex((await client.recv())["result"][1])
    assert (await client.recv()) == {"id": 3, "result": True, "error": None}
    assert (await client.recv())["method"] == "mining.set_difficulty"
    notify = await client.recv()
    assert notify["params"][0] == "w1"
    job = pool.jobs.current_job()
    en2, nonce = grind(job, en1, min_difficulty=1e-9, not_block=False, block=True)
    await client.send(submit("acct.rig1", "w1", en2, job.ntime, nonce, request_id=7))
    assert await client.recv() == {"id": 7, "result": True, "error": None}
    record = pool.shares[-1]
    assert (record.worker, record.country, record.subdivision, record.node) == ("acct.rig1", "DE", "BY", "test-node")
    assert record.firmware == "bmminer" and pool.tagged == ["127.0.0.1"]
    assert record.block_hash                          # the share solves the block: it is submitted
    await wait_for(lambda: pool.jobs.submitted, 5, "the block submission")
    assert pool.jobs.submitted[-1][1] is True
    pool.jobs.publish(make_job("w2", height=201))
    assert (await client.until(lambda m: m.get("method") == "mining.notify"))["params"][0] == "w2"
    stats = pool.server.snapshot()
    assert stats.accepted == 1 and stats.ports[0].workers == 1
    assert pool.server.timings.recent()["notify_fanout_last_connections"] == 1 and stats.fanout.count == 1
    assert pool.server.workers()[0]["worker"] == "acct.rig1"
    client.close()


async def test_garbage_and_wrong_types_get_errors_while_others_are_served(make_pool: Any) -> None:
    pool = await make_pool(config(difficulty=1e-9, limits=LimitsConfig(max_bad_messages=4)))
    bad = await connect(pool.port)
    good = await connect(pool.port, source="127.0.0.2")
    await bad.send(b"\x00\xffgarbage\n", b"[1,2,3]\n", {"id": "x", "method": 5})
    for _ in range(3):
        reply = await bad.recv()
        assert reply["result"] is False and reply["error"][0] == 20
    await good.handshake()
    await bad.send(b"{not json\n")
    assert (await bad.recv())["error"][0] == 20
    assert await bad.closed()
    await good.send({"id": 9, "method": "mining.suggest_difficulty", "params": ["lots"]})
    assert (await good.recv())["result"] is True


async def test_oversized_line_and_authorize_timeout_disconnect(make_pool: Any) -> None:
    limits = LimitsConfig(max_line_bytes=1024, authorize_timeout=0.3, sweep_interval=0.1)
    pool = await make_pool(config(difficulty=1e-9, limits=limits))
    big = await connect(pool.port)
    await big.send(b'{"id": 1, "method": "mining.subscribe", "params": ["' + b"A" * 5000)
    assert (await big.recv())["error"][1] == "Line too long"
    assert await big.closed()
    idle = await connect(pool.port, source="127.0.0.3")
    assert await idle.closed(timeout=3.0)


async def test_invalid_share_flood_bans_the_address(make_pool: Any) -> None:
    limits = LimitsConfig(ban_invalid_shares=20, ban_seconds=300, submits_per_second=1000, submit_burst=1000)
    pool = await make_pool(config(difficulty=1.0, limits=limits))
    client = await connect(pool.port, source="127.0.0.4")
    await client.handshake()
    job = pool.jobs.current_job()
    await client.send(*[submit("acct.w", "w1", b"\0" * 8, job.ntime, i, request_id=i) for i in range(40)])
    assert await client.closed()
    assert [b.target for b in pool.server.list_bans()] == ["127.0.0.4"]
    again = await connect(pool.port, source="127.0.0.4")
    assert await again.closed()
    other = await connect(pool.port, source="127.0.0.5")
    await other.handshake()
    assert pool.server.remove_ban("127.0.0.4")
    back = await connect(pool.port, source="127.0.0.4")
    await back.handshake()


async def test_per_ip_connection_limit(make_pool: Any) -> None:
    pool = await make_pool(config(difficulty=1e-9, limits=LimitsConfig(max_connections_per_ip=2)))
    first, second = await connect(pool.port, "127.0.0.6"), await connect(pool.port, "127.0.0.6")
    await first.handshake()
    third = await connect(pool.port, "127.0.0.6")
    assert (await third.recv())["error"][1] == "Too many connections from your address"
    assert await third.closed()
    elsewhere = await connect(pool.port, "127.0.0.7")
    await elsewhere.handshake()
    second.close()
    await wait_for(lambda: pool.server.snapshot().connections == 2, 5, "the closed connection to go")
    fourth = await connect(pool.port, "127.0.0.6")
    await fourth.handshake(worker="acct.w4")


async def test_slow_reader_is_disconnected_and_others_keep_receiving(make_pool: Any) -> None:
    limits = LimitsConfig(max_write_buffer=256 * 1024, sweep_interval=0.05)
    pool = await make_pool(config(difficulty=1e-9, limits=limits), job=make_job("big0", coinbase_pad=0))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind(("127.0.0.8", 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", pool.port))
    slow = Client(*await asyncio.open_connection(sock=sock))
    await slow.send({"id": 1, "method": "mining.subscribe", "params": []},
                    {"id": 2, "method": "mining.authorize", "params": ["acct.slow"]})
    fast = await connect(pool.port, "127.0.0.9")
    await fast.handshake()
    await wait_for(lambda: pool.server.snapshot().sessions == 2, 5, "both sessions")
    for i in range(200):      # 200 notifies of ~90 KB: far more than the kernel buffers hold
        pool.jobs.publish(make_job(f"big{i + 1}", coinbase_pad=45_000, clean=False))
        await fast.until(lambda m, i=i: m.get("method") == "mining.notify" and m["params"][0] == f"big{i + 1}")
        if pool.server.snapshot().sessions == 1:
            break
    assert pool.server.snapshot().sessions == 1
    assert [row["worker"] for row in pool.server.workers()] == ["acct.w"]


async def test_proxy_protocol_trusted_and_untrusted(make_pool: Any) -> None:
    pool = await make_pool(config(difficulty=1e-9, trusted_proxies=["127.0.0.10/32"]))
    for header in (proxy.encode_v1("203.0.113.9", 5555, "198.51.100.1", 3333),
                   proxy.encode_v2("2001:db8::9", 5555, "2001:db8::1", 3333)):
        client = await connect(pool.port, "127.0.0.10")
        await client.send(header)
        await client.handshake()
        client.close()
    assert pool.tagged == ["203.0.113.9", "2001:db8::9"]
    missing = await connect(pool.port, "127.0.0.10")
    await missing.send({"id": 1, "method": "mining.subscribe", "params": []})
    assert await missing.closed()
    spoof = await connect(pool.port, "127.0.0.11")      # not a trusted proxy
    await spoof.send(proxy.encode_v1("8.8.8.8", 1, "9.9.9.9", 2), {"id": 1, "method": "mining.subscribe"})
    assert await spoof.closed()
    assert "8.8.8.8" not in pool.tagged


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 in this kernel")
async def test_ipv6_listener(make_pool: Any) -> None:
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("::1 not configured")
    pool = await make_pool(config(difficulty=1e-9, port={"host": "::1"}))
    client = await connect(pool.port, source="::1", host="::1")
    await client.handshake()
    assert pool.tagged == ["::1"]


async def test_reuse_port_lets_two_servers_share_the_port(make_pool: Any) -> None:
    first = await make_pool(config(difficulty=1e-9, reuse_port=True))
    cfg = config(difficulty=1e-9, reuse_port=True)
    cfg.ports[0].port = first.port
    second = await make_pool(cfg)
    assert second.port == first.port
    clients = [await connect(first.port, f"127.0.1.{i}") for i in range(1, 9)]
    for client in clients:
        await client.handshake()
    assert first.server.snapshot().sessions + second.server.snapshot().sessions == 8


async def test_admin_controls_and_clean_stop(make_pool: Any) -> None:
    pool = await make_pool()
    a = await connect(pool.port, "127.0.0.12")
    await a.handshake("acct.a")
    b = await connect(pool.port, "127.0.0.13")
    await b.handshake("other.b")
    assert pool.server.reconnect("other.b", "pool2.example", 3333) == 1
    assert (await b.recv())["params"] == ["pool2.example", 3333, 0]
    assert pool.server.kick("acct") == 1
    assert await a.closed()
    port = pool.server.set_port_difficulty(pool.port, start=2.0, minimum=1e-6)
    assert port.start_difficulty == 2.0
    with pytest.raises(ConfigError, match="start_difficulty"):
        pool.server.set_port_difficulty(pool.port, minimum=5.0)      # above start: rejected by name
    pool.server.reload_limits(LimitsConfig(max_connections_per_ip=1))
    c = await connect(pool.port, "127.0.0.13")           # b still holds the only slot
    assert (await c.recv())["error"][0] == 20
    ban = pool.server.add_ban("127.0.0.13", 60, "admin test")
    assert ban.target == "127.0.0.13" and await b.closed()
    d = await connect(pool.port, "127.0.0.14")
    await d.handshake("acct.d")
    await pool.server.stop(timeout=1.0)
    assert (await d.until(lambda m: m.get("method") == "client.reconnect"))["params"] == []
    assert await d.closed()


async def test_keepalive_notify_and_solo_jobs_per_payout_address(make_pool: Any) -> None:
    pool = await make_pool(config(difficulty=1e-9, notify_interval=1.0))
    client = await connect(pool.port, "127.0.0.15")
    en1 = await client.handshake("acct.k")
    keepalive = await client.until(lambda m: m.get("method") == "mining.notify", timeout=3.0)
    wire_id, ntime = keepalive["params"][0], int(keepalive["params"][7], 16)
    assert wire_id.startswith("w1.k") and keepalive["params"][8] is False
    job = pool.jobs.current_job()
    en2, nonce = grind(job, en1, min_difficulty=1e-9, ntime=ntime)
    await client.send(submit("acct.k", wire_id, en2, ntime, nonce, request_id=3))
    assert await client.recv() == {"id": 3, "result": True, "error": None}
    assert pool.shares[-1].difficulty == 1e-9

    solo = StratumServer(config(difficulty=1e-9), pool.jobs, on_share=pool.shares.append,
                         validate_account=lambda account: True, solo=True)
    await solo.start()
    try:
        pool.jobs.publish(make_job("alice-1", height=300), payout_key="alice")
        alice = await connect(solo.config.ports[0].port, "127.0.0.16")
        await alice.send({"id": 1, "method": "mining.subscribe", "params": []},
                         {"id": 2, "method": "mining.authorize", "params": ["alice.rig"]})
        assert (await alice.until(lambda m: m.get("method") == "mining.notify"))["params"][0] == "alice-1"
        bob = await connect(solo.config.ports[0].port, "127.0.0.17")
        await bob.send({"id": 1, "method": "mining.subscribe", "params": []},
                       {"id": 2, "method": "mining.authorize", "params": ["bob.rig"]})
        assert (await bob.until(lambda m: m.get("method") == "mining.notify"))["params"][0] != "alice-1"
        pool.jobs.publish(make_job("alice-2", height=301), payout_key="alice")
        assert (await alice.until(lambda m: m.get("method") == "mining.notify"))["params"][0] == "alice-2"
    finally:
        await solo.stop(timeout=1.0)


async def test_version_mask_and_get_version_from_the_server(make_pool: Any) -> None:
    pool = await make_pool()
    rolling = await connect(pool.port, "127.0.0.18")
    await rolling.send({"id": 1, "method": "mining.configure",
                        "params": [["version-rolling"], {"version-rolling.mask": "ffffffff"}]})
    assert (await rolling.until(lambda m: m.get("id") == 1))["result"]["version-rolling.mask"] == "1fffe000"
    await rolling.handshake("acct.v")
    plain = await connect(pool.port, "127.0.0.19")
    await plain.handshake("acct.p")
    # only connections that negotiated rolling get a mask; the pool's mask bounds it
    assert pool.server.set_version_mask("acct.v", 0xFFFFE000) == 1
    assert pool.server.set_version_mask("acct.p", 0x1FFFE000) == 0
    message = await rolling.until(lambda m: m.get("method") == "mining.set_version_mask")
    assert message["params"] == ["1fffe000"]
    assert pool.server.request_version("acct.p") == 1
    request = await plain.until(lambda m: m.get("method") == "client.get_version")
    await plain.send({"id": request["id"], "result": "cgminer/4.11.1-custom", "error": None})

    def reported() -> dict[str, Any] | None:
        rows = {row["worker"]: row for row in pool.server.workers()}
        return rows if rows["acct.p"]["reported_version"] else None

    rows = await wait_for(reported, 5, "the reported version")
    assert rows["acct.p"]["user_agent"] == "cgminer/4.11.1"      # subscribe's agent stays the agent
    assert rows["acct.p"]["reported_version"] == "cgminer/4.11.1-custom"
    assert rows["acct.p"]["peer"] == "127.0.0.19" and rows["acct.p"]["connected_at"] > 0
