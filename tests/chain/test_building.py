"""Encodings, addresses, merkle branches, coinbase layout and block assembly against real vectors."""

from __future__ import annotations

import json
import struct

import pytest

from pool.bitcoin.address import AddressError, address_to_script, is_valid_address
from pool.bitcoin.encoding import (
    ByteReader,
    bip34_height_push,
    display_to_internal,
    sha256d,
    stratum_prevhash,
)
from pool.chain.coinbase import CoinbaseOutput, build_coinbase, witness_serialization
from pool.chain.merkle import fold_branch, merkle_branch, merkle_root
from pool.chain.submit import AssemblyError, assemble_block
from pool.chain.template import JobBuilder, JobIdAllocator, PayoutPolicy, prepare_template
from pool.chain.tx import BlockHeader, parse_block, parse_transaction
from pool.chain.types import BlockCandidate, Job
from pool.native import check_share, prepare_job
from pool.native.work import target_bytes
from tests.support import paths

VECTORS = paths.VECTORS
FIXTURES = paths.FIXTURES

# --- BIP34 and byte orders ------------------------------------------------------------------------------

BIP34_TABLE = {  # stratum.md §6.2 (recomputed values)
    17: "0111", 127: "017f", 128: "028000", 255: "02ff00", 256: "020001", 32767: "02ff7f",
    32768: "03008000", 65535: "03ffff00", 8388607: "03ffff7f", 8388608: "0400008000",
    840000: "0340d10c", 900000: "03a0bb0d",
}


@pytest.mark.parametrize(("height", "expected"), sorted(BIP34_TABLE.items()))
def test_bip34_height_push_matches_the_table(height: int, expected: str) -> None:
    assert bip34_height_push(height).hex() == expected


@pytest.mark.parametrize("height", range(1, 17))
def test_small_heights_use_op_n_and_the_coinbase_pads_to_two_bytes(height: int) -> None:
    assert bip34_height_push(height) == bytes((0x50 + height,))
    split = build_coinbase(height=height, outputs=[CoinbaseOutput(1, b"\x51")], extranonce_size=8)
    script = parse_transaction(ByteReader(split.coinb1 + bytes(8) + split.coinb2)).inputs[0].script_sig
    assert script[:2] == bytes((0x50 + height, 0x00))


def test_stratum_prevhash_reverses_the_word_order_of_the_display_hash() -> None:
    display = "00000000440b921e1b77c6c0487ae5616de67f788f44ae2a5af6e2194d16b6f8"  # slush's testnet job
    internal = display_to_internal(display)
    assert internal.hex() == "f8b6164d19e2f65a2aae448f787fe66d61e57a48c0c6771b1e920b4400000000"
    assert stratum_prevhash(internal) == "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000"


# --- addresses (BIP173 / BIP350 vectors, base58 from Bitcoin Core's key_io tests) ------------------------

VALID_ADDRESSES = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "mainnet", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", "testnet",
     "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262"),
    ("bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y", "mainnet",
     "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("BC1SW50QGDZ25J", "mainnet", "6002751e"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "mainnet", "5210751e76e8199196d454941c45d1b3a323"),
    ("tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy", "signet",
     "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"),
    ("tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c", "testnet4",
     "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", "mainnet",
     "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"),
    # The recorded regtest wallet address of submitblock_valid, on regtest and on the devnet.
    ("bcrt1qyq5ygr4caxu0jec7dvlqx3hq7p5jl2zykefnf5", "regtest", "00142028440eb8e9b8f9671e6b3e0346e0f0692fa844"),
    ("bcrt1qyq5ygr4caxu0jec7dvlqx3hq7p5jl2zykefnf5", "devnet", "00142028440eb8e9b8f9671e6b3e0346e0f0692fa844"),
    ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "mainnet", "76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac"),
    ("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "mainnet", "a914b472a266d0bd89c13706a4132ccfb16f7c3b9fcb87"),
    ("mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", "testnet", "76a914243f1394f44554f4ce3fd68649c19adc483ce92488ac"),
    ("mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", "devnet", "76a914243f1394f44554f4ce3fd68649c19adc483ce92488ac"),
]


