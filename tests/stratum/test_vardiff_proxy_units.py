"""Vardiff behaviour, the PROXY header parser, the extranonce allocator and the ban list."""

from __future__ import annotations

import random

import pytest

from pool.config.stratum import PortConfig
from pool.stratum import proxy
from pool.stratum.admission import BanList
from pool.stratum.extranonce import ExtranonceAllocator, ExtranonceExhausted
from pool.stratum.vardiff import VarDiff
from tests.stratum.support import NOW, TestJobSource, config, make_job, new_session, send, take


def simulate(hashrate_diff_per_s: float, start: float, seconds: float, port: PortConfig) -> list[float]:
    """Poisson shares from a miner doing `hashrate_diff_per_s` difficulty-1 shares per second."""
    rng = random.Random(7)
    vardiff = VarDiff(port, 0.0)
    difficulty, t, history = start, 0.0, [start]
    while t < seconds:
        t += rng.expovariate(hashrate_diff_per_s / difficulty)
        new = vardiff.on_share(difficulty, difficulty, 0.0, t)
        if new is not None:
            difficulty = new
            history.append(new)
    return history


def test_vardiff_converges_to_target_interval_from_both_sides() -> None:
    port = PortConfig(start_difficulty=1024, min_difficulty=1, max_difficulty=1e12, target_share_seconds=10,
                      retarget_seconds=90)
    # 1 PH/s-class rate expressed in diff-1 shares/s: optimum difficulty = rate * 10 s.
    for start in (1024.0, 1e9):
        history = simulate(2_000_000.0, start, 3600, port)
        assert 20_000_000 * 0.5 <= history[-1] <= 20_000_000 * 2, history
    # A slow miner starting too high comes down, and never under the port minimum.
    history = simulate(0.5, 1024.0, 7200, PortConfig(start_difficulty=1024, min_difficulty=1))
    assert 2.5 <= history[-1] <= 10


def test_vardiff_hysteresis_keeps_a_stable_miner_still() -> None:
    port = PortConfig(start_difficulty=1000, min_difficulty=1, target_share_seconds=10, retarget_seconds=90)
    history = simulate(100.0, 1000.0, 3600, port)     # exactly on target: 1 share / 10 s
    assert len(history) <= 3


def test_vardiff_idle_lowers_and_floor_holds() -> None:
    port = PortConfig(start_difficulty=1024, min_difficulty=1, target_share_seconds=10, retarget_seconds=60)
    vardiff = VarDiff(port, 0.0)
    assert vardiff.on_idle(1024, 0.0, 30.0) is None
    lowered = vardiff.on_idle(1024, 0.0, 61.0)
    assert lowered is not None and 1024 / 4 <= lowered < 1024
    vardiff.reset(0.0)
    assert vardiff.on_idle(1024, 900.0, 61.0) == 900


def test_session_vardiff_sends_difficulty_only_with_a_new_job() -> None:
    jobs = TestJobSource()
    jobs.publish(make_job("v1"))
    cfg = config(difficulty=1e-9, vardiff=True, min_difficulty=1e-12,
                 port={"target_share_seconds": 10, "retarget_seconds": 60})
    session = new_session(cfg, jobs)
    en1 = bytes.fromhex(send(session, {"id": 1, "method": "mining.subscribe", "params": []})[0]["result"][1])
    send(session, {"id": 2, "method": "mining.authorize", "params": ["acct.x"]})
    from tests.stratum.support import grind, submit
    job = jobs.current_job()
    t = NOW
    outputs = []
    for i in range(40):      # far too fast: 40 shares within 4 s at a 10 s target
        t += 0.1
        en2, nonce = grind(job, en1, min_difficulty=session.difficulty, start=i * 1000)
        outputs += send(session, submit("acct.x", "v1", en2, job.ntime, nonce, request_id=i), t)
        if any(o.get("method") == "mining.set_difficulty" for o in outputs):
            break
    methods = [o.get("method") for o in outputs]
    index = methods.index("mining.set_difficulty")
    assert methods[index + 1] == "mining.notify"
    notify = outputs[index + 1]["params"]
    assert notify[0].startswith("v1.") and notify[8] is True
    assert outputs[index]["params"][0] > 1e-9
    # A d= worker keeps its fixed difficulty whatever the share rate.
    fixed = new_session(cfg, jobs)
    send(fixed, {"id": 1, "method": "mining.subscribe", "params": []})
    send(fixed, {"id": 2, "method": "mining.authorize", "params": ["acct.y", "d=0.000000001"]})
    take(fixed)
    assert fixed.fixed_difficulty == 1e-9 and fixed.port.vardiff


