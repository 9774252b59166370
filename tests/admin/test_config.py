"""[admin] config errors name the key; apply_config swaps tokens and limits without a restart."""

from __future__ import annotations

import hashlib

import aiohttp
import pytest

import pool.config
from pool.config import ConfigError
from tests.admin.conftest import ADMIN, READ, READ_TOKEN, make_config, start_admin
from tests.admin.providers import InMemoryPool


@pytest.mark.parametrize(
    ("admin", "key", "reason"),
    [
        ({"port": 70000}, "admin.port", "must be 0..65535, got 70000"),
        ({"host": ""}, "admin.host", "must not be empty"),
        ({"read_tokens": ["short"]}, "admin.read_tokens[0]", "must be at least 16 characters"),
        ({"admin_tokens": ["ok-token-long-enough", "has space in the token"]}, "admin.admin_tokens[1]",
         "must not contain whitespace or control characters"),
        ({"admin_tokens": ["sha256:abc"]}, "admin.admin_tokens[0]",
         "a hashed token is sha256: followed by 64 lowercase hex digits"),
        ({"anonymous": ["dashboard", "workers"]}, "admin.anonymous[1]",
         "must be one of dashboard, health, metrics, miner, got 'workers'"),
        ({"rate_limit_per_second": 0}, "admin.rate_limit_per_second", "must be > 0 and finite, got 0"),
        ({"rate_limit_burst": -1}, "admin.rate_limit_burst", "must be > 0, got -1"),
        ({"request_timeout_seconds": float("inf")}, "admin.request_timeout_seconds",
         "must be > 0 and finite, got inf"),
        ({"btc_usd_price": -3.0}, "admin.btc_usd_price", "must be >= 0 and finite, got -3.0"),
        ({"request_timeout_seconds": "soon"}, "admin.request_timeout_seconds", "Expected `float`, got `str`"),
        ({"colour": "red"}, "admin.colour", "unknown key"),
    ],
)
def test_config_errors_name_the_key(admin: dict[str, object], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        pool.config.from_dict({"admin": admin})
    assert info.value.key == key
    assert info.value.reason == reason


def test_defaults_are_safe() -> None:
    config = pool.config.from_dict({}).admin
    assert config.host == "127.0.0.1" and config.anonymous == [] and config.read_tokens == []
    digest = "sha256:" + hashlib.sha256(b"x").hexdigest()
    assert pool.config.from_dict({"admin": {"admin_tokens": [digest]}}).admin.admin_tokens == [digest]


def test_environment_override_reaches_the_admin_section() -> None:
    config = pool.config.load(None, environ={"GEOSTRATUM__ADMIN__PORT": "9191",
                                             "GEOSTRATUM__ADMIN__ANONYMOUS": '["health"]'})
    assert config.admin.port == 9191 and config.admin.anonymous == ["health"]


async def test_apply_config_swaps_tokens_live(pool_data: InMemoryPool) -> None:
    server = await start_admin(pool_data, make_config())
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/api/v1/overview", headers=READ) as response:
                assert response.status == 200
            new_read = "rotated-read-token-0987654321"
            server.apply_config(make_config(read_tokens=[new_read], anonymous=["health"], btc_usd_price=10.0))
            async with session.get(server.url + "/api/v1/overview", headers=READ) as response:
                assert response.status == 401
            async with session.get(server.url + "/api/v1/overview",
                                   headers={"Authorization": f"Bearer {new_read}"}) as response:
                assert (await response.json())["revenue"]["btc_usd_price"] == 10.0
            async with session.get(server.url + "/api/v1/health") as response:
                assert response.status == 200
            async with session.get(server.url + "/api/v1/reload", headers=ADMIN) as response:
                assert response.status == 405
        assert READ_TOKEN not in repr(server.ctx.config.read_tokens)
    finally:
        await server.stop()


async def overview_status(session: aiohttp.ClientSession, url: str, token: str) -> int:
    async with session.get(url + "/api/v1/overview", headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status


async def test_a_reload_plan_takes_tokens_on_apply_and_keeps_the_socket(pool_data: InMemoryPool) -> None:
    server = await start_admin(pool_data, make_config())
    try:
        running = server.ctx.config
        new_read = "rotated-read-token-0987654321"
        plan = server.plan_reload(make_config(read_tokens=[new_read], port=9999, host="0.0.0.0", rate_limit_burst=7))
        assert plan.applied == ("admin.read_tokens", "admin.rate_limit_burst")
        assert plan.requires_restart == ("admin.host", "admin.port")
        assert plan.config.host == running.host and plan.config.port == running.port
        async with aiohttp.ClientSession() as session:
            assert await overview_status(session, server.url, READ_TOKEN) == 200   # a plan alone changes nothing
            server.apply_reload(plan)
            assert server.ctx.config is plan.config and server.ctx.limiter.burst == 7
            assert await overview_status(session, server.url, READ_TOKEN) == 401
            assert await overview_status(session, server.url, new_read) == 200
    finally:
        await server.stop()
