"""`geostratum run --workers 2` in front of a node that refuses every block: the chain is the devnet
(served over JSON-RPC by this test), and each submitblock is answered with Bitcoin Core's recorded
reply for a bad merkle root. Whichever process found a candidate, worker 0's blocks API lists it with
the node's reason and its alert monitor tells a real local receiver about it exactly once."""

from __future__ import annotations

import contextlib
import json
import random
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from pool.chain.devnet_server import DevnetRpcServer, serve_devnet
from pool.config.chain import DevnetConfig
from pool.geo.country_ips import draw_ips
from pool.shares.blocks import RefusedBlock
from tests.admin.test_alerts import Receiver
from tests.chain.fixture_node import load_fixture
from tests.integration.conftest import Fleet
from tests.integration.support import (
    ADMIN,
    DEVNET_NBITS,
    Api,
    Miner,
    base_config,
    free_port,
    wait_for,
    write_config,
)
from tests.integration.test_workers import connected, pool_processes, snapshots_count

pytestmark = pytest.mark.timeout(150)
REFUSAL = load_fixture("submitblock_bad_merkle_root")


class RefusingNode:
    """The devnet's JSON-RPC behind a front that answers submitblock as Bitcoin Core did for a block
    whose merkle root is wrong (the recorded status, content type and body; only the id is the caller's),
    and passes every other call through."""

    def __init__(self, devnet: DevnetRpcServer) -> None:
        self.devnet = devnet
        self.refused: list[str] = []            # the block hex of every submitblock refused
        self.runner: web.AppRunner | None = None
        self.session: aiohttp.ClientSession | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        call = json.loads(body) if body.startswith(b"{") else None
        if call is not None and call.get("method") == "submitblock":
            self.refused.append(call["params"][0])
            reply = REFUSAL["response"]
            text = re.sub(r'"id":\d+', f'"id":{json.dumps(call["id"])}', reply["body"], count=1)
            return web.Response(status=reply["status"], body=text.encode(),
                                content_type=reply["headers"]["Content-Type"])
        assert self.session is not None
        async with self.session.post(self.devnet.url, data=body, headers={
                "Authorization": request.headers.get("Authorization", ""),
                "Content-Type": "application/json"}) as answer:
            return web.Response(status=answer.status, body=await answer.read(),
                                content_type=answer.content_type)

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.session is not None:
            await self.session.close()

    def node(self) -> dict[str, Any]:
        return {"url": f"http://127.0.0.1:{self.port}/", "user": self.devnet.user, "password": self.devnet.password,
                "name": "core"}


@contextlib.asynccontextmanager
async def refusing_node() -> AsyncIterator[RefusingNode]:
    devnet = await serve_devnet(DevnetConfig(nbits=DEVNET_NBITS, tx_interval=1.0), port=0)
    front = RefusingNode(devnet)
    await front.start()
    try:
        yield front
    finally:
        await front.stop()
        await devnet.stop()


async def refused_in_redis(client: aioredis.Redis) -> list[RefusedBlock]:
    decoder = msgspec.json.Decoder(RefusedBlock)
    return [decoder.decode(raw) for raw in await client.zrange("{gs:pay}:refused", 0, -1)]


async def test_a_refused_block_on_any_worker_is_listed_and_alerted_once(redis_url: str, tmp_path: Path,
                                                                        fleet: Fleet) -> None:
    stratum, admin = free_port(), free_port()
    receiver = Receiver()
    await receiver.start()
    client = aioredis.Redis.from_url(redis_url)
    async with refusing_node() as node:
        data = base_config(redis_url, tmp_path, stratum_port=stratum, admin_port=admin)
        data["chain"] = {"backend": "bitcoind", "network": "devnet", "nodes": [node.node()], "longpoll": False,
                         "poll_interval": 0.5, "submit_retries": 0, "confirm_delay": 0.0}
        data["alerts"] = {"check_interval_seconds": 0.2, "worker_offline_minutes": 0.05, "targets": [
            {"name": "ops", "url": receiver.url + "/hook", "rate_limit_per_minute": 6000.0,
             "rate_limit_burst": 1000}]}
        config_path = write_config(tmp_path / "pool.toml", data)
        log_path = tmp_path / "pool.log"
        ips = draw_ips("DE", 16, random.Random(5))
        try:
            async with pool_processes(config_path, log_path), aiohttp.ClientSession() as session:
                api = Api(session, f"http://127.0.0.1:{admin}")
                try:
                    await wait_for(lambda: snapshots_count(client, 2), 40, "both workers' snapshots", interval=0.3)
                except AssertionError:
                    raise AssertionError(log_path.read_text()[-3000:]) from None
                # Miners until both processes hold one (the kernel spreads SO_REUSEPORT connections).
                miners: list[Miner] = []
                while True:
                    for _ in range(2):
                        i = len(miners)
                        miners.append(fleet.add(Miner("127.0.0.1", stratum, f"kai.rig{i}", public_ip=ips[i],
                                                      source_address=f"127.0.0.{10 + i}")))
                    nodes = await wait_for(lambda: connected(client, len(miners)), 20, "snapshots with every miner")
                    if all(n.rows for n in nodes.values()) or len(miners) >= len(ips) - 1:
                        break
                name_of = {n.worker_index: name for name, n in nodes.items()}
                assert all(n.rows for n in nodes.values()), "the kernel put every miner on one process"

                # Refused candidates from both processes reach Redis; then the miners stop.
                async def from_both() -> bool:
                    return {b.node for b in await refused_in_redis(client)} >= set(name_of.values())
                await wait_for(from_both, 60, "refused candidates from both workers", interval=0.2)
                for miner in miners:
                    await miner.finish()
                # The offline alerts come many checks after the last candidate, and one target's queue
                # is sent in order: once they are in, every alert about a candidate has been sent.
                names = {m.username for m in miners}

                def offline() -> set[str]:
                    return {json.loads(b)["worker"] for _, _, b in receiver.requests
                            if json.loads(b)["event"] == "worker_offline"}
                await wait_for(lambda: offline() >= names, 30, "every miner's offline alert")

                refused = await refused_in_redis(client)
                assert len(refused) == len(node.refused) and {b.reason for b in refused} == {"bad-txnmrklroot"}
                assert {b.node for b in refused} == set(name_of.values())
                # The blocks API of worker 0 lists each, whichever process found it, with the node's reason.
                listed = await api.get("/api/v1/blocks?limit=100", ADMIN)
                rows = {b["hash"]: b for b in listed}
                assert set(rows) == {b.block_hash for b in refused}
                assert all((r["status"], r["reason"]) == ("rejected", "bad-txnmrklroot") for r in rows.values())
                # One alert per candidate, no more.
                alerts = [json.loads(b) for _, _, b in receiver.requests]
                said = Counter(a["details"]["hash"] for a in alerts if a["event"] == "block_rejected")
                assert said == Counter({b.block_hash: 1 for b in refused})
                one = next(a for a in alerts if a["event"] == "block_rejected")
                assert one["message"].endswith("refused by the node: bad-txnmrklroot.")
                assert one["details"]["reason"] == "bad-txnmrklroot"
        finally:
            await receiver.stop()
            await client.aclose()
    assert "Traceback" not in log_path.read_text()
