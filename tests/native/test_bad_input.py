"""Bad input raises ValueError with a clear message, never a crash or an out-of-bounds read."""

from __future__ import annotations

import pytest

from pool import native
from pool.native import reference
from pool.native.vectors import check_file, stratum_prevhash_to_internal
from pool.native.work import nbits_from_target, target_from_nbits

GOOD = (b"\x01" * 40, b"\x02" * 40, b"", b"\x00" * 32, 0x20000000, 0x1D00FFFF)


@pytest.mark.parametrize("prepare", [native.prepare_job, reference.ReferenceJob])
@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (2, b"\x00" * 33, "multiple of 32"),
        (3, b"\x00" * 31, "prevhash must be 32 bytes"),
        (4, -1, "version must be an unsigned 32-bit"),
        (5, 1 << 32, "nbits must be an unsigned 32-bit"),
    ],
)
def test_prepare_rejects(prepare, index: int, value: object, message: str) -> None:  # type: ignore[no-untyped-def]
    args = list(GOOD)
    args[index] = value
    with pytest.raises(ValueError, match=message):
        prepare(*args)


def test_native_rejects_negative_nbits_and_huge_coinbase() -> None:
    with pytest.raises(ValueError, match="not a valid compact target"):
        native.prepare_job(*GOOD[:5], 0x1D80FFFF)
    with pytest.raises(ValueError, match="coinbase too large"):
        native.prepare_job(b"\x00" * 200_000, *GOOD[1:])
    with pytest.raises(ValueError, match="too many merkle branches"):
        native.prepare_job(GOOD[0], GOOD[1], b"\x00" * 32 * 40, *GOOD[3:])


@pytest.mark.parametrize("check", [native.check_share, reference.check_share])
def test_check_rejects_wrong_target_length(check) -> None:  # type: ignore[no-untyped-def]
    job = native.prepare_job(*GOOD) if check is native.check_share else reference.ReferenceJob(*GOOD)
    with pytest.raises(ValueError, match="share target must be 32 bytes"):
        check(job, b"1234", b"5678", 0, 0, 0, 0, b"\x00" * 31)


def test_native_rejects_oversized_extranonce() -> None:
    job = native.prepare_job(*GOOD)
    with pytest.raises(ValueError, match="at most 32"):
        native.check_share(job, b"x" * 20, b"y" * 20, 0, 0, 0, 0, b"\xff" * 32)


def test_type_errors_are_not_crashes() -> None:
    job = native.prepare_job(*GOOD)
    with pytest.raises(TypeError):
        native.check_share(job, "1234", b"5678", 0, 0, 0, 0, b"\xff" * 32)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        native.check_share(None, b"1234", b"5678", 0, 0, 0, 0, b"\xff" * 32)  # type: ignore[arg-type]


def test_stratum_prevhash_must_be_hex_of_32_bytes() -> None:
    with pytest.raises(ValueError):
        stratum_prevhash_to_internal("zz" * 32)
    with pytest.raises(ValueError, match="64 hex digits"):
        stratum_prevhash_to_internal("00" * 31)


def test_vectors_file_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        check_file(bad)
    bad.write_text('{"format": "x"}')
    with pytest.raises(ValueError, match="not in the vectors format"):
        check_file(bad)


@pytest.mark.parametrize("nbits", [0x1D00FFFF, 0x17029A8A, 0x207FFFFF, 0x1903A30C])
def test_nbits_round_trip(nbits: int) -> None:
    assert nbits_from_target(target_from_nbits(nbits)) == nbits


def test_nbits_errors() -> None:
    with pytest.raises(ValueError, match="negative"):
        target_from_nbits(0x1D80FFFF)
    with pytest.raises(ValueError, match="overflows"):
        target_from_nbits(0x237FFFFF)
