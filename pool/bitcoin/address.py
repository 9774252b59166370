"""Payout addresses -> scriptPubKey: bech32 / bech32m (BIP173, BIP350) and base58check P2PKH / P2SH."""

from __future__ import annotations

import hashlib

import msgspec

__all__ = [
    "NETWORKS",
    "AddressError",
    "NetworkParams",
    "address_to_script",
    "is_valid_address",
    "network_params",
]


class AddressError(ValueError):
    """An address that is malformed or belongs to another network."""


class NetworkParams(msgspec.Struct, frozen=True):
    name: str
    hrp: str
    p2pkh_version: int
    p2sh_version: int


NETWORKS: dict[str, NetworkParams] = {
    "mainnet": NetworkParams("mainnet", "bc", 0x00, 0x05),
    "testnet": NetworkParams("testnet", "tb", 0x6F, 0xC4),
    "testnet4": NetworkParams("testnet4", "tb", 0x6F, 0xC4),
    "signet": NetworkParams("signet", "tb", 0x6F, 0xC4),
    "regtest": NetworkParams("regtest", "bcrt", 0x6F, 0xC4),
    # The embedded devnet uses regtest's formats, so regtest wallets and tools work against it.
    "devnet": NetworkParams("devnet", "bcrt", 0x6F, 0xC4),
}


def network_params(network: str) -> NetworkParams:
    try:
        return NETWORKS[network]
    except KeyError:
        raise AddressError(f"unknown network {network!r} (known: {', '.join(NETWORKS)})") from None


# --- bech32 / bech32m -------------------------------------------------------------------------------------

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_REV = {c: i for i, c in enumerate(_CHARSET)}
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GENERATOR[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _bech32_decode(text: str) -> tuple[str, list[int], int]:
    """(hrp, data without checksum, checksum constant) or AddressError."""
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise AddressError("bech32 address has characters outside printable ASCII")
    if text.lower() != text and text.upper() != text:
        raise AddressError("bech32 address mixes upper and lower case")
    text = text.lower()
    sep = text.rfind("1")
    if sep < 1 or sep + 7 > len(text) or len(text) > 90:
        raise AddressError("bech32 address has a bad length or separator position")
    hrp, rest = text[:sep], text[sep + 1 :]
    try:
        data = [_CHARSET_REV[c] for c in rest]
    except KeyError:
        raise AddressError("bech32 address has a character outside the bech32 alphabet") from None
    const = _polymod(_hrp_expand(hrp) + data)
    if const not in (_BECH32_CONST, _BECH32M_CONST):
        raise AddressError("bech32 checksum mismatch")
    return hrp, data[:-6], const


def _convert_bits(data: list[int], from_bits: int, to_bits: int) -> bytes:
    """5-bit groups -> bytes, refusing non-zero or over-long padding (BIP173)."""
    acc = 0
    bits = 0
    out = bytearray()
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if bits >= from_bits or (acc << (to_bits - bits)) & maxv:
        raise AddressError("bech32 address has invalid padding")
    return bytes(out)


def _segwit_script(address: str, params: NetworkParams) -> bytes:
    hrp, data, const = _bech32_decode(address)
    if hrp != params.hrp:
        raise AddressError(f"address prefix {hrp!r} is not {params.hrp!r} ({params.name})")
    if not data:
        raise AddressError("segwit address has no witness version")
    version = data[0]
    if version > 16:
        raise AddressError(f"witness version {version} is out of range")
    program = _convert_bits(data[1:], 5, 8)
    if not 2 <= len(program) <= 40:
        raise AddressError(f"witness program of {len(program)} bytes (must be 2..40)")
    if version == 0 and len(program) not in (20, 32):
        raise AddressError(f"v0 witness program must be 20 or 32 bytes, got {len(program)}")
    expected = _BECH32_CONST if version == 0 else _BECH32M_CONST
    if const != expected:
        kind = "bech32" if version == 0 else "bech32m"
        raise AddressError(f"witness v{version} address must use the {kind} checksum")
    opcode = 0 if version == 0 else 0x50 + version
    return bytes((opcode, len(program))) + program


# --- base58check ------------------------------------------------------------------------------------------

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_REV = {c: i for i, c in enumerate(_B58_ALPHABET)}


def _base58check_decode(text: str) -> bytes:
    number = 0
    for c in text:
        try:
            number = number * 58 + _B58_REV[c]
        except KeyError:
            raise AddressError(f"character {c!r} is not base58") from None
    leading = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    raw = b"\x00" * leading + body
    if len(raw) < 5:
        raise AddressError("base58 address too short")
    payload, checksum = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != checksum:
        raise AddressError("base58 checksum mismatch")
    return payload


def _base58_script(address: str, params: NetworkParams) -> bytes:
    payload = _base58check_decode(address)
    if len(payload) != 21:
        raise AddressError(f"base58 address payload is {len(payload)} bytes, expected 21")
    version, hash160 = payload[0], payload[1:]
    if version == params.p2pkh_version:
        return b"\x76\xa9\x14" + hash160 + b"\x88\xac"
    if version == params.p2sh_version:
        return b"\xa9\x14" + hash160 + b"\x87"
    raise AddressError(f"base58 version byte {version:#04x} is not a {params.name} P2PKH/P2SH address")


def address_to_script(address: str, network: str) -> bytes:
    """The scriptPubKey an address pays to on `network`; AddressError explains a refusal."""
    if not isinstance(address, str) or not address:
        raise AddressError("empty address")
    params = network_params(network)
    if address.lower().startswith(params.hrp + "1"):
        return _segwit_script(address, params)
    if "1" in address and address.lower().split("1", 1)[0] in {p.hrp for p in NETWORKS.values()}:
        # A bech32 address of another network: say so rather than a base58 error.
        return _segwit_script(address, params)
    return _base58_script(address, params)


def is_valid_address(address: str, network: str) -> bool:
    try:
        address_to_script(address, network)
    except AddressError:
        return False
    return True
