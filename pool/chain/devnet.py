"""The embedded devnet: an in-process chain at a trivial difficulty (a plain state machine, no I/O).

It hands out getblocktemplate-shaped templates over a synthetic mempool (well-formed transactions,
about a third with witnesses) and accepts a block only after the checks Bitcoin Core makes that
matter to a pool: proof of work, prevhash = tip, nBits, time, merkle root, coinbase position,
length and BIP34 height, witness commitment, known transactions, coinbase value. Refusals use
Core's BIP22 reason strings. pool.chain.devnet_server puts an asyncio face and a JSON-RPC server on it.
"""

from __future__ import annotations

import random
import statistics
import struct
import time
from collections.abc import Callable
from typing import Any

import msgspec

from pool.bitcoin.encoding import (
    bip34_height_push,
    display_to_internal,
    internal_to_display,
    push_data,
    sha256d,
    varint,
)
from pool.chain.coinbase import CoinbaseOutput, build_coinbase
from pool.chain.merkle import WITNESS_COMMITMENT_HEADER, merkle_root, witness_commitment
from pool.chain.tx import Block, BlockHeader, parse_block
from pool.config.chain import DevnetConfig
from pool.native.work import target_from_nbits, target_to_difficulty

COIN = 100_000_000
MAX_FUTURE_BLOCK_TIME = 7200
MAX_BLOCK_WEIGHT = 4_000_000
MEDIAN_TIME_SPAN = 11
# Scripts of the synthetic world: outputs that nobody spends, paid by inputs nobody checks.
_OP_TRUE = b"\x51"

__all__ = ["COIN", "Devnet", "DevnetBlock", "MempoolTx"]


class DevnetBlock(msgspec.Struct, frozen=True, kw_only=True):
    hash: bytes  # internal order
    height: int
    header: BlockHeader
    tx_count: int
    size: int
    weight: int
    median_time_past: int
    chainwork: int


class MempoolTx(msgspec.Struct, frozen=True, kw_only=True):
    data: bytes
    txid: bytes
    wtxid: bytes
    fee: int
    weight: int


def _synthetic_transaction(rng: random.Random, with_witness: bool) -> tuple[bytes, bytes, int]:
    """(full serialization, legacy serialization, weight) of a plausible-looking 1-2 in, 2 out spend."""
    n_in = rng.randint(1, 2)
    inputs = b""
    witness = b""
    for _ in range(n_in):
        prevout = rng.randbytes(32) + struct.pack("<I", rng.randint(0, 3))
        if with_witness:
            inputs += prevout + b"\x00" + struct.pack("<I", 0xFFFFFFFD)
            witness += b"\x02" + push_data(rng.randbytes(71)) + push_data(b"\x02" + rng.randbytes(32))
        else:
            script_sig = push_data(rng.randbytes(71)) + push_data(b"\x03" + rng.randbytes(32))
            inputs += prevout + varint(len(script_sig)) + script_sig + struct.pack("<I", 0xFFFFFFFD)
    outputs = b""
    for _ in range(2):
        if rng.random() < 0.7:
            script = b"\x00\x14" + rng.randbytes(20)
        else:
            script = b"\x76\xa9\x14" + rng.randbytes(20) + b"\x88\xac"
        outputs += struct.pack("<q", rng.randint(10_000, 50 * COIN)) + varint(len(script)) + script
    version = struct.pack("<i", 2)
    body = varint(n_in) + inputs + b"\x02" + outputs
    lock_time = b"\x00\x00\x00\x00"
    legacy = version + body + lock_time
    full = version + b"\x00\x01" + body + witness + lock_time if with_witness else legacy
    return full, legacy, len(legacy) * 3 + len(full)


