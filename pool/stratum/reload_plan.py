"""What of a reloaded [stratum] section a running server takes (StratumServer.plan_reload/apply_reload).

Live: [stratum.limits] (every connection at once), each port's start/min/max difficulty (new
connections; live ones at their next retarget), and the TLS ports' certificate and key, re-read from
their files on every reload (a renewed certificate needs no restart). Any other changed key, and a
changed number of ports, needs a restart: the running value stays.
"""

from __future__ import annotations

from typing import Any

import msgspec

from pool.config.changes import ReloadPlan, changed_keys, section_changes
from pool.config.errors import ConfigError
from pool.config.stratum import LimitsConfig, StratumConfig
from pool.stratum.tls import port_contexts

PORT_DIFFICULTY_FIELDS = ("start_difficulty", "min_difficulty", "max_difficulty")


class PortDifficulty(msgspec.Struct, frozen=True, kw_only=True):
    """A running port's difficulty settings after the reload (all three, checked together)."""

    index: int                          # in [stratum] ports
    start_difficulty: float
    min_difficulty: float
    max_difficulty: float


class StratumReload(ReloadPlan, frozen=True, kw_only=True):
    limits: LimitsConfig | None = None                  # the new [stratum.limits], when any of it changed
    ports: tuple[PortDifficulty, ...] = ()
    # id(running PortConfig) -> the ssl.SSLContext loaded from its files now
    tls: dict[int, Any] = msgspec.field(default_factory=dict)


def plan_stratum_reload(running: StratumConfig, new: StratumConfig) -> StratumReload:
    """Check a reloaded [stratum] against the running one; ConfigError names the key (nothing changes)."""
    applied: list[str] = []
    restart: list[str] = []
    # Every TLS port re-reads its certificate and key: all load or ConfigError names the port.
    tls = port_contexts(running.ports)
    applied += [f"stratum.ports[{i}].tls_cert_file" for i, p in enumerate(running.ports) if id(p) in tls]

    changes = section_changes(running, new, "stratum")
    limits = None
    limit_changes = [k for k in changes if k.startswith("stratum.limits.")]
    if limit_changes:
        new.limits.validate("stratum.limits")
        limits = new.limits
        applied += limit_changes

    ports: list[PortDifficulty] = []
    if len(running.ports) != len(new.ports):
        restart.append("stratum.ports")
    else:
        for i, (old, fresh) in enumerate(zip(running.ports, new.ports, strict=True)):
            a, b = msgspec.to_builtins(old), msgspec.to_builtins(fresh)
            if b["port"] == 0:                        # ephemeral in the file: the port the OS gave us
                b["port"] = a["port"]
            keys = changed_keys(a, b, "")
            restart += [f"stratum.ports[{i}].{key}" for key in keys if key not in PORT_DIFFICULTY_FIELDS]
            moved = [key for key in keys if key in PORT_DIFFICULTY_FIELDS]
            if not moved:
                continue
            after = {key: b[key] if key in moved else a[key] for key in PORT_DIFFICULTY_FIELDS}
            low, start, high = after["min_difficulty"], after["start_difficulty"], after["max_difficulty"]
            if not 0 < low <= start <= high:
                raise ConfigError(f"stratum.ports[{i}].start_difficulty",
                                  f"need 0 < min <= start <= max, got {low} / {start} / {high}")
            ports.append(PortDifficulty(index=i, **after))
            applied += [f"stratum.ports[{i}].{key}" for key in moved]
    restart += [k for k in changes if not k.startswith(("stratum.limits.", "stratum.ports"))]
    return StratumReload(applied=tuple(applied), requires_restart=tuple(restart), limits=limits,
                         ports=tuple(ports), tls=tls)
