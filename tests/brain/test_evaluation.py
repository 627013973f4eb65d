"""Evaluation: lights, changes and ranks, on values worked out by hand; and targets
entered, imported from YAML and from Excel."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
import yaml
from openpyxl import Workbook

from shuzhi.brain import queries, service
from shuzhi.brain.evaluation import covered_share, evaluate, light
from shuzhi.brain.rules import Direction, Grain
from shuzhi.brain.schemas import IndicatorSpec, TargetSet
from shuzhi.core.db import Database
from shuzhi.core.errors import NotFound, PermissionDenied, ValidationFailed
from shuzhi.core.permissions import SYSTEM
from tests.brain.data import GONGSHU, HAISHU, HANGZHOU, NINGBO, PROVINCE, SHANGCHENG
from tests.conftest import World

PARENTS = {
    PROVINCE: None, HANGZHOU: PROVINCE, NINGBO: PROVINCE,
    SHANGCHENG: HANGZHOU, GONGSHU: HANGZHOU, HAISHU: NINGBO,
}  # fmt: skip


def spec(**changes: object) -> IndicatorSpec:
    base = {
        "code": "rate", "name": "测试比率", "system": "grassroots", "owner": "zj_gat",
        "source": "x", "time": "t", "measure": {"kind": "ratio",
        "numerator": {"agg": "count"}, "denominator": {"agg": "count"}},
    }  # fmt: skip
    return IndicatorSpec.model_validate({**base, **changes})


def row(region: str, grain: str, start: date, value: float | None, last: date | None = None):
    return {"region_code": region, "grain": grain, "period_start": start, "value": value,
            "last_time": last or start}  # fmt: skip


@pytest.mark.parametrize(
    ("value", "target", "direction", "expected"),
    [
        (4.5, 4.5, Direction.higher, "green"),
        (4.3, 4.5, Direction.higher, "yellow"),  # within 5% of 4.5 (4.275)
        (4.27, 4.5, Direction.higher, "red"),
        (30.0, 30.0, Direction.lower, "green"),
        (31.5, 30.0, Direction.lower, "yellow"),  # 30 + 1.5
        (31.6, 30.0, Direction.lower, "red"),
        (None, 30.0, Direction.lower, "no_data"),
        (12.0, None, Direction.higher, None),
    ],
)
def test_light(value, target, direction, expected) -> None:
    assert light(value, target, direction, 0.05) == expected


def test_changes_ranks_and_inherited_targets() -> None:
    months = [date(2024, 3, 1), date(2025, 2, 1), date(2025, 3, 1)]
    rows = [
        row(SHANGCHENG, "month", months[0], 4.0),
        row(SHANGCHENG, "month", months[1], 4.4),
        row(SHANGCHENG, "month", months[2], 4.6),
        row(GONGSHU, "month", months[2], 4.6),
        row(HAISHU, "month", months[2], 3.0),
        row(HANGZHOU, "month", months[2], None),
    ]
    targets = {
        (SHANGCHENG, "year", date(2025, 1, 1)): 4.5,
        (GONGSHU, "quarter", date(2025, 1, 1)): 5.0,
    }
    found = {
        (item.region_code, item.period_start): item
        for item in evaluate(spec(), rows, targets=targets, parents=PARENTS)
    }
    march = found[(SHANGCHENG, months[2])]
    assert march.target == 4.5  # the year's, for a ratio
    assert march.light == "green"
    assert march.yoy == pytest.approx(15.0)  # 4.6 against 4.0
    assert march.yoy_delta == pytest.approx(0.6)
    assert march.pop == pytest.approx(100 * 0.2 / 4.4)
    # 上城 and 拱墅 tie at 4.6 among 杭州's counties; 海曙 is alone in 宁波
    assert (march.rank, march.siblings) == (1, 2)
    assert (found[(GONGSHU, months[2])].rank, found[(GONGSHU, months[2])].siblings) == (1, 2)
    assert found[(GONGSHU, months[2])].target == 5.0  # the quarter's, nearer than a year's
    assert found[(GONGSHU, months[2])].light == "red"  # 4.6 < 4.75
    assert found[(HAISHU, months[2])].rank == 1
    assert found[(HAISHU, months[2])].light is None  # no target
    assert found[(HANGZHOU, months[2])].light == "no_data"
    assert found[(HANGZHOU, months[2])].rank is None
    assert found[(SHANGCHENG, months[0])].yoy is None


def test_lower_is_better_ranks_ascending() -> None:
    start = date(2025, 1, 1)
    rows = [row(SHANGCHENG, "month", start, 30.0), row(GONGSHU, "month", start, 20.0)]
    found = {i.region_code: i.rank for i in evaluate(spec(direction="lower"), rows,
                                                      targets={}, parents=PARENTS)}  # fmt: skip
    assert found == {SHANGCHENG: 2, GONGSHU: 1}


def test_additive_values_are_held_to_their_share_of_the_target_until_the_period_is_over() -> None:
    additive = spec(measure={"kind": "count"})
    year = date(2025, 1, 1)
    rows = [row(SHANGCHENG, "year", year, 80.0), row(SHANGCHENG, "month", date(2025, 9, 1), 9.0)]
    targets = {(SHANGCHENG, "year", year): 100.0}
    through_september = date(2025, 9, 1)
    found = {
        i.grain: i
        for i in evaluate(
            additive, rows, targets=targets, parents=PARENTS, last_time=through_september
        )
    }
    assert found["year"].complete is False
    assert found["year"].expected == pytest.approx(75.0)  # 9 of 12 months
    assert found["year"].light == "green"  # 80 ahead of 75
    # a month of an additive indicator is never held to the year's target
    assert found["month"].target is None and found["month"].light is None


@pytest.mark.parametrize(
    ("grain", "start", "last", "share"),
    [
        (Grain.year, date(2025, 1, 1), date(2025, 9, 1), 0.75),
        (Grain.quarter, date(2025, 7, 1), date(2025, 8, 1), 2 / 3),
        (Grain.year, date(2024, 1, 1), date(2025, 9, 1), 1.0),
        (Grain.week, date(2025, 1, 6), date(2025, 1, 8), 3 / 7),
    ],
)
def test_covered_share(grain: Grain, start: date, last: date, share: float) -> None:
    assert covered_share(grain, start, last) == pytest.approx(share)


# -- targets through the service ------------------------------------------------------------


def test_targets_for_a_subtree_and_evaluation_of_computed_values(brain_db: Database) -> None:
    service.compute(brain_db, actor=SYSTEM)
    entry = TargetSet(indicator="places_per_1000", value=4.5, grain="year", periods=["2025"],
                      subtree=HANGZHOU)  # fmt: skip
    with brain_db.transaction() as session:
        result = service.set_targets(session, actor=SYSTEM, entries=[entry])
    assert (result.created, result.updated) == (14, 0)  # 杭州市 and its 13 districts and counties
    with brain_db.transaction() as session:
        again = service.set_targets(session, actor=SYSTEM, entries=[entry])
    assert again.written == 0
    with brain_db.session() as session:
        indicator = queries.get(session, "places_per_1000")
        evaluated = queries.evaluation(session, indicator, grain="quarter", children_of=HANGZHOU)
    q1 = {r.region_code: r for r in evaluated.data if r.period == "2025-Q1"}
    # 上城 5/1100*1000 = 4.545 ≥ 4.5; 拱墅 10/2000*1000 = 5.0
    assert q1[SHANGCHENG].light == "green" and q1[GONGSHU].light == "green"
    assert (q1[SHANGCHENG].rank, q1[GONGSHU].rank) == (2, 1)
    assert set(q1) == {SHANGCHENG, GONGSHU}


def test_targets_yaml_errors_name_the_entry(brain_db: Database) -> None:
    text = yaml.safe_dump({"targets": [
        {"indicator": "cases", "value": 10, "grain": "month", "periods": ["2025-01"],
         "regions": [SHANGCHENG]},
        {"indicator": "cases", "value": 10, "grain": "month", "periods": ["2025-13"],
         "regions": [SHANGCHENG]},
    ]})  # fmt: skip
    entries = service.parse_targets(text, source="t.yaml")
    with (
        pytest.raises(ValidationFailed, match=r"t.yaml: target #2: period '2025-13'"),
        brain_db.transaction() as session,
    ):
        service.set_targets(session, actor=SYSTEM, entries=entries, where="t.yaml")
    with brain_db.session() as session:
        assert queries.target_list(session, queries.get(session, "cases")) == []
    bad = "targets: [{indicator: cases, value: many, regions: [x], periods: ['2025']}]"
    with pytest.raises(ValidationFailed, match="target #1: value"):
        service.parse_targets(bad, source="t.yaml")
    entry = TargetSet(indicator="cases", value=1, periods=["2025"], regions=["999999"])
    with (
        pytest.raises(NotFound, match="unknown region 999999"),
        brain_db.transaction() as session,
    ):
        service.set_targets(session, actor=SYSTEM, entries=[entry])


def test_targets_need_the_owner_department(brain_world: World) -> None:
    # a viewer reads indicators but sets no target
    entry = TargetSet(indicator="events", value=1, grain="month", periods=["2025-01"],
                      regions=[PROVINCE])  # fmt: skip
    with pytest.raises(PermissionDenied), brain_world.database.transaction() as session:
        service.set_targets(session, actor=brain_world.actor("viewer"), entries=[entry])


def workbook(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["指标代码", "行政区划代码", "周期类型", "期间", "目标值", "备注"])
    for item in rows:
        sheet.append(item)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_targets_workbook_reports_every_bad_row_and_imports_nothing(tmp_path: Path) -> None:
    data = workbook([
        ["cases", SHANGCHENG, "年", 2025, 100, "全年"],
        ["cases", SHANGCHENG, "月", date(2025, 3, 1), 10, ""],
        ["cases", SHANGCHENG, "年", 2025, "很多", ""],
        ["cases", None, "季", "2025-Q1", 5, ""],
    ])  # fmt: skip
    with pytest.raises(ValidationFailed) as caught:
        service.parse_targets_workbook(data, source="目标.xlsx")
    message = caught.value.detail
    assert "row 4 目标值" in message and "row 5 行政区划代码" in message
    good = service.parse_targets_workbook(workbook([
        ["cases", SHANGCHENG, "年", 2025, 100, "全年"],
        ["cases", SHANGCHENG, "月", date(2025, 3, 1), 10, ""],
    ]), source="目标.xlsx")  # fmt: skip
    assert [(e.grain.value, e.periods, e.value) for e in good] == [
        ("year", ["2025"], 100.0),
        ("month", ["2025-03"], 10.0),
    ]
    with pytest.raises(ValidationFailed, match="not an XLSX workbook"):
        service.parse_targets_workbook(b"not a workbook", source="x.xlsx")
