"""Small records a session keeps: each job as this connection received it (with the share target of
its difficulty), each authorized worker, and the per-port counters its shares add to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from pool.chain.types import Job
from pool.native.work import MAX_TARGET, difficulty_to_target, target_bytes

_TARGETS: dict[float, bytes] = {}


def share_target(difficulty: float) -> bytes:
    """32-byte little-endian share target for a difficulty (cached: few distinct values exist)."""
    cached = _TARGETS.get(difficulty)
    if cached is None:
        target = difficulty_to_target(difficulty) if difficulty > 0 else MAX_TARGET
        cached = target_bytes(target)
        if len(_TARGETS) < 100_000:
            _TARGETS[difficulty] = cached
    return cached


class SentJob:
    """A job as one connection received it: the difficulty in force then is what its shares are
    judged and credited at, so a retarget never rejects work already in flight."""

    __slots__ = ("difficulty", "job", "ntime", "target")

    def __init__(self, job: Job, difficulty: float, target: bytes, ntime: int) -> None:
        self.job = job
        self.difficulty = difficulty
        self.target = target
        self.ntime = ntime      # the ntime advertised (a re-issued job may advertise a later one)


class Counters:
    """Accepted/rejected totals; one instance per port, shared by its sessions. `worker_rejects` holds
    each worker's rejects (worker -> reject key -> count) until the ledger takes them into its next
    batch (drain_worker_rejects), which makes them durable per worker."""

    __slots__ = ("accepted", "accepted_difficulty", "blocks", "rejected", "worker_rejects")

    def __init__(self) -> None:
        self.accepted = 0
        self.accepted_difficulty = 0.0
        self.blocks = 0
        self.rejected: dict[str, int] = {}
        self.worker_rejects: dict[str, dict[str, int]] = {}


def drain_worker_rejects(counters: Iterable[Counters]) -> dict[str, dict[str, int]]:
    """The rejects per worker counted since the last drain, taken out of every port's counters."""
    out: dict[str, dict[str, int]] = {}
    for one in counters:
        taken, one.worker_rejects = one.worker_rejects, {}
        for worker, reasons in taken.items():
            mine = out.get(worker)
            if mine is None:
                out[worker] = reasons
            else:
                for key, count in reasons.items():
                    mine[key] = mine.get(key, 0) + count
    return out


class WorkerStats:
    """One authorized worker on one connection; the hashrate inputs are accepted difficulty over time."""

    __slots__ = ("accepted", "accepted_difficulty", "account", "authorized_at", "best_difficulty", "blocks",
                 "last_share_at", "name", "rejected")

    def __init__(self, name: str, account: str, now: float) -> None:
        self.name = name
        self.account = account
        self.authorized_at = now
        self.accepted = 0
        self.accepted_difficulty = 0.0
        self.blocks = 0
        self.last_share_at = 0.0
        self.best_difficulty = 0.0       # the hardest accepted share of this connection (what its hash reached)
        self.rejected: dict[str, int] = {}

    def snapshot(self) -> dict[str, Any]:
        return {"worker": self.name, "account": self.account, "accepted": self.accepted,
                "accepted_difficulty": self.accepted_difficulty, "blocks": self.blocks,
                "rejected": dict(self.rejected), "authorized_at": self.authorized_at,
                "last_share_at": self.last_share_at, "best_difficulty": self.best_difficulty}


class SessionSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """One connection's session as the admin side and tests read it: a copy, so reading it can
    change nothing (the live Session is reached only through its methods)."""

    peer: str                           # the miner's address (from the PROXY header when proxied)
    port: int
    session_id: str                     # the resume token handed out at subscribe ("" before)
    subscribed: bool
    working: bool                       # has work: subscribed and authorized, first job sent
    state: str                          # session_states.State's value ("working", "resuming", ...)
    user_agent: str
    firmware: str
    workers: list[str]
    difficulty: float                   # announced, in force for the next job sent
    pending_difficulty: float | None    # to be announced before the next job
    suggested_floor: float              # the client's floor (suggest_difficulty, md=, configure)
    fixed_difficulty: float | None      # d= in the password
    bad_messages: int                   # counted against limits.max_bad_messages
    auth_failures: int
    info: dict[str, str]                # mining.configure info.* keys (and reported-version)
    pending_requests: int               # server requests (client.get_version) not yet answered
    connected_at: float
    last_activity: float
