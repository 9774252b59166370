"""Range checks on single config fields, said once as msgspec Meta constraints on their types (a
closed set of values as a Literal), and the ConfigError that names the key when one fails: while
decoding a file (`from_msgspec`), and for a section built in code (a reload, an admin change) by
`check_fields`. Cross-field rules stay in each section's validate()."""

from __future__ import annotations

import re
import sys
import types
import typing
from typing import Annotated, Any, Literal

import msgspec

from pool.config.errors import ConfigError

Positive = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
# msgspec bounds must be finite: the largest float as the upper bound is how "not inf" is said.
FINITE = sys.float_info.max
FinitePositive = Annotated[float, msgspec.Meta(gt=0, le=FINITE)]
FiniteNonNegative = Annotated[float, msgspec.Meta(ge=0, le=FINITE)]
Fraction = Annotated[float, msgspec.Meta(gt=0, le=1)]           # a share of something, (0, 1]
PortNumber = Annotated[int, msgspec.Meta(ge=0, le=65535)]       # 0: the OS picks one (tests)

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")
_BOUNDS = ("gt", "ge", "lt", "le")


def from_msgspec(exc: msgspec.ValidationError, data: Any, root: type, prefix: str = "") -> ConfigError:
    """The ConfigError for a msgspec ValidationError raised converting `data` to `root`: the key it
    names, and for a range constraint the range and the value found ("must be 0..65535, got 70000")."""
    message = str(exc)
    match = _AT.search(message)
    if match is None:
        return ConfigError(prefix, message)
    path = match.group("path")
    reason = message[: match.start()]
    key = ".".join(part for part in (prefix, path.lstrip(".")) if part)
    unknown = re.search(r"unknown field `([^`]+)`", reason)
    if unknown:
        return ConfigError(f"{key}.{unknown.group(1)}" if key else unknown.group(1), "unknown key")
    info = _field_type(root, path)
    bounds = {op: getattr(info, op) for op in _BOUNDS if getattr(info, op, None) is not None}
    if bounds and reason.startswith("Expected `") and ", got" not in reason:
        found = _value_at(data, path)
        return ConfigError(key, f"{_say_range(bounds)}, got {found!r}" if found is not _MISSING else
                           _say_range(bounds))
    if isinstance(info, msgspec.inspect.LiteralType) and reason.startswith("Invalid enum value"):
        values = _declared_literal(root, path) or info.values
        return ConfigError(key, f"must be one of {', '.join(map(str, values))}, got {_value_at(data, path)!r}")
    return ConfigError(key, reason)


def check_fields(section: msgspec.Struct, key: str = "") -> None:
    """Hold a Struct built in code to its fields' constraints, as decoding it would."""
    data = msgspec.to_builtins(section)
    try:
        msgspec.convert(data, type(section))
    except msgspec.ValidationError as exc:
        raise from_msgspec(exc, data, type(section), key) from None


def _say_range(bounds: dict[str, float]) -> str:
    if bounds.get("le") == FINITE:
        rest = {op: value for op, value in bounds.items() if op != "le"}
        return f"{_say_range(rest)} and finite" if rest else "must be finite"
    low = bounds.get("ge", bounds.get("gt"))
    high = bounds.get("le", bounds.get("lt"))
    if low is not None and high is not None:
        if "ge" in bounds and "le" in bounds:
            return f"must be {_number(low)}..{_number(high)}"
        left = "[" if "ge" in bounds else "("
        right = "]" if "le" in bounds else ")"
        return f"must be in {left}{_number(low)}, {_number(high)}{right}"
    op, limit = next((op, bounds[op]) for op in _BOUNDS if op in bounds)
    return f"must be {dict(gt='>', ge='>=', lt='<', le='<=')[op]} {_number(limit)}"


def _number(value: float) -> str:
    """1e12 for a round limit, every digit of any other integer."""
    text = f"{value:g}".replace("e+", "e")
    if isinstance(value, int) and (value < 10**7 or float(text) != value):
        return str(value)
    return text


_MISSING = object()


def _steps(path: str) -> list[str | int]:
    return [name if name is not None and name != "" else int(index) for name, index in _STEP.findall(path)]


def _value_at(data: Any, path: str) -> Any:
    for step in _steps(path):
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return data


def _field_type(root: type, path: str) -> Any:
    """The msgspec.inspect type of the field at `path` in `root` (a range constraint's Metadata, a
    LiteralType, ...), or None when the path leads nowhere."""
    info: Any = msgspec.inspect.type_info(root)
    for step in _steps(path):
        while isinstance(info, msgspec.inspect.Metadata):
            info = info.type
        if isinstance(step, int) and hasattr(info, "item_type"):
            info = info.item_type
        elif isinstance(step, str) and isinstance(info, msgspec.inspect.StructType):
            info = next((f.type for f in info.fields if f.encode_name == step), None)
        elif isinstance(step, str) and isinstance(info, msgspec.inspect.DictType):
            info = info.value_type
        else:
            return None
        if info is None:
            return None
    if isinstance(info, msgspec.inspect.UnionType):
        info = next((t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)), None)
    return info


def _declared_literal(root: type, path: str) -> tuple[Any, ...]:
    """The values of the Literal declared for the field at `path`, in the order written (msgspec.inspect
    sorts them; "1m, 5m, 15m, 1h" reads better than sorted), or () when the path holds no Literal."""
    hint: Any = root
    for step in _steps(path):
        hint = _bare(hint)
        if isinstance(step, int) and typing.get_origin(hint) is list:
            hint = typing.get_args(hint)[0]
        elif isinstance(step, str) and isinstance(hint, type) and issubclass(hint, msgspec.Struct):
            hint = typing.get_type_hints(hint, include_extras=True).get(step)
        elif isinstance(step, str) and typing.get_origin(hint) is dict:
            hint = typing.get_args(hint)[1]
        else:
            return ()
    hint = _bare(hint)
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else ()


def _bare(hint: Any) -> Any:
    """`hint` without Annotated metadata and without `| None`."""
    while typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        rest = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        hint = rest[0] if len(rest) == 1 else hint
    return hint
