"""A fleet whose hashrate is known, and readers of every place a pool shows a hashrate.

A Metronome finds real shares (it hashes the job until one meets the target) at a fixed difficulty
and submits share k at epoch + k / rate: the true work per second is difficulty x 2^32 x rate, i.e.
difficulty x 2^32 / the interval between shares. The schedule is kept across reconnects (the slots
that pass while it is disconnected are lost, as a real miner's work is), and the miner records when
it submitted each share the pool accepted, so the truth over any span is known exactly: the work it
delivered in that span divided by its length (`Fleet.truth`), which is the nominal rate wherever
it was connected throughout.

Share arrivals at a real pool are Poisson, and 5 % of 95 % intervals miss the truth. These shares
arrive on a fixed schedule instead, so the count in a window is the rate times its length to within a
share per miner and edge: a check that an interval holds the truth cannot fail by chance, only when
the read side counts the wrong shares or divides by the wrong seconds. (The intervals' coverage under
Poisson arrivals is tested in tests/ledger with a seeded simulation.)
"""

from __future__ import annotations

import asyncio
import bisect
import math
import re
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from pool import native
from pool.native import work as native_work
from pool.sim.client import StratumClient
from tests.integration.support import Miner

HASHES_PER_DIFFICULTY = 2**32
# Devnet blocks at difficulty 1e-3: at share difficulty 2e-7 one share in ~5,000 is a block, so few
# clean jobs interrupt the schedule.
RARE_BLOCKS_NBITS = f"{native_work.nbits_from_target(native_work.difficulty_to_target(1e-3)):08x}"
UNITS = {"H/s": 1.0, "kH/s": 1e3, "MH/s": 1e6, "GH/s": 1e9}


class _Schedule(StratumClient):
    """Finds a share by hashing the current job, then submits it at its slot: share k at epoch + k / rate."""

    rate = 1.0
    epoch: float | None = None              # wall clock of slot 0 (the pool's buckets use the wall clock)

    async def _mine_loop(self) -> None:
        await self._authorized.wait()
        while self._work is None:
            self._work_changed.clear()
            await self._work_changed.wait()
        if self.epoch is None:
            self.epoch = time.time()
        k = math.ceil((time.time() - self.epoch) * self.rate)    # the next slot not yet passed
        extranonce2 = self.rng.randrange(1 << 16)
        while not self._closed:
            work = self._work
            assert work is not None
            extranonce2 += 1
            en2 = (extranonce2 % (1 << (8 * self._extranonce2_size))).to_bytes(self._extranonce2_size, "little")
            found = self._grind(work, en2)
            if found is None:
                continue
            nonce, is_block = found
            await asyncio.sleep(max(0.0, self.epoch + k / self.rate - time.time()))
            if self._work is not work:
                continue            # a new job arrived while waiting: find a share of it for this slot
            await self._submit(work, en2, nonce, 0, is_block)
            k += 1

    def _grind(self, work: Any, extranonce2: bytes) -> tuple[int, bool] | None:
        first = self.rng.randrange(1 << 31)
        for nonce in range(first, first + 200_000):
            _digest, is_share, is_block = native.check_share(work.prepared, self._extranonce1, extranonce2,
                                                             work.ntime, nonce, 0, 0, work.target)
            if is_share:
                return nonce, is_block
        return None


class Metronome(Miner, _Schedule):
    """A miner of known hashrate: `rate` shares a second at the port's fixed difficulty, in `region`
    (its public address, sent in a PROXY header, is there). It reconnects when the pool drops it."""

    def __init__(self, host: str, port: int, username: str, *, public_ip: str, rate: float,
                 region: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("reconnect", True)
        super().__init__(host, port, username, public_ip=public_ip, **kwargs)
        self.rate = rate
        self.region = region
        self.accepted_at: list[float] = []       # wall clock of each accepted submit, ascending
        self.difficulties: set[float] = set()    # every difficulty the pool set
        self._submitted_at: dict[int, float] = {}

    async def finish(self) -> None:
        """Stop (the answers to the shares in flight awaited), also while it is reconnecting."""
        self._stopping.set()
        await asyncio.wait_for(super().finish(), 30)

    async def _send(self, method: str, params: list[Any]) -> int:
        request_id = await super()._send(method, params)
        if method == "mining.submit":
            self._submitted_at[request_id] = time.time()
        return request_id

    def _handle(self, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        submitted = self._submitted_at.pop(request_id, None) if isinstance(request_id, int) else None
        accepted = self.stats.accepted
        super()._handle(message)
        if message.get("method") == "mining.set_difficulty":
            self.difficulties.add(self._difficulty)
        if submitted is not None and self.stats.accepted > accepted:
            bisect.insort(self.accepted_at, submitted)

    def shares_between(self, start: float, end: float) -> int:
        return bisect.bisect_right(self.accepted_at, end) - bisect.bisect_left(self.accepted_at, start)


class KnownFleet:
    """Metronomes at one share difficulty; the truth of any group of them over any span."""

    def __init__(self, difficulty: float) -> None:
        self.difficulty = difficulty
        self.miners: dict[str, Metronome] = {}

    def add(self, miner: Metronome) -> Metronome:
        self.miners[miner.username] = miner
        miner.start()
        return miner

    def nominal(self, names: Iterable[str] | None = None) -> float:
        """difficulty x 2^32 x shares per second: the fleet's hashrate while it is connected."""
        chosen = self.miners if names is None else names
        return sum(self.miners[n].rate for n in chosen) * self.difficulty * HASHES_PER_DIFFICULTY

    def truth(self, start: float, end: float, names: Iterable[str] | None = None) -> float:
        """Work per second the group delivered over [start, end] (wall clock): accepted shares x
        difficulty x 2^32 / seconds."""
        chosen = self.miners if names is None else names
        shares = sum(self.miners[n].shares_between(start, end) for n in chosen)
        return shares * self.difficulty * HASHES_PER_DIFFICULTY / (end - start)

    def in_region(self, region: str) -> list[str]:
        return [name for name, m in self.miners.items() if m.region == region]

    def check_difficulty(self) -> None:
        for miner in self.miners.values():
            assert miner.difficulties == {self.difficulty}, (miner.username, miner.difficulties)

    async def stop(self) -> None:
        await asyncio.gather(*(m.finish() for m in self.miners.values() if m.task is not None),
                             return_exceptions=True)


def holds(figure: dict[str, Any], truth: float) -> bool:
    """The figure is a number (not warming up) whose 95 % interval holds the truth."""
    return not figure["warming_up"] and figure["high"] is not None and figure["low"] <= truth <= figure["high"]


def within(value: float, figure: dict[str, Any]) -> bool:
    """`value` (another place's figure for the same thing) lies inside this figure's interval."""
    return figure["high"] is not None and figure["low"] <= value <= figure["high"]


def metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as {(sample name, sorted labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return out


def shown_hashrate(text: str) -> float:
    """A hashrate as the dashboard prints it ("15.5 kH/s")."""
    match = re.fullmatch(r"([\d.]+) (\w+/s)", text.strip())
    assert match, f"not a hashrate: {text!r}"
    return float(match.group(1)) * UNITS[match.group(2)]


def shown_interval(hover: str) -> tuple[float, float]:
    """The 95 % interval of a dashboard figure's hover text."""
    match = re.search(r"95 % interval ([\d.]+ \w+/s) \u2013 ([\d.]+ \w+/s)", hover)
    assert match, f"no interval in {hover!r}"
    return shown_hashrate(match.group(1)), shown_hashrate(match.group(2))
