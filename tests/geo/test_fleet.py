from __future__ import annotations

import ipaddress
import random

import pytest

from pool.geo import GeoLocator, draw_ips


@pytest.mark.parametrize("country", ["US", "CN", "KZ", "RU", "CA", "MY"])
def test_drawn_ipv4_addresses_are_public_and_in_the_country(locator: GeoLocator, country: str) -> None:
    ips = draw_ips(country, 30, random.Random(1))
    assert len(ips) == 30
    for ip in ips:
        addr = ipaddress.ip_address(ip)
        assert addr.version == 4 and addr.is_global
        assert locator.tag_connection(ip)[0] == country


def test_drawn_ipv6_addresses(locator: GeoLocator) -> None:
    ips = draw_ips("DE", 10, random.Random(2), ipv6=True)
    assert all(ipaddress.ip_address(ip).version == 6 for ip in ips)
    assert {locator.tag_connection(ip)[0] for ip in ips} == {"DE"}


def test_draw_by_subdivision(locator: GeoLocator) -> None:
    ips = draw_ips("US", 8, random.Random(3), subdivision="Texas")
    assert {locator.tag_connection(ip)[:2] for ip in ips} == {("US", "Texas")}


def test_same_rng_seed_gives_same_addresses() -> None:
    assert draw_ips("US", 5, random.Random(7)) == draw_ips("US", 5, random.Random(7))


def test_unknown_country_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no IPv4 network of QQ"):
        draw_ips("QQ", 1, random.Random(1), probe_budget=1000)
