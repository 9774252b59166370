"""The publication rule and folding, on cells built by hand. Distinct miners are counted exactly as
unions of sets (the Redis HyperLogLog path is covered in test_exports)."""

from __future__ import annotations

from pool.geo.privacy import Cell, Rule, apply_rule


class Miners:
    """Handles -> sets of miner ids; count() is the exact size of each union."""

    def __init__(self) -> None:
        self.sets: list[set[str]] = []

    def cell(self, group: str, item: str, sums: dict[str, float]) -> Cell:
        self.sets.append(set(sums))
        return Cell(group, item, difficulty=sum(sums.values()), shares=len(sums), hlls=[len(self.sets) - 1],
                    top=dict(sums))

    async def count(self, unions: list[list[int]]) -> list[int]:
        return [len(set().union(*(self.sets[h] for h in handles))) for handles in unions]


def even(prefix: str, n: int, each: float = 10.0) -> dict[str, float]:
    return {f"{prefix}{i}": each for i in range(n)}


RULE = Rule(min_miners=10, dominance_n=2, dominance_percent=85.0)


async def test_cells_that_pass_are_published_as_is() -> None:
    m = Miners()
    groups = {"US": [m.cell("US", "Texas", even("t", 12)), m.cell("US", "Georgia", even("g", 20))]}
    pub = await apply_rule(groups, RULE, m.count)
    (total, items), = pub.groups
    assert total.miners == 32 and [c.item for c in items] == ["Georgia", "Texas"]
    assert pub.other is None and pub.folded_within_cells == 0 and pub.folded_global_cells == 0


async def test_too_few_miners_folds_into_country_other_with_complementary_suppression() -> None:
    m = Miners()
    groups = {"US": [m.cell("US", "Texas", even("t", 30)), m.cell("US", "Georgia", even("g", 12)),
                     m.cell("US", "Ohio", even("o", 3))]}
    pub = await apply_rule(groups, RULE, m.count)
    (_total, items), = pub.groups
    # Ohio (3 miners) alone would be an Other that fails, so the smallest published state (Georgia)
    # folds in with it: Other = 15 miners.
    assert {c.item: c.miners for c in items} == {"Texas": 30, "Other": 15}
    assert pub.folded_within_cells == 2 and pub.folded_within_difficulty == 150.0


async def test_dominated_cell_is_suppressed() -> None:
    m = Miners()
    whale = {**even("s", 11, each=1.0), "whale": 500.0}
    groups = {"KZ": [m.cell("KZ", "Almaty", whale), m.cell("KZ", "Astana", even("a", 40))]}
    pub = await apply_rule(groups, RULE, m.count)
    (_total, items), = pub.groups
    assert "Almaty" not in {c.item for c in items}
    assert RULE.passes(items[0]) and len(items) == 1 and items[0].item == "Other"   # merged to pass


async def test_failing_country_folds_into_global_other() -> None:
    m = Miners()
    groups = {
        "US": [m.cell("US", "Texas", even("t", 50))],
        "CN": [m.cell("CN", "Sichuan", even("c", 40))],
        "MY": [m.cell("MY", "Johor", even("m", 4))],
        "IR": [m.cell("IR", "Tehran", even("i", 7))],
    }
    pub = await apply_rule(groups, RULE, m.count)
    assert [t.group for t, _ in pub.groups] == ["US", "CN"]
    assert pub.other is not None and pub.other.miners == 11 and pub.other.difficulty == 110.0
    assert pub.folded_global_cells == 2 and pub.folded_global_difficulty == 110.0


async def test_global_other_that_fails_takes_the_smallest_country_then_may_be_withheld() -> None:
    m = Miners()
    groups = {"US": [m.cell("US", "Texas", even("t", 50))], "CN": [m.cell("CN", "Sichuan", even("c", 11))],
              "MY": [m.cell("MY", "Johor", even("m", 4))]}
    pub = await apply_rule(groups, RULE, m.count)
    assert [t.group for t, _ in pub.groups] == ["US"]
    assert pub.other is not None and pub.other.miners == 15
    tiny = Miners()
    alone = {"MY": [tiny.cell("MY", "Johor", even("m", 4))]}
    pub = await apply_rule(alone, RULE, tiny.count)
    assert pub.groups == [] and pub.other is None and pub.withheld_difficulty == 40.0


async def test_same_miner_in_two_cells_is_counted_once_and_its_sums_add_up() -> None:
    m = Miners()
    shared = even("x", 9)
    a = m.cell("DE", "Berlin", {**shared, "big": 45.0})
    b = m.cell("DE", "Hesse", {**shared, "big": 45.0})
    pub = await apply_rule({"DE": [a, b]}, RULE, m.count)
    (total, items), = pub.groups
    assert total.miners == 10                       # a union, not 20
    assert total.top_n_bound(2) == 90.0 + 20.0      # "big" in both cells, plus one x miner in both
    assert len(items) == 2


async def test_unread_miners_are_bounded_by_the_floor() -> None:
    # A cell whose top list was cut: any unseen miner may hold up to `floor`, so two unseen miners
    # could dominate; the rule must assume they do.
    cell = Cell("US", "Texas", difficulty=100.0, hlls=[], top={"a": 10.0}, floor=40.0, miners=50)
    assert cell.top_n_bound(2) == 80.0
    assert RULE.passes(cell)
    cell.floor = 45.0
    assert not RULE.passes(cell)
