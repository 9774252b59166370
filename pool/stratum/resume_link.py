"""The asyncio side of the shared resume directory for one StratumServer: claims with a timeout,
batched publishing of parks, and the periodic sync (settle / renew / reserved values).

Every failure (timeout, Redis down, a bug in the store) degrades to "no resume": a fresh extranonce1
for the miner, parks that stay local and are settled on a later sync. Nothing here is on the submit path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from pool.aio import cancel_and_wait
from pool.config.stratum import StratumConfig
from pool.stratum.extranonce import ExtranonceAllocator
from pool.stratum.resume import DirectorySync, ParkedSession, ResumeDirectory

log = logging.getLogger("pool.stratum.resume")

PUBLISH_BATCH = 500    # parks per directory call (a mass disconnect becomes a few calls, not thousands)


class ResumeLink:
    def __init__(self, directory: ResumeDirectory, allocator: ExtranonceAllocator, config: StratumConfig,
                 clock: Callable[[], float]) -> None:
        if directory.prefix_bits != allocator.prefix_bits:
            raise ValueError(f"resume directory prefix_bits {directory.prefix_bits} != allocator's "
                             f"{allocator.prefix_bits}")
        allocator.shared = True
        self.directory = directory
        self.allocator = allocator
        self.config = config
        self.clock = clock
        self.counts = {"claimed": 0, "missed": 0, "failed": 0, "published": 0, "publish_failed": 0,
                       "syncs": 0, "sync_failed": 0}
        self._outbox: list[ParkedSession] = []
        self._flushing: asyncio.Task[None] | None = None
        self._loop_task: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.sync_once()     # reserved values of our prefix before the first allocation
        self._loop_task = asyncio.create_task(self._sync_loop(), name="resume-sync")

    async def stop(self) -> None:
        """Publish what the closing connections parked (other processes resume them), stop syncing."""
        await cancel_and_wait(self._loop_task)
        self._loop_task = None
        if self._flushing is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._flushing
        await self._flush()

    # -- claims -------------------------------------------------------------------------------------

    async def claim(self, token: str) -> ParkedSession | None:
        try:
            async with asyncio.timeout(self.config.resume_lookup_timeout):
                parked = await self.directory.claim(token, self.clock())
        except Exception as exc:   # timeout, Redis down, anything: the miner gets a fresh extranonce1
            self.counts["failed"] += 1
            log.warning("resume lookup failed (%s): fresh extranonce1", type(exc).__name__)
            return None
        if parked is None or len(parked.extranonce1) != 4:
            self.counts["missed"] += 1
            return None
        self.counts["claimed"] += 1
        return parked

    # -- parks --------------------------------------------------------------------------------------

    def publish(self, parked: ParkedSession) -> None:
        self._outbox.append(parked)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox[:PUBLISH_BATCH], self._outbox[PUBLISH_BATCH:]
            try:
                async with asyncio.timeout(self.config.resume_sync_seconds):
                    self.counts["published"] += await self.directory.publish(batch, self.clock())
            except Exception as exc:  # they stay parked locally and are settled on a later sync
                self.counts["publish_failed"] += len(batch)
                log.warning("publishing %d parked sessions failed (%s)", len(batch), type(exc).__name__)

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

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.resume_sync_seconds)
            try:
                await self.sync_once()
            except Exception:
                log.exception("resume sync failed")

    def stats(self) -> dict[str, Any]:
        return {**self.counts, "borrowed": self.allocator.borrowed, "reserved": self.allocator.reserved}
