"""Control endpoints: bans, kick/reconnect, per-port difficulty, config reload, BTC price."""

from __future__ import annotations

import msgspec
from aiohttp import web

from pool.admin import params
from pool.admin.context import ApiContext
from pool.admin.interfaces import BanRequest, PortDifficultyUpdate, ReconnectRequest
from pool.admin.params import ApiError
from pool.admin.responses import ActionResult, KickRequest, PriceState, PriceUpdate, Removed
from pool.admin.routes_read import not_found, ok


async def bans(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    params.known_params(request.query, set())
    return ok(await ctx.control.bans())


async def add_ban(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    params.known_params(request.query, set())
    ban = params.body(await request.read(), BanRequest)
    target = params.ban_target(ban.target)
    entry = await ctx.control.add_ban(BanRequest(target=target, duration_seconds=ban.duration_seconds,
                                                 reason=ban.reason))
    return ok(entry, 201)


async def remove_ban(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    params.known_params(request.query, {"target"})
    raw = request.query.get("target")
    if raw is None:
        raise params.bad("target", "is required (an IP address or CIDR network)")
    target = params.ban_target(raw)
    if not await ctx.control.remove_ban(target):
        raise not_found(f"no ban on {target}")
    return ok(Removed(target=target, removed=True))


async def kick(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    params.known_params(request.query, set())
    name = params.name_segment(request.match_info["worker"], "worker")
    body = params.body(await request.read(), KickRequest, required=False)
    closed = await ctx.control.kick(name, body.reason)
    if closed == 0:
        raise not_found(f"worker {name!r} is not connected")
    return ok(ActionResult(worker=name, connections=closed))


async def reconnect(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    params.known_params(request.query, set())
    name = params.name_segment(request.match_info["worker"], "worker")
    body = params.body(await request.read(), ReconnectRequest, required=False)
    asked = await ctx.control.reconnect(name, body)
    if asked == 0:
        raise not_found(f"worker {name!r} is not connected")
    return ok(ActionResult(worker=name, connections=asked))


async def ports(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    params.known_params(request.query, set())
    return ok(await ctx.control.port_difficulties())


async def set_port_difficulty(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    params.known_params(request.query, set())
    port = params.port_number(request.match_info["port"])
    update = params.body(await request.read(), PortDifficultyUpdate)
    given = {key: value for key, value in msgspec.structs.asdict(update).items() if value is not msgspec.UNSET}
    if not given:
        raise ApiError(400, "bad_body", "give at least one of start_difficulty, min_difficulty, max_difficulty")
    current = {p.port: p for p in await ctx.control.port_difficulties()}.get(port)
    if current is None:
        raise not_found(f"no stratum port {port}")
    low = given.get("min_difficulty", current.min_difficulty)
    high = given.get("max_difficulty", current.max_difficulty)
    start = given.get("start_difficulty", current.start_difficulty)
    if not low <= start <= high:
        raise params.bad("start_difficulty", f"must satisfy min <= start <= max, got {low} <= {start} <= {high}")
    result = await ctx.control.set_port_difficulty(port, update)
    if result is None:
        raise not_found(f"no stratum port {port}")
    return ok(result)


async def reload_config(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    params.known_params(request.query, set())
    result = await ctx.control.reload_config()
    if not result.ok:
        raise ApiError(422, "config_invalid", result.error or "the configuration was refused")
    return ok(result)


def _price_state(ctx: ApiContext) -> PriceState:
    price, source, at = ctx.price.current()
    return PriceState(btc_usd_price=price, price_source=source, price_updated_at=at)


async def get_price(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    params.known_params(request.query, set())
    return ok(_price_state(ctx))


async def set_price(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    params.known_params(request.query, set())
    update = params.body(await request.read(), PriceUpdate)
    ctx.price.fed = update.btc_usd
    ctx.price.fed_at = ctx.clock()
    return ok(_price_state(ctx))
