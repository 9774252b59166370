"""Extranonce1 allocation: a prefix handed in by the app (leased from Redis per process/host) plus a
local counter, so no two live connections anywhere share an extranonce1 (stratum.md §9.2).

Sans-IO: the caller passes `now`; parked sessions (for mining.subscribe resume) expire lazily.
"""

from __future__ import annotations

import secrets
from collections import deque

EXTRANONCE1_SIZE = 4


class ExtranonceExhausted(RuntimeError):
    """Every extranonce1 under the current prefix is live or parked."""


class ExtranonceAllocator:
    def __init__(self, prefix: int = 0, prefix_bits: int = 0, *, park_seconds: float = 600.0,
                 start: int | None = None) -> None:
        self.park_seconds = park_seconds
        self._live: set[int] = set()
        self._parked: dict[str, tuple[int, float]] = {}   # token -> (value, expires)
        self._parked_values: set[int] = set()
        self._expiry: deque[tuple[float, str]] = deque()
        self.set_prefix(prefix, prefix_bits, start=start)

    def set_prefix(self, prefix: int, prefix_bits: int, *, start: int | None = None) -> None:
        """Use a new prefix for later allocations (live connections keep theirs)."""
        if not 0 <= prefix_bits <= 24:
            raise ValueError(f"prefix_bits must be 0..24, got {prefix_bits}")
        if not 0 <= prefix < (1 << prefix_bits):
            raise ValueError(f"prefix {prefix} does not fit in {prefix_bits} bits")
        self.prefix = prefix
        self.prefix_bits = prefix_bits
        self._counter_bits = 32 - prefix_bits
        self._counter = secrets.randbelow(1 << self._counter_bits) if start is None else start

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
            if value not in self._live and value not in self._parked_values:
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

    def park(self, extranonce1: bytes, token: str, now: float) -> None:
        """Connection closed: keep its extranonce1 reserved for a resume."""
        value = int.from_bytes(extranonce1, "big")
        self._live.discard(value)
        if self.park_seconds <= 0:
            return
        expires = now + self.park_seconds
        old = self._parked.get(token)
        if old is not None:
            self._parked_values.discard(old[0])
        self._parked[token] = (value, expires)
        self._parked_values.add(value)
        self._expiry.append((expires, token))

    def release(self, extranonce1: bytes) -> None:
        self._live.discard(int.from_bytes(extranonce1, "big"))

    def _new_token(self) -> str:
        while True:
            token = secrets.token_hex(4)
            if token not in self._parked:
                return token

    def _expire(self, now: float) -> None:
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            _, token = expiry.popleft()
            entry = self._parked.get(token)
            if entry is not None and entry[1] <= now:
                del self._parked[token]
                self._parked_values.discard(entry[0])
