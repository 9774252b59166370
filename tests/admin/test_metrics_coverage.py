"""/metrics is rendered from the components' own snapshots: every field of every snapshot a scrape
holds shows in the text (changing it changes the text), or is named in NOT_RENDERED with a reason
and changing it changes nothing. A field added to a component's snapshot fails here until it is
rendered (one line in pool/admin/metrics.py) or excluded there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from pool.admin.interfaces import MetricsSnapshot
from pool.admin.metrics import NOT_RENDERED, render
from tests.support.snapshots import filled

Path = tuple[Any, ...]


def leaves(value: Any, path: Path = (), owner: str = "") -> Iterator[tuple[Path, str]]:
    """(path, "Type.field") of every scalar in `value`: struct fields by name, the first item of a list,
    the value of a dict's one key."""
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            yield from leaves(getattr(value, name), (*path, name), f"{type(value).__name__}.{name}")
    elif isinstance(value, list):
        yield from leaves(value[0], (*path, 0), owner)
    elif isinstance(value, dict):
        key = next(iter(value))
        yield from leaves(value[key], (*path, key), owner)
    else:
        yield path, owner


def owners(value: Any, path: Path) -> Iterator[str]:
    """What a path passes through: each struct's type name and "Type.field" of the field taken."""
    for step in path:
        if isinstance(value, msgspec.Struct):
            yield type(value).__name__
            yield f"{type(value).__name__}.{step}"
            value = getattr(value, step)
        else:
            value = value[step]


def replaced(value: Any, path: Path, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, msgspec.Struct):
        return msgspec.structs.replace(value, **{head: replaced(getattr(value, head), rest, new)})
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[head] = replaced(value[head], rest, new)
    return copy


def variants(value: Any) -> list[Any]:
    """Other values of the same type: larger, zero, negative (a comparison flips one way or the other)."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value * 1000 + 7, 0, -value - 1]
    if isinstance(value, float):
        return [value * 1000 + 7.5, 0.0, -value - 1.5]
    if isinstance(value, str):
        return [value + "-changed", ""]
    raise AssertionError(f"no variant of {value!r}")


def text(snap: MetricsSnapshot) -> str:
    return render(snap, admin_requests={200: 1}, rate_limited=0)


def excluded_by(path_owners: list[str]) -> str | None:
    return next((key for key in path_owners if key in NOT_RENDERED), None)


def test_every_snapshot_field_is_rendered_or_excluded_with_a_reason() -> None:
    base = filled(MetricsSnapshot)
    assert base.books is not None
    # "consistent" is (no inconsistent account AND balances sum to 0): with the first held, the second shows.
    base.books = msgspec.structs.replace(base.books, inconsistent_accounts=0)
    base_text = text(base)
    unrendered, lying, used = [], [], set()
    for path, field in leaves(base):
        value = base
        for step in path:
            value = getattr(value, step) if isinstance(value, msgspec.Struct) else value[step]
        changes = any(text(replaced(base, path, other)) != base_text for other in variants(value))
        exclusion = excluded_by(list(owners(base, path)))
        if exclusion:
            used.add(exclusion)
            if changes:
                lying.append(f"{field} (excluded as {exclusion!r}) changes the text")
        elif not changes:
            unrendered.append(field)
    assert not unrendered, f"fields neither rendered nor in NOT_RENDERED: {unrendered}"
    assert not lying, lying
    assert set(NOT_RENDERED) <= used, f"NOT_RENDERED names no field: {sorted(set(NOT_RENDERED) - used)}"
    assert all(reason for reason in NOT_RENDERED.values())


def test_the_walk_reaches_every_snapshot_type() -> None:
    # The sample fills every optional and every container, so no snapshot type is skipped.
    sample = filled(MetricsSnapshot)
    reached = {owner for path, _ in leaves(sample) for owner in owners(sample, path)}
    assert {"MetricsSnapshot", "NodeSnapshot", "StratumSnapshot", "PortSnapshot", "ExtranonceSnapshot",
            "ResumeSnapshot", "HistogramSnapshot", "LedgerSnapshot", "ConnRow", "BanRow", "ChainSnapshot",
            "NodeHealth", "BlockResult", "GeoSnapshot", "DatabaseInfo", "TargetStats", "BooksSnapshot",
            "HashrateFigure", "PortRate", "CountryRate"} <= reached
