"""ExportProvider over pool.geo's export functions: every export the geo package offers, under its names."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from pool.admin.interfaces import ExportKind, Rejected
from pool.geo.exports import EXPORTS, export
from pool.geo.mapview import MapView, map_view
from pool.geo.periods import PERIODS

if TYPE_CHECKING:
    from pool.config import Config
    from pool.geo.rollup import GeoRollup
    from pool.shares.ledger import Ledger

class GeoExports:
    def __init__(self, config: Config, ledger: Ledger, rollup: GeoRollup | None) -> None:
        self.config = config
        self.ledger = ledger
        self.rollup = rollup

    def kinds(self) -> list[ExportKind]:
        if self.rollup is None:
            return []
        return [ExportKind(name=name, description=export.description, formats=list(export.formats),
                           periods=list(PERIODS))
                for name, export in EXPORTS.items()]

    async def export(self, kind: str, period: str, start: str, end: str, fmt: str) -> tuple[bytes, str]:
        if self.rollup is None:
            raise Rejected("geo is disabled on this pool ([geo] enabled = false)", 404)
        try:
            result = await export(self.ledger.client, self.config.geo, kind, period,
                                  dt.date.fromisoformat(start), dt.date.fromisoformat(end), fmt=fmt,
                                  prefix=self.config.redis.key_prefix)
        except ValueError as exc:
            raise Rejected(str(exc), 400) from None
        except (RedisError, OSError):
            raise Rejected("the rollups cannot be read: Redis is unreachable", 409) from None
        if result.empty:
            raise Rejected(f"no data for {result.range_text}", 404)
        return result.body, result.content_type

    async def map_view(self, period: str, day: str | None) -> MapView:
        if self.rollup is None:
            raise Rejected("geo is disabled on this pool ([geo] enabled = false)", 404)
        try:
            return await map_view(self.ledger.client, self.config.geo, period,
                                  dt.date.fromisoformat(day) if day else None,
                                  prefix=self.config.redis.key_prefix)
        except ValueError as exc:
            raise Rejected(str(exc), 400) from None
        except (RedisError, OSError):
            raise Rejected("the rollups cannot be read: Redis is unreachable", 409) from None
