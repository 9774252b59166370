"""Component snapshots for render tests, built from their msgspec types: `zeroed(Type, **fields)`
gives every field not named a zero value (0, "", False, empty, None when optional); `filled(Type)`
gives every field a distinct non-zero value (one item in every list and dict, no None), so a test
can vary one field at a time."""

from __future__ import annotations

import itertools
from typing import Any, TypeVar

import msgspec.inspect as mi

from pool.admin.interfaces import MetricsSnapshot
from pool.chain.jobs import ChainSnapshot
from pool.cluster.snapshot import NodeSnapshot
from pool.shares.ledger import LedgerSnapshot
from pool.stratum.stats import HistogramSnapshot, PortSnapshot, StratumSnapshot

T = TypeVar("T")


def _value(t: mi.Type, zero: bool, counter: itertools.count) -> Any:
    if isinstance(t, mi.UnionType):
        concrete = [u for u in t.types if not isinstance(u, mi.NoneType)]
        if zero and len(concrete) < len(t.types):
            return None
        return _value(concrete[0], zero, counter)
    if isinstance(t, mi.StructType):
        return t.cls(**{f.name: _value(f.type, zero, counter) for f in t.fields})
    if isinstance(t, mi.ListType):
        return [] if zero else [_value(t.item_type, zero, counter)]
    if isinstance(t, mi.DictType):
        return {} if zero else {_value(t.key_type, zero, counter): _value(t.value_type, zero, counter)}
    if isinstance(t, mi.LiteralType):
        return t.values[0]
    if isinstance(t, mi.BoolType):
        return not zero
    if isinstance(t, mi.IntType):
        return 0 if zero else next(counter)
    if isinstance(t, mi.FloatType):
        return 0.0 if zero else next(counter) + 0.25
    if isinstance(t, mi.StrType):
        return "" if zero else f"text{next(counter)}"
    if isinstance(t, mi.AnyType | mi.NoneType):
        return None
    raise TypeError(f"no sample value for {t!r}")


def zeroed(cls: type[T], **fields: Any) -> T:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    counter = itertools.count(1)
    values = {f.name: _value(f.type, True, counter) for f in info.fields if f.name not in fields}
    return cls(**values, **fields)


def filled(cls: type[T]) -> T:
    return _value(mi.type_info(cls), False, itertools.count(3))


def histogram(bounds: tuple[float, ...] = (1.0,)) -> HistogramSnapshot:
    return HistogramSnapshot(bounds=list(bounds), counts=[0] * (len(bounds) + 1), sum=0.0, count=0)


def port(number: int = 3333, **fields: Any) -> PortSnapshot:
    return zeroed(PortSnapshot, port=number, name=str(number), **fields)


def process(node: str = "test-node", *, stratum: dict[str, Any] | None = None,
            ledger: dict[str, Any] | None = None, **fields: Any) -> NodeSnapshot:
    """One process's snapshot: `stratum` and `ledger` name the fields of its components' snapshots."""
    stratum = {"fanout": histogram(), "block_to_notify": histogram(), **(stratum or {})}
    return zeroed(NodeSnapshot, node=node, stratum=zeroed(StratumSnapshot, **stratum),
                  ledger=zeroed(LedgerSnapshot, node=node, **(ledger or {})), **fields)


def metrics(*processes: NodeSnapshot, chain: dict[str, Any] | None = None, **fields: Any) -> MetricsSnapshot:
    """A scrape of these processes (one empty one when none is given)."""
    return MetricsSnapshot(at=fields.pop("at", 1_700_000_000.0), processes=list(processes) or [process()],
                           chain=zeroed(ChainSnapshot, **(chain or {})), **fields)

