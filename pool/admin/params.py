"""Request parsing for the admin API: every bad value becomes ApiError(400) naming the parameter."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

MAX_TEXT = 200
# Windows offered wherever the API takes one; the OpenAPI document lists the same names.
WINDOWS = {"5m": 300, "15m": 900, "1h": 3600, "6h": 21_600, "24h": 86_400, "7d": 604_800}
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class ApiError(Exception):
    def __init__(self, status: int, error: str, reason: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason
        self.headers = dict(headers or {})


def bad(name: str, reason: str) -> ApiError:
    return ApiError(400, "bad_parameter", f"{name}: {reason}")


def known_params(query: Mapping[str, str], allowed: set[str]) -> None:
    for name in query:
        if name not in allowed:
            hint = f"; expected one of {', '.join(sorted(allowed))}" if allowed else ""
            raise bad(name, f"unknown parameter{hint}")


def text(query: Mapping[str, str], name: str, default: str = "", max_len: int = MAX_TEXT) -> str:
    value = query.get(name, default)
    if len(value) > max_len:
        raise bad(name, f"longer than {max_len} characters")
    if CONTROL_CHARS.search(value):
        raise bad(name, "contains control characters")
    return value


def integer(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?\d{1,18}", raw):
        raise bad(name, f"must be an integer, got {raw[:40]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise bad(name, f"must be {low}..{high}, got {value}")
    return value


def optional_integer(query: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    return integer(query, name, 0, low, high) if name in query else None


def choice(query: Mapping[str, str], name: str, default: str, options: tuple[str, ...] | list[str]) -> str:
    value = query.get(name, default)
    if value not in options:
        raise bad(name, f"must be one of {', '.join(options)}, got {value[:40]!r}")
    return value


def boolean(query: Mapping[str, str], name: str, default: bool) -> bool:
    raw = query.get(name)
    if raw is None:
        return default
    if raw in ("true", "1"):
        return True
    if raw in ("false", "0"):
        return False
    raise bad(name, f"must be true or false, got {raw[:40]!r}")


def window_names(high: int) -> list[str]:
    return [name for name, seconds in WINDOWS.items() if seconds <= high]


def duration(query: Mapping[str, str], name: str, default: str, high: int) -> int:
    """One of the standard windows (5m ... 7d) up to `high` seconds, in seconds."""
    return WINDOWS[choice(query, name, default, window_names(high))]


def date(query: Mapping[str, str], name: str) -> dt.date:
    raw = query.get(name)
    if raw is None:
        raise bad(name, "is required (YYYY-MM-DD)")
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            raise ValueError
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise bad(name, f"must be a date YYYY-MM-DD, got {raw[:40]!r}") from None


def name_segment(value: str, what: str) -> str:
    """A worker or account name taken from the path."""
    if not value or len(value) > MAX_TEXT or CONTROL_CHARS.search(value):
        raise bad(what, f"must be 1..{MAX_TEXT} characters without control characters")
    return value


def ban_target(raw: str, name: str = "target") -> str:
    """An IP address or network in canonical form (host bits cleared)."""
    try:
        return str(ipaddress.ip_network(raw.strip(), strict=False))
    except ValueError:
        raise bad(name, f"must be an IP address or CIDR network, got {raw[:60]!r}") from None


def port_number(raw: str) -> int:
    if not re.fullmatch(r"\d{1,5}", raw) or not 1 <= int(raw) <= 65535:
        raise bad("port", f"must be 1..65535, got {raw[:20]!r}")
    return int(raw)


def body(raw: bytes, kind: type[T], *, required: bool = True) -> T:
    """Decode a JSON body into a Struct; an empty body is {} unless required."""
    if not raw.strip():
        if required:
            raise ApiError(400, "bad_body", "a JSON body is required")
        raw = b"{}"
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise ApiError(400, "bad_body", "body is not valid JSON") from None
    try:
        return msgspec.convert(_integral_floats_as_ints(value), kind)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "bad_body", f"invalid body: {exc}") from None


def _integral_floats_as_ints(value: Any) -> Any:
    """JSON has one number type: 500.0 is the integer 500 (as JSON Schema says), so an `int` field
    accepts it; float fields accept ints anyway."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(v) for v in value]
    return value


def jsonable(value: Any) -> bytes:
    return msgspec.json.encode(value)
