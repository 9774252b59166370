"""Sentinel mode for real: a master redis-server watched by a redis-sentinel (both started here); the
ledger finds the master through the sentinel and its totals equal what was handed in."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from pool.cluster.leases import lease_prefix
from pool.config.ledger import LedgerConfig, RedisConfig
from pool.shares.ledger import Ledger
from pool.sim.redis_server import RedisProcess, free_port
from tests.ledger.support import (
    CountryContributor,
    expected_countries,
    expected_totals,
    flush_until_done,
    read_totals,
    record,
)


@pytest.fixture
def sentinel(redis_server: RedisProcess, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(master url, sentinel url): a redis-sentinel monitoring the session's redis-server as "gsmaster"."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup.sh installs it)")
    redis.Redis.from_url(redis_server.url).flushall()
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                    f"sentinel monitor gsmaster 127.0.0.1 {redis_server.port} 1\n"
                    "sentinel down-after-milliseconds gsmaster 5000\n")
    process = subprocess.Popen([binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _sentinel_knows_master(port, redis_server.port):
            if time.monotonic() > deadline:
                pytest.fail("redis-sentinel did not come up")
            time.sleep(0.05)
        yield redis_server.url, f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _sentinel_knows_master(port: int, master_port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"SENTINEL get-master-addr-by-name gsmaster\r\n")
            return str(master_port).encode() in sock.recv(256)
    except OSError:
        return False


async def test_ledger_through_sentinel(sentinel: tuple[str, str], tmp_path: Path) -> None:
    master_url, sentinel_url = sentinel
    config = LedgerConfig(journal_dir=str(tmp_path / "journal"), flush_interval_ms=20)
    redis_config = RedisConfig(mode="sentinel", urls=[sentinel_url], sentinel_service="gsmaster")
    redis_config.validate()
    ledger = Ledger(config, redis_config, "sentinel-node")
    ledger.add_contributor(CountryContributor())
    await ledger.start()
    lease = await lease_prefix(ledger.client, "sentinel-node")
    count = 5_000
    for i in range(count):
        ledger.add(record(i))
    await flush_until_done(ledger)
    await lease.release()
    await ledger.stop()
    shares, difficulty, per_account, countries = read_totals(master_url)
    assert (shares, difficulty, per_account) == expected_totals(count)
    assert countries == expected_countries(count)
