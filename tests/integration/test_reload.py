"""Config reload under load: miners keep mining through it, nobody is disconnected, the new per-IP
limit and port difficulty are in force for new connections, keys that need a restart are named,
and a bad file is refused with the key and the reason while the running config stays."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.integration.conftest import Fleet
from tests.integration.support import (
    ADMIN,
    Miner,
    admin_api,
    base_config,
    running_pool,
    stratum_port,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.timeout(120)


async def test_reload_under_load_keeps_every_miner(redis_url: str, tmp_path: Path, fleet: Fleet) -> None:
    data = base_config(redis_url, tmp_path)
    # No block in this test: a block found mid-run sends clean_jobs, and a share in flight for the old
    # job is then rightly "Stale"; the test is about reloads costing no share.
    data["chain"]["devnet"]["nbits"] = "1d00ffff"
    config_path = write_config(tmp_path / "pool.toml", data)
    async with running_pool(config_path) as app, admin_api(app) as api:
        assert app.server is not None and app.admin is not None
        port = stratum_port(app)
        miners = [fleet.add(Miner("127.0.0.1", port, f"gus.rig{i}")) for i in range(3)]
        await wait_for(lambda: all(m.stats.accepted >= 2 for m in miners), 20, "every miner's shares")

        changed = copy.deepcopy(data)
        changed["stratum"]["limits"]["max_connections_per_ip"] = 3
        changed["stratum"]["ports"][0].update(start_difficulty=4e-6, min_difficulty=2e-7)
        changed["stratum"]["notify_interval"] = 20.0
        changed["admin"]["rate_limit_burst"] = 500
        changed["ledger"]["flush_interval_ms"] = 200
        write_config(config_path, changed)
        before = [m.stats.accepted for m in miners]
        status, result = await api.call("POST", "/api/v1/reload", ADMIN)
        assert status == 200 and result["ok"] is True and result["error"] == ""
        assert sorted(result["applied"]) == ["admin.rate_limit_burst", "stratum.limits.max_connections_per_ip",
                                             "stratum.ports[0].min_difficulty", "stratum.ports[0].start_difficulty"]
        assert sorted(result["requires_restart"]) == ["ledger.flush_interval_ms", "stratum.notify_interval"]
        assert app.server.config.limits.max_connections_per_ip == 3
        assert app.admin.ctx.config.rate_limit_burst == 500
        assert app.config.ledger.flush_interval_ms == 100                 # still the running value

        # The limit is in force: a fourth connection from 127.0.0.1 is refused ...
        crowd = fleet.add(Miner("127.0.0.1", port, "gus.rig3"))
        await wait_for(lambda: crowd.disconnected, 10, "the connection over the per-IP limit to be refused")
        assert crowd.stats.accepted == 0
        # ... while another address connects and gets the new start difficulty.
        newcomer = fleet.add(Miner("127.0.0.1", port, "gus.rig4", source_address="127.0.0.2"))
        await wait_for(lambda: newcomer.stats.accepted >= 1, 20, "shares from the newcomer")
        assert newcomer.stats.difficulty == 4e-6
        ports = await api.get("/api/v1/ports")
        assert ports[0]["start_difficulty"] == 4e-6 and ports[0]["min_difficulty"] == 2e-7
        assert ports[0]["connections"] == 4

        # A bad file is refused with the key and why; nothing changes.
        config_path.write_text(config_path.read_text().replace("max_connections_per_ip = 3",
                                                               "max_connections_per_ip = 0"))
        status, body = await api.call("POST", "/api/v1/reload", ADMIN)
        assert status == 422 and body["error"] == "config_invalid"
        assert body["reason"] == "stratum.limits.max_connections_per_ip: must be > 0, got 0"
        assert app.server.config.limits.max_connections_per_ip == 3

        # Everyone who was mining kept mining through both reloads, and nobody was disconnected.
        await wait_for(lambda: all(m.stats.accepted >= b + 3 for m, b in zip(miners, before, strict=True)),
                       20, "more shares after the reloads")
        for miner in [*miners, newcomer]:
            assert not miner.disconnected
            await miner.finish()                                           # raises if the pool had closed it
            assert miner.stats.rejected == 0
