"""[chain] section: bitcoind nodes or the embedded devnet, payout mode, coinbase and work refresh."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from pool.bitcoin.address import AddressError, address_to_script
from pool.config.constraints import NonNegative, NonNegativeInt, PortNumber, Positive, PositiveInt, check_fields
from pool.config.errors import ConfigError

Backend = Literal["devnet", "bitcoind"]
Network = Literal["mainnet", "testnet", "testnet4", "signet", "regtest", "devnet"]
Mode = Literal["pool", "solo"]
# Networks mined at a fixed trivial difficulty: no pool address needed, and their difficulty says
# nothing about the network's hashrate (no share of network, no hashprice).
FIXED_DIFFICULTY_NETWORKS = ("regtest", "devnet")
MAX_POOL_TAG_BYTES = 64


class NodeConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str = "http://127.0.0.1:8332"
    user: str = ""
    password: str = ""
    # Bitcoin Core's .cookie file; read (and re-read after a 401) when user/password are empty.
    cookie_file: str = ""
    zmq_hashblock: str = ""
    # Label in logs, block results and the admin API; defaults to the URL's host:port.
    name: str = ""


class DevnetConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Compact target; 207fffff is regtest's (about every other hash is a block).
    nbits: str = "207fffff"
    # Header version in templates; 0x30000000 reproduces regtest's bit-28 signalling.
    version: int = 0x20000000
    # Synthetic mempool: transactions added after each block (about a third carry witnesses),
    # one more every tx_interval seconds (0 = never), at most max_mempool_txs waiting.
    txs_per_block: NonNegativeInt = 6
    tx_interval: NonNegative = 15.0
    max_mempool_txs: NonNegativeInt = 200
    halving_interval: PositiveInt = 210_000
    seed: int = 0
    # How long a longpoll getblocktemplate waits for a new tip before answering anyway.
    longpoll_timeout: Positive = 60.0
    # JSON-RPC server used when several worker processes share one devnet (0 = any free port).
    rpc_host: str = "127.0.0.1"
    rpc_port: PortNumber = 18443
    rpc_user: str = "devnet"
    rpc_password: str = "devnet"
    # Keep the chain across restarts in this append-only file (one 92-byte record per block);
    # empty: the chain lives in memory and starts again at height 0.
    chain_file: str = ""

    def validate(self) -> None:
        check_fields(self)
        try:
            value = int(self.nbits, 16)
        except ValueError:
            raise ConfigError("nbits", f"must be 8 hex digits, got {self.nbits!r}") from None
        if len(self.nbits) != 8 or value & 0x00800000 or not value & 0x007FFFFF:
            raise ConfigError("nbits", f"{self.nbits!r} is not a positive compact target")
        if not 0x20000000 <= self.version <= 0x3FFFFFFF:
            raise ConfigError("version", f"must be a BIP9 version (0x20000000..0x3fffffff), got {self.version:#x}")


class ChainConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # "devnet" runs the in-process chain; "bitcoind" talks to `nodes`.
    backend: Backend = "devnet"
    network: Network = "devnet"
    nodes: list[NodeConfig] = msgspec.field(default_factory=list)
    # "pool": the coinbase pays pool_address; "solo": it pays the finder's address.
    mode: Mode = "pool"
    # Required in pool mode except on devnet/regtest (a fixed devnet burn address stands in).
    pool_address: str = ""
    pool_tag: str = "/geostratum/"
    # SOLO mode: share of the block reward paid to pool_address (percent, 0 = none).
    solo_fee_percent: Annotated[float, Meta(ge=0, lt=100)] = 0.0
    # SOLO jobs cached per template (one per active payout address; least recently used dropped).
    solo_max_addresses: PositiveInt = 10_000

    # RPC
    rpc_timeout: Positive = 10.0
    # Transport errors and warm-up (-28) retried per call before the next node is tried.
    rpc_retries: NonNegativeInt = 2
    rpc_retry_delay: NonNegative = 0.2
    # Block watch: ZMQ hashblock (per node), GBT longpoll and getbestblockhash polling.
    longpoll: bool = True
    longpoll_timeout: Positive = 120.0
    poll_interval: NonNegative = 1.0  # 0 disables polling
    # A fresh template (new fees, clean_jobs=false) at least this often.
    template_refresh_interval: Positive = 30.0
    # Jobs: current-tip jobs older than job_retention are forgotten; jobs of a replaced tip stay
    # valid for lookup (and stale-block submission) for stale_grace seconds.
    job_retention: Positive = 600.0
    stale_grace: NonNegative = 120.0
    max_jobs: PositiveInt = 50_000
    # Block submission: transport retries per node, then confirmation via getblockhash.
    submit_retries: NonNegativeInt = 5
    submit_retry_delay: NonNegative = 0.25
    confirm_delay: NonNegative = 0.5
    # start() waits this long for the first template before returning not-ready.
    startup_timeout: Positive = 30.0

    devnet: DevnetConfig = msgspec.field(default_factory=DevnetConfig)

    def validate(self) -> None:
        check_fields(self)
        if self.backend == "bitcoind" and not self.nodes:
            raise ConfigError("nodes", "backend 'bitcoind' needs at least one node")
        for i, node in enumerate(self.nodes):
            if not node.url.startswith(("http://", "https://")):
                raise ConfigError(f"nodes[{i}].url", f"must be an http(s) URL, got {node.url!r}")
            if node.zmq_hashblock and not node.zmq_hashblock.startswith(("tcp://", "ipc://")):
                raise ConfigError(f"nodes[{i}].zmq_hashblock", "must be a tcp:// or ipc:// endpoint")

        if self.pool_address:
            try:
                address_to_script(self.pool_address, self.network)
            except AddressError as exc:
                raise ConfigError("pool_address", str(exc)) from None
        elif self.mode == "pool" and self.network not in FIXED_DIFFICULTY_NETWORKS:
            raise ConfigError("pool_address", f"required in pool mode on {self.network}")
        if len(self.pool_tag.encode()) > MAX_POOL_TAG_BYTES:
            raise ConfigError("pool_tag", f"at most {MAX_POOL_TAG_BYTES} bytes")
        if self.solo_fee_percent and not self.pool_address:
            raise ConfigError("pool_address", "needed to receive solo_fee_percent")
        try:
            self.devnet.validate()
        except ConfigError as exc:
            raise ConfigError(f"devnet.{exc.key}", exc.reason) from None
