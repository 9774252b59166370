"""Pure figures an operator reads next to the pool's own numbers: network hashrate implied by
difficulty, the next difficulty adjustment, hashprice. No I/O; unit-tested with hand-checked values.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from pool.config.chain import FIXED_DIFFICULTY_NETWORKS

HASHES_PER_DIFFICULTY = 2**32           # expected hashes per diff-1 share
TARGET_BLOCK_SECONDS = 600
RETARGET_INTERVAL = 2016
TARGET_TIMESPAN = RETARGET_INTERVAL * TARGET_BLOCK_SECONDS  # 1,209,600 s
HALVING_INTERVAL = 210_000
INITIAL_SUBSIDY_SAT = 50 * 100_000_000
SAT_PER_BTC = 100_000_000
PH = 1e15
SECONDS_PER_DAY = 86_400


def hashrate_from_difficulty(difficulty: float, block_seconds: float = TARGET_BLOCK_SECONDS) -> float:
    """Network hashrate (H/s) that finds one block of this difficulty every block_seconds."""
    if difficulty <= 0 or block_seconds <= 0:
        return 0.0
    return difficulty * HASHES_PER_DIFFICULTY / block_seconds


def hashrate_from_shares(difficulty_sum: float, seconds: float) -> float:
    """Hashrate implied by accepted share difficulty over a period."""
    return difficulty_sum * HASHES_PER_DIFFICULTY / seconds if seconds > 0 else 0.0


def network_hashrate_from_blocks(difficulties: Sequence[float], times: Sequence[int]) -> float | None:
    """Hashrate the chain itself shows (Bitcoin Core's getnetworkhashps): the work of the last n
    blocks over the span between the earliest and latest header time of those blocks and the one
    before them. Oldest first, n + 1 entries (only blocks that exist). Work of a block ~ its
    difficulty x 2^32. None below two blocks or when the times span nothing."""
    if len(difficulties) != len(times):
        raise ValueError("difficulties and times must have the same length")
    if len(times) < 2:
        return None
    span = max(times) - min(times)
    if span <= 0:
        return None
    return sum(difficulties[1:]) * HASHES_PER_DIFFICULTY / span


NO_WORK_CHAINS = FIXED_DIFFICULTY_NETWORKS     # the node reports these chain names as they are


def network_hashrate_note(chain: str, difficulties: Sequence[float]) -> str:
    """Why the chain's difficulty says nothing about its hashrate ('' when it does): regtest and the
    devnet mine at a fixed trivial difficulty, and a test network's minimum-difficulty blocks (the
    20-minute rule) are found by anyone at difficulty 1."""
    if chain in NO_WORK_CHAINS:
        return f"not meaningful on {chain}: blocks are mined at a fixed trivial difficulty"
    if chain != "main" and any(0 < d <= 1.0 for d in difficulties):
        return f"not meaningful on {chain}: recent blocks include minimum-difficulty (20-minute rule) blocks"
    return ""


def recent_blocks_share(pool_blocks: int, window_blocks: int, height: int) -> float:
    """Pool's share of the last `window_blocks` blocks, over the blocks that exist (a chain of
    height 10 has 10 mined blocks after genesis)."""
    exist = min(window_blocks, max(height, 0))
    return min(pool_blocks, exist) / exist if exist > 0 else 0.0


def block_subsidy_sat(height: int) -> int:
    """Consensus subsidy at a height (GetBlockSubsidy): halves every 210,000 blocks, 0 after 64."""
    halvings = height // HALVING_INTERVAL
    return 0 if halvings >= 64 else INITIAL_SUBSIDY_SAT >> halvings


def average_block_interval(block_times: Sequence[int]) -> float | None:
    """Mean seconds between consecutive blocks from oldest-first header times; None below 2 times."""
    if len(block_times) < 2:
        return None
    span = block_times[-1] - block_times[0]
    return span / (len(block_times) - 1) if span > 0 else None


class AdjustmentProjection(msgspec.Struct, kw_only=True):
    next_retarget_height: int
    blocks_left: int                    # blocks still to be found, the retarget block included
    average_block_seconds: float        # over the current period (or recent blocks at its start)
    projected_difficulty: float
    projected_change_percent: float
    estimated_at: float                 # unix time the retarget block is expected


def project_adjustment(
    *,
    height: int,
    difficulty: float,
    tip_time: int,
    period_start_time: int | None,
    recent_block_times: Sequence[int] = (),
) -> AdjustmentProjection | None:
    """Project the next retarget as Bitcoin Core computes it, from the blocks seen so far.

    Core's retarget at height h (h % 2016 == 0) compares time(h-1) - time(h-2016), i.e. 2015
    intervals, against 2016 * 600 s and clamps the factor to [1/4, 4]; we extrapolate the mean
    interval of the period so far over those 2015 intervals. At the very start of a period (no
    interval yet) the recent block times stand in. None when neither gives an interval.
    """
    period_start = height - height % RETARGET_INTERVAL
    next_retarget = period_start + RETARGET_INTERVAL
    elapsed_blocks = height - period_start
    interval: float | None = None
    if period_start_time is not None and elapsed_blocks > 0 and tip_time > period_start_time:
        interval = (tip_time - period_start_time) / elapsed_blocks
    if interval is None:
        interval = average_block_interval(recent_block_times)
    if interval is None or difficulty <= 0:
        return None
    actual = interval * (RETARGET_INTERVAL - 1)
    actual = min(max(actual, TARGET_TIMESPAN / 4), TARGET_TIMESPAN * 4)
    projected = difficulty * TARGET_TIMESPAN / actual
    blocks_left = next_retarget - height
    return AdjustmentProjection(
        next_retarget_height=next_retarget,
        blocks_left=blocks_left,
        average_block_seconds=interval,
        projected_difficulty=projected,
        projected_change_percent=(projected / difficulty - 1.0) * 100.0,
        estimated_at=tip_time + blocks_left * interval,
    )


def hashprice_btc_per_ph_day(*, difficulty: float, height: int, average_fees_sat: float) -> float:
    """Expected BTC per day earned by 1 PH/s: expected blocks/day x (subsidy + average fees).

    The subsidy is the one of the next block (height + 1); expected blocks per day for hashrate H
    is H x 86400 / (difficulty x 2^32).
    """
    if difficulty <= 0:
        return 0.0
    blocks_per_day = PH * SECONDS_PER_DAY / (difficulty * HASHES_PER_DIFFICULTY)
    reward_sat = block_subsidy_sat(height + 1) + max(average_fees_sat, 0.0)
    return blocks_per_day * reward_sat / SAT_PER_BTC


def share_of(part: float, whole: float) -> float:
    """part / whole, 0 when there is no whole (a fraction, 0..1 for sane inputs)."""
    return part / whole if whole > 0 else 0.0
