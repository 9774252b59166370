"""The asyncio side of the shared resume directory for one StratumServer: claims with a timeout,
batched publishing of parks and announcing of live sessions, the heartbeat, and the periodic sync
(settle / renew / reserved values).

Every failure (timeout, Redis down, a bug in the store) degrades to "no resume": a fresh extranonce1
for the miner, parks that stay local and are settled on a later sync. Nothing here is on the submit path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import msgspec

from pool.aio import cancel_and_wait
from pool.config.stratum import StratumConfig
from pool.stratum.extranonce import ExtranonceAllocator
from pool.stratum.resume import DirectorySync, HeldElsewhere, LiveSession, ParkedSession, ResumeDirectory

log = logging.getLogger("pool.stratum.resume")

PUBLISH_BATCH = 500    # parks per directory call (a mass disconnect becomes a few calls, not thousands)
CLAIM_RETRY_SECONDS = 0.25   # asking again for a session live on a process that may have died


class ResumeSnapshot(msgspec.Struct, kw_only=True):
    """Counts since start of this process's resume traffic through the shared directory."""

    claimed: int                        # a mining.subscribe resumed a session parked anywhere
    missed: int                         # not found (or live elsewhere): a fresh extranonce1
    failed: int                         # timeout or Redis error: a fresh extranonce1 too
    published: int                      # parks written to the directory
    publish_failed: int
    syncs: int
    sync_failed: int
    taken_over: int                     # sessions here that another process resumed
    announce_failed: int
    heartbeat_failed: int
    borrowed: int                       # values held through the directory (now)
    reserved: int                       # values of this prefix held by other processes (now)


