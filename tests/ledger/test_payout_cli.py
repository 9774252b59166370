"""`geostratum payouts` has no Redis fallback: a pool keeping balances without money.dsn is a config error
naming the key, and a SOLO pool (no balances, no database) says so in one line. The commands on the
PostgreSQL books: tests/money/test_payments.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from pool.cli import main


@pytest.mark.parametrize(("payouts", "message"), [
    ('scheme = "pplns"', "config error: money.dsn: payouts.scheme = 'pplns' keeps balances"),
    ('scheme = "solo"', "config error: money.dsn: is empty: a SOLO pool keeps no balances"),
])
@pytest.mark.parametrize("action", ["balances", "list", "create"])
def test_payouts_without_the_books_database_is_one_line(redis_url: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str], payouts: str,
                                                        message: str, action: str) -> None:
    config = tmp_path / "pool.toml"
    config.write_text(f'[chain]\nnetwork = "regtest"\n[redis]\nurl = "{redis_url}"\n[payouts]\n{payouts}\n')
    assert main(["payouts", "--config", str(config), action]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(message) and len(captured.err.strip().splitlines()) == 1
