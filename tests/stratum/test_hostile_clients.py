# ruff: noqa: F811  (the make_pool fixture is imported from test_server_sockets)
"""Hostile clients over real sockets (issue 15): client-influenced difficulties stay finite and inside
the port's range, one broken session cannot stop the others' work, and what a client can make the
server store is bounded and counted against the bad-message budget."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import pytest

from pool.config.errors import ConfigError
from pool.config.stratum import LimitsConfig
from pool.stratum import proxy
from pool.stratum.negotiate import NON_FINITE
from pool.stratum.server import StratumServer
from pool.stratum.session import Session
from pool.stratum.session_records import SessionSnapshot
from tests.stratum.support import NOW, TestJobSource, config, grind, make_job, new_session, send, submit
from tests.stratum.test_server_sockets import Client, connect, make_pool  # noqa: F401  (fixture)


def server_session(server: StratumServer, ip: str) -> SessionSnapshot:
    """A snapshot of the server's side of the connection from `ip` (exactly one)."""
    found = [snap for snap in server.connections() if snap.peer == ip]
    assert len(found) == 1
    return found[0]


def fail_for(monkeypatch: pytest.MonkeyPatch, method: str, peer: str) -> None:
    """Fault injection: Session.`method` raises for the session of `peer` (a bug a client found)."""
    original = getattr(Session, method)

    def failing(self: Session, *args: Any, **kwargs: Any) -> Any:
        if self.peer == peer:
            raise RuntimeError(f"injected fault in {method}")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Session, method, failing)


async def ended(client: Client, timeout: float = 2.0) -> bool:
    """The server ended the connection: EOF, or a reset (it closed with our unread lines pending)."""
    return await client.closed(timeout)


async def configure(client: Client, request_id: int, value: Any) -> dict[str, Any]:
    await client.send({"id": request_id, "method": "mining.configure",
                       "params": [["minimum-difficulty"], {"minimum-difficulty.value": value}]})
    return await client.until(lambda m: m.get("id") == request_id)


async def test_non_finite_difficulties_are_refused_and_finite_ones_clamped(make_pool: Any) -> None:
    cfg = config(difficulty=0.5, vardiff=True, port={"max_difficulty": 1.0, "min_difficulty": 0.01})
    pool = await make_pool(cfg)
    client = await connect(pool.port, source="127.0.0.6")
    for i, value in enumerate(("inf", "1e999", "nan", "-inf")):
        reply = await configure(client, 10 + i, value)
        assert reply["result"]["minimum-difficulty"] == NON_FINITE
    assert (await configure(client, 20, "1e308"))["result"]["minimum-difficulty"] is True
    for i, value in enumerate(("inf", "1e999", "NaN")):
        reply_id = 30 + i
        await client.send({"id": reply_id, "method": "mining.suggest_difficulty", "params": [value]})
        reply = await client.until(lambda m, rid=reply_id: m.get("id") == rid)
        assert reply["error"] == [20, "Suggested difficulty must be a finite number", None]
    await client.send({"id": 40, "method": "mining.subscribe", "params": ["cgminer/4.11.1"]},
                      {"id": 41, "method": "mining.authorize", "params": ["acct.w", "x,d=inf"]})
    reply = await client.until(lambda m: m.get("id") == 41)
    assert reply["result"] is False and "d=inf" in reply["error"][1]
    await client.send({"id": 42, "method": "mining.authorize", "params": ["acct.w", "md=1e308"]})
    assert (await client.until(lambda m: m.get("id") == 42))["result"] is True
    announced = await client.until(lambda m: m.get("method") == "mining.set_difficulty")
    assert announced["params"] == [1]                # the port's maximum, not 1e308
    session = server_session(pool.server, "127.0.0.6")
    assert session.suggested_floor == 1.0 and session.difficulty == 1.0


