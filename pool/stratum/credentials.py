"""What mining.authorize carries besides the account: the worker name's rules and the difficulty
options miners put in the password field (`x`, `d=4096`, `x,md=1024`)."""

from __future__ import annotations

import math
import re

_OPTION_SPLIT = re.compile(r"[,;&\s]+")
_DIFFICULTY_KEYS = frozenset({"d", "diff", "difficulty", "md", "mindiff"})


class PasswordOptions:
    __slots__ = ("fixed_difficulty", "invalid", "min_difficulty")

    def __init__(self, fixed_difficulty: float | None = None, min_difficulty: float | None = None) -> None:
        self.fixed_difficulty = fixed_difficulty
        self.min_difficulty = min_difficulty
        self.invalid = ""          # a difficulty option whose value is not a finite number ("d=inf")


def parse_password(password: str | None) -> PasswordOptions:
    """`x`, `d=4096`, `x,d=4096`, `md=1024`: d= fixes the difficulty, md= sets a floor for vardiff."""
    options = PasswordOptions()
    if not password:
        return options
    for token in _OPTION_SPLIT.split(password[:256]):
        key, sep, value = token.partition("=")
        if not sep:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        key = key.lower()
        if key in _DIFFICULTY_KEYS and not math.isfinite(number):
            options.invalid = token[:32]
            continue
        if not number > 0:
            continue
        if key in ("d", "diff", "difficulty"):
            options.fixed_difficulty = number
        elif key in ("md", "mindiff"):
            options.min_difficulty = number
    return options


_WORKER_NAME = re.compile(r"^[\x21-\x7e]+$")


def valid_worker_name(name: str, max_length: int = 128) -> bool:
    return 0 < len(name) <= max_length and bool(_WORKER_NAME.match(name))
