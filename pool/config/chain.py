"""[chain] section: bitcoind nodes or the embedded devnet, payout mode and coinbase."""

from __future__ import annotations

import msgspec


class NodeConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str = "http://127.0.0.1:8332"
    user: str = ""
    password: str = ""
    zmq_hashblock: str = ""


class ChainConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # "devnet" runs the in-process chain; "bitcoind" talks to `nodes`.
    backend: str = "devnet"
    network: str = "devnet"
    nodes: list[NodeConfig] = msgspec.field(default_factory=list)
    # "pool": the coinbase pays pool_address; "solo": it pays the finder's address.
    mode: str = "pool"
    pool_address: str = ""
    pool_tag: str = "/geostratum/"
