"""Shared fixtures: a real redis-server per test session, flushed per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from pool.sim.postgres_server import PostgresProcess
from pool.sim.redis_server import RedisProcess

# Hypothesis profiles (the fuzz targets in tests/fuzz): "ci" is bounded and derandomized, so the suite
# stays fast and every run tries the same inputs; "long" explores (`--hypothesis-profile long`, or
# GEOSTRATUM_FUZZ_PROFILE=long), keeping what it finds in .hypothesis/ for the next run.
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=20_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("GEOSTRATUM_FUZZ_PROFILE", "ci"))

pytest_plugins = ["tests.support.hang_report", "tests.support.books"]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    """URL of the session's redis-server, emptied before the test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresProcess]:
    """A real PostgreSQL (initdb + pg_ctl in a temporary folder) for the test session."""
    server = PostgresProcess()
    server.start()
    yield server
    server.remove()
