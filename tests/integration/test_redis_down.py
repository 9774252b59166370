"""Redis goes away under a live pool: the admin API keeps answering from what this process knows,
controls act on this process and say the others were not told, health says why; miners keep
mining, and the journaled shares reach Redis when it is back."""

from __future__ import annotations

from pathlib import Path

import pytest

from pool.sim.redis_server import RedisProcess
from tests.integration.conftest import Fleet
from tests.integration.support import (
    ADMIN,
    Miner,
    admin_api,
    base_config,
    flushed,
    running_pool,
    stratum_port,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.timeout(120)


async def test_admin_without_redis(tmp_path: Path, fleet: Fleet) -> None:
    redis = RedisProcess()
    redis.start()
    try:
        config_path = write_config(tmp_path / "pool.toml", base_config(redis.url, tmp_path))
        async with running_pool(config_path) as app, admin_api(app) as api:
            assert app.ledger is not None
            port = stratum_port(app)
            stays = fleet.add(Miner("127.0.0.1", port, "lena.rig1", public_ip="81.2.69.160"))
            goes = fleet.add(Miner("127.0.0.1", port, "lena.rig2"))
            await wait_for(lambda: stays.stats.accepted >= 2 and goes.stats.accepted >= 2, 20, "shares")

            redis.kill()
            await wait_for(lambda: not app.ledger.snapshot().redis_up, 10, "the ledger to notice")
            status, body = await api.call("POST", "/api/v1/workers/lena.rig2/kick", ADMIN)
            assert status == 200 and body["connections"] == 1                  # this process's connection
            await wait_for(lambda: goes.disconnected, 5, "the kicked miner to be disconnected")
            status, body = await api.call("POST", "/api/v1/bans", ADMIN,
                                          json={"target": "203.0.113.0/24", "reason": "abuse"})
            assert status == 201 and body["reason"].startswith("abuse [applied to this process only: Redis")
            status, body = await api.call("POST", "/api/v1/reload", ADMIN)
            assert status == 200 and body["ok"] is True and "Redis is unreachable" in body["error"]

            overview = await api.get("/api/v1/overview")
            assert overview["pool"]["connections"] == 1 and overview["pool"]["workers"] == 1
            assert overview["shares"]["accepted"] >= stays.stats.accepted
            status, health = await api.call("GET", "/api/v1/health", ADMIN)
            components = {c["name"]: c for c in health["components"]}
            assert status == 503 and components["redis"]["ok"] is False
            assert "not answering" in components["redis"]["detail"]
            status, metrics = await api.call("GET", "/metrics", ADMIN)
            assert status == 200 and b"geostratum_redis_up 0" in metrics

            mined = stays.stats.accepted
            await wait_for(lambda: stays.stats.accepted >= mined + 3, 20, "mining through the outage")
            redis.start()                                                       # same port, empty
            await wait_for(lambda: app.ledger.snapshot().redis_up, 20, "the ledger to reach Redis again")
            counted = stays.stats.accepted    # flushed() covers every share accepted before it is called
            await flushed(app)

            async def healthy() -> bool:
                status, _ = await api.call("GET", "/api/v1/health", ADMIN)
                return status == 200

            await wait_for(healthy, 10, "health to recover (the cluster link republishes within seconds)")
            shares, _ = await app.ledger.reader.totals()
            assert shares >= counted - mined                                    # the outage's shares arrived
            assert not stays.disconnected
            await stays.finish()
    finally:
        redis.stop()
