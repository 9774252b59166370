"""Extranonce1 allocation: a prefix handed in by the app (leased from Redis per process/host) plus a
local counter, so no two live connections anywhere share an extranonce1 (stratum.md §9.2).

Sans-IO: the caller passes `now`; parked sessions (for mining.subscribe resume) expire lazily.

With a resume directory (`shared=True`, see pool/stratum/resume.py for the uniqueness argument) an
expired park is not freed here: it waits until `apply_sync` confirms it settled, values of this prefix
held by other processes are `set_reserved`, and values claimed from the directory are `adopt`ed.
"""

from __future__ import annotations

import secrets
from collections import deque

import msgspec

EXTRANONCE1_SIZE = 4


class ExtranonceSnapshot(msgspec.Struct, kw_only=True):
    prefix: int                         # this process's leased prefix
    prefix_bits: int
    live: int                           # extranonce1 values of open connections
    parked: int                         # kept for a mining.subscribe resume
    free: int                           # left for new connections (0: refused); errs low after a prefix change


class ExtranonceExhausted(RuntimeError):
    """Every extranonce1 under the current prefix is live or parked."""


class ExtranonceAllocator:
    def __init__(self, prefix: int = 0, prefix_bits: int = 0, *, park_seconds: float = 600.0,
                 start: int | None = None, shared: bool = False) -> None:
        self.park_seconds = park_seconds
        self.shared = shared
        self._live: set[int] = set()
        self._parked: dict[str, tuple[int, float]] = {}   # token -> (value, expires)
        self._parked_values: set[int] = set()             # parked or settling: not free
        self._expiry: deque[tuple[float, str]] = deque()
        self._settling: dict[str, int] = {}               # shared: expired parks waiting for apply_sync
        self._returning: list[int] = []                   # shared: borrowed values released unparked
        self._borrowed: set[int] = set()                  # shared: values held through the directory
        self._reserved: set[int] = set()                  # shared: this prefix's values held elsewhere
        self.set_prefix(prefix, prefix_bits, start=start)

    def set_prefix(self, prefix: int, prefix_bits: int, *, start: int | None = None,
                   reserved: list[bytes] | None = None) -> None:
        """Use a new prefix for later allocations (live connections keep theirs). `reserved`: the
        values of the new prefix the resume directory says are held elsewhere."""
        if not 0 <= prefix_bits <= 24:
            raise ValueError(f"prefix_bits must be 0..24, got {prefix_bits}")
        if not 0 <= prefix < (1 << prefix_bits):
            raise ValueError(f"prefix {prefix} does not fit in {prefix_bits} bits")
        if self.shared:
            # Live connections keep values of the prefix we leave (e.g. a lease lost in a Redis
            # outage). Whoever leases that prefix next must see them as held: they are renewed
            # through the directory like resumed values until their connections end.
            counter_bits = 32 - prefix_bits
            self._borrowed.update(v for v in self._live if v >> counter_bits != prefix)
        self.prefix = prefix
        self.prefix_bits = prefix_bits
        self._counter_bits = 32 - prefix_bits
        self._counter = secrets.randbelow(1 << self._counter_bits) if start is None else start
        self._reserved = {int.from_bytes(v, "big") for v in reserved or ()}

    @property
    def capacity(self) -> int:
        return 1 << self._counter_bits

    @property
    def live(self) -> int:
        return len(self._live)

    @property
    def parked(self) -> int:
        return len(self._parked)

    def allocate(self, now: float) -> tuple[bytes, str]:
        """A fresh extranonce1 and the opaque session token that can resume it later."""
        self._expire(now)
        mask = (1 << self._counter_bits) - 1
        base = self.prefix << self._counter_bits
        for _ in range(min(self.capacity, 1 << 20)):
            self._counter = (self._counter + 1) & mask
            value = base | self._counter
            if value not in self._live and value not in self._parked_values and value not in self._reserved:
                self._live.add(value)
                return value.to_bytes(EXTRANONCE1_SIZE, "big"), self._new_token()
        raise ExtranonceExhausted(f"no free extranonce1 under prefix {self.prefix}/{self.prefix_bits}")

    def resume(self, token: str, now: float) -> bytes | None:
        """The parked extranonce1 of a session that disconnected less than park_seconds ago."""
        self._expire(now)
        entry = self._parked.pop(token, None)
        if entry is None:
            return None
        value = entry[0]
        self._parked_values.discard(value)
        self._live.add(value)
        return value.to_bytes(EXTRANONCE1_SIZE, "big")

    def park(self, extranonce1: bytes, token: str, now: float, *, limit: int = 0) -> float | None:
        """Connection closed: keep its extranonce1 reserved for a resume; returns when the park ends
        (None: resume is off). With `limit`, at most that many parks are kept: the oldest ends first."""
        value = int.from_bytes(extranonce1, "big")
        if self.park_seconds <= 0:
            self.release(extranonce1)
            return None
        self._live.discard(value)
        if limit > 0:
            while len(self._parked) >= limit and token not in self._parked:
                self._end_park(*next(iter(self._parked.items())))
            if len(self._expiry) > 2 * limit:    # ended parks leave their expiry entries behind
                self._expiry = deque(sorted((e, t) for t, (_, e) in self._parked.items()))
        expires = now + self.park_seconds
        old = self._parked.get(token)
        if old is not None:
            self._parked_values.discard(old[0])
        self._parked[token] = (value, expires)
        self._parked_values.add(value)
        self._expiry.append((expires, token))
        return expires

    def release(self, extranonce1: bytes) -> None:
        value = int.from_bytes(extranonce1, "big")
        self._live.discard(value)
        if value in self._borrowed and value not in self._parked_values:
            self._borrowed.discard(value)
            self._returning.append(value)

    # -- shared (resume directory) ------------------------------------------------------------------

    @property
    def borrowed(self) -> int:
        return len(self._borrowed)

    @property
    def reserved(self) -> int:
        return len(self._reserved)

    def snapshot(self) -> ExtranonceSnapshot:
        return ExtranonceSnapshot(prefix=self.prefix, prefix_bits=self.prefix_bits, live=self.live,
                                  parked=self.parked,
                                  free=max(0, self.capacity - self.live - len(self._parked_values) - self.reserved))

    def adopt(self, extranonce1: bytes, token: str) -> None:
        """A value claimed from the directory is live here now (a local park of it is taken over)."""
        value = int.from_bytes(extranonce1, "big")
        entry = self._parked.get(token)
        if entry is not None and entry[0] == value:
            del self._parked[token]
        elif self._settling.get(token) == value:
            del self._settling[token]
        self._parked_values.discard(value)
        self._live.add(value)
        self._borrowed.add(value)

    def is_reserved(self, extranonce1: bytes) -> bool:
        value = int.from_bytes(extranonce1, "big")
        return value in self._reserved or value in self._parked_values or value in self._live

    def sync_request(self, now: float) -> tuple[list[tuple[str, bytes]], list[bytes]]:
        """What the next directory sync must settle ((token, extranonce1); token "" for a borrowed
        value released without a park) and renew (borrowed values live here)."""
        self._expire(now)
        settle = [(token, value.to_bytes(EXTRANONCE1_SIZE, "big")) for token, value in self._settling.items()]
        settle += [("", value.to_bytes(EXTRANONCE1_SIZE, "big")) for value in self._returning]
        hold = [value.to_bytes(EXTRANONCE1_SIZE, "big") for value in self._borrowed if value in self._live]
        return settle, hold

    def apply_sync(self, settled: list[tuple[str, bytes]], reserved: list[bytes], prefix: int) -> None:
        """The directory confirmed `settled` and listed the values of `prefix` held anywhere (ignored
        when the prefix changed meanwhile: set_prefix brought its own list)."""
        for token, extranonce1 in settled:
            value = int.from_bytes(extranonce1, "big")
            if not token:
                if value in self._returning:
                    self._returning.remove(value)
                continue
            if self._settling.get(token) == value:
                del self._settling[token]
                self._parked_values.discard(value)
                if value not in self._live:
                    self._borrowed.discard(value)
        if prefix == self.prefix:
            self._reserved = {int.from_bytes(v, "big") for v in reserved}

    def _new_token(self) -> str:
        while True:
            token = secrets.token_hex(4)
            if token not in self._parked and token not in self._settling:
                return token

    def _expire(self, now: float) -> None:
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            _, token = expiry.popleft()
            entry = self._parked.get(token)
            if entry is not None and entry[1] <= now:
                self._end_park(token, entry)

    def _end_park(self, token: str, entry: tuple[int, float]) -> None:
        del self._parked[token]
        if self.shared:
            self._settling[token] = entry[0]     # stays reserved until the directory agrees
        else:
            self._parked_values.discard(entry[0])
