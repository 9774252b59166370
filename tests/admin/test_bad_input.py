"""Bad parameters and bodies: 400 (or 413) with a reason that names what is wrong, nothing changed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.admin.conftest import ADMIN, Running

CASES: list[tuple[str, str, Any, int, str]] = [
    ("GET", "/api/v1/workers?limit=0", None, 400, "limit: must be 1..500, got 0"),
    ("GET", "/api/v1/workers?limit=abc", None, 400, "limit: must be an integer, got 'abc'"),
    ("GET", "/api/v1/workers?limit=501", None, 400, "limit: must be 1..500, got 501"),
    ("GET", "/api/v1/workers?offset=-1", None, 400, "offset: must be 0..10000000, got -1"),
    ("GET", "/api/v1/workers?sort=power", None, 400, "sort: must be one of hashrate, name, last_share, got 'power'"),
    ("GET", "/api/v1/workers?order=up", None, 400, "order: must be one of asc, desc, got 'up'"),
    ("GET", "/api/v1/workers?search=" + "x" * 201, None, 400, "search: longer than 200 characters"),
    ("GET", "/api/v1/workers?search=a%00b", None, 400, "search: contains control characters"),
    ("GET", "/api/v1/workers?colour=red", None, 400,
     "colour: unknown parameter; expected one of account, limit, offset, order, search, sort"),
    ("GET", "/api/v1/accounts?account=x", None, 400,
     "account: unknown parameter; expected one of limit, offset, order, search, sort"),
    ("GET", "/api/v1/overview?verbose=1", None, 400, "verbose: unknown parameter"),
    ("GET", "/api/v1/dashboard?refresh=1", None, 400, "refresh: unknown parameter"),
    ("GET", "/openapi.json?v=3", None, 400, "v: unknown parameter"),
    ("GET", "/api/v1/history?window=90m", None, 400, "window: must be one of 5m, 15m, 1h, 6h, 24h, 7d, got '90m'"),
    ("GET", "/api/v1/workers/alice.rig1?history=2d", None, 400,
     "history: must be one of 5m, 15m, 1h, 6h, 24h, 7d, got '2d'"),
    ("GET", "/api/v1/regions?level=city", None, 400, "level: must be one of country, subdivision, got 'city'"),
    ("GET", "/api/v1/blocks?before=0", None, 400, "before: must be 1..100000000, got 0"),
    ("GET", "/api/v1/exports/regions?start=2024-01-01", None, 400,
     "end: give both start and end (inclusive), or neither for the current period to date"),
    ("GET", "/api/v1/exports/regions?start=2024-13-01&end=2024-12-01", None, 400,
     "start: must be a date YYYY-MM-DD, got '2024-13-01'"),
    ("GET", "/api/v1/exports/regions?start=2024-02-01&end=2024-01-01", None, 400,
     "end: end 2024-01-01 is before start 2024-02-01 (the range is inclusive: end may equal start)"),
    ("GET", "/api/v1/exports/regions-json?start=2024-01-01&end=2024-01-01&format=csv", None, 400,
     "format: must be one of json, got 'csv'"),
    ("GET", "/api/v1/exports/regions?start=2020-01-01&end=2024-01-01", None, 400,
     "end: range longer than 1100 days"),
    ("GET", "/api/v1/exports/regions?start=2024-01-01&end=2024-02-01&format=xml", None, 400,
     "format: must be one of csv, json, got 'xml'"),
    ("GET", "/api/v1/exports/ccaf-countries?start=2024-01-01&end=2024-02-01&period=daily", None, 400,
     "period: must be one of monthly, got 'daily'"),
    ("GET", "/api/v1/exports/nope?start=2024-01-01&end=2024-02-01", None, 404,
     "no export named 'nope'; see GET /api/v1/exports"),
    ("POST", "/api/v1/bans", {"target": "300.1.1.1"}, 400, "invalid body: Expected `str` matching regex"),
    ("POST", "/api/v1/bans", {"target": "10.0.0.1; DROP"}, 400, "invalid body: Expected `str` matching regex"),
    ("POST", "/api/v1/bans", {"target": "::::/64"}, 400, "invalid body: Expected `str` matching regex"),
    ("POST", "/api/v1/bans", {"target": "10.0.0.1", "duration_seconds": 0}, 400,
     "invalid body: Expected `int` >= 1 - at `$.duration_seconds`"),
    ("POST", "/api/v1/bans", {"target": "10.0.0.1", "colour": "red"}, 400,
     "invalid body: Object contains unknown field `colour`"),
    ("POST", "/api/v1/bans", None, 400, "a JSON body is required"),
    ("POST", "/api/v1/bans", b"{not json", 400, "body is not valid JSON"),
    ("DELETE", "/api/v1/bans", None, 400, "target: is required (an IP address or CIDR network)"),
    ("DELETE", "/api/v1/bans?target=banana", None, 400, "target: must be an IP address or CIDR network, got 'banana'"),
    ("POST", "/api/v1/workers/alice.rig1/reconnect", {"port": 70000}, 400,
     "invalid body: Expected `int` <= 65535 - at `$.port`"),
    ("POST", "/api/v1/workers/alice.rig1/reconnect", {"host": "evil host"}, 400,
     "invalid body: Expected `str` matching regex"),
    ("PUT", "/api/v1/ports/3333/difficulty", {}, 400,
     "give at least one of start_difficulty, min_difficulty, max_difficulty"),
    ("PUT", "/api/v1/ports/3333/difficulty", {"start_difficulty": -5}, 400,
     "invalid body: Expected `float` > 0.0 - at `$.start_difficulty`"),
    ("PUT", "/api/v1/ports/3333/difficulty", {"start_difficulty": None}, 400,
     "invalid body: Expected `float`, got `null` - at `$.start_difficulty`"),
    ("PUT", "/api/v1/ports/3333/difficulty", {"min_difficulty": 100000}, 400,
     "start_difficulty: must satisfy min <= start <= max, got 100000.0 <= 16384 <= 1000000000000.0"),
    ("PUT", "/api/v1/ports/99999/difficulty", {"start_difficulty": 5}, 400, "port: must be 1..65535, got '99999'"),
    ("PUT", "/api/v1/ports/abc/difficulty", {"start_difficulty": 5}, 400, "port: must be 1..65535, got 'abc'"),
    ("PUT", "/api/v1/price", {"btc_usd": 0}, 400, "invalid body: Expected `float` > 0.0 - at `$.btc_usd`"),
    ("PUT", "/api/v1/price", {"btc_usd": "lots"}, 400, "invalid body: Expected `float`, got `str` - at `$.btc_usd`"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "reason"), CASES,
                         ids=[f"{c[0]} {c[1][:60]}" for c in CASES])
async def test_bad_input(admin: Running, method: str, path: str, body: Any, status: int, reason: str) -> None:
    before = (dict(admin.data.bans_by_target), dict(admin.data.ports), list(admin.data.reconnected))
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
    async with admin.request(method, path, headers=ADMIN, **kwargs) as response:
        assert response.status == status
        assert response.content_type == "application/json"
        payload = await response.json()
    assert payload["status"] == status
    assert payload["reason"].startswith(reason), payload["reason"]
    assert "Traceback" not in payload["reason"]
    assert (dict(admin.data.bans_by_target), dict(admin.data.ports), list(admin.data.reconnected)) == before


async def test_body_too_large_is_413(admin: Running) -> None:
    big = {"target": "10.0.0.1", "reason": "x" * 70_000}
    async with admin.request("POST", "/api/v1/bans", json=big, headers=ADMIN) as response:
        assert response.status == 413
        payload = await response.json()
    assert payload["error"] == "body_too_large" and admin.data.bans_by_target == {}


async def test_unknown_route_and_method(admin: Running) -> None:
    async with admin.request("GET", "/api/v1/nothing", headers=ADMIN) as response:
        assert response.status == 404 and (await response.json())["error"] == "not_found"
    async with admin.request("PATCH", "/api/v1/bans", headers=ADMIN) as response:
        assert response.status == 405
        assert set(response.headers["Allow"].split(",")) == {"GET", "POST", "DELETE"}


@pytest.mark.parametrize("depth", [33, 200, 1_000, 5_000])
async def test_deeply_nested_body_is_400_naming_the_limit(admin: Running, depth: int) -> None:
    # ~1,000 levels used to escape as a RecursionError and a 500 (issue 15, defect 3).
    nested = b"[" * depth + b"]" * depth
    for body in (nested, b'{"target": "10.0.0.1", "reason": ' + nested + b"}"):
        async with admin.request("POST", "/api/v1/bans", data=body, headers={
                **ADMIN, "Content-Type": "application/json"}) as response:
            assert response.status == 400
            payload = await response.json()
        assert payload["error"] == "bad_body"
        assert payload["reason"] == "body is nested deeper than 32 levels (admin.max_json_depth)"
    assert admin.data.bans_by_target == {}
    # At the limit it is an ordinary body: decoded, and refused for its type, not its depth.
    shallow = b'{"target": "10.0.0.1", "reason": ' + b"[" * 31 + b"]" * 31 + b"}"
    async with admin.request("POST", "/api/v1/bans", data=shallow, headers=ADMIN) as response:
        assert response.status == 400
        assert (await response.json())["reason"].startswith("invalid body: Expected `str`")
