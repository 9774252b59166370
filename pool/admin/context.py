"""What every admin handler reads: the config in force, the providers, and the BTC price."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pool.admin.interfaces import ExportProvider, MetricsSource, PoolControl, PoolState
from pool.admin.miner_types import MinerSource
from pool.admin.ratelimit import RateLimiter
from pool.config.admin import AdminConfig


@dataclass
class PriceFeed:
    """The BTC/USD price: one fed at run time wins over the configured one."""

    configured: float = 0.0
    fed: float | None = None
    fed_at: float | None = None

    def current(self) -> tuple[float | None, str | None, float | None]:
        """(price, source, updated_at); (None, None, None) when no price is known."""
        if self.fed is not None:
            return self.fed, "fed", self.fed_at
        if self.configured > 0:
            return self.configured, "config", None
        return None, None, None


@dataclass
class ApiContext:
    config: AdminConfig
    state: PoolState
    control: PoolControl
    exports: ExportProvider
    metrics: MetricsSource
    price: PriceFeed
    limiter: RateLimiter
    clock: Callable[[], float] = time.time
    miners: MinerSource | None = None     # the miner page's extras (best shares, earnings, payouts)
    # Responses by status, for /metrics.
    responses: dict[int, int] = field(default_factory=dict)
