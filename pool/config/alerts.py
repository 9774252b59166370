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

import os
from typing import Annotated, Literal, get_args

import msgspec

from pool.config.constraints import FiniteNonNegative, FinitePositive, PositiveInt, check_fields
from pool.config.errors import ConfigError

Event = Literal["worker_offline", "worker_online", "hashrate_drop", "block_found", "block_orphaned",
                "block_rejected", "node_down", "node_up", "redis_down", "redis_up", "geo_stale"]
EVENTS: tuple[str, ...] = get_args(Event)
# Events about one account (a miner's own target receives these of its accounts only).
ACCOUNT_EVENTS = ("worker_offline", "worker_online", "hashrate_drop", "block_found", "block_orphaned",
                  "block_rejected")
Window = Literal["1m", "5m", "15m", "1h", "6h", "24h"]
WINDOWS: tuple[str, ...] = get_args(Window)
TargetKind = Literal["webhook", "discord", "telegram", "ntfy"]


class AlertTarget(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str                            # shown in logs and metrics (never the URL: it may hold a token)
    kind: TargetKind = "webhook"         # webhook: generic JSON; discord; telegram (bot API); ntfy
    url: str = ""                        # webhook/Discord URL, ntfy topic URL, or the Telegram API base
    url_env: str = ""                    # ... or read from this environment variable
    chat_id: str = ""                    # telegram only
    token_env: str = ""                  # telegram only: the bot token's environment variable
    events: list[Event] = msgspec.field(default_factory=lambda: list(EVENTS))
    accounts: list[str] = msgspec.field(default_factory=list)    # [] = the operator's: every event
    rate_limit_per_minute: FinitePositive = 20.0  # sustained sends; beyond the burst, alerts are dropped and counted
    rate_limit_burst: PositiveInt = 10
    max_attempts: PositiveInt = 5        # one send plus retries, with exponential backoff
    backoff_seconds: FinitePositive = 1.0  # first retry delay, doubled each time
    max_backoff_seconds: FinitePositive = 60.0
    timeout_seconds: FinitePositive = 5.0  # per attempt
    queue_size: PositiveInt = 1000       # alerts waiting for this target; beyond it new ones are dropped

    def resolved_url(self, environ: dict[str, str] | None = None) -> str:
        env = os.environ if environ is None else environ
        return env.get(self.url_env, "") if self.url_env else self.url

    def validate(self, key: str, environ: dict[str, str] | None = None) -> None:
        check_fields(self, key)
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
        if self.accounts and not set(self.events) & set(ACCOUNT_EVENTS):
            raise ConfigError(f"{key}.events", "a target with accounts needs at least one account event")


class AlertsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True                 # watch and notify (nothing happens without targets)
    check_interval_seconds: FinitePositive = 30.0
    worker_offline_minutes: FinitePositive = 10.0  # a worker with no connection and no share this long
    # Account hashrate down by this many percent: the short window's figure (its upper 95 % bound when
    # the read side gives one) against the long window's.
    hashrate_drop_percent: Annotated[float, msgspec.Meta(gt=0, lt=100)] = 50.0
    hashrate_drop_short_window: Window = "15m"
    hashrate_drop_long_window: Window = "6h"
    hashrate_drop_min_hashrate: FiniteNonNegative = 0.0  # H/s: accounts below this over the long window are not watched
    geo_stale_days: FinitePositive = 45.0    # the geolocation database's build is older than this
    max_accounts_watched: PositiveInt = 100_000
    targets: list[AlertTarget] = msgspec.field(default_factory=list)

    def validate(self) -> None:
        check_fields(self)
        if WINDOWS.index(self.hashrate_drop_short_window) >= WINDOWS.index(self.hashrate_drop_long_window):
            raise ConfigError("hashrate_drop_short_window", "must be shorter than hashrate_drop_long_window")
        names = set()
        for i, target in enumerate(self.targets):
            target.validate(f"targets[{i}]")
            if target.name in names:
                raise ConfigError(f"targets[{i}].name", f"{target.name!r} is used by another target")
            names.add(target.name)
