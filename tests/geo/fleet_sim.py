"""A simulated fleet for the geo tests: miners with IPs drawn from the real database, tagged by the
locator exactly as the server does after a PROXY header, producing ShareRecords."""

from __future__ import annotations

import random
from dataclasses import dataclass

from pool.geo import FirmwareClassifier, GeoLocator, draw_ips
from pool.stratum.events import ShareRecord

USER_AGENTS = ("bmminer/2.0.0", "Antminer S19j Pro/1.0", "btminer/3.1", "whatsminer/v1", "cgminer/4.11.1",
               "bosminer-plus-tuner/2.0.3", "LUXminer/2024.1", "cpuminer/2.5.1", "NiceHash/1.0.0")


@dataclass
class Miner:
    account: str
    worker: str
    ip: str
    tag: tuple[str, str, bool]
    firmware: str
    rate: float            # shares per second


def build_fleet(distribution: dict[str, float], miners_per_country: int, locator: GeoLocator,
                rng: random.Random, *, ipv6: bool = False, total_rate: float = 1.0,
                ips: dict[str, list[str]] | None = None, agents: tuple[str, ...] = USER_AGENTS) -> list[Miner]:
    """Each key of `distribution` (a country, or "US/Texas" for a subdivision) gets its weight, shared
    equally by its miners, so its expected share is exactly its weight."""
    classify = FirmwareClassifier()
    miners: list[Miner] = []
    weight_sum = sum(distribution.values())
    for place, weight in distribution.items():
        country, _, subdivision = place.partition("/")
        given = (ips or {}).get(place)
        if given is None:
            given = draw_ips(country, miners_per_country, rng, ipv6=ipv6, subdivision=subdivision or None)
        given = given[:miners_per_country]
        for i, ip in enumerate(given):
            account = f"acct-{place}-{i}"
            agent = agents[i % len(agents)]
            miners.append(Miner(account, f"{account}.rig0", ip, locator.tag_connection(ip), classify(agent),
                                total_rate * weight / weight_sum / len(given)))
    return miners


def shares(miners: list[Miner], start: float, seconds: float, rng: random.Random,
           difficulty: float = 1024.0, farm_proxy: bool = False, poisson: bool = False) -> list[ShareRecord]:
    """Share arrivals per miner over [start, start + seconds): Poisson, or (default) what vardiff aims
    for, one share per 1/rate seconds with a random phase and jitter, so the counts match the rates."""
    records = []
    for m in miners:
        def gap(m: Miner = m) -> float:
            return rng.expovariate(m.rate) if poisson else rng.uniform(0.8, 1.2) / m.rate

        t = start + (rng.expovariate(m.rate) if poisson else rng.uniform(0, 1) / m.rate)
        while t < start + seconds:
            country, subdivision, hosting = m.tag
            records.append(ShareRecord(
                timestamp=t, account=m.account, worker=m.worker, difficulty=difficulty,
                share_difficulty=difficulty * 1.5, height=900_000, country=country, subdivision=subdivision,
                hosting=hosting, farm_proxy=farm_proxy, firmware=m.firmware))
            t += gap()
    records.sort(key=lambda r: r.timestamp)
    return records
