"""A real pool on the embedded devnet (PoolApp from a TOML file), real hashing Stratum clients, and
an HTTP client for its admin API."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from pool import config as config_module
from pool.app import PoolApp
from pool.sim.client import MinerProfile, StratumClient
from pool.sim.proxy_header import proxy_v2
from tests.support.waiting import wait_for  # noqa: F401  (the integration tests import it from here)

READ_TOKEN = "integration-read-token-0123456789"
ADMIN_TOKEN = "integration-admin-token-0123456789"
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

# Devnet difficulty 4e-5 (about 170,000 hashes a block) and share difficulty 2e-6: a few test miners
# hashing ~40 kH/s each find shares several times a second and a block every second or two.
DEVNET_NBITS = "1e61a79e"
SHARE_DIFFICULTY = 2e-6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_config(redis_url: str, tmp_path: Path, *, stratum_port: int = 0, admin_port: int = 0,
                books_dsn: str = "") -> dict[str, Any]:
    """A devnet pool on loopback. With `books_dsn` (the books_dsn fixture: a migrated PostgreSQL database of
    the test's own) it keeps PPLNS balances there; without, it is a SOLO pool, which needs no database."""
    books: dict[str, Any] = {"money": {"dsn": books_dsn}} if books_dsn else {"payouts": {"scheme": "solo"}}
    return books | {
        "pool": {"name": "itest", "data_dir": str(tmp_path / "var")},
        "chain": {"backend": "devnet", "network": "devnet",
                  "devnet": {"nbits": DEVNET_NBITS, "rpc_port": 0, "tx_interval": 1.0}},
        "stratum": {
            "trusted_proxies": ["127.0.0.0/8"], "proxy_header_required": False,
            "limits": {"max_connections_per_ip": 100},
            "ports": [{"port": stratum_port, "host": "127.0.0.1", "start_difficulty": SHARE_DIFFICULTY,
                       "min_difficulty": 1e-7, "max_difficulty": 1.0, "vardiff": False}],
        },
        "redis": {"url": redis_url, "key_prefix": "gs"},
        "ledger": {"journal_dir": str(tmp_path / "journal"), "block_poll_interval_s": 1.0,
                   "bucket_units": 10**9},   # devnet shares are far below difficulty 1
        "admin": {"host": "127.0.0.1", "port": admin_port, "read_tokens": [READ_TOKEN],
                  "admin_tokens": [ADMIN_TOKEN], "rate_limit_per_second": 1000.0, "rate_limit_burst": 1000,
                  "dashboard_refresh_seconds": 0.5},
    }


def add_tls_port(data: dict[str, Any], cert: Path, key: Path) -> None:
    """A second stratum port like the first, over TLS with this certificate and key (ports[1])."""
    plain = data["stratum"]["ports"][0]
    data["stratum"]["ports"].append({**plain, "tls": True, "tls_cert_file": str(cert), "tls_key_file": str(key)})


# -- TOML (only what the configs above use: tables, arrays of tables, scalars, arrays of scalars) ----


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    scalars = [f"{k} = {_value(v)}" for k, v in data.items()
               if not isinstance(v, dict) and not (isinstance(v, list) and v and isinstance(v[0], dict))]
    out = ([f"[{prefix}]"] if prefix and scalars else []) + scalars
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.append(to_toml(value, name))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                out.append(f"[[{name}]]")
                out.append("\n".join(f"{k} = {_value(v)}" for k, v in item.items()))
    return "\n".join(part for part in out if part) + "\n"


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(to_toml(data))
    config_module.load(path, environ={})      # the test's own file must be valid
    return path


@contextlib.asynccontextmanager
async def running_pool(config_path: Path) -> AsyncIterator[PoolApp]:
    app = PoolApp(config_module.load(config_path, environ={}), config_path=str(config_path))
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


def stratum_port(app: PoolApp) -> int:
    assert app.server is not None
    return app.server.config.ports[0].port


class Miner(StratumClient):
    """A StratumClient that can stop cleanly: it stops hashing, waits for the answers to the shares
    it submitted, then disconnects, so its accepted count is exactly what the pool accepted."""

    def __init__(self, host: str, port: int, username: str, *, public_ip: str = "", **kwargs: Any) -> None:
        header = proxy_v2(public_ip, 40000 + random.randrange(20000), host, port) if public_ip else b""
        kwargs.setdefault("hashrate", 40_000.0)
        kwargs.setdefault("profile", MinerProfile(user_agent="bmminer/2.0.0", version_rolling=True))
        super().__init__(host, port, username, proxy_header=header, **kwargs)
        self.public_ip = public_ip
        self._stop = asyncio.Event()
        self.task: asyncio.Task[Any] | None = None

    async def _mine_loop(self) -> None:
        mining = asyncio.ensure_future(super()._mine_loop())
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({mining, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:                    # also when the connection ends: no loop outlives it (reconnect)
            for task in (mining, stopping):
                task.cancel()
            await asyncio.gather(mining, stopping, return_exceptions=True)
        deadline = time.monotonic() + 5
        while any(m == "mining.submit" for m in self._pending.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def start(self) -> Miner:
        self.task = asyncio.ensure_future(self.run())
        return self

    async def finish(self) -> None:
        """Stop cleanly; raises what ended the connection early (e.g. the pool closing it)."""
        assert self.task is not None
        self._stop.set()
        await self.task

    @property
    def disconnected(self) -> bool:
        return self.task is not None and self.task.done() and self.task.exception() is not None


async def flushed(app: PoolApp) -> None:
    """Every share accepted before this call is in Redis (miners may go on submitting meanwhile)."""
    assert app.ledger is not None
    added = app.ledger.snapshot().shares_added
    await app.ledger.flush()
    stats = app.ledger.snapshot()
    assert stats.redis_up and stats.shares_flushed >= added, stats


class Api:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def call(self, method: str, path: str, headers: dict[str, str] | None = None,
                   **kwargs: Any) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path, headers=headers, **kwargs) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.read()

    async def get(self, path: str, headers: dict[str, str] = ADMIN) -> Any:
        status, body = await self.call("GET", path, headers)
        assert status == 200, (path, status, body)
        return body


@contextlib.asynccontextmanager
async def admin_api(app: PoolApp) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, app.admin.url)
