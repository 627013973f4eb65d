"""Forecasts of indicator series, the model chosen per series by a rolling-origin backtest.

Pure computation: values in, forecasts out. Storing them, and setting a projection against
its target, is the caller's business.

**Candidates.** SeasonalNaive, AutoTheta, AutoETS and AutoARIMA from statsforecast. The
one with the lowest backtest MASE forecasts the series; ties go to the simpler model.
AutoETS searches additive-error models only: on the bundled real series that was as
accurate as the full search at 40% of its cost, and multiplicative seasonality is still
on offer through AutoTheta's multiplicative decomposition.

**Backtest.** Each candidate's search (ETS components, Theta variant, ARIMA orders) runs
once, on the whole series, and that fit makes the forecast if the candidate wins. The
backtest judges the specification it found: its parameters are estimated again on the
points before the first origin, then rolled forward without re-estimation
(statsforecast's ``forward``) through up to four origins spread over the last
``max(horizon, season_length)`` points (fewer in a short series), each forecasting up to
``horizon`` steps or to the end of the data. Searching on the training part instead
judges another model: with two seasons to train on, AutoETS almost never keeps a
seasonal component that it keeps with three, the backtest then prefers seasonal naive,
and on synthetic 36-month series the chosen forecasts were 9% worse (MASE 0.93 against
0.86). The price is a slightly flattering backtest score, the search having seen the
held-out points. Errors are scaled by the in-sample error of seasonal naive on the
training part (see ``mase``).

**Where AutoARIMA runs.** Its search costs about twenty times the restricted AutoETS
search, and it does not pay on average: on the bundled real series, selection with
AutoARIMA backtested everywhere was no more accurate than with the screen below, at
seven times the time (bench/forecast.py, ``exhaustive=True``). It is a candidate
only where it can plausibly win: the training part holds at least ``ARIMA_MIN_SEASONS``
seasons (and ``ARIMA_MIN_TRAIN`` points), enough to estimate seasonal terms, and no
cheaper candidate reaches a backtest MASE below ``ARIMA_SCREEN_MASE``, so that something
is left for it to catch.

**Intervals.** 80% and 95%, statsforecast's own for the winning fit; a fit that fails or
forecasts non-finite values gives way to the next in the ranking, and SeasonalNaive
always forecasts.

**Input rules.** ``None`` and NaN are missing. Leading missing values are dropped (the
series starts later); inner gaps of at most ``MAX_FILLED_GAP`` points in a row are
filled by linear interpolation; a longer gap, a missing last value (the forecast would
start from an unknown point) or an infinite value is refused with a reason. A series
needs two full seasons to train on (at least 6 points) plus a holdout of half a season
(at least 2): 30 monthly, 10 quarterly, 8 yearly points (``minimum_points``). Below
that the forecast carries a ``reason`` and no points instead of a fit.
"""

from __future__ import annotations

import math
import multiprocessing
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

from shuzhi.core.errors import ValidationFailed

MODELS = ("SeasonalNaive", "AutoTheta", "AutoETS", "AutoARIMA")
LEVELS = (80, 95)
MAX_FILLED_GAP = 2
MAX_ORIGINS = 4
ETS_SEARCH = "AZZ"
ARIMA_MIN_SEASONS = 3
ARIMA_MIN_TRAIN = 16
ARIMA_SCREEN_MASE = 1.0
# Below this many series a worker process costs more (interpreter start, imports) than it saves.
MIN_SERIES_PER_PROCESS = 100

Series = (
    Iterable[tuple[Hashable, Sequence[float | None]]] | Mapping[Hashable, Sequence[float | None]]
)


class ForecastPoint(NamedTuple):
    """One step ahead of the last value: ``step`` 1 is the period after it."""

    step: int
    mean: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float


@dataclass(frozen=True)
class Forecast:
    """The forecast of one series, or the ``reason`` there is none.

    ``backtest_mase`` is the chosen model's; ``scores`` holds every candidate that was
    backtested, best first, so a reader sees what the choice was between and by how
    much. ``history`` counts the points used, ``filled`` those interpolated."""

    key: Hashable
    model: str | None
    backtest_mase: float | None
    points: tuple[ForecastPoint, ...] = ()
    reason: str | None = None
    scores: Mapping[str, float | None] = field(default_factory=dict)
    history: int = 0
    filled: int = 0


def minimum_points(season_length: int) -> int:
    """Points a series needs before it is forecast (see the module docstring)."""
    return _min_train(season_length) + _min_holdout(season_length)


