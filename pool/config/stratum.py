"""[stratum] section: listening ports, difficulty, vardiff and per-connection limits."""

from __future__ import annotations

import msgspec

from pool.config.errors import ConfigError


class PortConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    port: int = 3333
    host: str = "127.0.0.1"
    start_difficulty: float = 1024.0
    min_difficulty: float = 1.0
    max_difficulty: float = 1e15


class StratumConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    ports: list[PortConfig] = msgspec.field(default_factory=lambda: [PortConfig()])
    extranonce2_size: int = 8
    version_mask: str = "1fffe000"

    def validate(self) -> None:
        if self.extranonce2_size not in range(4, 9):
            raise ConfigError("extranonce2_size", f"must be 4..8, got {self.extranonce2_size}")
        for i, port in enumerate(self.ports):
            if not 0 <= port.port <= 65535:
                raise ConfigError(f"ports[{i}].port", f"must be 0..65535, got {port.port}")
