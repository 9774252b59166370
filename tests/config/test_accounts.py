"""Which usernames authorize: payout addresses of the configured network, or names where allowed."""

from __future__ import annotations

import pytest

from pool import config
from pool.app import account_is_valid

MAINNET = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
REGTEST = "bcrt1qm2n8duyglvgeh4dvztaf4jl8gm50njj4y7pums"


def _config(network: str, mode: str = "pool", named: bool = False) -> config.Config:
    return config.from_dict({"chain": {"network": network, "mode": mode, "backend": "bitcoind",
                                       "nodes": [{"url": "http://127.0.0.1:8332"}],
                                       "pool_address": MAINNET if network == "mainnet" else ""},
                             "payouts": {"named_accounts": named}})


@pytest.mark.parametrize(("network", "mode", "named", "username", "ok"), [
    ("mainnet", "pool", False, f"{MAINNET}.rig1", True),
    ("mainnet", "pool", False, "alice.rig1", False),          # a name is not payable
    ("mainnet", "pool", False, f"{REGTEST}.rig1", False),     # wrong network
    ("mainnet", "pool", True, "alice.rig1", True),            # operator maps names to addresses
    ("mainnet", "solo", True, "alice.rig1", False),           # SOLO pays the finder: always an address
    ("regtest", "solo", False, REGTEST, True),
    ("devnet", "pool", False, "sim3.rig3", True),
    ("devnet", "pool", False, ".rig3", False),
])
def test_account_rules(network: str, mode: str, named: bool, username: str, ok: bool) -> None:
    assert account_is_valid(_config(network, mode, named), username) is ok