class ResumeLink:
    def __init__(self, directory: ResumeDirectory, allocator: ExtranonceAllocator, config: StratumConfig,
                 clock: Callable[[], float], on_taken: Callable[[list[str]], None] = lambda tokens: None) -> None:
        if directory.prefix_bits != allocator.prefix_bits:
            raise ValueError(f"resume directory prefix_bits {directory.prefix_bits} != allocator's "
                             f"{allocator.prefix_bits}")
        allocator.shared = True
        self.directory = directory
        self.allocator = allocator
        self.config = config
        self.clock = clock
        self.on_taken = on_taken
        self.counts = {"claimed": 0, "missed": 0, "failed": 0, "published": 0, "publish_failed": 0,
                       "syncs": 0, "sync_failed": 0, "taken_over": 0, "announce_failed": 0,
                       "heartbeat_failed": 0}
        self._outbox: list[ParkedSession] = []
        self._live_outbox: list[LiveSession] = []
        self._flushing: asyncio.Task[None] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.heartbeat_once()
        await self.sync_once()     # reserved values of our prefix before the first allocation
        self._loop_task = asyncio.create_task(
            self._every(lambda: self.config.resume_sync_seconds, self.sync_once, "resume sync"), name="resume-sync")
        self._heartbeat_task = asyncio.create_task(
            self._every(lambda: self.config.resume_heartbeat_seconds, self.heartbeat_once, "resume heartbeat"),
            name="resume-heartbeat")

    async def stop(self) -> None:
        """Publish what the closing connections parked (other processes resume them), stop syncing."""
        await cancel_and_wait(self._loop_task, self._heartbeat_task)
        self._loop_task = self._heartbeat_task = None
        if self._flushing is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._flushing
        await self._flush()

    # -- claims -------------------------------------------------------------------------------------

    async def claim(self, token: str) -> ParkedSession | None:
        """The session to resume, or None (a fresh extranonce1). Asked again while the session is live
        on another process, for up to resume_holder_timeout (the holder may have died: its heartbeat is
        then that old by then), and while the directory does not answer, for up to
        resume_directory_wait (a Redis failover)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            try:
                async with asyncio.timeout(self.config.resume_lookup_timeout):
                    parked = await self.directory.claim(token, self.clock())
            except Exception as exc:   # timeout, Redis down, anything: in the end a fresh extranonce1
                if loop.time() + CLAIM_RETRY_SECONDS < started + self.config.resume_directory_wait:
                    await asyncio.sleep(CLAIM_RETRY_SECONDS)
                    continue
                self.counts["failed"] += 1
                log.warning("resume lookup failed (%s): fresh extranonce1", type(exc).__name__)
                return None
            if not isinstance(parked, HeldElsewhere):
                break
            if loop.time() >= started + self.config.resume_holder_timeout + CLAIM_RETRY_SECONDS:
                self.counts["missed"] += 1    # its holder is alive: a second connection, not a resume
                return None
            await asyncio.sleep(CLAIM_RETRY_SECONDS)
        if parked is None or len(parked.extranonce1) != 4:
            self.counts["missed"] += 1
            return None
        self.counts["claimed"] += 1
        return parked

    # -- parks --------------------------------------------------------------------------------------

    def publish(self, parked: ParkedSession) -> None:
        self._outbox.append(parked)
        self._kick()

    def announce(self, token: str, extranonce1: bytes) -> None:
        """A session started working here: resumable elsewhere should this process die."""
        self._live_outbox.append(LiveSession(token, extranonce1))
        self._kick()

    def _kick(self) -> None:
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        # Announces before parks: a session that started and ended since the last round must end
        # up parked, not live.
        while self._live_outbox or self._outbox:
            if self._live_outbox:
                batch, self._live_outbox = self._live_outbox[:PUBLISH_BATCH], self._live_outbox[PUBLISH_BATCH:]
                try:
                    async with asyncio.timeout(self.config.resume_sync_seconds):
                        await self.directory.announce(batch, self.clock())
                except Exception as exc:  # those sessions resume elsewhere only after a clean close
                    self.counts["announce_failed"] += len(batch)
                    log.warning("announcing %d live sessions failed (%s)", len(batch), type(exc).__name__)
                continue
            parks, self._outbox = self._outbox[:PUBLISH_BATCH], self._outbox[PUBLISH_BATCH:]
            try:
                async with asyncio.timeout(self.config.resume_sync_seconds):
                    self.counts["published"] += await self.directory.publish(parks, self.clock())
            except Exception as exc:  # they stay parked locally and are settled on a later sync
                self.counts["publish_failed"] += len(parks)
                log.warning("publishing %d parked sessions failed (%s)", len(parks), type(exc).__name__)

    # -- sync ---------------------------------------------------------------------------------------

    async def sync_once(self) -> bool:
        allocator = self.allocator
        now = self.clock()
        settle, hold = allocator.sync_request(now)
        prefix = allocator.prefix
        request = DirectorySync(prefix, [ParkedSession(t, v, now) for t, v in settle], hold)
        try:
            async with asyncio.timeout(self.config.resume_sync_seconds):
                reserved = await self.directory.sync(request, now)
        except Exception as exc:
            self.counts["sync_failed"] += 1
            log.warning("resume directory sync failed (%s)", type(exc).__name__)
            return False
        allocator.apply_sync(settle, reserved, prefix)
        self.counts["syncs"] += 1
        return True

    async def heartbeat_once(self) -> bool:
        try:
            async with asyncio.timeout(self.config.resume_heartbeat_seconds):
                taken = await self.directory.heartbeat(self.clock())
        except Exception as exc:
            self.counts["heartbeat_failed"] += 1
            log.warning("resume heartbeat failed (%s)", type(exc).__name__)
            return False
        if taken:
            # We were silent past the holder timeout and others resumed these sessions: close ours.
            self.counts["taken_over"] += len(taken)
            log.warning("%d live sessions were resumed by other processes while this one was silent", len(taken))
            self.on_taken(taken)
        return True

    @staticmethod
    async def _every(seconds: Callable[[], float], step: Callable[[], Awaitable[bool]], what: str) -> None:
        """`step` every `seconds()` (read each time: a reload applies) until cancelled; a failure is
        logged and the next round comes all the same."""
        while True:
            await asyncio.sleep(seconds())
            try:
                await step()
            except Exception:
                log.exception("%s failed", what)

    def snapshot(self) -> ResumeSnapshot:
        return ResumeSnapshot(**self.counts, borrowed=self.allocator.borrowed, reserved=self.allocator.reserved)
