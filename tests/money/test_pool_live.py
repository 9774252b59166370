"""A pool on the embedded devnet with its books in PostgreSQL: found blocks mature into journal credits,
the admin API's balances and /metrics read the books, and the books balance throughout."""

from __future__ import annotations

import random
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pool.money.books import BLOCK_REWARDS, Books
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
from tests.support.books import money_keys_in_redis

pytestmark = pytest.mark.timeout(120)


async def test_matured_blocks_credit_the_books_and_the_api_reads_them(
        redis_url: str, tmp_path: Path, fleet: Fleet, books_dsn: str, books_pool: asyncpg.Pool) -> None:
    config = base_config(redis_url, tmp_path, books_dsn=books_dsn)
    config["payouts"] = {"maturity_confirmations": 1, "named_accounts": True}
    async with running_pool(write_config(tmp_path / "pool.toml", config)) as app:
        assert app.money is not None
        port = stratum_port(app)
        for i, account in enumerate(["hana", "ivan"]):
            fleet.add(Miner("127.0.0.1", port, f"{account}.rig{i}", rng=random.Random(i)))
        # A block matures once another is mined on top of it; the watcher polls every second.
        await wait_for(lambda: books_pool.fetch("SELECT ref FROM journal WHERE kind = 'block_credit'"),
                       60, "a matured block in the books")
        books = Books(books_pool)
        async with books_pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            # One snapshot: more blocks mature while the test reads.
            credited = await conn.fetch("SELECT ref FROM journal WHERE kind = 'block_credit'")
            held = {r["name"]: r["balance_msat"] for r in await conn.fetch(
                "SELECT name, balance_msat FROM accounts WHERE balance_msat <> 0")}
        rewards = -held.pop(BLOCK_REWARDS)
        balances = held
        assert app.ledger is not None
        recorded = {b.block_hash: b for b in await app.ledger.reader.blocks(limit=1000)}
        assert rewards == sum(recorded[r["ref"]].reward_sat for r in credited) * 1000
        assert sum(balances.values()) == rewards                        # every credited satoshi is someone's
        assert await money_keys_in_redis(app.ledger.client, app.ledger.keys) == []   # none of it in Redis
        async with admin_api(app) as api:
            accounts = {a["account"]: a for a in (await api.get("/api/v1/accounts?sort=name&order=asc"))["items"]}
            live = await books.balances_of(list(accounts))
            for name, row in accounts.items():                          # the books move on between the reads
                assert balances.get(name, 0) // 1000 <= row["balance_sat"] <= live.get(name, 0) // 1000
            assert any(row["balance_sat"] > 0 for row in accounts.values())
            health = {c["name"]: c for c in (await api.get("/api/v1/health"))["components"]}
            assert health["books"]["ok"] and health["books"]["detail"].endswith("journal transactions, consistent")
            # The miner page's history is the account's journal lines.
            name = max(balances, key=lambda a: balances[a] if not a.startswith("@") else -1)
            page = (await api.get(f"/api/v1/accounts/{name}"))["miner"]
            lines = await books.lines(name)
            assert {(p["kind"], p["ref"]) for p in page["payouts"]} == {("block_credit", line.ref) for line in lines}
            assert sum(p["amount_msat"] for p in page["payouts"]) == await books.balance(name)
            assert all(isinstance(p["amount_msat"], int) for p in page["payouts"])
            summary = (await api.get(f"/api/v1/accounts/{name}"))["summary"]
            assert summary["paid_sat"] == 0 and accounts[name]["paid_sat"] == 0   # nothing paid yet: 0, not null
            async with aiohttp.ClientSession() as session, session.get(f"{app.admin.url}/metrics",
                                                                      headers=READ) as response:
                assert response.status == 200
                text = await response.text()
        figures = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name.startswith("geostratum_books")}
        assert figures["geostratum_books_up"] == 1 and figures["geostratum_books_consistent"] == 1
        assert figures["geostratum_books_unpaid_balance_sat"] >= sum(v for k, v in balances.items()
                                                                     if not k.startswith("@")) / 1000
    assert (await Books(books_pool).snapshot()).consistent
