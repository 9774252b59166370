"""The local journal: frames survive, torn frames are skipped, recovery finds what was not applied."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from pool.shares.journal import BatchFrame, BlockFound, Journal, _frame
from pool.stratum.events import ShareRecord
from tests.ledger.support import record


def block(n: int) -> BlockFound:
    return BlockFound(block_hash=f"{n:064x}", height=n, account="alice", worker="alice.rig0", node="n",
                      found_at=1.0, reward_sat=1, network_difficulty=1.0, scheme="pplns")


def batch(batch_id: str, items: int) -> BatchFrame:
    return BatchFrame(batch_id=batch_id, items=items, shares=items, cut_at=1.0, groups=[(7, b"\x90")])


def test_recovery_returns_unbatched_items_and_uncommitted_batches(tmp_path: Path) -> None:
    journal = Journal(tmp_path, 1 << 30)
    assert journal.open().pending == []
    for i in range(3):
        journal.append_record(record(i, 5.0))
    journal.append_batch(batch("b1", 3))
    journal.append_record(record(3, 5.0))
    journal.append_batch(batch("b2", 1))
    journal.append_commit("b1")
    journal.append_record(record(4, 5.0))
    journal.append_block(block(9))
    journal.append_record(record(5, 5.0))
    journal.close()

    recovery = Journal(tmp_path, 1 << 30).open()
    assert [b.batch_id for b in recovery.batches] == ["b2"]
    assert recovery.pending == [record(4, 5.0), block(9), record(5, 5.0)]
    assert recovery.torn_frames == 0


def test_torn_tail_is_ignored_and_everything_before_it_kept(tmp_path: Path) -> None:
    journal = Journal(tmp_path, 1 << 30)
    journal.open()
    for i in range(5):
        journal.append_record(record(i, 5.0))
    journal.close()
    (segment,) = tmp_path.glob("seg-*.wal")
    size = segment.stat().st_size
    with segment.open("r+b") as fh:
        fh.truncate(size - 3)  # the last frame was cut short by a crash
    recovery = Journal(tmp_path, 1 << 30).open()
    assert recovery.pending == [record(i, 5.0) for i in range(4)]
    assert recovery.torn_frames == 1
    # A flipped byte inside the first frame is caught by its CRC; the frames after it are still read.
    with segment.open("r+b") as fh:
        fh.seek(20)
        byte = fh.read(1)
        fh.seek(20)
        fh.write(bytes([byte[0] ^ 0xFF]))
    recovery = Journal(tmp_path, 1 << 30).open()
    assert recovery.pending == [record(i, 5.0) for i in range(1, 4)]
    assert recovery.torn_frames == 2


def test_a_torn_frame_in_the_middle_costs_only_itself(tmp_path: Path) -> None:
    journal = Journal(tmp_path, 1 << 30)
    journal.open()
    journal.append_record(record(0, 5.0))
    journal.append_batch(batch("b0", 1))
    journal.close()
    (first,) = tmp_path.glob("seg-*.wal")
    frames = first.read_bytes()
    good = Journal(tmp_path / "x", 1 << 30)
    good.open()
    for i in range(1, 4):
        good.append_record(record(i, 5.0))
    good.close()
    (second,) = (tmp_path / "x").glob("seg-*.wal")
    tail = second.read_bytes()
    # A record cut short (the old hot path ignored short writes) with whole frames on both sides.
    first.write_bytes(frames + tail[:7] + tail)
    recovery = Journal(tmp_path, 1 << 30).open()
    assert recovery.torn_frames == 1
    assert recovery.pending == [record(i, 5.0) for i in range(1, 4)]
    assert [b.batch_id for b in recovery.batches] == ["b0"]


_SHORT_WRITE = r"""
import errno, resource, signal, sys
from pathlib import Path
from pool.shares.journal import Journal
from tests.ledger.support import record
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # past the limit write() fails with EFBIG instead
journal = Journal(Path(sys.argv[1]), 1 << 30, fsync=False)
journal.open()
journal.append_record(record(0, 5.0))
(segment,) = Path(sys.argv[1]).glob("seg-*.wal")
limit = segment.stat().st_size + 10          # the next frame is cut 10 bytes in: a short write
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
try:
    journal.append_record(record(1, 5.0))
except OSError as exc:
    print("raised", errno.errorcode[exc.errno])
else:
    print("returned")
"""


def test_a_short_write_on_the_hot_path_is_finished_or_raises(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _SHORT_WRITE, str(tmp_path)], cwd=Path(__file__).resolve().parents[2],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    # The disk stays "full": the append must not return as if the record were durable.
    assert out.strip() == "raised EFBIG"
    recovery = Journal(tmp_path, 1 << 30).open()
    assert recovery.pending == [record(0, 5.0)]
    assert recovery.torn_frames == 1


def test_segments_rotate_at_batch_boundaries_and_are_deleted_when_committed(tmp_path: Path) -> None:
    journal = Journal(tmp_path, segment_bytes=2000)
    journal.open()
    ids = []
    for n in range(5):
        for i in range(30):
            journal.append_record(record(i, 5.0))
        location = journal.append_batch(batch(f"b{n}", 30))
        assert journal.read_batch(location).batch_id == f"b{n}"
        ids.append(f"b{n}")
        journal.after_cut()
    assert len(list(tmp_path.glob("seg-*.wal"))) == 6
    before = journal.size_bytes()
    for batch_id in ids[:3]:
        journal.append_commit(batch_id)
    assert journal.collect() == 3
    assert len(list(tmp_path.glob("seg-*.wal"))) == 3
    assert journal.size_bytes() < before
    journal.close()
    recovery = Journal(tmp_path, 2000).open()
    assert [b.batch_id for b in recovery.batches] == ["b3", "b4"]
    assert recovery.pending == []


def test_add_path_is_one_unbuffered_write(tmp_path: Path) -> None:
    """What add() wrote is in the file at once, without a flush or close (it survives kill -9)."""
    journal = Journal(tmp_path, 1 << 30, fsync=False)
    journal.open()
    journal.append_record(record(0, 5.0))
    (segment,) = tmp_path.glob("seg-*.wal")
    assert segment.stat().st_size > 0
    assert os.read(os.open(segment, os.O_RDONLY), 1 << 16)[-1:] != b""
    journal.close()


def test_records_journaled_before_authorize_times_were_kept_still_decode(tmp_path: Path) -> None:
    """A journal written by the release before ShareRecord.authorized_at replays after an upgrade."""
    older = msgspec.msgpack.encode(msgspec.msgpack.decode(msgspec.msgpack.encode(record(0, 5.0)))[:-1])
    (tmp_path / f"seg-{1:012d}.wal").write_bytes(_frame(b"R", older))
    recovered = Journal(tmp_path, 1 << 30).open().pending
    assert len(recovered) == 1 and isinstance(recovered[0], ShareRecord)
    assert recovered[0].authorized_at == 0.0 and recovered[0].timestamp == 5.0
