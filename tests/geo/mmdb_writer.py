"""A small MaxMind DB (.mmdb v2) writer for test databases: ASN, Anonymous-IP and a second City
release with its own build date. The files are read back by the real maxminddb/geoip2 readers."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path
from typing import Any


def _control(type_id: int, size: int) -> bytes:
    if size < 29:
        head, extra = size, b""
    elif size < 29 + 256:
        head, extra = 29, bytes([size - 29])
    elif size < 285 + 65536:
        head, extra = 30, struct.pack(">H", size - 285)
    else:
        head, extra = 31, struct.pack(">I", size - 65821)[1:]
    if type_id <= 7:
        return bytes([(type_id << 5) | head]) + extra
    return bytes([head, type_id - 7]) + extra


def encode(value: Any) -> bytes:
    if isinstance(value, bool):
        return _control(14, int(value))
    if isinstance(value, str):
        raw = value.encode()
        return _control(2, len(raw)) + raw
    if isinstance(value, float):
        return _control(3, 8) + struct.pack(">d", value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError("negative ints are not needed here")
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        type_id = 6 if value < 2**32 else 9 if value < 2**64 else 10
        return _control(type_id, len(raw)) + raw
    if isinstance(value, dict):
        return _control(7, len(value)) + b"".join(encode(str(k)) + encode(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return _control(11, len(value)) + b"".join(encode(v) for v in value)
    raise TypeError(f"cannot encode {type(value)}")


def _uint(value: int, type_id: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return _control(type_id, len(raw)) + raw


class _Node:
    __slots__ = ("children",)

    def __init__(self) -> None:
        self.children: list[Any] = [None, None]   # None (empty), _Node, or int (data offset)


def write_mmdb(path: Path, database_type: str, networks: list[tuple[str, dict]], build_epoch: int,
               description: str = "test database", languages: tuple[str, ...] = ("en",)) -> Path:
    """`networks`: (CIDR, record); IPv4 networks go in the IPv4-mapped ::/96 subtree of an IPv6 tree."""
    data = bytearray()
    offsets: dict[bytes, int] = {}
    root = _Node()
    for cidr, record in sorted(networks, key=lambda nr: ipaddress.ip_network(nr[0]).prefixlen):
        blob = encode(record)
        if blob not in offsets:
            offsets[blob] = len(data)
            data += blob
        net = ipaddress.ip_network(cidr)
        # An IPv4 address a.b.c.d is ::a.b.c.d in the tree: the same integer, 96 more leading zeros.
        bits, depth = int(net.network_address), net.prefixlen + (96 if net.version == 4 else 0)
        node = root
        for i in range(depth - 1):
            bit = (bits >> (127 - i)) & 1
            child = node.children[bit]
            if not isinstance(child, _Node):
                split = _Node()
                split.children = [child, child]   # a shorter network already here covers both halves
                node.children[bit] = child = split
            node = child
        node.children[(bits >> (128 - depth)) & 1] = offsets[blob]
    nodes: list[_Node] = []
    stack = [root]
    while stack:   # number the nodes breadth-first
        node = stack.pop(0)
        nodes.append(node)
        stack.extend(c for c in node.children if isinstance(c, _Node))
    index = {id(n): i for i, n in enumerate(nodes)}
    count = len(nodes)
    tree = bytearray()
    for node in nodes:
        for child in node.children:
            if child is None:
                value = count
            elif isinstance(child, _Node):
                value = index[id(child)]
            else:
                value = count + 16 + child
            tree += struct.pack(">I", value)
    metadata = (
        encode("binary_format_major_version") + _uint(2, 5)
        + encode("binary_format_minor_version") + _uint(0, 5)
        + encode("build_epoch") + _uint(build_epoch, 9)
        + encode("database_type") + encode(database_type)
        + encode("description") + encode({"en": description})
        + encode("ip_version") + _uint(6, 5)
        + encode("languages") + encode(list(languages))
        + encode("node_count") + _uint(count, 6)
        + encode("record_size") + _uint(32, 5)
    )
    blob = bytes(tree) + b"\x00" * 16 + bytes(data) + b"\xab\xcd\xefMaxMind.com" + _control(7, 9) + metadata
    path.write_bytes(blob)
    return path
