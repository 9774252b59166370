"""`geostratum run --workers 2`: a miner that reconnects with its session id gets its extranonce1 back
whichever worker process the kernel hands the new connection to (SO_REUSEPORT); and from a process
that was SIGKILLed (it parked nothing), once its heartbeat has stopped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.integration.support import base_config, free_port, wait_for, write_config
from tests.integration.test_workers import ROOT, pool_processes, snapshots_count

pytestmark = pytest.mark.timeout(150)


async def open_session(port: int, source: str, token: str | None
                       ) -> tuple[bytes, str, asyncio.StreamReader, asyncio.StreamWriter]:
    """Subscribe (resuming `token`) and authorize; the connection stays open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        params = ["cgminer/4.11.1", token] if token else ["cgminer/4.11.1"]
        writer.write(json.dumps({"id": 1, "method": "mining.subscribe", "params": params}).encode() + b"\n"
                     + json.dumps({"id": 2, "method": "mining.authorize", "params": ["kai.rig", "x"]}).encode()
                     + b"\n")
        await writer.drain()
        replies: dict[Any, Any] = {}
        while 1 not in replies or 2 not in replies:
            message = json.loads(await asyncio.wait_for(reader.readline(), 10))
            replies[message.get("id")] = message
        assert replies[2]["result"] is True, replies[2]
        result = replies[1]["result"]
        return bytes.fromhex(result[1]), result[0][1][1], reader, writer
    except BaseException:
        writer.close()
        raise


async def subscribe(port: int, source: str, token: str | None) -> tuple[bytes, str]:
    extranonce1, session_id, _, writer = await open_session(port, source, token)
    writer.close()
    return extranonce1, session_id


async def test_resume_succeeds_on_either_worker(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    config_path = write_config(tmp_path / "pool.toml", base_config(redis_url, tmp_path, stratum_port=port,
                                                                   admin_port=free_port()))
    log_path = tmp_path / "pool.log"
    client = aioredis.Redis.from_url(redis_url)

    async def parked(token: str) -> bool:
        return bool(await client.exists(f"{{gs:resume}}:t:{token}"))

    async def holder(extranonce1: bytes) -> str:
        raw = await client.hget(f"{{gs:resume}}:held:8:{extranonce1[0]}", extranonce1.hex())
        assert raw is not None, "a claimed value has a held record"
        return raw.decode().split("|", 1)[0]

    async with pool_processes(config_path, log_path):
        try:
            await wait_for(lambda: snapshots_count(client, 2), 40, "both workers up", interval=0.3)
        except AssertionError:
            raise AssertionError(log_path.read_text()[-3000:]) from None
        extranonce1, token = await subscribe(port, "127.0.0.1", None)
        claimers: list[str] = []
        for attempt in range(24):
            await wait_for(lambda: parked(token), 10, "the closed session to be published")
            resumed, same_token = await subscribe(port, f"127.0.0.{20 + attempt}", token)
            assert (resumed, same_token) == (extranonce1, token), f"resume {attempt} failed"
            claimers.append(await holder(extranonce1))
            if attempt >= 5 and len(set(claimers)) == 2:
                break
        assert len(set(claimers)) == 2, f"the kernel sent every reconnect to one worker: {claimers}"
        assert {name.split(".", 1)[0].rsplit("-", 1)[1] for name in claimers} == {"w0", "w1"}
    await client.aclose()


@contextlib.asynccontextmanager
async def one_process(config_path: Path, log_path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`geostratum run` (one process); killed at the end if the test did not kill it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOSTRATUM")}
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pool.cli", "run", "--config", str(config_path), cwd=ROOT, env=env,
            stdout=log, stderr=log)
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_resume_from_a_process_that_was_killed(redis_url: str, tmp_path: Path) -> None:
    """SIGKILL parks nothing: the dead process's working sessions were announced as live, and once its
    heartbeat is older than resume_holder_timeout another process gives their extranonce1 back, and
    so does the same process restarted (it is a new holder, not its dead predecessor). While the
    holder is alive, a second connection with the same session id gets a fresh extranonce1."""
    ports = {"a": free_port(), "b": free_port()}
    paths = {}
    for name, port in ports.items():
        data = base_config(redis_url, tmp_path / name, stratum_port=port, admin_port=free_port())
        data["pool"]["name"] = f"kill{name}"             # two processes on one hostname: distinct nodes
        data["stratum"].update(resume_heartbeat_seconds=0.3, resume_holder_timeout=1.5, resume_sync_seconds=0.5)
        paths[name] = write_config(tmp_path / f"{name}.toml", data)
    client = aioredis.Redis.from_url(redis_url)

    async def live_on_a(token: str) -> bool:
        keys = [k async for k in client.scan_iter("{gs:resume}:live:*killa*")]
        return any([await client.hexists(key, token) for key in keys])

    async def holder(extranonce1: bytes) -> str:
        raw = await client.hget(f"{{gs:resume}}:held:8:{extranonce1[0]}", extranonce1.hex())
        return raw.decode().split("|", 1)[0] if raw else ""

    async def up(name: str, log: Path) -> None:
        try:
            await wait_for(lambda: node_up(client, f"kill{name}"), 40, f"process {name} up", interval=0.3)
        except AssertionError:
            raise AssertionError(log.read_text()[-3000:]) from None

    async with one_process(paths["a"], tmp_path / "a.log") as a, one_process(paths["b"], tmp_path / "b.log"):
        await up("a", tmp_path / "a.log")
        await up("b", tmp_path / "b.log")
        sessions = [await open_session(ports["a"], f"127.0.0.{1 + i}", None) for i in range(2)]
        for _, token, _, _ in sessions:
            await wait_for(lambda t=token: live_on_a(t), 10, "the working sessions announced as live on A")
        (en1_1, token_1, _, writer_1), (en1_2, token_2, _, writer_2) = sessions

        # A is alive: the same session id on B is a second connection, not a resume.
        started = time.monotonic()
        other, other_token, _, other_writer = await open_session(ports["b"], "127.0.0.9", token_1)
        assert other != en1_1 and other_token != token_1
        assert time.monotonic() - started >= 1.5 - 0.1      # B asked until the holder timeout had passed
        other_writer.close()

        a.kill()                                             # the host dies: nothing is parked
        await a.wait()
        resumed, same_token, _, resumed_writer = await open_session(ports["b"], "127.0.0.3", token_1)
        assert (resumed, same_token) == (en1_1, token_1)
        assert "killb" in await holder(en1_1)                # B holds it now; A's prefix owner reserves it
        assert not await live_on_a(token_1)
        for writer in (resumed_writer, writer_1, writer_2):
            writer.close()

        # A comes back (a supervisor restarts it): the session its predecessor held resumes there.
        await client.zrem("gs:{gs:adm}:nodes", *[n for n in await snapshots_of(client) if "killa" in n])
        async with one_process(paths["a"], tmp_path / "a2.log"):
            await up("a", tmp_path / "a2.log")
            back, back_token, _, back_writer = await open_session(ports["a"], "127.0.0.4", token_2)
            assert (back, back_token) == (en1_2, token_2)
            back_writer.close()
    await client.aclose()


async def node_up(client: aioredis.Redis, name: str) -> bool:
    return any(name in n for n in await snapshots_of(client))


async def snapshots_of(client: aioredis.Redis) -> list[str]:
    from pool.bus.link import ClusterKeys

    return [n.decode() for n in await client.zrange(ClusterKeys("gs").nodes, 0, -1)]
