"""Transaction and block parsing (what the devnet needs to check a submitted block)."""

from __future__ import annotations

import struct

import msgspec

from pool.bitcoin.encoding import ByteReader, DecodeError, sha256d, varint

__all__ = ["Block", "BlockHeader", "Transaction", "TxIn", "TxOut", "parse_block", "parse_transaction"]


class TxIn(msgspec.Struct, frozen=True):
    prevout: bytes  # 36 bytes: txid (internal order) + index
    script_sig: bytes
    sequence: int


class TxOut(msgspec.Struct, frozen=True):
    value: int
    script: bytes


class Transaction(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    inputs: tuple[TxIn, ...]
    outputs: tuple[TxOut, ...]
    witnesses: tuple[tuple[bytes, ...], ...]  # one stack per input; empty stacks when no witness
    lock_time: int
    legacy: bytes  # serialization without witness: sha256d -> txid
    full: bytes  # serialization as received: sha256d -> wtxid

    @property
    def txid(self) -> bytes:
        return sha256d(self.legacy)

    @property
    def wtxid(self) -> bytes:
        return sha256d(self.full)

    @property
    def has_witness(self) -> bool:
        return any(stack for stack in self.witnesses)

    @property
    def is_coinbase(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].prevout == bytes(32) + b"\xff\xff\xff\xff"

    @property
    def weight(self) -> int:
        return len(self.legacy) * 3 + len(self.full)


def parse_transaction(reader: ByteReader) -> Transaction:
    start = reader.pos
    version = struct.unpack("<i", reader.read(4))[0]
    count = reader.varint()
    segwit = False
    if count == 0:
        flag = reader.u8()
        if flag != 1:
            raise DecodeError(f"transaction marker 00 followed by flag {flag:#x}")
        segwit = True
        count = reader.varint()
    body_start = reader.pos
    inputs = []
    for _ in range(count):
        prevout = reader.read(36)
        script = reader.read(reader.varint())
        inputs.append(TxIn(prevout, script, reader.u32()))
    outputs = []
    for _ in range(reader.varint()):
        value = reader.i64()
        outputs.append(TxOut(value, reader.read(reader.varint())))
    body_end = reader.pos
    witnesses: list[tuple[bytes, ...]] = []
    if segwit:
        for _ in inputs:
            witnesses.append(tuple(reader.read(reader.varint()) for _ in range(reader.varint())))
        if not any(witnesses):
            raise DecodeError("segwit serialization with an all-empty witness")
    else:
        witnesses = [() for _ in inputs]
    lock_time = reader.u32()
    full = reader.data[start : reader.pos]
    legacy = (
        full[:4] + varint(len(inputs)) + reader.data[body_start:body_end] + full[-4:] if segwit else full
    )
    return Transaction(
        version=version,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        witnesses=tuple(witnesses),
        lock_time=lock_time,
        legacy=legacy,
        full=full,
    )


class BlockHeader(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    prevhash: bytes  # internal order
    merkle_root: bytes
    time: int
    nbits: int
    nonce: int
    raw: bytes

    @property
    def hash(self) -> bytes:
        return sha256d(self.raw)

    @classmethod
    def parse(cls, raw: bytes) -> BlockHeader:
        if len(raw) != 80:
            raise DecodeError(f"a block header is 80 bytes, got {len(raw)}")
        version, prev, root, time, nbits, nonce = struct.unpack("<i32s32sIII", raw)
        return cls(version=version, prevhash=prev, merkle_root=root, time=time, nbits=nbits, nonce=nonce, raw=raw)


class Block(msgspec.Struct, frozen=True):
    header: BlockHeader
    transactions: tuple[Transaction, ...]


def parse_block(raw: bytes) -> Block:
    reader = ByteReader(raw)
    header = BlockHeader.parse(reader.read(80))
    count = reader.varint()
    if count > len(raw):
        raise DecodeError(f"block claims {count} transactions")
    txs = tuple(parse_transaction(reader) for _ in range(count))
    if reader.remaining():
        raise DecodeError(f"{reader.remaining()} bytes after the last transaction")
    return Block(header, txs)
