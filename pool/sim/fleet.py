"""A fleet of simulated miners with a known regional and firmware mix.

Miners connect from many 127.x.y.z source addresses; with `proxy` they also send a PROXY header
carrying a real public IP drawn for their country from the geo database, so the pool tags them as
if they connected from that country through a load balancer.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable

import msgspec

from pool.aio import cancel_and_wait
from pool.sim.client import ClientStats, MinerProfile, StratumClient
from pool.sim.proxy_header import proxy_v1, proxy_v2

# Country mix from the CCAF Bitcoin Mining Map, January 2022 (shares of hashrate, %), rest spread.
DEFAULT_COUNTRIES: dict[str, float] = {
    "US": 37.84, "CN": 21.11, "KZ": 13.22, "CA": 6.48, "RU": 4.66, "DE": 3.06, "MY": 2.51, "IE": 1.97,
    "IR": 0.12, "SE": 1.5, "NO": 1.5, "BR": 1.0, "PY": 1.0, "AR": 1.0, "ET": 1.0, "AE": 2.03,
}

# The demo fleet: miners per region ("CC" or "CC/first-level subdivision as the database spells it").
# Every region has at least 12 one-account miners of equal hashrate, so every country, US state and
# Chinese province here passes the production privacy rule (k = 10 miners, top two <= 85%) on its own;
# the other countries' subdivisions fold into their country's Other, as they would in production.
DEMO_REGIONS: dict[str, int] = {
    "US/Georgia": 20, "US/Texas": 16, "US/New York": 12, "US/Washington": 12,
    "CN/Sichuan": 16, "CN/Zhejiang": 12, "CN/Guangdong": 12,
    "KZ": 16, "CA": 12, "RU": 12, "DE": 12, "MY": 12, "IE": 12, "IR": 12, "SE": 12, "NO": 12, "BR": 12,
    "PY": 12, "AR": 12, "ET": 12, "AE": 12, "IS": 12, "FI": 12, "GB": 12, "FR": 12, "NL": 12, "JP": 12,
    "CH": 12, "AU": 12, "CL": 12, "UY": 12,
}

# Firmware mix (user agent, rolls versions, suggests a difficulty, subscribes to extranonce changes).
PROFILES: list[tuple[float, MinerProfile]] = [
    (0.35, MinerProfile(user_agent="bmminer/2.0.0", version_rolling=True)),
    (0.15, MinerProfile(user_agent="Antminer S21/Fri Nov 17 2023", version_rolling=True)),
    (0.20, MinerProfile(user_agent="whatsminer/v1.1", version_rolling=True)),
    (0.10, MinerProfile(user_agent="bosminer-plus-tuner 24.03", version_rolling=True)),
    (0.05, MinerProfile(user_agent="Avalon Miner/1.0", version_rolling=True)),
    # Its owner sets --suggest-diff to fit the rig: plan_fleet scales it to the fleet's hashrate.
    (0.05, MinerProfile(user_agent="cgminer/4.11.1", suggest_difficulty=1.0)),
    (0.05, MinerProfile(user_agent="cpuminer/2.5.1")),
    (0.05, MinerProfile(user_agent="NiceHash/1.0.0", extranonce_subscribe=True)),
]


class FleetConfig(msgspec.Struct, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 3333
    miners: int = 20
    hashrate: float = 20_000.0           # simulated hashes/s per miner (really computed)
    accounts: int = 0                    # 0: one account per miner
    account_prefix: str = "sim"
    countries: dict[str, float] = msgspec.field(default_factory=lambda: dict(DEFAULT_COUNTRIES))
    regions: dict[str, int] = msgspec.field(default_factory=dict)  # exact miners per region; overrides countries
    proxy: str = "none"                  # "none", "v1" or "v2"
    addresses: list[str] = msgspec.field(default_factory=list)  # usernames to use instead of account names
    seed: int = 2022
    duration: float | None = None
    reconnect: bool = False              # reconnect (with the session id) when the pool closes a connection
    suggest_share_seconds: float = 20.0  # the share interval a member that suggests a difficulty aims at


class FleetMember(msgspec.Struct, kw_only=True):
    username: str
    country: str
    subdivision: str | None
    public_ip: str
    source_address: str
    profile: MinerProfile


def _weighted(rng: random.Random, table: dict[str, float], n: int) -> list[str]:
    """Exactly proportional allocation (largest remainder), shuffled: the fleet's mix is known exactly."""
    total = sum(table.values())
    quotas = {key: n * weight / total for key, weight in table.items()}
    counts = {key: int(q) for key, q in quotas.items()}
    for key in sorted(quotas, key=lambda k: quotas[k] - counts[k], reverse=True)[: n - sum(counts.values())]:
        counts[key] += 1
    out = [key for key, count in counts.items() for _ in range(count)]
    rng.shuffle(out)
    return out


# (country, subdivision or None, how many, rng) -> that many public IPs the database places there
IpDrawer = Callable[[str, str | None, int, random.Random], list[str]]


def _exact(rng: random.Random, table: dict[str, int]) -> list[str]:
    out = [region for region, count in table.items() for _ in range(count)]
    rng.shuffle(out)
    return out


def suggested_difficulty(config: FleetConfig) -> float:
    """The difficulty a suggesting member asks for: a share every `suggest_share_seconds` at its hashrate."""
    return config.hashrate * config.suggest_share_seconds / 2**32


