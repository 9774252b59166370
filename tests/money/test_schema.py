"""The books' schema: Alembic revisions applied by `geostratum db migrate`, recorded in schema_version."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg
import pytest

from pool.cli import main
from pool.money.schema import head_revision, migrate

TABLES = {"accounts", "journal", "entries", "payout_batches", "payout_payments", "schema_version"}


async def test_migrate_builds_the_books_once_and_is_idempotent(empty_dsn: str) -> None:
    assert await migrate(empty_dsn) == (None, head_revision())
    assert await migrate(empty_dsn) == (head_revision(), head_revision())
    conn = await asyncpg.connect(empty_dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert {r["tablename"] for r in rows} >= TABLES
        assert [r["version_num"] for r in await conn.fetch("SELECT version_num FROM schema_version")] == ["0001"]
        # The counter-accounts exist once, at zero.
        assert await conn.fetchval("SELECT count(*) FROM accounts WHERE name LIKE '@%' AND balance_msat = 0") == 6
    finally:
        await conn.close()


async def test_two_processes_migrating_at_once_both_succeed(empty_dsn: str, tmp_path: Path) -> None:
    config = _config(tmp_path, empty_dsn)
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pool.cli", "db", "--config", str(config), "migrate",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for _ in range(2)]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 60)
    assert [p.returncode for p in procs] == [0, 0], outputs
    said = sorted(out.decode().split(" (")[0] for out, _ in outputs)
    assert said == ["schema already at 0001", "schema migrated from empty to 0001"]


def _config(tmp_path: Path, dsn: str) -> Path:
    path = tmp_path / "pool.toml"
    path.write_text(f'[money]\ndsn = "{dsn}"\n')
    return path


async def test_db_cli_migrates_then_reports_the_revision(empty_dsn: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = str(_config(tmp_path, empty_dsn))
    assert await asyncio.to_thread(main, ["db", "--config", config, "status"]) == 1
    assert "schema at empty; this version needs 0001 (run `geostratum db migrate`)" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["db", "--config", config, "migrate"]) == 0
    assert "schema migrated from empty to 0001" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["db", "--config", config, "migrate"]) == 0
    assert "schema already at 0001" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["db", "--config", config, "status"]) == 0
    assert capsys.readouterr().out.strip() == "schema at 0001; this version needs 0001"


def test_db_cli_names_the_missing_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pool.toml"
    path.write_text("[money]\n")
    assert main(["db", "--config", str(path), "migrate"]) == 2
    assert "money.dsn" in capsys.readouterr().err
    path.write_text('[money]\ndsn = "mysql://x"\n')
    assert main(["db", "--config", str(path), "migrate"]) == 2
    assert "config error: money.dsn: must start with postgresql://" in capsys.readouterr().err
    path.write_text(f'[money]\ndsn = "postgresql://u@127.0.0.1/db"\npassword_file = "{tmp_path}/nope"\n')
    assert main(["db", "--config", str(path), "migrate"]) == 2
    assert "config error: money.password_file:" in capsys.readouterr().err


def test_db_cli_unreachable_server_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pool.sim.redis_server import free_port

    path = _config(tmp_path, f"postgresql://postgres@127.0.0.1:{free_port()}/books")
    assert main(["db", "--config", str(path), "status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cannot use the books' database:") and err.count("\n") == 1


def test_password_file_gives_the_first_line(tmp_path: Path) -> None:
    from pool import config as config_module

    secret = tmp_path / "books-password"
    secret.write_text("s3cret\n")
    config = config_module.from_dict({"money": {"dsn": "postgresql://u@127.0.0.1/db", "password_file": str(secret)}})
    assert config.money.password() == "s3cret"
    assert config_module.from_dict({}).money.password() is None
    with pytest.raises(config_module.ConfigError, match=r"money\.password_file: is set but money\.dsn is empty"):
        config_module.from_dict({"money": {"password_file": str(secret)}})
    with pytest.raises(config_module.ConfigError, match=r"money\.move_interval_s: must be > 0"):
        config_module.from_dict({"money": {"dsn": "postgresql://u@h/db", "move_interval_s": 0}})
