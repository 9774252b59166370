"""The admin HTTP server: aiohttp on the pool's own event loop, on its own port.

Every request goes through one middleware that rate-limits, resolves the bearer token, turns
every failure into a JSON error with a reason (never a traceback) and counts responses.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources

import msgspec
from aiohttp import web

from pool.admin.assets import AssetMissing, VendorAssets
from pool.admin.auth import Scope, TokenBook, bearer_token
from pool.admin.context import ApiContext, PriceFeed
from pool.admin.http_safety import SafeAppRunner, install_log_redaction
from pool.admin.interfaces import ExportProvider, MetricsSource, PoolControl, PoolState, Rejected
from pool.admin.miner_types import MinerSource
from pool.admin.openapi import build_document
from pool.admin.params import ApiError, known_params
from pool.admin.ratelimit import RateLimiter
from pool.admin.responses import DashboardSettings, ErrorBody
from pool.admin.routes import ROUTES, Route
from pool.admin.routes_miner import page as miner_page
from pool.config.admin import AdminConfig
from pool.config.changes import ReloadPlan, section_changes, split_restart
from pool.json_depth import deeper_than

log = logging.getLogger("geostratum.admin")

SCOPE = web.RequestKey("geostratum.scope", Scope)
STATIC_FILES = {"common.js": "text/javascript", "dashboard.js": "text/javascript", "dashboard.css": "text/css",
                "miner.js": "text/javascript", "map.js": "text/javascript", "map.css": "text/css"}
PAGES = {"/": "index.html", "/dashboard": "index.html", "/map": "map.html"}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
REJECTED_STATUSES = (400, 404, 409)  # what the OpenAPI document promises a provider refusal can be
HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


def _error_response(status: int, error: str, reason: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=msgspec.json.encode(ErrorBody(status=status, error=error, reason=reason)),
        content_type="application/json",
        headers=dict(headers or {}),
    )


ADMIN_RESTART_FIELDS = ("enabled", "host", "port")     # the listening socket is bound once


class AdminReload(ReloadPlan, frozen=True, kw_only=True):
    config: AdminConfig             # the [admin] in force after the reload (enabled, host and port kept)
    tokens: TokenBook               # built from config and the environment


class AdminServer:
    """Serves the admin API, /metrics and the dashboard on config.host:config.port.

    Construct it on the running loop's thread; `start()` binds, `stop()` closes the listener and
    waits up to config.shutdown_timeout_seconds for requests in flight.
    """

    def __init__(
        self,
        config: AdminConfig,
        state: PoolState,
        control: PoolControl,
        exports: ExportProvider,
        metrics: MetricsSource,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        miners: MinerSource | None = None,
    ) -> None:
        self._environ = environ
        self._tokens = TokenBook(config, environ)
        limiter = RateLimiter(config.rate_limit_per_second, config.rate_limit_burst, config.rate_limit_max_clients)
        self.ctx = ApiContext(
            config=config, state=state, control=control, exports=exports, metrics=metrics,
            price=PriceFeed(configured=config.btc_usd_price), limiter=limiter, clock=clock, miners=miners,
        )
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._static = {name: resources.files("pool.admin").joinpath("static", name).read_bytes()
                        for name in [*STATIC_FILES, *set(PAGES.values())]}
        self._vendor = VendorAssets(config.assets_dir)
        self.app = self._build_app()
        if not len(self._tokens) and not config.anonymous:
            log.warning("admin API has no tokens configured: every data endpoint answers 401")

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        install_log_redaction()
        self._runner = SafeAppRunner(self.app, handle_signals=False, access_log=log,
                                     shutdown_timeout=self.ctx.config.shutdown_timeout_seconds)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.ctx.config.host, self.ctx.config.port, reuse_address=True)
        await self._site.start()
        log.info("admin API listening on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    @property
    def port(self) -> int:
        """The bound port (useful with port = 0)."""
        if self._runner is None or not self._runner.addresses:
            raise RuntimeError("admin server is not running")
        return int(self._runner.addresses[0][1])

    @property
    def url(self) -> str:
        host = self.ctx.config.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    def plan_reload(self, new: AdminConfig) -> AdminReload:
        """This server's part of a config reload: every key of [admin] but enabled, host and port (which
        need a restart) checked and its token book built, nothing changed yet (ConfigError names the key)."""
        running = self.ctx.config
        applied, restart = split_restart(section_changes(running, new, "admin"), ADMIN_RESTART_FIELDS)
        config = msgspec.structs.replace(new, **{f: getattr(running, f) for f in ADMIN_RESTART_FIELDS})
        return AdminReload(applied=applied, requires_restart=restart, config=config,
                           tokens=TokenBook(config, self._environ))

    def apply_reload(self, plan: AdminReload) -> None:
        """Put a plan from plan_reload in force (cannot fail)."""
        if plan.applied:
            self._take(plan.config, plan.tokens)

    def apply_config(self, config: AdminConfig) -> None:
        """Take a reloaded [admin] section: tokens, anonymous groups, limits and price apply at once;
        host and port need a restart."""
        self._take(config, TokenBook(config, self._environ))

    def _take(self, config: AdminConfig, tokens: TokenBook) -> None:
        self._tokens = tokens
        self.ctx.config = config
        self.ctx.price.configured = config.btc_usd_price
        limiter = self.ctx.limiter
        limiter.rate, limiter.burst, limiter.max_clients = (
            config.rate_limit_per_second, config.rate_limit_burst, config.rate_limit_max_clients,
        )

    def set_btc_price(self, usd: float) -> None:
        """Feed the BTC/USD price from code (e.g. a price task in app.py)."""
        if not (math.isfinite(usd) and usd > 0):
            raise ValueError("price must be a positive number")
        self.ctx.price.fed, self.ctx.price.fed_at = usd, self.ctx.clock()

    # -- app ------------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=self.ctx.config.max_body_bytes)
        for route in ROUTES:
            app.router.add_route(route.method, route.path, self._guard(route))
        app.router.add_get("/openapi.json", self._openapi)
        app.router.add_get("/api/v1/dashboard", self._dashboard_settings)
        for path in PAGES:
            app.router.add_get(path, self._page)
        app.router.add_get("/miner/{account}", self._miner_page)
        app.router.add_get("/static/{name}", self._static_file)
        app.router.add_get("/vendor/{name}", self._vendor_file)
        return app

    def _guard(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            scope: Scope = request[SCOPE]
            anonymous = False
            if scope < route.scope:
                presented = request.headers.get("Authorization") is not None
                if not presented and route.group and route.group in self.ctx.config.anonymous:
                    anonymous = True
                elif scope is Scope.NONE:
                    reason = "the bearer token is not valid" if presented else "a bearer token is required"
                    raise ApiError(401, "unauthorized", reason, {"WWW-Authenticate": 'Bearer realm="geostratum"'})
                else:
                    raise ApiError(403, "forbidden", "this endpoint needs an admin token")
            if request.body_exists:
                await self._check_body(request)
            async with asyncio.timeout(self.ctx.config.request_timeout_seconds):
                return await route.handler(self.ctx, request, anonymous)

        return handle

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        token = bearer_token(request.headers.get("Authorization"))
        scope, client = self._tokens.lookup(token) if token else (Scope.NONE, "")
        request[SCOPE] = scope
        response: web.StreamResponse
        wait = self.ctx.limiter.check(client or f"addr:{request.remote}")
        try:
            if wait > 0:
                raise ApiError(429, "rate_limited", "too many requests; slow down",
                               {"Retry-After": str(max(1, math.ceil(wait)))})
            response = await handler(request)
        except ApiError as exc:
            response = _error_response(exc.status, exc.error, exc.reason, exc.headers)
        except Rejected as exc:
            status = exc.status if exc.status in REJECTED_STATUSES else 409
            response = _error_response(status, "rejected", exc.reason)
        except web.HTTPException as exc:
            # Router and body-size errors keep their status and headers (e.g. Allow on 405).
            headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
            code = HTTP_ERROR_CODES.get(exc.status, "http_error")
            response = _error_response(exc.status, code, exc.reason, headers)
        except TimeoutError:
            response = _error_response(504, "timeout", "a pool component did not answer in time")
        except Exception:
            log.exception("admin request %s %s failed", request.method, request.path)
            response = _error_response(500, "internal", "internal error; see the pool log")
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if request.path.startswith("/api/") or request.path == "/metrics":
            response.headers.setdefault("Cache-Control", "no-store")
        self.ctx.responses[response.status] = self.ctx.responses.get(response.status, 0) + 1
        return response

    async def _check_body(self, request: web.Request) -> None:
        """Refuse deep nesting before any handler decodes the body: msgspec stops near 1,000 levels
        with a RecursionError, and the converters after it recurse in Python. The body read here is
        cached for the handler (and a body over max_body_bytes raises 413 here)."""
        depth = self.ctx.config.max_json_depth
        if deeper_than(await request.read(), depth):
            raise ApiError(400, "bad_body", f"body is nested deeper than {depth} levels (admin.max_json_depth)")

    # -- public, token-free resources -----------------------------------------------------------

    async def _openapi(self, request: web.Request) -> web.Response:
        known_params(request.query, set())
        document = build_document(self.ctx.config, self.ctx.exports.kinds())
        return web.Response(body=msgspec.json.encode(document),
                            content_type="application/json")

    async def _dashboard_settings(self, request: web.Request) -> web.Response:
        known_params(request.query, set())
        settings = DashboardSettings(refresh_seconds=self.ctx.config.dashboard_refresh_seconds,
                                     anonymous="dashboard" in self.ctx.config.anonymous)
        return web.Response(body=msgspec.json.encode(settings), content_type="application/json")

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(body=self._static[PAGES[request.path]], content_type="text/html", charset="utf-8",
                            headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"})

    async def _miner_page(self, request: web.Request) -> web.Response:
        return await miner_page(self.ctx, request, False)

    async def _static_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise ApiError(404, "not_found", "no such file")
        return web.Response(body=self._static[name], headers={"Content-Type": STATIC_FILES[name],
                                                              "Cache-Control": "no-cache"})

    async def _vendor_file(self, request: web.Request) -> web.Response:
        """npm packages' files (installed by scripts/setup.sh), e.g. the map geometry."""
        try:
            # The first read parses and annotates a large JSON file: off the event loop.
            body, content_type = await asyncio.to_thread(self._vendor.get, request.match_info["name"])
        except KeyError:
            raise ApiError(404, "not_found", "no such file") from None
        except (AssetMissing, ValueError) as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        return web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": "max-age=3600"})
