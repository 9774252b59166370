"""[admin] section: the HTTP admin API, metrics and dashboard."""

from __future__ import annotations

import msgspec


class AdminConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
