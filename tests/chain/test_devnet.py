"""The embedded devnet: a real mined block is accepted, each kind of bad block refused with Core's reason."""

from __future__ import annotations

import pytest

from pool.bitcoin.address import address_to_script
from pool.bitcoin.encoding import internal_to_display
from pool.chain.devnet import Devnet
from pool.chain.devnet_server import DevnetBackend
from pool.chain.rpc import RpcError
from pool.chain.submit import assemble_block
from pool.chain.template import JobBuilder, PayoutPolicy, prepare_template
from pool.chain.tx import parse_block
from pool.config.chain import DevnetConfig
from tests.chain.mining import mine_candidate, raw_block

ADDRESS = "bcrt1qyq5ygr4caxu0jec7dvlqx3hq7p5jl2zykefnf5"


@pytest.fixture
def devnet() -> Devnet:
    return Devnet(DevnetConfig(txs_per_block=8, seed=7))


def test_template_is_shaped_like_core_and_has_witness_transactions(devnet) -> None:
    gbt = devnet.template()
    assert gbt["height"] == 1 and gbt["bits"] == "207fffff" and gbt["rules"] == ["csv", "!segwit", "taproot"]
    assert len(gbt["transactions"]) == 8
    assert any(t["txid"] != t["hash"] for t in gbt["transactions"])
    assert any(t["txid"] == t["hash"] for t in gbt["transactions"])
    assert gbt["coinbasevalue"] == 50 * 10**8 + sum(t["fee"] for t in gbt["transactions"])
    template = prepare_template(gbt, "t")  # recomputes the commitment and checks it against the node's
    assert template.witness_commitment_script.hex() == gbt["default_witness_commitment"]


def test_a_share_mined_with_pool_native_is_accepted_as_the_new_tip(devnet) -> None:
    template = prepare_template(devnet.template(), "t1")
    builder = JobBuilder(extranonce_size=12, version_mask=0x1FFFE000, pool_tag=b"/geostratum/")
    payout = address_to_script(ADDRESS, "devnet")
    job = builder.build(template, PayoutPolicy(pool_script=payout).outputs(template.coinbase_value, None),
                        clean_jobs=True)
    candidate = mine_candidate(job)
    block = assemble_block(template, job, candidate)
    mempool_before = set(devnet.mempool)
    assert devnet.submit_block(block.block) is None
    assert devnet.height == 1 and devnet.tip.hash == block.block_hash
    assert devnet.tip.tx_count == 1 + template.tx_count
    assert not mempool_before & set(devnet.mempool)  # mined transactions left the mempool
    parsed = parse_block(block.block)
    assert parsed.transactions[0].outputs[0].script == payout
    assert devnet.template()["height"] == 2
    assert devnet.submit_block(block.block) == "duplicate"


BAD_BLOCKS = [
    ("high-hash", {"above_target": True}),
    ("bad-txnmrklroot", {"swap_root": True}),
    ("bad-cb-height", {"height": 0}),
    ("bad-cb-amount", {"value_delta": 1}),
    ("unexpected-witness", {"with_commitment": False}),
    ("bad-witness-merkle-match", {"commitment": bytes(32)}),
    ("bad-witness-nonce-size", {"reserved_value": bytes(33)}),
    ("prev-blk-not-found", {"prevhash": b"\x11" * 32}),
    ("bad-diffbits", {"nbits": 0x207FFFFE}),
    ("bad-txns-inputs-missingorspent", {"extra_tx": bytes.fromhex(
        "0200000001" + "ab" * 32 + "00000000" + "00" + "ffffffff" + "01" + "e803000000000000" + "0151" + "00000000")}),
]


@pytest.mark.parametrize(("reason", "breakage"), BAD_BLOCKS, ids=[r for r, _ in BAD_BLOCKS])
def test_each_kind_of_bad_block_is_refused_with_cores_reason(devnet, reason, breakage) -> None:
    raw = raw_block(devnet, **breakage)
    assert devnet.submit_block(raw) == reason
    assert devnet.height == 0  # nothing connected
    assert devnet.submit_block(raw_block(devnet)) is None  # the unbroken block still goes in


def test_time_rules(devnet) -> None:
    now = int(devnet.clock())
    assert devnet.submit_block(raw_block(devnet, ntime=now + 3 * 3600)) == "time-too-new"
    assert devnet.submit_block(raw_block(devnet, ntime=devnet.tip.median_time_past)) == "time-too-old"


def test_a_block_on_a_replaced_tip_is_stale(devnet) -> None:
    first = raw_block(devnet, tag=b"a")
    second = raw_block(devnet, tag=b"b")
    assert devnet.submit_block(first) is None
    assert devnet.submit_block(second) == "stale-prevblk"


def test_coinbase_bip34_small_heights_and_generate(devnet) -> None:
    for height in range(1, 18):
        block = devnet.generate()
        assert block.height == height
    assert devnet.block_at(17).hash == devnet.tip.hash
    header = devnet.header_json(devnet.block_at(5))
    assert header["height"] == 5 and header["nextblockhash"] == internal_to_display(devnet.block_at(6).hash)
    assert devnet.mining_info()["blocks"] == 17


def test_subsidy_halves() -> None:
    devnet = Devnet(DevnetConfig(halving_interval=2, txs_per_block=0))
    assert devnet.template()["coinbasevalue"] == 50 * 10**8
    devnet.generate()
    assert devnet.template()["coinbasevalue"] == 25 * 10**8


def test_mempool_trickles_on_the_clock() -> None:
    now = [1_800_000_000.0]
    devnet = Devnet(DevnetConfig(txs_per_block=1, tx_interval=10), clock=lambda: now[0])
    before = devnet.template()["longpollid"]
    now[0] += 11
    gbt = devnet.template()
    assert len(gbt["transactions"]) == 2 and gbt["longpollid"] != before


async def test_backend_errors_match_core_codes(devnet) -> None:
    backend = DevnetBackend(devnet)
    with pytest.raises(RpcError) as info:
        await backend.submitblock("00ff")
    assert info.value.code == -22 and info.value.message == "Block decode failed"
    with pytest.raises(RpcError) as info:
        await backend.getblockhash(5)
    assert info.value.code == -8
    with pytest.raises(RpcError) as info:
        await backend.getblockheader("00" * 32)
    assert info.value.code == -5
    with pytest.raises(RpcError) as info:
        await backend.getblocktemplate([])
    assert info.value.code == -8 and "segwit" in info.value.message
