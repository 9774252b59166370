"""[money] section: where the payout books live (PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from pool.config.constraints import NonNegativeInt, Positive, PositiveInt, check_fields
from pool.config.errors import ConfigError

DSN_SCHEMES = ("postgresql://", "postgres://")


class MoneyConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # libpq-style URL of the books' database, e.g. "postgresql://geostratum@10.0.0.5:5432/books".
    # Required unless SOLO (payouts.scheme or chain.mode): balances live only here, never in Redis.
    # Empty: no database (SOLO pays the finder in the coinbase and keeps no balances).
    dsn: str = ""
    # A file holding only the password (a mounted secret), used when the DSN carries none.
    password_file: str = ""
    pool_min_size: NonNegativeInt = 1
    pool_max_size: PositiveInt = 4
    connect_timeout_s: Positive = 5.0
    # Upper bound of one statement; a block credit for a 50,000-account window takes ~5 s
    # (benchmarks/RESULTS.md).
    command_timeout_s: Positive = 30.0
    # PPS/FPPS: how often the per-share credits waiting in Redis are moved into the books.
    move_interval_s: Positive = 5.0

    def validate(self) -> None:
        check_fields(self)
        if self.dsn and not self.dsn.startswith(DSN_SCHEMES):
            raise ConfigError("dsn", f"must start with postgresql:// (got {self.dsn.split('://')[0]!r})")
        if self.password_file and not self.dsn:
            raise ConfigError("password_file", "is set but money.dsn is empty")
        if self.password_file:
            path = Path(self.password_file)
            if not path.is_file():
                raise ConfigError("password_file", f"{path} is not a readable file")
            try:
                path.read_text()
            except OSError as exc:
                raise ConfigError("password_file", f"cannot read {path}: {exc.strerror}") from None
        if self.pool_min_size > self.pool_max_size:
            raise ConfigError("pool_max_size", f"must be >= pool_min_size ({self.pool_min_size})")

    @property
    def enabled(self) -> bool:
        return bool(self.dsn)

    def password(self) -> str | None:
        """The password file's first line, or None (the DSN's own password or none at all)."""
        if not self.password_file:
            return None
        lines = Path(self.password_file).read_text().splitlines()
        return lines[0] if lines else ""
