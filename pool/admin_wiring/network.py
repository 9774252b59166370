"""The chain as the admin API shows it: tip, difficulty, period start, recent block times and fees.

Everything comes from the node through the JobManager's backend (bitcoind over RPC, or the devnet);
block headers are immutable, so their times and fees are cached by hash and a request after a new
block asks the node only for what changed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pool.admin.interfaces import NetworkInfo
from pool.chain.jobs import JobManager
from pool.chain.rpc import RpcError, RpcTransportError
from pool.chain.types import BlockResult
from pool.config import Config

log = logging.getLogger("geostratum.admin")

RETARGET_INTERVAL = 2016
RECENT_BLOCKS = 24                  # header times (and fees) of this many recent blocks
NON_RETARGETING = ("regtest", "devnet")
CACHE_SECONDS = 1.0
COIN = 100_000_000


def subsidy_sat(height: int, halving_interval: int = 210_000) -> int:
    halvings = height // halving_interval
    return 0 if halvings >= 64 else (50 * COIN) >> halvings


class NetworkReader:
    def __init__(self, config: Config, jobs: JobManager, blocks: list[BlockResult]) -> None:
        self.config = config
        self.jobs = jobs
        self.blocks = blocks                               # this process's block results (the app appends)
        self._headers: dict[str, dict[str, Any]] = {}     # hash -> verbose header
        self._fees: dict[str, int] = {}                   # hash -> total fees (sat)
        self._fees_supported: bool | None = None
        self._period_start = (-1, 0)                       # (first height of the period, its header time)
        self._cached: tuple[float, NetworkInfo] | None = None
        self._lock = asyncio.Lock()

    @property
    def backend(self) -> Any:
        return self.jobs.backend

    def halving_interval(self) -> int:
        chain = self.config.chain
        return chain.devnet.halving_interval if chain.network == "devnet" else 210_000

    async def _header(self, block_hash: str) -> dict[str, Any]:
        found = self._headers.get(block_hash)
        if found is None:
            found = await self.backend.getblockheader(block_hash, True)
            if len(self._headers) > 10_000:
                self._headers.clear()
            self._headers[block_hash] = found
        return found

    def _rpc_nodes(self) -> list[Any]:
        """Nodes that take arbitrary RPCs (bitcoind); the in-process devnet does not."""
        backend = self.backend
        nodes = list(getattr(backend, "nodes", [backend]))
        return [n for n in nodes if callable(getattr(n, "call", None))]

    async def _block_fees(self, block_hash: str) -> int | None:
        if block_hash in self._fees:
            return self._fees[block_hash]
        if self._fees_supported is False:
            return None
        for node in self._rpc_nodes():
            try:
                stats = await node.call("getblockstats", [block_hash, ["totalfee"]])
            except RpcTransportError:
                return None                  # the node is unreachable now: ask again next time
            except RpcError as exc:          # no such method (the devnet's RPC) or no block data
                log.info("admin: getblockstats not available on %s (%s); fees come from the pool's blocks",
                         getattr(node, "name", "node"), exc)
                self._fees_supported = False
                return None
            self._fees_supported = True
            self._fees[block_hash] = int(stats["totalfee"])
            return self._fees[block_hash]
        self._fees_supported = False
        return None

    def _own_block_fees(self) -> list[int]:
        """Fees of the pool's own recent accepted blocks (coinbase value minus subsidy): what the
        devnet, which has no getblockstats, can say about fees."""
        halving = self.halving_interval()
        return [max(0, b.coinbase_value - subsidy_sat(b.height, halving))
                for b in self.blocks[-RECENT_BLOCKS:] if b.accepted]

    async def info(self) -> NetworkInfo:
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        async with self._lock:
            cached = self._cached
            if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
                return cached[1]
            info = await self._read()
            self._cached = (time.monotonic(), info)
            return info

    async def _read(self) -> NetworkInfo:
        chain_info = await self.backend.getblockchaininfo()
        height = int(chain_info["blocks"])
        tip_hash = str(chain_info["bestblockhash"])
        chain = str(chain_info.get("chain") or self.config.chain.network)
        tip = await self._header(tip_hash)
        # Walk back from the tip by previousblockhash: every header is cached after the first read.
        recent = [tip]
        while len(recent) < RECENT_BLOCKS and recent[-1].get("previousblockhash"):
            recent.append(await self._header(recent[-1]["previousblockhash"]))
        recent.reverse()
        first_height = height - height % RETARGET_INTERVAL
        if first_height >= int(recent[0]["height"]):
            period_start_time = int(recent[first_height - int(recent[0]["height"])]["time"])
        elif self._period_start[0] == first_height:
            period_start_time = self._period_start[1]
        else:
            period_start_time = int((await self._header(await self.backend.getblockhash(first_height)))["time"])
            self._period_start = (first_height, period_start_time)
        if chain == "devnet":
            # Its JSON-RPC has no getblockstats, and asking would mark the node failing in its health.
            self._fees_supported = False
        fees: list[int] = []
        for header in recent:
            fee = await self._block_fees(header["hash"])
            if fee is None:
                break
            fees.append(fee)
        if self._fees_supported is False:
            fees = self._own_block_fees()
        return NetworkInfo(
            chain=chain, height=height, difficulty=float(chain_info["difficulty"]), tip_time=int(tip["time"]),
            period_start_time=period_start_time, recent_block_times=[int(h["time"]) for h in recent],
            recent_block_difficulties=[float(h.get("difficulty", 0.0)) for h in recent],
            recent_fees_sat=fees, retargets=chain not in NON_RETARGETING)
