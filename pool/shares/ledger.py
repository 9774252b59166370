"""The share ledger: accepted shares -> journal (at once) -> batches -> Redis (exactly once).

`add(record)` writes the record to the local journal with one os.write (so it survives kill -9 of
the pool) and appends it to the in-memory batch. A flusher task cuts a batch every
`flush_interval_ms` or `flush_max_shares`: the ledger's ops plus every registered contributor's ops
(geo rollups), grouped by hash slot, are journaled as one frame, fsynced, then applied. Each group
runs one Lua script that first sets a per-batch marker in its own slot (SET NX) and applies its
ops only if the marker was new, so replaying a batch after a crash at any point never counts a
group twice and never skips one. While Redis is unreachable batches stay queued (and journaled)
and are applied in order when it returns; a restart replays what the journal holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import msgspec
from redis.exceptions import NoScriptError, RedisError

from pool.aio import cancel_and_wait, wait_set
from pool.config.ledger import LedgerConfig, PayoutConfig, RedisConfig
from pool.shares import lua
from pool.shares.best import BestShares
from pool.shares.blocks import BlockWatcher, Confirmations, RefusedBlock, refused_ops
from pool.shares.journal import BatchFrame, BlockFound, Journal
from pool.shares.keys import Keys, key_slot
from pool.shares.ledger_ops import LedgerOps, NetworkState
from pool.shares.payouts import PayoutEngine
from pool.shares.reader import LedgerReader
from pool.shares.recent_batches import RecentBatches
from pool.shares.redis_conn import RedisClient, Script, create_redis, is_cluster
from pool.shares.redis_ops import MAX_OP_ARGS, RedisOp
from pool.shares.schemes import block_subsidy_sat
from pool.shares.tallies import ShareTallies
from pool.shares.uptime import UpMarks, write_marks
from pool.stratum.events import ShareRecord

log = logging.getLogger(__name__)

# Commands a contributor's ops may use (writes to the op's own key; GS.* forms: see pool.shares.lua).
ALLOWED_COMMANDS = frozenset({
    "HINCRBY", "HINCRBYFLOAT", "HSET", "HSETNX", "HDEL", "INCR", "INCRBY", "INCRBYFLOAT", "DECRBY",
    "SET", "SETNX", "DEL", "EXPIRE", "PEXPIRE", "EXPIREAT", "PFADD", "ZADD", "ZINCRBY", "ZREM", "SADD",
    "SREM", "RPUSH", "LPUSH", "LTRIM", "XADD", "ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "PEXPIREAT",
    "GS.HINCRF", "GS.HINCRI", "GS.ZMAX", "GS.HMAX", "GS.ZMIN", "GS.ZINCR",
})
_ops_encoder = msgspec.msgpack.Encoder()


class Contributor(Protocol):
    """Adds ops to every batch (geo rollups): they are applied in the same exactly-once groups."""

    def ops(self, records: list[ShareRecord], batch_id: str) -> list[RedisOp]: ...


class LostWrites(Exception):
    """Redis no longer holds a group this ledger applied there moments ago (it had acknowledged it)."""


class LedgerSnapshot(msgspec.Struct, kw_only=True):
    node: str
    redis_up: bool
    last_flush_at: float        # last time a batch reached Redis (0 = never)
    last_attempt_at: float
    lag_s: float                # age of the oldest share not yet in Redis (0 when all flushed)
    pending_shares: int         # not yet cut into a batch
    queued_shares: int          # cut, journaled, waiting for Redis
    queued_batches: int
    journal_bytes: int
    shares_added: int
    shares_flushed: int
    batches_flushed: int
    groups_replayed: int        # groups Redis already had (a replay after a crash or a lost reply)
    groups_restored: int        # groups Redis had lost after acknowledging them, applied again after an outage
    op_errors: int
    contributor_errors: int
    round_trips: int            # Redis requests made to apply batches (a pipeline counts once)
    last_error: str


@dataclass
class _Queued:
    batch_id: str
    shares: int
    generation: int               # journal write count once its frame was written
    first_added_at: float
    location: tuple[int, int]
    frame: BatchFrame | None
    blocks: list[str]


class Ledger:
    def __init__(self, config: LedgerConfig, redis_config: RedisConfig, node: str,
                 payout_config: PayoutConfig | None = None, *,
                 confirmations: Confirmations | None = None,
                 client_factory: Callable[[], RedisClient] | None = None) -> None:
        if not node or any(c in node for c in "/\\{}: \t") or node.startswith("."):
            raise ValueError(f"node must be a non-empty name without '/', braces, ':' or spaces: {node!r}")
        self.config = config
        self.redis_config = redis_config
        self.payout_config = payout_config or PayoutConfig()
        self.node = node
        self.keys = Keys(redis_config.key_prefix, config.shards)
        self.network = NetworkState()
        self.started_at = time.time()
        self._ops = LedgerOps(self.keys, config, self.payout_config, started_at=self.started_at)
        self._up = UpMarks(config.fine_bucket_s, config.coarse_retention_s)   # the buckets this process ran in
        self._client_factory = client_factory or (lambda: create_redis(redis_config))
        self._client: RedisClient | None = None
        self.best = BestShares(self.keys)
        # Per-worker share counts; the app points `tallies.rejects` at the sessions' reject counters.
        self.tallies = ShareTallies(self.keys)
        self._contributors: list[Contributor] = [self.best, self.tallies]   # they ride in every batch
        self._journal = Journal(Path(config.journal_dir) / node, config.journal_segment_bytes,
                                config.journal_fsync)
        self._apply = Script(lua.APPLY)
        self._trim = Script(lua.PPLNS_TRIM)
        self._pending: list[ShareRecord | BlockFound] = []
        self._pending_shares = 0
        self._pending_has_block = False
        self._pending_since = 0.0
        self._queue: deque[_Queued] = deque()
        self._queued_shares = 0
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()  # one drain at a time keeps batches in order
        self._tasks: list[asyncio.Task[None]] = []
        self._applier_wake = asyncio.Event()
        self._watch_task: asyncio.Task[None] | None = None
        self._started = False
        self._boot = uuid.uuid4().hex[:10]
        self._seq = 0
        self._last_cut = 0.0
        self._last_trim = 0.0
        self._failures = 0
        self._snapshots: list[str] = []
        self._stats = dict(shares_added=0, shares_flushed=0, batches_flushed=0, groups_replayed=0,
                           groups_restored=0, op_errors=0, contributor_errors=0, round_trips=0)
        self._recent = RecentBatches(config.replay_after_outage_s, config.replay_after_outage_max_bytes)
        # slot -> (batch id, applied at) of the last group applied there: the next group in the slot
        # checks its marker is still there, so a write Redis lost without an error is noticed too.
        self._slot_last: dict[int, tuple[str, float]] = {}
        self._redis_up = False
        self._last_flush_at = 0.0
        self._last_attempt_at = 0.0
        self._last_error = ""
        self.payouts = PayoutEngine(lambda: self.client, self.keys, self.payout_config)
        self.watcher = (BlockWatcher(lambda: self.client, self.keys, self.payouts, config,
                                     self.payout_config, confirmations)
                        if confirmations is not None else None)

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def client(self) -> RedisClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def add_contributor(self, contributor: Contributor) -> None:
        """Register before start(): a restart's unbatched records are cut with the contributors."""
        if not callable(getattr(contributor, "ops", None)):
            raise TypeError("a ledger contributor needs an ops(records, batch_id) method")
        self._contributors.append(contributor)

    def set_network(self, difficulty: float, subsidy_sat: int | None = None,
                    fee_ratio: float | None = None, height: int | None = None) -> None:
        """The chain as the app sees it: network difficulty (PPLNS window, PPS value), block subsidy
        (default: from `height`), FPPS fee ratio (see pool.shares.schemes.FeeRatio)."""
        if not difficulty > 0:
            raise ValueError(f"network difficulty must be > 0, got {difficulty}")
        if fee_ratio is not None and not fee_ratio >= 0:
            raise ValueError(f"fee_ratio must be >= 0, got {fee_ratio}")
        self.network.difficulty = float(difficulty)
        if subsidy_sat is not None:
            self.network.subsidy_sat = int(subsidy_sat)
        elif height is not None:
            self.network.subsidy_sat = block_subsidy_sat(height)
        if fee_ratio is not None:
            self.network.fee_ratio = float(fee_ratio)

    async def start(self) -> None:
        """Open the journal, queue what a previous run left, start flushing. Works with Redis down."""
        if self._started:
            return
        recovery = self._journal.open()
        now = time.time()
        for frame in recovery.batches:
            self._enqueue(frame, (0, 0), now, keep_frame=True)
        if recovery.pending:
            log.info("ledger %s: %d journaled items were never batched; cutting them now",
                     self.node, len(recovery.pending))
            self._pending = list(recovery.pending)
            self._pending_shares = sum(isinstance(i, ShareRecord) for i in self._pending)
            self._pending_has_block = any(isinstance(i, BlockFound) for i in self._pending)
            self._pending_since = now
            self._cut()
        if recovery.batches or recovery.pending:
            log.info("ledger %s: replaying %d batches (%d shares)", self.node, len(self._queue),
                     self._queued_shares)
        await asyncio.get_running_loop().run_in_executor(None, self._journal.sync)
        self._started = True
        self._tasks = [asyncio.create_task(self._run_cutter(), name=f"ledger-cutter-{self.node}"),
                       asyncio.create_task(self._run_applier(), name=f"ledger-applier-{self.node}"),
                       asyncio.create_task(self._load_best(), name=f"ledger-best-{self.node}"),
                       asyncio.create_task(self._run_heartbeat(), name=f"ledger-heartbeat-{self.node}")]
        if self.watcher is not None:
            self._watch_task = asyncio.create_task(self.watcher.run(), name=f"block-watcher-{self.node}")

    async def _load_best(self) -> None:
        """Seed the best-share records this process logs against; retried until Redis answers."""
        while True:
            try:
                await self.best.load(self.client)
                return
            except (RedisError, OSError) as exc:
                log.debug("best-share records not loaded yet: %s", exc)
                await asyncio.sleep(self.config.redis_retry_ms / 1000)

    async def _run_heartbeat(self) -> None:
        """Mark the fine buckets this process is up in (pool.shares.uptime), once per bucket, just
        after it starts; while Redis is unreachable the marks wait here and go when it returns."""
        fine, config = self.config.fine_bucket_s, self.config
        while True:
            now = time.time()
            self._up.beat(now)
            marks = self._up.take(now)
            try:
                await write_marks(self.client, self.keys, fine, config.coarse_bucket_s, config.coarse_retention_s,
                                  marks)
                wait = fine - now % fine + 0.01
            except Exception as exc:   # RedisError, OSError, a cluster client's internal errors
                self._up.put_back(marks)
                log.debug("ledger %s: up marks not written yet: %r", self.node, exc)
                wait = config.redis_retry_ms / 1000
            await asyncio.sleep(wait)

    async def stop(self, timeout: float = 10.0) -> None:
        """Flush what can be flushed within `timeout`; the rest stays in the journal for the next start."""
        if not self._started:
            return
        self._started = False
        await cancel_and_wait(self._watch_task, *self._tasks)
        self._tasks = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.flush()
        self._journal.close()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None

    # -- hot path -----------------------------------------------------------------------------
    def add(self, record: ShareRecord) -> None:
        """Record one accepted share. When this returns the share is in the OS (journal fd)."""
        if not self._started:
            raise RuntimeError("ledger is not started")
        if not isinstance(record, ShareRecord):
            raise TypeError(f"expected ShareRecord, got {type(record).__name__}")
        if not record.difficulty > 0:
            raise ValueError(f"share difficulty must be > 0, got {record.difficulty}")
        self._journal.append_record(record)
        if not self._pending:
            self._pending_since = time.time()
        self._pending.append(record)
        self._pending_shares += 1
        self._stats["shares_added"] += 1
        if self._pending_shares >= self.config.flush_max_shares:
            self._wake.set()

    async def record_block(self, block_hash: str, height: int, account: str, worker: str,
                           reward_sat: int, network_difficulty: float,
                           found_at: float | None = None) -> BlockFound:
        """A block this node found: fsynced to the journal and to blocks.jsonl at once, then put in
        the share stream right after the shares accepted before it (closing the round and the
        PPLNS window there)."""
        if not self._started:
            raise RuntimeError("ledger is not started")
        if len(block_hash) != 64 or any(c not in "0123456789abcdef" for c in block_hash):
            raise ValueError(f"block_hash must be 64 lowercase hex characters, got {block_hash!r}")
        if reward_sat < 0 or height < 0:
            raise ValueError("reward_sat and height must be >= 0")
        if not network_difficulty > 0:
            raise ValueError(f"network_difficulty must be > 0, got {network_difficulty}")
        block = BlockFound(block_hash=block_hash, height=height, account=account, worker=worker,
                           node=self.node, found_at=time.time() if found_at is None else found_at,
                           reward_sat=reward_sat, network_difficulty=float(network_difficulty),
                           scheme=self.payout_config.scheme)
        self._journal.append_block(block)
        self._append_block_log(block)
        if self.network.difficulty <= 0:
            self.set_network(network_difficulty, height=height)
        if not self._pending:
            self._pending_since = time.time()
        self._pending.append(block)
        self._pending_has_block = True
        self._cut()
        self._applier_wake.set()
        return block

    def record_refused(self, block: RefusedBlock) -> None:
        """A candidate no node took: a batch of its own, journaled and fsynced at once (it covers no
        journaled record), then applied exactly once like any batch, wherever Redis is when it returns."""
        if not self._started:
            raise RuntimeError("ledger is not started")
        self._seq += 1
        now = time.time()
        ops = refused_ops(self.keys, block, self.config.max_refused_blocks)
        self._journal_batch(f"{self.node}.{self._boot}.{self._seq}", ops, 0, 0, [], now, now)
        self._journal.sync()
        self._applier_wake.set()

    def _append_block_log(self, block: BlockFound) -> None:
        path = Path(self.config.journal_dir) / self.node / "blocks.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, msgspec.json.encode(block) + b"\n")
            if self.config.journal_fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    # -- batching -----------------------------------------------------------------------------
    def _cut(self, one_batch: bool = False) -> None:
        """Everything pending becomes one batch (one per block boundary), journaled before applying.
        With one_batch, at most one batch of max_batch_shares is cut and the rest stays pending."""
        if not self._pending:
            self._cut_counts()
            return
        if self.payout_config.scheme in ("pps", "fpps") and self.network.difficulty <= 0:
            self._last_error = "waiting for the network difficulty (set_network) to credit PPS shares"
            return
        items = self._pending
        since = self._pending_since
        self._pending = []
        self._pending_shares = 0
        # A cut takes everything waiting (so batches grow when Redis falls behind, which is when
        # larger batches pay off), up to max_batch_shares per batch to bound one script's run time.
        limit = self.config.max_batch_shares
        if self._pending_has_block:
            self._pending_has_block = False
            chunk: list[ShareRecord | BlockFound] = []
            for item in items:
                chunk.append(item)
                if isinstance(item, BlockFound) or len(chunk) >= limit:
                    self._cut_chunk(chunk, since)
                    chunk = []
            if chunk:
                self._cut_chunk(chunk, since)
        elif len(items) <= limit or not one_batch:
            for i in range(0, len(items), limit):
                self._cut_chunk(items[i : i + limit], since)
        else:
            # One batch per call: the rest stays pending (already journaled) and the cutter comes back
            # for it after the event loop has served the sockets, so building ops never stalls it long.
            self._cut_chunk(items[:limit], since)
            self._pending = items[limit:]
            self._pending_shares = len(self._pending)
        self._last_cut = time.time()

    def _cut_chunk(self, items: list[ShareRecord | BlockFound], first_added_at: float) -> None:
        # A chunk holding a block always ends with it (see _cut).
        blocks = [i for i in items if isinstance(i, BlockFound)] if isinstance(items[-1], BlockFound) else []
        records = [i for i in items if isinstance(i, ShareRecord)] if blocks else items
        self._seq += 1
        batch_id = f"{self.node}.{self._boot}.{self._seq}"
        now = time.time()
        ops, shares = self._ops.shares(records, batch_id, now, self.network)  # type: ignore[arg-type]
        if records:
            for contributor in self._contributors:
                ops.extend(self._contributed(contributor, records, batch_id))  # type: ignore[arg-type]
        for block in blocks:
            ops.extend(self._ops.block(block))
        self._journal_batch(batch_id, ops, len(items), shares, [b.block_hash for b in blocks], first_added_at, now)

    def _cut_counts(self) -> None:
        """Rejects counted while no share waits ride a batch of their own, so a worker whose every share
        is refused is still counted, and a stop keeps the last ones (they ride with shares otherwise)."""
        ops = self._contributed(self.tallies, [], "counts")  # type: ignore[arg-type]
        if not ops:
            return
        self._seq += 1
        now = time.time()
        self._journal_batch(f"{self.node}.{self._boot}.{self._seq}", ops, 0, 0, [], now, now)
        self._applier_wake.set()

    def _journal_batch(self, batch_id: str, ops: list[RedisOp], items: int, shares: int, blocks: list[str],
                       first_added_at: float, now: float) -> None:
        groups: dict[int, list[RedisOp]] = {}
        for op in ops:
            slot = key_slot(op.key)
            group = groups.get(slot)
            if group is None:
                groups[slot] = [op]
            else:
                group.append(op)
        frame = BatchFrame(batch_id=batch_id, items=items, shares=shares, cut_at=now,
                           groups=[(slot, _ops_encoder.encode(g)) for slot, g in groups.items()], blocks=blocks)
        location = self._journal.append_batch(frame)
        self._enqueue(frame, location, first_added_at,
                      keep_frame=len(self._queue) < self.config.max_batches_in_memory)

    def _contributed(self, contributor: Contributor, records: list[ShareRecord], batch_id: str) -> list[RedisOp]:
        try:
            produced = contributor.ops(records, batch_id)
        except Exception as exc:
            self._stats["contributor_errors"] += 1
            self._last_error = f"contributor {type(contributor).__name__} failed: {exc!r}"
            log.exception("ledger contributor %r failed; its ops for batch %s are dropped", contributor,
                          batch_id)
            return []
        good = []
        for op in produced:
            reason = _op_problem(op)
            if reason:
                self._stats["contributor_errors"] += 1
                self._last_error = f"contributor {type(contributor).__name__}: {reason}"
                log.error("dropping op from %r: %s", contributor, reason)
                continue
            good.append(op)
        return good

    def _enqueue(self, frame: BatchFrame, location: tuple[int, int], first_added_at: float,
                 keep_frame: bool) -> None:
        self._queue.append(_Queued(frame.batch_id, frame.shares, self._journal.write_generation,
                                   first_added_at, location,
                                   frame if keep_frame else None, list(frame.blocks)))
        self._queued_shares += frame.shares

    # -- flushing -----------------------------------------------------------------------------
    async def _run_cutter(self) -> None:
        """Cuts batches on time or size. Runs beside the applier, so cutting batch k+1 (Python)
        overlaps applying batch k (Redis)."""
        interval = self.config.flush_interval_ms / 1000
        while True:
            await wait_set(self._wake, interval)
            self._wake.clear()
            try:
                if self._should_cut(time.time()):
                    self._cut(one_batch=True)
                    self._journal.after_cut()
                    self._applier_wake.set()
                    if self._pending:
                        self._wake.set()
                        await asyncio.sleep(0)
                elif not self._pending and not self._queue:   # idle and Redis keeping up
                    self._cut_counts()
            except Exception as exc:  # never let the cutter die: the journal holds every share
                self._last_error = f"cutter: {exc!r}"
                log.exception("ledger cutter error")
                await asyncio.sleep(interval)

    def _should_cut(self, now: float) -> bool:
        if not self._pending:
            return False
        if not self._queue:
            return True
        if self._redis_up:
            # One batch in flight and at most one ready behind it: cutting overlaps applying, and
            # under load the shares that wait meanwhile make the next batch larger (cheaper per share).
            return len(self._queue) <= 1 or self._pending_shares >= self.config.max_batch_shares
        # Redis is down: fewer, larger batches (they stay queued and journaled).
        return (now - self._last_cut >= self.config.down_cut_interval_ms / 1000
                or self._pending_shares >= self.config.max_batch_shares)

    async def _run_applier(self) -> None:
        retry = self.config.redis_retry_ms / 1000
        interval = self.config.flush_interval_ms / 1000
        while True:
            await wait_set(self._applier_wake, interval if self._redis_up or not self._queue else retry)
            self._applier_wake.clear()
            try:
                await self._apply_queued()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let the applier die: the journal holds everything
                self._last_error = f"applier: {exc!r}"
                log.exception("ledger applier error")
                await asyncio.sleep(retry)

    async def flush(self) -> bool:
        """Cut and apply now; True when everything reached Redis."""
        self._cut()
        await self._apply_queued()
        return not self._queue and not self._pending

    async def _apply_queued(self) -> None:
        async with self._flush_lock:
            now = time.time()
            if self._journal.dirty:
                await self._sync()
            if self._queue:
                await self._drain()
            if self._redis_up and not self._pending:
                # (records still pending may sit in an old segment that has no open batch)
                self._journal.collect()
                await self._maintenance(now)

    async def _sync(self) -> None:
        generation = self._journal.write_generation
        await asyncio.get_running_loop().run_in_executor(None, self._journal.sync_fd)
        self._journal.mark_synced(generation)
        self._journal.close_retired()

    async def _drain(self) -> None:
        """Applies queued batches in order; only batches whose journal frame is already fsynced."""
        self._last_attempt_at = time.time()
        if not self._redis_up and len(self._recent) and not await self._restore_recent():
            return
        while self._queue:
            queued = self._queue[0]
            if queued.generation > self._journal.synced_generation:
                await self._sync()
            frame = queued.frame or self._journal.read_batch(queued.location)
            try:
                await self._apply_batch(frame)
            except LostWrites as exc:
                # A failover the cluster client rode through (its retries hide it: no error reaches us),
                # or a restart between two batches: the recent batches go again, in order, first.
                log.warning("ledger %s: %s; applying the recent batches again", self.node, exc)
                self._slot_last.clear()
                if not await self._restore_recent():
                    return
                continue
            except Exception as exc:
                # Not only RedisError: redis-py's cluster client can fail with internal errors while a
                # node restarts. The batch stays queued and journaled; the markers make a retry exact.
                self._mark_down(exc)
                return
            self._journal.append_commit(frame.batch_id)
            self._recent.add(frame, time.time())
            self._queue.popleft()
            self._queued_shares -= queued.shares
            self._stats["shares_flushed"] += queued.shares
            self._stats["batches_flushed"] += 1
            self._snapshots.extend(queued.blocks)
            self._last_flush_at = time.time()
            self._redis_up = True
            self._failures = 0

    async def _restore_recent(self) -> bool:
        """Redis is back after an outage: apply the recently applied batches again (see recent.py)."""
        for frame in self._recent.frames(time.time()):
            try:
                self._stats["groups_restored"] += await self._apply_batch(frame, chain=False)
            except Exception as exc:
                self._mark_down(exc)
                return False
        return True

    async def _apply_batch(self, frame: BatchFrame, chain: bool = True) -> int:
        """Applies every group of the batch (a group Redis already has is skipped); returns how many
        groups were applied now. With `chain`, a group also checks that the previous one this ledger
        applied in its slot is still there (only while that one is recent enough to be restored), and
        LostWrites is raised when one is not."""
        client = self.client
        ttl = self.config.batch_marker_ttl_s
        now = time.time()
        horizon = now - self.config.replay_after_outage_s if self.config.replay_after_outage_s > 0 else now
        calls: list[tuple[list[str], list[int | bytes]]] = []
        for slot, blob in frame.groups:
            keys = [self.keys.marker_key(slot, frame.batch_id)]
            last = self._slot_last.get(slot) if chain else None
            if last is not None and last[1] > horizon:
                keys.append(self.keys.marker_key(slot, last[0]))
            calls.append((keys, [ttl, blob]))
        if is_cluster(client):
            self._stats["round_trips"] += len(calls)
            results = await asyncio.gather(*(self._apply(client, k, a) for k, a in calls),
                                           return_exceptions=True)
        else:
            async with client.pipeline(transaction=False) as pipe:
                for k, a in calls:
                    pipe.evalsha(self._apply.sha, len(k), *k, *a)
                results = await pipe.execute(raise_on_error=False)
            self._stats["round_trips"] += 1
            for i, result in enumerate(results):
                if isinstance(result, NoScriptError):
                    self._stats["round_trips"] += 1
                    try:
                        results[i] = await self._apply(client, *calls[i])
                    except (RedisError, OSError) as exc:
                        results[i] = exc
        applied = 0
        lost = 0
        for result in results:
            if isinstance(result, BaseException):
                raise result
            value = int(result)
            if value == -2:
                lost += 1
                continue
            if value < 0:
                self._stats["groups_replayed"] += 1
                continue
            applied += 1
            if value:
                self._stats["op_errors"] += value
                self._last_error = f"batch {frame.batch_id}: {value} op(s) failed in Redis"
                log.error("batch %s: %d op(s) failed in Redis", frame.batch_id, value)
        if lost:
            raise LostWrites(f"Redis lost acknowledged writes in {lost} slot(s) (seen by batch {frame.batch_id})")
        if chain:
            for slot, _ in frame.groups:
                self._slot_last[slot] = (frame.batch_id, now)
        return applied

    def _mark_down(self, exc: BaseException) -> None:
        if self._redis_up:
            log.warning("ledger %s: Redis unreachable (%r); batches stay in the journal", self.node, exc)
        self._redis_up = False
        self._failures += 1
        self._last_error = f"redis: {exc!r}"
        if self._failures % 3 == 0 and self._client is not None:
            # A cluster client can keep a stale topology after nodes die; start over.
            old, self._client = self._client, None
            asyncio.get_running_loop().create_task(_close_quietly(old))

    async def _maintenance(self, now: float) -> None:
        while self._snapshots:
            block_hash = self._snapshots[0]
            try:
                await self.payouts.snapshot_window(block_hash)
            except (RedisError, OSError) as exc:
                self._mark_down(exc)
                return
            self._snapshots.pop(0)
        if now - self._last_trim >= 10 and self.network.difficulty > 0:
            self._last_trim = now
            keep = (self.payout_config.pplns_keep_windows * self.payout_config.pplns_factor
                    * self.network.difficulty)
            try:
                await self._trim(self.client, [self.keys.pplns_base], [repr(keep), 1000])
            except (RedisError, OSError) as exc:
                self._mark_down(exc)

    # -- health -------------------------------------------------------------------------------
    def snapshot(self) -> LedgerSnapshot:
        now = time.time()
        oldest = [q.first_added_at for q in list(self._queue)[:1]]
        if self._pending:
            oldest.append(self._pending_since)
        return LedgerSnapshot(
            node=self.node, redis_up=self._redis_up, last_flush_at=self._last_flush_at,
            last_attempt_at=self._last_attempt_at, lag_s=max(0.0, now - min(oldest)) if oldest else 0.0,
            pending_shares=self._pending_shares, queued_shares=self._queued_shares,
            queued_batches=len(self._queue), journal_bytes=self._journal.size_bytes(),
            last_error=self._last_error, **self._stats,
        )

    # -- reading (admin API) ------------------------------------------------------------------
    @property
    def reader(self) -> LedgerReader:
        """Read-only views for the admin API and metrics (hashrate, workers, blocks, balances)."""
        return LedgerReader(lambda: self.client, self.keys, self.config, self.payouts)


def _op_problem(op: object) -> str:
    if not isinstance(op, RedisOp):
        return f"not a RedisOp: {type(op).__name__}"
    if op.command not in ALLOWED_COMMANDS:
        return f"command {op.command!r} is not allowed in a batch"
    if not isinstance(op.key, str) or not op.key:
        return "op key must be a non-empty string"
    if len(op.args) > MAX_OP_ARGS:
        return f"{op.command} {op.key}: {len(op.args)} args (max {MAX_OP_ARGS}); split the op"
    for arg in op.args:
        if not isinstance(arg, str | int | float) or isinstance(arg, bool):
            return f"{op.command} {op.key}: argument {arg!r} is not str/int/float"
    return ""


async def _close_quietly(client: RedisClient) -> None:
    with contextlib.suppress(Exception):
        await client.aclose()
