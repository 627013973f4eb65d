"""What a warning rule says about one region in one period: bad, hovering, clear, or no
data. Pure functions over evaluated values (``evaluation.Evaluated``); the state machine
that turns readings into Normal → Pending → Firing → Recovering lives in ``rules.step``.

Hysteresis: a value is bad once it crosses the line, but clear only once it is back past
the line by ``margin`` (a share of the line); in between it hovers, and a firing warning
keeps firing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from shuzhi.brain.evaluation import Evaluated
from shuzhi.brain.rules import Direction, Signal, period_end, period_label
from shuzhi.brain.schemas import IndicatorSpec, RuleSpec
from shuzhi.core.enums import Light


@dataclass(frozen=True)
class Reading:
    signal: Signal
    value: float | None = None
    line: float | None = None
    message: str = ""


def _number(value: float | None, spec: IndicatorSpec) -> str:
    return "—" if value is None else f"{value:,.{spec.decimals}f}{spec.unit}"


def _crossed(value: float, line: float, direction: Direction, margin: float) -> Signal:
    """Bad past the line in the worse direction; clear back past it by the margin."""
    band = abs(line) * margin
    if direction is Direction.higher:
        if value < line:
            return Signal.bad
        return Signal.clear if value >= line + band else Signal.hover
    if value > line:
        return Signal.bad
    return Signal.clear if value <= line - band else Signal.hover


def no_data(spec: IndicatorSpec, period: str) -> Reading:
    return Reading(Signal.no_data, message=f"{spec.name}{period}无数据")


def threshold(rule: RuleSpec, spec: IndicatorSpec, row: Evaluated) -> Reading:
    period = period_label(row.grain, row.period_start)
    if row.value is None:
        return no_data(spec, period)
    if rule.against == "target":
        if row.expected is None:
            return Reading(Signal.no_data, row.value, message=f"{spec.name}{period}未设目标")
        # red is off track beyond the tolerance; yellow is the band between
        signal = {
            Light.red.value: Signal.bad,
            Light.yellow.value: Signal.hover,
        }.get(row.light or "", Signal.clear)
        line = row.expected
        words = {Signal.bad: "未达目标", Signal.hover: "略低于目标"}.get(signal, "达到目标")
        if spec.direction is Direction.lower and signal is Signal.hover:
            words = "略高于目标"
    else:
        assert rule.value is not None
        line = rule.value
        signal = _crossed(row.value, line, spec.direction, rule.margin)
        words = ("低于" if spec.direction is Direction.higher else "高于") + "预警线"
        if signal is not Signal.bad:
            words = "对照预警线"
    return Reading(
        signal,
        row.value,
        line,
        f"{spec.name}{period}为{_number(row.value, spec)}，{words}{_number(line, spec)}",
    )


def consecutive(rule: RuleSpec, spec: IndicatorSpec, rows: Sequence[Evaluated]) -> Reading:
    """``rows``: the region's evaluated values up to and including the period, in order."""
    last = rows[-1]
    period = period_label(last.grain, last.period_start)
    if last.value is None:
        return no_data(spec, period)
    if last.light is None or last.light == Light.no_data.value:
        return Reading(Signal.no_data, last.value, message=f"{spec.name}{period}未设目标")
    bad_lights = set(rule.lights)
    run = 0
    for row in reversed(rows):
        if row.light not in bad_lights:
            break
        run += 1
    if run >= rule.periods:
        signal = Signal.bad
    elif last.light in bad_lights:
        signal = Signal.hover  # bad again, not yet for long enough
    else:
        signal = Signal.clear
    return Reading(
        signal,
        last.value,
        last.expected,
        f"{spec.name}连续{run}期未达目标（{period}为{_number(last.value, spec)}，"
        f"目标{_number(last.expected, spec)}）",
    )