def plan_fleet(config: FleetConfig, draw_ips: IpDrawer | None) -> list[FleetMember]:
    """Who mines from where: `regions` (exact counts) or `miners` spread over the `countries` weights."""
    rng = random.Random(config.seed)
    regions = _exact(rng, config.regions) if config.regions else _weighted(rng, config.countries, config.miners)
    ips: dict[str, list[str]] = {}
    if draw_ips is not None:
        for region in sorted(set(regions)):
            country, _, subdivision = region.partition("/")
            ips[region] = draw_ips(country, subdivision or None, regions.count(region), rng)
    members = []
    for i, region in enumerate(regions):
        country, _, subdivision = region.partition("/")
        weights, profiles = zip(*PROFILES, strict=True)
        profile = rng.choices(profiles, weights=weights)[0]
        if profile.suggest_difficulty is not None:
            profile = msgspec.structs.replace(profile, suggest_difficulty=suggested_difficulty(config))
        if config.addresses:
            username = f"{config.addresses[i % len(config.addresses)]}.rig{i}"
        else:
            account = i % config.accounts if config.accounts else i
            username = f"{config.account_prefix}{account}.rig{i}"
        public_ip = ips[region].pop() if ips.get(region) else ""
        source = f"127.{1 + i // 65025 % 254}.{1 + i // 255 % 255}.{1 + i % 255}"
        members.append(FleetMember(username=username, country=country, subdivision=subdivision or None,
                                   public_ip=public_ip,
                                   source_address=source, profile=profile))
    return members


TRUTH_WINDOW_S = 60.0      # the progress line's achieved hashrate covers the last minute (as the pool's 1m)


HASHRATE_UNITS = ("H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s")


def format_hashrate(rate: float) -> str:
    """Three significant digits in the largest unit that keeps the number under 1000."""
    for unit in HASHRATE_UNITS[:-1]:
        if float(f"{abs(rate):.3g}") < 1000:
            return f"{rate:.3g} {unit}"
        rate /= 1000
    return f"{rate:,.0f} {HASHRATE_UNITS[-1]}"


class HashCounter:
    """The fleet's achieved hashrate, the truth a pool's estimate is compared with: hashes the miners
    really computed between samples, over the newest `window` seconds of samples."""

    def __init__(self, started: float, window: float = TRUTH_WINDOW_S) -> None:
        self.window = window
        self.samples: deque[tuple[float, int]] = deque([(started, 0)])

    def add(self, now: float, hashes: int) -> tuple[float, float]:
        """(H/s, seconds covered) over the oldest sample still within the window and now."""
        self.samples.append((now, hashes))
        while len(self.samples) > 2 and self.samples[1][0] <= now - self.window:
            self.samples.popleft()
        then, before = self.samples[0]
        return (hashes - before) / max(now - then, 1e-9), now - then


async def run_fleet(config: FleetConfig, members: list[FleetMember],
                    report: Callable[[str], None] = print, report_every: float = 10.0,
                    compare: Callable[[], Awaitable[str]] | None = None,
                    stop: asyncio.Event | None = None) -> dict[str, ClientStats]:
    """Run the fleet; every `report_every` s a progress line with the hashrate the miners achieved over
    the last minute and, with `compare`, what the pool says (its text, appended). Setting `stop` stops
    every miner as `StratumClient.stop` does (the answers to shares in flight are waited for)."""
    clients = {}
    for member in members:
        header = b""
        if config.proxy != "none" and member.public_ip:
            make = proxy_v2 if config.proxy == "v2" else proxy_v1
            header = make(member.public_ip, 40000 + len(clients) % 20000, config.host, config.port)
        clients[member.username] = StratumClient(
            config.host, config.port, member.username, profile=member.profile, hashrate=config.hashrate,
            source_address=member.source_address, proxy_header=header, reconnect=config.reconnect,
            rng=random.Random(hash((config.seed, member.username))))
    tasks = [asyncio.create_task(client.run(config.duration)) for client in clients.values()]
    started = time.monotonic()

    async def progress() -> None:
        truth = HashCounter(started)
        while True:
            await asyncio.sleep(report_every)
            now = time.monotonic()
            accepted = sum(c.stats.accepted for c in clients.values())
            rejected = sum(c.stats.rejected for c in clients.values())
            blocks = sum(c.stats.blocks for c in clients.values())
            rate, covered = truth.add(now, sum(c.stats.hashes for c in clients.values()))
            line = (f"[{now - started:6.0f}s] {len(clients)} miners, {accepted} accepted, {rejected} rejected, "
                    f"{blocks} block candidates | hashrate: fleet {format_hashrate(rate)} "
                    f"(counted, last {covered:.0f} s)")
            report(line + (f", {await compare()}" if compare is not None else ""))

    async def stop_all() -> None:
        if stop is not None:
            await stop.wait()
            for client in clients.values():
                client.stop()

    reporter, stopper = asyncio.create_task(progress()), asyncio.create_task(stop_all())
    try:
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await cancel_and_wait(reporter, stopper, absorb_errors=True)
    errors: dict[str, list[str]] = {}      # one line per distinct error, not one per miner
    for username, result in zip(clients, results, strict=True):
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            clients[username].stats.error = f"{type(result).__name__}: {result}"
            errors.setdefault(clients[username].stats.error, []).append(username)
    for error, names in errors.items():
        report(f"{names[0]}: {error}" if len(names) == 1 else f"{len(names)} miners ({names[0]}, ...): {error}")
    return {name: client.stats for name, client in clients.items()}
