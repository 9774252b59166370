"""Read endpoints: overview, history, workers, accounts, blocks, regions, exports, health, metrics."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import msgspec
from aiohttp import web

from pool.admin import economics, metrics, params
from pool.admin.context import ApiContext
from pool.admin.interfaces import (
    BlockInfo,
    BlockQuery,
    ListQuery,
    NetworkInfo,
    PoolFigures,
    RegionRate,
    RegionsView,
)
from pool.admin.params import ApiError
from pool.admin.responses import (
    BlocksSection,
    NetworkSection,
    PoolOverview,
    PoolSection,
    PoolShareSection,
    RegionsResponse,
    RevenueSection,
    RoundSection,
    SharesSection,
)
from pool.geo.exports import SHORTHANDS, covered, describe, resolve_range
from pool.shares.hashrate import scaled_bounds

OTHER = ("XX", "Other")
MAP_PERIODS = ("daily", "weekly", "monthly")


def ok(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(value), status=status, content_type="application/json")


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", what)


# --- overview --------------------------------------------------------------------------------


def build_overview(
    ctx: ApiContext, figures: PoolFigures, net: NetworkInfo, recent_pool_blocks: list[BlockInfo]
) -> PoolOverview:
    rejected_total = sum(figures.shares.rejected.values())
    same_span = figures.shares.judged_accepted
    judged = (figures.shares.accepted if same_span is None else same_span) + rejected_total
    note = economics.network_hashrate_note(net.chain, net.recent_block_difficulties)
    network_hashrate = economics.hashrate_from_difficulty(net.difficulty)
    recent_interval = economics.average_block_interval(net.recent_block_times)
    counted = len(net.recent_block_difficulties) if len(net.recent_block_difficulties) == len(
        net.recent_block_times) else 0
    from_blocks = economics.network_hashrate_from_blocks(
        net.recent_block_difficulties, net.recent_block_times) if counted and not note else None
    fees = net.recent_fees_sat
    average_fees = sum(fees) / len(fees) if fees else 0.0
    hashprice = None if note else economics.hashprice_btc_per_ph_day(
        difficulty=net.difficulty, height=net.height, average_fees_sat=average_fees
    )
    price, source, price_at = ctx.price.current()
    adjustment = None
    if net.retargets:
        adjustment = economics.project_adjustment(
            height=net.height,
            difficulty=net.difficulty,
            tip_time=net.tip_time,
            period_start_time=net.period_start_time,
            recent_block_times=net.recent_block_times,
        )
    window = ctx.config.recent_blocks_window
    ours = [b for b in recent_pool_blocks if b.status not in ("orphaned", "rejected")]
    return PoolOverview(
        generated_at=ctx.clock(),
        pool=PoolSection(
            hashrate=figures.hashrate,
            connections=figures.connections,
            workers=figures.workers,
            accounts=figures.accounts,
            started_at=figures.started_at,
        ),
        shares=SharesSection(
            window_seconds=figures.shares.window_seconds,
            accepted=figures.shares.accepted,
            accepted_difficulty=figures.shares.accepted_difficulty,
            rejected_total=rejected_total,
            rejected_by_reason=figures.shares.rejected,
            stale_rate=economics.share_of(figures.shares.rejected.get("stale", 0), judged),
            observed_seconds=figures.shares.observed_seconds,
            rejected_seconds=figures.shares.rejected_seconds,
        ),
        blocks=BlocksSection(found=figures.blocks_found, last_found_at=figures.last_block_found_at),
        round=RoundSection(opened_at=figures.round_opened_at, shares=figures.round_shares,
                           accepted_difficulty=figures.round_difficulty,
                           effort=figures.round_difficulty / net.difficulty if net.difficulty > 0 else None),
        network=NetworkSection(
            chain=net.chain,
            height=net.height,
            difficulty=net.difficulty,
            hashrate=None if note else network_hashrate,
            hashrate_recent=(
                economics.hashrate_from_difficulty(net.difficulty, recent_interval)
                if recent_interval and not note else None
            ),
            hashrate_from_blocks=from_blocks,
            blocks_counted=max(0, counted - 1) if from_blocks is not None else 0,
            note=note,
        ),
        next_adjustment=adjustment,
        revenue=RevenueSection(
            subsidy_btc=economics.block_subsidy_sat(net.height + 1) / economics.SAT_PER_BTC,
            average_fees_btc=average_fees / economics.SAT_PER_BTC,
            fee_blocks=len(fees),
            hashprice_btc_per_ph_day=hashprice,
            btc_usd_price=price,
            price_source=source,
            price_updated_at=price_at,
            hashprice_usd_per_ph_day=hashprice * price if price is not None and hashprice is not None else None,
        ),
        pool_share=PoolShareSection(
            of_network_hashrate=(
                None if note else economics.share_of(figures.hashrate.h24.hashrate, network_hashrate)),
            of_recent_blocks=economics.recent_blocks_share(len(ours), window, net.height),
            recent_blocks_window=min(window, max(net.height, 0)),   # the blocks that exist
            recent_blocks_found=len(ours),
        ),
    )


async def overview(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    params.known_params(request.query, set())
    figures, net = await asyncio.gather(ctx.state.figures(), ctx.state.network())
    window = ctx.config.recent_blocks_window
    recent = await ctx.state.blocks(
        BlockQuery(limit=window, min_height=max(0, net.height - window + 1), before_height=net.height + 1)
    )
    result = build_overview(ctx, figures, net, recent)
    if ctx.miners is not None:
        result.best_share = await ctx.miners.pool_best()
    return ok(result)


async def history(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    params.known_params(request.query, {"window"})
    window = params.duration(request.query, "window", "24h", ctx.config.max_history_seconds)
    return ok(await ctx.state.hashrate_history(window))


# --- workers and accounts --------------------------------------------------------------------


def list_query(ctx: ApiContext, request: web.Request, with_account: bool) -> ListQuery:
    allowed = {"search", "sort", "order", "limit", "offset"} | ({"account"} if with_account else set())
    q = request.query
    params.known_params(q, allowed)
    return ListQuery(
        search=params.text(q, "search"),
        account=params.text(q, "account") if with_account else "",
        sort=params.choice(q, "sort", "hashrate", ("hashrate", "name", "last_share")),  # type: ignore[arg-type]
        descending=params.choice(q, "order", "desc", ("asc", "desc")) == "desc",
        limit=params.integer(q, "limit", 50, 1, ctx.config.max_page_size),
        offset=params.integer(q, "offset", 0, 0, 10_000_000),
    )


async def workers(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    return ok(await ctx.state.workers(list_query(ctx, request, with_account=True)))


async def _detail(ctx: ApiContext, request: web.Request, kind: str) -> web.Response:
    """GET /workers/{worker} and /accounts/{account}: one entity with its hashrate history."""
    name = params.name_segment(request.match_info[kind], kind)
    params.known_params(request.query, {"history"})
    window = params.duration(request.query, "history", "24h", ctx.config.max_history_seconds)
    lookup = ctx.state.worker if kind == "worker" else ctx.state.account
    detail = await lookup(name, window)
    if detail is None:
        raise not_found(f"no {kind} named {name!r}")
    return ok(detail)


async def worker(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    return await _detail(ctx, request, "worker")


async def accounts(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    return ok(await ctx.state.accounts(list_query(ctx, request, with_account=False)))


async def account(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    return await _detail(ctx, request, "account")


async def blocks(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    q = request.query
    params.known_params(q, {"limit", "before"})
    query = BlockQuery(
        limit=params.integer(q, "limit", 20, 1, ctx.config.max_page_size),
        before_height=params.optional_integer(q, "before", 1, 100_000_000),
    )
    return ok(await ctx.state.blocks(query))


# --- regions ---------------------------------------------------------------------------------


def _absorb(into: RegionRate, row: RegionRate) -> None:
    """Add a row to an aggregate (a country, or an "Other"); its bounds are set from the summed shares."""
    into.hashrate += row.hashrate
    into.miners += row.miners
    into.shares += row.shares
    into.covered_seconds = max(into.covered_seconds, row.covered_seconds)


def _fold(rows: list[RegionRate], min_miners: int, level: str) -> tuple[list[RegionRate], int]:
    """Fold rows with fewer than min_miners into "Other": first within the country (subdivision
    level), then globally. Returns the kept rows and how many rows were folded."""
    kept: list[RegionRate] = []
    folded = 0
    per_country: dict[str, RegionRate] = {}
    global_other = RegionRate(country=OTHER[0], country_name=OTHER[1], subdivision="", hashrate=0.0, miners=0)
    for row in rows:
        if row.miners >= min_miners:
            kept.append(row)
            continue
        folded += 1
        if level == "subdivision" and row.country not in OTHER:
            bucket = per_country.setdefault(
                row.country,
                RegionRate(country=row.country, country_name=row.country_name, subdivision="Other",
                           hashrate=0.0, miners=0),
            )
        else:
            bucket = global_other
        _absorb(bucket, row)
    for bucket in per_country.values():
        if bucket.miners >= min_miners:
            kept.append(bucket)
        else:
            _absorb(global_other, bucket)
    if global_other.hashrate > 0 or global_other.miners > 0:
        kept.append(global_other)
    return kept, folded


def rollup_regions(view: RegionsView, level: str, min_miners: int | None) -> RegionsResponse:
    if level == "country":
        by_country: dict[str, RegionRate] = {}
        for row in view.items:
            agg = by_country.setdefault(
                row.country,
                RegionRate(country=row.country, country_name=row.country_name, subdivision="", hashrate=0.0,
                           miners=0),
            )
            _absorb(agg, row)
        for country, agg in by_country.items():
            agg.miners = view.country_miners.get(country, agg.miners)
        rows = list(by_country.values())
    else:
        rows = [msgspec.structs.replace(row) for row in view.items]
    folded = 0
    if min_miners is not None:
        rows, folded = _fold(rows, min_miners, level)
    total = sum(row.hashrate for row in rows)
    for row in rows:
        row.share = economics.share_of(row.hashrate, total)
        row.low, row.high = scaled_bounds(row.hashrate, row.shares)
        row.warming_up = row.shares < view.warming_up_shares
    # Largest first; the global "Other" bucket last, where readers expect it.
    rows.sort(key=lambda r: (r.country == OTHER[0], -r.hashrate, r.country, r.subdivision))
    return RegionsResponse(
        level=level,
        window_seconds=view.window_seconds,
        total_hashrate=total,
        database=view.database,
        database_build=view.database_build,
        attribution=view.attribution,
        database_age_days=view.database_age_days,
        max_database_age_days=view.max_database_age_days,
        database_stale=view.database_age_days is not None and view.database_age_days > view.max_database_age_days,
        folded_regions=folded,
        items=rows,
    )


async def regions(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    q = request.query
    params.known_params(q, {"level", "window"})
    level = params.choice(q, "level", "country", ("country", "subdivision"))
    window = params.duration(q, "window", "1h", ctx.config.max_history_seconds)
    view = await ctx.state.regions(window)
    return ok(rollup_regions(view, level, ctx.config.anonymous_region_min_miners if anonymous else None))


# --- exports ---------------------------------------------------------------------------------


async def export_kinds(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    params.known_params(request.query, set())
    return ok(ctx.exports.kinds())


async def export(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.StreamResponse:
    raw = request.match_info["kind"]
    name, implied = SHORTHANDS.get(raw, (raw, None))
    kinds = {kind.name: kind for kind in ctx.exports.kinds()}
    kind = kinds.get(name)
    if kind is None:
        raise not_found(f"no export named {raw[:60]!r}; see GET /api/v1/exports")
    q = request.query
    params.known_params(q, {"period", "start", "end", "format"})
    period = params.choice(q, "period", kind.periods[-1], kind.periods)
    fmt = params.choice(q, "format", implied or kind.formats[0], [implied] if implied else kind.formats)
    start = params.date(q, "start") if "start" in q else None
    end = params.date(q, "end") if "end" in q else None
    if (start is None) != (end is None):
        raise params.bad("end" if end is None else "start",
                         "give both start and end (inclusive), or neither for the current period to date")
    try:
        start, end, defaulted = resolve_range(period, start, end, dt.datetime.now(dt.UTC).date())
    except ValueError as exc:
        raise params.bad("end", str(exc)) from None
    if (end - start).days + 1 > ctx.config.export_max_days:
        raise params.bad("end", f"range longer than {ctx.config.export_max_days} days")
    payload, content_type = await ctx.exports.export(name, period, start.isoformat(), end.isoformat(), fmt)
    lo, hi = covered(period, start, end)
    filename = f"geostratum-{name}-{period}-{lo}-{hi}.{fmt}"
    return web.Response(
        body=payload,
        headers={"Content-Type": content_type, "Content-Disposition": f'attachment; filename="{filename}"',
                 "X-Geostratum-Range": describe(period, start, end, defaulted)},
    )


async def map_view(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    q = request.query
    params.known_params(q, {"period", "date"})
    period = params.choice(q, "period", MAP_PERIODS[-1], MAP_PERIODS)
    day = params.date(q, "date") if "date" in q else None
    return ok(await ctx.exports.map_view(period, day.isoformat() if day else None))


# --- health and metrics ----------------------------------------------------------------------


async def health(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    params.known_params(request.query, set())
    status = await ctx.state.health()
    return ok(status, 200 if status.ok else 503)


async def prometheus(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    params.known_params(request.query, set())
    snap = await ctx.metrics.snapshot()
    body = metrics.render(snap, admin_requests=dict(ctx.responses), rate_limited=ctx.limiter.limited)
    return web.Response(body=body.encode(), headers={"Content-Type": metrics.CONTENT_TYPE})
