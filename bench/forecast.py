"""Forecasts with model selection: speed on synthetic series, accuracy on real ones.

    .venv/bin/python bench/forecast.py                       # both parts, 10,000 series, 2 jobs
    .venv/bin/python bench/forecast.py --part speed --series 10000 --jobs 2 --sample 300
    .venv/bin/python bench/forecast.py --part accuracy

**speed**: 10,000 synthetic monthly series of 36 points (level, trend, additive or
multiplicative season, AR(1) noise, a tenth random walks; seeded), forecast 12 steps with
80%/95% intervals by ``forecast_many`` (backtest selection, AutoARIMA screened), side by
side with two baselines on a subsample, extrapolated per series:

- **fit all four**: statsforecast's ``StatsForecast([AutoETS, AutoARIMA, AutoTheta,
  SeasonalNaive], n_jobs=...).forecast`` on the long frame, no selection at all;
- **exhaustive selection**: ``forecast_many(exhaustive=True)``, AutoARIMA backtested on
  every series.

**accuracy**: real series shipped inside PyPI packages (no download): monthly CO2 at
Mauna Loa, El Niño sea temperatures, euro-area electrical equipment turnover
(statsmodels) and air passengers (statsforecast); quarterly US macro series, Danish money
demand series and US inflation and interest (statsmodels). Rolling origins one season
apart; at each, the last ``--monthly-window``/``--quarterly-window`` points are the
history (short, as indicator series are) and the next 12 months / 8 quarters the test.
MASE (scaled by the history's seasonal naive error) of the chosen model, of seasonal
naive, of exhaustive selection and of always using one model.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import time
import warnings

import numpy as np
import pandas as pd

from shuzhi.brain.forecast import forecast_many, mase

MONTHLY = 12
QUARTERLY = 4


def synthetic(count: int, length: int, *, seed: int = 20_261_129) -> list[np.ndarray]:
    """Monthly series shaped like indicator series: level, trend, season, AR(1) noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    found = []
    for _ in range(count):
        level = rng.uniform(50, 1000)
        slope = rng.normal(0, 0.006) * level
        shape = rng.normal(0, 1, MONTHLY)
        shape = np.convolve(np.tile(shape, 3), np.ones(3) / 3, "same")[MONTHLY : 2 * MONTHLY]
        shape = (shape - shape.mean()) / shape.std()
        amplitude = rng.uniform(0.02, 0.2) if rng.random() < 0.8 else 0.0
        phi, sd = rng.uniform(-0.2, 0.8), rng.uniform(0.01, 0.08) * level
        noise = np.zeros(length)
        for i in range(length):
            noise[i] = (phi * noise[i - 1] if i else 0.0) + rng.normal(0, sd)
        trend = level + slope * t
        season = shape[t % MONTHLY] * amplitude
        multiplicative = rng.random() < 0.5
        y = trend * (1 + season) + noise if multiplicative else trend + season * level + noise
        if rng.random() < 0.1:
            y = level + np.cumsum(rng.normal(0, sd, length))
        found.append(np.round(y, 2))
    return found


def long_frame(values: list[np.ndarray]) -> pd.DataFrame:
    """statsforecast's input: one row per point, the series numbered in order."""
    return pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(len(values)), [len(y) for y in values]),
            "ds": np.concatenate([np.arange(len(y)) for y in values]),
            "y": np.concatenate(values),
        }
    )


