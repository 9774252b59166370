"""Subdivision names -> ISO 3166-2 codes and one published spelling per code.

Database releases spell some subdivisions two ways (DB-IP: "Ningxia Hui Autonomous Region" beside
"Ningxia"), which would split a time series. Names are matched against pycountry's ISO 3166-2 table,
the alias table in data/subdivision_names.csv and the English and transliterated names of the
iso3166-2 package's data (DB-IP writes "Bavaria", "Amur Oblast", "Stockholm" where ISO has "Bayern",
"Amurskaja oblast'", "Stockholms län"), case, accents, punctuation and type words ignored.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import unicodedata
from pathlib import Path

import msgspec
import pycountry

from pool.geo.tables import _rows

# Chinese subdivision names carry their type in pinyin; the short form is what researchers use.
_CN_SUFFIXES = (" Sheng", " Shi", " Zizhiqu", " SAR")


class Subdivision(msgspec.Struct, frozen=True):
    code: str        # ISO 3166-2, e.g. "CN-GD", "US-TX"
    name: str        # the spelling we publish


def _key(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()
    return re.sub(r"[^a-z0-9]+", " ", folded).strip()


# Words that say a subdivision's type, not which one: "Berat County" is Berat, "Maule Region" is Maule.
_TYPE_WORDS = re.compile(r"\b(?:region|province|county|state|district|oblast|oblysy|oblisi|governorate|prefecture"
                         r"|department|parish|of|the|de|del|la)\b")


def _bare(key: str) -> str:
    return " ".join(_TYPE_WORDS.sub(" ", key).split())


def _short(country: str, name: str) -> str:
    if country == "CN":
        for suffix in _CN_SUFFIXES:
            if name.endswith(suffix):
                return name[: -len(suffix)]
    return name


def _other_names() -> dict[str, list[str]]:
    """ISO 3166-2 code -> other names (English, transliterations) from the iso3166-2 package's JSON; read
    as data (the package's module pulls in HTTP and fuzzy-matching libraries we do not need)."""
    spec = importlib.util.find_spec("iso3166_2")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "iso3166-2.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out: dict[str, list[str]] = {}
    for subdivisions in data.values():
        for code, about in subdivisions.items():
            if about.get("parentCode"):
                continue
            names = [re.sub(r"\s*\[[^]]*\]$", "", about.get("name") or "")]
            names += re.findall(r"(?:^|, )([^,()]+?) \([a-z]{3}\)", about.get("localOtherName") or "")
            out[code] = [n for n in names if n]
    return out


@functools.cache
def _table() -> dict[str, dict[str, Subdivision]]:
    """country -> normalised spelling -> Subdivision (first-level subdivisions only)."""
    published = {row["code"]: (row["name"], row["aliases"].split("|")) for row in _rows("subdivision_names.csv")}
    out: dict[str, dict[str, Subdivision]] = {}
    for sub in pycountry.subdivisions:
        if getattr(sub, "parent_code", None):
            continue
        country = sub.country_code
        name, aliases = published.get(sub.code, (_short(country, sub.name), []))
        entry = Subdivision(sub.code, name)
        names = out.setdefault(country, {})
        for spelling in (sub.name, _short(country, sub.name), name, *aliases):
            names.setdefault(_key(spelling), entry)
    for code, (name, aliases) in published.items():     # codes pycountry lacks (none today) still resolve
        country = code.split("-", 1)[0]
        entry = Subdivision(code, name)
        for spelling in (name, *aliases):
            out.setdefault(country, {}).setdefault(_key(spelling), entry)
    # Other names last: a spelling already taken (ISO's or ours) keeps its subdivision.
    entries = {e.code: e for names in out.values() for e in names.values()}
    for code, others in _other_names().items():
        entry = entries.get(code)
        if entry is None:
            continue
        names = out[code.split("-", 1)[0]]
        for spelling in others:
            names.setdefault(_key(spelling), entry)
    return out


@functools.cache
def _bare_table() -> dict[str, dict[str, Subdivision]]:
    """country -> spelling without its type words -> Subdivision, kept only where one subdivision has it."""
    out: dict[str, dict[str, Subdivision | None]] = {}
    for country, names in _table().items():
        bare = out.setdefault(country, {})
        for key, entry in names.items():
            short = _bare(key)
            if short and bare.get(short, entry) != entry:
                bare[short] = None                       # two subdivisions: ambiguous, match neither
            elif short:
                bare.setdefault(short, entry)
    return {country: {k: v for k, v in names.items() if v is not None} for country, names in out.items()}


def subdivision(country: str, name: str) -> Subdivision | None:
    """The ISO 3166-2 code and published spelling of a database's subdivision name (or code, e.g.
    "TX" or "US-TX"); None when the name is not a known first-level subdivision of `country`."""
    if not name:
        return None
    names = _table().get(country)
    if not names:
        return None
    found = names.get(_key(name)) or _bare_table().get(country, {}).get(_bare(_key(name)))
    if found is None:
        code = name.upper() if name.upper().startswith(f"{country}-") else f"{country}-{name.upper()}"
        found = next((s for s in names.values() if s.code == code), None)
    return found


def canonical(country: str, name: str) -> tuple[str, str | None]:
    """(published spelling, ISO 3166-2 code) of a subdivision name as a database or an older release
    spelled it; (the name as given, None) when it is not in the table. The one naming rule of every
    reader: exports, the map and the live regions (dashboard, API, /metrics)."""
    found = subdivision(country, name)
    return (found.name, found.code) if found else (name, None)


def canonical_name(country: str, name: str) -> str:
    """The published spelling, or the name as given when it is not in the table."""
    return canonical(country, name)[0]


@functools.cache
def numeric_code(iso2: str) -> str | None:
    """ISO 3166-1 numeric code ("840") of an alpha-2 code, as Natural Earth's world-atlas ids use."""
    country = pycountry.countries.get(alpha_2=iso2)
    return country.numeric if country else None


@functools.cache
def alpha2_of_numeric(numeric: str) -> str | None:
    country = pycountry.countries.get(numeric=numeric)
    return country.alpha_2 if country else None


@functools.cache
def china_gb_codes() -> dict[str, str]:
    """GB/T 2260 province code ("44") -> ISO 3166-2 ("CN-GD")."""
    return {row["gb"]: row["code"] for row in _rows("cn_gb2260.csv")}


def code_name(code: str) -> str | None:
    """The published spelling of an ISO 3166-2 code."""
    names = _table().get(code.split("-", 1)[0], {})
    return next((s.name for s in names.values() if s.code == code), None)
