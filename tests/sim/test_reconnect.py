"""The simulated miner reconnects like firmware: a connection the pool closes is opened again and the
subscribe carries the last session id, so the pool gives the same extranonce1 back; stop() waits for
the answers to submitted shares. Against a real StratumServer over loopback sockets."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from pool.sim.client import StratumClient
from pool.stratum.events import ShareRecord
from pool.stratum.server import StratumServer
from tests.stratum.support import TestJobSource, config, make_job
from tests.support.waiting import wait_for


async def test_a_kicked_miner_reconnects_and_resumes_its_extranonce1() -> None:
    jobs = TestJobSource()
    jobs.publish(make_job("j1"))
    shares: list[ShareRecord] = []
    # ~20 shares/s from 20 kH/s: difficulty x 2^32 hashes per share.
    server = StratumServer(config(difficulty=2e-7, min_difficulty=1e-9), jobs, on_share=shares.append,
                           validate_account=lambda account: True, node="reconnect-test")
    await server.start()
    events: list[tuple[str, dict[str, Any]]] = []
    miner = StratumClient("127.0.0.1", server.config.ports[0].port, "acct.rig", hashrate=20_000.0, reconnect=True,
                          reconnect_delay=0.05, rng=random.Random(1), on_event=lambda k, f: events.append((k, f)))
    task = asyncio.ensure_future(miner.run())
    try:
        await wait_for(lambda: miner.stats.accepted >= 2, 20, "accepted shares on the first connection")
        first = next(f for k, f in events if k == "subscribed")
        assert server.kick("acct.rig") == 1
        await wait_for(lambda: any(k == "disconnected" for k, _ in events), 10, "the miner to see the close")
        before = miner.stats.accepted
        await wait_for(lambda: miner.stats.accepted > before, 20, "shares on the new connection")
        second = [f for k, f in events if k == "subscribed"][-1]
        assert second["resumed"] and (second["extranonce1"], second["session_id"]) == (
            first["extranonce1"], first["session_id"])
        miner.stop()
        stats = await asyncio.wait_for(task, 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop(timeout=1.0)
    assert (stats.connections, stats.resumed, stats.rejected) == (2, 1, 0)
    # Every share the miner saw accepted was taken by the pool; the pool may also have taken some whose
    # answer the kick cut off.
    assert stats.accepted <= len(shares) <= stats.accepted + stats.unanswered


async def test_a_reconnecting_fleet_comes_back_after_the_pool_closed_every_connection() -> None:
    """`geostratum simulate --reconnect`: FleetConfig.reconnect reaches every miner."""
    from pool.sim.fleet import FleetConfig, plan_fleet, run_fleet

    jobs = TestJobSource()
    jobs.publish(make_job("j1"))
    shares: list[ShareRecord] = []
    server = StratumServer(config(difficulty=2e-7, min_difficulty=1e-9), jobs, on_share=shares.append,
                           validate_account=lambda account: True, node="reconnect-test")
    await server.start()
    fleet = FleetConfig(port=server.config.ports[0].port, miners=3, hashrate=20_000.0, countries={"DE": 1.0},
                        duration=30.0, reconnect=True)
    run = asyncio.ensure_future(run_fleet(fleet, plan_fleet(fleet, None), report=lambda line: None))
    try:
        await wait_for(lambda: len({s.worker for s in shares}) == 3, 20, "shares from every miner")
        count = len(shares)
        for worker in {s.worker for s in shares}:
            assert server.kick(worker) == 1
        await wait_for(lambda: len({s.worker for s in shares[count:]}) == 3, 20, "every miner back")
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await server.stop(timeout=1.0)
