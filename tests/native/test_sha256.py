"""NIST (FIPS 180-2 / CAVS) SHA-256 vectors through each back end."""

from __future__ import annotations

import hashlib

import pytest

from pool import native

NIST = [
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    (b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
     b"mnopqrstnopqrstu", "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
    (b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
    # CAVS SHA256ShortMsg: 8-bit and 512-bit messages
    (bytes.fromhex("d3"), "28969cdfa74a12c82f3bad960b0b000aca2ac329deea5c2328ebc6f2ba9802c1"),
    (bytes.fromhex("5a86b737eaea8ee976a0a24da63e7ed7eefad18a101c1211e2b3650c5187c2a8"
                   "a650547208251f6d4237e661c7bf4c77f335390394c37fa1a9f9be836ac28509"),
     "42e61e174fbb3897d6dd6cef3dd2802fe67b331953b06114a65c772859dfc1aa"),
]


@pytest.mark.parametrize(("message", "digest"), NIST, ids=lambda v: str(len(v)) if isinstance(v, bytes) else "")
def test_nist_vector(backend: str, message: bytes, digest: str) -> None:
    assert native.sha256(message).hex() == digest


@pytest.mark.parametrize("length", [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000])
def test_padding_boundaries_match_hashlib(backend: str, length: int) -> None:
    data = bytes(range(256)) * 4
    assert native.sha256(data[:length]) == hashlib.sha256(data[:length]).digest()
    assert native.sha256d(data[:length]) == hashlib.sha256(hashlib.sha256(data[:length]).digest()).digest()


def test_unknown_backend_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown SHA-256 back end"):
        native.use_backend("sha-9000")


def test_every_named_backend_is_known() -> None:
    assert set(native.supported_backends()) <= set(native.backend_names())
    assert "portable" in native.supported_backends()
