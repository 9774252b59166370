"""The Redis key layout of the geo rollups, in one place for the writer and the readers.

Every key of one UTC day carries the hash tag {geo:YYYYMMDD}, so a day's buckets live in one Redis
Cluster slot and a batch's ops group into one slot per day. No key or value holds an IP address;
miners appear only as truncated BLAKE2b hashes of the worker name.

    P:{geo:D}:sF:HHMMSS     hash  fine stats (F s, the ledger's fine bucket)  fields  d|CC|sub  n|CC|sub
    P:{geo:D}:m:HHMM        hash  minute stats      fields  d|CC|sub  n|CC|sub  h|CC|sub  p|CC|sub
    P:{geo:D}:h:HH          hash  hour stats        (the same, plus fd|fw|CC|sub and fn|fw|CC|sub)
    P:{geo:D}:d             hash  day stats         (the same as the hour)
    P:{geo:D}:u:h:HH:CC|sub HLL   distinct miners per region and hour
    P:{geo:D}:u:d:CC|sub    HLL   distinct miners per region and day
    P:{geo:D}:z:CC|sub      zset  miner hash -> difficulty per region and day (largest kept)
    P:{geo:D}:uf:fw|CC      HLL   distinct miners per firmware family and country, per day
    P:{geo:D}:zf:fw|CC      zset  miner hash -> difficulty per firmware family and country, per day
    P:{geo:D}:db            hash  database ident (role|type|build date) -> difficulty tagged while in use
    P:{geo:D}:net           hash  HHMM -> network difficulty sampled in that minute
    P:{geo:first}:first     zset  region (CC|sub) -> unix time of its first share; "*" -> of any share
                                  (kept by ZADD LT: windows and exports divide by time observed)
"""

from __future__ import annotations

import datetime as dt

SEP = "|"

# Stats field metrics.
DIFF = "d"
COUNT = "n"
HOSTING = "h"
PROXY = "p"
FW_DIFF = "fd"
FW_COUNT = "fn"
ANY_REGION = "*"        # the first-seen member of the whole pool's first geo-tagged share


def day_tag(day: dt.date) -> str:
    return f"{{geo:{day:%Y%m%d}}}"


def region_id(country: str, subdivision: str) -> str:
    return f"{country}{SEP}{subdivision}"


def split_region(region: str) -> tuple[str, str]:
    country, _, subdivision = region.partition(SEP)
    return country, subdivision


class GeoKeys:
    def __init__(self, prefix: str = "gs") -> None:
        self.prefix = prefix
        self._bases: dict[dt.date, str] = {}

    def base(self, day: dt.date) -> str:
        found = self._bases.get(day)
        if found is None:
            if len(self._bases) > 4096:
                self._bases.clear()
            found = self._bases[day] = f"{self.prefix}:{day_tag(day)}"
        return found

    def fine(self, day: dt.date, step: int, hhmmss: str) -> str:
        """The `step`-second bucket starting at HH:MM:SS: the edges of the live windows up to an hour,
        on the same 10 s edges as the ledger's buckets (regions and pool read the same shares)."""
        return f"{self.base(day)}:s{step}:{hhmmss}"

    def minute(self, day: dt.date, hhmm: str) -> str:
        return f"{self.base(day)}:m:{hhmm}"

    def hour(self, day: dt.date, hh: str) -> str:
        return f"{self.base(day)}:h:{hh}"

    def day(self, day: dt.date) -> str:
        return f"{self.base(day)}:d"

    def miners_hour(self, day: dt.date, hh: str, region: str) -> str:
        return f"{self.base(day)}:u:h:{hh}:{region}"

    def miners_day(self, day: dt.date, region: str) -> str:
        return f"{self.base(day)}:u:d:{region}"

    def top_day(self, day: dt.date, region: str) -> str:
        return f"{self.base(day)}:z:{region}"

    def fw_miners_day(self, day: dt.date, family: str, country: str) -> str:
        return f"{self.base(day)}:uf:{family}{SEP}{country}"

    def fw_top_day(self, day: dt.date, family: str, country: str) -> str:
        return f"{self.base(day)}:zf:{family}{SEP}{country}"

    def databases(self, day: dt.date) -> str:
        return f"{self.base(day)}:db"

    def network(self, day: dt.date) -> str:
        return f"{self.base(day)}:net"

    @property
    def first_seen(self) -> str:
        return f"{self.prefix}:{{geo:first}}:first"

    def scratch(self, token: str) -> str:
        """Short-lived keys an export uses to count HyperLogLog unions inside one slot."""
        return f"{self.prefix}:{{geo:scratch:{token}}}"
