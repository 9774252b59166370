"""Every endpoint without a token, with a read token and with an admin token; anonymous groups;
hashed and environment tokens; tokens never in the logs."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any

import aiohttp
import pytest

from pool.admin.auth import Scope, TokenBook, bearer_token
from pool.admin.routes import ROUTES
from pool.config import ConfigError
from tests.admin.conftest import ADMIN, ADMIN_TOKEN, READ, READ_TOKEN, Running, make_config, start_admin
from tests.admin.providers import InMemoryPool

TODAY = dt.datetime.now(dt.UTC).date()
RECENT = f"start={TODAY - dt.timedelta(days=2)}&end={TODAY + dt.timedelta(days=1)}"

# One concrete, valid request per operation: (method, path, json body, status with the right token).
REQUESTS: dict[str, tuple[str, str, Any, int]] = {
    "getOverview": ("GET", "/api/v1/overview", None, 200),
    "getHashrateHistory": ("GET", "/api/v1/history?window=6h", None, 200),
    "listWorkers": ("GET", "/api/v1/workers", None, 200),
    "getWorker": ("GET", "/api/v1/workers/alice.rig1", None, 200),
    "kickWorker": ("POST", "/api/v1/workers/alice.rig1/kick", {"reason": "maintenance"}, 200),
    "reconnectWorker": ("POST", "/api/v1/workers/bob.s19/reconnect", {"wait_seconds": 5}, 200),
    "listAccounts": ("GET", "/api/v1/accounts", None, 200),
    "getAccount": ("GET", "/api/v1/accounts/alice", None, 200),
    "listBlocks": ("GET", "/api/v1/blocks", None, 200),
    "getRegions": ("GET", "/api/v1/regions", None, 200),
    "listExports": ("GET", "/api/v1/exports", None, 200),
    "downloadExport": ("GET", f"/api/v1/exports/regions?{RECENT}&format=json", None, 200),
    "getMap": ("GET", "/api/v1/map?period=weekly", None, 200),
    "listBans": ("GET", "/api/v1/bans", None, 200),
    "addBan": ("POST", "/api/v1/bans", {"target": "203.0.113.0/24", "reason": "flood"}, 201),
    "removeBan": ("DELETE", "/api/v1/bans?target=192.0.2.1", None, 200),
    "listPorts": ("GET", "/api/v1/ports", None, 200),
    "setPortDifficulty": ("PUT", "/api/v1/ports/3333/difficulty", {"start_difficulty": 32768}, 200),
    "reloadConfig": ("POST", "/api/v1/reload", None, 200),
    "getPrice": ("GET", "/api/v1/price", None, 200),
    "setPrice": ("PUT", "/api/v1/price", {"btc_usd": 100000}, 200),
    "getHealth": ("GET", "/api/v1/health", None, 200),
    "getMetrics": ("GET", "/metrics", None, 200),
}
ROUTE_BY_ID = {route.operation_id: route for route in ROUTES}


def test_every_route_has_a_request_here() -> None:
    assert set(REQUESTS) == set(ROUTE_BY_ID)


async def _call(admin: Running, op: str, headers: dict[str, str]) -> tuple[int, Any]:
    method, path, body, _ = REQUESTS[op]
    async with admin.request(method, path, json=body, headers=headers) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def _seed_ban(admin: Running) -> None:
    from pool.admin.interfaces import BanRequest

    await admin.data.add_ban(BanRequest(target="192.0.2.1/32", reason="seed"))


@pytest.mark.parametrize("op", sorted(REQUESTS))
async def test_without_token_is_401(admin: Running, op: str) -> None:
    status, body = await _call(admin, op, {})
    assert status == 401
    assert body == {"status": 401, "error": "unauthorized", "reason": "a bearer token is required"}


@pytest.mark.parametrize("op", sorted(REQUESTS))
async def test_wrong_or_malformed_token_is_401(admin: Running, op: str) -> None:
    for header in ("Bearer not-a-token-at-all-xxxxxxxx", f"Basic {READ_TOKEN}", f"Bearer {ADMIN_TOKEN} x", "Bearer"):
        status, body = await _call(admin, op, {"Authorization": header})
        assert status == 401, header
        assert body["error"] == "unauthorized"


@pytest.mark.parametrize("op", sorted(REQUESTS))
async def test_read_token(admin: Running, op: str) -> None:
    await _seed_ban(admin)
    status, body = await _call(admin, op, READ)
    if ROUTE_BY_ID[op].scope is Scope.ADMIN:
        assert status == 403
        assert body == {"status": 403, "error": "forbidden", "reason": "this endpoint needs an admin token"}
        assert admin.data.kicked == [] and admin.data.reloads == 0  # nothing happened
    else:
        assert status == REQUESTS[op][3], body


@pytest.mark.parametrize("op", sorted(REQUESTS))
async def test_admin_token(admin: Running, op: str) -> None:
    await _seed_ban(admin)
    status, body = await _call(admin, op, ADMIN)
    assert status == REQUESTS[op][3], body


async def test_anonymous_groups_open_only_their_endpoints(pool_data: InMemoryPool) -> None:
    server = await start_admin(pool_data, make_config(anonymous=["dashboard", "health"]))
    try:
        async with aiohttp.ClientSession() as session:
            opened = {route.operation_id for route in ROUTES if route.group in ("dashboard", "health")}
            assert opened == {"getOverview", "getHashrateHistory", "listBlocks", "getRegions", "getMap",
                              "getHealth"}
            for op, (method, path, body, ok_status) in REQUESTS.items():
                async with session.request(method, server.url + path, json=body) as response:
                    assert response.status == (ok_status if op in opened else 401), op
            # A wrong token is still refused, even where anonymous reads are allowed.
            headers = {"Authorization": "Bearer wrong-token-xxxxxxxxxxxx"}
            async with session.get(server.url + "/api/v1/overview", headers=headers) as response:
                assert response.status == 401
    finally:
        await server.stop()


async def test_hashed_and_environment_tokens(pool_data: InMemoryPool) -> None:
    secret = "hashed-admin-token-abcdefghijkl"
    digest = "sha256:" + hashlib.sha256(secret.encode()).hexdigest()
    config = make_config(read_tokens=[], admin_tokens=[digest])
    from pool.admin import AdminServer

    env_token = "env-read-token-zyxwvutsrqpo"
    server = AdminServer(config, pool_data, pool_data, pool_data, pool_data,
                         environ={"GEOSTRATUM_READ_TOKENS": f" {env_token} ,"})
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(server.url + "/api/v1/reload",
                                    headers={"Authorization": f"Bearer {secret}"}) as response:
                assert response.status == 200
            async with session.post(server.url + "/api/v1/reload",
                                    headers={"Authorization": f"Bearer {env_token}"}) as response:
                assert response.status == 403
            async with session.get(server.url + "/api/v1/overview",
                                   headers={"Authorization": f"Bearer {env_token}"}) as response:
                assert response.status == 200
            # The digest itself is not a token.
            async with session.get(server.url + "/api/v1/overview",
                                   headers={"Authorization": f"Bearer {digest}"}) as response:
                assert response.status == 401
    finally:
        await server.stop()


def test_weak_environment_token_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        TokenBook(make_config(), environ={"GEOSTRATUM_ADMIN_TOKENS": "short"})
    assert info.value.key == "GEOSTRATUM_ADMIN_TOKENS[0]"


def test_token_book_scopes() -> None:
    book = TokenBook(make_config(), environ={})
    assert book.lookup(READ_TOKEN)[0] is Scope.READ
    assert book.lookup(ADMIN_TOKEN)[0] is Scope.ADMIN
    assert book.lookup("nope") == (Scope.NONE, "")
    _, client = book.lookup(ADMIN_TOKEN)
    assert client.startswith("token:") and ADMIN_TOKEN not in client
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Token abc") is None
    assert bearer_token(None) is None


async def test_tokens_never_reach_the_logs(admin: Running, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    admin.data.delay = 0.0
    wrong = "Bearer wrong-but-secret-token-123456"
    for headers in (READ, ADMIN, {"Authorization": wrong}):
        for op in ("getOverview", "reloadConfig", "kickWorker"):
            await _call(admin, op, headers)

    # A provider failure is logged with its traceback, still without the token.
    async def broken(*_: object) -> None:
        raise RuntimeError("provider exploded")

    admin.data.figures = broken  # type: ignore[method-assign]
    status, body = await _call(admin, "getOverview", ADMIN)
    assert status == 500
    assert body == {"status": 500, "error": "internal", "reason": "internal error; see the pool log"}
    text = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert "provider exploded" in text or any(r.exc_info for r in caplog.records)
    assert "GET /api/v1/overview" in text  # the access log ran
    for secret in (READ_TOKEN, ADMIN_TOKEN, "wrong-but-secret-token-123456"):
        assert secret not in text