class Devnet:
    """One chain, one mempool; `clock` is injectable so tests can move time."""

    def __init__(self, config: DevnetConfig | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config or DevnetConfig()
        self.clock = clock
        self.nbits = int(self.config.nbits, 16)
        self.target = target_from_nbits(self.nbits)
        self._rng = random.Random(self.config.seed)
        self.chain: list[DevnetBlock] = []
        self.by_hash: dict[bytes, DevnetBlock] = {}
        self.mempool: dict[bytes, MempoolTx] = {}  # txid -> tx, insertion order = template order
        self.mempool_updates = 0
        self._last_trickle = clock()
        self.listeners: list[Callable[[DevnetBlock], None]] = []
        self._connect_genesis()
        self._refill_mempool(self.config.txs_per_block)

    # --- chain state -------------------------------------------------------------------------------------

    @property
    def tip(self) -> DevnetBlock:
        return self.chain[-1]

    @property
    def height(self) -> int:
        return self.tip.height

    @property
    def difficulty(self) -> float:
        return target_to_difficulty(self.target)

    @property
    def longpollid(self) -> str:
        return internal_to_display(self.tip.hash) + str(self.mempool_updates)

    def subsidy(self, height: int) -> int:
        halvings = height // self.config.halving_interval
        return 0 if halvings >= 64 else (50 * COIN) >> halvings

    def _median_time_past(self, upto: int | None = None) -> int:
        blocks = self.chain if upto is None else self.chain[: upto + 1]
        return int(statistics.median_low(b.header.time for b in blocks[-MEDIAN_TIME_SPAN:]))

    def _connect(self, header: BlockHeader, height: int, tx_count: int, size: int, weight: int) -> DevnetBlock:
        work = (1 << 256) // (target_from_nbits(header.nbits) + 1)
        block = DevnetBlock(
            hash=header.hash, height=height, header=header, tx_count=tx_count, size=size, weight=weight,
            median_time_past=0, chainwork=(self.chain[-1].chainwork if self.chain else 0) + work,
        )
        self.chain.append(block)
        block = msgspec.structs.replace(block, median_time_past=self._median_time_past())
        self.chain[-1] = block
        self.by_hash[block.hash] = block
        return block

    def restore(self, records: list[tuple[BlockHeader, int, int, int]]) -> int:
        """Replace the chain with stored (header, tx_count, size, weight) records, genesis first.

        Each block after the genesis (which is made, not mined) must extend the one before and meet its
        own target; the chain stops at the first that does not. Returns how many records were taken
        (0: the chain is left as it was)."""
        good = 0
        for header, *_ in records:
            expected = records[good - 1][0].hash if good else bytes(32)
            mined = not good or int.from_bytes(header.hash, "little") <= target_from_nbits(header.nbits)
            if header.prevhash != expected or not mined:
                break
            good += 1
        if not good:
            return 0
        self.chain, self.by_hash = [], {}
        for height, (header, tx_count, size, weight) in enumerate(records[:good]):
            self._connect(header, height, tx_count, size, weight)
        self.mempool_updates += 1
        return good

    def _connect_genesis(self) -> None:
        split = build_coinbase(height=0, outputs=[CoinbaseOutput(50 * COIN, _OP_TRUE)], extranonce_size=4,
                               tag=b"geostratum devnet genesis", lock_time=0)
        coinbase = split.coinb1 + struct.pack("<I", self.config.seed & 0xFFFFFFFF) + split.coinb2
        created = int(self.clock()) - 600
        raw = struct.pack("<i", self.config.version) + bytes(32) + sha256d(coinbase) + struct.pack(
            "<III", created, self.nbits, 0)
        self._connect(BlockHeader.parse(raw), 0, 1, 80 + 1 + len(coinbase), 4 * (80 + 1 + len(coinbase)))

    # --- mempool -----------------------------------------------------------------------------------------

    def _refill_mempool(self, count: int) -> None:
        added = 0
        while added < count and len(self.mempool) < self.config.max_mempool_txs:
            full, legacy, weight = _synthetic_transaction(self._rng, with_witness=self._rng.random() < 0.35)
            tx = MempoolTx(data=full, txid=sha256d(legacy), wtxid=sha256d(full),
                           fee=self._rng.randint(200, 20_000), weight=weight)
            self.mempool[tx.txid] = tx
            added += 1
        if added:
            self.mempool_updates += 1

    def _trickle(self) -> None:
        interval = self.config.tx_interval
        now = self.clock()
        if interval > 0 and now - self._last_trickle >= interval:
            self._last_trickle = now
            self._refill_mempool(1)

    # --- getblocktemplate --------------------------------------------------------------------------------

    def template(self) -> dict[str, Any]:
        """A getblocktemplate result shaped like Bitcoin Core's (rules ["segwit"])."""
        self._trickle()
        txs: list[MempoolTx] = []
        weight = 8000  # Core's reservation for header + coinbase
        for tx in self.mempool.values():
            if weight + tx.weight > MAX_BLOCK_WEIGHT:
                break
            txs.append(tx)
            weight += tx.weight
        mintime = self.tip.median_time_past + 1
        commitment = witness_commitment([tx.wtxid for tx in txs])
        return {
            "capabilities": ["proposal"],
            "version": self.config.version,
            "rules": ["csv", "!segwit", "taproot"],
            "vbavailable": {},
            "vbrequired": 0,
            "previousblockhash": internal_to_display(self.tip.hash),
            "transactions": [
                {"data": tx.data.hex(), "txid": internal_to_display(tx.txid), "hash": internal_to_display(tx.wtxid),
                 "depends": [], "fee": tx.fee, "sigops": 4, "weight": tx.weight}
                for tx in txs
            ],
            "coinbaseaux": {},
            "coinbasevalue": self.subsidy(self.height + 1) + sum(tx.fee for tx in txs),
            "longpollid": self.longpollid,
            "target": f"{self.target:064x}",
            "mintime": mintime,
            "mutable": ["time", "transactions", "prevblock"],
            "noncerange": "00000000ffffffff",
            "sigoplimit": 80000,
            "sizelimit": 4000000,
            "weightlimit": MAX_BLOCK_WEIGHT,
            "curtime": max(int(self.clock()), mintime),
            "bits": f"{self.nbits:08x}",
            "height": self.height + 1,
            "default_witness_commitment": ("6a24" + WITNESS_COMMITMENT_HEADER.hex() + commitment.hex()),
        }

    # --- submitblock -------------------------------------------------------------------------------------

    def submit_block(self, raw: bytes) -> str | None:
        """None when the block became the new tip, else Core's reason string.

        Raises pool.bitcoin.encoding.DecodeError when the bytes are not a block (RPC -22).
        """
        block = parse_block(raw)
        reason = self._check(block, raw)
        if reason is not None:
            return reason
        self._accept(block, raw)
        return None

    def _check(self, block: Block, raw: bytes) -> str | None:
        header = block.header
        block_hash = header.hash
        if block_hash in self.by_hash:
            return "duplicate"
        try:
            header_target = target_from_nbits(header.nbits)
        except ValueError:
            return "bad-diffbits"
        if header_target == 0 or int.from_bytes(block_hash, "little") > header_target:
            return "high-hash"
        if header.prevhash not in self.by_hash:
            return "prev-blk-not-found"
        if header.prevhash != self.tip.hash:
            return "stale-prevblk"  # no side chains on the devnet
        height = self.height + 1
        if header.nbits != self.nbits:
            return "bad-diffbits"
        if header.time <= self.tip.median_time_past:
            return "time-too-old"
        if header.time > self.clock() + MAX_FUTURE_BLOCK_TIME:
            return "time-too-new"
        if header.version < 4:
            return f"bad-version(0x{header.version & 0xFFFFFFFF:08x})"
        txs = block.transactions
        if not txs:
            return "bad-blk-length"
        txids = [tx.txid for tx in txs]
        if merkle_root(txids) != header.merkle_root:
            return "bad-txnmrklroot"
        if len(set(txids)) != len(txids):
            return "bad-txns-duplicate"
        coinbase = txs[0]
        if not coinbase.is_coinbase:
            return "bad-cb-missing"
        if any(tx.is_coinbase for tx in txs[1:]):
            return "bad-cb-multiple"
        script_sig = coinbase.inputs[0].script_sig
        if not 2 <= len(script_sig) <= 100:
            return "bad-cb-length"
        if not script_sig.startswith(bip34_height_push(height)):
            return "bad-cb-height"
        reason = self._check_witness(block)
        if reason is not None:
            return reason
        if sum(tx.weight for tx in txs) + 4 * (80 + len(varint(len(txs)))) > MAX_BLOCK_WEIGHT:
            return "bad-blk-weight"
        fees = 0
        for tx in txs[1:]:
            known = self.mempool.get(tx.txid)
            if known is None:
                return "bad-txns-inputs-missingorspent"
            fees += known.fee
        if sum(out.value for out in coinbase.outputs) > self.subsidy(height) + fees:
            return "bad-cb-amount"
        return None

    @staticmethod
    def _check_witness(block: Block) -> str | None:
        coinbase = block.transactions[0]
        commitment_index = None
        for i, out in enumerate(coinbase.outputs):
            if len(out.script) >= 38 and out.script[:6] == b"\x6a\x24" + WITNESS_COMMITMENT_HEADER:
                commitment_index = i  # the last match counts (BIP141)
        if commitment_index is None:
            if any(tx.has_witness for tx in block.transactions):
                return "unexpected-witness"
            return None
        stack = coinbase.witnesses[0]
        if len(stack) != 1 or len(stack[0]) != 32:
            return "bad-witness-nonce-size"
        expected = coinbase.outputs[commitment_index].script[6:38]
        if witness_commitment([tx.wtxid for tx in block.transactions[1:]], stack[0]) != expected:
            return "bad-witness-merkle-match"
        return None

    def _accept(self, block: Block, raw: bytes) -> None:
        weight = sum(tx.weight for tx in block.transactions) + 4 * (80 + len(varint(len(block.transactions))))
        connected = self._connect(block.header, self.height + 1, len(block.transactions), len(raw), weight)
        for tx in block.transactions[1:]:
            self.mempool.pop(tx.txid, None)
        self.mempool_updates += 1
        self._refill_mempool(self.config.txs_per_block)
        for listener in list(self.listeners):
            listener(connected)

    def generate(self, payout_script: bytes = _OP_TRUE, max_tries: int = 1 << 20) -> DevnetBlock:
        """Mine one block on the current template in Python (generatetoaddress); for trivial targets.

        Stands for the rest of the network finding a block. RuntimeError if no nonce in max_tries works.
        """
        gbt = self.template()
        txs = [bytes.fromhex(t["data"]) for t in gbt["transactions"]]
        txids = [display_to_internal(t["txid"]) for t in gbt["transactions"]]
        split = build_coinbase(
            height=gbt["height"], outputs=[CoinbaseOutput(gbt["coinbasevalue"], payout_script)],
            extranonce_size=4, tag=b"devnet generate",
            witness_commitment_script=bytes.fromhex(gbt["default_witness_commitment"]),
        )
        legacy = split.coinb1 + struct.pack("<I", self.height) + split.coinb2
        coinbase = legacy[:4] + b"\x00\x01" + legacy[4:-4] + b"\x01\x20" + bytes(32) + legacy[-4:]
        root = merkle_root([sha256d(legacy), *txids])
        prefix = struct.pack("<i", gbt["version"]) + self.tip.hash + root + struct.pack(
            "<II", gbt["curtime"], self.nbits)
        for nonce in range(max_tries):
            header = prefix + struct.pack("<I", nonce)
            if int.from_bytes(sha256d(header), "little") <= self.target:
                raw = header + varint(1 + len(txs)) + coinbase + b"".join(txs)
                reason = self.submit_block(raw)
                if reason is not None:
                    raise RuntimeError(f"devnet refused its own block: {reason}")
                return self.tip
        raise RuntimeError(f"no block found in {max_tries} hashes at nbits {self.nbits:08x}")

    # --- read-only RPC views -----------------------------------------------------------------------------

    def block_at(self, height: int) -> DevnetBlock:
        if not 0 <= height <= self.height:
            raise LookupError("Block height out of range")
        return self.chain[height]

    def block_by_hash(self, hash_hex: str) -> DevnetBlock:
        block = self.by_hash.get(display_to_internal(hash_hex))
        if block is None:
            raise LookupError("Block not found")
        return block

    def header_json(self, block: DevnetBlock) -> dict[str, Any]:
        header = block.header
        result: dict[str, Any] = {
            "hash": internal_to_display(block.hash),
            "confirmations": self.height - block.height + 1,
            "height": block.height,
            "version": header.version,
            "versionHex": f"{header.version & 0xFFFFFFFF:08x}",
            "merkleroot": internal_to_display(header.merkle_root),
            "time": header.time,
            "mediantime": block.median_time_past,
            "nonce": header.nonce,
            "bits": f"{header.nbits:08x}",
            "target": f"{target_from_nbits(header.nbits):064x}",
            "difficulty": target_to_difficulty(target_from_nbits(header.nbits)),
            "chainwork": f"{block.chainwork:064x}",
            "nTx": block.tx_count,
        }
        if block.height > 0:
            result["previousblockhash"] = internal_to_display(header.prevhash)
        if block.height < self.height:
            result["nextblockhash"] = internal_to_display(self.chain[block.height + 1].hash)
        return result

    def network_hashps(self, blocks: int = 120) -> float:
        span = self.chain[-min(blocks, self.height) - 1 :] if self.height else []
        if len(span) < 2:
            return 0.0
        seconds = span[-1].header.time - span[0].header.time
        work = span[-1].chainwork - span[0].chainwork
        return work / seconds if seconds > 0 else 0.0

    def blockchain_info(self) -> dict[str, Any]:
        return {
            "chain": "devnet",
            "blocks": self.height,
            "headers": self.height,
            "bestblockhash": internal_to_display(self.tip.hash),
            "bits": f"{self.nbits:08x}",
            "target": f"{self.target:064x}",
            "difficulty": self.difficulty,
            "time": self.tip.header.time,
            "mediantime": self.tip.median_time_past,
            "verificationprogress": 1,
            "initialblockdownload": False,
            "chainwork": f"{self.tip.chainwork:064x}",
            "pruned": False,
            "warnings": [],
        }

    def mining_info(self) -> dict[str, Any]:
        return {
            "blocks": self.height,
            "bits": f"{self.nbits:08x}",
            "difficulty": self.difficulty,
            "target": f"{self.target:064x}",
            "networkhashps": self.network_hashps(),
            "pooledtx": len(self.mempool),
            "chain": "devnet",
            "warnings": [],
        }