@pytest.mark.parametrize("header", [
    proxy.encode_v1("203.0.113.7", 40000, "10.0.0.1", 3333),
    proxy.encode_v2("203.0.113.7", 40000, "10.0.0.1", 3333),
])
def test_proxy_headers_v1_v2_incremental(header: bytes) -> None:
    data = header + b'{"id":1}\n'
    for cut in range(1, len(header)):
        assert proxy.parse(data[:cut]) is None
    parsed, used = proxy.parse(data)
    assert (parsed.source_ip, parsed.source_port, parsed.dest_port) == ("203.0.113.7", 40000, 3333)
    assert data[used:] == b'{"id":1}\n'


def test_proxy_ipv6_unknown_local_and_errors() -> None:
    parsed, _ = proxy.parse(proxy.encode_v2("2001:db8::5", 1, "2001:db8::1", 2))
    assert parsed.source_ip == "2001:db8::5"
    parsed, _ = proxy.parse(proxy.encode_v1("2001:db8::5", 1, "2001:db8::1", 2))
    assert parsed.source_ip == "2001:db8::5" and parsed.version == 1
    assert proxy.parse(b"PROXY UNKNOWN\r\n")[0].source_ip is None
    local = proxy.V2_SIGNATURE + bytes([0x20, 0x00, 0, 0])
    assert proxy.parse(local)[0].source_ip is None
    for bad in (b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n", b"PROXY TCP4 1.2.3 5.6.7.8 1 1\r\n",
                b"PROXY TCP6 1.2.3.4 5.6.7.8 1 1\r\n", b"PROXY " + b"9" * 200,
                b'{"id": 1, "method": "mining.subscribe"}\n',
                proxy.V2_SIGNATURE + bytes([0x31, 0x11, 0, 12]) + b"\0" * 12):
        with pytest.raises(proxy.ProxyError):
            proxy.parse(bad)
    assert proxy.normalize_ip("::ffff:198.51.100.2") == "198.51.100.2"


def test_extranonce_allocator_prefix_unique_park_resume_expire() -> None:
    allocator = ExtranonceAllocator(prefix=0xAB, prefix_bits=8, park_seconds=600)
    seen = set()
    tokens = []
    for _ in range(1000):
        en1, token = allocator.allocate(0.0)
        assert en1[0] == 0xAB and en1 not in seen
        seen.add(en1)
        tokens.append((en1, token))
    en1, token = tokens[0]
    allocator.park(en1, token, 10.0)
    assert allocator.resume("00000000", 20.0) is None
    assert allocator.resume(token, 20.0) == en1
    allocator.park(en1, token, 30.0)
    assert allocator.resume(token, 700.0) is None      # expired after 600 s
    small = ExtranonceAllocator(prefix=0x3FFFFF, prefix_bits=22)
    for _ in range(1024):
        small.allocate(0.0)
    with pytest.raises(ExtranonceExhausted):
        small.allocate(0.0)
    with pytest.raises(ValueError):
        ExtranonceAllocator(prefix=256, prefix_bits=8)


def test_extranonce_free_counts_what_a_new_connection_can_still_get() -> None:
    small = ExtranonceAllocator(prefix=5, prefix_bits=22, park_seconds=600)      # 1,024 values
    assert small.snapshot().free == 1024
    taken = [small.allocate(0.0) for _ in range(1000)]
    small.park(*taken[0], 1.0)                  # parked: still held (for its resume)
    small.release(taken[1][0])                  # released: free again
    assert (small.snapshot().live, small.snapshot().parked, small.snapshot().free) == (998, 1, 25)
    for _ in range(25):
        small.allocate(2.0)
    assert small.snapshot().free == 0
    with pytest.raises(ExtranonceExhausted):    # 0 is exactly when miners are refused
        small.allocate(2.0)


def test_ban_list_addresses_networks_expiry() -> None:
    bans = BanList()
    bans.add("198.51.100.7", 60, "flood", 0.0)
    bans.add("2001:db8::/32", 0, "abuse", 0.0)
    assert [b.target for b in bans.entries(10.0)] == ["198.51.100.7", "2001:db8::/32"]
    assert bans.banned("198.51.100.7", 30.0) is not None
    assert bans.banned("198.51.100.7", 61.0) is None
    assert bans.banned("2001:db8:1::9", 1e9) is not None
    assert bans.banned("198.51.100.8", 1.0) is None
    assert [b.target for b in bans.entries(70.0)] == ["2001:db8::/32"]
    assert bans.remove("2001:db8::/32") and not bans.remove("2001:db8::/32")
    with pytest.raises(ValueError):
        bans.add("not-an-ip", 1, "x", 0.0)
