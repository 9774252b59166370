"""`geostratum payouts`: balances, a batch exported as JSON + CSV, paid once with the wallet's sendmany."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from pool.cli import main
from pool.config.ledger import PayoutConfig
from tests.ledger.support import flush_until_done, make_ledger
from tests.ledger.test_payouts import BLOCK, REWARD, Node, share
from tests.ledger.wallet_standin import WalletStandIn

ALICE = "bcrt1qm2n8duyglvgeh4dvztaf4jl8gm50njj4y7pums"    # real regtest addresses (tests/data/fixtures)
BOB = "bcrt1qyq5ygr4caxu0jec7dvlqx3hq7p5jl2zykefnf5"


async def test_payout_commands_pay_each_address_once(redis_url: str, journal_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    node = Node()
    ledger = make_ledger(journal_dir, redis_url, payouts=PayoutConfig(fee_percent=0.0), confirmations=node)
    await ledger.start()
    base = time.time() - 60
    for account, difficulty in ((ALICE, 600), (BOB, 400), ("not-an-address", 1)):
        ledger.add(share(account, difficulty, base))
    await flush_until_done(ledger)
    await ledger.record_block(BLOCK, 100, ALICE, f"{ALICE}.rig0", REWARD, network_difficulty=100, found_at=base + 1)
    await flush_until_done(ledger)
    node.confirmations[BLOCK] = 100
    await ledger.watcher.poll_once()  # type: ignore[union-attr]
    await ledger.stop()

    wallet = WalletStandIn()
    await wallet.start()
    config = tmp_path / "pool.toml"
    config.write_text(f"""
[chain]
backend = "bitcoind"
network = "regtest"
[[chain.nodes]]
url = "{wallet.url.rstrip('/')}"
user = "pool"
password = "pool"
[redis]
url = "{redis_url}"
[payouts]
wallet = "pool"
fee_percent = 0.0
""")

    async def cli(*args: str) -> tuple[int, str]:
        code = await asyncio.to_thread(main, ["payouts", "--config", str(config), *args])
        return code, capsys.readouterr().out

    try:
        code, out = await cli("balances")
        assert code == 0 and ALICE in out and BOB in out
        code, out = await cli("create", "--threshold", "1000", "--out", str(tmp_path / "exports"))
        assert code == 0, out
        key = re.search(r"batch ([0-9a-f]{32})", out).group(1)  # type: ignore[union-attr]
        assert (tmp_path / "exports" / f"payout-{key}.csv").read_text().startswith("account,address,amount_sat")
        code, out = await cli("send", key)
        assert code == 0 and "paid in" in out
        txid = out.split()[-1]
        code, out = await cli("send", key)                 # a retry: no second payment
        assert code == 0 and out.split()[-1] == txid
        code, out = await cli("list")
        assert key in out and "sent" in out
    finally:
        await wallet.stop()
    (params,) = wallet.sends()
    assert set(params[1]) == {ALICE, BOB}                   # the non-address account is not paid
    # PPLNS with no fee: the 50 BTC split 600:400 (the 1-difficulty share of the non-address aside)
    amounts = {address: float(value) for address, value in params[1].items()}
    assert amounts[ALICE] == pytest.approx(50 * 600 / 1001, abs=1e-8)
    assert amounts[BOB] == pytest.approx(50 * 400 / 1001, abs=1e-8)
