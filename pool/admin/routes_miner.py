"""A miner's own page: /miner/<account> (HTML) and GET /api/v1/accounts/{account} (its JSON).

Both are in the "miner" anonymous group: with admin.anonymous holding "miner" anyone who knows an
account (a payout address, as on public-pool and solo pools) may read it; otherwise a read token is
needed. The JSON never carries an IP address: workers show their own region only.
"""

from __future__ import annotations

import asyncio
import re
from importlib import resources
from urllib.parse import quote

from aiohttp import web

from pool.admin import params
from pool.admin.context import ApiContext
from pool.admin.miner_types import MinerAccount, MinerExtras, MinerWorker
from pool.admin.routes_read import not_found, ok

HOST = re.compile(r"^[A-Za-z0-9.\-]{1,253}$|^\[?[0-9A-Fa-f:.]{2,45}\]?$")
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGES = {name: resources.files("pool.admin").joinpath("static", name).read_bytes()
          for name in ("miner.html", "miner-404.html")}


def request_host(request: web.Request) -> str:
    host = request.url.host or ""
    return host if HOST.match(host) else "POOL_HOST"


async def account(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    name = params.name_segment(request.match_info["account"], "account")
    params.known_params(request.query, {"history"})
    window = params.duration(request.query, "history", "24h", ctx.config.max_history_seconds)
    detail = await ctx.state.account(name, window)
    if detail is None:
        raise not_found(f"no account named {name!r}")
    charted = sorted(detail.workers, key=lambda w: w.name)[:ctx.config.miner_page_worker_charts]
    found = await asyncio.gather(*(ctx.state.worker(w.name, window) for w in charted))
    workers = {}
    for one in found:
        if one is None:
            continue
        since = min((c.connected_at for c in one.connections), default=None)
        workers[one.summary.name] = MinerWorker(
            history=one.history, rejected_by_reason=one.rejected_by_reason, connected_since=since,
            ports=sorted({c.port for c in one.connections}))
    extras = (await ctx.miners.extras(name, detail, request_host(request))
              if ctx.miners is not None else MinerExtras())
    extras.workers = workers
    fields = {f: getattr(detail, f) for f in detail.__struct_fields__}
    return ok(MinerAccount(**fields, miner=extras))


async def page(ctx: ApiContext, request: web.Request, anonymous: bool) -> web.Response:
    """The page itself; when pages are public an unknown account is a 404 page (with a token the
    page asks the API, which says 404 the same way)."""
    name = request.match_info["account"]
    status = 200
    try:
        name = params.name_segment(name, "account")
    except params.ApiError:
        status = 404
    if status == 200 and "." in name.strip("."):
        # A miner's user name (ACCOUNT.WORKER): its account is the part before the first dot.
        return web.Response(status=302, headers={"Location": "/miner/" + quote(name.split(".", 1)[0], safe=""),
                                                 "Cache-Control": "no-cache"})
    if status == 200 and "miner" in ctx.config.anonymous and await ctx.state.account(name, 3600) is None:
        status = 404
    body = _PAGES["miner.html" if status == 200 else "miner-404.html"]
    return web.Response(body=body, status=status, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"})
