"""Builds every part from the config and wires them; starts and stops them in order.

server -> (ShareRecord) -> ledger (+ geo rollups in the same batches)
chain  -> (jobs)        -> server;  server -> (block candidates) -> chain -> (BlockResult) -> ledger
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import secrets
import socket
import time
from typing import Any

from redis.exceptions import RedisError

from pool.admin import AdminServer
from pool.admin.alerts import AlertMonitor
from pool.admin.interfaces import ReloadResult
from pool.admin_wiring import build_admin, build_alerts
from pool.aio import cancel_and_wait
from pool.bitcoin.address import is_valid_address
from pool.bus import ClusterLink, Identity, LocalActions
from pool.chain.jobs import JobManager
from pool.chain.types import BlockResult
from pool.cluster.leases import LeaseError, PrefixLease, lease_prefix
from pool.cluster.resume_store import RedisResumeDirectory
from pool.config import Config, require_books
from pool.config.chain import FIXED_DIFFICULTY_NETWORKS
from pool.geo.firmware import classify_firmware
from pool.geo.locator import GeoLocator, watch_databases
from pool.geo.rollup import GeoRollup, NetworkDifficultyRecorder
from pool.money.service import MoneyService
from pool.parts import PoolParts
from pool.reload import reload_app
from pool.shares.blocks import RefusedBlock
from pool.shares.ledger import Ledger
from pool.shares.ranking import RankKeeper
from pool.stratum.events import ShareRecord
from pool.stratum.extranonce import ExtranonceAllocator
from pool.stratum.server import StratumServer, untagged
from pool.stratum.session_records import drain_worker_rejects

log = logging.getLogger("geostratum")

# Seconds between pushes of the chain's view (network difficulty, subsidy) to the ledger and geo.
NETWORK_UPDATE_INTERVAL = 30.0


def node_name(config: Config, worker_index: int) -> str:
    """A name for this process that is unique across hosts and safe in Redis keys and file names."""
    raw = f"{socket.gethostname()}-{config.pool.name}-w{worker_index}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", raw).lstrip(".")


def account_is_valid(config: Config, name: str) -> bool:
    """The account (before the first '.') must be a payout address valid on this network, unless named
    accounts are allowed (pool mode) or this is the devnet."""
    account = name.split(".", 1)[0]
    network = config.chain.network
    if config.chain.mode != "solo" and (config.payouts.named_accounts or network == "devnet"):
        return bool(account)
    return is_valid_address(account, network)


class PoolApp:
    """One pool process: chain watcher, stratum server, ledger, geo tagging, admin API."""

    def __init__(self, config: Config, *, worker_index: int = 0, config_path: str | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.worker_index = worker_index
        self.node = node_name(config, worker_index)
        self.started_at = time.time()
        self.locator: GeoLocator | None = None
        self.rollup: GeoRollup | None = None
        self.ledger: Ledger | None = None
        self.money: MoneyService | None = None   # the payout books (PostgreSQL) when money.dsn is set
        self.jobs: JobManager | None = None
        self.server: StratumServer | None = None
        self.admin: AdminServer | None = None
        self.alerts: AlertMonitor | None = None   # worker 0 (idle without alert targets)
        self.rank_keeper: RankKeeper | None = None  # with the admin API: its lists' rank windows ahead of it
        self.cluster: ClusterLink | None = None   # snapshots + controls across processes
        self.parts: PoolParts | None = None       # the started components, as the admin wiring reads them
        self.lease: PrefixLease | None = None
        self.resume_directory: RedisResumeDirectory | None = None
        self._difficulty_recorder: NetworkDifficultyRecorder | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.blocks: list[BlockResult] = []

    # -- wiring ------------------------------------------------------------------------------------

    def _on_share(self, record: ShareRecord) -> None:
        assert self.ledger is not None
        self.ledger.add(record)

    async def _on_block_result(self, result: BlockResult) -> None:
        """Every block candidate's outcome: kept in memory, and recorded by the ledger (which fsyncs
        it to its local journal before anything else) when a node accepted it."""
        self.blocks.append(result)
        del self.blocks[:-100]
        if self.ledger is not None and result.block_hash and not result.accepted:
            # A candidate the node refused is still the share it was (an accepted one closed its round
            # with its own ShareRecord in it); and it is recorded in Redis, so the blocks list and the
            # alerts (worker 0) see it whichever process found it.
            self.ledger.best.note_candidate(result.account, result.worker, result.block_hash, result.found_at)
            try:
                self.ledger.record_refused(RefusedBlock(
                    block_hash=result.block_hash, height=result.height, account=result.account,
                    worker=result.worker, node=self.node, found_at=result.found_at,
                    reward_sat=result.coinbase_value, reason=result.refusal))
            except OSError:          # the journal's disk: the candidate stays in this process's list
                log.exception("refused block %s not journaled", result.block_hash)
        verdict = "ACCEPTED" if result.accepted else f"refused ({result.refusal}; {result.node_results})"
        log.warning("block %s at height %d by %s: %s", result.block_hash, result.height, result.worker, verdict)
        if not result.accepted or self.ledger is None or self.jobs is None:
            return
        figures = self.jobs.snapshot()
        await self.ledger.record_block(
            result.block_hash, result.height, result.account, result.worker, result.coinbase_value,
            figures.network_difficulty or 1.0, found_at=result.found_at)

    async def _confirmations(self, block_hash: str) -> int:
        assert self.jobs is not None
        header = await self.jobs.backend.getblockheader(block_hash, True)
        return int(header.get("confirmations", -1))

    def _validate_account(self, name: str) -> bool:
        return account_is_valid(self.config, name)

    async def _lease_extranonce_prefix(self, allocator: ExtranonceAllocator) -> None:
        """One extranonce1 prefix byte per process, leased from Redis so no two processes on any host
        share it; without Redis, the configured node id (plus the worker index) is the prefix."""
        assert self.ledger is not None
        try:
            self.lease = await lease_prefix(self.ledger.client, self.node, key_prefix=self.config.redis.key_prefix,
                                            size_bytes=1, on_lost=self._lease_lost)
            allocator.set_prefix(self.lease.value, 8, reserved=await self._reserved_values(self.lease.value))
            log.info("extranonce1 prefix %02x leased from Redis", self.lease.value)
        except (LeaseError, RedisError, OSError) as exc:
            fallback = (self.config.pool.node_id + self.worker_index) % 256
            allocator.set_prefix(fallback, 8, reserved=await self._reserved_values(fallback))
            log.warning("extranonce1 prefix lease failed (%s); using node_id-based prefix %02x", exc, fallback)

    async def _reserved_values(self, prefix: int) -> list[bytes]:
        """Values of `prefix` that sessions resumed elsewhere (or parked for a resume) still hold: the
        allocator must not hand them out under this lease (pool/stratum/resume.py)."""
        if self.resume_directory is None:
            return []
        try:
            async with asyncio.timeout(self.config.stratum.resume_sync_seconds):
                return await self.resume_directory.reserved(prefix, time.time())
        except Exception as exc:  # the server's periodic sync fills it in once Redis answers
            log.warning("reserved extranonce1 values of prefix %02x not read (%s)", prefix, type(exc).__name__)
            return []

    def _lease_lost(self, lease: PrefixLease) -> None:
        log.error("extranonce1 prefix lease %02x lost; new connections keep it until a new lease", lease.value)
        self._tasks.append(asyncio.create_task(self._release_and_relet()))

    async def _release_and_relet(self) -> None:
        if self.server is not None:
            await self._lease_extranonce_prefix(self.server.allocator)

    async def _push_network_view(self) -> None:
        """Keep the ledger (PPLNS window, PPS value) and the geo coverage figures on the chain's numbers."""
        assert self.jobs is not None and self.ledger is not None
        while True:
            figures = self.jobs.snapshot()
            if figures.ready and figures.network_difficulty > 0:
                self.ledger.set_network(figures.network_difficulty, height=figures.height)
                # A fixed trivial difficulty would give the exports a share of network of thousands of %.
                if (self._difficulty_recorder is not None
                        and self.config.chain.network not in FIXED_DIFFICULTY_NETWORKS):
                    try:
                        await self._difficulty_recorder.record_network_difficulty(figures.network_difficulty)
                    except Exception as exc:  # Redis down: coverage misses a point, nothing else
                        log.debug("network difficulty not recorded: %s", exc)
            await asyncio.sleep(NETWORK_UPDATE_INTERVAL)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        require_books(config)   # also for a Config built in code, which from_dict never saw
        if config.geo.enabled:
            locator = self.locator = GeoLocator.from_config(config.geo)
            self.rollup = GeoRollup(config.geo, databases=lambda: locator.databases, prefix=config.redis.key_prefix,
                                    fine_s=config.ledger.fine_bucket_s)
        self.ledger = Ledger(config.ledger, config.redis, self.node, config.payouts,
                             confirmations=self._confirmations)
        if self.rollup is not None:
            self.ledger.add_contributor(self.rollup)
            self._difficulty_recorder = NetworkDifficultyRecorder(self.ledger.client, self.rollup)
        if config.money.enabled:
            self.money = await MoneyService.open(config, f"geostratum-{self.node}")
            self.money.attach(self.ledger)
            await self.money.check_schema()
        await self.ledger.start()
        if self.money is not None:
            self.money.start()

        self.jobs = JobManager.from_config(
            config.chain, extranonce1_size=4, extranonce2_size=config.stratum.extranonce2_size,
            version_mask=int(config.stratum.version_mask, 16), on_block_result=self._on_block_result)
        if config.stratum.resume_directory and config.stratum.session_resume_seconds > 0:
            # One holder name per start: a process restarted after a crash must not pass for its dead
            # predecessor, whose live sessions are then resumable anywhere (pool/stratum/resume.py).
            holder = f"{self.node}.{secrets.token_hex(4)}"
            self.resume_directory = RedisResumeDirectory(
                self.ledger.client, holder, key_prefix=config.redis.key_prefix, prefix_bits=8,
                loan_seconds=config.stratum.resume_loan_seconds, park_seconds=config.stratum.session_resume_seconds,
                holder_timeout=config.stratum.resume_holder_timeout)
        allocator = ExtranonceAllocator(park_seconds=config.stratum.session_resume_seconds,
                                        shared=self.resume_directory is not None)
        await self._lease_extranonce_prefix(allocator)
        if not await self.jobs.start():
            log.warning("no work from the chain yet; miners are served as soon as a template arrives")

        self.server = StratumServer(
            config.stratum, self.jobs, on_share=self._on_share, validate_account=self._validate_account,
            allocator=allocator, resume_directory=self.resume_directory,
            tag_connection=self.locator.tag_connection if self.locator else untagged,
            classify_firmware=classify_firmware, node=self.node, solo=config.chain.mode == "solo")
        await self.server.start()
        server = self.server
        self.ledger.tallies.rejects = lambda: drain_worker_rejects(server.counters.values())
        self._tasks.append(asyncio.create_task(self._push_network_view()))
        if self.locator is not None and config.geo.reload_check_seconds > 0:
            self._tasks.append(asyncio.create_task(watch_databases(self.locator, config.geo.reload_check_seconds)))

        self.parts = PoolParts(config=config, node=self.node, worker_index=self.worker_index,
                               started_at=self.started_at, server=self.server, ledger=self.ledger, jobs=self.jobs,
                               locator=self.locator, rollup=self.rollup, blocks=self.blocks,
                               config_path=self.config_path, money=self.money)
        me = Identity(node=self.node, worker_index=self.worker_index, started_at=self.started_at)
        self.cluster = ClusterLink(config, me, self.server, self.ledger,
                                   LocalActions(self.node, self.server, self.reload_config))
        await self.cluster.start()
        if config.admin.enabled:
            ledger = self.ledger
            self.rank_keeper = self.parts.rank_keeper = RankKeeper(ledger.reader.ranking, lambda: ledger.client,
                                                                   ledger.keys.all_shards())
            self.rank_keeper.start()
            self.admin = build_admin(self.parts, self.cluster, self.reload_config)
            await self.admin.start()
            log.info("admin API and dashboard on %s", self.admin.url)
        if self.worker_index == 0:          # one monitor for the pool (it reads every process's snapshot)
            self.alerts = self.parts.alerts = build_alerts(self.parts, self.cluster)
            await self.alerts.start()
        # What the started pool holds for good (modules, config, components: ~60,000 objects) leaves the
        # collector's full passes: each took ~25 ms, about once a second under the admin API's lists,
        # a pause every request in flight waited out (benchmarks/RESULTS.md, the read side's tail).
        gc.freeze()

    async def reload_config(self) -> ReloadResult:
        """Re-read config_path and apply what can change live (SIGHUP)."""
        if self.parts is None:
            raise RuntimeError("the pool is not started")
        return await reload_app(self.parts)

    async def stop(self) -> None:
        """Reverse order: stop taking shares, then stop work, then flush the books."""
        await cancel_and_wait(*self._tasks, absorb_errors=True)
        if self.alerts is not None:
            await self.alerts.stop()
        if self.admin is not None:
            await self.admin.stop()
        if self.rank_keeper is not None:
            await self.rank_keeper.stop()
        if self.cluster is not None:
            await self.cluster.stop()
        if self.server is not None:
            await self.server.stop()
        if self.jobs is not None:
            await self.jobs.stop()
        if self.lease is not None:
            await self.lease.release()
        if self.ledger is not None:
            await self.ledger.stop()
        if self.money is not None:
            await self.money.close()
        if self.locator is not None:
            self.locator.close()
