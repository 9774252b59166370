"""`geostratum payouts` as a newcomer runs it (the real CLI in a subprocess, the books in a real
PostgreSQL): --config wherever it is put, the balances as a table in BTC with its total, --threshold in
BTC or sat, and a mistyped amount or option refused in one line."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg
import pytest

from pool.bitcoin.amount import btc_amount, parse_sat
from tests.money.test_payments import ALICE, BOB, credited


async def geostratum(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "pool.cli", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def books_config(tmp_path: Path, dsn: str) -> str:
    path = tmp_path / "pool.toml"
    path.write_text(f'[chain]\nbackend = "bitcoind"\nnetwork = "regtest"\n[[chain.nodes]]\nurl = "http://127.0.0.1:9"\n'
                    f'[payouts]\nexport_dir = "{tmp_path / "exports"}"\nmaturity_confirmations = 3\n'
                    f'[money]\ndsn = "{dsn}"\n')
    return str(path)


async def test_balances_is_a_table_in_btc_with_its_total_wherever_config_goes(books_dsn: str,
                                                                               books_pool: asyncpg.Pool,
                                                                               tmp_path: Path) -> None:
    await credited(books_pool)     # alice 0.6 BTC + 123 msat, bob 0.4, not-an-address 1, the pool 0.01
    config = books_config(tmp_path, books_dsn)
    runs = await asyncio.gather(geostratum("payouts", "balances", "--config", config),
                                geostratum("--config", config, "payouts", "balances"),
                                geostratum("payouts", "--config", config, "balances"))
    assert [code for code, _, _ in runs] == [0, 0, 0], runs
    assert runs[0][1] == runs[1][1] == runs[2][1]
    lines = runs[0][1].splitlines()
    assert lines[0] == ("unpaid balances in BTC (PPLNS: a found block credits its miners at "
                        "payouts.maturity_confirmations = 3 confirmations; paid from payouts.threshold_sat = "
                        "0.01000000 BTC = 1,000,000 sat)")
    assert lines[1].split() == ["account", "BTC"]
    assert [line.split()[:2] for line in lines[2:]] == [
        ["not-an-address", "1.00000000"], [ALICE, "0.60000000"], [BOB, "0.40000000"], ["@pool", "0.01000000"],
        ["total", "2.01000000"]]
    assert lines[5].endswith("(the pool's fee account)")
    assert lines[6].endswith("(3 miner accounts 2.00000000 BTC + the pool's 0.01000000 BTC)")


@pytest.mark.parametrize(("threshold", "paid"), [("0.5BTC", [ALICE]), ("40000000sat", [ALICE, BOB]),
                                                 ("0.6 btc", [ALICE]), ("60000001sat", [])])
async def test_create_takes_the_threshold_in_btc_or_sat_and_says_it(books_dsn: str, books_pool: asyncpg.Pool,
                                                                     tmp_path: Path, threshold: str,
                                                                     paid: list[str]) -> None:
    await credited(books_pool)
    code, out, err = await geostratum("payouts", "create", "--threshold", threshold,
                                      "--config", books_config(tmp_path, books_dsn))
    assert (code, err) == (0, "")
    sat = parse_sat(threshold)
    said = f"{btc_amount(sat)} BTC = {sat:,} sat"
    if not paid:     # alice holds 0.6 BTC + 123 msat: whole satoshis count, 60,000,001 sat is more
        assert out == f"no account with a payout address holds {said} or more; no batch made\n"
        return
    total = {ALICE: 60_000_000, BOB: 40_000_000}
    assert out.splitlines()[0].endswith(f": {len(paid)} payments, {btc_amount(sum(total[a] for a in paid))} BTC "
                                        f"(every account at or above {said})")


@pytest.mark.parametrize(("args", "error"), [
    (["--threshold", "0.01"], "argument --threshold: '0.01': say the unit, 0.01BTC or 0.01sat"),
    (["--threshold", "0.000000001BTC"], "argument --threshold: '0.000000001BTC' is not a whole number of satoshis"),
    (["--threshold", "5mBTC"], "argument --threshold: '5mBTC': unknown unit 'mBTC' (BTC or sat)"),
    (["--threshold", "0sat"], "argument --threshold: '0sat': the threshold must be more than 0 sat"),
    (["--treshold", "1000"], "unrecognized arguments: --treshold 1000"),
])
async def test_a_bad_amount_or_option_is_one_line(tmp_path: Path, args: list[str], error: str) -> None:
    code, out, err = await geostratum("payouts", "create", *args, "--config", str(tmp_path / "unused.toml"))
    assert (code, out) == (2, "")
    assert err.startswith(f"geostratum payouts create: error: {error}")
    assert err.endswith("; see `geostratum payouts create --help`\n") and err.count("\n") == 1


async def test_config_on_a_command_that_reads_none_and_a_missing_action_are_one_line() -> None:
    code, _, err = await geostratum("--config", "pool.toml", "info")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("geostratum info: error: --config: info reads no config file")
    code, _, err = await geostratum("info", "--config", "pool.toml")
    assert code == 2
    assert err == "geostratum info: error: unrecognized arguments: --config pool.toml; see `geostratum info --help`\n"
    code, _, err = await geostratum("payouts", "--config", "pool.toml")
    assert code == 2 and err.count("\n") == 1
    assert "the following arguments are required: ACTION (one of: balances, list, create, export, send" in err
