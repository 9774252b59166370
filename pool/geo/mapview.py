"""The map's view of one period: published country and subdivision cells, coverage and privacy
parameters, and which periods hold data (for the page's stepper)."""

from __future__ import annotations

import datetime as dt
import time

import msgspec

from pool.config.geo import GeoConfig
from pool.geo.keys import GeoKeys
from pool.geo.periods import period_end, period_start
from pool.geo.report import BASIS, DatabaseUse, Folding, Privacy, build_report
from pool.geo.store import days_with_data
from pool.geo.subdivisions import numeric_code


class MapRegion(msgspec.Struct, kw_only=True):
    level: str                      # "country" or "subdivision"
    country_iso: str                # ISO 3166-1 alpha-2, "Other", ZZ unknown, XP private/reserved
    country_numeric: str | None     # ISO 3166-1 numeric (Natural Earth's ids)
    country_name: str               # World Bank name
    subdivision: str | None
    subdivision_code: str | None    # ISO 3166-2
    share_of_pool: float
    share_of_country: float | None
    hashrate: float                 # H/s, average over the period
    miners: int                     # distinct miners, rounded to privacy.miners_rounding
    hosting_share: float | None     # None: no ASN database (hosting unknown)
    folded: bool                    # an "Other" cell holding suppressed cells


class MapView(msgspec.Struct, kw_only=True):
    period: str
    period_start: str
    period_last: str                # the period's last day, inclusive
    complete: bool
    period_seconds: float           # seconds covered so far
    periods: list[str]              # first days of the periods that hold data, oldest first
    pool_hashrate: float
    accepted_shares: int
    pool_share_of_network: float | None
    share_geolocated: float
    unknown_share: float
    private_share: float
    hosting_share: float | None     # None: no ASN database (hosting unknown)
    hosting_source: str | None
    proxy_share: float
    folding: Folding
    databases: list[DatabaseUse]
    max_database_age_days: int      # a database older than this when the period ended is named stale
    attribution: str
    basis: str
    privacy: Privacy
    regions: list[MapRegion]


async def stored_periods(redis, config: GeoConfig, period: str, today: dt.date, *, prefix: str = "gs") -> list[str]:
    """First days of the periods with a day rollup, over the last geo.max_export_days days."""
    days = [today - dt.timedelta(days=i) for i in range(config.max_export_days)]
    found = await days_with_data(redis, GeoKeys(prefix), days)
    return sorted({period_start(day, period).isoformat() for day in found})


async def map_view(redis, config: GeoConfig, period: str, day: dt.date | None = None, *, prefix: str = "gs",
                   now: float | None = None) -> MapView:
    """The period of `period` kind holding `day` (default: today, UTC). Raises ValueError for an
    unknown period."""
    now = time.time() if now is None else now
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    start = period_start(day or today, period)
    report = await build_report(redis, config, period, start, start, prefix=prefix, now=now, firmware=False)
    p = report.periods[0]
    regions = [MapRegion(level=r.level, country_iso=r.country_iso, country_numeric=numeric_code(r.country_iso),
                         country_name=r.country_name, subdivision=r.item, subdivision_code=r.subdivision_code,
                         share_of_pool=r.share_of_pool, share_of_country=r.share_of_country, hashrate=r.hashrate,
                         miners=r.miners, hosting_share=r.hosting_share, folded=r.folded)
               for r in p.rows]
    return MapView(
        period=period, period_start=p.period_start,
        period_last=(period_end(start, period) - dt.timedelta(days=1)).isoformat(), complete=p.complete,
        period_seconds=p.period_seconds, periods=await stored_periods(redis, config, period, today, prefix=prefix),
        pool_hashrate=p.pool_hashrate, accepted_shares=p.accepted_shares,
        pool_share_of_network=p.pool_share_of_network, share_geolocated=p.share_geolocated,
        unknown_share=p.unknown_share, private_share=p.private_share, hosting_share=p.hosting_share,
        hosting_source=p.hosting_source, proxy_share=p.proxy_share, folding=p.folding, databases=p.databases,
        max_database_age_days=config.max_database_age_days, attribution=report.attribution, basis=BASIS,
        privacy=report.privacy, regions=regions,
    )
