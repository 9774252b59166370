"""Ledger fixtures: real redis-server processes (one with AOF for kill tests, a 3-master cluster)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from pool.sim.redis_server import RedisProcess, free_port

# Kill tests need what Redis acknowledged to survive SIGKILL of redis-server itself.
DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is a valid, free port too."""
    for _ in range(1000):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class RedisCluster:
    """Three cluster-enabled redis-servers on loopback joined by `redis-cli --cluster create`."""

    def __init__(self) -> None:
        self.nodes = [RedisProcess(port=cluster_port(), extra_args=("--cluster-enabled", "yes", "--cluster-config-file",
                                               "nodes.conf", "--cluster-node-timeout", "1000", *DURABLE))
                      for _ in range(3)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed")
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        self.wait_ok()

    def wait_ok(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if all(redis.Redis(port=n.port).cluster("INFO").get("cluster_state") == "ok"
                       for n in self.nodes):
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError("redis cluster did not reach cluster_state:ok")

    def node_for(self, key: str) -> RedisProcess:
        """The master that serves `key`'s slot."""
        admin = redis.Redis(port=self.nodes[0].port)
        slot = admin.execute_command("CLUSTER KEYSLOT", key)
        for start, end, master, *_ in admin.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return next(n for n in self.nodes if n.port == int(master[1]))
        raise RuntimeError(f"no node owns slot {slot}")

    def flush(self) -> None:
        for node in self.nodes:
            redis.Redis(port=node.port).flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    cluster = RedisCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(redis_cluster: RedisCluster) -> RedisCluster:
    redis_cluster.wait_ok()
    redis_cluster.flush()
    return redis_cluster


@pytest.fixture
def durable_redis() -> Iterator[RedisProcess]:
    """A redis-server of this test's own, with AOF fsync always, that the test may kill."""
    server = RedisProcess(extra_args=DURABLE)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    return tmp_path / "journal"
