"""Check files in the stratum-v1 vectors format (../shared/vectors/README.md) against every back end.

Operators run it as `geostratum vectors FILE` to check a build on their own hardware.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from pool import native
from pool.native import reference
from pool.native.work import target_bytes

_ANY_SHARE = target_bytes((1 << 256) - 1)


class VectorResult(msgspec.Struct, frozen=True):
    block: str
    case: str
    checker: str        # "reference" or a native back-end name
    ok: bool
    detail: str


def stratum_prevhash_to_internal(prevhash_hex: str) -> bytes:
    """mining.notify prevhash (4-byte words swapped) -> the 32 header bytes."""
    raw = bytes.fromhex(prevhash_hex)
    if len(raw) != 32:
        raise ValueError(f"prevhash must be 64 hex digits, got {len(prevhash_hex)}")
    return b"".join(raw[i : i + 4][::-1] for i in range(0, 32, 4))


def _hex(value: str, field: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except (ValueError, TypeError):
        raise ValueError(f"{field} is not hex: {value!r}") from None


def _job_args(notify: dict[str, Any]) -> tuple[bytes, bytes, bytes, bytes, int, int]:
    branches = b"".join(_hex(branch, "merkle_branch") for branch in notify["merkle_branch"])
    return (
        _hex(notify["coinb1"], "coinb1"),
        _hex(notify["coinb2"], "coinb2"),
        branches,
        stratum_prevhash_to_internal(notify["prevhash"]),
        int(notify["version"], 16),
        int(notify["nbits"], 16),
    )


def _cases(block: dict[str, Any], default_mask: int) -> Iterator[tuple[str, dict[str, Any], int, str, bool]]:
    """(case name, submit, mask, expected display hash, expected meets-network) for every checkable case."""
    stratum = block["stratum"]
    configured = stratum.get("configure_result") or {}
    mask = int(configured.get("version-rolling.mask", f"{default_mask:08x}"), 16)
    expected = block["expected"]
    job_version = int(stratum["notify"]["version"], 16)
    yield "positive", stratum["submit"], mask, expected["block_hash"], bool(expected["meets_network_target"])
    for negative in block.get("negative", []):
        submit = negative["submit"]
        want = negative["expected"]
        case_mask = int(negative.get("negotiated_mask", f"{mask:08x}"), 16)
        if "block_hash" in want:
            yield negative["name"], submit, case_mask, want["block_hash"], bool(want["meets_network_target"])
        masked = want.get("if_pool_masks_instead_of_rejecting")
        if masked:
            yield f"{negative['name']} (masked)", submit, case_mask, masked["block_hash"], True
        unmasked = want.get("if_pool_applies_bits_unmasked")
        if unmasked:
            # OR-ing the bits into the job version (what a non-checking pool does) = mask ffffffff over both.
            ored = dict(submit, version_bits=f"{job_version | int(submit['version_bits'], 16):08x}")
            yield (f"{negative['name']} (unmasked)", ored, 0xFFFFFFFF, unmasked["block_hash"],
                   bool(unmasked["meets_network_target"]))


def _checkers() -> Iterator[tuple[str, Callable[..., Any], Callable[..., Any]]]:
    yield "reference", reference.ReferenceJob, reference.check_share
    for backend in native.supported_backends():
        yield backend, native.prepare_job, native.check_share


def check_vectors(data: dict[str, Any]) -> list[VectorResult]:
    default_mask = int(data.get("conventions", {}).get("version_rolling_mask", "1fffe000"), 16)
    results: list[VectorResult] = []
    previous = native.active_backend()
    try:
        for block in data["blocks"]:
            stratum = block["stratum"]
            args = _job_args(stratum["notify"])
            extranonce1 = _hex(stratum["subscribe_result"]["extranonce1"], "extranonce1")
            for checker, prepare, check in _checkers():
                if checker != "reference":
                    native.use_backend(checker)
                job = prepare(*args)
                for case, submit, mask, want_hash, want_block in _cases(block, default_mask):
                    digest, _, is_block = check(
                        job, extranonce1, _hex(submit["extranonce2"], "extranonce2"),
                        int(submit["ntime"], 16), int(submit["nonce"], 16),
                        int(submit.get("version_bits") or "0", 16), mask, _ANY_SHARE,
                    )
                    got = digest[::-1].hex()
                    ok = got == want_hash and is_block == want_block
                    detail = "" if ok else f"hash {got} block={is_block}, expected {want_hash} block={want_block}"
                    results.append(VectorResult(block["name"], case, checker, ok, detail))
    finally:
        native.use_backend(previous)
    return results


def check_file(path: str | Path) -> list[VectorResult]:
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not JSON (not even text: a raw block?)") from None
    if not isinstance(data, dict) or "blocks" not in data:
        raise ValueError(f"{path} is not in the vectors format (no 'blocks' list)")
    return check_vectors(data)