def change(rule: RuleSpec, spec: IndicatorSpec, row: Evaluated) -> Reading:
    period = period_label(row.grain, row.period_start)
    moved = row.yoy if rule.compare == "yoy" else row.pop
    if row.value is None or moved is None:
        return no_data(spec, period)
    assert rule.limit is not None
    # the change in the worse direction, positive when worse
    worse = -moved if spec.direction is Direction.higher else moved
    if worse >= rule.limit:
        signal = Signal.bad
    elif worse >= rule.limit * (1 - rule.margin):
        signal = Signal.hover
    else:
        signal = Signal.clear
    words = "同比" if rule.compare == "yoy" else "环比"
    return Reading(
        signal,
        row.value,
        rule.limit,
        f"{spec.name}{period}{words}{moved:+.1f}%（{_number(row.value, spec)}），"
        f"预警幅度{rule.limit:g}%",
    )


def stale(
    rule: RuleSpec,
    spec: IndicatorSpec,
    *,
    region_last: date | None,
    latest: date | None,
    today: date,
) -> Reading:
    """No report is itself a signal: a region behind the others, or its last period ended
    more than the allowed days ago (September's data is late from mid-November, not from
    mid-October)."""
    days = (
        rule.after_days
        or spec.stale_after_days
        or {"day": 3, "week": 10}.get(spec.frequency.value, 45)
    )
    if region_last is None:
        return Reading(Signal.bad, message=f"{spec.name}从未报送数据")
    if latest is not None and region_last < latest:
        return Reading(
            Signal.bad,
            message=f"{spec.name}最近报送至{region_last:%Y-%m-%d}，落后于其他地区（{latest:%Y-%m-%d}）",
        )
    if period_end(rule.grain, region_last) + timedelta(days=days) < today:
        return Reading(
            Signal.bad,
            message=f"{spec.name}最近报送至{period_label(rule.grain, region_last)}，"
            f"已超过{days}天未更新",
        )
    return Reading(Signal.clear, message=f"{spec.name}数据已报送至{region_last:%Y-%m-%d}")


def anomaly(
    rule: RuleSpec,
    spec: IndicatorSpec,
    row: Evaluated,
    bounds: tuple[float, float, float, float] | None,
) -> Reading:
    """``bounds``: (lo80, hi80, lo95, hi95) of the forecast made before the period."""
    period = period_label(row.grain, row.period_start)
    if row.value is None:
        return no_data(spec, period)
    if bounds is None:
        return Reading(Signal.no_data, row.value, message=f"{spec.name}{period}无此前的预测")
    lo80, hi80, lo95, hi95 = bounds
    low, high = (lo95, hi95) if rule.interval == 95 else (lo80, hi80)
    if row.value < low or row.value > high:
        signal = Signal.bad
    elif lo80 <= row.value <= hi80:
        signal = Signal.clear
    else:
        signal = Signal.hover
    side = "低于" if row.value < low else "高于" if row.value > high else "处于"
    return Reading(
        signal,
        row.value,
        low if row.value < low else high,
        f"{spec.name}{period}为{_number(row.value, spec)}，{side}预测{rule.interval}%区间"
        f"（{_number(low, spec)}～{_number(high, spec)}）",
    )


def forecast_miss(
    rule: RuleSpec,
    spec: IndicatorSpec,
    *,
    projected: float | None,
    target: float | None,
    period: str,
) -> Reading:
    if projected is None:
        return Reading(Signal.no_data, message=f"{spec.name}{period}无预测")
    if target is None:
        return Reading(Signal.no_data, projected, message=f"{spec.name}{period}未设目标")
    band = abs(target) * spec.tolerance
    if spec.direction is Direction.higher:
        signal = (
            Signal.bad
            if projected < target - band
            else Signal.clear
            if projected >= target
            else Signal.hover
        )
    else:
        signal = (
            Signal.bad
            if projected > target + band
            else Signal.clear
            if projected <= target
            else Signal.hover
        )
    return Reading(
        signal,
        projected,
        target,
        f"{spec.name}{period}预计为{_number(projected, spec)}，目标{_number(target, spec)}",
    )
