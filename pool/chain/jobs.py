"""JobManager: templates in, jobs out, blocks submitted. Implements pool.chain.types.JobSource."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from pool.aio import cancel_and_wait, wait_set
from pool.bitcoin.address import AddressError, address_to_script
from pool.bitcoin.encoding import internal_to_display, sha256d
from pool.chain.devnet import Devnet
from pool.chain.devnet_server import DevnetBackend
from pool.chain.devnet_store import open_devnet
from pool.chain.rpc import ChainBackend, NodeHealth, NodeSet, RpcClient, RpcError, RpcTimeoutError, gbt_rules
from pool.chain.submit import AssemblyError, BlockSubmitter, assemble_block
from pool.chain.template import (
    JobBuilder,
    JobIdAllocator,
    PayoutPolicy,
    PreparedTemplate,
    TemplateError,
    prepare_template,
)
from pool.chain.types import BlockCandidate, BlockResult, Job
from pool.chain.watch import ZmqHashblockSubscriber
from pool.config.chain import ChainConfig
from pool.native.work import target_to_difficulty

log = logging.getLogger(__name__)

# Pays nothing anyone can spend; stands in for pool_address on devnet/regtest when none is set.
DEVNET_BURN_SCRIPT = b"\x00\x20" + sha256d(b"geostratum devnet burn")

BlockResultCallback = Callable[[BlockResult], Awaitable[None] | None]

__all__ = ["DEVNET_BURN_SCRIPT", "ChainSnapshot", "JobManager"]


class ChainSnapshot(msgspec.Struct, kw_only=True):
    """The job source at one instant: the template behind the current job, the nodes, new-block timings
    (/metrics, health and the admin API read it)."""

    backend: str
    network: str
    mode: str
    ready: bool
    height: int  # height of the block being mined
    prevhash: str
    network_difficulty: float
    network_target: str
    template_id: str
    template_age: float
    template_tx_count: int
    template_fees: int | None
    coinbase_value: int
    last_new_block_at: float
    new_block_to_job_ms: float  # detection of the last new tip -> its job ready
    new_block_source: str
    jobs_live: int
    solo_jobs_cached: int
    blocks_submitted: int
    blocks_accepted: int
    last_block: BlockResult | None
    zmq_messages: int
    zmq_missed: int
    nodes: list[NodeHealth]


class _Entry(msgspec.Struct):
    job: Job
    expires_at: float


class JobManager:
    def __init__(
        self,
        config: ChainConfig,
        *,
        backend: ChainBackend,
        submit_nodes: Sequence[ChainBackend] | None = None,
        zmq_endpoints: Sequence[str] = (),
        extranonce_size: int = 12,
        version_mask: int = 0x1FFFE000,
        job_epoch: int | None = None,
        on_block_result: BlockResultCallback | None = None,
        devnet: Devnet | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.devnet = devnet
        self.rules = gbt_rules(config.network)
        self._submitter = BlockSubmitter(
            submit_nodes or [backend], retries=config.submit_retries, retry_delay=config.submit_retry_delay,
            confirm_delay=config.confirm_delay,
        )
        pool_script = address_to_script(config.pool_address, config.network) if config.pool_address else None
        if pool_script is None and config.network in ("devnet", "regtest"):
            pool_script = DEVNET_BURN_SCRIPT
        self._pool_script = pool_script
        self._policy = PayoutPolicy(pool_script=pool_script, fee_percent=config.solo_fee_percent)
        self._builder = JobBuilder(extranonce_size=extranonce_size, version_mask=version_mask,
                                   pool_tag=config.pool_tag.encode(), job_ids=JobIdAllocator(job_epoch))
        self._block_callbacks: list[BlockResultCallback] = [on_block_result] if on_block_result else []
        self._listeners: list[Callable[[bool], None]] = []
        self._zmq = [ZmqHashblockSubscriber(e, self._on_zmq_block) for e in zmq_endpoints]
        self._template: PreparedTemplate | None = None
        self._template_is_new_block = False
        self._templates: dict[str, PreparedTemplate] = {}
        self._template_counter = 0
        self._pool_job: Job | None = None
        self._jobs: OrderedDict[str, _Entry] = OrderedDict()
        self._solo_jobs: OrderedDict[str, Job] = OrderedDict()
        self._refresh_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[Any]] = []
        self._ready = asyncio.Event()
        self._last_new_block_at = 0.0
        self._new_block_latency = 0.0
        self._new_block_source = ""
        self._blocks_submitted = 0
        self._blocks_accepted = 0
        self._last_block: BlockResult | None = None

    @classmethod
    def from_config(
        cls,
        config: ChainConfig,
        *,
        extranonce1_size: int = 4,
        extranonce2_size: int = 8,
        version_mask: int = 0x1FFFE000,
        on_block_result: BlockResultCallback | None = None,
        job_epoch: int | None = None,
        devnet: Devnet | None = None,
    ) -> JobManager:
        """backend "devnet": an in-process Devnet (pass one to share it, e.g. with a DevnetRpcServer);
        backend "bitcoind": one RpcClient per node, failover for templates, submission to all."""
        common: dict[str, Any] = {
            "extranonce_size": extranonce1_size + extranonce2_size, "version_mask": version_mask,
            "on_block_result": on_block_result, "job_epoch": job_epoch,
        }
        if config.backend == "devnet":
            devnet = devnet or open_devnet(config.devnet)
            return cls(config, backend=DevnetBackend(devnet, network=config.network), devnet=devnet, **common)
        clients = [
            RpcClient(n.url, user=n.user, password=n.password, cookie_file=n.cookie_file, name=n.name,
                      timeout=config.rpc_timeout, retries=config.rpc_retries, retry_delay=config.rpc_retry_delay)
            for n in config.nodes
        ]
        zmq = [n.zmq_hashblock for n in config.nodes if n.zmq_hashblock]
        return cls(config, backend=NodeSet(clients), submit_nodes=clients, zmq_endpoints=zmq, **common)

    # --- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> bool:
        """Start watching; wait up to startup_timeout for the first job. False if none came (the
        watchers keep trying; `ready` turns true later)."""
        for sub in self._zmq:
            await sub.start()
        self._spawn(self._refresh_timer_loop(), "chain-refresh")
        if self.config.poll_interval > 0:
            self._spawn(self._poll_loop(), "chain-poll")
        if self.config.longpoll:
            self._spawn(self._longpoll_loop(), "chain-longpoll")
        if not await wait_set(self._ready, self.config.startup_timeout):
            log.error("no block template within %.0f s; still trying", self.config.startup_timeout)
            return False
        return True

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.ensure_future(coro))
        self._tasks[-1].set_name(name)

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks, absorb_errors=True)
        self._tasks.clear()
        for sub in self._zmq:
            await sub.stop()
        await self.backend.close()
        for node in self._submitter.nodes:
            if node is not self.backend:
                await node.close()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    # --- JobSource ---------------------------------------------------------------------------------------

    def current_job(self, payout_key: str = "") -> Job | None:
        """Pool mode: the pool job. SOLO mode: a job paying `payout_key` (built once per template and
        address, cached); None for an address invalid on this network or before the first template."""
        if self.config.mode != "solo" or not payout_key:
            return self._pool_job
        job = self._solo_jobs.get(payout_key)
        if job is not None:
            self._solo_jobs.move_to_end(payout_key)
            return job
        template = self._template
        if template is None:
            return None
        try:
            script = address_to_script(payout_key, self.config.network)
        except AddressError as exc:
            log.warning("no SOLO job for %r: %s", payout_key, exc)
            return None
        job = self._build(template, script, payout_key)
        self._solo_jobs[payout_key] = job
        while len(self._solo_jobs) > self.config.solo_max_addresses:
            self._solo_jobs.popitem(last=False)
        return job

    def lookup(self, job_id: str) -> Job | None:
        entry = self._jobs.get(job_id)
        if entry is None or entry.expires_at < time.time():
            return None
        return entry.job

    def is_stale(self, job: Job) -> bool:
        return self._template is None or job.prevhash != self._template.prevhash

    def add_listener(self, callback: Callable[[bool], None]) -> None:
        self._listeners.append(callback)

    def add_block_listener(self, callback: BlockResultCallback) -> None:
        self._block_callbacks.append(callback)

    async def submit_block(self, candidate: BlockCandidate) -> None:
        try:
            result = await self._submit(candidate)
        except Exception as exc:  # never raise into the share path
            log.exception("block submission for job %s failed", candidate.job_id)
            result = self._failed_result(candidate, f"internal error: {exc!r}")
        self._blocks_submitted += 1
        self._blocks_accepted += result.accepted
        self._last_block = result
        for callback in self._block_callbacks:
            try:
                outcome = callback(result)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                log.exception("on_block_result callback failed")
        if result.accepted:
            self._spawn(self.refresh("block-found", time.time()), "chain-after-block")

    async def _submit(self, candidate: BlockCandidate) -> BlockResult:
        entry = self._jobs.get(candidate.job_id)
        template = self._templates.get(candidate.template_id)
        if entry is None or template is None:
            return self._failed_result(candidate, f"job {candidate.job_id} / template {candidate.template_id} "
                                                  "no longer known")
        try:
            block = assemble_block(template, entry.job, candidate)
        except AssemblyError as exc:
            log.error("block candidate from %s does not assemble: %s", candidate.worker, exc)
            return self._failed_result(candidate, str(exc), entry.job)
        return await self._submitter.submit(block, candidate, entry.job)

    @staticmethod
    def _failed_result(candidate: BlockCandidate, error: str, job: Job | None = None) -> BlockResult:
        return BlockResult(
            height=candidate.height, block_hash=internal_to_display(candidate.header_hash),
            prevhash=internal_to_display(job.prevhash) if job else "", worker=candidate.worker,
            account=candidate.account, payout_key=job.payout_key if job else "", accepted=False,
            confirmed=False, node_results={}, found_at=candidate.found_at, submitted_at=time.time(),
            coinbase_value=0, job_id=candidate.job_id, error=error,
        )

    # --- templates -> jobs -------------------------------------------------------------------------------

    async def refresh(self, reason: str, detected_at: float | None = None) -> bool:
        """Fetch a template now; True when it produced new work. Errors are logged, never raised."""
        async with self._refresh_lock:
            try:
                gbt = await self.backend.getblocktemplate(self.rules)
            except RpcError as exc:
                log.warning("getblocktemplate (%s) failed: %s", reason, exc)
                return False
            return self.apply_template(gbt, reason, detected_at)

    def apply_template(self, gbt: dict[str, Any], reason: str, detected_at: float | None = None) -> bool:
        now = time.time()
        self._template_counter += 1
        try:
            template = prepare_template(gbt, f"{self._builder.job_ids.epoch:04x}t{self._template_counter:x}", now)
        except TemplateError as exc:
            log.error("unusable template (%s): %s", reason, exc)
            return False
        current = self._template
        new_block = current is None or template.prevhash != current.prevhash
        if not new_block and reason != "timer" and template.content_key == current.content_key:
            return False  # same work; the longpoll id may have moved on
        if new_block:
            for entry in self._jobs.values():
                entry.expires_at = min(entry.expires_at, now + self.config.stale_grace)
            self._last_new_block_at = detected_at or now
            self._new_block_source = reason
        self._template = template
        self._template_is_new_block = new_block
        self._templates[template.template_id] = template
        self._solo_jobs.clear()
        self._pool_job = self._build(template, None, "") if self._pool_script is not None else None
        if new_block:
            self._new_block_latency = time.time() - self._last_new_block_at
            log.info("new block: height %d prev %s (%s), job ready in %.1f ms", template.height,
                     template.previousblockhash, reason, self._new_block_latency * 1000)
        self._prune(now)
        self._ready.set()
        for listener in list(self._listeners):
            try:
                listener(new_block)
            except Exception:
                log.exception("job listener failed")
        return True

    def _build(self, template: PreparedTemplate, payee_script: bytes | None, payout_key: str) -> Job:
        outputs = self._policy.outputs(template.coinbase_value, payee_script)
        job = self._builder.build(template, outputs, clean_jobs=self._template_is_new_block, payout_key=payout_key)
        self._jobs[job.job_id] = _Entry(job, job.created_at + self.config.job_retention)
        while len(self._jobs) > self.config.max_jobs:
            self._jobs.popitem(last=False)
        return job

    def _prune(self, now: float) -> None:
        for job_id in [k for k, e in self._jobs.items() if e.expires_at < now]:
            del self._jobs[job_id]
        live = {e.job.template_id for e in self._jobs.values()}
        if self._template is not None:
            live.add(self._template.template_id)
        for template_id in [t for t in self._templates if t not in live]:
            del self._templates[template_id]

    # --- watching ----------------------------------------------------------------------------------------

    def _on_zmq_block(self, block_hash: str, _missed: int) -> None:
        if self._template is None or block_hash != self._template.previousblockhash:
            self._spawn(self.refresh("zmq", time.time()), "chain-zmq-refresh")

    async def _refresh_timer_loop(self) -> None:
        backoff = 0.25
        while True:
            if self._template is None:
                if not await self.refresh("startup"):
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                continue
            due = self._template.created_at + self.config.template_refresh_interval - time.time()
            if due > 0:
                await asyncio.sleep(due)
                continue
            await self.refresh("timer")
            if self._template is not None and time.time() - self._template.created_at >= (
                    self.config.template_refresh_interval):
                await asyncio.sleep(1.0)  # the refresh failed: do not spin

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.poll_interval)
            if self._template is None:
                continue
            try:
                best = await self.backend.getbestblockhash()
            except RpcError as exc:
                log.debug("getbestblockhash failed: %s", exc)
                continue
            if best != self._template.previousblockhash:
                await self.refresh("poll", time.time())

    async def _longpoll_loop(self) -> None:
        while True:
            longpollid = self._template.longpollid if self._template else None
            if longpollid is None:
                await asyncio.sleep(1.0)
                continue
            try:
                gbt = await self.backend.getblocktemplate(self.rules, longpollid, self.config.longpoll_timeout)
            except RpcTimeoutError:
                continue
            except RpcError as exc:
                log.info("longpoll failed: %s", exc)
                await asyncio.sleep(1.0)
                continue
            detected = time.time()
            async with self._refresh_lock:
                if self._template is not None and gbt.get("longpollid") == self._template.longpollid:
                    await asyncio.sleep(0.5)  # a node answering longpolls at once: do not spin
                    continue
                self.apply_template(gbt, "longpoll", detected)

    # --- figures -----------------------------------------------------------------------------------------

    def snapshot(self) -> ChainSnapshot:
        t = self._template
        nodes = list(self.backend.nodes) if isinstance(self.backend, NodeSet) else [self.backend]
        return ChainSnapshot(
            backend=self.config.backend, network=self.config.network, mode=self.config.mode, ready=self.ready,
            height=t.height if t else 0, prevhash=t.previousblockhash if t else "",
            network_difficulty=target_to_difficulty(t.network_target) if t else 0.0,
            network_target=f"{t.network_target:064x}" if t else "", template_id=t.template_id if t else "",
            template_age=time.time() - t.created_at if t else 0.0, template_tx_count=t.tx_count if t else 0,
            template_fees=t.total_fees if t else None, coinbase_value=t.coinbase_value if t else 0,
            last_new_block_at=self._last_new_block_at, new_block_to_job_ms=self._new_block_latency * 1000,
            new_block_source=self._new_block_source, jobs_live=len(self._jobs),
            solo_jobs_cached=len(self._solo_jobs), blocks_submitted=self._blocks_submitted,
            blocks_accepted=self._blocks_accepted, last_block=self._last_block,
            zmq_messages=sum(z.messages for z in self._zmq), zmq_missed=sum(z.tracker.missed for z in self._zmq),
            nodes=[msgspec.structs.replace(n.health) for n in nodes],
        )
