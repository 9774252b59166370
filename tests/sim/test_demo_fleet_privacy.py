"""The demo fleet, as planned with real IPs from the real database, passes the production privacy rule:
every country, US state and Chinese province it names is published on its own, nothing is withheld."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from pool.config import GeoConfig
from pool.geo.locator import GeoLocator
from pool.geo.privacy import Cell, Rule, apply_rule
from pool.sim.cli import ip_drawer
from pool.sim.fleet import DEMO_REGIONS, FleetConfig, plan_fleet


def test_demo_fleet_passes_production_privacy_rule() -> None:
    members = plan_fleet(FleetConfig(regions=dict(DEMO_REGIONS)), ip_drawer())
    assert len({m.country for m in members}) >= 25
    locator = GeoLocator(GeoConfig())
    cells: dict[tuple[str, str], Cell] = {}
    for index, member in enumerate(members):
        place = locator.lookup(member.public_ip)
        assert place.country == member.country, member
        if member.subdivision is not None:
            assert place.subdivision == member.subdivision, member
        cell = cells.setdefault((place.country, place.subdivision), Cell(place.country, place.subdivision))
        cell.difficulty += 1.0          # equal hashrate per simulated miner
        cell.top[member.username.split(".")[0]] = 1.0
        cell.hlls.append(index)
    groups: dict[str, list[Cell]] = defaultdict(list)
    for cell in cells.values():
        groups[cell.group].append(cell)

    async def count(unions: list[list[int]]) -> list[int]:
        return [len({members[i].username.split(".")[0] for i in union}) for union in unions]

    published = asyncio.run(apply_rule(dict(groups), Rule(), count))   # production defaults
    assert Rule() == Rule(min_miners=10, dominance_n=2, dominance_percent=85.0)
    assert published.other is None and published.withheld_difficulty == 0.0
    assert {total.group for total, _ in published.groups} == {r[:2] for r in DEMO_REGIONS}
    items = {(total.group, item.item) for total, kept in published.groups for item in kept}
    for region in DEMO_REGIONS:
        country, _, subdivision = region.partition("/")
        if subdivision:
            assert (country, subdivision) in items, region
