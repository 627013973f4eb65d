"""Strategic goals: progress and lights computed from indicators, on hand-worked values."""

from __future__ import annotations

from datetime import date

import pytest
import yaml

from shuzhi.brain import queries, service
from shuzhi.brain.goals import expected_at, key_result_light, progress, roll_up
from shuzhi.brain.rules import Direction
from shuzhi.core.db import Database
from shuzhi.core.errors import NotFound, ValidationFailed
from shuzhi.core.permissions import SYSTEM
from tests.brain.data import HANGZHOU, PROVINCE


def test_expected_value_follows_the_line_through_the_milestones() -> None:
    baseline = (date(2024, 12, 31), 4.0)
    milestones = [(date(2025, 12, 31), 4.4), (date(2026, 12, 31), 4.5)]
    assert expected_at(date(2024, 6, 30), baseline=baseline, milestones=milestones) == 4.0
    assert expected_at(date(2025, 7, 2), baseline=baseline, milestones=milestones) == (
        pytest.approx(4.0 + 0.4 * 183 / 365)
    )
    assert expected_at(date(2026, 12, 31), baseline=baseline, milestones=milestones) == 4.5
    assert expected_at(date(2028, 1, 1), baseline=baseline, milestones=milestones) == 4.5


def test_progress_and_lights() -> None:
    assert progress(4.25, 4.0, 4.5, Direction.higher) == pytest.approx(0.5)
    assert progress(1.5, 2.0, 1.0, Direction.lower) == pytest.approx(0.5)  # days falling
    assert progress(5.0, 4.0, 4.5, Direction.higher) == 1.0
    assert progress(3.0, 4.0, 4.5, Direction.higher) == 0.0
    assert progress(None, 4.0, 4.5, Direction.higher) is None
    # a target already behind the baseline: met is done, missed is nothing
    assert progress(4.56, 4.37, 4.0, Direction.higher) == 1.0
    assert progress(3.9, 4.37, 4.0, Direction.higher) == 0.0
    assert progress(20.42, 26.81, 30.0, Direction.lower) == 1.0
    assert key_result_light(4.3, 4.2, Direction.higher, 0.05) == "green"
    assert key_result_light(4.1, 4.2, Direction.higher, 0.05) == "yellow"
    assert key_result_light(3.9, 4.2, Direction.higher, 0.05) == "red"
    assert key_result_light(1.1, 1.0, Direction.lower, 0.05) == "red"
    assert key_result_light(None, 4.2, Direction.higher, 0.05) == "no_data"


def test_a_goal_shows_its_worst_light_and_weighted_progress() -> None:
    assert roll_up([(0.5, "green", 1.0), (1.0, "red", 3.0)]) == (pytest.approx(0.875), "red")
    assert roll_up([(None, "no_data", 1.0), (0.2, "yellow", 1.0)]) == (0.2, "yellow")
    assert roll_up([]) == (None, "no_data")


GOALS = {
    "goals": [
        {
            "code": "test_goal",
            "name": "测试两年目标",
            "starts_on": "2025-01-01",
            "ends_on": "2026-12-31",
            "children": [
                {
                    "code": "test_child",
                    "name": "托位提升",
                    "system": "digital_society",
                    "owner": "zj_wjw",
                    "starts_on": "2025-01-01",
                    "ends_on": "2026-12-31",
                    "key_results": [
                        {"indicator": "places_per_1000", "region": HANGZHOU,
                         "baseline_period": 2024, "baseline": 4.0,
                         "milestones": [{"date": "2025-12-31", "target": 6.0}]},
                    ],
                }
            ],
        }
    ]
}  # fmt: skip


