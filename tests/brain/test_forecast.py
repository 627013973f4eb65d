"""Forecasts: hand-computed scores, the seasonal naive baseline, selection, refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shuzhi.brain import forecast as forecast_module
from shuzhi.brain.forecast import (
    Forecast,
    ForecastPoint,
    forecast_many,
    mase,
    minimum_points,
    project_period_end,
)
from shuzhi.core.errors import ValidationFailed

# Quarterly, ten points: exactly the minimum (two seasons to train on, two to backtest).
QUARTERS = [10, 20, 30, 40, 12, 22, 32, 42, 15, 21]


def one(values, *, season_length=12, horizon=12, **options) -> Forecast:
    return forecast_many([("s", values)], season_length=season_length, horizon=horizon, **options)[
        0
    ]


def trend_and_season(length: int, *, seed: int = 3, noise: float = 0.5) -> np.ndarray:
    t = np.arange(length)
    rng = np.random.default_rng(seed)
    return 100 + 2 * t + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, noise, length)


def test_mase_by_hand() -> None:
    # Seasonal naive in the history misses by |12-10|, |22-20|, |32-30|, |42-40|: scale 2.
    # The forecast misses by 3 and 3: mean 3, so 3 / 2.
    history = [10, 20, 30, 40, 12, 22, 32, 42]
    assert mase([15, 21], [12, 24], history=history, season_length=4) == pytest.approx(1.5)
    # A history repeating exactly is scaled by its one-step error: |20-10|... = 10.
    assert mase([15], [10], history=[10, 20, 10, 20], season_length=2) == pytest.approx(0.5)
    assert mase([7, 7], [7, 7], history=[7, 7, 7], season_length=1) == 0.0
    assert mase([7, 8], [7, 7], history=[7, 7, 7], season_length=1) is None
    with pytest.raises(ValidationFailed):
        mase([1, 2], [1], history=history, season_length=4)


def test_backtest_mase_of_seasonal_naive_by_hand() -> None:
    # Origins 8 and 9 (two points held out). From 8: predicts 12, 22 for 15, 21 (errors
    # 3, 1); from 9: predicts 22 for 21 (error 1). Mean 5/3 over the scale 2 of the first
    # eight points: 5/6.
    forecast = one(QUARTERS, season_length=4, horizon=4)
    assert forecast.scores["SeasonalNaive"] == pytest.approx(5 / 6)
    assert forecast.model == min(forecast.scores, key=forecast.scores.get)
    assert forecast.backtest_mase == forecast.scores[forecast.model]


def test_seasonal_naive_repeats_the_last_season_exactly() -> None:
    values = trend_and_season(40, noise=3.0)
    forecast = one(values, horizon=18, models=["SeasonalNaive"])
    assert forecast.model == "SeasonalNaive"
    last_season = values[-12:]
    assert [point.mean for point in forecast.points] == [*last_season, *last_season[:6]]
    assert [point.step for point in forecast.points] == list(range(1, 19))
    # The second season ahead is less certain than the first.
    first, second = forecast.points[0], forecast.points[12]
    assert second.hi95 - second.lo95 > first.hi95 - first.lo95 > 0


def test_a_seasonal_series_with_trend_gets_a_model_that_beats_seasonal_naive() -> None:
    values = trend_and_season(60)
    forecast = one(values[:48])
    assert forecast.model != "SeasonalNaive"
    assert forecast.backtest_mase < forecast.scores["SeasonalNaive"]
    # Seasonal naive is a year behind the trend (2 a month), the chosen model is not.
    future = values[48:]
    chosen = mase(future, [p.mean for p in forecast.points], history=values[:48], season_length=12)
    naive = mase(future, values[36:48], history=values[:48], season_length=12)
    assert naive == pytest.approx(24 / np.mean(np.abs(values[12:48] - values[:36])), rel=0.2)
    assert chosen < naive / 3


def test_a_series_too_short_says_so_and_is_not_fitted() -> None:
    forecast = one([float(n) for n in range(8)])
    assert forecast.points == ()
    assert forecast.model is None and forecast.backtest_mase is None
    assert forecast.reason == (
        "too short: 8 points, at least 30 needed (two seasons of 12 to train on, 6 to backtest)"
    )
    assert minimum_points(12) == 30 and minimum_points(4) == 10 and minimum_points(1) == 8
    assert one(QUARTERS[1:], season_length=4, horizon=4).reason.startswith("too short: 9 points")
    assert one(QUARTERS, season_length=4, horizon=4).reason is None


def test_intervals_are_nested_around_the_mean() -> None:
    rng = np.random.default_rng(11)
    t = np.arange(42)
    shapes = {
        "multiplicative": (50 + t) * (1 + 0.3 * np.sin(2 * np.pi * t / 12)) + rng.normal(0, 2, 42),
        "walk": 20 + np.cumsum(rng.normal(0, 1, 42)),
        "negative": -5 + rng.normal(0, 3, 42),
        "trend": trend_and_season(42, noise=4.0),
    }
    for forecast in forecast_many(shapes.items(), season_length=12, horizon=12):
        assert len(forecast.points) == 12, forecast.key
        for point in forecast.points:
            assert point.lo95 <= point.lo80 <= point.mean <= point.hi80 <= point.hi95
            assert point.lo95 < point.hi95, (forecast.key, forecast.model)


def test_a_constant_series_forecasts_the_constant() -> None:
    for level in (0.0, 5.0):
        forecast = one([level] * 36)
        assert forecast.model == "SeasonalNaive" and forecast.backtest_mase == 0.0
        assert set(forecast.points) == {
            ForecastPoint(step, level, level, level, level, level) for step in range(1, 13)
        }


def test_forecasts_are_deterministic_and_keep_the_order() -> None:
    series = [(f"s{n}", trend_and_season(36, seed=n, noise=3.0)) for n in range(4)]
    series.insert(1, ("short", [1.0, 2.0]))
    first = forecast_many(series, season_length=12, horizon=6)
    assert [forecast.key for forecast in first] == ["s0", "short", "s1", "s2", "s3"]
    assert forecast_many(series, season_length=12, horizon=6) == first


@pytest.mark.slow
def test_worker_processes_give_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forecast_module, "MIN_SERIES_PER_PROCESS", 2)
    series = {n: trend_and_season(30, seed=n, noise=3.0) for n in range(8)}
    alone = forecast_many(series, season_length=12, horizon=3)
    assert forecast_many(series, season_length=12, horizon=3, n_jobs=2) == alone


def test_short_gaps_are_interpolated_and_long_ones_refused() -> None:
    values = list(trend_and_season(36, noise=3.0))
    gapped = [*values[:10], None, math.nan, *values[12:]]
    filled = [*values[:10], *np.interp([10, 11], [9, 12], [values[9], values[12]]), *values[12:]]
    forecast = one(gapped)
    assert forecast.filled == 2 and forecast.history == 36
    assert forecast.points == one(filled).points
    assert one([None, None, *values]).history == 36
    long_gap = [*values[:10], None, None, None, *values[13:]]
    assert one(long_gap).reason == (
        "gap of 3 missing values at positions 10-12; at most 2 in a row are filled"
    )
    assert one([*values, None]).reason.startswith("the last value is missing")
    assert one([*values[:-1], math.inf]).reason == "infinite value at position 35"
    assert one([None] * 40).reason == "no values"


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"season_length": 0}, "season_length"),
        ({"horizon": 0}, "horizon"),
        ({"horizon": 2.5}, "horizon"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"models": ["Prophet"]}, "models"),
        ({"models": []}, "models"),
        ({"series": [("a", QUARTERS), ("a", QUARTERS)]}, "series"),
        ({"series": [("a", ["ten", 20])]}, "series"),
        ({"series": [("a", "1234")]}, "series"),
        ({"series": [(["a"], QUARTERS)]}, "series"),
    ],
)
def test_bad_arguments_are_refused(arguments: dict, field: str) -> None:
    call = {"series": [("a", QUARTERS)], "season_length": 4, "horizon": 4, **arguments}
    with pytest.raises(ValidationFailed) as caught:
        forecast_many(**call)
    assert caught.value.field == field


AHEAD = Forecast(
    key="gdp",
    model="AutoETS",
    backtest_mase=0.5,
    points=(
        ForecastPoint(1, 10, 9, 11, 8, 12),
        ForecastPoint(2, 20, 18, 22, 16, 24),
        ForecastPoint(3, 30, 27, 33, 24, 36),
    ),
)


def test_projected_period_end_by_hand() -> None:
    # Three of six periods observed (1, 2, 3): the forecast supplies steps 1 to 3.
    seen = {"observed": [1, 2, 3], "period_length": 6}
    assert project_period_end(AHEAD, **seen) == ForecastPoint(3, 30, 27, 33, 24, 36)
    # 6 observed, plus 10 + 20 + 30 ahead; the bounds add up alike.
    assert project_period_end(AHEAD, **seen, aggregation="sum") == (3, 66, 60, 72, 54, 78)
    assert project_period_end(AHEAD, **seen, aggregation="mean") == (3, 11, 10, 12, 9, 13)
    # One step ahead: only the first point counts.
    assert project_period_end(AHEAD, observed=[1, 2], period_length=3, aggregation="sum") == (
        1,
        13,
        12,
        14,
        11,
        15,
    )


def test_projected_period_end_of_a_complete_or_unforecast_period() -> None:
    assert project_period_end(AHEAD, observed=[1, 2, 4], period_length=3) == (0, 4, 4, 4, 4, 4)
    assert project_period_end(AHEAD, observed=[1, 2, 4], period_length=3, aggregation="sum") == (
        0,
        7,
        7,
        7,
        7,
        7,
    )
    refused = Forecast(key="x", model=None, backtest_mase=None, reason="too short")
    assert project_period_end(refused, observed=[1], period_length=12) is None
    with pytest.raises(ValidationFailed):
        project_period_end(AHEAD, observed=[1], period_length=12)
    with pytest.raises(ValidationFailed):
        project_period_end(AHEAD, observed=[1, 2], period_length=1)
