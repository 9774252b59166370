"""Expected earnings and solo odds from an account's hashrate (no I/O; hand-checked in the tests).

A hash meets difficulty D with probability 1 / (D x 2^32), so a miner of H hashes per second finds
blocks at rate H / (D x 2^32) per second. Under PPS the pool pays that expectation exactly; under
PPLNS, PROP and SOLO it is the long-run average. The 95 % range of every figure comes from the
hashrate's own interval (the share count's Poisson bounds): the figures are monotone in the hashrate.
"""

from __future__ import annotations

import math

from pool.admin.miner_types import Earnings, Estimate, SoloOdds

HASHES_PER_DIFFICULTY = 2**32
DAY = 86_400


def block_rate(hashrate: float, network_difficulty: float) -> float:
    """Expected blocks per second at `hashrate` H/s."""
    if network_difficulty <= 0 or hashrate <= 0:
        return 0.0
    return hashrate / (network_difficulty * HASHES_PER_DIFFICULTY)


def _estimate(f, value: float, low: float, high: float | None) -> Estimate:  # type: ignore[no-untyped-def]
    return Estimate(value=f(value), low=f(low), high=f(high) if high is not None else None)


def earnings(scheme: str, hashrate: float, low: float, high: float | None, shares: int, window_seconds: int,
             network_difficulty: float, reward_sat: int, fee_percent: float) -> Earnings:
    keep = 1 - fee_percent / 100

    def per_day(h: float) -> float:
        return block_rate(h, network_difficulty) * DAY * reward_sat * keep

    rule = {"pps": "paid per share at this expectation", "fpps": "paid per share, fees included",
            "pplns": "the long-run average; each block pays by the last N shares",
            "solo": "the long-run average; a block pays the finder all of it"}.get(scheme, "the long-run average")
    return Earnings(
        scheme=scheme, window_seconds=window_seconds, hashrate=hashrate, hashrate_low=low, hashrate_high=high,
        shares=shares, network_difficulty=network_difficulty, reward_sat=reward_sat, fee_percent=fee_percent,
        sat_per_day=_estimate(per_day, hashrate, low, high),
        basis=(f"hashrate over {window_seconds} s / (network difficulty x 2^32) x 86400 x {reward_sat} sat "
               f"x (1 - {fee_percent:g} % fee); {rule}; 95 % range from {shares} shares"))


def solo_odds(hashrate: float, low: float, high: float | None, window_seconds: int,
              network_difficulty: float) -> SoloOdds:
    def seconds(h: float) -> float:
        rate = block_rate(h, network_difficulty)
        return 1 / rate if rate > 0 else math.inf

    def chance(h: float) -> float:
        return -math.expm1(-block_rate(h, network_difficulty) * DAY)

    wait = Estimate(value=seconds(hashrate), low=seconds(high) if high is not None else 0.0, high=seconds(low))
    return SoloOdds(window_seconds=window_seconds, expected_seconds_to_block=wait,
                    chance_per_day=_estimate(chance, hashrate, low, high))
