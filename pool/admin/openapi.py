"""The OpenAPI 3.1 document, built from the route table and the msgspec Structs it names."""

from __future__ import annotations

from typing import Any

import msgspec

from pool.admin.auth import Scope
from pool.admin.interfaces import ExportKind
from pool.admin.responses import DashboardSettings, ErrorBody
from pool.admin.routes import ROUTES, Route
from pool.config.admin import AdminConfig

REF = "#/components/schemas/{name}"
ERROR_TEXT = {
    400: "Bad parameter or body; `reason` names it.",
    401: "No valid bearer token.",
    403: "The token's scope does not allow this.",
    404: "No such resource.",
    409: "The pool refused the action in its current state; `reason` says why.",
    413: "Body too large.",
    422: "The configuration was refused; `reason` names the key.",
    429: "Rate limited; see Retry-After.",
    500: "Internal error (details are only in the server log).",
    503: "Unhealthy.",
    504: "A pool component did not answer in time.",
}


def _error(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERROR_TEXT[status],
        "content": {"application/json": {"schema": {"$ref": REF.format(name="ErrorBody")}}},
    }
    if status == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
    return response


def _operation(route: Route, config: AdminConfig, schemas: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": route.parameters(config),
    }
    scopes = ["admin"] if route.scope is Scope.ADMIN else ["read"]
    op["security"] = [{"bearer": scopes}]
    if route.group and route.group in config.anonymous:
        op["security"].append({})
    if route.body is not None:
        op["requestBody"] = {
            "required": route.body_required,
            "content": {"application/json": {"schema": schemas[route.body]}},
        }
    if isinstance(route.response, str):
        content = {route.response: {"schema": {"type": "string"}}}
    elif isinstance(route.response, tuple):          # several media types (exports: CSV, JSON, SVG)
        content = {media: {"schema": {"type": "object" if media == "application/json" else "string"}}
                   for media in route.response}
    else:
        content = {"application/json": {"schema": schemas[route.response]}}
    responses: dict[str, Any] = {str(route.status): {"description": "Success.", "content": content}}
    # 404 and 409 are what a provider's Rejected may answer on any operation.
    statuses = {400, 401, 404, 409, 429, 500, 504, *route.extra_statuses}
    if route.scope is Scope.ADMIN:
        statuses.add(403)
    if route.body is not None:
        statuses.add(413)
    for status in sorted(statuses):
        if status == 503 and route.response is not None and not isinstance(route.response, (str, tuple)):
            responses["503"] = {"description": ERROR_TEXT[503], "content": content}
        else:
            responses[str(status)] = _error(status)
    op["responses"] = responses
    return op


def _union(lists: list[list[str]]) -> list[str]:
    return list(dict.fromkeys(item for items in lists for item in items))


def _narrow_exports(op: dict[str, Any], kinds: list[ExportKind]) -> None:
    """State exactly the export names, periods and formats the provider offers."""
    shorthands = [f"{k.name}-{f}" for k in kinds for f in k.formats if len(k.formats) > 1 or f != "csv"]
    enums = {"kind": [k.name for k in kinds] + shorthands, "period": _union([k.periods for k in kinds]),
             "format": _union([k.formats for k in kinds])}
    for param in op["parameters"]:
        if param["name"] in enums and enums[param["name"]]:
            param["schema"] = {"type": "string", "enum": enums[param["name"]]}


def build_document(config: AdminConfig, export_kinds: list[ExportKind] | None = None) -> dict[str, Any]:
    types: list[Any] = [ErrorBody, DashboardSettings]
    for route in ROUTES:
        for kind in (route.body, route.response):
            if kind is not None and not isinstance(kind, (str, tuple)) and kind not in types:
                types.append(kind)
    generated, components = msgspec.json.schema_components(types, ref_template=REF)
    schemas = dict(zip(types, generated, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, config, schemas)
    if export_kinds:
        _narrow_exports(paths["/api/v1/exports/{kind}"]["get"], export_kinds)
    paths["/api/v1/dashboard"] = {
        "get": {
            "operationId": "getDashboardSettings",
            "summary": "Settings the dashboard page needs before it has a token.",
            "tags": ["dashboard"],
            "security": [],
            "responses": {
                "200": {"description": "Success.",
                        "content": {"application/json": {"schema": schemas[DashboardSettings]}}},
                "429": _error(429),
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Geostratum admin API",
            "version": "1",
            "description": (
                "Operator API of a Geostratum mining pool. Send `Authorization: Bearer <token>`; read tokens "
                "reach the GET endpoints, admin tokens everything. Hashrates are hashes per second, times "
                "unix seconds, amounts satoshis unless a field says BTC or USD."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
