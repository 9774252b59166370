"""An ASN database from ip-location-db's CSV (npm @ip-location-db/asn: RouteViews, NRO and DB-IP ASN
Lite, CC BY 4.0), for hosting detection without MaxMind's data. The registry carries it only as CSV
(ranges of addresses as integers), so it is read into sorted arrays and searched by bisection.

`AsnRanges.asn(ip)` answers like geoip2's ASN reader: an object with autonomous_system_number, or
geoip2.errors.AddressNotFoundError.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import functools
import ipaddress
import json
from array import array
from dataclasses import dataclass
from pathlib import Path

import geoip2.errors

FILES = {4: "asn-ipv4-num.csv", 6: "asn-ipv6-num.csv"}
ATTRIBUTION = ("ASN data by RouteViews (https://www.routeviews.org), the NRO (https://www.nro.net) and DB-IP "
               "(https://db-ip.com), licensed under CC BY 4.0, as packaged by ip-location-db.")


@dataclass(frozen=True)
class AsnAnswer:
    autonomous_system_number: int


class _Family:
    def __init__(self, path: Path, version: int) -> None:
        starts: list[int] = []
        ends: list[int] = []
        numbers = array("I")
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                if len(row) < 3 or not row[2].isdigit():
                    continue
                starts.append(int(row[0]))
                ends.append(int(row[1]))
                numbers.append(int(row[2]))
        order = sorted(range(len(starts)), key=starts.__getitem__)
        kind = "L" if version == 4 else "Q"
        if version == 4:
            self.starts: list[int] | array = array(kind, (starts[i] for i in order))
            self.ends: list[int] | array = array(kind, (ends[i] for i in order))
        else:                                   # 128-bit values do not fit an array
            self.starts = [starts[i] for i in order]
            self.ends = [ends[i] for i in order]
        self.numbers = array("I", (numbers[i] for i in order))

    def find(self, value: int) -> int | None:
        i = bisect.bisect_right(self.starts, value) - 1
        if i >= 0 and value <= self.ends[i]:
            return self.numbers[i]
        return None


class AsnRanges:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._families = {v: _Family(folder / name, v) for v, name in FILES.items() if (folder / name).is_file()}
        if not self._families:
            raise FileNotFoundError(f"no {' or '.join(FILES.values())} in {folder}")

    def asn(self, ip: str) -> AsnAnswer:
        addr = ipaddress.ip_address(ip)
        family = self._families.get(addr.version)
        number = family.find(int(addr)) if family is not None else None
        if number is None:
            raise geoip2.errors.AddressNotFoundError(f"{ip} is not in the ASN table", ip)
        return AsnAnswer(number)

    def close(self) -> None:
        """Nothing to release (the arrays are shared by every locator that read the same files)."""


def release(folder: Path) -> tuple[str, str, int]:
    """(description, build date, build epoch) from the package's version, which ip-location-db writes
    as 2.3.YYYYMMDDHH; the files' modification time when there is no package.json."""
    try:
        about = json.loads((folder / "package.json").read_text())
        stamp = str(about["version"]).split(".")[-1]
        built = dt.datetime.strptime(stamp[:10], "%Y%m%d%H").replace(tzinfo=dt.UTC)
        return f"npm {about['name']} {about['version']}", built.date().isoformat(), int(built.timestamp())
    except (OSError, ValueError, KeyError, TypeError):
        mtime = max((folder / name).stat().st_mtime for name in FILES.values() if (folder / name).is_file())
        built = dt.datetime.fromtimestamp(mtime, dt.UTC)
        return f"ASN CSV in {folder}", built.date().isoformat(), int(mtime)


@functools.lru_cache(maxsize=2)
def _cached(folder: str, signature: tuple[tuple[str, float], ...]) -> AsnRanges:
    return AsnRanges(Path(folder))


def open_asn_ranges(folder: Path) -> AsnRanges:
    """Read once per set of files (tests and reloads open many locators over the same release)."""
    signature = tuple((name, (folder / name).stat().st_mtime) for name in FILES.values() if (folder / name).is_file())
    return _cached(str(folder.resolve()), signature)
