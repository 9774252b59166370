"""Expected earnings and solo odds, hand-checked on mainnet-like numbers."""

from __future__ import annotations

import math

import pytest

from pool.admin.earnings import block_rate, earnings, solo_odds

D = 1.0e14                      # network difficulty (mainnet was ~1.1e14 in 2025)
REWARD = 332_500_000            # 3.125 BTC subsidy + 0.2 BTC fees


def test_a_hashrate_equal_to_the_difficulty_finds_a_block_every_2_32_seconds() -> None:
    # H = D hashes/s meets difficulty D (D x 2^32 hashes a block) once every 2^32 s (~136 years).
    assert block_rate(D, D) == pytest.approx(1 / 4294967296, rel=1e-15)
    odds = solo_odds(D, D * 0.5, D * 2.0, 3600, D)
    assert odds.expected_seconds_to_block.value == pytest.approx(4294967296.0, rel=1e-12)
    # Bounds swap: more hashrate, shorter wait.
    assert odds.expected_seconds_to_block.low == pytest.approx(4294967296.0 / 2, rel=1e-12)
    assert odds.expected_seconds_to_block.high == pytest.approx(4294967296.0 * 2, rel=1e-12)
    # 1 - exp(-86400 / 2^32): one day of 2^32 s.
    assert odds.chance_per_day.value == pytest.approx(2.0116365268e-05, rel=1e-9)
    assert odds.chance_per_day.low < odds.chance_per_day.value < odds.chance_per_day.high  # type: ignore[operator]


def test_pplns_earnings_per_day_by_hand() -> None:
    # 86400 / 2^32 blocks a day x 332,500,000 sat x 0.99 (1 % fee) = 6621.8711 sat a day.
    e = earnings("pplns", D, D * 0.9, D * 1.1, 1200, 3600, D, REWARD, 1.0)
    assert e.sat_per_day.value == pytest.approx(6621.871143579483, rel=1e-12)
    assert e.sat_per_day.low == pytest.approx(6621.871143579483 * 0.9, rel=1e-12)
    assert e.sat_per_day.high == pytest.approx(6621.871143579483 * 1.1, rel=1e-12)
    assert "3600 s" in e.basis and "1200 shares" in e.basis


def test_no_hashrate_or_no_difficulty_earns_nothing_and_never_divides_by_zero() -> None:
    e = earnings("pps", 0.0, 0.0, None, 0, 3600, D, REWARD, 1.0)
    assert e.sat_per_day.value == 0.0 and e.sat_per_day.high is None
    odds = solo_odds(0.0, 0.0, None, 3600, D)
    assert math.isinf(odds.expected_seconds_to_block.value) and odds.expected_seconds_to_block.low == 0.0
    assert odds.chance_per_day.value == 0.0
    assert block_rate(1e12, 0.0) == 0.0
