"""Progress of strategic goals, computed from indicators, never typed in.

A key result moves an indicator in a region from a baseline (its value in a baseline
year) to targets at milestone dates. Where it should stand at the date of its newest value
is the straight line from the baseline (at the end of its year) through the milestones;
its **light** compares the newest value with that expectation (green at or past it, yellow
within the indicator's tolerance, red beyond, no data without a value). Its **progress** is
the share of the way from the baseline to the final target, between 0 and 1, in the
indicator's better direction. A goal's progress is the weighted mean of its key results'
and its sub-goals' (each sub-goal weighs 1); its light is the worst among them, so a red
key result anywhere shows on every goal above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from itertools import pairwise

from shuzhi.brain.rules import Direction
from shuzhi.core.enums import Light

ORDER = {Light.red.value: 0, Light.yellow.value: 1, Light.green.value: 2, Light.no_data.value: 3}


def expected_at(
    when: date, *, baseline: tuple[date, float], milestones: Sequence[tuple[date, float]]
) -> float:
    """The value the straight line through the baseline and milestones gives at ``when``."""
    points = [baseline, *milestones]
    if when <= points[0][0]:
        return points[0][1]
    for (start, low), (end, high) in pairwise(points):
        if when <= end:
            share = (when - start).days / max((end - start).days, 1)
            return low + (high - low) * share
    return points[-1][1]


def key_result_light(
    current: float | None, expected: float | None, direction: Direction, tolerance: float
) -> str:
    if current is None or expected is None:
        return Light.no_data.value
    band = abs(expected) * tolerance
    if direction is Direction.higher:
        if current >= expected:
            return Light.green.value
        return Light.yellow.value if current >= expected - band else Light.red.value
    if current <= expected:
        return Light.green.value
    return Light.yellow.value if current <= expected + band else Light.red.value


def progress(
    current: float | None, baseline: float | None, final: float, direction: Direction
) -> float | None:
    """1 once the final target is met; before that, the share of the way from the baseline
    towards it (0 when the target lies on the worse side of the baseline and is not met)."""
    if current is None or baseline is None:
        return None
    met = current >= final if direction is Direction.higher else current <= final
    if met:
        return 1.0
    better = final > baseline if direction is Direction.higher else final < baseline
    if not better:
        return 0.0
    return min(1.0, max(0.0, (current - baseline) / (final - baseline)))


def roll_up(parts: Sequence[tuple[float | None, str, float]]) -> tuple[float | None, str]:
    """A goal's (progress, light) from its parts' (progress, light, weight)."""
    if not parts:
        return None, Light.no_data.value
    weighted = [(value, weight) for value, _, weight in parts if value is not None]
    total = sum(weight for _, weight in weighted)
    share = sum(value * weight for value, weight in weighted) / total if total else None
    lights = [light for _, light, _ in parts]
    known = [light for light in lights if light != Light.no_data.value]
    worst = min(known, key=ORDER.__getitem__) if known else Light.no_data.value
    return share, worst
