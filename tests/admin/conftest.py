"""Admin server fixtures: a real AdminServer on 127.0.0.1 over the in-memory pool."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from pool.admin import AdminServer
from pool.config.admin import AdminConfig
from tests.admin.providers import InMemoryPool
from tests.admin.sample import populate

READ_TOKEN = "read-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CONFIG_TOML = """
[stratum]
ports = [{ port = 3333, start_difficulty = 20000.0, min_difficulty = 2000.0, max_difficulty = 1e12 }]
"""


def make_config(**overrides: object) -> AdminConfig:
    values: dict[str, object] = {
        "host": "127.0.0.1", "port": 0, "read_tokens": [READ_TOKEN], "admin_tokens": [ADMIN_TOKEN],
        "rate_limit_per_second": 1000.0, "rate_limit_burst": 1000,
    }
    values.update(overrides)
    config = AdminConfig(**values)  # type: ignore[arg-type]
    config.validate()
    return config


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "pool.toml"
    path.write_text(CONFIG_TOML)
    return path


@pytest.fixture
def pool_data(config_file: Path) -> InMemoryPool:
    return populate(InMemoryPool(config_path=config_file))


class Running:
    """A started server plus a client session with its base URL."""

    def __init__(self, server: AdminServer, session: aiohttp.ClientSession, data: InMemoryPool) -> None:
        self.server = server
        self.session = session
        self.data = data
        self.url = server.url

    def request(self, method: str, path: str, **kwargs: object) -> aiohttp.client._RequestContextManager:
        return self.session.request(method, self.url + path, **kwargs)  # type: ignore[arg-type]


async def start_admin(data: InMemoryPool, config: AdminConfig) -> AdminServer:
    server = AdminServer(config, data, data, data, data, environ={})
    await server.start()
    return server


@pytest.fixture
async def admin(pool_data: InMemoryPool) -> AsyncIterator[Running]:
    server = await start_admin(pool_data, make_config())
    async with aiohttp.ClientSession() as session:
        yield Running(server, session, pool_data)
    await server.stop()


class ServerThread:
    """An AdminServer on its own event loop in a thread, for synchronous clients (schemathesis,
    a Chromium subprocess driven from a plain test)."""

    def __init__(self, data: InMemoryPool, config: AdminConfig) -> None:
        self.data = data
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: AdminServer | None = None

    def __enter__(self) -> ServerThread:
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(start_admin(self.data, self.config), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url


@pytest.fixture
def threaded_admin(pool_data: InMemoryPool) -> Iterator[ServerThread]:
    with ServerThread(pool_data, make_config()) as running:
        yield running
