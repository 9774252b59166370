"""Subdivision names as DB-IP and MaxMind releases spell them -> one ISO 3166-2 code and one spelling."""

from __future__ import annotations

import pytest

from pool.geo.subdivisions import canonical_name, code_name, subdivision


@pytest.mark.parametrize(("country", "spelling", "code", "published"), [
    ("CL", "Santiago Metropolitan", "CL-RM", "Santiago Metropolitan"),        # DB-IP's spelling
    ("CL", "Región Metropolitana de Santiago", "CL-RM", "Santiago Metropolitan"),  # ISO's
    ("CL", "Maule Region", "CL-ML", "Maule"),                                  # a type word DB-IP adds
    ("AL", "Berat County", "AL-01", "Berat"),
    ("IR", "Qom Province", "IR-25", "Qom"),
    ("CN", "Ningxia Hui Autonomous Region", "CN-NX", "Ningxia"),
    ("CN", "Ningxia", "CN-NX", "Ningxia"),
    ("US", "Washington D.C.", "US-DC", "District of Columbia"),
    ("US", "Washington", "US-WA", "Washington"),
    ("US", "TX", "US-TX", "Texas"),
    # DB-IP's English names, known from the iso3166-2 package's other names; published as ISO spells them.
    ("DE", "Bavaria", "DE-BY", "Bayern"),
    ("DE", "Hesse", "DE-HE", "Hessen"),
    ("RU", "Amur Oblast", "RU-AMU", "Amurskaya oblast'"),
    ("KZ", "Nur-Sultan", "KZ-71", "Astana"),                                  # renamed 2022: one series
    ("CN", "Canton", "CN-GD", "Guangdong"),
])
def test_spellings_map_to_one_code(country: str, spelling: str, code: str, published: str) -> None:
    found = subdivision(country, spelling)
    assert found is not None and (found.code, found.name) == (code, published)
    assert canonical_name(country, spelling) == published and code_name(code) == published


def test_a_name_two_subdivisions_share_without_their_type_words_matches_neither() -> None:
    # Almaty the city (KZ-75) and Almaty Region (KZ-19, "Almaty oblysy"): stripped of "Region" they collide.
    assert subdivision("KZ", "Almaty").code == "KZ-75"            # type: ignore[union-attr]
    assert subdivision("KZ", "Almaty Region") is None
    assert canonical_name("KZ", "Almaty Region") == "Almaty Region"
    assert subdivision("CL", "Nowhere Region") is None
