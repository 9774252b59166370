"""Export entry points shared by `geostratum export` and the admin API: one vocabulary for both.

An export is a name (ccaf-countries, ccaf-china, ccaf-us, ccaf-contribution, regions, firmware, chart)
and a format (each name lists its own; the first is the default). `regions-json` is shorthand for
name `regions`, format `json`, everywhere. Ranges are inclusive [first, last] and cover every whole
period they touch; without a range, the current period to date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from pool.config.geo import GeoConfig
from pool.geo import formats
from pool.geo.chart import country_chart
from pool.geo.periods import PERIODS, period_start, periods_covering
from pool.geo.report import Report, build_report

CSV = "text/csv; charset=utf-8"
JSON = "application/json"
SVG = "image/svg+xml"

Renderer = Callable[[Report, GeoConfig], bytes]


@dataclass(frozen=True)
class Export:
    description: str
    formats: dict[str, tuple[Renderer, str]]     # format -> (renderer, content type); first is the default


EXPORTS: dict[str, Export] = {
    "ccaf-countries": Export("CCAF Bitcoin Mining Map layout: share of hashrate by country (CSV, as CCAF "
                             "published it)", {"csv": (lambda r, c: formats.ccaf_countries(r), CSV)}),
    "ccaf-china": Export("CCAF layout: share of China's hashrate by province",
                         {"csv": (lambda r, c: formats.ccaf_china(r), CSV)}),
    "ccaf-us": Export("CCAF layout: share of US hashrate by state", {"csv": (lambda r, c: formats.ccaf_us(r), CSV)}),
    "ccaf-contribution": Export(
        "The document a pool contributes to CCAF: average hashrate by country and province",
        {"json": (lambda r, c: formats.ccaf_contribution(r, c.contribution_unit,
                                                         tuple(c.contribution_subdivisions)), JSON)}),
    "regions": Export("Hashrate by country and subdivision with coverage metadata and privacy folding",
                      {"csv": (lambda r, c: formats.rich_csv(r), CSV),
                       "json": (lambda r, c: formats.rich_json(r), JSON)}),
    "firmware": Export("Hashrate by firmware family and country",
                       {"csv": (lambda r, c: formats.firmware_csv(r), CSV),
                        "json": (lambda r, c: formats.firmware_json(r), JSON)}),
    "chart": Export("Bar chart of the pool's hashrate share by country",
                    {"svg": (lambda r, c: country_chart(r, c.chart_max_countries), SVG)}),
}
# Shorthands NAME-FORMAT (regions-json, chart-svg...) for names with more than one format or whose
# format is not CSV; both the CLI and the API take them.
SHORTHANDS: dict[str, tuple[str, str]] = {
    f"{name}-{fmt}": (name, fmt) for name, export in EXPORTS.items() for fmt in export.formats
    if len(export.formats) > 1 or fmt != "csv"
}
LAYOUTS: tuple[str, ...] = (*EXPORTS, *SHORTHANDS)      # every accepted --layout / {kind}


class ExportResult(msgspec.Struct, frozen=True):
    body: bytes
    content_type: str
    filename: str
    range_text: str          # e.g. "daily periods 2026-12-01..2026-12-04 (current period to date)"
    empty: bool = False      # no accepted share in any period of the range


def parse_day(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} must be a date YYYY-MM-DD, got {text!r}") from None


def resolve(layout: str, fmt: str | None = None) -> tuple[str, str]:
    """(name, format) of a layout name or shorthand and an optional format; ValueError naming the choices."""
    if layout in SHORTHANDS:
        name, implied = SHORTHANDS[layout]
        if fmt is not None and fmt != implied:
            raise ValueError(f"layout {layout!r} is format {implied}, not {fmt!r}")
        return name, implied
    export = EXPORTS.get(layout)
    if export is None:
        raise ValueError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    fmt = fmt or next(iter(export.formats))
    if fmt not in export.formats:
        raise ValueError(f"layout {layout!r} has no format {fmt!r}: expected one of {', '.join(export.formats)}")
    return layout, fmt


def check_period(period: str) -> None:
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}: expected one of {', '.join(PERIODS)}")


def resolve_range(period: str, first: dt.date | None, last: dt.date | None,
                  today: dt.date) -> tuple[dt.date, dt.date, bool]:
    """(first, last, defaulted): both given (inclusive, last >= first), or neither: the current period
    to date. ValueError naming the bad side."""
    check_period(period)
    if first is None and last is None:
        return period_start(today, period), today, True
    if first is None or last is None:
        raise ValueError("give both start and end (inclusive), or neither for the current period to date")
    if last < first:
        raise ValueError(f"end {last} is before start {first} (the range is inclusive: end may equal start)")
    return first, last, False


def covered(period: str, first: dt.date, last: dt.date) -> tuple[dt.date, dt.date]:
    """The whole periods an inclusive range touches: (first day of the first, last day of the last)."""
    spans = periods_covering(first, last, period)
    return spans[0][0], spans[-1][1] - dt.timedelta(days=1)


def describe(period: str, first: dt.date, last: dt.date, defaulted: bool) -> str:
    """What an export covers, as both the CLI and the API state it."""
    lo, hi = covered(period, first, last)
    return f"{period} periods {lo}..{hi}" + (" (current period to date)" if defaulted else "")


def render(report: Report, layout: str, config: GeoConfig, fmt: str | None = None,
           defaulted: bool = False) -> ExportResult:
    name, fmt = resolve(layout, fmt)
    renderer, content_type = EXPORTS[name].formats[fmt]
    filename = f"geostratum-{name}-{report.period}-{report.first}-{report.last}.{fmt}"
    empty = all(p.accepted_shares == 0 for p in report.periods)
    text = describe(report.period, dt.date.fromisoformat(report.first), dt.date.fromisoformat(report.last), defaulted)
    return ExportResult(renderer(report, config), content_type, filename, text, empty)


def _uses_firmware(layout: str) -> bool:
    return layout.startswith("firmware")


async def export(redis, config: GeoConfig, layout: str, period: str, first: dt.date, last: dt.date, *,
                 fmt: str | None = None, prefix: str = "gs", now: float | None = None, defaulted: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> ExportResult:
    """One export over the whole periods covering [first, last]. Raises ValueError (a 400 for the
    admin API) for a bad layout, format, period or range.

    `redis` is a redis.asyncio client created with decode_responses=False.
    """
    resolve(layout, fmt)
    check_period(period)
    report = await build_report(redis, config, period, first, last, prefix=prefix, now=now, progress=progress,
                                firmware=_uses_firmware(layout))
    return render(report, layout, config, fmt, defaulted)


async def export_many(redis, config: GeoConfig, layouts: list[str], period: str, first: dt.date,
                      last: dt.date, **kwargs) -> list[ExportResult]:
    """Several layouts (names or shorthands, each in its default or implied format) from one read of Redis."""
    for layout in layouts:
        resolve(layout)
    check_period(period)
    report = await build_report(redis, config, period, first, last,
                                firmware=any(_uses_firmware(layout) for layout in layouts), **kwargs)
    return [render(report, layout, config) for layout in layouts]
