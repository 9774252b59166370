"""Redis can lose writes it acknowledged (a failover to a replica that lagged, a restart with
appendfsync everysec). The ledger had committed those batches already; after the outage it applies
its recent batches again, and the books come out exact. Here a real redis-server comes back from a
snapshot older than the last 1,000 shares it acknowledged."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.ledger.support import expected_countries, expected_totals, flush_until_done, make_ledger, read_totals, record
from tests.support.redis_server import RedisProcess
from tests.support.waiting import wait_for


@pytest.mark.parametrize(("replay_seconds", "booked"), [(30.0, 1500), (0.0, 500)])
async def test_acknowledged_writes_redis_lost_are_applied_again(journal_dir: Path, replay_seconds: float,
                                                                 booked: int) -> None:
    server = RedisProcess()
    server.start()
    try:
        snapshot = redis.Redis.from_url(server.url)
        snapshot.save()                    # dump.rdb holds empty books: what the lagging copy has
        snapshot.close()
        ledger = make_ledger(journal_dir, server.url, replay_after_outage_s=replay_seconds)
        await ledger.start()
        for i in range(1000):
            ledger.add(record(i))
        await flush_until_done(ledger)
        assert read_totals(server.url)[0] == 1000          # acknowledged, committed in the journal
        server.kill()
        for i in range(1000, 1500):
            ledger.add(record(i))
        await wait_for(lambda: not ledger.snapshot().redis_up, 15, "the ledger to notice the outage")
        server.start()                     # same port and folder: it loads the older snapshot
        await flush_until_done(ledger)
        stats = ledger.snapshot()
        await ledger.stop()
        shares, difficulty, per_account, countries = read_totals(server.url)
    finally:
        server.stop()
    assert shares == booked                # with the replay off, the first 1,000 are gone for good
    if booked == 1500:
        assert (shares, difficulty, per_account) == expected_totals(1500)
        assert countries == expected_countries(1500)
        assert stats.groups_restored > 0


async def test_writes_lost_without_an_error_are_noticed_and_applied_again(journal_dir: Path) -> None:
    """A failover the cluster client rides through (its retries hide the dead master) or a restart
    between two batches shows the ledger no error at all. Each group checks that the previous group
    in its slot is still in Redis; here Redis reloads an older snapshot in place (DEBUG RELOAD NOSAVE:
    every connection stays up) after acknowledging 1,000 shares, and the next batch notices."""
    server = RedisProcess(extra_args=("--enable-debug-command", "local"))
    server.start()
    try:
        admin = redis.Redis.from_url(server.url)
        admin.save()                       # dump.rdb holds empty books
        ledger = make_ledger(journal_dir, server.url)
        await ledger.start()
        for i in range(1000):
            ledger.add(record(i))
        await flush_until_done(ledger)
        assert read_totals(server.url)[0] == 1000
        admin.execute_command("DEBUG", "RELOAD", "NOSAVE")
        assert read_totals(server.url)[0] == 0          # acknowledged, then gone, and no error seen
        admin.close()
        for i in range(1000, 1500):
            ledger.add(record(i))
        await flush_until_done(ledger)
        stats = ledger.snapshot()
        await ledger.stop()
        shares, difficulty, per_account, countries = read_totals(server.url)
    finally:
        server.stop()
    assert stats.redis_up and stats.groups_restored > 0, stats
    assert (shares, difficulty, per_account) == expected_totals(1500)
    assert countries == expected_countries(1500)
