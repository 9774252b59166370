"""Pure helpers for the handshake: BIP310 mining.configure and difficulty suggestions."""

from __future__ import annotations

from typing import Any

from pool.native.work import DIFF1_TARGET

UNCHANGED = -1


class ConfigureOutcome:
    """What one mining.configure grants: the reply object and the state it changes."""

    __slots__ = ("info", "minimum_difficulty", "result", "subscribe_extranonce", "version_mask")

    def __init__(self) -> None:
        self.result: dict[str, Any] = {}
        self.version_mask: int | None = UNCHANGED     # None: rolling refused
        self.minimum_difficulty: float | None = None
        self.subscribe_extranonce = False
        self.info: dict[str, str] = {}


def negotiate(extensions: list[str], options: dict[str, Any], server_mask: int) -> ConfigureOutcome:
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
            ok = value is not None and value >= 0
            result["minimum-difficulty"] = ok
            if ok:
                outcome.minimum_difficulty = value
        elif extension == "subscribe-extranonce":
            outcome.subscribe_extranonce = True
            result["subscribe-extranonce"] = True
        elif extension == "info":
            for key, value in list(options.items())[:16]:
                if key.startswith("info.") and isinstance(value, str):
                    outcome.info[key[5:64]] = value[:256]
            result["info"] = True
        elif isinstance(extension, str):
            result[extension[:64]] = False
    return outcome


def suggested_difficulty(params: list[Any], *, target: bool) -> float | None:
    """[number] for suggest_difficulty, [hex target] for suggest_target; None when unusable."""
    if not params:
        return None
    if not target:
        value = number(params[0])
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
