"""What a config reload changes, said in the same terms by every component that takes part in one.

A component that can change live has two methods: `plan_reload(new_section)` checks the new values
and prepares what it needs (opened files, loaded certificates) without changing anything, raising
ConfigError naming the key when it cannot take them; `apply_reload(plan)` puts the plan in force and
cannot fail. pool/reload.py plans every component first and applies only when all of them agreed, so a
refused reload changes nothing. A plan is a `ReloadPlan`: the dotted keys it applies and the changed
keys that need a restart, plus whatever the component prepared.
"""

from __future__ import annotations

from typing import Any

import msgspec


class ReloadPlan(msgspec.Struct, frozen=True, kw_only=True):
    """One component's part of a reload, checked and prepared, not applied yet."""

    applied: tuple[str, ...] = ()            # dotted keys ("stratum.limits.ban_seconds") apply_reload puts in force
    requires_restart: tuple[str, ...] = ()   # changed keys the running component keeps its old value for


def changed_keys(old: Any, new: Any, prefix: str) -> list[str]:
    """Dotted keys whose values differ (lists of tables compared item by item when equally long)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in dict.fromkeys([*old, *new]):
            out += changed_keys(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)
        return out
    if (isinstance(old, list) and isinstance(new, list) and len(old) == len(new)
            and all(isinstance(x, dict) for x in old + new)):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out += changed_keys(a, b, f"{prefix}[{i}]")
        return out
    return [] if old == new else [prefix]


def section_changes(old: msgspec.Struct, new: msgspec.Struct, name: str) -> list[str]:
    """The dotted keys of section `name` (e.g. "geo.city_db") whose values differ."""
    return changed_keys(msgspec.to_builtins(old), msgspec.to_builtins(new), name)


def field_of(key: str) -> str:
    """The section field a dotted key is under: "geo.city_db" -> "city_db", "stratum.ports[0].port" -> "ports"."""
    return key.split(".")[1].split("[")[0]


def split_restart(keys: list[str], restart_fields: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(keys that apply live, keys under one of restart_fields)."""
    restart = tuple(k for k in keys if field_of(k) in restart_fields)
    return tuple(k for k in keys if k not in restart), restart
