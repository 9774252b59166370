"""End to end: `geostratum simulate` as its own process (real hashing miners behind PROXY v2 headers
with real public IPs) mines against the pool on the devnet; the devnet accepts the blocks, the chain
grows by exactly them, and the ledger and the admin API list them."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from pool.bitcoin.encoding import internal_to_display
from tests.integration.support import admin_api, base_config, flushed, running_pool, stratum_port, write_config

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]


async def test_simulated_fleet_process_mines_blocks_on_the_devnet(redis_url: str, tmp_path: Path) -> None:
    config_path = write_config(tmp_path / "pool.toml", base_config(redis_url, tmp_path))
    async with running_pool(config_path) as app, admin_api(app) as api:
        assert app.jobs is not None and app.ledger is not None
        devnet = app.jobs.devnet
        start_height = devnet.height
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pool.cli", "simulate", "--host", "127.0.0.1", "--port", str(stratum_port(app)),
            "--miners", "3", "--hashrate", "50000", "--duration", "8", "--proxy", "v2",
            "--countries", "DE=1,US=1,JP=1", "--account-prefix", "sim", "--seed", "5",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()[-2000:]
        done = re.search(r"fleet done: (\d+) miners, (\d+) accepted, (\d+) rejected, (\d+) block candidates",
                         out.decode())
        assert done, out.decode()
        miners, accepted, _, candidates = map(int, done.groups())
        assert miners == 3 and accepted > 0 and candidates > 0

        await flushed(app)
        blocks = [b for b in app.blocks if b.accepted]
        assert blocks and len(blocks) <= candidates
        # The chain grew by exactly the pool's blocks (nothing else mines on the devnet) ...
        assert devnet.height == start_height + len(blocks)
        for result in blocks:
            assert internal_to_display(devnet.block_at(result.height).hash) == result.block_hash
        # ... and the ledger has each of them, as the admin API shows.
        recorded = {b.block_hash: b for b in await app.ledger.reader.blocks(limit=100)}
        assert {b.block_hash for b in blocks} == set(recorded)
        listed = await api.get("/api/v1/blocks?limit=100")
        assert {b["hash"] for b in listed} == set(recorded)
        assert all(b["status"] == "pending" and b["account"].startswith("sim") for b in listed)

        # The fleet stops at --duration as at Ctrl-C, after the answers to its shares in flight: what it
        # was told accepted is exactly what the pool's books hold.
        shares, _ = await app.ledger.reader.totals()
        assert shares == accepted
        regions = await api.get("/api/v1/regions?level=country&window=5m")
        assert {"DE", "US", "JP"} <= {r["country"] for r in regions["items"]}
