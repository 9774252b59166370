"""Renderers: a Report -> the CCAF layouts byte for byte, the CCAF contribution document, and our own
rich CSV/JSON (regions and firmware families).

CCAF's download endpoints wrote rows with Python's csv module (so "\\r\\n" line ends and minimal quoting).
Shares are written with two decimals ("37.84%", "7.20%"; an exact zero "0%", as CCAF's files show it),
sub-national values as share x 100 with two decimals, the EH/s column with two decimals (empty when no
network difficulty was sampled). A daily or weekly export says so in the country header.
"""

from __future__ import annotations

import csv
import io
import json

import msgspec

from pool.geo.report import PeriodReport, Report, Row
from pool.geo.tables import OTHER

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


def countries_header(period: str) -> tuple[str, ...]:
    """CCAF's header, naming the period: `monthly_hashrate_%` for monthly data, `daily_hashrate_%`..."""
    return ("date", "country", f"{period}_hashrate_%", f"{period}_absolute_hashrate_EH/S")


def ccaf_countries(report: Report) -> bytes:
    rows = []
    for period in report.periods:
        ranked = sorted(_country_rows(period), key=lambda r: -r.share_of_pool)
        for row in ranked:
            value = row.share_of_pool
            percent = f"{value * 100:.2f}%" if value else "0%"
            # Without a network difficulty sample the absolute figure is unknown: left empty, not 0.
            absolute = f"{value * period.network_hashrate / 1e18:.2f}" if period.network_hashrate else ""
            rows.append((period.period_start, row.country_name, percent, absolute))
    return _csv(countries_header(report.period), rows)


def _subdivisions(report: Report, iso: str, header: tuple[str, ...]) -> bytes:
    rows = []
    for period in report.periods:
        items = [r for r in period.rows if r.level == "subdivision" and r.country_iso == iso]
        for row in sorted(items, key=lambda r: -(r.share_of_country or 0.0)):
            rows.append((period.period_start, row.item, f"{(row.share_of_country or 0.0) * 100:.2f}"))
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


def _pct(x: float | None) -> str:
    return "unknown" if x is None else f"{x * 100:.6g}%"


NO_HOSTING = "unknown (no ASN database)"


def _period_line(period: PeriodReport) -> str:
    """One comment line per period: an empty period costs one short line."""
    head = (f"period {period.period_start} ({period.period}, {period.period_seconds:.0f} s observed, "
            f"{_pct(period.period_coverage)} of the period{'' if period.complete else ', incomplete'})")
    if not period.accepted_shares:
        return f"{head}: no accepted shares"
    network = "unknown" if period.network_hashrate is None else f"{period.network_hashrate:.6g}"
    dbs = ", ".join(f"{d.role} {d.type} built {d.build_date} ({_pct(d.share)})" for d in period.databases)
    fold = period.folding
    high = "unknown" if period.pool_hashrate_high is None else f"{period.pool_hashrate_high:.6g}"
    return (f"{head}: pool_hashrate_hs {period.pool_hashrate:.6g} (95 % interval {period.pool_hashrate_low:.6g}"
            f"..{high}, {period.accepted_shares} shares); network_hashrate_hs {network} "
            f"({period.network_samples} difficulty samples); pool_share_of_network "
            f"{_pct(period.pool_share_of_network)}; share_geolocated {_pct(period.share_geolocated)} (unknown "
            f"{_pct(period.unknown_share)}, private/reserved {_pct(period.private_share)}); hosting_share "
            f"{NO_HOSTING if period.hosting_share is None else _pct(period.hosting_share)}; "
            f"farm_proxy_share {_pct(period.proxy_share)}; databases "
            f"{dbs or 'none recorded'}; folded_within_country {fold.within_country_cells} cells "
            f"{_pct(fold.within_country_share)}; folded_global {fold.global_cells} cells "
            f"{_pct(fold.global_share)}; withheld {_pct(fold.withheld_share)}")


RICH_COLUMNS = ("period_start", "period", "period_seconds", "level", "country_iso", "country_name",
                "subdivision", "average_hashrate", "unit", "share_of_pool", "share_of_country",
                "share_of_network", "distinct_miners", "accepted_shares", "hosting_share", "proxy_share",
                "suppressed_folded", "subdivision_code", "average_hashrate_low", "average_hashrate_high")


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
    sources = sorted({(d.role, d.type, d.build_date) for p in report.periods for d in p.databases})
    hosting = sorted({p.hosting_source for p in report.periods if p.hosting_source})
    head.append("databases: " + ("; ".join(f"{role} {kind} built {built}" for role, kind, built in sources)
                                 or "none recorded"))
    head.append(f"hosting_source: {', '.join(hosting) or 'none: hosting_share ' + NO_HOSTING}")
    head.append(f"range: {report.period} periods {report.first}..{report.last}, {len(report.periods)} periods, "
                f"{sum(1 for p in report.periods if not p.accepted_shares)} without data")
    head.extend(_period_line(period) for period in report.periods)
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
                r.miners, r.shares, "" if r.hosting_share is None else f"{r.hosting_share:.6f}", f"{r.proxy_share:.6f}",
                "true" if r.folded or r.country_iso == OTHER else "false", r.subdivision_code or "",
                f"{r.hashrate_low:.6g}", "" if r.hashrate_high is None else f"{r.hashrate_high:.6g}",
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
