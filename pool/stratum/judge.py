"""Judging one mining.submit: field syntax, then one native hash, then the verdict (stratum.md §7.2).

The block-candidate test comes before every rejection that needs the hash, so a stale or
out-of-window share that solves a block is still submitted. Duplicates are keyed on the header hash
the native check returns: it covers extranonce2, ntime, nonce and version bits as parsed integers,
so re-sending a share with different hex case or padding cannot count twice.
"""

from __future__ import annotations

from typing import Any

from pool.native import check_share
from pool.stratum.messages import (
    BAD_EXTRANONCE2,
    BAD_NONCE,
    BAD_NTIME,
    BAD_VERSION,
    DUPLICATE_SHARE,
    LOW_DIFF,
    NTIME_OUT_OF_RANGE,
    STALE,
    Reject,
)

_HEX = frozenset("0123456789abcdefABCDEF")


def parse_u32(value: Any) -> int | None:
    """8 hex digits (big-endian text) -> int; a JSON number is taken as the integer itself."""
    if type(value) is str:
        # int(x, 16) alone would also take "0x12345", " 1234567" and "1_234567".
        if len(value) != 8 or not _HEX.issuperset(value):
            return None
        return int(value, 16)
    if type(value) is int and 0 <= value <= 0xFFFFFFFF:
        return value
    return None


def parse_extranonce2(value: str, size: int) -> bytes | None:
    """Exactly 2*size hex digits -> raw bytes (inserted verbatim into the coinbase)."""
    if len(value) != 2 * size:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw if len(raw) == size else None   # fromhex skips spaces: "00 00 00" is 3 bytes


class SubmitFields:
    """The parsed integers of one submit."""

    __slots__ = ("extranonce2", "nonce", "ntime", "version_bits")

    def __init__(self, extranonce2: bytes, ntime: int, nonce: int, version_bits: int) -> None:
        self.extranonce2 = extranonce2
        self.ntime = ntime
        self.nonce = nonce
        self.version_bits = version_bits


def parse_submit(extranonce2: str, ntime: Any, nonce: Any, version_bits: Any, extranonce2_size: int,
                 version_mask: int | None) -> SubmitFields | Reject:
    """Field syntax and the version-mask rule. version_mask None: rolling not allowed at all."""
    en2 = parse_extranonce2(extranonce2, extranonce2_size)
    if en2 is None:
        return BAD_EXTRANONCE2
    ntime_value = parse_u32(ntime)
    if ntime_value is None:
        return BAD_NTIME
    nonce_value = parse_u32(nonce)
    if nonce_value is None:
        return BAD_NONCE
    bits = 0
    if version_bits is not None:
        parsed = parse_u32(version_bits)
        if parsed is None:
            return BAD_VERSION
        if parsed and (version_mask is None or parsed & ~version_mask & 0xFFFFFFFF):
            return BAD_VERSION
        bits = parsed
    return SubmitFields(en2, ntime_value, nonce_value, bits)


def judge(prepared: Any, extranonce1: bytes, fields: SubmitFields, version_mask: int, share_target: bytes,
          *, stale: bool, ntime_low: int, ntime_high: int,
          seen: set[bytes]) -> tuple[Reject | None, bytes, bool]:
    """Hash once and decide. Returns (reject or None, header hash (internal order), is_block)."""
    header_hash, meets_share, meets_network = check_share(
        prepared, extranonce1, fields.extranonce2, fields.ntime, fields.nonce, fields.version_bits,
        version_mask, share_target,
    )
    if stale:
        return STALE, header_hash, meets_network
    if not ntime_low <= fields.ntime <= ntime_high:
        return NTIME_OUT_OF_RANGE, header_hash, meets_network
    # A block pays regardless of the share target (possible when the network target is easier, as on
    # regtest/devnet): it is credited at the job's difficulty.
    if not meets_share and not meets_network:
        return LOW_DIFF, header_hash, meets_network
    if header_hash in seen:
        return DUPLICATE_SHARE, header_hash, meets_network
    seen.add(header_hash)
    return None, header_hash, meets_network
