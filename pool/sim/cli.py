"""`geostratum simulate`: a fleet of simulated miners that really hash and submit."""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from pool.sim.client import ClientStats
from pool.sim.fleet import (
    DEFAULT_COUNTRIES,
    DEMO_REGIONS,
    FleetConfig,
    FleetMember,
    IpDrawer,
    format_hashrate,
    plan_fleet,
    run_fleet,
)

TOKEN_ENV = "GEOSTRATUM_READ_TOKEN"
API_TIMEOUT_S = 3.0


def parse_countries(text: str) -> dict[str, float]:
    """'US=38,CN=21,KZ=13' -> {'US': 38.0, ...}; ValueError naming the bad item."""
    table: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        code, sep, weight = item.partition("=")
        if not sep or len(code) != 2 or not code.isalpha():
            raise ValueError(f"bad country weight {item!r}: expected CC=weight, e.g. US=38")
        try:
            table[code.upper()] = float(weight)
        except ValueError:
            raise ValueError(f"bad weight in {item!r}: {weight!r} is not a number") from None
        if table[code.upper()] < 0:
            raise ValueError(f"weight for {code} must not be negative")
    if not table or sum(table.values()) <= 0:
        raise ValueError("country weights must name at least one country with a positive weight")
    return table


def ip_drawer(db_path: str = "") -> IpDrawer:
    """Real public IPs per country (or subdivision) from the geo database (pool.geo)."""
    from pool.geo.country_ips import draw_ips

    def draw(country: str, subdivision: str | None, n: int, rng: random.Random) -> list[str]:
        return draw_ips(country, n, rng, subdivision=subdivision, db_path=db_path or None)

    return draw


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="the pool's stratum address (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3333, help="the pool's stratum port (default: 3333)")
    parser.add_argument("--miners", type=int, default=20, help="simulated miners, one connection each (default: 20)")
    parser.add_argument("--hashrate", type=float, default=20_000.0, metavar="H/S",
                        help="hashes per second per miner, really computed (default: 20000; the progress lines "
                             "say what the fleet achieved)")
    parser.add_argument("--accounts", type=int, default=0, help="number of accounts (0: one per miner)")
    parser.add_argument("--account-prefix", default="sim", help="account names: PREFIX0, PREFIX1, ... (default: sim)")
    parser.add_argument("--address", action="append", default=[],
                        help="payout address to mine to (repeatable; SOLO mode needs real addresses)")
    parser.add_argument("--countries", type=parse_countries, default=None,
                        help="country weights, e.g. US=38,CN=21 (default: CCAF January 2022 mix)")
    parser.add_argument("--demo-fleet", action="store_true",
                        help=f"the demo fleet: {sum(DEMO_REGIONS.values())} one-account miners in "
                             f"{len({r[:2] for r in DEMO_REGIONS})} countries, US states and Chinese provinces, "
                             "each region big enough to pass the production privacy rule (overrides "
                             "--miners and --countries)")
    parser.add_argument("--proxy", choices=["none", "v1", "v2"], default="none",
                        help="send a PROXY header carrying a real public IP drawn for the miner's country")
    parser.add_argument("--geo-db", default="", metavar="MMDB",
                        help=".mmdb to draw IPs from (default: the configured one)")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="seconds to run, then stop every miner after its answers as Ctrl-C does "
                             "(default: until Ctrl-C)")
    parser.add_argument("--reconnect", action="store_true",
                        help="when the pool closes a connection, connect again and resume with the session id "
                             "(as cgminer and bmminer do), instead of ending that miner")
    parser.add_argument("--seed", type=int, default=2022, help="the fleet's plan (addresses, firmware) is the same "
                                                               "for the same seed (default: 2022)")
    parser.add_argument("--report-every", type=float, default=10.0, metavar="SECONDS",
                        help="seconds between progress lines (default: 10)")
    parser.add_argument("--pool-api", metavar="URL", default="",
                        help="the pool's admin API (e.g. http://127.0.0.1:8080): each progress line adds the pool's "
                             f"1m hashrate beside the fleet's own count (read token from ${TOKEN_ENV})")


