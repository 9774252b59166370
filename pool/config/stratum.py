"""[stratum] section: listening ports, difficulty, vardiff and per-connection limits."""

from __future__ import annotations

import ipaddress
from typing import Literal

import msgspec

from pool.config.errors import ConfigError


class PortConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    port: int = 3333
    host: str = "127.0.0.1"              # "::" listens on IPv6 (and IPv4-mapped where the OS allows)
    name: str = ""                       # label in stats; defaults to the port number
    start_difficulty: float = 1024.0
    min_difficulty: float = 1.0          # may be below 1 (CPU miners, tests)
    max_difficulty: float = 1e15
    vardiff: bool = True
    target_share_seconds: float = 10.0   # ASIC default: one share every ~10 s per connection
    retarget_seconds: float = 90.0       # evaluation window
    retarget_fast_shares: int = 16       # evaluate early once this many shares arrived far too fast
    max_step_down: float = 4.0           # a retarget lowers the difficulty at most this factor at once
    integer_difficulty: bool = True      # round difficulties >= 1 to integers (what ASIC dashboards expect)

    def validate(self, key: str) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"{key}.port", f"must be 0..65535, got {self.port}")
        if not 0 < self.min_difficulty <= self.start_difficulty <= self.max_difficulty:
            raise ConfigError(
                f"{key}.start_difficulty",
                "need 0 < min_difficulty <= start_difficulty <= max_difficulty, got "
                f"{self.min_difficulty} / {self.start_difficulty} / {self.max_difficulty}",
            )
        if self.target_share_seconds <= 0:
            raise ConfigError(f"{key}.target_share_seconds", "must be > 0")
        if self.retarget_seconds <= 0:
            raise ConfigError(f"{key}.retarget_seconds", "must be > 0")
        if self.retarget_fast_shares < 2:
            raise ConfigError(f"{key}.retarget_fast_shares", "must be >= 2")
        if self.max_step_down < 1:
            raise ConfigError(f"{key}.max_step_down", "must be >= 1")


class LimitsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Everything that protects the server from one client; reloadable at runtime."""

    max_line_bytes: int = 8192           # longer line (or buffered partial line) -> disconnect
    max_connections: int = 18000         # per process (the open-files limit is 20,000 here)
    max_connections_per_ip: int = 500    # farms behind NAT share one address
    submits_per_second: float = 50.0     # per connection, token bucket
    submit_burst: float = 200.0
    authorize_timeout: float = 30.0      # seconds from connect to a successful authorize
    idle_timeout: float = 900.0          # nothing received for this long -> disconnect
    max_write_buffer: int = 1 << 20      # a client that does not read: disconnect past this
    max_bad_messages: int = 20           # unparseable / malformed requests before disconnect
    max_auth_failures: int = 5
    max_workers_per_connection: int = 2000
    # What one client can make the server store (each excess counts as a bad message, see above).
    max_worker_name_length: int = 128
    max_user_agent_length: int = 128
    max_info_keys: int = 16              # mining.configure "info.*" keys kept per connection
    max_info_length: int = 256           # characters kept of one info value (keys: 64)
    max_pending_requests: int = 16       # server requests (client.get_version) awaiting a reply
    max_json_depth: int = 64             # deeper nesting in one line is a malformed message
    farm_proxy_workers: int = 5          # >= this many workers on one connection -> farm_proxy
    ban_invalid_shares: int = 200        # invalid (not stale) shares within ban_window ...
    ban_invalid_ratio: float = 0.9       # ... making up at least this share of submits -> ban
    ban_window_seconds: float = 60.0
    # Rejects of any kind (stale and unknown-job ones too: a storm of honest-looking rejects costs the
    # same CPU as an attack) within ban_window_seconds, on one connection or summed over one source
    # address's connections, that make up at least reject_budget_ratio of those submits -> ban.
    reject_budget_per_connection: int = 500
    reject_budget_per_ip: int = 5000
    reject_budget_ratio: float = 0.5
    ban_seconds: float = 600.0
    # Resume state (the local park and its Redis entry) exists only for a connection that authorized;
    # past this many parks in one process the oldest is given up first.
    max_parked_sessions: int = 20000
    sweep_interval: float = 2.0          # how often timeouts and idle vardiff are checked

    def validate(self, key: str) -> None:
        positive = ("max_line_bytes", "max_connections", "max_connections_per_ip", "submits_per_second",
                    "submit_burst", "authorize_timeout", "idle_timeout", "max_write_buffer",
                    "max_bad_messages", "max_auth_failures", "max_workers_per_connection",
                    "max_worker_name_length", "max_user_agent_length", "max_info_keys", "max_info_length",
                    "max_pending_requests", "max_json_depth", "farm_proxy_workers", "ban_invalid_shares",
                    "ban_window_seconds", "reject_budget_per_connection", "reject_budget_per_ip",
                    "max_parked_sessions",
                    "sweep_interval")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{key}.{name}", f"must be > 0, got {getattr(self, name)}")
        if self.max_line_bytes < 512:
            raise ConfigError(f"{key}.max_line_bytes", "must be >= 512 (a mining.configure is larger)")
        if self.max_json_depth > 512:
            raise ConfigError(f"{key}.max_json_depth",
                              f"must be <= 512 (the JSON decoder stops near 1000), got {self.max_json_depth}")
        for name in ("ban_invalid_ratio", "reject_budget_ratio"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"{key}.{name}", f"must be in (0, 1], got {getattr(self, name)}")
        if self.ban_seconds < 0:
            raise ConfigError(f"{key}.ban_seconds", "must be >= 0")


class StratumConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    ports: list[PortConfig] = msgspec.field(default_factory=lambda: [PortConfig()])
    extranonce2_size: int = 8
    version_mask: str = "1fffe000"
    # Firmware that rolls version bits without mining.configure: "pool_mask" judges the bits against
    # version_mask (ckpool's behaviour), "reject" answers 20 "bad-version".
    version_rolling_without_configure: Literal["pool_mask", "reject"] = "pool_mask"
    notify_interval: float = 30.0        # keepalive: a fresh notify at least this often
    ntime_forward_seconds: int = 7000    # submitted ntime <= job ntime + this (ckpool)
    max_future_seconds: int = 7200       # and <= now + this (consensus MAX_FUTURE_BLOCK_TIME)
    max_jobs_per_connection: int = 16    # jobs a connection may still submit against
    session_resume_seconds: float = 600.0
    # Resume across processes/hosts (with Redis): how long a subscribe waits for the shared directory
    # before giving a fresh extranonce1, how often a process settles/renews its entries there, and how
    # long a claimed extranonce1 stays reserved for its holder without a renewal (holder died).
    resume_directory: bool = True
    resume_lookup_timeout: float = 0.5
    resume_sync_seconds: float = 5.0
    resume_loan_seconds: float = 120.0
    # A process that dies parks nothing: its working sessions are in the directory as live, and it
    # sends a heartbeat this often. Silent for resume_holder_timeout, it is taken for dead and its
    # miners resume on the process they reconnect to (whose subscribe waits up to that long).
    resume_heartbeat_seconds: float = 1.0
    resume_holder_timeout: float = 3.0
    retarget_clean_jobs: bool = True     # the re-issued job after a difficulty change is clean
    reuse_port: bool = False             # SO_REUSEPORT so N worker processes share the port
    backlog: int = 4096
    trusted_proxies: list[str] = []      # addresses/CIDRs allowed (and expected) to send PROXY v1/v2
    proxy_header_required: bool = True   # from a trusted proxy, a connection without a header is dropped
    min_difficulty_by_firmware: dict[str, float] = {}   # e.g. {"nicehash" = 500000}
    show_message_user_agents: list[str] = msgspec.field(
        default_factory=lambda: ["cgminer", "bfgminer", "bmminer", "cpuminer"])
    reconnect_on_shutdown: bool = True   # send client.reconnect [] before closing on stop
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)

    def validate(self) -> None:
        if self.extranonce2_size not in range(4, 9):
            raise ConfigError("extranonce2_size", f"must be 4..8, got {self.extranonce2_size}")
        try:
            mask = int(self.version_mask, 16)
        except ValueError:
            raise ConfigError("version_mask", f"not hex: {self.version_mask!r}") from None
        if not 0 <= mask <= 0xFFFFFFFF or len(self.version_mask) > 8:
            raise ConfigError("version_mask", "must be 8 hex digits")
        if not self.ports:
            raise ConfigError("ports", "at least one port is needed")
        for i, port in enumerate(self.ports):
            port.validate(f"ports[{i}]")
        if self.notify_interval < 1:
            raise ConfigError("notify_interval", "must be >= 1 s")
        if self.max_jobs_per_connection < 2:
            raise ConfigError("max_jobs_per_connection", "must be >= 2")
        if self.ntime_forward_seconds < 0 or self.max_future_seconds < 0:
            raise ConfigError("ntime_forward_seconds", "must be >= 0")
        for i, spec in enumerate(self.trusted_proxies):
            try:
                ipaddress.ip_network(spec, strict=False)
            except ValueError:
                raise ConfigError(f"trusted_proxies[{i}]", f"not an address or CIDR: {spec!r}") from None
        for name, value in self.min_difficulty_by_firmware.items():
            if value <= 0:
                raise ConfigError(f"min_difficulty_by_firmware.{name}", "must be > 0")
        if self.session_resume_seconds < 0:
            raise ConfigError("session_resume_seconds", f"must be >= 0, got {self.session_resume_seconds}")
        if not 0 < self.resume_lookup_timeout <= 10:
            raise ConfigError("resume_lookup_timeout", f"must be in (0, 10] s, got {self.resume_lookup_timeout}")
        if self.resume_sync_seconds <= 0:
            raise ConfigError("resume_sync_seconds", f"must be > 0, got {self.resume_sync_seconds}")
        if self.resume_heartbeat_seconds <= 0:
            raise ConfigError("resume_heartbeat_seconds", f"must be > 0, got {self.resume_heartbeat_seconds}")
        if not 2 * self.resume_heartbeat_seconds <= self.resume_holder_timeout <= 60:
            raise ConfigError("resume_holder_timeout",
                              "must be >= 2 x resume_heartbeat_seconds (a late heartbeat is not a death) and "
                              f"<= 60 s (a reconnecting miner waits that long), got {self.resume_holder_timeout}")
        if self.resume_loan_seconds < 3 * self.resume_sync_seconds:
            raise ConfigError("resume_loan_seconds",
                              f"must be >= 3 x resume_sync_seconds (renewed in time), got {self.resume_loan_seconds}")
        self.limits.validate("limits")

    @property
    def version_mask_int(self) -> int:
        return int(self.version_mask, 16)
