"""Pure-Python (hashlib) share check with the same signature as the native one.

It is the executable specification the C code is held to, and the baseline the
benchmark compares against.
"""

from __future__ import annotations

import hashlib
import struct

from pool.native.work import target_from_nbits

_sha256 = hashlib.sha256


def sha256d(data: bytes) -> bytes:
    return _sha256(_sha256(data).digest()).digest()


class ReferenceJob:
    """Job-constant inputs, prepared once per job (mirrors native PreparedJob)."""

    __slots__ = ("branches", "coinb1", "coinb2", "n_branches", "nbits", "network_target", "prevhash", "version")

    def __init__(
        self, coinb1: bytes, coinb2: bytes, merkle_branches: bytes, prevhash: bytes, version: int, nbits: int
    ) -> None:
        if len(merkle_branches) % 32:
            raise ValueError(f"merkle branches blob must be a multiple of 32 bytes, got {len(merkle_branches)}")
        if len(prevhash) != 32:
            raise ValueError(f"prevhash must be 32 bytes, got {len(prevhash)}")
        for name, value in (("version", version), ("nbits", nbits)):
            if not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
                raise ValueError(f"{name} must be an unsigned 32-bit integer, got {value!r}")
        self.coinb1 = coinb1
        self.coinb2 = coinb2
        self.branches = [merkle_branches[i : i + 32] for i in range(0, len(merkle_branches), 32)]
        self.n_branches = len(self.branches)
        self.prevhash = prevhash
        self.version = version
        self.nbits = nbits
        self.network_target = target_from_nbits(nbits)


def check_share(
    job: ReferenceJob,
    extranonce1: bytes,
    extranonce2: bytes,
    ntime: int,
    nonce: int,
    version_bits: int,
    version_mask: int,
    share_target: bytes,
) -> tuple[bytes, bool, bool]:
    """Returns (header_hash in internal order, meets share target, meets network target)."""
    if len(share_target) != 32:
        raise ValueError(f"share target must be 32 bytes, got {len(share_target)}")
    node = sha256d(job.coinb1 + extranonce1 + extranonce2 + job.coinb2)
    for branch in job.branches:
        node = sha256d(node + branch)
    version = (job.version & ~version_mask & 0xFFFFFFFF) | (version_bits & version_mask)
    header = (
        struct.pack("<I", version) + job.prevhash + node + struct.pack("<III", ntime, job.nbits, nonce)
    )
    digest = sha256d(header)
    value = int.from_bytes(digest, "little")
    return digest, value <= int.from_bytes(share_target, "little"), value <= job.network_target