@pytest.mark.parametrize(("address", "network", "script"), VALID_ADDRESSES)
def test_valid_addresses_decode_to_their_script(address: str, network: str, script: str) -> None:
    assert address_to_script(address, network).hex() == script
    assert is_valid_address(address, network)


INVALID_ADDRESSES = [
    ("tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut", "mainnet"),  # unknown hrp
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd", "mainnet"),  # v1 with bech32
    ("tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf", "testnet"),  # v2 with bech32
    ("BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL", "mainnet"),  # v16 with bech32
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", "mainnet"),  # v0 with bech32m
    ("tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47", "testnet"),  # v0 with bech32m
    ("bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4", "mainnet"),  # bad checksum char
    ("BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R", "mainnet"),  # witness version 17
    ("bc1pw5dgrnzv", "mainnet"),  # 1-byte program
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav", "mainnet"),  # 41 bytes
    ("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", "mainnet"),  # v0 16-byte program
    ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq", "testnet"),  # mixed case
    ("bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du", "mainnet"),  # padding
    ("bc1gmk9yu", "mainnet"),  # empty data
    ("bcrt1qyq5ygr4caxu0jec7dvlqx3hq7p5jl2zykefnf5", "mainnet"),  # regtest address on mainnet
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "devnet"),  # mainnet address on the devnet
    ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "testnet"),  # mainnet base58 on testnet
    ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "mainnet"),  # base58 checksum
    ("0OIl", "mainnet"),
    ("", "mainnet"),
]


@pytest.mark.parametrize(("address", "network"), INVALID_ADDRESSES)
def test_invalid_addresses_are_refused(address: str, network: str) -> None:
    assert not is_valid_address(address, network)
    with pytest.raises(AddressError):
        address_to_script(address, network)


def test_testnet_p2sh_is_a_p2sh_script() -> None:
    script = address_to_script("2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc", "signet")
    assert script[:2] == b"\xa9\x14" and script[-1:] == b"\x87" and len(script) == 23
    assert not is_valid_address("2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc", "mainnet")


def test_unknown_network_is_an_error() -> None:
    with pytest.raises(AddressError, match="unknown network"):
        address_to_script("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "litecoin")


# --- merkle: the gbt_481829 vector ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def gbt_481829() -> dict:
    return json.loads((VECTORS / "gbt_481829.json").read_text())


@pytest.fixture(scope="module")
def template_481829(gbt_481829):
    return prepare_template(gbt_481829, "t481829")


def test_branch_root_and_commitment_of_block_481829(gbt_481829, template_481829) -> None:
    expected = gbt_481829["expected"]
    assert [b.hex() for b in template_481829.merkle_branches] == expected["merkle_branch_for_stratum"]
    coinbase_txid = sha256d(bytes.fromhex(gbt_481829["coinbase_reference"]["hex_nowitness"]))
    root = fold_branch(coinbase_txid, template_481829.merkle_branches)
    assert root == display_to_internal(expected["merkle_root"])
    assert root == merkle_root([coinbase_txid, *template_481829.txids])
    assert template_481829.witness_commitment_script.hex() == "6a24aa21a9ed" + expected["witness_commitment"]
    assert template_481829.witness_commitment_script.hex() == gbt_481829["default_witness_commitment"]


def test_block_481829_reassembles_byte_for_byte(gbt_481829, template_481829) -> None:
    raw = (VECTORS / "bitcoinj_block481829.dat").read_bytes()
    header = BlockHeader.parse(raw[:80])
    legacy = bytes.fromhex(gbt_481829["coinbase_reference"]["hex_nowitness"])
    cut = 60  # anywhere inside the scriptSig: the window is just 8 coinbase bytes
    job = _job_from_coinbase(template_481829, legacy[:cut], legacy[cut + 8 :], 8)
    candidate = _candidate(job, legacy[cut : cut + 4], legacy[cut + 4 : cut + 8], header.time, header.nonce,
                           header.version, header.hash)
    block = assemble_block(template_481829, job, candidate)
    assert block.block == raw
    assert block.hash_hex == gbt_481829["expected"]["block_hash"]
    assert block.coinbase_value == gbt_481829["coinbasevalue"]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33])
