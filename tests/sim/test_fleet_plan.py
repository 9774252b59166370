"""The simulator's pieces that do not need a pool: PROXY headers, country mix, argument parsing."""

from __future__ import annotations

import random
import struct
from collections import Counter

import pytest

from pool.sim.cli import parse_countries
from pool.sim.fleet import FleetConfig, plan_fleet
from pool.sim.proxy_header import V2_SIGNATURE, proxy_v1, proxy_v2


def test_proxy_v1_ipv4_and_ipv6() -> None:
    assert proxy_v1("8.8.8.8", 40001, "127.0.0.1", 3333) == b"PROXY TCP4 8.8.8.8 127.0.0.1 40001 3333\r\n"
    assert proxy_v1("2001:db8::1", 5, "::1", 3333) == b"PROXY TCP6 2001:db8::1 ::1 5 3333\r\n"


def test_proxy_v2_ipv4_layout() -> None:
    header = proxy_v2("8.8.4.4", 40001, "127.0.0.1", 3333)
    assert header[:12] == V2_SIGNATURE
    assert header[12] == 0x21 and header[13] == 0x11
    (length,) = struct.unpack("!H", header[14:16])
    assert length == 12 == len(header) - 16
    assert header[16:20] == bytes([8, 8, 4, 4]) and header[20:24] == bytes([127, 0, 0, 1])
    assert struct.unpack("!HH", header[24:28]) == (40001, 3333)


def test_proxy_v2_mixed_families_map_to_ipv6() -> None:
    header = proxy_v2("2001:db8::7", 1, "127.0.0.1", 2)
    assert header[13] == 0x21
    assert struct.unpack("!H", header[14:16])[0] == 36
    assert header[16:32] == bytes.fromhex("20010db8000000000000000000000007")
    assert header[32:48] == bytes.fromhex("00000000000000000000ffff7f000001")


def test_fleet_country_mix_is_exactly_proportional() -> None:
    members = plan_fleet(FleetConfig(miners=200, countries={"US": 50, "CN": 30, "KZ": 20}), None)
    assert Counter(m.country for m in members) == {"US": 100, "CN": 60, "KZ": 40}
    assert len({m.source_address for m in members}) == 200
    assert all(m.source_address.startswith("127.") for m in members)


def test_fleet_uses_drawn_ips_per_country() -> None:
    def draw(country: str, subdivision: str | None, n: int, rng: random.Random) -> list[str]:
        base = {"US": "8.8.8.", "DE": "5.9.0."}[country]
        return [f"{base}{i + 1}" for i in range(n)]

    members = plan_fleet(FleetConfig(miners=10, countries={"US": 1, "DE": 1}), draw)
    for member in members:
        assert member.public_ip.startswith({"US": "8.8.8.", "DE": "5.9.0."}[member.country])


@pytest.mark.parametrize(("text", "message"), [("US", "expected CC=weight"), ("USA=3", "expected CC=weight"),
                                                ("US=x", "not a number"), ("US=-1", "must not be negative"),
                                                ("US=0", "positive weight")])
def test_parse_countries_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_countries(text)


def test_parse_countries() -> None:
    assert parse_countries("us=38, CN=21") == {"US": 38.0, "CN": 21.0}
