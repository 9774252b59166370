"""Rate limiting: the token bucket itself, and 429 with Retry-After over HTTP."""

from __future__ import annotations

import aiohttp
import pytest

from pool.admin.ratelimit import RateLimiter
from tests.admin.conftest import ADMIN, READ, make_config, start_admin
from tests.admin.providers import InMemoryPool


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_burst_then_refills() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=2.0, burst=3, max_clients=10, clock=clock)
    assert [limiter.check("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.check("a") == pytest.approx(0.5)          # one token at 2/s: half a second
    assert limiter.check("b") == 0.0                         # other clients are unaffected
    clock.now += 0.5
    assert limiter.check("a") == 0.0
    assert limiter.check("a") == pytest.approx(0.5)
    clock.now += 100                                         # refill caps at the burst
    assert [limiter.check("a") for _ in range(4)][-1] > 0
    assert limiter.limited == 3


def test_bucket_memory_is_bounded() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_clients=100, clock=FakeClock())
    for i in range(1000):
        limiter.check(f"addr:{i}")
    assert len(limiter) == 100


async def test_http_429_with_retry_after(pool_data: InMemoryPool) -> None:
    server = await start_admin(pool_data, make_config(rate_limit_per_second=0.5, rate_limit_burst=3))
    try:
        async with aiohttp.ClientSession() as session:
            statuses = []
            for _ in range(5):
                async with session.get(server.url + "/api/v1/overview", headers=READ) as response:
                    statuses.append(response.status)
                    if response.status == 429:
                        assert response.headers["Retry-After"] == "2"
                        assert await response.json() == {
                            "status": 429, "error": "rate_limited", "reason": "too many requests; slow down"}
            assert statuses == [200, 200, 200, 429, 429]
            # The admin token is a different client with its own bucket.
            async with session.get(server.url + "/api/v1/overview", headers=ADMIN) as response:
                assert response.status == 200
            # Requests without a valid token are limited per address, before any token check,
            # so guessing tokens is throttled too.
            wrong = {"Authorization": "Bearer guess-guess-guess-guess"}
            seen = []
            for _ in range(5):
                async with session.get(server.url + "/api/v1/overview", headers=wrong) as response:
                    seen.append(response.status)
            assert seen == [401, 401, 401, 429, 429]
            async with session.get(server.url + "/metrics", headers=ADMIN) as response:
                text = await response.text()
            assert "geostratum_admin_rate_limited_total 4" in text
            assert 'geostratum_admin_requests_total{code="429"} 4' in text
    finally:
        await server.stop()
