"""Proof-of-work arithmetic: compact nBits, targets and difficulty (bdiff, diff-1 = 0xffff * 2**208)."""

from __future__ import annotations

from fractions import Fraction

DIFF1_TARGET = 0xFFFF << 208
MAX_TARGET = (1 << 256) - 1


def target_from_nbits(nbits: int) -> int:
    """Decode compact nBits; ValueError if it is negative or overflows 256 bits."""
    mantissa = nbits & 0x007FFFFF
    exponent = nbits >> 24
    if mantissa == 0:
        return 0
    if nbits & 0x00800000:
        raise ValueError(f"nbits {nbits:08x} encodes a negative target")
    target = mantissa << (8 * (exponent - 3)) if exponent >= 3 else mantissa >> (8 * (3 - exponent))
    if target > MAX_TARGET:
        raise ValueError(f"nbits {nbits:08x} overflows 256 bits")
    return target


def nbits_from_target(target: int) -> int:
    """Encode a target as compact nBits (the inverse of target_from_nbits, rounding down)."""
    size = (target.bit_length() + 7) // 8
    mantissa = target << (8 * (3 - size)) if size <= 3 else target >> (8 * (size - 3))
    if mantissa & 0x00800000:
        mantissa >>= 8
        size += 1
    return (size << 24) | mantissa


def difficulty_to_target(difficulty: float | int | Fraction) -> int:
    """Share target for a pool difficulty; fractional difficulties below 1 are allowed."""
    if difficulty <= 0:
        raise ValueError(f"difficulty must be positive, got {difficulty!r}")
    target = int(Fraction(DIFF1_TARGET) / Fraction(difficulty))
    return min(target, MAX_TARGET)


def target_to_difficulty(target: int) -> float:
    return DIFF1_TARGET / target if target else float("inf")


def hash_difficulty(header_hash: bytes) -> float:
    """Difficulty a header hash (internal order) reaches: diff1 / hash."""
    value = int.from_bytes(header_hash, "little")
    return DIFF1_TARGET / value if value else float("inf")


def target_bytes(target: int) -> bytes:
    """32-byte little-endian form that the share check compares against."""
    return target.to_bytes(32, "little")


def nbits_difficulty(nbits: int) -> float:
    return target_to_difficulty(target_from_nbits(nbits))
