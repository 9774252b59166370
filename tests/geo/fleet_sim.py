"""A simulated fleet for the geo tests: miners with IPs drawn from the real database, tagged by the
locator exactly as the server does after a PROXY header, producing ShareRecords."""

from __future__ import annotations

import random
from dataclasses import dataclass

from pool.geo import FirmwareClassifier, GeoLocator, draw_ips
from pool.shares.record import ShareRecord

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
                extra_ips: dict[str, list[str]] | None = None) -> list[Miner]:
    """Each country's miners share its weight equally, so its expected share is exactly its weight."""
    classify = FirmwareClassifier()
    miners: list[Miner] = []
    weight_sum = sum(distribution.values())
    for country, weight in distribution.items():
        ips = (extra_ips or {}).get(country) or draw_ips(country, miners_per_country, rng, ipv6=ipv6)
        for i, ip in enumerate(ips[:miners_per_country]):
            account = f"acct-{country}-{i % max(1, miners_per_country // 2)}"
            agent = rng.choice(USER_AGENTS)
            miners.append(Miner(account, f"{account}.rig{i}", ip, locator.tag_connection(ip), classify(agent),
                                total_rate * weight / weight_sum / len(ips[:miners_per_country])))
    return miners


def shares(miners: list[Miner], start: float, seconds: float, rng: random.Random,
           difficulty: float = 1024.0, farm_proxy: bool = False) -> list[ShareRecord]:
    """Poisson arrivals per miner over [start, start + seconds)."""
    records = []
    for m in miners:
        t = start + rng.expovariate(m.rate)
        while t < start + seconds:
            country, subdivision, hosting = m.tag
            records.append(ShareRecord(
                timestamp=t, account=m.account, worker=m.worker, difficulty=difficulty,
                share_difficulty=difficulty * 1.5, height=900_000, country=country, subdivision=subdivision,
                hosting=hosting, farm_proxy=farm_proxy, firmware=m.firmware))
            t += rng.expovariate(m.rate)
    records.sort(key=lambda r: r.timestamp)
    return records
