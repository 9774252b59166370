"""Pure helpers for the handshake: BIP310 mining.configure and difficulty suggestions."""

from __future__ import annotations

import math
from typing import Any

from pool.native.work import DIFF1_TARGET

UNCHANGED = -1


class ConfigureOutcome:
    """What one mining.configure grants: the reply object and the state it changes."""

    __slots__ = ("info", "info_overflow", "minimum_difficulty", "result", "subscribe_extranonce",
                 "version_mask")

    def __init__(self) -> None:
        self.result: dict[str, Any] = {}
        self.version_mask: int | None = UNCHANGED     # None: rolling refused
        self.minimum_difficulty: float | None = None
        self.subscribe_extranonce = False
        self.info: dict[str, str] = {}
        self.info_overflow = False             # more info keys, or longer values, than the limits allow


NON_FINITE = "minimum-difficulty.value must be a finite number"


def negotiate(extensions: list[str], options: dict[str, Any], server_mask: int, *,
              max_info_keys: int = 16, max_info_length: int = 256) -> ConfigureOutcome:
    """Answer every requested extension (BIP310): true, false, or an error string."""
    outcome = ConfigureOutcome()
    result = outcome.result
    for extension in extensions[:16]:
        if extension == "version-rolling":
            miner_mask = _mask(options.get("version-rolling.mask", "ffffffff"))
            if miner_mask is None:
                result["version-rolling"] = "invalid version-rolling.mask"
                continue
            # min-bit-count (number, string or absent) and Braiins' bit-count are advisory: BIP310 says
            # not to disconnect when the intersection is smaller. A zero intersection is `false`.
            granted = server_mask & miner_mask
            outcome.version_mask = granted or None
            result["version-rolling"] = bool(granted)
            if granted:
                result["version-rolling.mask"] = f"{granted:08x}"
        elif extension == "minimum-difficulty":
            value = number(options.get("minimum-difficulty.value"))
            if value is not None and not math.isfinite(value):
                result["minimum-difficulty"] = NON_FINITE    # "inf", "1e999", "nan": never granted
                continue
            ok = value is not None and value >= 0
            result["minimum-difficulty"] = ok
            if ok:
                outcome.minimum_difficulty = value
        elif extension == "subscribe-extranonce":
            outcome.subscribe_extranonce = True
            result["subscribe-extranonce"] = True
        elif extension == "info":
            info = outcome.info
            for key, value in options.items():
                if key.startswith("info.") and isinstance(value, str):
                    if len(info) >= max_info_keys or len(key) > 69 or len(value) > max_info_length:
                        outcome.info_overflow = True
                        if len(info) >= max_info_keys:
                            break
                    info[key[5:69]] = value[:max_info_length]
            result["info"] = True
        elif isinstance(extension, str):
            result[extension[:64]] = False
    return outcome


def suggested_difficulty(params: list[Any], *, target: bool) -> float | None:
    """[number] for suggest_difficulty, [hex target] for suggest_target; None when unusable. A
    non-finite number ("inf", "1e999", "nan") is returned as it is: the caller answers it with an
    error, it is never a difficulty."""
    if not params:
        return None
    if not target:
        value = number(params[0])
        if value is not None and not math.isfinite(value):
            return value
        return value if value is not None and value > 0 else None
    text = params[0]
    if not isinstance(text, str) or not 0 < len(text) <= 64:
        return None
    try:
        as_int = int(text, 16)
    except ValueError:
        return None
    return DIFF1_TARGET / as_int if as_int > 0 else None


def number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _mask(raw: Any) -> int | None:
    if isinstance(raw, str):
        if not 0 < len(raw) <= 8:
            return None
        try:
            return int(raw, 16)
        except ValueError:
            return None
    if type(raw) is int and 0 <= raw <= 0xFFFFFFFF:
        return raw
    return None
