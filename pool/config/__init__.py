"""Typed configuration: TOML (configs/*.toml) -> msgspec Structs, env overrides, errors that name the key.

Each section's Struct lives in its own module beside this one; this module owns the root,
loading, environment overrides and error reporting.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import msgspec

from pool.config.admin import AdminConfig
from pool.config.alerts import AlertsConfig
from pool.config.chain import FIXED_DIFFICULTY_NETWORKS, ChainConfig
from pool.config.constraints import from_msgspec
from pool.config.errors import ConfigError
from pool.config.geo import GeoConfig
from pool.config.ledger import LedgerConfig, PayoutConfig, RedisConfig
from pool.config.money import MoneyConfig
from pool.config.stratum import StratumConfig

ENV_PREFIX = "GEOSTRATUM__"
# A JSON object of overrides (structured data, so no value needs quoting), merged over the file and
# under the per-key GEOSTRATUM__ variables. `geostratum run --workers N` hands its workers theirs here.
OVERRIDES_ENV = "GEOSTRATUM_CONFIG_OVERRIDES"


class PoolIdentity(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str = "geostratum"
    # Numeric node id: the first extranonce1 byte when no Redis lease is available.
    node_id: int = 0
    data_dir: str = "var"
    # `geostratum run --workers N`: a worker process that dies is started again, unless it died more
    # than worker_restart_limit times within worker_restart_period_s (a crash loop stops the pool).
    worker_restart_limit: int = 5
    worker_restart_period_s: float = 600.0


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pool: PoolIdentity = msgspec.field(default_factory=PoolIdentity)
    stratum: StratumConfig = msgspec.field(default_factory=StratumConfig)
    chain: ChainConfig = msgspec.field(default_factory=ChainConfig)
    redis: RedisConfig = msgspec.field(default_factory=RedisConfig)
    ledger: LedgerConfig = msgspec.field(default_factory=LedgerConfig)
    payouts: PayoutConfig = msgspec.field(default_factory=PayoutConfig)
    money: MoneyConfig = msgspec.field(default_factory=MoneyConfig)
    geo: GeoConfig = msgspec.field(default_factory=GeoConfig)
    admin: AdminConfig = msgspec.field(default_factory=AdminConfig)
    alerts: AlertsConfig = msgspec.field(default_factory=AlertsConfig)


def _apply_env(data: dict[str, Any], environ: dict[str, str]) -> None:
    """GEOSTRATUM__SECTION__KEY=value overrides; the value is parsed as TOML when it can be."""
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if not path:
            continue
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(".".join(path), f"environment override {name} conflicts with a value")
            node = child
        node[path[-1]] = value


def _merge(data: dict[str, Any], overrides: dict[str, Any], path: tuple[str, ...] = ()) -> None:
    for key, value in overrides.items():
        here = (*path, key)
        if isinstance(value, dict):
            child = data.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(".".join(here), f"{OVERRIDES_ENV} gives a table where the config has a value")
            _merge(child, value, here)
        else:
            data[key] = value


def _apply_overrides(data: dict[str, Any], environ: dict[str, str]) -> None:
    raw = environ.get(OVERRIDES_ENV)
    if not raw:
        return
    try:
        overrides = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ConfigError("", f"{OVERRIDES_ENV} is not valid JSON: {exc}") from None
    if not isinstance(overrides, dict):
        raise ConfigError("", f"{OVERRIDES_ENV} must be a JSON object")
    _merge(data, overrides)


def from_dict(data: dict[str, Any]) -> Config:
    try:
        config = msgspec.convert(data, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise from_msgspec(exc, data, Config) from None
    validate(config)
    return config


def load(path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None) -> Config:
    """Load a TOML file (or the defaults when path is None) and apply environment overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError("", f"config file {path} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("", f"{path} is not valid TOML: {exc}") from None
    environ = dict(os.environ) if environ is None else environ
    _apply_overrides(data, environ)
    _apply_env(data, environ)
    return from_dict(data)


def validate(config: Config) -> None:
    """Cross-field checks msgspec cannot express; each section validates itself."""
    for section_name in Config.__struct_fields__:
        section = getattr(config, section_name)
        check = getattr(section, "validate", None)
        if check is None:
            continue
        try:
            check()
        except ConfigError as exc:
            raise ConfigError(f"{section_name}.{exc.key}" if exc.key else section_name, exc.reason) from None
    if not 0 <= config.pool.node_id <= 255:
        raise ConfigError("pool.node_id", f"must be 0..255, got {config.pool.node_id}")
    if config.pool.worker_restart_limit < 0:
        raise ConfigError("pool.worker_restart_limit", f"must be >= 0, got {config.pool.worker_restart_limit}")
    if config.pool.worker_restart_period_s <= 0:
        raise ConfigError("pool.worker_restart_period_s", f"must be > 0, got {config.pool.worker_restart_period_s}")


def keeps_balances(config: Config) -> bool:
    """Whether the pool owes miners coins it holds. chain.mode = "solo" pays the finder in the coinbase
    and owes nothing. In pool mode every scheme owes: PPLNS/PPS/FPPS share the reward, and SOLO credits
    the finder, paid later from the pool's wallet; only on devnet/regtest (test coins of a fixed trivial
    difficulty) may a SOLO pool run without books."""
    if config.chain.mode == "solo":
        return False
    if config.payouts.scheme == "solo":
        return config.chain.network not in FIXED_DIFFICULTY_NETWORKS
    return True


def require_books(config: Config) -> None:
    """A pool that keeps balances keeps them in PostgreSQL, never in Redis. Checked where a pool runs
    (`geostratum run`, `geostratum check-config`, PoolApp.start), not for tools that only read the file."""
    if keeps_balances(config) and not config.money.dsn:
        raise ConfigError("money.dsn", f"payouts.scheme = {config.payouts.scheme!r} keeps balances, which live in "
                          "PostgreSQL: set money.dsn (e.g. GEOSTRATUM__MONEY__DSN) and run `geostratum db migrate`; "
                          "SOLO needs no database where the coinbase pays the finder (chain.mode = \"solo\"), "
                          "or on devnet/regtest")


__all__ = ["Config", "ConfigError", "PoolIdentity", "from_dict", "keeps_balances", "load", "require_books", "validate"]