def test_branch_folds_to_the_full_tree_root(n: int) -> None:
    leaves = [sha256d(bytes([i, n])) for i in range(n + 1)]
    branch = merkle_branch(leaves[1:])
    assert fold_branch(leaves[0], branch) == merkle_root(leaves)
    assert len(branch) == (n).bit_length() if n else branch == []


# --- block assembly: submitblock_valid ------------------------------------------------------------------


def _job_from_coinbase(template, coinb1: bytes, coinb2: bytes, extranonce_size: int) -> Job:
    return Job(
        job_id="j1", prevhash=template.prevhash, coinb1=coinb1, coinb2=coinb2,
        merkle_branches=template.merkle_branches, version=template.version, nbits=template.nbits,
        ntime=template.curtime, height=template.height, clean_jobs=True,
        network_target=template.network_target, extranonce_size=extranonce_size, created_at=0.0,
        template_id=template.template_id,
    )


def _candidate(job: Job, en1: bytes, en2: bytes, ntime: int, nonce: int, version: int,
               header_hash: bytes) -> BlockCandidate:
    return BlockCandidate(
        job_id=job.job_id, template_id=job.template_id, extranonce1=en1, extranonce2=en2, ntime=ntime,
        nonce=nonce, version=version, header_hash=header_hash, height=job.height, worker="w1",
        account="acct", found_at=1.0,
    )


@pytest.fixture(scope="module")
def valid_submit() -> dict:
    return json.loads((FIXTURES / "submitblock_valid.json").read_text())


def test_submitblock_valid_rebuilds_exactly(valid_submit) -> None:
    template = prepare_template(valid_submit["template"], "t111")
    block_info = valid_submit["submitted_block"]
    legacy = bytes.fromhex(block_info["coinbase"]["hex_without_witness"])
    # scriptSig = 016f (height 111) | 08 <8-byte extranonce> | 0e <tag>: the window starts at byte 45.
    assert legacy[42:45].hex() == "016f08"
    job = _job_from_coinbase(template, legacy[:45], legacy[53:], 8)
    header = block_info["header"]
    hash_internal = display_to_internal(block_info["block_hash"])
    candidate = _candidate(job, legacy[45:49], legacy[49:53], header["time"], header["nonce"],
                           header["version"], hash_internal)
    block = assemble_block(template, job, candidate)
    assert block.block_hex == block_info["block_hex"]
    assert block.hash_hex == block_info["block_hash"]
    assert block.header.hex() == block_info["header_hex"]
    # The native share check, fed the same job, finds the same hash and calls it a block.
    prepared = prepare_job(job.coinb1, job.coinb2, template.merkle_branches_blob, template.prevhash,
                           job.version, job.nbits)
    digest, _, meets_network = check_share(prepared, legacy[45:49], legacy[49:53], header["time"],
                                           header["nonce"], 0, 0, target_bytes(template.network_target))
    assert digest == hash_internal and meets_network


def test_assembly_refuses_a_candidate_whose_hash_does_not_rebuild(valid_submit) -> None:
    template = prepare_template(valid_submit["template"], "t111")
    legacy = bytes.fromhex(valid_submit["submitted_block"]["coinbase"]["hex_without_witness"])
    job = _job_from_coinbase(template, legacy[:45], legacy[53:], 8)
    header = valid_submit["submitted_block"]["header"]
    wrong = _candidate(job, legacy[45:49], b"\xff" * 4, header["time"], header["nonce"], header["version"],
                       display_to_internal(valid_submit["submitted_block"]["block_hash"]))
    with pytest.raises(AssemblyError, match="rebuilt header"):
        assemble_block(template, job, wrong)
    short = _candidate(job, legacy[45:49], b"\x00", header["time"], 0, header["version"], bytes(32))
    with pytest.raises(AssemblyError, match="extranonce"):
        assemble_block(template, job, short)


