"""`geostratum run --workers 2`: two processes share the stratum port; the admin API in worker 0
shows both (Redis snapshots) and its controls reach both (Redis control lists); SIGHUP to the
parent reloads the config in every worker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import msgspec
import pytest
import redis.asyncio as aioredis

from pool.bus.link import ClusterKeys
from pool.cluster.snapshot import NodeSnapshot
from pool.geo.country_ips import draw_ips
from tests.integration.conftest import Fleet
from tests.integration.support import (
    ADMIN,
    Api,
    Miner,
    base_config,
    free_port,
    to_toml,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.timeout(150)
ROOT = Path(__file__).resolve().parents[2]


async def snapshots(client: aioredis.Redis) -> dict[str, NodeSnapshot]:
    keys = ClusterKeys("gs")
    names = [n.decode() for n in await client.zrangebyscore(keys.nodes, "-inf", "+inf")]
    blobs = await client.mget([keys.snapshot(n) for n in names]) if names else []
    decoder = msgspec.msgpack.Decoder(NodeSnapshot)
    return {n: decoder.decode(b) for n, b in zip(names, blobs, strict=True) if b is not None}


@contextlib.asynccontextmanager
async def pool_processes(config_path: Path, log_path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOSTRATUM__")}
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pool.cli", "run", "--workers", "2", "--config", str(config_path),
            "--log-level", "info", cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def test_two_workers_one_admin_view(redis_url: str, tmp_path: Path, fleet: Fleet) -> None:
    stratum, admin = free_port(), free_port()
    data = base_config(redis_url, tmp_path, stratum_port=stratum, admin_port=admin)
    config_path = write_config(tmp_path / "pool.toml", data)
    log_path = tmp_path / "pool.log"
    ips = draw_ips("DE", 16, random.Random(3))
    client = aioredis.Redis.from_url(redis_url)
    async with pool_processes(config_path, log_path) as proc, aiohttp.ClientSession() as session:
        api = Api(session, f"http://127.0.0.1:{admin}")

        async def admin_up() -> bool:
            with contextlib.suppress(aiohttp.ClientError):
                status, _ = await api.call("GET", "/api/v1/health", ADMIN)
                return status in (200, 503)
            return False

        try:
            await wait_for(admin_up, 40, "worker 0's admin API", interval=0.3)
            await wait_for(lambda: snapshots_count(client, 2), 20, "both workers' snapshots", interval=0.3)
        except AssertionError:
            raise AssertionError(log_path.read_text()[-3000:]) from None

        # Miners until both processes hold some (the kernel spreads SO_REUSEPORT connections).
        miners: dict[str, Miner] = {}
        while True:
            for _ in range(4 if not miners else 2):
                i = len(miners)
                name = f"kai.rig{i}"
                miners[name] = fleet.add(Miner("127.0.0.1", stratum, name, public_ip=ips[i],
                                               source_address=f"127.0.0.{10 + i}"))
            await wait_for(lambda: all(m.stats.accepted >= 1 for m in miners.values()), 30, "shares from every miner")
            nodes = await wait_for(lambda: connected(client, len(miners)), 10, "snapshots with every miner")
            held = {n.worker_index: len(n.rows) for n in nodes.values()}
            if (held[0] >= 1 and held[1] >= 2) or len(miners) >= len(ips) - 1:
                break
        assert held[0] >= 1 and held[1] >= 2, f"the kernel spread the connections {held}"
        where = {row.worker: name for name, n in nodes.items() for row in n.rows}
        _, worker1 = sorted(nodes, key=lambda n: nodes[n].worker_index)

        # Worker 0's views cover both processes.
        overview = await api.get("/api/v1/overview")
        assert overview["pool"]["connections"] == len(miners) and overview["pool"]["workers"] == len(miners)
        page = await api.get("/api/v1/workers?limit=100")
        assert {w["name"] for w in page["items"]} == set(miners)
        assert all(w["connections"] == 1 and w["country"] == "DE" for w in page["items"])
        health = await api.get("/api/v1/health")
        assert {c["name"]: c["ok"] for c in health["components"]}[f"worker:{worker1}"] is True

        # Controls reach the other process: kick, ban, port difficulty.
        remote = [name for name, node in where.items() if node == worker1]
        status, body = await api.call("POST", f"/api/v1/workers/{remote[0]}/kick", ADMIN)
        assert status == 200 and body["connections"] == 1
        await wait_for(lambda: miners[remote[0]].disconnected, 10, "the kicked remote miner to be disconnected")
        banned = miners[remote[1]].public_ip
        status, body = await api.call("POST", "/api/v1/bans", ADMIN, json={"target": banned, "reason": "t"})
        assert status == 201 and body["reason"] == "t"                    # no note: every worker was told
        await wait_for(lambda: miners[remote[1]].disconnected, 10, "the banned remote miner to be disconnected")
        assert [b["target"] for b in await api.get("/api/v1/bans")] == [banned]
        status, body = await api.call("PUT", f"/api/v1/ports/{stratum}/difficulty", ADMIN,
                                      json={"start_difficulty": 3e-6})
        assert status == 200
        await wait_for(lambda: port_start_everywhere(client, 3e-6), 10, "3e-6 in both workers")

        # SIGHUP to the parent: every worker re-reads the file.
        data["stratum"]["ports"][0]["start_difficulty"] = 4e-6
        config_path.write_text(to_toml(data))
        proc.send_signal(signal.SIGHUP)
        await wait_for(lambda: port_start_everywhere(client, 4e-6), 15, "the reloaded difficulty in both workers")
        assert proc.returncode is None

    assert proc.returncode == 0, log_path.read_text()[-3000:]
    assert "Traceback" not in log_path.read_text()
    await client.aclose()


def worker_pids(supervisor: int) -> dict[int, int]:
    """Worker index -> PID of the supervisor's children (from /proc)."""
    out = {}
    for task in Path(f"/proc/{supervisor}/task").iterdir():
        for pid in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                index = next((v.split(b"=", 1)[1] for v in env if v.startswith(b"GEOSTRATUM_WORKER_INDEX=")), None)
                if index is not None:           # None: a dead child not yet reaped has no environment
                    out[int(index)] = int(pid)
    return out


