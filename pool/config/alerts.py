"""[alerts] section: what is watched, and where notifications go (webhook, Discord, Telegram, ntfy).

    [alerts]
    worker_offline_minutes = 10
    [[alerts.targets]]
    name = "ops"
    kind = "discord"
    url_env = "GEOSTRATUM_DISCORD_URL"      # a webhook URL is a secret: keep it out of the file
    [[alerts.targets]]
    name = "alice"                          # a miner's own target: only alice's workers and blocks
    kind = "ntfy"
    url = "https://ntfy.example/alice-rigs"
    accounts = ["alice"]
"""

from __future__ import annotations

import math
import os
from typing import Literal

import msgspec

from pool.config.errors import ConfigError

EVENTS = ("worker_offline", "worker_online", "hashrate_drop", "block_found", "block_orphaned",
          "block_rejected", "node_down", "node_up", "redis_down", "redis_up", "geo_stale")
# Events about one account (a miner's own target receives these of its accounts only).
ACCOUNT_EVENTS = ("worker_offline", "worker_online", "hashrate_drop", "block_found", "block_orphaned",
                  "block_rejected")
WINDOWS = ("1m", "5m", "15m", "1h", "6h", "24h")
TargetKind = Literal["webhook", "discord", "telegram", "ntfy"]


class AlertTarget(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str                            # shown in logs and metrics (never the URL: it may hold a token)
    kind: TargetKind = "webhook"         # webhook: generic JSON; discord; telegram (bot API); ntfy
    url: str = ""                        # webhook/Discord URL, ntfy topic URL, or the Telegram API base
    url_env: str = ""                    # ... or read from this environment variable
    chat_id: str = ""                    # telegram only
    token_env: str = ""                  # telegram only: the bot token's environment variable
    events: list[str] = msgspec.field(default_factory=lambda: list(EVENTS))
    accounts: list[str] = msgspec.field(default_factory=list)    # [] = the operator's: every event
    rate_limit_per_minute: float = 20.0  # sustained sends; beyond the burst, alerts are dropped and counted
    rate_limit_burst: int = 10
    max_attempts: int = 5                # one send plus retries, with exponential backoff
    backoff_seconds: float = 1.0         # first retry delay, doubled each time
    max_backoff_seconds: float = 60.0
    timeout_seconds: float = 5.0         # per attempt
    queue_size: int = 1000               # alerts waiting for this target; beyond it new ones are dropped

    def resolved_url(self, environ: dict[str, str] | None = None) -> str:
        env = os.environ if environ is None else environ
        return env.get(self.url_env, "") if self.url_env else self.url

    def validate(self, key: str, environ: dict[str, str] | None = None) -> None:
        if not self.name or len(self.name) > 64 or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"{key}.name", "must be 1..64 letters, digits, '-' or '_'")
        if bool(self.url) == bool(self.url_env):
            raise ConfigError(f"{key}.url", "give exactly one of url and url_env")
        url = self.resolved_url(environ)
        if self.url_env and not url:
            raise ConfigError(f"{key}.url_env", f"environment variable {self.url_env} is not set")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{key}.url_env" if self.url_env else f"{key}.url", "must be an http:// or https:// URL")
        if self.kind == "telegram":
            if not (self.chat_id and self.token_env):
                raise ConfigError(f"{key}.chat_id", "a telegram target needs chat_id and token_env")
            if not (os.environ if environ is None else environ).get(self.token_env):
                raise ConfigError(f"{key}.token_env", f"environment variable {self.token_env} is not set")
        for i, event in enumerate(self.events):
            if event not in EVENTS:
                raise ConfigError(f"{key}.events[{i}]", f"must be one of {', '.join(EVENTS)}, got {event!r}")
        if self.accounts and not set(self.events) & set(ACCOUNT_EVENTS):
            raise ConfigError(f"{key}.events", "a target with accounts needs at least one account event")
        for field in ("rate_limit_per_minute", "backoff_seconds", "max_backoff_seconds", "timeout_seconds"):
            value = getattr(self, field)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{key}.{field}", f"must be a positive number, got {value}")
        for field in ("rate_limit_burst", "max_attempts", "queue_size"):
            if getattr(self, field) < 1:
                raise ConfigError(f"{key}.{field}", f"must be >= 1, got {getattr(self, field)}")


class AlertsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True                 # watch and notify (nothing happens without targets)
    check_interval_seconds: float = 30.0
    worker_offline_minutes: float = 10.0     # a worker with no connection and no share this long
    # Account hashrate down by this many percent: the short window's figure (its upper 95 % bound when
    # the read side gives one) against the long window's.
    hashrate_drop_percent: float = 50.0
    hashrate_drop_short_window: str = "15m"
    hashrate_drop_long_window: str = "6h"
    hashrate_drop_min_hashrate: float = 0.0  # H/s: accounts below this over the long window are not watched
    geo_stale_days: float = 45.0             # the geolocation database's build is older than this
    max_accounts_watched: int = 100_000
    targets: list[AlertTarget] = msgspec.field(default_factory=list)

    def validate(self) -> None:
        for field in ("check_interval_seconds", "worker_offline_minutes", "geo_stale_days"):
            value = getattr(self, field)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(field, f"must be a positive number, got {value}")
        if not 0 < self.hashrate_drop_percent < 100:
            raise ConfigError("hashrate_drop_percent", f"must be in (0, 100), got {self.hashrate_drop_percent}")
        for field in ("hashrate_drop_short_window", "hashrate_drop_long_window"):
            if getattr(self, field) not in WINDOWS:
                raise ConfigError(field, f"must be one of {', '.join(WINDOWS)}, got {getattr(self, field)!r}")
        if WINDOWS.index(self.hashrate_drop_short_window) >= WINDOWS.index(self.hashrate_drop_long_window):
            raise ConfigError("hashrate_drop_short_window", "must be shorter than hashrate_drop_long_window")
        if not (math.isfinite(self.hashrate_drop_min_hashrate) and self.hashrate_drop_min_hashrate >= 0):
            raise ConfigError("hashrate_drop_min_hashrate", "must be >= 0")
        if self.max_accounts_watched < 1:
            raise ConfigError("max_accounts_watched", "must be >= 1")
        names = set()
        for i, target in enumerate(self.targets):
            target.validate(f"targets[{i}]")
            if target.name in names:
                raise ConfigError(f"targets[{i}].name", f"{target.name!r} is used by another target")
            names.add(target.name)
