"""Renderers: a Report -> the CCAF layouts byte for byte, the CCAF contribution document, and our own
rich CSV/JSON (regions and firmware families).

CCAF's download endpoints wrote rows with Python's csv module (so "\\r\\n" line ends and minimal quoting)
and formatted values as str(round(x, 2)), i.e. "37.84%", "7.2%", "0%". We do the same.
"""

from __future__ import annotations

import csv
import io
import json

import msgspec

from pool.geo.report import PeriodReport, Report, Row
from pool.geo.tables import OTHER

CCAF_COUNTRIES_HEADER = ("date", "country", "monthly_hashrate_%", "monthly_absolute_hashrate_EH/S")
CCAF_CHINA_HEADER = ("Date", "Province", "Share of Chinese hashrate")
CCAF_US_HEADER = ("Date", "State", "US hashrate by state")

_UNITS = {"th/s": 1e12, "ph/s": 1e15, "eh/s": 1e18}


def _csv(header: tuple[str, ...], rows: list[tuple]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def _country_rows(period: PeriodReport) -> list[Row]:
    return [r for r in period.rows if r.level == "country"]


def ccaf_countries(report: Report) -> bytes:
    rows = []
    for period in report.periods:
        ranked = sorted(_country_rows(period), key=lambda r: -r.share_of_pool)
        for row in ranked:
            value = row.share_of_pool
            percent = f"{round(value * 100, 2)}%" if value else "0%"
            if period.network_hashrate:
                absolute: float = round(value * period.network_hashrate / 1e18, 2)
            else:
                absolute = 0
            rows.append((period.period_start, row.country_name, percent, absolute))
    return _csv(CCAF_COUNTRIES_HEADER, rows)


def _subdivisions(report: Report, iso: str, header: tuple[str, ...]) -> bytes:
    rows = []
    for period in report.periods:
        items = [r for r in period.rows if r.level == "subdivision" and r.country_iso == iso]
        for row in sorted(items, key=lambda r: -(r.share_of_country or 0.0)):
            rows.append((period.period_start, row.item, round((row.share_of_country or 0.0) * 100, 2)))
    return _csv(header, rows)


def ccaf_china(report: Report) -> bytes:
    return _subdivisions(report, "CN", CCAF_CHINA_HEADER)


def ccaf_us(report: Report) -> bytes:
    return _subdivisions(report, "US", CCAF_US_HEADER)


def _unit(report: Report, configured: str) -> str:
    if configured != "auto":
        return configured
    largest = max((r.hashrate for p in report.periods for r in _country_rows(p)), default=0.0)
    for unit in ("eh/s", "ph/s"):
        if largest >= _UNITS[unit]:
            return unit
    return "th/s"


def ccaf_contribution(report: Report, unit: str = "auto", subdivisions: tuple[str, ...] = ("CN", "US")) -> bytes:
    """The document a pool sent to CCAF: {"data": [...]} with World Bank country names."""
    unit = _unit(report, unit)
    scale = _UNITS[unit]
    items = []
    for period in report.periods:
        for row in period.rows:
            if row.level == "subdivision" and row.country_iso not in subdivisions:
                continue
            items.append({
                "period_start_date": period.period_start,
                "period": period.period,
                "country": row.country_name,
                "province": row.item if row.level == "subdivision" else None,
                "average_hashrate": round(row.hashrate / scale, 6),
                "unit": unit,
            })
    return (json.dumps({"data": items}, indent=2, ensure_ascii=False) + "\n").encode()


def _metadata_lines(report: Report, period: PeriodReport) -> list[str]:
    def pct(x: float | None) -> str:
        return "unknown" if x is None else f"{x * 100:.6g}%"

    dbs = "; ".join(f"{d.role} {d.type} built {d.build_date} ({pct(d.share)} of difficulty)"
                    for d in period.databases) or "none recorded"
    fold = period.folding
    return [
        f"period_start: {period.period_start} ({period.period}, {period.period_seconds:.0f} s"
        f"{'' if period.complete else ', incomplete'})",
        f"pool_hashrate_hs: {period.pool_hashrate:.6g}",
        f"network_hashrate_hs: {'unknown' if period.network_hashrate is None else f'{period.network_hashrate:.6g}'}"
        f" ({period.network_samples} difficulty samples)",
        f"pool_share_of_network: {pct(period.pool_share_of_network)}",
        f"share_geolocated: {pct(period.share_geolocated)} (unknown {pct(period.unknown_share)}, "
        f"private/reserved {pct(period.private_share)})",
        f"hosting_share: {pct(period.hosting_share)} (source: "
        f"{period.hosting_source or 'none: hosting unknown, counted as not hosting'})",
        f"farm_proxy_share: {pct(period.proxy_share)}",
        f"databases: {dbs}",
        f"folded_within_country: {fold.within_country_cells} cells, {pct(fold.within_country_share)}",
        f"folded_global: {fold.global_cells} cells, {pct(fold.global_share)}; withheld {pct(fold.withheld_share)}",
    ]


RICH_COLUMNS = ("period_start", "period", "period_seconds", "level", "country_iso", "country_name",
                "subdivision", "average_hashrate", "unit", "share_of_pool", "share_of_country",
                "share_of_network", "distinct_miners", "accepted_shares", "hosting_share", "proxy_share",
                "suppressed_folded")


def _rich_csv(report: Report, firmware: bool) -> bytes:
    out = io.StringIO()
    p = report.privacy
    head = [
        f"generator: {report.generator} {report.generated_at}",
        f"basis: {report.basis}",
        f"privacy: k={p.min_miners} distinct miners; dominance n={p.dominance_n} at {p.dominance_percent}%; "
        f"miners rounded to {p.miners_rounding}; suppressed cells fold into Other in their country, then "
        "globally",
        f"attribution: {report.attribution}",
    ]
    if firmware:
        head.append(f"firmware: {report.firmware_note}")
    for period in report.periods:
        head.extend(_metadata_lines(report, period))
    out.writelines(f"# {line}\n" for line in head)
    writer = csv.writer(out, lineterminator="\n")
    columns = list(RICH_COLUMNS)
    if firmware:
        columns[columns.index("subdivision")] = "family"
    writer.writerow(columns)
    for period in report.periods:
        for r in (period.firmware_rows if firmware else period.rows):
            writer.writerow((
                period.period_start, period.period, f"{period.period_seconds:.0f}", r.level, r.country_iso,
                r.country_name, r.item or "", f"{r.hashrate:.6g}", "H/s", f"{r.share_of_pool:.6f}",
                "" if r.share_of_country is None else f"{r.share_of_country:.6f}",
                "" if r.share_of_network is None else f"{r.share_of_network:.8f}",
                r.miners, r.shares, f"{r.hosting_share:.6f}", f"{r.proxy_share:.6f}",
                "true" if r.folded or r.country_iso == OTHER else "false",
            ))
    return out.getvalue().encode()


def rich_csv(report: Report) -> bytes:
    return _rich_csv(report, firmware=False)


def firmware_csv(report: Report) -> bytes:
    return _rich_csv(report, firmware=True)


def rich_json(report: Report) -> bytes:
    data = msgspec.to_builtins(report)
    for period in data["periods"]:
        period.pop("firmware_rows")
        period.pop("firmware_folding")
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def firmware_json(report: Report) -> bytes:
    data = msgspec.to_builtins(report)
    for period in data["periods"]:
        period["rows"] = period.pop("firmware_rows")
        period["folding"] = period.pop("firmware_folding")
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
