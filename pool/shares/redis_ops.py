"""A Redis write as data: what a ledger batch applies, journals and groups by hash slot."""

from __future__ import annotations

import msgspec


class RedisOp(msgspec.Struct, frozen=True, array_like=True):
    """One Redis write a batch applies, as data, so the ledger can group it by hash slot,
    journal it and apply each group exactly once."""

    command: str              # e.g. "HINCRBYFLOAT", "INCRBYFLOAT", "PFADD", "ZADD", "EXPIRE"
    key: str
    args: tuple[str | int | float, ...] = ()


# The most arguments one op may carry: the batch script unpacks them in Lua (unpack() fails near 8000).
MAX_OP_ARGS = 7000


def split_op(command: str, key: str, args: list[str | int | float], group: int) -> list[RedisOp]:
    """`command key args` as ops of at most MAX_OP_ARGS arguments each, cut between groups of `group`
    arguments (a field and its values): for commands where applying the parts equals applying the
    whole (HMAX, HINCRBYFLOAT, PFADD, ZADD...)."""
    if len(args) % group:
        raise ValueError(f"{len(args)} arguments are not whole groups of {group}")
    step = MAX_OP_ARGS - MAX_OP_ARGS % group
    return [RedisOp(command, key, tuple(args[i:i + step])) for i in range(0, len(args), step)]
