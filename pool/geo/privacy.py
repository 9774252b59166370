"""The publication rule for region (and firmware) cells, and the folding of what fails it.

A cell is published only if it has at least k distinct miners and its n largest miners make up at
most p% of it. Cells are grouped (a country and its subdivisions, or a country and its firmware
families): a failing group goes wholly into the global Other; within a published group, failing items
fold into the group's Other; an Other that itself fails takes in the smallest published neighbour
until it passes (complementary suppression, so no suppressed cell can be recovered by subtraction).

Per-miner sums are upper bounds (the store keeps only each day's largest miners and bounds the rest by
the smallest one read), so the dominance check errs towards suppressing.
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from pool.geo.tables import OTHER


@dataclass
class Cell:
    group: str                       # country ISO (or ZZ/XP)
    item: str                        # subdivision or firmware family ("" = none known)
    difficulty: float = 0.0
    shares: int = 0
    hosting: float = 0.0
    proxy: float = 0.0
    hlls: list[int] = field(default_factory=list)    # handles of the HyperLogLogs to union
    top: dict[str, float] = field(default_factory=dict)  # miner -> upper bound of its difficulty
    floor: float = 0.0               # upper bound for any miner not in `top`
    miners: int = 0                  # distinct miners (filled by the engine)
    members: int = 1                 # how many base cells were merged into this one

    def absorb(self, other: Cell) -> None:
        top = {m: v + other.top.get(m, other.floor) for m, v in self.top.items()}
        for m, v in other.top.items():
            if m not in top:
                top[m] = v + self.floor
        self.top = top
        self.floor += other.floor
        self.difficulty += other.difficulty
        self.shares += other.shares
        self.hosting += other.hosting
        self.proxy += other.proxy
        self.hlls = self.hlls + other.hlls
        self.members += other.members

    def top_n_bound(self, n: int) -> float:
        return sum(heapq.nlargest(n, [*self.top.values(), *([self.floor] * n)]))


def merged(group: str, item: str, cells: Sequence[Cell]) -> Cell:
    out = Cell(group, item, members=0)
    for cell in cells:
        out.absorb(cell)
    return out


@dataclass(frozen=True)
class Rule:
    min_miners: int = 10
    dominance_n: int = 2
    dominance_percent: float = 85.0

    def passes(self, cell: Cell) -> bool:
        if cell.difficulty <= 0 or cell.miners < self.min_miners:
            return False
        return cell.top_n_bound(self.dominance_n) <= cell.difficulty * self.dominance_percent / 100.0


CountUnions = Callable[[list[list[int]]], Awaitable[list[int]]]


@dataclass
class Published:
    groups: list[tuple[Cell, list[Cell]]]   # (group total, published items incl. the group's Other)
    other: Cell | None                      # the global Other, when published
    folded_within_cells: int = 0            # base cells folded into an Other inside their group
    folded_within_difficulty: float = 0.0
    folded_global_cells: int = 0            # base cells folded into the global Other
    folded_global_difficulty: float = 0.0
    withheld_difficulty: float = 0.0        # not published at all (the global Other failed too)


async def _count(cells: Sequence[Cell], count: CountUnions) -> None:
    if not cells:
        return
    for cell, n in zip(cells, await count([c.hlls for c in cells]), strict=True):
        cell.miners = n


async def _fold_until_passes(other: Cell, published: list[Cell], rule: Rule, count: CountUnions) -> Cell:
    """Fold the smallest published cells into `other` until it passes or nothing is left."""
    await _count([other], count)
    while not rule.passes(other) and published:
        smallest = min(published, key=lambda c: c.difficulty)
        published.remove(smallest)
        other.absorb(smallest)
        await _count([other], count)
    return other


async def apply_rule(groups: dict[str, list[Cell]], rule: Rule, count: CountUnions) -> Published:
    totals = {g: merged(g, "", cells) for g, cells in groups.items()}
    await _count([*totals.values(), *(c for cells in groups.values() for c in cells)], count)
    result = Published(groups=[], other=None)

    failing_groups = [g for g, total in totals.items() if not rule.passes(total)]
    passing = [totals[g] for g in totals if g not in failing_groups]
    global_other = merged(OTHER, "", [totals[g] for g in failing_groups])
    if global_other.members:
        global_other = await _fold_until_passes(global_other, passing, rule, count)
        folded_groups = [g for g in totals if g not in {c.group for c in passing}]
        result.folded_global_cells = sum(len(groups[g]) for g in folded_groups)
        result.folded_global_difficulty = global_other.difficulty
        if rule.passes(global_other):
            result.other = global_other
        else:
            result.withheld_difficulty = global_other.difficulty

    for total in sorted(passing, key=lambda c: -c.difficulty):
        items = groups[total.group]
        ok = [c for c in items if rule.passes(c)]
        failing = [c for c in items if not rule.passes(c)]
        if failing:
            other = merged(total.group, OTHER, failing)
            other = await _fold_until_passes(other, ok, rule, count)
            result.folded_within_cells += other.members
            result.folded_within_difficulty += other.difficulty
            ok.append(other)
        result.groups.append((total, sorted(ok, key=lambda c: -c.difficulty)))
    return result
