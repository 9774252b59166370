"""ExportProvider over pool.geo's export functions: every layout the geo package offers."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from pool.admin.interfaces import ExportKind, Rejected
from pool.geo.exports import LAYOUTS, check_request, render
from pool.geo.mapview import MapView, map_view
from pool.geo.periods import PERIODS, period_end, period_start
from pool.geo.report import build_report

if TYPE_CHECKING:
    from pool.app import PoolApp

# API export name -> (description, {format: geo layout})
KINDS: dict[str, tuple[str, dict[str, str]]] = {
    "ccaf-countries": ("CCAF Bitcoin Mining Map layout: share of hashrate by country (CSV, as CCAF published it)",
                       {"csv": "ccaf-countries"}),
    "ccaf-china": ("CCAF layout: share of China's hashrate by province", {"csv": "ccaf-china"}),
    "ccaf-us": ("CCAF layout: share of US hashrate by state", {"csv": "ccaf-us"}),
    "ccaf-contribution": ("The document a pool contributes to CCAF: average hashrate by country and province",
                          {"json": "ccaf-contribution"}),
    "regions": ("Hashrate by country and subdivision with coverage metadata and privacy folding",
                {"csv": "regions-csv", "json": "regions-json"}),
    "firmware": ("Hashrate by firmware family and country", {"csv": "firmware-csv", "json": "firmware-json"}),
    "chart": ("Bar chart of the pool's hashrate share by country", {"svg": "chart-svg"}),
}


class GeoExports:
    def __init__(self, app: PoolApp) -> None:
        self.app = app
        missing = {layout for _, formats in KINDS.values() for layout in formats.values()} - set(LAYOUTS)
        if missing:
            raise RuntimeError(f"pool.geo no longer offers {sorted(missing)}")

    def kinds(self) -> list[ExportKind]:
        if self.app.rollup is None:
            return []
        return [ExportKind(name=name, description=description, formats=list(formats), periods=list(PERIODS))
                for name, (description, formats) in KINDS.items()]

    async def export(self, kind: str, period: str, start: str, end: str, fmt: str) -> tuple[bytes, str]:
        if self.app.rollup is None or self.app.ledger is None:
            raise Rejected("geo is disabled on this pool ([geo] enabled = false)", 404)
        layout = KINDS[kind][1][fmt]
        first_day, end_day = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
        # Periods that start in [start, end): geo covers whole periods overlapping [first, last].
        first = period_start(first_day, period)
        if first < first_day:
            first = period_end(first, period)
        last = end_day - dt.timedelta(days=1)
        if first > last:
            raise Rejected(f"no {period} period starts between {start} and {end}", 400)
        config = self.app.config.geo
        try:
            check_request(layout, period)
            report = await build_report(self.app.ledger.client, config, period, first, last,
                                        prefix=self.app.config.redis.key_prefix)
        except ValueError as exc:
            raise Rejected(str(exc), 400) from None
        except (RedisError, OSError):
            raise Rejected("the rollups cannot be read: Redis is unreachable", 409) from None
        if not any(p.pool_difficulty > 0 for p in report.periods):
            raise Rejected(f"no accepted shares recorded for {period} periods from {first} to {last}", 404)
        result = render(report, layout, config)
        return result.body, result.content_type

    async def map_view(self, period: str, day: str | None) -> MapView:
        if self.app.rollup is None or self.app.ledger is None:
            raise Rejected("geo is disabled on this pool ([geo] enabled = false)", 404)
        try:
            return await map_view(self.app.ledger.client, self.app.config.geo, period,
                                  dt.date.fromisoformat(day) if day else None,
                                  prefix=self.app.config.redis.key_prefix)
        except ValueError as exc:
            raise Rejected(str(exc), 400) from None
        except (RedisError, OSError):
            raise Rejected("the rollups cannot be read: Redis is unreachable", 409) from None
