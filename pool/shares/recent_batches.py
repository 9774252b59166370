"""The batches applied in the last few seconds, kept to be applied again after an outage.

Redis can lose writes it acknowledged: replication is asynchronous, so a replica promoted after its
master died may lack the master's last batches, and a restart with `appendfsync everysec` loses up
to a second. The ledger has already committed those batches in its journal, so they would be gone
from the books. After an outage it therefore applies the recent ones again: every group carries its
"applied" marker in the same script and slot, so Redis skips the groups it kept and takes the lost
ones (marker and ops together) exactly once.
"""

from __future__ import annotations

from collections import deque

from pool.shares.journal import BatchFrame


class RecentBatches:
    """Batches applied within `seconds` (at most `max_bytes` of their groups), oldest first."""

    def __init__(self, seconds: float, max_bytes: int) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        self._frames: deque[tuple[float, int, BatchFrame]] = deque()
        self._bytes = 0

    def add(self, frame: BatchFrame, now: float) -> None:
        if self.seconds <= 0:
            return
        size = sum(len(blob) for _, blob in frame.groups)
        self._frames.append((now, size, frame))
        self._bytes += size
        self._trim(now)

    def frames(self, now: float) -> list[BatchFrame]:
        self._trim(now)
        return [frame for _, _, frame in self._frames]

    def __len__(self) -> int:
        return len(self._frames)

    def _trim(self, now: float) -> None:
        frames = self._frames
        while frames and (frames[0][0] < now - self.seconds or self._bytes > self.max_bytes):
            _, size, _ = frames.popleft()
            self._bytes -= size
