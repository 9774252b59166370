"""The test PostgreSQL helper: a real server on loopback that keeps committed data across a crash."""

from __future__ import annotations

import os

import asyncpg

from pool.sim.postgres_server import PostgresProcess


async def test_session_server_answers_on_loopback(postgres_server: PostgresProcess) -> None:
    conn = await asyncpg.connect(postgres_server.dsn)
    try:
        assert await conn.fetchval("SELECT inet_server_addr()::text") == "127.0.0.1/32"
        assert await conn.fetchval("SELECT inet_server_port()") == postgres_server.port
        assert await conn.fetchval("SELECT 6 * 7") == 42
    finally:
        await conn.close()


async def test_committed_rows_survive_a_crash_and_open_ones_do_not() -> None:
    server = PostgresProcess()
    server.start()
    try:
        conn = await asyncpg.connect(server.dsn)
        await conn.execute("CREATE TABLE t (v int)")
        await conn.execute("INSERT INTO t VALUES (1)")
        tx = conn.transaction()
        await tx.start()
        await conn.execute("INSERT INTO t VALUES (2)")  # never committed
        first_pid = server.pid
        server.kill()
        assert first_pid is not None
        try:
            os.kill(first_pid, 0)
            raise AssertionError("postmaster still running after kill()")
        except ProcessLookupError:
            pass
        conn.terminate()
        server.start()
        assert server.pid != first_pid
        conn = await asyncpg.connect(server.dsn)
        assert [r["v"] for r in await conn.fetch("SELECT v FROM t ORDER BY v")] == [1]
        await conn.close()
    finally:
        server.remove()
    assert not server.workdir.exists()
