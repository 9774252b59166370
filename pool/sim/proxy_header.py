"""PROXY protocol v1 and v2 headers, as a load balancer (HAProxy, nginx, AWS NLB) writes them."""

from __future__ import annotations

import ipaddress
import struct

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v1(source_ip: str, source_port: int, dest_ip: str, dest_port: int) -> bytes:
    family = "TCP6" if ipaddress.ip_address(source_ip).version == 6 else "TCP4"
    return f"PROXY {family} {source_ip} {dest_ip} {source_port} {dest_port}\r\n".encode()


def proxy_v2(source_ip: str, source_port: int, dest_ip: str, dest_port: int) -> bytes:
    src, dst = ipaddress.ip_address(source_ip), ipaddress.ip_address(dest_ip)
    if src.version != dst.version:
        # A v2 header carries one address family; map the IPv4 side into IPv6.
        src, dst = (ipaddress.IPv6Address(f"::ffff:{a}") if a.version == 4 else a for a in (src, dst))
    family = 0x21 if src.version == 6 else 0x11  # AF_INET6/AF_INET + STREAM
    addresses = src.packed + dst.packed + struct.pack("!HH", source_port, dest_port)
    return V2_SIGNATURE + bytes([0x21, family]) + struct.pack("!H", len(addresses)) + addresses
