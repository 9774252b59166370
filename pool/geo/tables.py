"""The data tables shipped in pool/geo/data: ISO -> World Bank names, hosting ASNs, firmware families."""

from __future__ import annotations

import csv
import functools
import io
from importlib import resources

# Bucket codes that are not ISO countries (ShareRecord uses the same two).
UNKNOWN = "ZZ"
PRIVATE = "XP"
OTHER = "Other"

SPECIAL_NAMES = {UNKNOWN: "Unknown", PRIVATE: "Private or reserved", OTHER: "Other"}


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("pool.geo").joinpath("data", name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


@functools.cache
def world_bank_names() -> dict[str, str]:
    return {row["iso2"]: row["world_bank_name"] for row in _rows("worldbank_countries.csv")}


def world_bank_name(iso: str, fallback: str = "") -> str:
    """World Bank name of an ISO 3166-1 alpha-2 code; the bucket names for ZZ/XP/Other; else fallback
    (the database's English name) or the code itself."""
    if iso in SPECIAL_NAMES:
        return SPECIAL_NAMES[iso]
    return world_bank_names().get(iso) or fallback or iso


@functools.cache
def builtin_hosting_asns() -> frozenset[int]:
    return frozenset(int(row["asn"]) for row in _rows("hosting_asns.csv"))


@functools.cache
def firmware_rows() -> tuple[tuple[str, str, str], ...]:
    return tuple((row["match"].lower(), row["family"], row["maker"]) for row in _rows("firmware.csv"))
