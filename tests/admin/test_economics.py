"""Hand-checked figures for the pure computations in pool.admin.economics."""

from __future__ import annotations

import pytest

from pool.admin import economics as e


def test_network_hashrate_from_difficulty() -> None:
    # 1e14 x 2^32 / 600 = 4.294967296e23 / 600
    assert e.hashrate_from_difficulty(1e14) == pytest.approx(7.158278826666667e20, rel=1e-12)
    # Difficulty 1 at one block per 600 s: 2^32 / 600 = 7158278.8266... H/s
    assert e.hashrate_from_difficulty(1.0) == pytest.approx(7158278.826666667, rel=1e-12)
    # Blocks twice as fast as the target means twice the hashrate.
    assert e.hashrate_from_difficulty(1e14, 300) == pytest.approx(2 * 7.158278826666667e20, rel=1e-12)
    assert e.hashrate_from_difficulty(0) == 0.0


def test_hashrate_from_shares() -> None:
    # 60 shares of 2^20 in an hour: 60 x 2^52 / 3600 = 2^52 / 60 = 75,059,993,789,508.27 H/s
    assert e.hashrate_from_shares(60 * 2**20, 3600) == pytest.approx(75_059_993_789_508.27, rel=1e-12)
    assert e.hashrate_from_shares(10, 0) == 0.0


@pytest.mark.parametrize(
    ("height", "subsidy"),
    [(0, 5_000_000_000), (209_999, 5_000_000_000), (210_000, 2_500_000_000), (840_000, 312_500_000),
     (1_049_999, 312_500_000), (1_050_000, 156_250_000), (64 * 210_000, 0), (33 * 210_000, 0),
     (32 * 210_000, 1)],
)
def test_block_subsidy(height: int, subsidy: int) -> None:
    # 50 BTC >> 32 = 5e9 >> 32 = 1 sat; >> 33 = 0.
    assert e.block_subsidy_sat(height) == subsidy


def test_hashprice() -> None:
    # 1 PH/s at difficulty 1e14: 1e15 x 86400 / (1e14 x 2^32) = 2.0116567611694336e-4 blocks a day.
    # Next block 880,001 pays 3.125 BTC; fees average 0.03 BTC: 3.155 x 2.01165676e-4 = 6.346777e-4 BTC.
    value = e.hashprice_btc_per_ph_day(difficulty=1e14, height=880_000, average_fees_sat=3_000_000)
    assert value == pytest.approx(6.346777081489563e-4, rel=1e-12)
    # Without fees it is subsidy only, and the halving at 1,050,000 halves it.
    no_fees = e.hashprice_btc_per_ph_day(difficulty=1e14, height=880_000, average_fees_sat=0)
    assert no_fees == pytest.approx(3.125 * 2.0116567611694336e-4, rel=1e-12)
    after = e.hashprice_btc_per_ph_day(difficulty=1e14, height=1_049_999, average_fees_sat=0)
    assert after == pytest.approx(no_fees / 2, rel=1e-12)
    assert e.hashprice_btc_per_ph_day(difficulty=0, height=1, average_fees_sat=0) == 0.0


def test_adjustment_projection_from_period() -> None:
    # Height 880,000 is 1024 blocks into the period starting at 878,976; the retarget is at 880,992.
    # Blocks came every 540 s: Core measures 2015 intervals, 540 x 2015 = 1,088,100 s against
    # 1,209,600 s, so difficulty x 1209600 / 1088100 = x 1.1116625310..., +11.1663 %.
    proj = e.project_adjustment(height=880_000, difficulty=1e14, tip_time=2_000_000_000,
                                period_start_time=2_000_000_000 - 1024 * 540)
    assert proj is not None
    assert proj.next_retarget_height == 880_992
    assert proj.blocks_left == 992
    assert proj.average_block_seconds == pytest.approx(540.0)
    assert proj.projected_difficulty == pytest.approx(1e14 * 1_209_600 / 1_088_100, rel=1e-12)
    assert proj.projected_change_percent == pytest.approx(11.166253101736977, rel=1e-9)
    assert proj.estimated_at == pytest.approx(2_000_000_000 + 992 * 540)


def test_adjustment_exactly_on_schedule_is_the_2016_over_2015_drift() -> None:
    # 600 s blocks still raise difficulty by 2016/2015 - 1 = 0.0496 %: Core's off-by-one.
    proj = e.project_adjustment(height=100, difficulty=1000.0, tip_time=60_000, period_start_time=0)
    assert proj is not None
    assert proj.projected_change_percent == pytest.approx((2016 / 2015 - 1) * 100, rel=1e-9)
    assert proj.blocks_left == 2016 - 100


def test_adjustment_is_clamped_to_a_factor_of_four() -> None:
    fast = e.project_adjustment(height=10, difficulty=1000.0, tip_time=10, period_start_time=0)  # 1 s blocks
    slow = e.project_adjustment(height=10, difficulty=1000.0, tip_time=10 * 6000 * 10, period_start_time=0)
    assert fast is not None and slow is not None
    assert fast.projected_difficulty == pytest.approx(4000.0)
    assert fast.projected_change_percent == pytest.approx(300.0)
    assert slow.projected_difficulty == pytest.approx(250.0)
    assert slow.projected_change_percent == pytest.approx(-75.0)


def test_adjustment_at_a_period_boundary_uses_recent_blocks() -> None:
    # Height 4032 starts a period: no interval yet inside it, so the last blocks' times stand in
    # (four intervals over 2400 s -> 600 s).
    proj = e.project_adjustment(height=4032, difficulty=5.0, tip_time=9_000, period_start_time=9_000,
                                recent_block_times=[6_600, 7_200, 7_800, 8_400, 9_000])
    assert proj is not None
    assert proj.blocks_left == 2016
    assert proj.average_block_seconds == pytest.approx(600.0)
    assert e.project_adjustment(height=4032, difficulty=5.0, tip_time=9_000, period_start_time=None) is None


def test_average_block_interval() -> None:
    assert e.average_block_interval([100, 700, 1000]) == pytest.approx(450.0)
    assert e.average_block_interval([100]) is None
    assert e.average_block_interval([100, 100]) is None


def test_network_hashrate_from_block_times_and_difficulties() -> None:
    # 3 blocks of difficulty 1e12 after a first block, 1800 s from first to last:
    # 3e12 x 2^32 / 1800 = 7.158e18 H/s (7.16 EH/s).
    got = e.network_hashrate_from_blocks([1e12] * 4, [0, 600, 1200, 1800])
    assert got == pytest.approx(3e12 * 2**32 / 1800)
    # Out-of-order header times: span is max - min, as Core's getnetworkhashps.
    assert e.network_hashrate_from_blocks([1.0, 2.0, 2.0], [100, 90, 160]) == pytest.approx(4 * 2**32 / 70)
    assert e.network_hashrate_from_blocks([1.0], [0]) is None
    assert e.network_hashrate_from_blocks([1.0, 1.0], [5, 5]) is None


def test_share_of_recent_blocks_counts_blocks_that_exist() -> None:
    assert e.recent_blocks_share(10, 1008, 10) == 1.0        # 10-block devnet chain, all the pool's
    assert e.recent_blocks_share(5, 1008, 2000) == pytest.approx(5 / 1008)
    assert e.recent_blocks_share(0, 1008, 0) == 0.0
