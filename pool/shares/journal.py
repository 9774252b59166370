"""Local append-only journal: every accepted share reaches the OS before `add()` returns.

Frames: ``<u32 length><u32 crc32>`` then ``<type byte><msgpack body>``. Types:

- ``R`` one ShareRecord (written by the hot path with one os.write, no userspace buffer);
- ``K`` a found block (fsynced at once);
- ``B`` a cut batch: its id and the Redis ops per hash slot, covering the first ``items`` records and
  blocks not covered by an earlier ``B`` frame. Once a ``B`` frame is durable its records are no
  longer needed: replay applies the stored ops, so a replay never recomputes with different state;
- ``C`` a batch applied to Redis (not fsynced: losing it only means an idempotent re-apply).

Segments ``seg-<n>.wal`` rotate after a cut once they exceed the configured size and are deleted when
every batch cut in them is committed. A torn frame (a crash mid-write, or a write cut short by a full
disk) is detected by length/CRC and skipped: recovery scans on for the next frame whose header, type
and CRC check out and keeps reading, so one bad frame never costs the frames after it.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from pool.stratum.events import ShareRecord

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")
_MAX_FRAME = 1 << 30
_CRC_R = zlib.crc32(b"R")


class BlockFound(msgspec.Struct, frozen=True, kw_only=True):
    """A block this pool found, as journaled locally and written to Redis."""

    block_hash: str
    height: int
    account: str
    worker: str
    node: str
    found_at: float
    reward_sat: int            # the coinbase value (subsidy + fees of this block)
    network_difficulty: float  # at the time it was found (sizes the PPLNS window)
    scheme: str                # payout scheme in force when it was found


class BatchFrame(msgspec.Struct, frozen=True, kw_only=True):
    batch_id: str
    items: int                          # records + blocks this batch covers
    shares: int
    cut_at: float
    groups: list[tuple[int, bytes]]     # (hash slot, msgpack list of RedisOp)
    blocks: list[str] = []              # hashes of blocks in this batch


@dataclass
class Recovery:
    """What a restart finds: records/blocks never cut into a batch, and batches not yet committed."""

    pending: list[ShareRecord | BlockFound] = field(default_factory=list)
    batches: list[BatchFrame] = field(default_factory=list)
    torn_frames: int = 0


@dataclass
class _Segment:
    number: int
    path: Path
    open_batches: set[str] = field(default_factory=set)


_record_encoder = msgspec.msgpack.Encoder()
_block_decoder = msgspec.msgpack.Decoder(BlockFound)
_record_decoder = msgspec.msgpack.Decoder(ShareRecord)
_batch_decoder = msgspec.msgpack.Decoder(BatchFrame)


def _frame(kind: bytes, payload: bytes) -> bytes:
    return _HEADER.pack(len(payload) + 1, zlib.crc32(payload, zlib.crc32(kind))) + kind + payload


_FRAME_TYPES = frozenset(b"RKBC")


def _frame_at(data: bytes, pos: int) -> int:
    """The length of the whole valid frame starting at pos, or 0 when none does."""
    if pos + _HEADER.size >= len(data):
        return 0
    length, crc = _HEADER.unpack_from(data, pos)
    body_start = pos + _HEADER.size
    if length < 1 or length > _MAX_FRAME or body_start + length > len(data):
        return 0
    if data[body_start] not in _FRAME_TYPES or zlib.crc32(data[body_start : body_start + length]) != crc:
        return 0
    return _HEADER.size + length


def _iter_frames(data: bytes) -> Iterator[tuple[int, bytes, bytes] | None]:
    """Yields (offset, type, payload) for every valid frame; yields None once per torn or corrupt
    stretch, then resynchronises on the next offset where a whole frame checks out (type byte and
    CRC-32 both: a false match is a 2^-32 event per offset tried)."""
    pos = 0
    end = len(data)
    while pos < end:
        size = _frame_at(data, pos)
        if not size:
            yield None
            pos += 1
            while pos < end and not _frame_at(data, pos):
                pos += 1
            continue
        body_start = pos + _HEADER.size
        yield pos, data[body_start : body_start + 1], data[body_start + 1 : pos + size]
        pos += size


class Journal:
    def __init__(self, directory: str | os.PathLike[str], segment_bytes: int, fsync: bool = True) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.fsync_enabled = fsync
        self._segments: dict[int, _Segment] = {}
        self._batch_segment: dict[str, int] = {}
        self._current: _Segment | None = None
        self._fd = -1
        self._offset = 0
        self._closed_bytes = 0
        self._writes = 0   # frames written
        self._retired: list[int] = []
        self._synced = 0   # frames known to be on disk

    # -- startup ------------------------------------------------------------------------------
    def open(self) -> Recovery:
        """Read every segment, then start a fresh one for writing."""
        self.directory.mkdir(parents=True, exist_ok=True)
        recovery = Recovery()
        pending: list[ShareRecord | BlockFound] = []
        committed: set[str] = set()
        batches: list[BatchFrame] = []
        numbers = sorted(int(p.stem.split("-")[1]) for p in self.directory.glob("seg-*.wal"))
        for number in numbers:
            segment = _Segment(number, self._path(number))
            self._segments[number] = segment
            data = segment.path.read_bytes()
            self._closed_bytes += len(data)
            for frame in _iter_frames(data):
                if frame is None:
                    recovery.torn_frames += 1
                    log.warning("journal %s: torn or corrupt frame skipped", segment.path)
                    continue
                _, kind, payload = frame
                if kind == b"R":
                    pending.append(_record_decoder.decode(payload))
                elif kind == b"K":
                    pending.append(_block_decoder.decode(payload))
                elif kind == b"B":
                    batch = _batch_decoder.decode(payload)
                    del pending[: batch.items]
                    batches.append(batch)
                    segment.open_batches.add(batch.batch_id)
                    self._batch_segment[batch.batch_id] = number
                elif kind == b"C":
                    committed.add(payload.decode())
        for batch_id in committed:
            number = self._batch_segment.pop(batch_id, None)
            if number is not None:
                self._segments[number].open_batches.discard(batch_id)
        recovery.pending = pending
        recovery.batches = [b for b in batches if b.batch_id not in committed]
        self._start_segment((numbers[-1] + 1) if numbers else 1)
        return recovery

    def _path(self, number: int) -> Path:
        return self.directory / f"seg-{number:012d}.wal"

    def _start_segment(self, number: int) -> None:
        if self._fd >= 0:
            # An fsync may be running on it in a thread: it is closed by close_retired() later.
            if self.fsync_enabled:
                os.fsync(self._fd)
            self._retired.append(self._fd)
            self._closed_bytes += self._offset
        segment = _Segment(number, self._path(number))
        self._fd = os.open(segment.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._offset = 0
        self._segments[number] = segment
        self._current = segment
        self._sync_directory()

    def _sync_directory(self) -> None:
        if not self.fsync_enabled:
            return
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # -- writes -------------------------------------------------------------------------------
    def append_record(self, record: ShareRecord) -> None:
        """The hot path: one frame, one os.write, straight to the kernel. A short write (a full disk,
        a file size limit) is finished by the looping writer, which raises if the disk stays full: the
        caller must then not acknowledge the share as durable."""
        payload = _record_encoder.encode(record)
        frame = _HEADER.pack(len(payload) + 1, zlib.crc32(payload, _CRC_R)) + b"R" + payload
        written = os.write(self._fd, frame)
        self._offset += written
        if written != len(frame):
            self._write(frame[written:])
            return
        self._writes += 1

    def append_block(self, block: BlockFound) -> None:
        """Blocks are sacred: written and fsynced before the caller goes on."""
        self._write(_frame(b"K", _record_encoder.encode(block)))
        self.sync()

    def append_batch(self, batch: BatchFrame) -> tuple[int, int]:
        """Returns the batch frame's (segment, offset) so a queued batch can be re-read later."""
        assert self._current is not None
        location = (self._current.number, self._offset)
        self._write(_frame(b"B", _record_encoder.encode(batch)))
        self._current.open_batches.add(batch.batch_id)
        self._batch_segment[batch.batch_id] = self._current.number
        return location

    def append_commit(self, batch_id: str) -> None:
        self._write(_frame(b"C", batch_id.encode()))
        number = self._batch_segment.pop(batch_id, None)
        if number is not None and number in self._segments:
            self._segments[number].open_batches.discard(batch_id)

    def _write(self, frame: bytes) -> None:
        view = memoryview(frame)
        while view:
            written = os.write(self._fd, view)
            self._offset += written
            view = view[written:]
        self._writes += 1

    def sync(self) -> None:
        generation = self._writes
        self.sync_fd()
        self.mark_synced(generation)

    def sync_fd(self) -> None:
        """fsync only (safe to run in a thread while the loop keeps appending)."""
        if self.fsync_enabled and self._fd >= 0:
            os.fsync(self._fd)

    @property
    def write_generation(self) -> int:
        return self._writes

    @property
    def synced_generation(self) -> int:
        return self._synced

    def close_retired(self) -> None:
        while self._retired:
            os.close(self._retired.pop())

    @property
    def dirty(self) -> bool:
        return self._writes != self._synced

    def mark_synced(self, generation: int) -> None:
        self._synced = max(self._synced, generation)

    # -- maintenance --------------------------------------------------------------------------
    def after_cut(self) -> None:
        """Rotate at a batch boundary (so every record of an old segment is covered by a B frame)."""
        if self._offset >= self.segment_bytes and self._current is not None:
            self.sync()
            self._start_segment(self._current.number + 1)

    def collect(self) -> int:
        """Delete old segments whose batches are all committed; returns how many were deleted."""
        deleted = 0
        for number in sorted(self._segments):
            segment = self._segments[number]
            if segment is self._current or segment.open_batches:
                continue
            try:
                size = segment.path.stat().st_size
                segment.path.unlink()
                self._closed_bytes -= size
            except FileNotFoundError:
                pass
            del self._segments[number]
            deleted += 1
        if deleted:
            self._sync_directory()
        return deleted

    def read_batch(self, location: tuple[int, int]) -> BatchFrame:
        number, offset = location
        with open(self._path(number), "rb") as fh:
            fh.seek(offset)
            header = fh.read(_HEADER.size)
            length, crc = _HEADER.unpack(header)
            body = fh.read(length)
        if zlib.crc32(body) != crc or body[:1] != b"B":
            raise OSError(f"journal segment {number} offset {offset}: batch frame is corrupt")
        return _batch_decoder.decode(body[1:])

    def size_bytes(self) -> int:
        return self._closed_bytes + self._offset

    def close(self) -> None:
        self.close_retired()
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._closed_bytes += self._offset
            self._offset = 0
            self._fd = -1
