"""PROXY protocol v1 (text) and v2 (binary) header parsing, sans-IO.

A load balancer prepends one header to the TCP stream carrying the real client address. The server
accepts it only from configured load-balancer addresses (anyone else could claim any address).
Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
"""

from __future__ import annotations

import ipaddress
import struct

import msgspec

V1_PREFIX = b"PROXY "
V1_MAX = 107                      # the longest valid v1 line, CRLF included
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_MAX_PAYLOAD = 1024             # addresses + TLVs we are willing to buffer


class ProxyError(ValueError):
    """Malformed header: the connection must be dropped."""


class ProxyHeader(msgspec.Struct, frozen=True):
    version: int
    source_ip: str | None         # None for v1 UNKNOWN / v2 LOCAL or UNSPEC: use the socket peer
    source_port: int = 0
    dest_ip: str | None = None
    dest_port: int = 0


def starts_like_proxy(data: bytes) -> bool | None:
    """True/False once decidable, None while `data` is a prefix of a header signature."""
    for signature in (V1_PREFIX, V2_SIGNATURE):
        n = min(len(data), len(signature))
        if data[:n] == signature[:n]:
            return True if len(data) >= len(signature) else None
    return False


def parse(data: bytes) -> tuple[ProxyHeader, int] | None:
    """(header, bytes consumed) or None when more bytes are needed; ProxyError when invalid."""
    if data.startswith(V2_SIGNATURE):
        return _parse_v2(data)
    if data.startswith(V1_PREFIX):
        return _parse_v1(data)
    decidable = starts_like_proxy(data)
    if decidable is None:
        return None
    raise ProxyError("no PROXY protocol header")


def _parse_v1(data: bytes) -> tuple[ProxyHeader, int] | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyError("PROXY v1 line too long")
        return None
    try:
        parts = data[:end].decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise ProxyError("PROXY v1 line is not ASCII") from None
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(1, None), end + 2
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyError("PROXY v1 needs: PROXY TCP4|TCP6 src dst sport dport")
    _, family, src, dst, sport, dport = parts
    version = 4 if family == "TCP4" else 6
    try:
        src_addr = ipaddress.ip_address(src)
        dst_addr = ipaddress.ip_address(dst)
    except ValueError:
        raise ProxyError("PROXY v1 address is not valid") from None
    if src_addr.version != version or dst_addr.version != version:
        raise ProxyError(f"PROXY v1 {family} with an address of another family")
    return ProxyHeader(1, normalize_ip(str(src_addr)), _port(sport), normalize_ip(str(dst_addr)), _port(dport)), end + 2


def _port(text: str) -> int:
    if not text.isdigit() or len(text) > 5 or (len(text) > 1 and text[0] == "0"):
        raise ProxyError(f"PROXY v1 port {text!r} is not valid")
    value = int(text)
    if value > 65535:
        raise ProxyError(f"PROXY v1 port {value} is out of range")
    return value


def _parse_v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    if len(data) < 16:
        return None
    version_command, family_transport, length = struct.unpack_from("!BBH", data, 12)
    if version_command >> 4 != 2:
        raise ProxyError("PROXY v2 header with a version other than 2")
    command = version_command & 0x0F
    if command not in (0, 1):
        raise ProxyError(f"PROXY v2 unknown command {command}")
    if length > V2_MAX_PAYLOAD:
        raise ProxyError(f"PROXY v2 payload of {length} bytes is too long")
    total = 16 + length
    if len(data) < total:
        return None
    if command == 0:                       # LOCAL: the balancer's own health check
        return ProxyHeader(2, None), total
    family, transport = family_transport >> 4, family_transport & 0x0F
    if family > 3 or transport > 2:
        # The specification (2.2): other values "must be rejected as invalid by receivers".
        raise ProxyError(f"PROXY v2 invalid address family/transport byte 0x{family_transport:02x}")
    payload = data[16:total]
    if family == 1:                        # AF_INET
        if length < 12:
            raise ProxyError("PROXY v2 IPv4 address block too short")
        src, dst = ipaddress.IPv4Address(payload[0:4]), ipaddress.IPv4Address(payload[4:8])
        sport, dport = struct.unpack_from("!HH", payload, 8)
    elif family == 2:                      # AF_INET6
        if length < 36:
            raise ProxyError("PROXY v2 IPv6 address block too short")
        src, dst = ipaddress.IPv6Address(payload[0:16]), ipaddress.IPv6Address(payload[16:32])
        sport, dport = struct.unpack_from("!HH", payload, 32)
    else:                                  # UNSPEC / UNIX: keep the socket address
        return ProxyHeader(2, None), total
    return ProxyHeader(2, normalize_ip(str(src)), sport, normalize_ip(str(dst)), dport), total


def normalize_ip(ip: str) -> str:
    """'::ffff:1.2.3.4' -> '1.2.3.4' so limits, bans and geo see one form per address. Python before
    3.13 writes a mapped address in hex ('::ffff:102:304', what a v2 header's bytes give): both forms."""
    if ip.startswith("::ffff:"):
        try:
            mapped = ipaddress.IPv6Address(ip).ipv4_mapped
        except ValueError:
            return ip
        if mapped is not None:
            return str(mapped)
    return ip


def encode_v1(source_ip: str, source_port: int, dest_ip: str, dest_port: int) -> bytes:
    family = "TCP6" if ":" in source_ip else "TCP4"
    return f"PROXY {family} {source_ip} {dest_ip} {source_port} {dest_port}\r\n".encode()


def encode_v2(source_ip: str, source_port: int, dest_ip: str, dest_port: int) -> bytes:
    src, dst = ipaddress.ip_address(source_ip), ipaddress.ip_address(dest_ip)
    family = 0x11 if src.version == 4 else 0x21
    body = src.packed + dst.packed + struct.pack("!HH", source_port, dest_port)
    return V2_SIGNATURE + struct.pack("!BBH", 0x21, family, len(body)) + body
