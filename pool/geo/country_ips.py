"""Real public IPs that the database places in a given country, for the fleet simulator and tests.

Walking every network of DB-IP City Lite takes minutes, so instead random public addresses are probed
(a fixed-seed, per-process index of the networks found, per country), then addresses are drawn inside
those networks and checked with a real lookup.
"""

from __future__ import annotations

import functools
import ipaddress
import random
from pathlib import Path

import maxminddb

from pool.geo.databases import default_location_files, mmdb_files, place_of
from pool.geo.subdivisions import canonical_name

# Where IPv6 is allocated to the regional registries (probing all of ::/0 would mostly miss).
_V6_POOLS = tuple(ipaddress.IPv6Network(n) for n in (
    "2001:200::/23", "2001:400::/23", "2001:600::/23", "2001:800::/22", "2001:c00::/23", "2001:1200::/23",
    "2001:1400::/22", "2001:1800::/23", "2001:4000::/23", "2001:4400::/23", "2001:4800::/23",
    "2001:4c00::/23", "2001:8000::/19", "2001:a000::/20", "2001:b000::/20", "2003::/18", "2400::/12",
    "2600::/12", "2800::/12", "2a00::/12", "2c00::/12",
))
_CHUNK = 20_000


class _Index:
    def __init__(self, paths: list[Path]) -> None:
        readers = [maxminddb.open_database(str(path)) for path in paths]
        # One reader per address family (a MaxMind file holds both; ip-location-db ships one of each).
        self.readers = {4: next((r for r in readers if r.metadata().ip_version == 4), readers[0]),
                        6: next((r for r in readers if r.metadata().ip_version == 6), None)}
        self.rng = random.Random(0x6E0)
        # (country, version) -> network -> first-level subdivision name ("" when none)
        self.networks: dict[tuple[str, int], dict[ipaddress._BaseNetwork, str]] = {}
        self.probed = {4: 0, 6: 0}

    def _reader(self, version: int) -> maxminddb.Reader:
        reader = self.readers[version]
        if reader is None:
            raise ValueError(f"the database has no IPv{version} data")
        return reader

    def place_of(self, ip: str) -> tuple[str | None, str]:
        country, subdivision = place_of(self._reader(ipaddress.ip_address(ip).version).get(ip))
        return country or None, canonical_name(country, subdivision)

    def _random_address(self, version: int) -> ipaddress._BaseAddress:
        if version == 4:
            return ipaddress.IPv4Address(self.rng.getrandbits(32))
        pool = self.rng.choice(_V6_POOLS)
        return pool[self.rng.getrandbits(128 - pool.prefixlen)]

    def probe(self, version: int, count: int) -> None:
        for _ in range(count):
            addr = self._random_address(version)
            if not addr.is_global:
                continue
            record, prefix = self._reader(version).get_with_prefix_len(str(addr))
            iso, subdivision = place_of(record)
            if iso:
                net = ipaddress.ip_network(f"{addr}/{prefix}", strict=False)
                self.networks.setdefault((iso, version), {})[net] = canonical_name(iso, subdivision)
        self.probed[version] += count

    def networks_for(self, iso: str, version: int, want: int, budget: int, subdivision: str | None) -> list:
        def found() -> list:
            nets = self.networks.get((iso, version), {})
            return [n for n, sub in nets.items() if subdivision is None or sub == subdivision]

        while len(found()) < want and self.probed[version] < budget:
            self.probe(version, _CHUNK)
        return found()


@functools.cache
def _index(paths: tuple[str, ...]) -> _Index:
    return _Index([Path(p) for p in paths])


def draw_ips(country_iso: str, n: int, rng: random.Random, *, ipv6: bool = False,
             subdivision: str | None = None, db_path: str | Path | None = None,
             probe_budget: int = 3_000_000) -> list[str]:
    """n public IPs (IPv4, or IPv6 when ipv6) that `db_path` (default DB-IP City Lite) places in
    `country_iso` (and in `subdivision`, its first-level subdivision's English name, when given).
    Raises ValueError when the probe budget finds no such network."""
    iso = country_iso.upper()
    index = _index(tuple(str(p) for p in (mmdb_files(Path(db_path)) if db_path else default_location_files())))
    if subdivision is not None:
        subdivision = canonical_name(iso, subdivision)
    version = 6 if ipv6 else 4
    want = min(max(n, 1), 24 if subdivision is None else 4)
    networks = index.networks_for(iso, version, want, probe_budget, subdivision)
    if not networks:
        where = iso if subdivision is None else f"{iso}/{subdivision}"
        raise ValueError(f"no IPv{version} network of {where} found in {index.probed[version]} random probes")
    networks.sort(key=lambda net: (int(net.network_address), net.prefixlen))
    out: list[str] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"could not draw {n} addresses in {iso}")
        net = rng.choice(networks)
        addr = net[rng.randrange(net.num_addresses)] if net.num_addresses > 1 else net.network_address
        text = str(addr)
        country, sub = index.place_of(text)
        if addr.is_global and country == iso and (subdivision is None or sub == subdivision):
            out.append(text)
    return out
