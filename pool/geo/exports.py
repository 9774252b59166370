"""Export entry points shared by `geostratum export` and the admin API: bytes + content type."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import msgspec

from pool.config.geo import GeoConfig
from pool.geo import formats
from pool.geo.chart import country_chart
from pool.geo.periods import PERIODS
from pool.geo.report import Report, build_report

CSV = "text/csv; charset=utf-8"
JSON = "application/json"
SVG = "image/svg+xml"

# layout -> (renderer, content type, file extension)
LAYOUTS: dict[str, tuple[Callable[[Report, GeoConfig], bytes], str, str]] = {
    "ccaf-countries": (lambda r, c: formats.ccaf_countries(r), CSV, "csv"),
    "ccaf-china": (lambda r, c: formats.ccaf_china(r), CSV, "csv"),
    "ccaf-us": (lambda r, c: formats.ccaf_us(r), CSV, "csv"),
    "ccaf-contribution": (lambda r, c: formats.ccaf_contribution(
        r, c.contribution_unit, tuple(c.contribution_subdivisions)), JSON, "json"),
    "regions-csv": (lambda r, c: formats.rich_csv(r), CSV, "csv"),
    "regions-json": (lambda r, c: formats.rich_json(r), JSON, "json"),
    "firmware-csv": (lambda r, c: formats.firmware_csv(r), CSV, "csv"),
    "firmware-json": (lambda r, c: formats.firmware_json(r), JSON, "json"),
    "chart-svg": (lambda r, c: country_chart(r, c.chart_max_countries), SVG, "svg"),
}


class ExportResult(msgspec.Struct, frozen=True):
    body: bytes
    content_type: str
    filename: str
    empty: bool = False      # no accepted share in any period of the range


def parse_day(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} must be a date YYYY-MM-DD, got {text!r}") from None


def check_request(layout: str, period: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}: expected one of {', '.join(PERIODS)}")


def render(report: Report, layout: str, config: GeoConfig) -> ExportResult:
    renderer, content_type, ext = LAYOUTS[layout]
    name = f"geostratum-{layout}-{report.period}-{report.first}-{report.last}.{ext}"
    empty = all(p.accepted_shares == 0 for p in report.periods)
    return ExportResult(renderer(report, config), content_type, name, empty)


async def export(redis, config: GeoConfig, layout: str, period: str, first: dt.date, last: dt.date, *,
                 prefix: str = "gs", now: float | None = None,
                 progress: Callable[[int, int], None] | None = None) -> ExportResult:
    """One export. Raises ValueError (a 400 for the admin API) for a bad layout, period or range.

    `redis` is a redis.asyncio client created with decode_responses=False.
    """
    check_request(layout, period)
    report = await build_report(redis, config, period, first, last, prefix=prefix, now=now, progress=progress,
                                firmware=layout.startswith("firmware"))
    return render(report, layout, config)


async def export_many(redis, config: GeoConfig, layouts: list[str], period: str, first: dt.date,
                      last: dt.date, **kwargs) -> list[ExportResult]:
    """Several layouts from one read of Redis."""
    for layout in layouts:
        check_request(layout, period)
    report = await build_report(redis, config, period, first, last,
                                firmware=any(layout.startswith("firmware") for layout in layouts), **kwargs)
    return [render(report, layout, config) for layout in layouts]
