"""Bitcoin serialization primitives: varints, script pushes, byte orders (display / internal / stratum)."""

from __future__ import annotations

import struct

from pool.native.reference import sha256d

__all__ = [
    "ByteReader",
    "DecodeError",
    "bip34_height_push",
    "display_to_internal",
    "internal_to_display",
    "push_data",
    "read_varint",
    "script_number",
    "sha256d",
    "stratum_prevhash",
    "varint",
]


class DecodeError(ValueError):
    """Bytes that do not parse as the structure they claim to be."""


def varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


class ByteReader:
    """A cursor over bytes that raises DecodeError instead of returning short reads."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def read(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise DecodeError(f"need {n} bytes at offset {self.pos}, only {len(self.data) - self.pos} left")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        return self.read(1)[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.read(4))[0]

    def i64(self) -> int:
        return struct.unpack("<q", self.read(8))[0]

    def varint(self) -> int:
        return read_varint(self)

    def remaining(self) -> int:
        return len(self.data) - self.pos


def read_varint(reader: ByteReader) -> int:
    first = reader.u8()
    if first < 0xFD:
        return first
    size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    return int.from_bytes(reader.read(size), "little")


def script_number(n: int) -> bytes:
    """Minimal little-endian sign-magnitude encoding of a script number (CScriptNum)."""
    if n == 0:
        return b""
    negative = n < 0
    magnitude = -n if negative else n
    out = bytearray()
    while magnitude:
        out.append(magnitude & 0xFF)
        magnitude >>= 8
    if out[-1] & 0x80:
        out.append(0x80 if negative else 0x00)
    elif negative:
        out[-1] |= 0x80
    return bytes(out)


def push_data(data: bytes) -> bytes:
    """The shortest push of `data` (OP_PUSHBYTES_n / PUSHDATA1 / PUSHDATA2)."""
    n = len(data)
    if n < 0x4C:
        return bytes((n,)) + data
    if n <= 0xFF:
        return b"\x4c" + bytes((n,)) + data
    if n <= 0xFFFF:
        return b"\x4d" + struct.pack("<H", n) + data
    raise ValueError(f"push of {n} bytes is too large for a script")


def bip34_height_push(height: int) -> bytes:
    """`CScript() << height`: OP_1..OP_16 for 1..16, OP_0 for 0, else a minimal number push."""
    if height < 0:
        raise ValueError(f"height must be non-negative, got {height}")
    if height == 0:
        return b"\x00"
    if height <= 16:
        return bytes((0x50 + height,))
    return push_data(script_number(height))


def display_to_internal(hex_hash: str) -> bytes:
    raw = bytes.fromhex(hex_hash)
    if len(raw) != 32:
        raise ValueError(f"a hash is 32 bytes, got {len(raw)}")
    return raw[::-1]


def internal_to_display(raw: bytes) -> str:
    return raw[::-1].hex()


def stratum_prevhash(prevhash_internal: bytes) -> str:
    """mining.notify prevhash: internal order with every 4-byte word byte-swapped."""
    return b"".join(prevhash_internal[i : i + 4][::-1] for i in range(0, 32, 4)).hex()
