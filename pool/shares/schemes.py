"""Payout arithmetic (no I/O): PPLNS windows, PPS/FPPS share value, SOLO, fees, subsidy.

Amounts are integer millisatoshis (msat): per-share credits are far below one satoshi, and integers
keep "balance = sum of entries" exact. Divisions round down; the remainder goes to the pool account,
so a block's credits always add up to its reward exactly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from fractions import Fraction

HALVING_INTERVAL = 210_000
INITIAL_SUBSIDY_SAT = 50 * 100_000_000
MSAT_PER_SAT = 1000


def block_subsidy_sat(height: int) -> int:
    halvings = height // HALVING_INTERVAL
    return 0 if halvings >= 64 else INITIAL_SUBSIDY_SAT >> halvings


def _fee_fraction(fee_percent: float) -> Fraction:
    return Fraction(fee_percent).limit_denominator(1_000_000) / 100


def share_value_msat(difficulty: float, network_difficulty: float, subsidy_sat: int,
                     fee_ratio: float, fee_percent: float) -> int:
    """PPS (fee_ratio=0) or FPPS value of `difficulty` worth of shares, after the pool fee.

    Expected blocks = difficulty / network difficulty; each pays subsidy x (1 + fee_ratio)."""
    if network_difficulty <= 0 or difficulty <= 0:
        return 0
    reward_msat = Fraction(subsidy_sat * MSAT_PER_SAT) * (1 + Fraction(fee_ratio))
    value = Fraction(difficulty) / Fraction(network_difficulty) * reward_msat * (1 - _fee_fraction(fee_percent))
    return int(value)  # floor for positive values


def split_reward(reward_sat: int, weights: Mapping[str, float], fee_percent: float,
                 pool_account: str) -> dict[str, int]:
    """Splits a block reward pro rata to `weights` (difficulty per account) after the pool fee.

    The pool account receives the fee plus the rounding remainder; the result sums to the reward."""
    reward_msat = reward_sat * MSAT_PER_SAT
    credits: dict[str, int] = {}
    total = sum((Fraction(w) for w in weights.values() if w > 0), Fraction(0))
    distributable = Fraction(reward_msat) * (1 - _fee_fraction(fee_percent))
    paid = 0
    if total > 0:
        for account in sorted(weights):
            weight = weights[account]
            if weight <= 0:
                continue
            amount = int(distributable * Fraction(weight) / total)
            if amount:
                credits[account] = credits.get(account, 0) + amount
                paid += amount
    remainder = reward_msat - paid
    if remainder:
        credits[pool_account] = credits.get(pool_account, 0) + remainder
    return credits


def block_credits(scheme: str, reward_sat: int, finder: str, window: Mapping[str, float],
                  fee_percent: float, pool_account: str) -> dict[str, int]:
    """Credits written when a block matures, by the scheme in force when it was found."""
    if scheme == "pplns":
        return split_reward(reward_sat, window, fee_percent, pool_account)
    if scheme == "solo":
        return split_reward(reward_sat, {finder: 1.0}, fee_percent, pool_account)
    if scheme in ("pps", "fpps"):
        # The miners were paid per share; the block itself is the pool's.
        return {pool_account: reward_sat * MSAT_PER_SAT}
    raise ValueError(f"unknown payout scheme {scheme!r}")


def pplns_window(slices_newest_first: Iterable[tuple[float, Mapping[str, float]]],
                 n: float) -> dict[str, float]:
    """The last-N-difficulty window from slices (total, per-account) walking back from the block.

    The oldest slice that crosses N counts pro rata, so the window holds exactly N when the log is
    long enough (and everything there is when it is not)."""
    window: dict[str, Fraction] = {}
    remaining = Fraction(n)
    for total, per_account in slices_newest_first:
        if remaining <= 0:
            break
        total_f = Fraction(total)
        if total_f <= 0:
            continue
        scale = Fraction(1) if total_f <= remaining else remaining / total_f
        for account, diff in per_account.items():
            window[account] = window.get(account, Fraction(0)) + Fraction(diff) * scale
        remaining -= min(total_f, remaining)
    return {account: float(value) for account, value in window.items()}


class FeeRatio:
    """FPPS fee component: total fees / total subsidy over the most recent blocks.

    The app feeds it one observation per new block (getblockstats or the template's coinbase value)."""

    def __init__(self, window_blocks: int) -> None:
        self._blocks: deque[tuple[int, int, int]] = deque(maxlen=window_blocks)

    def observe(self, height: int, fees_sat: int, subsidy_sat: int | None = None) -> None:
        if fees_sat < 0:
            raise ValueError(f"fees_sat must be >= 0, got {fees_sat}")
        subsidy = block_subsidy_sat(height) if subsidy_sat is None else subsidy_sat
        if self._blocks and self._blocks[-1][0] == height:
            self._blocks.pop()  # a re-observed height (reorg) replaces the old figure
        self._blocks.append((height, fees_sat, subsidy))

    @property
    def ratio(self) -> float:
        subsidy = sum(b[2] for b in self._blocks)
        if subsidy <= 0:
            return 0.0
        return sum(b[1] for b in self._blocks) / subsidy

    def __len__(self) -> int:
        return len(self._blocks)
