"""[stratum] section: listening ports, difficulty, vardiff and per-connection limits."""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from pool.config.constraints import (
    Fraction,
    NonNegative,
    NonNegativeInt,
    PortNumber,
    Positive,
    PositiveInt,
    check_fields,
)
from pool.config.errors import ConfigError


class PortConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    port: PortNumber = 3333
    host: str = "127.0.0.1"              # "::" listens on IPv6 (and IPv4-mapped where the OS allows)
    name: str = ""                       # label in stats; defaults to the port number
    start_difficulty: Positive = 1024.0
    min_difficulty: Positive = 1.0       # may be below 1 (CPU miners, tests)
    max_difficulty: Positive = 1e15
    vardiff: bool = True
    target_share_seconds: Positive = 10.0  # ASIC default: one share every ~10 s per connection
    retarget_seconds: Positive = 90.0    # evaluation window
    # Evaluate early once this many shares arrived far too fast.
    retarget_fast_shares: Annotated[int, Meta(ge=2)] = 16
    # A retarget lowers the difficulty at most this factor at once.
    max_step_down: Annotated[float, Meta(ge=1)] = 4.0
    integer_difficulty: bool = True      # round difficulties >= 1 to integers (what ASIC dashboards expect)
    # stratum+ssl://: TLS 1.2+ with this PEM certificate (chain) and key; re-read on SIGHUP / reload.
    tls: bool = False
    tls_cert_file: str = ""
    tls_key_file: str = ""

    def validate(self, key: str) -> None:
        check_fields(self, key)
        if not self.min_difficulty <= self.start_difficulty <= self.max_difficulty:
            raise ConfigError(
                f"{key}.start_difficulty",
                "need 0 < min_difficulty <= start_difficulty <= max_difficulty, got "
                f"{self.min_difficulty} / {self.start_difficulty} / {self.max_difficulty}",
            )
        if self.tls:
            self.check_tls(key)

    def check_tls(self, key: str) -> None:
        """The certificate and key load (a TLS port without them cannot take a connection)."""
        import ssl

        for field in ("tls_cert_file", "tls_key_file"):
            path = getattr(self, field)
            if not path:
                raise ConfigError(f"{key}.{field}", "a TLS port needs tls_cert_file and tls_key_file")
            if not os.access(path, os.R_OK):
                raise ConfigError(f"{key}.{field}", f"cannot read {path}")
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(self.tls_cert_file, self.tls_key_file)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"{key}.tls_cert_file",
                              f"certificate and key do not load: {getattr(exc, 'reason', None) or exc}") from None


class LimitsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Everything that protects the server from one client; reloadable at runtime."""

    # Longer line (or buffered partial line) -> disconnect; a mining.configure needs 512.
    max_line_bytes: Annotated[int, Meta(ge=512)] = 8192
    max_connections: PositiveInt = 18000         # per process (the open-files limit is 20,000 here)
    max_connections_per_ip: PositiveInt = 500    # farms behind NAT share one address
    submits_per_second: Positive = 50.0     # per connection, token bucket
    submit_burst: Positive = 200.0
    authorize_timeout: Positive = 30.0      # seconds from connect to a successful authorize
    idle_timeout: Positive = 900.0          # nothing received for this long -> disconnect
    max_write_buffer: PositiveInt = 1 << 20      # a client that does not read: disconnect past this
    max_bad_messages: PositiveInt = 20           # unparseable / malformed requests before disconnect
    max_auth_failures: PositiveInt = 5
    max_workers_per_connection: PositiveInt = 2000
    # What one client can make the server store (each excess counts as a bad message, see above).
    max_worker_name_length: PositiveInt = 128
    max_user_agent_length: PositiveInt = 128
    max_info_keys: PositiveInt = 16              # mining.configure "info.*" keys kept per connection
    max_info_length: PositiveInt = 256           # characters kept of one info value (keys: 64)
    max_pending_requests: PositiveInt = 16       # server requests (client.get_version) awaiting a reply
    # Deeper nesting in one line is a malformed message (msgspec's decoder stops near 1000).
    max_json_depth: Annotated[int, Meta(ge=1, le=512)] = 64
    farm_proxy_workers: PositiveInt = 5          # >= this many workers on one connection -> farm_proxy
    ban_invalid_shares: PositiveInt = 200        # invalid (not stale) shares within ban_window ...
    ban_invalid_ratio: Fraction = 0.9       # ... making up at least this share of submits -> ban
    ban_window_seconds: Positive = 60.0
    # Rejects of any kind (stale and unknown-job ones too: a storm of honest-looking rejects costs the
    # same CPU as an attack) within ban_window_seconds, on one connection or summed over one source
    # address's connections, that make up at least reject_budget_ratio of those submits -> ban.
    reject_budget_per_connection: PositiveInt = 500
    reject_budget_per_ip: PositiveInt = 5000
    reject_budget_ratio: Fraction = 0.5
    ban_seconds: NonNegative = 600.0
    # Resume state (the local park and its Redis entry) exists only for a connection that authorized;
    # past this many parks in one process the oldest is given up first.
    max_parked_sessions: PositiveInt = 20000
    sweep_interval: Positive = 2.0          # how often timeouts and idle vardiff are checked

    def validate(self, key: str) -> None:
        check_fields(self, key)


class StratumConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    ports: list[PortConfig] = msgspec.field(default_factory=lambda: [PortConfig()])
    extranonce2_size: Annotated[int, Meta(ge=4, le=8)] = 8
    version_mask: str = "1fffe000"
    # Firmware that rolls version bits without mining.configure: "pool_mask" judges the bits against
    # version_mask (ckpool's behaviour), "reject" answers 20 "bad-version".
    version_rolling_without_configure: Literal["pool_mask", "reject"] = "pool_mask"
    notify_interval: Annotated[float, Meta(ge=1)] = 30.0        # keepalive: a fresh notify at least this often
    ntime_forward_seconds: NonNegativeInt = 7000    # submitted ntime <= job ntime + this (ckpool)
    max_future_seconds: NonNegativeInt = 7200       # and <= now + this (consensus MAX_FUTURE_BLOCK_TIME)
    max_jobs_per_connection: Annotated[int, Meta(ge=2)] = 16    # jobs a connection may still submit against
    session_resume_seconds: NonNegative = 600.0
    # Resume across processes/hosts (with Redis): how long a subscribe waits for the shared directory
    # before giving a fresh extranonce1, how often a process settles/renews its entries there, and how
    # long a claimed extranonce1 stays reserved for its holder without a renewal (holder died).
    resume_directory: bool = True
    resume_lookup_timeout: Annotated[float, Meta(gt=0, le=10)] = 0.5
    resume_sync_seconds: Positive = 5.0
    resume_loan_seconds: float = 120.0
    # A process that dies parks nothing: its working sessions are in the directory as live, and it
    # sends a heartbeat this often. Silent for resume_holder_timeout, it is taken for dead and its
    # miners resume on the process they reconnect to (whose subscribe waits up to that long).
    resume_heartbeat_seconds: Positive = 1.0
    resume_holder_timeout: float = 3.0
    # How long such a subscribe keeps asking a directory that does not answer at all (its Redis
    # master is failing over, as when the host that died held it) before a fresh extranonce1.
    resume_directory_wait: Annotated[float, Meta(ge=0, le=60)] = 5.0
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
        check_fields(self)
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
        for i, spec in enumerate(self.trusted_proxies):
            try:
                ipaddress.ip_network(spec, strict=False)
            except ValueError:
                raise ConfigError(f"trusted_proxies[{i}]", f"not an address or CIDR: {spec!r}") from None
        for name, value in self.min_difficulty_by_firmware.items():
            if not value > 0:
                raise ConfigError(f"min_difficulty_by_firmware.{name}", f"must be > 0, got {value}")
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
