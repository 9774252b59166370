"""The coinbase transaction, built in its legacy serialization and cut around the extranonce window.

scriptSig layout: <BIP34 height> [OP_0 pad at heights <= 16] [<coinbaseaux flags>] <push len(en)>
| extranonce1 extranonce2 | <pool tag>. The window is formally one push, so the scriptSig stays a valid
sequence of pushes whatever the miner rolls.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import msgspec

from pool.bitcoin.encoding import bip34_height_push, push_data, varint
from pool.chain.merkle import WITNESS_RESERVED_VALUE

MAX_SCRIPT_SIG = 100  # consensus: coinbase scriptSig is 2..100 bytes (bad-cb-length)
COINBASE_SEQUENCE = 0xFFFFFFFE
COINBASE_TX_VERSION = 2
_NULL_PREVOUT = bytes(32) + b"\xff\xff\xff\xff"

__all__ = [
    "MAX_SCRIPT_SIG",
    "CoinbaseOutput",
    "CoinbaseSplit",
    "build_coinbase",
    "serialize_outputs",
    "witness_serialization",
]


class CoinbaseOutput(msgspec.Struct, frozen=True):
    value: int  # satoshis
    script: bytes


class CoinbaseSplit(msgspec.Struct, frozen=True, kw_only=True):
    coinb1: bytes
    coinb2: bytes
    extranonce_size: int
    value: int  # total paid by the outputs
    tag: bytes  # the pool tag as it fit into the scriptSig (possibly shortened)


def serialize_outputs(outputs: Sequence[CoinbaseOutput]) -> bytes:
    parts = [varint(len(outputs))]
    for out in outputs:
        if out.value < 0:
            raise ValueError(f"output value must be non-negative, got {out.value}")
        parts.append(struct.pack("<q", out.value) + varint(len(out.script)) + out.script)
    return b"".join(parts)


def build_coinbase(
    *,
    height: int,
    outputs: Sequence[CoinbaseOutput],
    extranonce_size: int,
    tag: bytes = b"",
    aux_flags: bytes = b"",
    witness_commitment_script: bytes | None = None,
    version: int = COINBASE_TX_VERSION,
    sequence: int = COINBASE_SEQUENCE,
    lock_time: int | None = None,
) -> CoinbaseSplit:
    """Legacy-serialized coinbase split as coinb1 | extranonce window | coinb2.

    The witness commitment output, when given, goes last (BIP145). lock_time defaults to height - 1
    (what Bitcoin Core's own template coinbase and BIP54 use).
    """
    if not 1 <= extranonce_size <= 75:
        raise ValueError(f"extranonce window must be 1..75 bytes, got {extranonce_size}")
    if not outputs and witness_commitment_script is None:
        raise ValueError("a coinbase needs at least one output")
    head = bip34_height_push(height)
    if height <= 16:
        head += b"\x00"  # Core pads a one-byte height push with OP_0
    if aux_flags:
        head += push_data(aux_flags)
    head += bytes((extranonce_size,))
    room = MAX_SCRIPT_SIG - len(head) - extranonce_size
    if room < 0:
        raise ValueError("the coinbase scriptSig cannot hold the height and the extranonce window")
    tag = tag[: max(0, min(room - 1, 75))] if tag else b""
    tail = push_data(tag) if tag else b""
    script_len = len(head) + extranonce_size + len(tail)

    all_outputs = list(outputs)
    if witness_commitment_script is not None:
        all_outputs.append(CoinbaseOutput(0, witness_commitment_script))
    lock = max(height - 1, 0) if lock_time is None else lock_time

    coinb1 = struct.pack("<i", version) + b"\x01" + _NULL_PREVOUT + varint(script_len) + head
    coinb2 = tail + struct.pack("<I", sequence) + serialize_outputs(all_outputs) + struct.pack("<I", lock)
    return CoinbaseSplit(
        coinb1=coinb1,
        coinb2=coinb2,
        extranonce_size=extranonce_size,
        value=sum(o.value for o in all_outputs),
        tag=tag,
    )


def witness_serialization(legacy_coinbase: bytes, reserved_value: bytes = WITNESS_RESERVED_VALUE) -> bytes:
    """The same coinbase with marker/flag and its one-item witness (the 32-byte reserved value)."""
    if len(reserved_value) != 32:
        raise ValueError("the witness reserved value is 32 bytes")
    witness = b"\x01" + varint(32) + reserved_value
    return legacy_coinbase[:4] + b"\x00\x01" + legacy_coinbase[4:-4] + witness + legacy_coinbase[-4:]