def forecast_many(
    series: Series,
    *,
    season_length: int,
    horizon: int,
    n_jobs: int = 1,
    models: Sequence[str] = MODELS,
    exhaustive: bool = False,
) -> list[Forecast]:
    """Forecast each series ``horizon`` steps ahead; the answers keep the given order.

    ``models`` narrows the candidates (for an indicator known to suit one). ``n_jobs``
    worker processes share the series; they are spawned for the call, not forked, so a
    threaded caller is safe, and they are only started for a few hundred series or more."""
    _whole("season_length", season_length)
    _whole("horizon", horizon)
    _whole("n_jobs", n_jobs)
    unknown = [name for name in models if name not in MODELS]
    if unknown or not models or isinstance(models, str):
        raise ValidationFailed(f"models must be some of {', '.join(MODELS)}", field="models")
    candidates = tuple(name for name in MODELS if name in models)
    keys: list[Hashable] = []
    seen: set[Hashable] = set()
    refused: dict[int, str] = {}
    work: list[tuple[int, np.ndarray]] = []
    filled: dict[int, int] = {}
    for key, values in series.items() if isinstance(series, Mapping) else series:
        try:
            if key in seen:
                raise ValidationFailed(f"series {key!r} is given twice", field="series")
        except TypeError:
            raise ValidationFailed("series keys must be hashable", field="series") from None
        seen.add(key)
        keys.append(key)
        y, gaps, reason = _prepare(key, values, season_length)
        if reason is None:
            work.append((len(keys) - 1, y))
            filled[len(keys) - 1] = gaps
        else:
            refused[len(keys) - 1] = reason
    workers = min(n_jobs, len(work) // MIN_SERIES_PER_PROCESS)
    if workers <= 1:
        done = _forecast_chunk(work, season_length, horizon, candidates, exhaustive)
    else:
        # Interleaved chunks, several per worker, so that slow series spread out.
        chunks = [work[first :: workers * 8] for first in range(workers * 8)]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            parts = pool.map(
                _forecast_chunk,
                chunks,
                *(
                    [setting] * len(chunks)
                    for setting in (season_length, horizon, candidates, exhaustive)
                ),
            )
            done = [entry for part in parts for entry in part]
    found: dict[int, Forecast] = {
        index: Forecast(key=keys[index], model=None, backtest_mase=None, reason=reason)
        for index, reason in refused.items()
    }
    for index, (model, score, scores, points, history) in done:
        found[index] = Forecast(
            key=keys[index],
            model=model,
            backtest_mase=score,
            points=tuple(
                ForecastPoint(step, *(float(value) for value in row))
                for step, row in enumerate(points, start=1)
            ),
            scores=scores,
            history=history,
            filled=filled[index],
        )
    return [found[index] for index in range(len(keys))]


def mase(
    actual: Sequence[float],
    predicted: Sequence[float],
    *,
    history: Sequence[float],
    season_length: int,
) -> float | None:
    """Mean absolute scaled error: the forecast's mean absolute error over the in-sample
    error of seasonal naive on ``history``, so that below 1 means better than repeating
    last season, whatever the unit. A history that repeats exactly is scaled by its
    one-step naive error instead; a constant one gives 0 for an exact forecast and
    ``None`` (undefined) for any other."""
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    if actual.shape != predicted.shape or actual.ndim != 1 or not len(actual):
        raise ValidationFailed("actual and predicted must be equally long and not empty")
    errors = np.abs(actual - predicted)
    return _mase(float(np.mean(errors)), _scale(np.asarray(history, dtype=float), season_length))


def project_period_end(
    forecast: Forecast,
    *,
    observed: Sequence[float],
    period_length: int,
    aggregation: Literal["last", "sum", "mean"] = "last",
) -> ForecastPoint | None:
    """The value the current period (a year, usually) is heading for, to set against its
    target.

    ``observed`` are the period's values so far, the last of them the last value of the
    forecast series; the forecast fills in the rest of the period. ``last`` suits stocks
    and year-to-date cumulative indicators (the value at the period end), ``sum`` monthly
    flows with an annual target, ``mean`` rates with an annual-average target. The
    bounds of a sum add up the forecast bounds, as if the errors all moved together:
    wider than the truth, never narrower. ``step`` says how far ahead the period ends
    (0 when it is complete). ``None`` when the period is not complete and the series has
    no forecast."""
    _whole("period_length", period_length)
    if aggregation not in ("last", "sum", "mean"):
        raise ValidationFailed("aggregation must be last, sum or mean", field="aggregation")
    try:
        seen = [float(value) for value in observed]
    except (TypeError, ValueError):
        raise ValidationFailed("observed values must be numbers", field="observed") from None
    if not all(math.isfinite(value) for value in seen):
        raise ValidationFailed("observed values must be numbers", field="observed")
    if not seen or len(seen) > period_length:
        raise ValidationFailed(
            f"between 1 and {period_length} observed values are needed, not {len(seen)}",
            field="observed",
        )
    remaining = period_length - len(seen)
    if remaining and not forecast.points:
        return None
    if remaining > len(forecast.points):
        raise ValidationFailed(
            f"the forecast reaches {len(forecast.points)} steps ahead and the period ends "
            f"{remaining} steps ahead",
            field="period_length",
        )
    ahead = forecast.points[:remaining]
    if aggregation == "last":
        return ahead[-1] if ahead else ForecastPoint(0, *[seen[-1]] * 5)
    done = sum(seen)
    bounds = [done + sum(point[column] for point in ahead) for column in range(1, 6)]
    if aggregation == "mean":
        bounds = [bound / period_length for bound in bounds]
    return ForecastPoint(remaining, *bounds)


def _whole(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationFailed(f"{name} must be a whole number of at least 1", field=name)


def _min_train(season_length: int) -> int:
    return max(2 * season_length, 6)


def _min_holdout(season_length: int) -> int:
    return max(2, math.ceil(season_length / 2))


def _prepare(
    key: Hashable, values: Sequence[float | None], season_length: int
) -> tuple[Any, int, str | None]:
    """The series as floats ready to fit and how many were filled, or why it cannot be
    forecast."""
    if isinstance(values, str | bytes):
        raise ValidationFailed(f"series {key!r}: values must be numbers", field="series")
    try:
        y = np.array([np.nan if value is None else value for value in values], dtype=float)
    except (TypeError, ValueError):
        raise ValidationFailed(f"series {key!r}: values must be numbers", field="series") from None
    if y.ndim != 1:
        raise ValidationFailed(f"series {key!r}: values must be a flat sequence", field="series")
    if np.isinf(y).any():
        return None, 0, f"infinite value at position {int(np.flatnonzero(np.isinf(y))[0])}"
    missing = np.isnan(y)
    if missing.all():
        return None, 0, "no values"
    if missing[-1]:
        return None, 0, "the last value is missing: pass the series up to its last observed period"
    first = int(np.argmax(~missing))
    y, missing = y[first:], missing[first:]
    if missing.any():
        edges = np.diff(np.concatenate(([0], missing.astype(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        longest = int(np.argmax(ends - starts))
        if ends[longest] - starts[longest] > MAX_FILLED_GAP:
            return (
                None,
                0,
                (
                    f"gap of {ends[longest] - starts[longest]} missing values at positions "
                    f"{first + starts[longest]}-{first + ends[longest] - 1}; at most "
                    f"{MAX_FILLED_GAP} in a row are filled"
                ),
            )
        positions = np.arange(len(y))
        y[missing] = np.interp(positions[missing], positions[~missing], y[~missing])
    need = minimum_points(season_length)
    if len(y) < need:
        why = f"too short: {len(y)} points, at least {need} needed"
        if season_length > 1:
            why += (
                f" (two seasons of {season_length} to train on, "
                f"{_min_holdout(season_length)} to backtest)"
            )
        return None, 0, why
    return y, int(missing.sum()), None


def _forecast_chunk(
    work: list[tuple[int, np.ndarray]],
    season_length: int,
    horizon: int,
    candidates: tuple[str, ...],
    exhaustive: bool,
) -> list[tuple[int, tuple]]:
    # Short series make the optimisers warn by the thousand; a failed fit is handled.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return [
            (index, _forecast_one(y, season_length, horizon, candidates, exhaustive))
            for index, y in work
        ]


def _forecast_one(
    y: np.ndarray,
    season_length: int,
    horizon: int,
    candidates: tuple[str, ...],
    exhaustive: bool,
) -> tuple[str, float | None, dict[str, float | None], np.ndarray, int]:
    origins = _origins(len(y), season_length, horizon)
    scale = _scale(y[: origins[0]], season_length)
    fitted: dict[str, Any] = {}
    errors: dict[str, float] = {}
    for name in candidates:
        if name == "AutoARIMA" and not exhaustive and errors:
            long_enough = origins[0] >= max(ARIMA_MIN_SEASONS * season_length, ARIMA_MIN_TRAIN)
            cheapest = min(errors.values())
            if not long_enough or cheapest == 0 or cheapest < ARIMA_SCREEN_MASE * scale:
                continue
        try:
            model, absolute = _candidate(name, y, season_length, horizon, origins)
        except Exception:  # a model that cannot fit this series is no candidate
            continue
        if np.isfinite(absolute).all():
            fitted[name], errors[name] = model, float(np.mean(absolute))
    ranking = sorted(errors, key=lambda name: (errors[name], MODELS.index(name)))
    scores = {name: _mase(errors[name], scale) for name in ranking}
    for name in ranking:
        points = _points(fitted[name], y, horizon)
        if points is not None:
            return name, scores[name], scores, points, len(y)
    points = _points(_model("SeasonalNaive", season_length), y, horizon)
    return "SeasonalNaive", scores.get("SeasonalNaive"), scores, points, len(y)


def _origins(n: int, season_length: int, horizon: int) -> list[int]:
    holdout = min(
        max(horizon, season_length, _min_holdout(season_length)), n - _min_train(season_length)
    )
    return list(range(n - holdout, n, math.ceil(holdout / MAX_ORIGINS)))


def _scale(train: np.ndarray, season_length: int) -> float:
    for lag in (season_length, 1):
        if len(train) > lag:
            scale = float(np.mean(np.abs(train[lag:] - train[:-lag])))
            if scale > 0:
                return scale
    return 0.0


def _mase(mean_error: float, scale: float) -> float | None:
    if scale > 0:
        return mean_error / scale
    return 0.0 if mean_error == 0 else None


def _model(name: str, season_length: int, **specification: Any) -> Any:
    # Imported here: statsforecast takes a second to import, and most users of the brain
    # only read stored forecasts.
    from statsforecast import models

    if name == "AutoETS":
        specification = {"model": ETS_SEARCH, **specification}
    return getattr(models, name)(season_length=season_length, **specification)


def _same_specification(name: str, fitted: Any, season_length: int) -> Any:
    """The specification a search settled on, its parameters left free."""
    found = fitted.model_
    if name == "AutoTheta":
        return _model(name, season_length, model=found["modeltype"])
    if name == "AutoETS":
        components = found["components"]
        return _model(name, season_length, model=components[:3], damped=components[3] == "D")
    p, q, seasonal_p, seasonal_q, _, d, seasonal_d = found["arma"]
    return _model(
        "ARIMA",
        season_length,
        order=(p, d, q),
        seasonal_order=(seasonal_p, seasonal_d, seasonal_q),
        include_mean="intercept" in found["coef"],
        include_drift="drift" in found["coef"],
        # Exact likelihood: the default conditional sum of squares first drops d + D*m +
        # P*m points, more than two seasons of training hold for a seasonal model.
        method="ML",
    )


def _candidate(
    name: str, y: np.ndarray, season_length: int, horizon: int, origins: list[int]
) -> tuple[Any, np.ndarray]:
    """The candidate fitted on the whole series, and its absolute backtest errors at every
    origin and step."""
    errors = []
    if name == "SeasonalNaive":
        for origin in origins:
            steps = np.arange(min(horizon, len(y) - origin))
            predicted = y[origin - season_length + steps % season_length]
            errors.append(np.abs(y[origin : origin + len(steps)] - predicted))
        return _model(name, season_length), np.concatenate(errors)
    fitted = _model(name, season_length).fit(y)
    model = _same_specification(name, fitted, season_length).fit(y[: origins[0]])
    for origin in origins:
        steps = min(horizon, len(y) - origin)
        predicted = model.forward(y=y[:origin], h=steps)["mean"]
        errors.append(np.abs(y[origin : origin + steps] - predicted))
    return fitted, np.concatenate(errors)


def _points(model: Any, y: np.ndarray, horizon: int) -> np.ndarray | None:
    """Columns mean, lo80, hi80, lo95, hi95, nested even where rounding says otherwise."""
    try:
        if hasattr(model, "model_"):
            result = model.predict(h=horizon, level=list(LEVELS))
        else:
            result = model.forecast(y=y, h=horizon, level=list(LEVELS))
    except Exception:
        return None
    mean = result["mean"]
    lo80 = np.minimum(result["lo-80"], mean)
    hi80 = np.maximum(result["hi-80"], mean)
    lo95 = np.minimum(result["lo-95"], lo80)
    hi95 = np.maximum(result["hi-95"], hi80)
    points = np.column_stack([mean, lo80, hi80, lo95, hi95])
    return points if np.isfinite(points).all() else None
