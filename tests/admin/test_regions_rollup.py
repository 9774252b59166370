"""Country rows of the regions view: hashrate adds up; distinct miners are a union, not a sum."""

from __future__ import annotations

from pool.admin.interfaces import RegionRate, RegionsView
from pool.admin.routes_read import rollup_regions


def _view(country_miners: dict[str, int]) -> RegionsView:
    rows = [RegionRate(country="DE", country_name="Germany", subdivision="Bavaria", hashrate=30.0, miners=4),
            RegionRate(country="DE", country_name="Germany", subdivision="Hesse", hashrate=10.0, miners=3),
            RegionRate(country="US", country_name="United States", subdivision="Texas", hashrate=60.0, miners=5)]
    return RegionsView(window_seconds=3600, database="DB-IP City Lite", database_build="2023-04-01",
                       attribution="CC BY 4.0", items=rows, country_miners=country_miners)


def test_country_level_uses_the_providers_union_of_miners() -> None:
    response = rollup_regions(_view({"DE": 5, "US": 5}), "country", None)
    rows = {r.country: r for r in response.items}
    assert rows["DE"].miners == 5            # 4 + 3 subdivision miners, two of them in both subdivisions
    assert rows["DE"].hashrate == 40.0 and rows["US"].hashrate == 60.0
    assert rows["DE"].share == 0.4 and rows["US"].share == 0.6


def test_country_level_falls_back_to_the_sum_without_a_union() -> None:
    rows = {r.country: r for r in rollup_regions(_view({}), "country", None).items}
    assert rows["DE"].miners == 7


def test_subdivision_level_keeps_each_row() -> None:
    response = rollup_regions(_view({"DE": 5}), "subdivision", None)
    assert sorted((r.subdivision, r.miners) for r in response.items) == [("Bavaria", 4), ("Hesse", 3), ("Texas", 5)]


def test_the_database_age_and_its_stale_flag() -> None:
    view = _view({})
    assert rollup_regions(view, "country", None).database_stale is False       # age unknown: not claimed stale
    for age, stale in ((45.0, False), (45.5, True), (3.0, False)):
        view.database_age_days, view.max_database_age_days = age, 45
        response = rollup_regions(view, "country", None)
        assert (response.database_age_days, response.max_database_age_days, response.database_stale) == (age, 45, stale)