def test_suggest_target_and_password_floors_are_clamped_sans_io() -> None:
    cfg = config(difficulty=2.0, port={"max_difficulty": 8.0, "min_difficulty": 1.0})
    jobs = TestJobSource()
    jobs.publish(make_job("j1"))
    session = new_session(cfg, jobs)
    send(session, {"id": 1, "method": "mining.suggest_target", "params": ["1"]})   # difficulty ~2.7e67
    assert session.suggested_floor == 8.0
    send(session, {"id": 2, "method": "mining.suggest_difficulty", "params": [1e-30]})
    assert session.suggested_floor == 1.0
    send(session, {"id": 3, "method": "mining.subscribe", "params": []})
    send(session, {"id": 4, "method": "mining.authorize", "params": ["acct.a", "d=1e300"]})
    assert session.fixed_difficulty == 8.0
    assert session.bad_messages == 0


def test_idle_retarget_stays_inside_the_port_range_sans_io() -> None:
    """The idle retarget that used to lift the difficulty to the floor (1e308, or inf) stays at the
    port's maximum."""
    cfg = config(difficulty=0.5, vardiff=True, port={"max_difficulty": 1.0, "min_difficulty": 0.01})
    jobs = TestJobSource()
    jobs.publish(make_job("j1"))
    session = new_session(cfg, jobs)
    send(session, {"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.11.1"]})
    send(session, {"id": 2, "method": "mining.authorize", "params": ["acct.w", "md=1e308"]})
    assert session.suggested_floor == 1.0 and session.difficulty == 1.0
    session.tick(NOW + 200)     # past the idle retarget window, before idle_timeout
    assert session.close_reason is None
    assert session.pending_difficulty is None and session.difficulty == 1.0