def test_job_builder_coinbase_layout_on_the_recorded_template(valid_submit) -> None:
    template = prepare_template(valid_submit["template"], "t111")
    pool_script = address_to_script(valid_submit["payout"]["address"], "regtest")
    builder = JobBuilder(extranonce_size=12, version_mask=0x1FFFE000, pool_tag=b"/geostratum/",
                         job_ids=JobIdAllocator(epoch=0xBEEF))
    job = builder.build(template, PayoutPolicy(pool_script=pool_script).outputs(template.coinbase_value, None),
                        clean_jobs=True)
    assert job.job_id == "beef1" and builder.job_ids.next() == "beef2"
    coinbase = job.coinb1 + bytes(12) + job.coinb2
    tx = parse_transaction(ByteReader(coinbase))
    assert tx.is_coinbase and tx.version == 2 and tx.lock_time == 110
    assert tx.inputs[0].sequence == 0xFFFFFFFE
    script_sig = tx.inputs[0].script_sig
    assert script_sig.startswith(bytes.fromhex("016f0c") + bytes(12))
    assert script_sig.endswith(b"\x0c/geostratum/")
    assert [(o.value, o.script.hex()) for o in tx.outputs] == [
        (5000115598, valid_submit["payout"]["script_pubkey_hex"]),
        (0, valid_submit["template"]["default_witness_commitment"]),
    ]
    assert job.height == 111 and job.ntime == template.curtime and job.extranonce_size == 12
    assert witness_serialization(coinbase)[4:6] == b"\x00\x01"


def test_job_version_drops_bits_inside_the_rolling_mask() -> None:
    builder = JobBuilder(extranonce_size=8, version_mask=0x1FFFE000, pool_tag=b"")
    assert builder.job_version(0x30000000) == 0x20000000  # regtest's bit-28 testdummy signal
    assert builder.job_version(0x20000002) == 0x20000002


def test_solo_payout_splits_the_fee_exactly() -> None:
    pool, finder = b"\x51", b"\x52"
    policy = PayoutPolicy(pool_script=pool, fee_percent=2.0)
    outputs = policy.outputs(5_000_115_598, finder)
    assert outputs[0].script == finder and outputs[1].script == pool
    assert outputs[1].value == 5_000_115_598 * 20_000 // 1_000_000
    assert sum(o.value for o in outputs) == 5_000_115_598
    assert PayoutPolicy(pool_script=None).outputs(100, finder) == [CoinbaseOutput(100, finder)]
    with pytest.raises(ValueError):
        PayoutPolicy(pool_script=None).outputs(100, None)


def test_long_pool_tag_is_shortened_to_fit_100_bytes() -> None:
    split = build_coinbase(height=900000, outputs=[CoinbaseOutput(1, b"\x51")], extranonce_size=16,
                           tag=b"x" * 200, aux_flags=bytes(20))
    tx = parse_transaction(ByteReader(split.coinb1 + bytes(16) + split.coinb2))
    assert len(tx.inputs[0].script_sig) == 100
    assert split.tag == b"x" * 57
    alone = build_coinbase(height=900000, outputs=[CoinbaseOutput(1, b"\x51")], extranonce_size=8,
                           tag=b"x" * 200)
    assert alone.tag == b"x" * 75  # one direct push at most


def test_recorded_raw_block_parses_and_matches_the_submitted_hex(valid_submit) -> None:
    raw = bytes.fromhex(json.loads((FIXTURES / "getblock_raw.json").read_text())["response"]["body_json"]["result"])
    block = parse_block(raw)
    assert [internal_hash[::-1].hex() for internal_hash in (tx.txid for tx in block.transactions)] == (
        valid_submit["submitted_block"]["txids_in_block_order"])
    assert struct.unpack("<I", raw[76:80])[0] == valid_submit["submitted_block"]["header"]["nonce"]