def describe_pool_figure(overview: dict[str, Any]) -> str:
    """The pool's 1m figure from GET /api/v1/overview, with its window and 95 % bounds."""
    figure = overview["pool"]["hashrate"]["1m"]
    if figure["warming_up"]:
        return f"pool warming up (1m window, {figure['shares']} shares so far)"
    high = "?" if figure["high"] is None else format_hashrate(figure["high"])
    return (f"pool {format_hashrate(figure['hashrate'])} (1m estimate over {figure['covered_seconds']:.0f} s, "
            f"95 % {format_hashrate(figure['low'])} to {high}, {figure['shares']} shares)")


def pool_figure(http: aiohttp.ClientSession, base_url: str, token: str) -> Callable[[], Awaitable[str]]:
    url = base_url.rstrip("/") + "/api/v1/overview"
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def says() -> str:
        try:
            async with http.get(url, headers=headers) as response:
                if response.status != 200:
                    return f"pool API answered HTTP {response.status} ({TOKEN_ENV} set?)"
                return describe_pool_figure(await response.json())
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
            return f"pool API gave no figure ({type(exc).__name__}: {exc})"

    return says


async def _fleet(config: FleetConfig, members: list[FleetMember], args: argparse.Namespace) -> dict[str, ClientStats]:
    # SIGINT/SIGTERM and the end of --duration stop every miner the same way: hashing ends, the answers
    # to the shares in flight are waited for, so the accepted count is what the pool accepted.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.duration is not None:
        loop.call_later(args.duration, stop.set)
    report = functools.partial(print, flush=True)     # a line as it happens, also through a pipe
    if not args.pool_api:
        return await run_fleet(config, members, report=report, report_every=args.report_every, stop=stop)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=API_TIMEOUT_S)) as http:
        return await run_fleet(config, members, report=report, report_every=args.report_every, stop=stop,
                               compare=pool_figure(http, args.pool_api, os.environ.get(TOKEN_ENV, "")))


def _reasons(stats: dict[str, ClientStats]) -> str:
    reasons: dict[str, int] = {}
    for s in stats.values():
        for reason, n in s.reject_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
    return "; rejected: " + ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items())) if reasons else ""


def run(args: argparse.Namespace) -> int:
    config = FleetConfig(host=args.host, port=args.port, miners=args.miners, hashrate=args.hashrate,
                         accounts=args.accounts, account_prefix=args.account_prefix,
                         countries=args.countries or dict(DEFAULT_COUNTRIES), proxy=args.proxy,
                         regions=dict(DEMO_REGIONS) if args.demo_fleet else {},
                         addresses=args.address, seed=args.seed, duration=None,
                         reconnect=args.reconnect)
    members = plan_fleet(config, ip_drawer(args.geo_db) if args.proxy != "none" else None)
    started = time.monotonic()
    stats = asyncio.run(_fleet(config, members, args))
    elapsed = time.monotonic() - started
    accepted = sum(s.accepted for s in stats.values())
    rejected = sum(s.rejected for s in stats.values())
    print(f"fleet done: {len(stats)} miners, {accepted} accepted, {rejected} rejected, "
          f"{sum(s.blocks for s in stats.values())} block candidates; hashed "
          f"{format_hashrate(sum(s.hashes for s in stats.values()) / max(elapsed, 1e-9))} on average over "
          f"{elapsed:.0f} s (set {format_hashrate(args.hashrate * len(stats))})" + _reasons(stats))
    failed = sum(bool(s.error) for s in stats.values())
    if failed:
        print(f"simulate: {failed} of {len(stats)} miners ended early (the lines above say why)", file=sys.stderr)
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("simulate", help="run a fleet of simulated miners against a pool")
    add_arguments(parser)
    parser.set_defaults(func=run)
