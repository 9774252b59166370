"""`geostratum simulate`: a fleet of simulated miners that really hash and submit."""

from __future__ import annotations

import argparse
import asyncio
import random

from pool.sim.fleet import DEFAULT_COUNTRIES, DEMO_REGIONS, FleetConfig, IpDrawer, plan_fleet, run_fleet


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
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3333)
    parser.add_argument("--miners", type=int, default=20)
    parser.add_argument("--hashrate", type=float, default=20_000.0, help="hashes/s per simulated miner")
    parser.add_argument("--accounts", type=int, default=0, help="number of accounts (0: one per miner)")
    parser.add_argument("--account-prefix", default="sim")
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
    parser.add_argument("--geo-db", default="", help=".mmdb to draw IPs from (default: the configured one)")
    parser.add_argument("--duration", type=float, default=None, help="seconds to run (default: forever)")
    parser.add_argument("--reconnect", action="store_true",
                        help="when the pool closes a connection, connect again and resume with the session id "
                             "(as cgminer and bmminer do), instead of ending that miner")
    parser.add_argument("--seed", type=int, default=2022)


def run(args: argparse.Namespace) -> int:
    config = FleetConfig(host=args.host, port=args.port, miners=args.miners, hashrate=args.hashrate,
                         accounts=args.accounts, account_prefix=args.account_prefix,
                         countries=args.countries or dict(DEFAULT_COUNTRIES), proxy=args.proxy,
                         regions=dict(DEMO_REGIONS) if args.demo_fleet else {},
                         addresses=args.address, seed=args.seed, duration=args.duration,
                         reconnect=args.reconnect)
    members = plan_fleet(config, ip_drawer(args.geo_db) if args.proxy != "none" else None)
    stats = asyncio.run(run_fleet(config, members))
    accepted = sum(s.accepted for s in stats.values())
    rejected = sum(s.rejected for s in stats.values())
    print(f"fleet done: {len(stats)} miners, {accepted} accepted, {rejected} rejected, "
          f"{sum(s.blocks for s in stats.values())} block candidates")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("simulate", help="run a fleet of simulated miners against a pool")
    add_arguments(parser)
    parser.set_defaults(func=run)
