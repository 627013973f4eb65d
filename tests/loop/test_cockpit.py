"""The cockpit home's payload on the brain's small province: each system's light is the
worst of its key indicators' lights as the brain's own list gives them, warnings and
problems are counted over the region's subtree, and the drill-down goes from the province
to a city to a county with the same numbers at every level."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import yaml
from sqlalchemy import func, select

from shuzhi.brain import queries as brain_queries
from shuzhi.brain import service as brain
from shuzhi.brain.models import EarlyWarning
from shuzhi.brain.schemas import TargetSet
from shuzhi.core import clock
from shuzhi.core.db import Database
from shuzhi.core.enums import System
from shuzhi.core.errors import NotFound
from shuzhi.core.permissions import SYSTEM, Actor
from shuzhi.lake import queries as lake
from shuzhi.loop import reforms
from shuzhi.loop import service as problems
from shuzhi.loop.cockpit import CockpitOverview, overview, worst
from shuzhi.loop.models import Problem
from shuzhi.loop.schemas import ProblemCreate
from tests.brain.data import GONGSHU, HAISHU, HANGZHOU, NINGBO, PROVINCE, SHANGCHENG
from tests.conftest import World
from tests.support.statements import counting

REFORM = {
    "reforms": [
        {"code": "T-2025-001", "name": "托育服务改革", "system": "digital_society",
         "batch": "implementing", "lead": "zj_wjw", "starts_on": "2025-01-01",
         "ends_on": "2026-12-31",
         "milestones": [{"name": "托育机构备案", "due": "2025-03-31"}]},
    ]
}  # fmt: skip


def furnish(world: World) -> None:
    """Targets for two indicators, a warning that fires in 拱墅区 (its problem raised by
    the hook), two problems reported by hand (one overdue in 上城区, one unassigned in
    海曙区), and one reform in the ledger."""
    db = world.database
    reform = world.actor("reform")
    brain.compute(db, actor=SYSTEM)
    with db.transaction() as session:
        brain.apply_rules(
            session,
            actor=SYSTEM,
            source="r.yaml",
            text=yaml.safe_dump(
                {"rules": [{"code": "on_time_low", "name": "按期办结率低于95%",
                            "kind": "threshold", "indicators": ["on_time_rate"], "value": 95,
                            "pending_for": 1, "recover_for": 1, "severity": "high"}]},
                allow_unicode=True,
            ),
        )  # fmt: skip
        brain.set_targets(
            session,
            actor=SYSTEM,
            entries=[
                TargetSet(indicator="on_time_rate", value=95, periods=["2025"], subtree=PROVINCE),
                TargetSet(indicator="places_per_1000", value=3, periods=["2025"], subtree=PROVINCE),
            ],
        )
    brain.evaluate_warnings(db, actor=SYSTEM, today=date(2025, 5, 10))
    today = clock.now().date()
    with db.transaction() as session:
        problems.report(
            session,
            actor=reform,
            data=ProblemCreate(title="上城区托育机构备案审核超期", channel="inspection",
                               system="digital_society", region=SHANGCHENG, department="hz_wjw",
                               deadline=today - timedelta(days=10)),
        )  # fmt: skip
        problems.report(
            session,
            actor=reform,
            data=ProblemCreate(title="海曙区网格事件超期未办结", channel="audit",
                               system="grassroots", region=HAISHU),
        )  # fmt: skip
        reforms.apply_yaml(
            session, actor=reform, text=yaml.safe_dump(REFORM, allow_unicode=True), source="t"
        )


@pytest.fixture
def world(loop_world: World) -> World:
    furnish(loop_world)
    return loop_world


def view(db: Database, actor: Actor, region: str | None = None) -> CockpitOverview:
    with db.session() as session:
        return overview(session, actor=actor, region=region)


def brain_lights(db: Database, region: str) -> dict[str, list[str]]:
    """The lights the brain's indicator list shows in ``region``, by system (targeted only)."""
    found: dict[str, list[str]] = {}
    with db.session() as session:
        for row in brain_queries.catalogue(session, region=region):
            light = row.latest["light"] if row.latest else None
            if light is not None:
                found.setdefault(row.system, []).append(light)
    return found


def test_worst_light_ignores_no_data_unless_nothing_else() -> None:
    assert worst(["green", "no_data", "yellow"]) == "yellow"
    assert worst(["green", "red", "yellow"]) == "red"
    assert worst(["no_data", "no_data"]) == "no_data"
    assert worst([]) == "no_data"


def test_the_province_has_a_tile_per_system_with_the_brains_lights(world: World) -> None:
    found = view(world.database, world.actor("reform"))

    assert found.region.code == PROVINCE and found.ancestors == []
    assert [tile.system for tile in found.tiles] == [system.value for system in System]
    assert [tile.label for tile in found.tiles][-1] == "基层治理"
    for region in (PROVINCE, HANGZHOU, SHANGCHENG, GONGSHU, HAISHU):
        expected = brain_lights(world.database, region)
        tiles = {tile.system: tile for tile in view(world.database, world.actor("reform"),
                                                    region).tiles}  # fmt: skip
        for system in System:
            lights = expected.get(system.value, [])
            assert tiles[system.value].light == worst(lights), (region, system)
            assert tiles[system.value].key_indicators == len(lights), (region, system)
    society = {tile.system: tile for tile in found.tiles}["digital_society"]
    assert society.key_indicators == 2  # the two indicators with a target
    assert {tile.system: tile.light for tile in found.tiles}["party_building"] == "no_data"


