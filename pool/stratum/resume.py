"""mining.subscribe resume across worker processes and hosts: what flows, and the directory interface.

A closed connection's extranonce1 is parked locally (ExtranonceAllocator.park) and published to a
`ResumeDirectory` under its session token. A miner that reconnects to any process presents the token;
that process `claim`s it, which hands the parked extranonce1 to exactly one claimer.

Why extranonce1 stays unique (stratum.md §9.2) when a value of prefix P (leased by process A) is
adopted by process B:

* The directory keeps, per prefix, a "held" record for every value of P that lives outside A's own
  bookkeeping: each published park (holder = the publisher, until the park ends) and each claimed value
  (holder = the claimer, renewed by every `sync` while the connection is live, re-published when it
  parks again). Publish and claim write the token entry and the held record in one atomic step.
* The owner of P treats every held value as reserved (`ExtranonceAllocator.set_reserved`): it reads
  them when it sets a prefix (so a process that leases P after A died also sees A's parks and loans)
  and on every `sync`.
* A never frees a value it parked on its own clock alone. When its park expires it `settle`s it in
  a sync: atomically, its own token entry is withdrawn (nobody can claim it afterwards) and the held
  records of P are read back in the same step. If B claimed the token before, B's held record is in
  that answer and the value stays reserved; if not, nobody holds it and it is free. No clocks of two
  hosts are ever compared: expiries are durations counted by the directory itself.
* B gives a borrowed value back the same way (settle when its own park of it ends); if B dies, its
  held records expire after `loan_seconds` without renewal and the value becomes free again.

* A process that moves to another prefix (its lease was lost in a Redis outage) holds the live values
  of the old prefix the same way, so the next owner of that prefix reserves them from its next sync.

The one case this cannot cover is a holder cut off from the directory for longer than loan_seconds
while its miner keeps the connection (and, after a lost lease, the seconds until the new owner of the
old prefix syncs): the same caveat as an expired prefix lease.

A process that dies (SIGKILL, a lost host) parks nothing, so its miners could not resume anywhere
if the directory knew only parks. Therefore every working session is also `announce`d as live
(token -> extranonce1, under its holder), and every process sends a `heartbeat` every
resume_heartbeat_seconds. A claim of a live session answers `HeldElsewhere` while its holder's
heartbeat is fresh (the claimer asks again until resume_holder_timeout has passed, so a miner that
opened a second connection beside a live one never gets the same extranonce1 twice); once the
holder has been silent for resume_holder_timeout it is taken for dead and the claim takes the value
over (held record for the claimer, as for a parked one). Until then, and until its live entries
expire (session_resume_seconds after the last heartbeat), a dead holder's values stay reserved for
whoever owns their prefix next (`sync` lists them). A holder that was only stalled learns from its
next heartbeat which sessions were taken and closes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec


class ResumeLookup(msgspec.Struct, frozen=True):
    """Session event: subscribe asked to resume `token`; the session waits for `Session.resume_answer`."""

    token: str


class ParkedSession(msgspec.Struct, frozen=True):
    """A closed connection's extranonce1, resumable under `token` until `expires` (the caller's clock)."""

    token: str
    extranonce1: bytes
    expires: float


class LiveSession(msgspec.Struct, frozen=True):
    """A working session this process holds: resumable elsewhere if this process dies."""

    token: str
    extranonce1: bytes


class HeldElsewhere(msgspec.Struct, frozen=True):
    """Claim answer: the session is live on `holder`, whose heartbeat is fresh (ask again later)."""

    holder: str


class DirectorySync(msgspec.Struct, frozen=True):
    """One periodic round trip: give back what ended, renew what is held, read what is reserved."""

    prefix: int                                            # this process's prefix (reserved values of it)
    settle: list[ParkedSession] = []                       # parks that ended here (token "" = no entry)
    hold: list[bytes] = []                                 # claimed values still live here


class ResumeDirectory(Protocol):
    """Shared by every process of the pool; implemented outside pool.stratum (Redis)."""

    prefix_bits: int

    async def publish(self, sessions: Sequence[ParkedSession], now: float) -> int:
        """Make parked sessions claimable until their expiry; returns how many were published (a
        token already present is left alone)."""
        ...

    async def claim(self, token: str, now: float) -> ParkedSession | HeldElsewhere | None:
        """Atomically take the parked session (or the live one of a dead holder): exactly one caller
        gets it, the others None; HeldElsewhere while it is live on a process that is alive."""
        ...

    async def announce(self, sessions: Sequence[LiveSession], now: float) -> None:
        """Record working sessions as live here (resumable elsewhere once this process is dead)."""
        ...

    async def heartbeat(self, now: float) -> list[str]:
        """This process is alive; returns the tokens of its live sessions that other processes took
        over meanwhile (it was silent past the holder timeout): their connections must close."""
        ...

    async def sync(self, request: DirectorySync, now: float) -> list[bytes]:
        """Settle and renew as asked, then return the extranonce1s of `request.prefix` held anywhere."""
        ...
