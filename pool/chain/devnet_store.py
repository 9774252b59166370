"""The devnet's chain on disk: an append-only file of fixed-size records, so a restarted demo keeps
its chain (the pool's books in Redis name blocks that must still exist).

Record: the 80-byte header, then tx_count, size and weight as little-endian uint32 (92 bytes). A torn
last record (a crash mid-write) is cut off on load; a record that does not extend the chain ends it.
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path

from pool.chain.devnet import Devnet, DevnetBlock
from pool.chain.tx import BlockHeader
from pool.config.chain import DevnetConfig

log = logging.getLogger(__name__)

_META = struct.Struct("<III")
RECORD_SIZE = 80 + _META.size


def _record(block: DevnetBlock) -> bytes:
    return block.header.raw + _META.pack(block.tx_count, block.size, block.weight)


class DevnetChainFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> list[tuple[BlockHeader, int, int, int]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        whole = len(data) - len(data) % RECORD_SIZE
        if whole != len(data):
            log.warning("devnet chain file %s: a torn last record (%d bytes) is cut off", self.path,
                        len(data) - whole)
            os.truncate(self.path, whole)
        return [(BlockHeader.parse(data[i:i + 80]), *_META.unpack_from(data, i + 80))
                for i in range(0, whole, RECORD_SIZE)]

    def rewrite(self, devnet: Devnet) -> None:
        """The whole chain, atomically (a new file renamed over the old)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.path.with_name(self.path.name + ".new")
        with open(scratch, "wb") as out:
            out.write(b"".join(_record(block) for block in devnet.chain))
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, self.path)

    def append(self, block: DevnetBlock) -> None:
        with open(self.path, "ab") as out:
            out.write(_record(block))


def open_devnet(config: DevnetConfig) -> Devnet:
    """A Devnet; with config.chain_file, the chain stored there (or a new one, stored from now on)."""
    devnet = Devnet(config)
    if not config.chain_file:
        return devnet
    store = DevnetChainFile(config.chain_file)
    records = store.load()
    taken = devnet.restore(records) if records else 0
    if taken:
        log.info("devnet: chain of height %d restored from %s", devnet.height, store.path)
    if taken != len(records):
        log.warning("devnet chain file %s: %d of %d records do not extend the chain; starting from height %d",
                    store.path, len(records) - taken, len(records), devnet.height)
    if taken != len(records) or not records:
        store.rewrite(devnet)
    devnet.listeners.append(store.append)
    return devnet
