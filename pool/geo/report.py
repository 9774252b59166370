"""A research report: per period, the published region and firmware cells with coverage metadata.

Hashrate of a cell over a period = (sum of accepted share difficulty) x 2^32 / seconds the pool was
observed in the period (a pool that started an hour ago is not divided by the day); the
network hashrate is the one implied by the recorded network difficulty (difficulty x 2^32 / 600).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import msgspec

from pool.config.geo import GeoConfig
from pool.geo.keys import ANY_REGION, GeoKeys
from pool.geo.locator import attribution_for
from pool.geo.periods import days_in, periods_covering, to_epoch
from pool.geo.privacy import Cell, Published, Rule, apply_rule
from pool.geo.store import DayData, HllUnions, first_observations, merge_days, read_days
from pool.geo.subdivisions import canonical
from pool.geo.tables import OTHER, PRIVATE, UNKNOWN, world_bank_name
from pool.shares.hashrate import scaled_bounds
from pool.shares.keys import Keys
from pool.shares.uptime import DAY, observed_in_period, up_by_day

HASHES_PER_DIFFICULTY = 2**32
BLOCK_INTERVAL = 600.0
BASIS = ("accepted shares only, at the difficulty credited when the job was sent; hashrate = sum of "
         "difficulty x 2^32 / seconds the pool was observed in the period (the 10 s buckets its processes "
         "marked up, so an outage is not observed time; before such marks were kept, from the later of the "
         "period's start and the pool's first share to the earlier of its end and now: period_seconds, "
         "period_coverage); network hashrate = mean sampled network difficulty x "
         "2^32 / 600")
FIRMWARE_NOTE = ("families name the firmware from the subscribe user agent; firmware can be replaced "
                 "(Braiins OS and LUXminer run on Antminers), so a maker is an inference")


class Row(msgspec.Struct, kw_only=True):
    level: str                      # "country", "subdivision" or "family"
    country_iso: str                # ISO alpha-2, ZZ unknown, XP private/reserved, "Other"
    country_name: str               # World Bank name
    item: str | None                # subdivision or family; None on country rows
    subdivision_code: str | None    # ISO 3166-2 of a subdivision row when known (e.g. "CN-SC")
    difficulty: float
    hashrate: float                 # H/s, average over the period (the seconds the pool was observed in it)
    hashrate_low: float = 0.0       # 95 % bounds from the row's share count (Poisson)
    hashrate_high: float | None = None
    share_of_pool: float            # fraction of the pool's accepted difficulty
    share_of_country: float | None
    share_of_network: float | None  # estimated (pool hashrate / network hashrate x share_of_pool)
    miners: int                     # distinct miners, rounded
    shares: int
    hosting_share: float | None     # None: no ASN or Anonymous-IP database was in use (hosting unknown)
    proxy_share: float
    folded: bool                    # an Other row holding suppressed cells


class DatabaseUse(msgspec.Struct, kw_only=True):
    role: str
    type: str
    build_date: str
    share: float                    # fraction of the period's difficulty flushed while in use


class Folding(msgspec.Struct, kw_only=True):
    within_country_cells: int
    within_country_share: float
    global_cells: int
    global_share: float
    withheld_share: float           # not published at all (even the global Other failed the rule)


class PeriodReport(msgspec.Struct, kw_only=True):
    period_start: str
    period: str
    period_seconds: float           # seconds the pool was observed (up) in the period (hashrates divide by it)
    period_coverage: float          # period_seconds / the period's length
    complete: bool
    pool_difficulty: float
    pool_hashrate: float
    pool_hashrate_low: float        # 95 % bounds from the accepted share count (Poisson)
    pool_hashrate_high: float | None
    accepted_shares: int
    network_difficulty: float | None
    network_hashrate: float | None
    network_samples: int
    pool_share_of_network: float | None
    share_geolocated: float
    unknown_share: float
    private_share: float
    hosting_share: float | None     # None: no ASN or Anonymous-IP database in use this period
    hosting_source: str | None
    proxy_share: float
    databases: list[DatabaseUse]
    folding: Folding
    rows: list[Row]
    firmware_folding: Folding
    firmware_rows: list[Row]


class Privacy(msgspec.Struct, kw_only=True):
    min_miners: int
    dominance_n: int
    dominance_percent: float
    miners_rounding: int
    top_read_depth: int
    top_miners_kept: int


class Report(msgspec.Struct, kw_only=True):
    generator: str
    generated_at: str
    period: str
    first: str
    last: str
    basis: str
    firmware_note: str
    attribution: str
    privacy: Privacy
    periods: list[PeriodReport]


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def _round_miners(n: int, step: int) -> int:
    return round(n / step) * step if step > 1 else n


def _fold(pub: Published, total: float) -> Folding:
    return Folding(within_country_cells=pub.folded_within_cells,
                   within_country_share=_ratio(pub.folded_within_difficulty, total),
                   global_cells=pub.folded_global_cells,
                   global_share=_ratio(pub.folded_global_difficulty, total),
                   withheld_share=_ratio(pub.withheld_difficulty, total))


class _RowMaker:
    def __init__(self, seconds: float, total: float, network_hashrate: float | None, rounding: int,
                 hosting_known: bool) -> None:
        self.seconds, self.total, self.network, self.rounding = seconds, total, network_hashrate, rounding
        self.hosting_known = hosting_known

    def __call__(self, cell: Cell, level: str, country_total: float | None, folded: bool) -> Row:
        hashrate = _ratio(cell.difficulty * HASHES_PER_DIFFICULTY, self.seconds)
        low, high = scaled_bounds(hashrate, cell.shares)
        code = canonical(cell.group, cell.item)[1] if level == "subdivision" and cell.item != OTHER else None
        return Row(
            level=level, country_iso=cell.group, country_name=world_bank_name(cell.group),
            item=None if level == "country" else (cell.item or "Unknown"),
            subdivision_code=code,
            difficulty=cell.difficulty, hashrate=hashrate, hashrate_low=low, hashrate_high=high,
            share_of_pool=_ratio(cell.difficulty, self.total),
            share_of_country=None if country_total is None else _ratio(cell.difficulty, country_total),
            share_of_network=_ratio(hashrate, self.network) if self.network else None,
            miners=_round_miners(cell.miners, self.rounding), shares=cell.shares,
            hosting_share=_ratio(cell.hosting, cell.difficulty) if self.hosting_known else None,
            proxy_share=_ratio(cell.proxy, cell.difficulty),
            folded=folded)


def _rows(pub: Published, make: _RowMaker, item_level: str) -> list[Row]:
    rows: list[Row] = []
    for total, items in pub.groups:
        rows.append(make(total, "country", None, False))
        rows.extend(make(c, item_level, total.difficulty, c.item == OTHER) for c in items)
    if pub.other is not None:
        rows.append(make(pub.other, "country", None, True))
    return rows


def _databases(datas: list[DayData], total: float) -> list[DatabaseUse]:
    used: dict[str, float] = {}
    for data in datas:
        for ident, diff in data.databases.items():
            used[ident] = used.get(ident, 0.0) + diff
    out = []
    for ident, diff in sorted(used.items()):
        role, _, rest = ident.partition("|")
        kind, _, built = rest.partition("|")
        out.append(DatabaseUse(role=role, type=kind, build_date=built, share=_ratio(diff, total)))
    return out


async def _period(unions: HllUnions, rule: Rule, config: GeoConfig, period: str, start: dt.date,
                  end: dt.date, datas: list[DayData], now: float, observed_from: float | None,
                  up: tuple[float | None, float | None, dict[int, float]]) -> PeriodReport:
    begin, finish = to_epoch(start), to_epoch(end)
    complete = now >= finish
    # Seconds the pool was observed in the period: the seconds its up marks cover (an outage is not
    # observed time); before marks were kept, from the later of the period's start and the pool's
    # first geo-tagged share to the earlier of its end and now.
    since, started, up_days = up
    seconds = observed_in_period(begin, finish, now, observed_from, since,
                                 [up_days.get(d, 0.0) for d in range(int(begin // DAY), int(finish // DAY))], started)
    regions, firmware = merge_days(datas)
    cells = [c for cs in regions.values() for c in cs]
    total = sum(c.difficulty for c in cells)
    samples = [v for d in datas for v in d.network]
    net_diff = sum(samples) / len(samples) if samples else None
    net_rate = net_diff * HASHES_PER_DIFFICULTY / BLOCK_INTERVAL if net_diff else None
    pool_rate = _ratio(total * HASHES_PER_DIFFICULTY, seconds)
    accepted = sum(c.shares for c in cells)
    pool_low, pool_high = scaled_bounds(pool_rate, accepted)
    unknown = sum(c.difficulty for c in regions.get(UNKNOWN, []))
    private = sum(c.difficulty for c in regions.get(PRIVATE, []))
    databases = _databases(datas, total)
    hosting_dbs = sorted({f"{d.type} {d.build_date}" for d in databases if d.role in ("asn", "anonymous-ip")})
    make = _RowMaker(seconds, total, net_rate, config.miners_rounding, bool(hosting_dbs))
    pub = await apply_rule(regions, rule, unions.count)
    fw_pub = await apply_rule(firmware, rule, unions.count)
    return PeriodReport(
        period_start=start.isoformat(), period=period, period_seconds=seconds,
        period_coverage=_ratio(seconds, finish - begin), complete=complete,
        pool_difficulty=total, pool_hashrate=pool_rate, pool_hashrate_low=pool_low, pool_hashrate_high=pool_high,
        accepted_shares=accepted,
        network_difficulty=net_diff, network_hashrate=net_rate, network_samples=len(samples),
        pool_share_of_network=_ratio(pool_rate, net_rate) if net_rate else None,
        share_geolocated=_ratio(total - unknown - private, total),
        unknown_share=_ratio(unknown, total), private_share=_ratio(private, total),
        hosting_share=_ratio(sum(c.hosting for c in cells), total) if hosting_dbs else None,
        hosting_source=", ".join(hosting_dbs) or None,
        proxy_share=_ratio(sum(c.proxy for c in cells), total),
        databases=databases, folding=_fold(pub, total), rows=_rows(pub, make, "subdivision"),
        firmware_folding=_fold(fw_pub, total), firmware_rows=_rows(fw_pub, make, "family"),
    )


def attribution_of(report_dbs: list[DatabaseUse], configured: str = "") -> str:
    if configured:
        return configured
    texts = [attribution_for(d.type) for d in report_dbs if d.type and d.type != "none"]
    return " ".join(dict.fromkeys(texts)) or attribution_for("DBIP-City-Lite")


async def build_report(redis, config: GeoConfig, period: str, first: dt.date, last: dt.date, *,
                       prefix: str = "gs", now: float | None = None,
                       progress: Callable[[int, int], None] | None = None, firmware: bool = True) -> Report:
    """Read and check the periods covering [first, last]; `firmware=False` skips the firmware cells
    (their rows come out empty), which most layouts do not need."""
    spans = periods_covering(first, last, period)
    total_days = (spans[-1][1] - spans[0][0]).days
    if total_days > config.max_export_days:
        raise ValueError(f"range covers {total_days} days, more than geo.max_export_days "
                         f"({config.max_export_days})")
    now = time.time() if now is None else now
    keys = GeoKeys(prefix)
    rule = Rule(config.min_miners, config.dominance_n, config.dominance_percent)
    unions = HllUnions(redis, keys)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total_days)

    periods = []
    observed_from = (await first_observations(redis, keys, [ANY_REGION]))[0]
    up = await up_by_day(redis, Keys(prefix, 1), range(int(to_epoch(spans[0][0]) // DAY),
                                                        int(to_epoch(spans[-1][1]) // DAY)))
    try:
        for start, end in spans:
            datas = await read_days(redis, keys, days_in(start, end), unions, config.top_read_depth, advance,
                                    firmware=firmware)
            periods.append(await _period(unions, rule, config, period, start, end, datas, now, observed_from, up))
    finally:
        await unions.close()
    all_dbs = [d for p in periods for d in p.databases]
    return Report(
        generator="geostratum", generated_at=dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="seconds"),
        period=period, first=spans[0][0].isoformat(), last=(spans[-1][1] - dt.timedelta(days=1)).isoformat(),
        basis=BASIS, firmware_note=FIRMWARE_NOTE, attribution=attribution_of(all_dbs, config.attribution),
        privacy=Privacy(min_miners=config.min_miners, dominance_n=config.dominance_n,
                        dominance_percent=config.dominance_percent, miners_rounding=config.miners_rounding,
                        top_read_depth=config.top_read_depth, top_miners_kept=config.top_miners_kept),
        periods=periods,
    )