async def test_a_worker_that_dies_is_started_again(redis_url: str, tmp_path: Path) -> None:
    """kill -9 of a worker: the supervisor starts it again (same index, new PID); a worker that dies
    more than pool.worker_restart_limit times in pool.worker_restart_period_s stops the pool."""
    data = base_config(redis_url, tmp_path, stratum_port=free_port(), admin_port=free_port())
    data["pool"].update(worker_restart_limit=1, worker_restart_period_s=600.0)
    config_path = write_config(tmp_path / "pool.toml", data)
    log_path = tmp_path / "pool.log"
    async with pool_processes(config_path, log_path) as proc:
        try:
            first = await wait_for(lambda: len(worker_pids(proc.pid)) == 2 and worker_pids(proc.pid), 40,
                                   "two workers", interval=0.2)
        except AssertionError:
            raise AssertionError(log_path.read_text()[-3000:]) from None
        os.kill(first[1], signal.SIGKILL)
        second = await wait_for(lambda: worker_pids(proc.pid).get(1, first[1]) != first[1] and worker_pids(proc.pid),
                                30, "worker 1 started again", interval=0.2)
        assert second[0] == first[0] and proc.returncode is None
        os.kill(second[1], signal.SIGKILL)           # a second death within the period: over the limit
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 1, log_path.read_text()[-3000:]
    log = log_path.read_text()
    assert "worker 1 exited (killed by SIGKILL); starting it again (1 of 1 restarts in 600 s)" in log
    assert "worker 1 exited (killed by SIGKILL); stopping the pool" in log


async def snapshots_count(client: aioredis.Redis, n: int) -> bool:
    return len(await snapshots(client)) >= n


async def connected(client: aioredis.Redis, n: int) -> dict[str, NodeSnapshot] | None:
    nodes = await snapshots(client)
    fresh = {k: v for k, v in nodes.items() if v.at > 0}
    return fresh if sum(len(v.rows) for v in fresh.values()) == n and len(fresh) == 2 else None


async def port_start_everywhere(client: aioredis.Redis, value: float) -> bool:
    nodes = await snapshots(client)
    return len(nodes) == 2 and all(n.stratum.ports[0].start_difficulty == value for n in nodes.values())

