"""`geostratum run --workers 2`: a miner that reconnects with its session id gets its extranonce1 back
whichever worker process the kernel hands the new connection to (SO_REUSEPORT)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.integration.support import base_config, free_port, wait_for, write_config
from tests.integration.test_workers import pool_processes, snapshots_count

pytestmark = pytest.mark.timeout(150)


async def subscribe(port: int, source: str, token: str | None) -> tuple[bytes, str]:
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
        return bytes.fromhex(result[1]), result[0][1][1]
    finally:
        writer.close()


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
        assert {name.rsplit("-", 1)[1] for name in claimers} == {"w0", "w1"}
    await client.aclose()
