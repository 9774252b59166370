"""The route table: one entry per endpoint with its scope, anonymous group, parameters and types.

Both the aiohttp router and the OpenAPI document are built from this table, so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from aiohttp import web
from msgspec import Meta

from pool.admin import interfaces as i
from pool.admin import params
from pool.admin import responses as r
from pool.admin import routes_control as control
from pool.admin import routes_miner as miner
from pool.admin import routes_read as read
from pool.admin.auth import Scope
from pool.admin.context import ApiContext
from pool.admin.miner_types import MinerAccount
from pool.config.admin import AdminConfig
from pool.geo.mapview import MapView
from pool.geo.periods import PERIODS

Handler = Callable[[ApiContext, web.Request, bool], Awaitable[web.StreamResponse]]
NO_CONTROL = r"^[^\u0000-\u001f\u007f]*$"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    scope: Scope
    operation_id: str
    summary: str
    tag: str
    group: str = ""                     # anonymous group that may read it without a token
    parameters: Callable[[AdminConfig], list[dict[str, Any]]] = lambda _: []
    body: Any = None                    # a Struct type (possibly Annotated) for a JSON body
    body_required: bool = True
    response: Any = None                # a type for application/json, or a media type string
    status: int = 200
    extra_statuses: tuple[int, ...] = ()
    headers: dict[str, Any] = field(default_factory=dict)


def q(name: str, schema: dict[str, Any], description: str, *, required: bool = False,
      where: str = "query") -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema,
            "description": description}


def _windows(config: AdminConfig, name: str, default: str, description: str) -> dict[str, Any]:
    return q(name, {"type": "string", "enum": params.window_names(config.max_history_seconds),
                    "default": default}, description)


def _list_params(with_account: bool) -> Callable[[AdminConfig], list[dict[str, Any]]]:
    def build(config: AdminConfig) -> list[dict[str, Any]]:
        text = {"type": "string", "maxLength": params.MAX_TEXT, "pattern": NO_CONTROL}
        out = [q("search", text, "Case-insensitive substring of the name.")]
        if with_account:
            out.append(q("account", text, "Only the workers of this account."))
        out += [
            q("sort", {"type": "string", "enum": ["hashrate", "name", "last_share"], "default": "hashrate"},
              "Sort key."),
            q("order", {"type": "string", "enum": ["asc", "desc"], "default": "desc"}, "Sort order."),
            q("limit", {"type": "integer", "minimum": 1, "maximum": config.max_page_size, "default": 50},
              "Page size."),
            q("offset", {"type": "integer", "minimum": 0, "maximum": 10_000_000, "default": 0}, "Items to skip."),
        ]
        return out
    return build


NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": params.MAX_TEXT,
               "pattern": r"^[^\u0000-\u001f\u007f/?#%]+$", "not": {"enum": [".", ".."]}}


def _detail_params(what: str) -> Callable[[AdminConfig], list[dict[str, Any]]]:
    def build(config: AdminConfig) -> list[dict[str, Any]]:
        return [q(what, NAME_SCHEMA, f"The {what} name.", where="path"),
                _windows(config, "history", "24h", "Hashrate history window.")]
    return build


def _worker_path(_: AdminConfig) -> list[dict[str, Any]]:
    return [q("worker", NAME_SCHEMA, "Full worker name (account.worker).", where="path")]


def _export_params(_: AdminConfig) -> list[dict[str, Any]]:
    date = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
    return [
        q("kind", {"type": "string", "minLength": 1, "maxLength": 60, "pattern": r"^[a-z0-9-]+$"},
          "Export name from GET /api/v1/exports (the same names as `geostratum export --layout`), or "
          "NAME-FORMAT such as regions-json.", where="path"),
        q("period", {"type": "string", "enum": list(PERIODS), "default": "monthly"},
          "Aggregation period (each export lists the ones it offers)."),
        q("start", date, "First day (inclusive); with end. Default: the first day of the current period."),
        q("end", date, "Last day (inclusive, may equal start); with start. Default: today (UTC). Every whole "
          "period the range touches is exported; the X-Geostratum-Range header states what was covered."),
        q("format", {"type": "string", "enum": ["csv", "json", "svg"]},
          "File format (each export lists the ones it offers); default: its first."),
    ]


def _no_params(_: AdminConfig) -> list[dict[str, Any]]:
    return []


ADMIN_ERRORS = (403,)
ROUTES: list[Route] = [
    Route("GET", "/api/v1/overview", read.overview, Scope.READ, "getOverview",
          "Pool, shares, network, next difficulty adjustment, hashprice and pool share.", "pool",
          group="dashboard", response=r.PoolOverview),
    Route("GET", "/api/v1/history", read.history, Scope.READ, "getHashrateHistory",
          "Pool hashrate over time.", "pool", group="dashboard",
          parameters=lambda c: [_windows(c, "window", "24h", "History window.")], response=i.HashrateHistory),
    Route("GET", "/api/v1/workers", read.workers, Scope.READ, "listWorkers", "List and search workers.",
          "workers", parameters=_list_params(True), response=i.WorkerPage),
    Route("GET", "/api/v1/workers/{worker}", read.worker, Scope.READ, "getWorker",
          "One worker: connections, rejects and hashrate history.", "workers",
          parameters=_detail_params("worker"), response=i.WorkerDetail, extra_statuses=(404,)),
    Route("POST", "/api/v1/workers/{worker}/kick", control.kick, Scope.ADMIN, "kickWorker",
          "Close every connection of a worker.", "control", parameters=_worker_path, body=r.KickRequest,
          body_required=False, response=r.ActionResult, extra_statuses=(404,)),
    Route("POST", "/api/v1/workers/{worker}/reconnect", control.reconnect, Scope.ADMIN, "reconnectWorker",
          "Ask every connection of a worker to reconnect (client.reconnect).", "control",
          parameters=_worker_path, body=i.ReconnectRequest, body_required=False, response=r.ActionResult,
          extra_statuses=(404,)),
    Route("GET", "/api/v1/accounts", read.accounts, Scope.READ, "listAccounts", "List and search accounts.",
          "workers", parameters=_list_params(False), response=i.AccountPage),
    Route("GET", "/api/v1/accounts/{account}", miner.account, Scope.READ, "getAccount",
          "One account (the miner page's JSON): workers, hashrate history, best shares, earnings, payouts.",
          "workers", group="miner", parameters=_detail_params("account"), response=MinerAccount,
          extra_statuses=(404,)),
    Route("GET", "/api/v1/blocks", read.blocks, Scope.READ, "listBlocks", "Blocks found by the pool, newest first.",
          "pool", group="dashboard",
          parameters=lambda c: [
              q("limit", {"type": "integer", "minimum": 1, "maximum": c.max_page_size, "default": 20}, "Page size."),
              q("before", {"type": "integer", "minimum": 1, "maximum": 100_000_000}, "Only heights below this."),
          ], response=list[i.BlockInfo]),
    Route("GET", "/api/v1/regions", read.regions, Scope.READ, "getRegions",
          "Live hashrate by country or subdivision (anonymous view folds small regions).", "pool",
          group="dashboard",
          parameters=lambda c: [
              q("level", {"type": "string", "enum": ["country", "subdivision"], "default": "country"}, "Level."),
              _windows(c, "window", "1h", "Averaging window."),
          ], response=r.RegionsResponse),
    Route("GET", "/api/v1/exports", read.export_kinds, Scope.READ, "listExports", "Research exports on offer.",
          "exports", response=list[i.ExportKind]),
    Route("GET", "/api/v1/exports/{kind}", read.export, Scope.READ, "downloadExport",
          "Download a research export (CSV, JSON or SVG).", "exports", parameters=_export_params,
          response=("text/csv", "application/json", "image/svg+xml"), extra_statuses=(404,)),
    Route("GET", "/api/v1/map", read.map_view, Scope.READ, "getMap",
          "Hashrate share by country and subdivision for one period, privacy rule applied, with coverage "
          "and the periods that hold data (the map page's data).", "exports", group="dashboard",
          parameters=lambda c: [
              q("period", {"type": "string", "enum": list(read.MAP_PERIODS), "default": "monthly"}, "Period."),
              q("date", {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
                "Any day of the period (default: today, UTC: the current period to date)."),
          ], response=MapView),
    Route("GET", "/api/v1/bans", control.bans, Scope.READ, "listBans", "Active bans.", "control",
          response=list[i.BanEntry]),
    Route("POST", "/api/v1/bans", control.add_ban, Scope.ADMIN, "addBan", "Ban an address or network.",
          "control", body=i.BanRequest, response=i.BanEntry, status=201),
    Route("DELETE", "/api/v1/bans", control.remove_ban, Scope.ADMIN, "removeBan", "Lift a ban.", "control",
          parameters=lambda c: [q("target", {"type": "string", "maxLength": 50, "pattern": i.BAN_TARGET_PATTERN},
                                  "Address or network.", required=True)],
          response=r.Removed, extra_statuses=(404,)),
    Route("GET", "/api/v1/ports", control.ports, Scope.READ, "listPorts", "Per-port difficulty settings.",
          "control", response=list[i.PortDifficulty]),
    Route("PUT", "/api/v1/ports/{port}/difficulty", control.set_port_difficulty, Scope.ADMIN,
          "setPortDifficulty", "Change a port's start/min/max difficulty for new connections.", "control",
          parameters=lambda c: [q("port", {"type": "integer", "minimum": 1, "maximum": 65535}, "Stratum port.",
                                  where="path")],
          body=Annotated[i.PortDifficultyUpdate, Meta(extra_json_schema={"minProperties": 1})],
          response=i.PortDifficulty, extra_statuses=(404,)),
    Route("POST", "/api/v1/reload", control.reload_config, Scope.ADMIN, "reloadConfig",
          "Re-read the configuration file and apply what can change without dropping miners.", "control",
          response=i.ReloadResult, extra_statuses=(422,)),
    Route("GET", "/api/v1/price", control.get_price, Scope.READ, "getPrice", "BTC/USD price in use.", "pool",
          response=r.PriceState),
    Route("PUT", "/api/v1/price", control.set_price, Scope.ADMIN, "setPrice", "Feed the BTC/USD price.", "pool",
          body=r.PriceUpdate, response=r.PriceState),
    Route("GET", "/api/v1/health", read.health, Scope.READ, "getHealth",
          "Component health: 200 when healthy, 503 when not.", "pool", group="health",
          response=i.HealthStatus, extra_statuses=(503,)),
    Route("GET", "/metrics", read.prometheus, Scope.READ, "getMetrics", "Prometheus metrics (text format).",
          "metrics", group="metrics", response="text/plain"),
]
