"""Evaluation: each value against its target (a light), its change on the year and on the
previous period, and its rank among sibling regions (比学赶超).

Pure functions over computed values; nothing here reads the database or the lake.

- **Which target**: the one set for the same region, grain and period. A rate, a stock or
  an average (anything not additive) without one takes the target of the enclosing
  quarter, then year: a monthly childcare ratio is held to the year's 4.5. An additive
  value is never held to a coarser target (a month's cases against a year's).
- **On track**: an additive value of a period not yet over is compared with the target
  times the share of the period its data covers (three quarters of the year through
  September), so a year-to-date count is not red merely for being incomplete.
- **Light**: no value → no data; no target → no light; higher is better: at or above the
  target green, within ``tolerance`` (a share of the target) below it yellow, else red;
  lower is better mirrors it.
- **Change**: year on year against the same period a year earlier, period on period
  against the one before, each as a relative change (%) and as a difference.
- **Rank**: among the regions with the same parent, 1 = best in the indicator's
  direction; ties share a rank (1, 2, 2, 4); regions without a value are not ranked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from shuzhi.brain.rules import Additivity, Direction, Grain, period_end
from shuzhi.brain.schemas import IndicatorSpec
from shuzhi.core.enums import Light

COARSER = {
    Grain.day: (Grain.week, Grain.month, Grain.quarter, Grain.year),
    Grain.week: (Grain.month, Grain.quarter, Grain.year),
    Grain.month: (Grain.quarter, Grain.year),
    Grain.quarter: (Grain.year,),
    Grain.year: (),
}


@dataclass(frozen=True)
class Evaluated:
    region_code: str
    grain: str
    period_start: date
    value: float | None
    target: float | None
    expected: float | None  # the target, or its share for a period not yet over
    light: str | None  # green, yellow, red, no_data; None without a target
    complete: bool
    yoy: float | None  # %
    yoy_delta: float | None
    pop: float | None  # %
    pop_delta: float | None
    rank: int | None
    siblings: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def enclosing(grain: Grain, start: date, coarser: Grain) -> date:
    """The first day of the ``coarser`` period that holds the period starting on ``start``."""
    if coarser is Grain.year:
        return date(start.year, 1, 1)
    if coarser is Grain.quarter:
        return date(start.year, 3 * ((start.month - 1) // 3) + 1, 1)
    if coarser is Grain.month:
        return date(start.year, start.month, 1)
    return start - timedelta(days=start.weekday())


def previous_start(grain: Grain, start: date) -> date:
    if grain is Grain.day:
        return start - timedelta(days=1)
    if grain is Grain.week:
        return start - timedelta(days=7)
    months = {Grain.month: 1, Grain.quarter: 3, Grain.year: 12}[grain]
    index = start.year * 12 + start.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def year_before(grain: Grain, start: date) -> date:
    if grain is Grain.week:
        return start - timedelta(days=364)
    if grain is Grain.day:
        try:
            return start.replace(year=start.year - 1)
        except ValueError:  # 29 February
            return start.replace(year=start.year - 1, day=28)
    return start.replace(year=start.year - 1)


def light(
    value: float | None, target: float | None, direction: Direction, tolerance: float
) -> str | None:
    if value is None:
        return Light.no_data.value
    if target is None:
        return None
    band = abs(target) * tolerance
    if direction is Direction.higher:
        if value >= target:
            return Light.green.value
        return Light.yellow.value if value >= target - band else Light.red.value
    if value <= target:
        return Light.green.value
    return Light.yellow.value if value <= target + band else Light.red.value


def _change(now: float | None, before: float | None) -> tuple[float | None, float | None]:
    if now is None or before is None:
        return None, None
    delta = now - before
    return (delta / abs(before) * 100 if before else None), delta


def covered_share(grain: Grain, start: date, last_time: date | None) -> float:
    """How much of the period the data reaches into (1.0 once it reaches the end)."""
    end = period_end(grain, start)
    if last_time is None or last_time >= end:
        return 1.0
    if grain in (Grain.month, Grain.quarter, Grain.year):
        # monthly data dated the first of the month covers that whole month
        months = (last_time.year - start.year) * 12 + last_time.month - start.month + 1
        total = {Grain.month: 1, Grain.quarter: 3, Grain.year: 12}[grain]
        return min(1.0, max(months, 0) / total)
    return ((last_time - start).days + 1) / ((end - start).days + 1)


def evaluate(
    spec: IndicatorSpec,
    rows: Iterable[Mapping[str, Any]],
    *,
    targets: Mapping[tuple[str, str, date], float],
    parents: Mapping[str, str | None],
    grain: Grain | str | None = None,
    last_time: date | None = None,
) -> list[Evaluated]:
    """Evaluate the value rows of one indicator (every grain, or one).

    ``targets`` maps (region, grain, period start) to the target; ``parents`` each region
    to its parent; ``last_time`` is how far the indicator's data reaches anywhere (for "on
    track": a county that stopped reporting is not thereby on track).
    """
    wanted = Grain(grain) if grain is not None else None
    values: dict[tuple[str, str, date], float | None] = {}
    reach: dict[tuple[str, str, date], date | None] = {}
    for row in rows:
        key = (row["region_code"], row["grain"], row["period_start"])
        values[key] = row["value"]
        reach[key] = row.get("last_time")
    additive = spec.additivity is Additivity.additive

    def target_of(region: str, grain_: Grain, start: date) -> float | None:
        found = targets.get((region, grain_.value, start))
        if found is not None or additive:
            return found
        for coarser in COARSER[grain_]:
            found = targets.get((region, coarser.value, enclosing(grain_, start, coarser)))
            if found is not None:
                return found
        return None

    # ranks among siblings, per grain and period
    groups: dict[tuple[str | None, str, date], list[tuple[str, float]]] = defaultdict(list)
    for (region, grain_text, start), value in values.items():
        if value is not None:
            groups[(parents.get(region), grain_text, start)].append((region, value))
    ranks: dict[tuple[str, str, date], tuple[int, int]] = {}
    for (_, grain_text, start), members in groups.items():
        ordered = sorted(
            (value for _, value in members), reverse=spec.direction is Direction.higher
        )
        for region, value in members:
            ranks[(region, grain_text, start)] = (ordered.index(value) + 1, len(members))

    out = []
    for key in sorted(values):
        region, grain_text, start = key
        grain_ = Grain(grain_text)
        if wanted is not None and grain_ is not wanted:
            continue
        value = values[key]
        target = target_of(region, grain_, start)
        share = covered_share(grain_, start, last_time if last_time else reach.get(key))
        complete = share >= 1.0
        expected = target
        if target is not None and additive and not complete:
            expected = target * share
        yoy, yoy_delta = _change(
            value, values.get((region, grain_text, year_before(grain_, start)))
        )
        pop, pop_delta = _change(
            value, values.get((region, grain_text, previous_start(grain_, start)))
        )
        rank, siblings = ranks.get(key, (None, 0))
        out.append(
            Evaluated(
                region_code=region,
                grain=grain_text,
                period_start=start,
                value=value,
                target=target,
                expected=expected,
                light=light(value, expected, spec.direction, spec.tolerance),
                complete=complete,
                yoy=yoy,
                yoy_delta=yoy_delta,
                pop=pop,
                pop_delta=pop_delta,
                rank=rank,
                siblings=siblings,
            )
        )
    return out
