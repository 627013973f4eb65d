"""Early warnings: the state machine step by step, each rule's reading, and whole
evaluations over the small province, with the events they emit."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pytest
import yaml

from shuzhi.brain import queries, service, signals
from shuzhi.brain.evaluation import Evaluated
from shuzhi.brain.models import EarlyWarning, WarningEvent
from shuzhi.brain.rules import Signal, step
from shuzhi.brain.schemas import IndicatorSpec, RuleSpec
from shuzhi.core import events
from shuzhi.core.db import Database
from shuzhi.core.errors import InvalidTransition, NotFound, ValidationFailed
from shuzhi.core.permissions import SYSTEM
from tests.brain.data import GONGSHU, HAISHU, SHANGCHENG, write
from tests.conftest import resource_doc
from tests.lake.data import ingest, publish

B, H, C, N = Signal.bad, Signal.hover, Signal.clear, Signal.no_data


def walk(signals_: list[Signal], *, pending_for: int = 1, recover_for: int = 2) -> list[str]:
    state, bad, good = "normal", 0, 0
    states = []
    targets = {"pend": "pending", "fire": "firing", "recover": "recovering", "clear": "normal",
               "lose_data": "no_data", "fail": "error"}  # fmt: skip
    for signal in signals_:
        names, bad, good = step(state, bad, good, signal, pending_for=pending_for,
                                recover_for=recover_for)  # fmt: skip
        for name in names:
            state = targets[name]
        states.append(state)
    return states


def test_step_goes_normal_pending_firing_recovering_normal() -> None:
    assert walk([B, B, B, C, C], pending_for=2) == [
        "pending", "firing", "firing", "recovering", "normal",
    ]  # fmt: skip
    assert walk([B, C]) == ["firing", "recovering"]
    assert walk([B, C], recover_for=1) == ["firing", "normal"]


def test_a_value_hovering_at_the_line_does_not_flap() -> None:
    # bad, then inside the band: it stays firing; back in the band while recovering: it
    # neither recovers further nor fires again
    assert walk([B, H, H, B, H]) == ["firing"] * 5
    assert walk([B, C, H, C]) == ["firing", "recovering", "recovering", "normal"]
    assert walk([B, C, B]) == ["firing", "recovering", "firing"]


def test_pending_that_is_no_longer_bad_returns_to_normal() -> None:
    assert walk([B, H], pending_for=3) == ["pending", "normal"]
    assert walk([B, B, C, B, B, B], pending_for=3) == [
        "pending", "pending", "normal", "pending", "pending", "firing",
    ]  # fmt: skip


def test_no_data_and_errors_are_states_of_their_own() -> None:
    assert walk([N, N, B, N, C]) == ["no_data", "no_data", "firing", "no_data", "normal"]
    names, _, _ = step("firing", 3, 0, Signal.error, pending_for=1, recover_for=2)
    assert names == ["fail"]


# -- readings -------------------------------------------------------------------------------


def indicator(**changes: object) -> IndicatorSpec:
    base = {"code": "rate", "name": "办结率", "system": "grassroots", "owner": "zj_gat",
            "source": "x", "time": "t", "unit": "%", "measure": {"kind": "count"}}  # fmt: skip
    return IndicatorSpec.model_validate({**base, **changes})


def rule(**changes: object) -> RuleSpec:
    base = {"code": "r1", "name": "规则", "kind": "threshold", "indicators": ["rate"], "value": 90}
    return RuleSpec.model_validate({**base, **changes})


def evaluated(value: float | None, **changes: object) -> Evaluated:
    base = dict(region_code=SHANGCHENG, grain="month", period_start=date(2025, 3, 1),
                value=value, target=None, expected=None, light=None, complete=True, yoy=None,
                yoy_delta=None, pop=None, pop_delta=None, rank=None, siblings=0)  # fmt: skip
    return Evaluated(**{**base, **changes})


@pytest.mark.parametrize(
    ("value", "direction", "signal"),
    [
        (89.9, "higher", Signal.bad),
        (90.0, "higher", Signal.hover),  # at the line: no longer bad, not yet clear
        (91.79, "higher", Signal.hover),  # 90 + 2% = 91.8
        (91.8, "higher", Signal.clear),
        (90.1, "lower", Signal.bad),
        (88.2, "lower", Signal.clear),
        (None, "higher", Signal.no_data),
    ],
)
def test_fixed_threshold_with_hysteresis(value, direction, signal) -> None:
    reading = signals.threshold(rule(), indicator(direction=direction), evaluated(value))
    assert reading.signal is signal
    if value is not None:
        assert reading.line == 90 and "2025-03" in reading.message


def test_threshold_against_the_target_uses_the_lights() -> None:
    against = rule(value=None, against="target")
    spec = indicator()
    assert signals.threshold(against, spec, evaluated(80, expected=90, light="red")).signal is B
    assert signals.threshold(against, spec, evaluated(88, expected=90, light="yellow")).signal is H
    assert signals.threshold(against, spec, evaluated(91, expected=90, light="green")).signal is C
    assert signals.threshold(against, spec, evaluated(91)).signal is N  # no target


def test_consecutive_bad_periods() -> None:
    three = rule(kind="consecutive", value=None, periods=3)
    spec = indicator()
    lights = ["red", "green", "red", "red", "red"]
    rows = [
        evaluated(1, light=light, expected=2, period_start=date(2025, month, 1))
        for month, light in zip(range(1, 6), lights, strict=True)
    ]
    assert signals.consecutive(three, spec, rows[:4]).signal is H  # two in a row
    reading = signals.consecutive(three, spec, rows)
    assert reading.signal is B and "连续3期" in reading.message
    assert signals.consecutive(three, spec, rows[:2]).signal is C


@pytest.mark.parametrize(
    ("yoy", "direction", "signal"),
    [(-12.0, "higher", Signal.bad), (-9.0, "higher", Signal.hover), (-5.0, "higher", Signal.clear),
     (12.0, "higher", Signal.clear), (12.0, "lower", Signal.bad)],
)  # fmt: skip
def test_change_beyond_a_limit_in_the_worse_direction(yoy, direction, signal) -> None:
    limit = rule(kind="change", value=None, limit=10, margin=0.2)
    reading = signals.change(limit, indicator(direction=direction), evaluated(50, yoy=yoy))
    assert reading.signal is signal


def test_anomaly_against_the_interval_forecast_before_the_period() -> None:
    check = rule(kind="anomaly", value=None)
    spec = indicator()
    bounds = (95.0, 105.0, 90.0, 110.0)
    assert signals.anomaly(check, spec, evaluated(111), bounds).signal is B
    assert signals.anomaly(check, spec, evaluated(107), bounds).signal is H
    assert signals.anomaly(check, spec, evaluated(100), bounds).signal is C
    assert signals.anomaly(check, spec, evaluated(100), None).signal is N


def test_forecast_missing_the_target() -> None:
    check = rule(kind="forecast_miss", value=None)
    spec = indicator(tolerance=0.05)
    kwargs = {"target": 100.0, "period": "2025年"}
    assert signals.forecast_miss(check, spec, projected=94, **kwargs).signal is B
    assert signals.forecast_miss(check, spec, projected=97, **kwargs).signal is H
    assert signals.forecast_miss(check, spec, projected=101, **kwargs).signal is C


def test_rule_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="either value or against"):
        rule(value=None)
    with pytest.raises(ValueError, match="needs a limit"):
        rule(kind="change", value=None)


# -- whole evaluations -------------------------------------------------------------------------


RULES = {
    "rules": [
        {"code": "on_time_low", "name": "按期办结率低于95%", "kind": "threshold",
         "indicators": ["on_time_rate"], "value": 95, "pending_for": 2, "severity": "high"},
        {"code": "population_stale", "name": "常住人口未报送", "kind": "stale",
         "indicators": ["population"]},
    ]
}  # fmt: skip


@pytest.fixture
def watched(brain_db: Database) -> Database:
    service.compute(brain_db, actor=SYSTEM)
    with brain_db.transaction() as session:
        service.apply_rules(session, actor=SYSTEM, text=yaml.safe_dump(RULES), source="r.yaml")
    return brain_db


def story(db: Database, rule_code: str, region: str) -> tuple[str, list[tuple[str, str, str]]]:
    with db.session() as session:
        found = [
            w for w in session.query(EarlyWarning).all()
            if w.rule.code == rule_code and w.region_code == region
        ]  # fmt: skip
        assert len(found) == 1
        warning = found[0]
        rows = (
            session.query(WarningEvent)
            .filter(WarningEvent.warning_id == warning.id)
            .order_by(WarningEvent.id)
            .all()
        )
        return warning.state, [(r.from_state, r.to_state, f"{r.period_start:%Y-%m}") for r in rows]


def test_a_whole_evaluation_tells_each_warnings_story(watched: Database) -> None:
    heard: list[dict] = []

    def listen(name: str, payload: dict) -> None:
        heard.append(payload)

    events.subscribe("brain.warning", listen)
    try:
        summary = service.evaluate_warnings(watched, actor=SYSTEM, today=date(2025, 5, 10))
    finally:
        events.unsubscribe("brain.warning", listen)
    # 上城: 90, 90, 90, then 100 (clear of 95 × 1.02): pending, firing, recovering
    assert story(watched, "on_time_low", SHANGCHENG) == ("recovering", [
        ("normal", "pending", "2025-01"), ("pending", "firing", "2025-02"),
        ("firing", "recovering", "2025-04"),
    ])  # fmt: skip
    # 拱墅: 100, 80, 100, 0: a pending warning that clears is never fired
    assert story(watched, "on_time_low", GONGSHU) == ("pending", [
        ("normal", "pending", "2025-02"), ("pending", "normal", "2025-03"),
        ("normal", "pending", "2025-04"),
    ])  # fmt: skip
    # 海曙 has no case at all: no value, no data
    assert story(watched, "on_time_low", HAISHU)[0] == "no_data"
    # 海曙's April population is missing: it is behind the others
    state, history = story(watched, "population_stale", HAISHU)
    assert state == "firing" and history[-1][1] == "firing"
    assert story(watched, "population_stale", SHANGCHENG)[0] == "normal"
    fired = [p for p in heard if p["rule"] == "on_time_low" and p["to_state"] == "firing"]
    assert [(p["region"], p["period"], p["value"], p["line"]) for p in fired] == [
        (SHANGCHENG, "2025-02-01", 90.0, 95.0)
    ]
    assert "低于预警线" in fired[0]["message"]
    assert summary.transitions == len(heard) and summary.firing >= 2
    # evaluating again with nothing new changes nothing
    again = service.evaluate_warnings(watched, actor=SYSTEM, today=date(2025, 5, 10))
    assert again.transitions == 0


def test_warning_states_change_only_through_the_machine(watched: Database) -> None:
    service.evaluate_warnings(watched, actor=SYSTEM, today=date(2025, 5, 10))
    with watched.session() as session:
        warning = session.query(EarlyWarning).first()
        assert warning is not None
        with pytest.raises(InvalidTransition):
            warning.state = "normal" if warning.state != "normal" else "firing"


def test_a_changed_rule_starts_its_warnings_afresh(watched: Database) -> None:
    service.evaluate_warnings(watched, actor=SYSTEM, today=date(2025, 5, 10))
    changed = {"rules": [{**RULES["rules"][0], "value": 80}]}
    with watched.transaction() as session:
        result = service.apply_rules(session, actor=SYSTEM, text=yaml.safe_dump(changed),
                                     source="r.yaml")  # fmt: skip
    assert result.updated == ["on_time_low"]
    service.evaluate_warnings(watched, actor=SYSTEM, today=date(2025, 5, 10))
    # under 80, 上城's 90s are fine; 拱墅's 0 in April is pending (pending_for 2)
    assert story(watched, "on_time_low", SHANGCHENG)[0] == "normal"
    assert story(watched, "on_time_low", GONGSHU) == ("pending", [
        ("normal", "pending", "2025-04"),
    ])  # fmt: skip


def test_rules_naming_unknown_indicators_are_refused(brain_db: Database) -> None:
    bad = {"rules": [{"code": "x1", "name": "未知", "kind": "stale", "indicators": ["ghost"]}]}
    with (
        pytest.raises(NotFound, match=r"r\.yaml: rule x1: unknown indicator 'ghost'"),
        brain_db.transaction() as session,
    ):
        service.apply_rules(session, actor=SYSTEM, text=yaml.safe_dump(bad), source="r.yaml")
    with pytest.raises(ValidationFailed, match="rule y1: kind"):
        service.parse_rules("rules: [{code: y1, name: 规则, kind: psychic, indicators: [x]}]",
                            source="r.yaml")  # fmt: skip


# -- forecasts and the rules that read them ------------------------------------------------------

LONG = "test_long_monthly"


def seasonal(month_index: int) -> float:
    return 100 + 0.5 * month_index + 8 * math.sin(2 * math.pi * month_index / 12)


@pytest.fixture
def long_series(brain_db: Database, tmp_path: Path) -> Database:
    """40 months of a smooth seasonal series in 上城, its last month far out of line."""
    publish(brain_db, resource_doc(code=LONG, name="长序列测试资源", fields=[
        {"name": "region_code", "title": "区划", "type": "string", "primary_key": True},
        {"name": "month", "title": "月份", "type": "date", "primary_key": True},
        {"name": "value", "title": "数值", "type": "decimal", "nullable": False},
    ]))  # fmt: skip
    rows = []
    for index in range(40):
        year, month = divmod(index, 12)
        value = seasonal(index) if index < 39 else seasonal(index) + 60
        rows.append([SHANGCHENG, f"{2022 + year}-{month + 1:02d}-01", round(value, 3)])
    ingest(brain_db, write(tmp_path / "long.csv", ["region_code", "month", "value"], rows),
           code=LONG)  # fmt: skip
    spec = {"code": "long_value", "name": "长序列指标", "system": "grassroots", "owner": "zj_gat",
            "source": LONG, "time": "month", "measure": {"kind": "sum", "field": "value"},
            "additivity": "semi_additive", "grains": ["month", "year"]}  # fmt: skip
    with brain_db.transaction() as session:
        service.apply(session, actor=SYSTEM, text=yaml.safe_dump({"indicators": [spec]}),
                      source="long.yaml")  # fmt: skip
    service.compute(brain_db, actor=SYSTEM)
    return brain_db


def test_forecasts_are_stored_with_model_error_and_nested_intervals(long_series: Database) -> None:
    summary = service.forecast(long_series, actor=SYSTEM, indicators=["long_value", "cases"],
                               origins=2, horizon=6)  # fmt: skip
    # long_value: 上城, 杭州市 and the province, from two origins; cases: 4 months, too short
    assert summary.forecast == 6
    assert summary.too_short > 0
    rows = queries.forecast_rows(indicator="long_value", region=SHANGCHENG)
    origins = sorted({row["origin"] for row in rows})
    assert origins == [date(2025, 3, 1), date(2025, 4, 1)]
    latest = [row for row in rows if row["origin"] == origins[-1]]
    assert [row["step"] for row in latest] == [1, 2, 3, 4, 5, 6]
    assert latest[0]["period_start"] == date(2025, 5, 1)
    for row in latest:
        assert row["lo95"] <= row["lo80"] <= row["mean"] <= row["hi80"] <= row["hi95"]
        assert row["model"] and row["mase"] is not None
    short = queries.forecast_rows(indicator="cases", region=SHANGCHENG)
    assert short and short[0]["reason"] and short[0]["mean"] is None


def test_anomaly_and_forecast_miss_rules_read_the_forecasts(long_series: Database) -> None:
    service.forecast(long_series, actor=SYSTEM, indicators=["long_value"], origins=2, horizon=12)
    with long_series.transaction() as session:
        service.set_targets(session, actor=SYSTEM, entries=[
            service.TargetSet(indicator="long_value", value=200, grain="year", periods=["2025"],
                              regions=[SHANGCHENG])])  # fmt: skip
        text = yaml.safe_dump({"rules": [
            {"code": "odd", "name": "异常波动", "kind": "anomaly", "indicators": ["long_value"]},
            {"code": "miss", "name": "预计难以达标", "kind": "forecast_miss",
             "indicators": ["long_value"]},
        ]})  # fmt: skip
        service.apply_rules(session, actor=SYSTEM, text=text, source="r.yaml")
    service.evaluate_warnings(long_series, actor=SYSTEM, today=date(2025, 5, 10))
    # April 2025 is 60 above a smooth series: outside what was forecast from March
    state, history = story(long_series, "odd", SHANGCHENG)
    assert state == "firing" and history[-1][2] == "2025-04"
    # the year heads for about 110 (its December), far below 200
    assert story(long_series, "miss", SHANGCHENG)[0] == "firing"


def test_a_rule_that_cannot_be_evaluated_is_in_error_and_the_others_go_on(
    watched: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> signals.Reading:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(signals, "stale", broken)
    service.evaluate_warnings(watched, actor=SYSTEM, today=date(2025, 5, 10))
    state, history = story(watched, "population_stale", HAISHU)
    assert state == "error" and history[-1][:2] == ("normal", "error")
    with watched.session() as session:
        found = [w for w in session.query(EarlyWarning).all() if w.rule.code == "population_stale"]
        assert "ZeroDivisionError" in found[0].message
    assert story(watched, "on_time_low", SHANGCHENG)[0] == "recovering"