async def test_one_broken_session_cannot_stop_broadcasts_or_the_sweep(
        make_pool: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    pool = await make_pool(config(difficulty=1e-9, vardiff=True, limits=LimitsConfig(sweep_interval=0.05)))
    broken = await connect(pool.port, source="127.0.0.7")
    await broken.handshake("acct.broken")
    later = [await connect(pool.port, source=f"127.0.1.{i}") for i in range(1, 4)]
    extranonces = [await client.handshake(f"acct.w{i}") for i, client in enumerate(later)]
    # This session's push_job raises in the middle of the fan-out (as an infinite difficulty waiting
    # to be announced once made it).
    fail_for(monkeypatch, "push_job", "127.0.0.7")
    pool.jobs.publish(make_job("w2", height=901_000))
    for client in later:
        notify = await client.until(lambda m: m.get("method") == "mining.notify")
        assert notify["params"][0] == "w2"
    assert await broken.closed()
    job = pool.jobs.current_job()
    en2, nonce = grind(job, extranonces[0], min_difficulty=1e-9)
    await later[0].send(submit("acct.w0", "w2", en2, job.ntime, nonce, request_id=9))
    assert await later[0].until(lambda m: m.get("id") == 9) == {"id": 9, "result": True, "error": None}
    assert sum("job broadcast failed" in r.getMessage() for r in caplog.records) == 1

    # A session whose housekeeping raises is dropped by the sweep; the sweep goes on for the others.
    fail_for(monkeypatch, "tick", "127.0.1.2")
    assert await later[1].closed()
    assert sum("housekeeping sweep failed" in r.getMessage() for r in caplog.records) == 1
    pool.jobs.publish(make_job("w3", height=902_000))
    assert (await later[2].until(lambda m: m.get("method") == "mining.notify"))["params"][0] == "w3"


async def test_configure_info_flood_is_bounded_and_disconnected(make_pool: Any,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pool.stratum")
    limits = LimitsConfig(max_info_keys=4, max_info_length=16, max_bad_messages=5)
    pool = await make_pool(config(difficulty=1e-9, limits=limits))
    honest = await connect(pool.port, source="127.0.0.9")
    await honest.send({"id": 1, "method": "mining.configure",
                       "params": [["info"], {"info.connection-url": "pool:3333", "info.hw-version": "S19"}]})
    assert (await honest.recv())["result"] == {"info": True}
    session = server_session(pool.server, "127.0.0.9")
    assert session.info == {"connection-url": "pool:3333", "hw-version": "S19"} and session.bad_messages == 0
    await honest.handshake()

    attacker = await connect(pool.port, source="127.0.0.8")

    def flood(request_id: int) -> dict[str, Any]:
        return {"id": request_id, "method": "mining.configure",
                "params": [["info"], {f"info.k{request_id}-{j}": "v" * 100 for j in range(8)}]}

    await attacker.send(flood(1))
    assert (await attacker.recv())["result"] == {"info": True}     # still answered (one line, always)
    flooding = server_session(pool.server, "127.0.0.8")
    assert len(flooding.info) == 4 and {len(v) for v in flooding.info.values()} == {16}
    assert flooding.bad_messages == 1
    with contextlib.suppress(ConnectionError):
        await attacker.send(*[flood(i) for i in range(2, 200)])
    assert await ended(attacker)
    assert all(snap.peer != "127.0.0.8" for snap in pool.server.connections())
    assert "closing 127.0.0.8: too many malformed messages" in caplog.messages   # the 5th bad message
    await honest.send({"id": 5, "method": "mining.suggest_difficulty", "params": [1]})
    assert (await honest.until(lambda m: m.get("id") == 5))["result"] is True


async def test_user_agent_worker_names_and_pending_requests_are_bounded(make_pool: Any) -> None:
    limits = LimitsConfig(max_user_agent_length=32, max_worker_name_length=24, max_workers_per_connection=3,
                          max_pending_requests=2, max_bad_messages=6)
    pool = await make_pool(config(difficulty=1e-9, limits=limits))
    client = await connect(pool.port, source="127.0.0.10")
    await client.send({"id": 1, "method": "mining.subscribe", "params": ["x" * 5000]})
    assert (await client.recv())["id"] == 1
    session = server_session(pool.server, "127.0.0.10")
    assert session.user_agent == "x" * 32 and session.bad_messages == 1
    await client.send({"id": 2, "method": "mining.authorize", "params": ["acct." + "n" * 30, "x"]})
    assert (await client.until(lambda m: m.get("id") == 2))["error"][0] == 24
    for i in range(3):
        await client.send({"id": 10 + i, "method": "mining.authorize", "params": [f"acct.w{i}", "x"]})
        assert (await client.until(lambda m, rid=10 + i: m.get("id") == rid))["result"] is True
    for _ in range(3):
        assert pool.server.request_version("acct.w0") == 1
    assert server_session(pool.server, "127.0.0.10").pending_requests == 2
    requests = []
    while len(requests) < 3:
        message = await client.recv()
        if message.get("method") == "client.get_version":
            requests.append(message["id"])
    await client.send({"id": requests[0], "result": "stale/1.0", "error": None},
                      {"id": requests[2], "result": "cgminer/4.11.1-with-a-very-long-version-string", "error": None})
    await client.send({"id": 3, "method": "mining.ping", "params": []})
    await client.until(lambda m: m.get("id") == 3)
    session = server_session(pool.server, "127.0.0.10")
    assert session.info["reported-version"] == "cgminer/4.11.1-with-a-very-long-"  # 32 characters
    for i in range(10):
        try:
            await client.send({"id": 20 + i, "method": "mining.authorize", "params": [f"acct.more{i}", "x"]})
        except ConnectionError:
            break
    assert await ended(client)               # 1 long user agent + 5 refused workers = the budget


@pytest.mark.parametrize("key", ["max_worker_name_length", "max_user_agent_length", "max_info_keys",
                                 "max_info_length", "max_pending_requests", "max_json_depth"])
def test_storage_limits_are_validated_naming_the_key(key: str) -> None:
    with pytest.raises(ConfigError) as error:
        LimitsConfig(**{key: 0}).validate("limits")
    assert error.value.key == f"limits.{key}"


def test_non_finite_password_options_are_an_error_not_a_difficulty() -> None:
    jobs = TestJobSource()
    jobs.publish(make_job("j1"))
    session = new_session(config(difficulty=4.0), jobs)
    for password in ("d=inf", "x,md=1e999", "diff=nan"):
        replies = send(session, {"id": 1, "method": "mining.authorize", "params": ["acct.a", password]}, NOW)
        assert replies[0]["result"] is False and "not a finite number" in replies[0]["error"][1]
    assert not session.workers and session.bad_messages == 3


@pytest.mark.parametrize("family", [0x41, 0xF1, 0x13, 0x1F])
def test_proxy_v2_invalid_address_family_is_rejected(family: int) -> None:
    header = proxy.V2_SIGNATURE + bytes([0x21, family, 0, 12]) + bytes(12)
    with pytest.raises(proxy.ProxyError, match="invalid address family"):
        proxy.parse(header)


async def test_proxy_v2_invalid_family_from_a_trusted_proxy_closes(make_pool: Any) -> None:
    pool = await make_pool(config(difficulty=1e-9, trusted_proxies=["127.0.0.12/32"]))
    bad = await connect(pool.port, "127.0.0.12")
    await bad.send(proxy.V2_SIGNATURE + bytes([0x21, 0x41, 0, 12]) + bytes(12),
                   {"id": 1, "method": "mining.subscribe", "params": []})
    assert await ended(bad)
    assert pool.tagged == []                 # never admitted (not even as the proxy's own address)
    unspec = await connect(pool.port, "127.0.0.12")     # UNSPEC stays valid: the socket address is used
    await unspec.send(proxy.V2_SIGNATURE + bytes([0x21, 0x00, 0, 0]))
    await unspec.handshake()
    assert pool.tagged == ["127.0.0.12"]


async def test_deep_json_gets_an_error_and_the_rest_of_the_packet_is_served(make_pool: Any,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    pool = await make_pool()
    client = await connect(pool.port, source="127.0.0.13")
    deep = b'{"id": 7, "method": "mining.subscribe", "params": ' + b"[" * 3000 + b"]" * 3000 + b"}\n"
    just_over = b'{"id": 8, "params": ' + b"[" * 65 + b"]" * 65 + b"}\n"
    deep_submit = b'{"id": ' + b"[" * 500 + b"]" * 500 + b', "method": "mining.submit", "params": []}\n'
    quoted = {"id": 9, "method": "mining.suggest_difficulty", "params": [1, "[" * 500]}   # not nesting
    subscribe = {"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.11.1"]}
    await client.send(deep, just_over, deep_submit, quoted, subscribe)
    for _ in range(3):
        assert (await client.recv())["error"] == [20, "Invalid JSON-RPC: nested deeper than 64 levels", None]
    assert (await client.recv()) == {"id": 9, "result": True, "error": None}
    assert (await client.recv())["id"] == 1
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_admin_ban_of_everyone_or_of_a_trusted_proxy_is_refused(make_pool: Any) -> None:
    pool = await make_pool(config(difficulty=1e-9, trusted_proxies=["127.0.0.14/32", "2001:db8::/64"]))
    for target, text in (("0.0.0.0/0", "would ban every address"), ("::/0", "would ban every address"),
                         ("127.0.0.0/24", "covers the trusted proxy 127.0.0.14/32"),
                         ("127.0.0.14", "covers the trusted proxy 127.0.0.14/32"),
                         ("2001:db8::/32", "covers the trusted proxy 2001:db8::/64")):
        with pytest.raises(ValueError, match=text):
            pool.server.add_ban(target, 60, "test")
    assert pool.server.list_bans() == []
    assert pool.server.add_ban("127.0.1.0/24", 60, "test").target == "127.0.1.0/24"
    proxied = await connect(pool.port, "127.0.0.14")    # the proxy's miners still get in
    await proxied.send(proxy.encode_v1("203.0.113.7", 5555, "198.51.100.1", 3333))
    await proxied.handshake()
