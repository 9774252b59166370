"""A Redis write as data: what a ledger batch applies, journals and groups by hash slot."""

from __future__ import annotations

import msgspec


class RedisOp(msgspec.Struct, frozen=True, array_like=True):
    """One Redis write a batch applies, as data, so the ledger can group it by hash slot,
    journal it and apply each group exactly once."""

    command: str              # e.g. "HINCRBYFLOAT", "INCRBYFLOAT", "PFADD", "ZADD", "EXPIRE"
    key: str
    args: tuple[str | int | float, ...] = ()
