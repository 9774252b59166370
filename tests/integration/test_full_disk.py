"""The journal's disk fills under a live pool: shares that could not be made durable are answered as
rejected (never acknowledged), counted on /metrics, and mining carries on when the disk has room."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.conftest import Fleet
from tests.integration.support import (
    READ,
    Miner,
    admin_api,
    base_config,
    running_pool,
    stratum_port,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.timeout(60)


async def test_full_disk_shares_are_rejected_and_counted(redis_url: str, tmp_path: Path, fleet: Fleet) -> None:
    config_path = write_config(tmp_path / "pool.toml", base_config(redis_url, tmp_path))
    async with running_pool(config_path) as app, admin_api(app) as api:
        assert app.ledger is not None and app.server is not None
        miner = fleet.add(Miner("127.0.0.1", stratum_port(app), "fay.rig1"))
        await wait_for(lambda: miner.stats.accepted >= 2, 20, "shares")
        # /dev/full in place of the journal segment's descriptor: every write fails with ENOSPC.
        journal = app.ledger._journal
        saved = os.dup(journal._fd)
        full = os.open("/dev/full", os.O_WRONLY)
        try:
            os.dup2(full, journal._fd)
            await wait_for(lambda: miner.stats.reject_reasons.get("Share not recorded", 0) >= 3, 20,
                           "shares answered as not recorded")
        finally:
            os.dup2(saved, journal._fd)
            os.close(full)
            os.close(saved)
        accepted = miner.stats.accepted
        await wait_for(lambda: miner.stats.accepted >= accepted + 2, 20, "mining after the disk has room")
        await miner.finish()

        failures = app.server.snapshot().share_write_failures
        assert failures == miner.stats.reject_reasons["Share not recorded"]
        status, body = await api.call("GET", "/metrics", READ)
        assert status == 200
        lines = body.decode().splitlines()
        assert f'geostratum_shares_total{{result="rejected",reason="not-recorded"}} {failures}' in lines
        accepted_line = next(line for line in lines if line.startswith('geostratum_shares_total{result="accepted"'))
        assert int(accepted_line.rsplit(" ", 1)[1]) == miner.stats.accepted
