"""Fuzz target: the PROXY v1/v2 parser (pool/stratum/proxy.py). Any bytes give a header, "need
more", or ProxyError, never another exception; a header a load balancer writes parses back to its
addresses from any split point."""

from __future__ import annotations

import ipaddress

from hypothesis import example, given
from hypothesis import strategies as st

from pool.sim.proxy_header import proxy_v1, proxy_v2
from pool.stratum import proxy

V2 = proxy.V2_SIGNATURE
addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))
ports = st.integers(0, 65535)


def parsed_or_refused(data: bytes) -> tuple[proxy.ProxyHeader, int] | str | None:
    try:
        result = proxy.parse(data)
    except proxy.ProxyError as exc:
        assert str(exc)             # a reason for the log line
        return "refused"
    if result is not None:
        header, used = result
        assert 0 < used <= len(data)
        assert header.version in (1, 2)
        for ip in (header.source_ip, header.dest_ip):
            if ip is not None:
                ipaddress.ip_address(ip)
    return result


@given(st.binary(max_size=300))
@example(V2 + b"\x21\x41\x00\x0c" + bytes(12))          # invalid family 4 from a trusted proxy (defect 5)
@example(V2 + b"\x21\x11\x00\x04" + bytes(4))           # IPv4 block too short
@example(V2 + b"\x21\x11\xff\xff")                      # payload length past the limit
@example(b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n")        # port with a leading zero
@example(b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n")             # mixed families
@example(b"PROXY \xff\r\n")
def test_any_bytes_parse_or_are_refused(data: bytes) -> None:
    parsed_or_refused(data)
    parsed_or_refused(V2 + data)
    parsed_or_refused(b"PROXY " + data)


@given(addresses, ports, addresses, ports, st.booleans(), st.binary(max_size=40), st.integers(0, 1 << 16))
# Found by this target: an IPv4 client behind a v2 balancer with an IPv6 side came out as
# '::ffff:102:304' (Python < 3.13 writes mapped addresses in hex), so bans, per-IP limits and geo saw
# another address than the socket path's '1.2.3.4'.
@example(ipaddress.ip_address("1.2.3.4"), 1, ipaddress.ip_address("::1"), 2, True, b"", 5)
@example(ipaddress.ip_address("::ffff:0:0"), 0, ipaddress.ip_address("::1"), 0, False, b"", 0)   # v1 TCP6, too
def test_a_balancer_header_parses_back_from_any_split(src: ipaddress.IPv4Address | ipaddress.IPv6Address,
                                                      sport: int, dst: ipaddress.IPv4Address | ipaddress.IPv6Address,
                                                      dport: int, v2: bool, tail: bytes, cut: int) -> None:
    if not v2 and src.version != dst.version:
        dst = ipaddress.ip_address("::1") if src.version == 6 else ipaddress.ip_address("127.0.0.1")
    header = (proxy_v2 if v2 else proxy_v1)(str(src), sport, str(dst), dport)
    split = cut % len(header)
    assert parsed_or_refused(header[:split]) is None       # a prefix only asks for more bytes
    result = parsed_or_refused(header + tail)
    assert isinstance(result, tuple)
    parsed, used = result
    assert used == len(header)
    assert ipaddress.ip_address(parsed.source_ip) == ipaddress.ip_address(proxy.normalize_ip(_mapped(src, dst, v2)))
    assert parsed.source_port == sport and parsed.dest_port == dport


def _mapped(src: ipaddress.IPv4Address | ipaddress.IPv6Address, dst: ipaddress.IPv4Address | ipaddress.IPv6Address,
            v2: bool) -> str:
    """The source address as the header carries it (a mixed-family v2 header maps IPv4 into IPv6)."""
    if v2 and src.version != dst.version and src.version == 4:
        return f"::ffff:{src}"
    return str(src)


@given(addresses, ports, addresses, ports, st.booleans(), st.integers(0, 200), st.integers(0, 255))
def test_a_corrupted_header_is_parsed_or_refused(src: ipaddress.IPv4Address | ipaddress.IPv6Address, sport: int,
                                                 dst: ipaddress.IPv4Address | ipaddress.IPv6Address, dport: int,
                                                 v2: bool, where: int, byte: int) -> None:
    if not v2 and src.version != dst.version:
        dst = src
    header = bytearray((proxy_v2 if v2 else proxy_v1)(str(src), sport, str(dst), dport))
    header[where % len(header)] = byte
    parsed_or_refused(bytes(header))
