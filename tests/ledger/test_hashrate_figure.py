"""Hand-checked figures of the hashrate estimator (coverage, Poisson bounds, warming up)."""

from __future__ import annotations

import pytest

from pool.shares.hashrate import covered_seconds, describe, hashrate_figure, poisson_bounds


def test_poisson_bounds_match_the_exact_garwood_interval() -> None:
    # Exact 95 % Garwood intervals (chi-square quantiles / 2): N=10 -> 4.7954..18.3904,
    # N=100 -> 81.364..121.627, N=0 -> 0..3.6889.
    low, high = poisson_bounds(10)
    assert low == pytest.approx(4.7954, rel=0.01) and high == pytest.approx(18.3904, rel=0.005)
    low, high = poisson_bounds(100)
    assert low == pytest.approx(81.364, rel=0.002) and high == pytest.approx(121.627, rel=0.002)
    low, high = poisson_bounds(0)
    assert low == 0.0 and high == pytest.approx(3.6889, rel=0.01)
    with pytest.raises(ValueError):
        poisson_bounds(-1)


def test_coverage_starts_at_the_first_observation() -> None:
    # A 3600 s window read 40 s after the pool started covers 40 s, not 3600.
    assert covered_seconds(window_start=1000.0, now=4600.0, first_observed=4560.0) == 40.0
    # Observed since before the window: the window's own start.
    assert covered_seconds(window_start=1000.0, now=4600.0, first_observed=10.0) == 3600.0
    assert covered_seconds(window_start=1000.0, now=4600.0, first_observed=None) == 3600.0


def test_young_pool_is_not_divided_by_unobserved_time() -> None:
    # 40 s of mining at difficulty 1024, one share a second: 40 x 1024 x 2^32 / 40 s = 4.398 TH/s.
    truth = 1024 * 2**32
    for seconds in (60, 300, 3600):
        fig = hashrate_figure(seconds, window_start=10_000.0 - seconds, now=10_000.0,
                              difficulty=40 * 1024, shares=40, first_observed=9_960.0)
        assert fig.covered_seconds == 40.0
        assert fig.hashrate == pytest.approx(truth)
        assert fig.low < truth < fig.high  # type: ignore[operator]
        assert not fig.warming_up
        assert "40 s observed" in describe(fig)


def test_few_shares_are_warming_up_and_none_have_no_upper_scale() -> None:
    fig = hashrate_figure(60, window_start=0.0, now=60.0, difficulty=5.0, shares=5, min_shares=30)
    assert fig.warming_up and fig.hashrate == pytest.approx(5 * 2**32 / 60)
    # 5 shares: bounds 1.62..11.67 shares -> scaled by /5.
    assert fig.low == pytest.approx(fig.hashrate * 1.6235 / 5, rel=0.01)
    assert fig.high == pytest.approx(fig.hashrate * 11.668 / 5, rel=0.01)
    empty = hashrate_figure(60, window_start=0.0, now=60.0, difficulty=0.0, shares=0)
    assert empty.hashrate == 0.0 and empty.low == 0.0 and empty.high is None and empty.warming_up