def test_goal_tree_computed_from_the_indicator_and_its_targets(brain_db: Database) -> None:
    service.compute(brain_db, actor=SYSTEM)
    with brain_db.transaction() as session:
        result = service.apply_goals(session, actor=SYSTEM, text=yaml.safe_dump(GOALS),
                                     source="g.yaml")  # fmt: skip
    assert result.created == ["test_goal", "test_child"]
    with brain_db.session() as session:
        tree = queries.goal_tree(session, today=date(2025, 5, 1))
        targets = queries.target_list(session, queries.get(session, "places_per_1000"))
    assert [(t.region_code, t.period, t.value, t.origin) for t in targets] == [
        (HANGZHOU, "2025", 6.0, "goal")
    ]
    root = tree.data[0]
    kr = root.children[0].key_results[0]
    # 杭州 in April 2025: (6 + 10) / 3100 × 1000 = 5.161; expected on 30 April on the line
    # from 4.0 (31 Dec 2024) to 6.0 (31 Dec 2025): 4.0 + 2.0 × 120/365 = 4.658
    assert kr.current_period == "2025-04"
    assert kr.current == pytest.approx(16 / 3100 * 1000)
    assert kr.expected == pytest.approx(4.0 + 2.0 * 120 / 365)
    assert kr.light == "green"
    assert kr.progress == pytest.approx((16 / 3100 * 1000 - 4.0) / 2.0)
    assert root.light == "green" and root.progress == pytest.approx(kr.progress)
    with brain_db.transaction() as session:
        again = service.apply_goals(session, actor=SYSTEM, text=yaml.safe_dump(GOALS),
                                    source="g.yaml")  # fmt: skip
    assert again.unchanged == ["test_goal", "test_child"]


def test_a_goal_dropped_from_the_file_is_removed(brain_db: Database) -> None:
    with brain_db.transaction() as session:
        service.apply_goals(session, actor=SYSTEM, text=yaml.safe_dump(GOALS), source="g.yaml")
    pruned = {"goals": [{**GOALS["goals"][0], "children": []}]}
    with brain_db.transaction() as session:
        service.apply_goals(session, actor=SYSTEM, text=yaml.safe_dump(pruned), source="g.yaml")
    with brain_db.session() as session:
        tree = queries.goal_tree(session)
    assert [node.code for node in tree.data] == ["test_goal"]
    assert tree.data[0].children == [] and tree.data[0].light == "no_data"


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"indicator": "ghost"}, NotFound, "g.yaml: goal test_child: unknown indicator 'ghost'"),
        ({"region": "999999"}, NotFound, "unknown region 999999"),
        ({"baseline_period": "2024-Q1"}, ValidationFailed, "is not a year"),
        ({"milestones": [{"date": "2026-12-31", "target": 1}, {"date": "2025-12-31", "target": 2}]},
         ValidationFailed, "date order"),
    ],
)  # fmt: skip
def test_bad_goals_are_refused_whole(brain_db: Database, change, error, message) -> None:
    child = GOALS["goals"][0]["children"][0]
    broken = {"goals": [{**GOALS["goals"][0], "children": [
        {**child, "key_results": [{**child["key_results"][0], **change}]}]}]}  # fmt: skip
    with pytest.raises(error, match=message), brain_db.transaction() as session:
        service.apply_goals(session, actor=SYSTEM, text=yaml.safe_dump(broken), source="g.yaml")
    with brain_db.session() as session:
        assert queries.goal_tree(session).data == []


def test_province_goal_with_no_values_has_no_data(brain_db: Database) -> None:
    goals = {"goals": [{"code": "empty_goal", "name": "无数据目标", "starts_on": "2025-01-01",
                        "ends_on": "2025-12-31", "key_results": [
                            {"indicator": "never", "region": PROVINCE, "baseline_period": "2024",
                             "milestones": [{"date": "2025-12-31", "target": 1}]}]}]}  # fmt: skip
    with brain_db.transaction() as session:
        service.apply_goals(session, actor=SYSTEM, text=yaml.safe_dump(goals), source="g.yaml")
    with brain_db.session() as session:
        node = queries.goal_tree(session).data[0]
    assert node.light == "no_data" and node.progress is None
    assert node.key_results[0].baseline is None and node.key_results[0].current is None
