"""Every positive and negative vector of real mainnet blocks, through the reference and every back end."""

from __future__ import annotations

import pytest

from pool import native
from pool.native import reference
from pool.native.vectors import check_vectors, stratum_prevhash_to_internal
from pool.native.work import hash_difficulty, target_bytes, target_from_nbits


def test_all_vectors_pass_every_checker(mainnet_vectors: dict) -> None:
    results = check_vectors(mainnet_vectors)
    checkers = {r.checker for r in results}
    assert checkers == {"reference", *native.supported_backends()}
    failures = [r for r in results if not r.ok]
    assert not failures
    # 4 blocks x (positive + 4 negatives + masked + unmasked variants) per checker
    assert len(results) == 4 * 6 * len(checkers)


def _job_and_submit(block: dict, prepare):  # type: ignore[no-untyped-def]
    notify = block["stratum"]["notify"]
    job = prepare(
        bytes.fromhex(notify["coinb1"]), bytes.fromhex(notify["coinb2"]),
        b"".join(bytes.fromhex(b) for b in notify["merkle_branch"]),
        stratum_prevhash_to_internal(notify["prevhash"]), int(notify["version"], 16), int(notify["nbits"], 16))
    return job, block["stratum"]["submit"]


@pytest.mark.parametrize("checker", ["reference", "native"])
def test_share_target_verdict_at_the_block_difficulty(mainnet_vectors: dict, backend: str, checker: str) -> None:
    """The share verdict flips exactly at the hash's own value: target = hash passes, hash - 1 fails."""
    prepare, check = ((reference.ReferenceJob, reference.check_share) if checker == "reference"
                      else (native.prepare_job, native.check_share))
    for block in mainnet_vectors["blocks"]:
        job, submit = _job_and_submit(block, prepare)
        mask = 0x1FFFE000
        args = (bytes.fromhex(block["stratum"]["subscribe_result"]["extranonce1"]),
                bytes.fromhex(submit["extranonce2"]), int(submit["ntime"], 16), int(submit["nonce"], 16),
                int(submit.get("version_bits") or "0", 16), mask)
        digest, _, is_block = check(job, *args, target_bytes(0))
        value = int.from_bytes(digest, "little")
        assert is_block and value <= target_from_nbits(int(block["stratum"]["notify"]["nbits"], 16))
        assert check(job, *args, target_bytes(value))[1] is True
        assert check(job, *args, target_bytes(value - 1))[1] is False
        assert hash_difficulty(digest) == pytest.approx(block["expected"]["share_difficulty"], rel=1e-12)
