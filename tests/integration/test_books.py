"""The books after a clean stop: the ledger's totals in Redis are exactly the shares the miners were
told were accepted (per account and for the whole pool), and the blocks it lists are on the chain."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from pool.shares.reader import LedgerReader
from tests.integration.conftest import Fleet
from tests.integration.support import Miner, base_config, running_pool, stratum_port, wait_for, write_config

pytestmark = pytest.mark.timeout(120)


async def test_ledger_totals_equal_what_miners_counted(redis_url: str, tmp_path: Path, fleet: Fleet) -> None:
    config_path = write_config(tmp_path / "pool.toml", base_config(redis_url, tmp_path))
    async with running_pool(config_path) as app:
        assert app.jobs is not None and app.ledger is not None
        port = stratum_port(app)
        miners = [fleet.add(Miner("127.0.0.1", port, f"{account}.rig{i}", rng=random.Random(i)))
                  for i, account in enumerate(["hana", "hana", "ivan"])]
        await wait_for(lambda: all(m.stats.accepted >= 5 for m in miners)
                       and any(b.accepted for b in app.blocks), 30, "shares and a block")
        for miner in miners:
            await miner.finish()                  # every submitted share answered, then disconnect
        blocks = [b for b in app.blocks if b.accepted]
        keys = app.ledger.keys
        ledger_config = app.ledger.config
    # The pool is stopped: the ledger flushed what it had.

    client = aioredis.Redis.from_url(redis_url)
    try:
        reader = LedgerReader(lambda: client, keys, ledger_config, app.ledger.payouts)
        shares, _ = await reader.totals()
        per_account = await reader.account_totals()
        recorded = {b.block_hash: b for b in await reader.blocks(limit=100)}
    finally:
        await client.aclose()
    assert shares == sum(m.stats.accepted for m in miners)
    assert per_account["hana"][0] == miners[0].stats.accepted + miners[1].stats.accepted
    assert per_account["ivan"][0] == miners[2].stats.accepted
    assert {b.block_hash for b in blocks} <= set(recorded)
    for block in blocks:
        assert recorded[block.block_hash].height == block.height
        assert recorded[block.block_hash].worker == block.worker