def test_counts_over_the_subtree(world: World) -> None:
    db = world.database
    found = view(db, world.actor("reform"))
    with db.session() as session:
        firing = session.scalar(
            select(func.count(EarlyWarning.id)).where(EarlyWarning.state == "firing")
        )
    assert firing == 1  # 拱墅区: April's 0 of 5 cases on time
    assert found.warnings_firing == 1
    [shown] = found.warnings
    assert shown.warning.region_code == GONGSHU
    with db.session() as session:
        raised = session.scalar(select(Problem).where(Problem.warning_id == shown.warning.id))
        assert raised is not None
        assert shown.problem is not None and shown.problem.code == raised.code

    tiles = {tile.system: tile for tile in found.tiles}
    assert tiles["digital_society"].warnings_firing == 1
    assert (tiles["digital_society"].problems_open, tiles["digital_society"].problems_overdue) == (
        2,
        1,
    )  # the warning's problem and the overdue one in 上城区
    assert (tiles["grassroots"].problems_open, tiles["grassroots"].problems_overdue) == (1, 0)
    total = found.problems.total
    assert (total.total, total.open, total.closed, total.overdue) == (3, 3, 0, 1)
    assert {row.key for row in found.problems.by_channel} == {"warning", "inspection", "audit"}

    assert [batch.count for batch in found.ledger] == [0, 1, 0]  # 启动实施
    assert found.reforms == 1
    with db.session() as session:
        health = lake.report(session, actor=world.actor("reform"))
    assert found.aggregation.overall == health.overall
    assert found.aggregation.counties == 90


def test_drill_down_from_the_province_to_a_county(world: World) -> None:
    db, actor = world.database, world.actor("reform")
    province = view(db, actor)
    cities = {child.region.code: child for child in province.children}
    assert len(cities) == 11
    hangzhou, ningbo = cities[HANGZHOU], cities[NINGBO]
    assert (hangzhou.warnings_firing, hangzhou.problems and hangzhou.problems.total) == (1, 2)
    assert hangzhou.problems is not None and hangzhou.problems.overdue == 1
    assert (ningbo.warnings_firing, ningbo.problems and ningbo.problems.total) == (0, 1)
    assert cities["330300"].problems is None  # 温州市: nothing there
    assert hangzhou.light == worst(
        [light for lights in brain_lights(db, HANGZHOU).values() for light in lights]
    )

    city = view(db, actor, HANGZHOU)
    assert [a.code for a in city.ancestors] == [PROVINCE]
    districts = {child.region.code: child for child in city.children}
    gongshu, shangcheng = districts[GONGSHU], districts[SHANGCHENG]
    assert gongshu.light == "red" and gongshu.red_indicators == 1  # 0% against 95%
    assert shangcheng.light == "green" and shangcheng.red_indicators == 0
    assert (gongshu.warnings_firing, gongshu.problems and gongshu.problems.total) == (1, 1)
    assert city.problems.total.total == 2

    county = view(db, actor, GONGSHU)
    assert [a.code for a in county.ancestors] == [PROVINCE, HANGZHOU]
    assert county.children == []
    assert county.warnings_firing == 1 and len(county.warnings) == 1
    assert county.problems.total.total == 1
    society = {tile.system: tile for tile in county.tiles}["digital_society"]
    assert (society.light, society.lights["red"], society.lights["green"]) == ("red", 1, 1)


def test_key_indicators_carry_their_trend(world: World) -> None:
    found = view(world.database, world.actor("reform"), SHANGCHENG)
    by_code = {item.code: item for item in found.indicators}
    assert set(by_code) == {"on_time_rate", "places_per_1000"}
    on_time = by_code["on_time_rate"]
    # 上城区: 9/10, 18/20, 27/30, 40/40 cases on time
    assert [point.period for point in on_time.trend] == ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert [round(point.value or 0, 2) for point in on_time.trend] == [90, 90, 90, 100]
    assert (on_time.period, on_time.value, on_time.target, on_time.light) == (
        "2025-04",
        100,
        95,
        "green",
    )


def test_an_unknown_region_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        view(world.database, world.actor("reform"), "339999")


def test_the_payload_reads_as_many_statements_for_more_problems(world: World) -> None:
    db, actor = world.database, world.actor("reform")
    with db.session() as session, counting(db) as before:
        overview(session, actor=actor)
    with db.transaction() as session:
        for number, region in enumerate((SHANGCHENG, GONGSHU, HAISHU, HANGZHOU, NINGBO) * 3):
            problems.report(
                session,
                actor=world.actor("reform"),
                data=ProblemCreate(title=f"问题{number}", channel="petition",
                                   system="grassroots", region=region, department="hz_wjw"),
            )  # fmt: skip
    with db.session() as session, counting(db) as after:
        found = overview(session, actor=actor)
    assert found.problems.total.total == 3 + 15
    assert len(after) == len(before)