def fit_all_four(values: list[np.ndarray], jobs: int) -> tuple[float, float, object]:
    """The time statsforecast takes to fit and forecast all four models on every series."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, SeasonalNaive

    frame = long_frame(values)
    models = [
        AutoETS(season_length=MONTHLY),
        AutoARIMA(season_length=MONTHLY),
        AutoTheta(season_length=MONTHLY),
        SeasonalNaive(season_length=MONTHLY),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forecaster = StatsForecast(models=models, freq=1, n_jobs=jobs)
        return measured(forecaster.forecast, h=12, df=frame, level=[80, 95])


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker processes)."""
    mine, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def measured(call, *args, **kwargs) -> tuple[float, float, object]:
    """Wall seconds, CPU seconds (the machine is shared: CPU time is the steadier), result."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = call(*args, **kwargs)
    return time.perf_counter() - wall, cpu_seconds() - cpu, result


def timed(series: list, jobs: int, **options) -> tuple[float, float, list]:
    return measured(
        forecast_many, series, season_length=MONTHLY, horizon=12, n_jobs=jobs, **options
    )


def speed(options: argparse.Namespace) -> None:
    series = list(enumerate(synthetic(options.series, 36)))
    sample = series[: options.sample]
    load = os.getloadavg()[0]
    wall, cpu, found = timed(series, options.jobs)
    screened = timed(sample, options.jobs)[:2]
    exhaustive = timed(sample, options.jobs, exhaustive=True)[:2]
    everything = fit_all_four([y for _, y in sample], options.jobs)[:2]
    rows = [
        ("selection, AutoARIMA screened", len(series), wall, cpu),
        ("selection, AutoARIMA screened", len(sample), *screened),
        ("selection, AutoARIMA everywhere", len(sample), *exhaustive),
        ("fit all four, no selection", len(sample), *everything),
    ]
    chosen = collections.Counter(forecast.model for forecast in found)
    tried = sum("AutoARIMA" in forecast.scores for forecast in found)
    print(
        f"\n{options.series} synthetic monthly series x 36 points, 12 steps, {options.jobs} jobs "
        f"(load average {load:.1f} before, {os.getloadavg()[0]:.1f} after)"
    )
    print(f"chosen: {dict(chosen.most_common())}; AutoARIMA backtested on {tried}")
    print(
        "| run | series | wall (s) | CPU (s) | CPU ms a series | 10,000 series: wall (s) "
        f"| 10,000 series: CPU / {options.jobs} (s) | ratio (CPU) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    fastest = rows[1][3] / rows[1][1]
    for name, count, seconds, cpu in rows:
        print(
            f"| {name} | {count} | {seconds:.1f} | {cpu:.1f} | {1000 * cpu / count:.1f} "
            f"| {10_000 * seconds / count:.0f} | {10_000 * cpu / count / options.jobs:.0f} "
            f"| {cpu / count / fastest:.2f} |"
        )


def real_series() -> list[tuple[str, str, int, np.ndarray]]:
    """(dataset, series, season length, values) for every bundled series used."""
    from statsforecast.utils import AirPassengers
    from statsmodels.datasets import (
        co2,
        danish_data,
        elec_equip,
        elnino,
        interest_inflation,
        macrodata,
    )

    weekly = co2.load_pandas().data["co2"]
    found = [("co2", "co2", MONTHLY, weekly.resample("MS").mean().interpolate().to_numpy())]
    temperatures = elnino.load_pandas().data.drop(columns="YEAR").to_numpy()
    found.append(("elnino", "sst", MONTHLY, temperatures.ravel()))
    found.append(("elec_equip", "turnover", MONTHLY, elec_equip.load().data.iloc[:, 0].to_numpy()))
    found.append(("air_passengers", "passengers", MONTHLY, np.asarray(AirPassengers, float)))
    macro = macrodata.load_pandas().data.drop(columns=["year", "quarter"])
    found += [("macrodata", name, QUARTERLY, macro[name].to_numpy()) for name in macro]
    danish = danish_data.load_pandas().data
    found += [("danish_data", name, QUARTERLY, danish[name].to_numpy()) for name in danish]
    rates = interest_inflation.load_pandas().data
    found += [
        ("interest_inflation", name, QUARTERLY, rates[name].to_numpy()) for name in ("Dp", "R")
    ]
    return found


def always(cases: dict, keys: list, season: int, horizon: int, jobs: int) -> dict[str, list]:
    """Each model with statsforecast's defaults on every case, no selection: the forecasts,
    by model, in the order of ``keys``."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta

    frame = long_frame([cases[key][1] for key in keys])
    models = [model(season_length=season) for model in (AutoETS, AutoTheta, AutoARIMA)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = StatsForecast(models=models, freq=1, n_jobs=jobs).forecast(h=horizon, df=frame)
    found = found.sort_values(["unique_id", "ds"])
    return {
        name: list(found[name].to_numpy().reshape(len(keys), horizon))
        for name in ("AutoETS", "AutoTheta", "AutoARIMA")
    }


def accuracy(options: argparse.Namespace) -> None:
    windows = {MONTHLY: options.monthly_window, QUARTERLY: options.quarterly_window}
    horizons = {MONTHLY: 12, QUARTERLY: 8}
    cases = {}
    for dataset, name, season, values in real_series():
        window, horizon = windows[season], horizons[season]
        for origin in range(len(values) - horizon, (window or 3 * season) - 1, -season):
            history = values[origin - window if window else 0 : origin]
            cases[(dataset, name, origin)] = (season, history, values[origin : origin + horizon])
    runs = {"chosen": {}, "chosen, AutoARIMA everywhere": {"exhaustive": True}}
    scores: dict[tuple[str, tuple], float] = {}
    chosen: dict[str, collections.Counter] = {}
    seconds = {}
    for label, settings in runs.items():
        started = time.perf_counter()
        chosen[label] = collections.Counter()
        for season in (MONTHLY, QUARTERLY):
            batch = [(key, case[1]) for key, case in cases.items() if case[0] == season]
            for forecast in forecast_many(
                batch,
                season_length=season,
                horizon=horizons[season],
                n_jobs=options.jobs,
                **settings,
            ):
                _, history, actual = cases[forecast.key]
                predicted = [point.mean for point in forecast.points]
                scores[(label, forecast.key)] = mase(
                    actual, predicted, history=history, season_length=season
                )
                chosen[label][forecast.model] += 1
        seconds[label] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    for season in (MONTHLY, QUARTERLY):
        keys = [key for key, case in cases.items() if case[0] == season]
        for name, predicted in always(cases, keys, season, horizons[season], options.jobs).items():
            for key, values in zip(keys, predicted, strict=True):
                _, history, actual = cases[key]
                scores[(f"always {name}", key)] = mase(
                    actual, values, history=history, season_length=season
                )
    seconds["always one model"] = round(time.perf_counter() - started, 1)
    for key, (season, history, actual) in cases.items():
        steps = np.arange(len(actual))
        naive = history[len(history) - season + steps % season]
        scores[("seasonal naive", key)] = mase(actual, naive, history=history, season_length=season)
    labels = ["chosen", "seasonal naive", "chosen, AutoARIMA everywhere"]
    labels += [f"always {name}" for name in ("AutoETS", "AutoTheta", "AutoARIMA")]
    groups = collections.defaultdict(list)
    for key, (season, *_) in cases.items():
        groups["all"].append(key)
        groups["all monthly" if season == MONTHLY else "all quarterly"].append(key)
        groups[key[0]].append(key)
    print(
        f"\nreal series: history {options.monthly_window or 'all'} months / "
        f"{options.quarterly_window or 'all'} quarters, test 12 months / 8 quarters, origins a "
        f"season apart; mean MASE"
    )
    print("| series | cases | " + " | ".join(labels) + " | chosen / naive | chosen better |")
    print("|---|---|" + "---|" * len(labels) + "---|---|")
    for group, keys in groups.items():
        means = {label: np.mean([scores[(label, key)] for key in keys]) for label in labels}
        better = np.mean(
            [scores[("chosen", key)] < scores[("seasonal naive", key)] for key in keys]
        )
        print(
            f"| {group} | {len(keys)} | "
            + " | ".join(f"{means[label]:.3f}" for label in labels)
            + f" | {means['chosen'] / means['seasonal naive']:.3f} | {better:.0%} |"
        )
    print(f"chosen models: {dict(chosen['chosen'].most_common())}")
    print(
        f"with AutoARIMA everywhere: {dict(chosen['chosen, AutoARIMA everywhere'].most_common())}"
    )
    print(f"seconds ({options.jobs} jobs): {json.dumps(seconds)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=("speed", "accuracy", "both"), default="both")
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=300, help="series the baselines run on")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--monthly-window", type=int, default=36, help="0: all history")
    parser.add_argument("--quarterly-window", type=int, default=20, help="0: all history")
    options = parser.parse_args()
    if options.part in ("speed", "both"):
        speed(options)
    if options.part in ("accuracy", "both"):
        accuracy(options)


if __name__ == "__main__":
    main()
