"""The ledger of major reforms: progress and lights worked out by hand, idempotent apply,
batch history, the ledger at a past date, milestone guards, permissions and bad input.

Values come from the brain's small province (tests/brain/data.py). In 杭州 (330100):

- places_per_1000 (a stock, higher is better, tolerance 5%): January (4 + 10) / (1000 +
  2000) × 1000 = 4.6667, April (6 + 10) / (1100 + 2000) × 1000 = 5.1613.
- on_time_rate (higher is better, tolerance 5%): April (40 + 0) / (40 + 5) × 100 = 88.889.

The clock stands at noon in Hangzhou on Tuesday 10 June 2025 unless a test moves it; with
``loop.warn_days`` 3, a milestone due Thursday 12 June (two working days on) is 黄.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import yaml
from sqlalchemy import event, func, select

from shuzhi.brain import service as brain
from shuzhi.core import clock
from shuzhi.core.db import Database
from shuzhi.core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from shuzhi.core.models import ChangeLog
from shuzhi.core.permissions import SYSTEM, Actor
from shuzhi.loop import ledger, reforms
from shuzhi.loop import service as problems
from shuzhi.loop.models import Reform, ReformVersion
from shuzhi.loop.schemas import MilestoneAction, ProblemCreate, ReformSpec
from shuzhi.notify.models import Notification
from shuzhi.orgs import queries as orgs
from tests.brain.data import GONGSHU, HANGZHOU, NINGBO, PROVINCE, SHANGCHENG
from tests.conftest import World, add_user

NOON = datetime(2025, 6, 10, 4, 0, tzinfo=UTC)  # 12:00 in Hangzhou

JAN_PLACES = 14 / 3000 * 1000
APR_PLACES = 16 / 3100 * 1000
APR_ON_TIME = 40 / 45 * 100


@pytest.fixture
def at() -> Iterator[Callable[[datetime], None]]:
    """Move the clock; it starts at NOON and is restored after the test."""

    def move(moment: datetime) -> None:
        clock.set_clock(lambda: moment)

    move(NOON)
    yield move
    clock.set_clock(None)


@pytest.fixture
def computed(loop_db: Database) -> Database:
    brain.compute(loop_db, actor=SYSTEM)
    return loop_db


def spec(code: str = "RF-01", **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": f"测试改革{code}",
        "system": "digital_society",
        "batch": "implementing",
        "lead": "hz_wjw",
        "region": HANGZHOU,
        "starts_on": "2025-01-01",
        "ends_on": "2025-12-31",
        **extra,
    }


MILESTONES = [
    {"name": "方案印发", "due": "2025-03-31", "weight": 1},
    {"name": "系统上线", "due": "2025-06-12", "weight": 2},
    {"name": "全面推广", "due": "2025-09-30", "weight": 1},
]
PLACES = {
    "indicator": "places_per_1000",
    "region": HANGZHOU,
    "baseline_on": "2025-01-31",
    "target": 6.0,
    "target_on": "2025-12-31",
}
ON_TIME = {
    "indicator": "on_time_rate",
    "region": HANGZHOU,
    "baseline_on": "2024-12-31",
    "baseline": 90,
    "target": 100,
    "target_on": "2025-06-30",
    "weight": 3,
}
NEVER = {
    "indicator": "never",
    "region": PROVINCE,
    "baseline_on": "2024-12-31",
    "target": 1,
    "target_on": "2025-12-31",
    "weight": 5,
}


def apply(db: Database, actor: Actor, *specs: dict[str, Any], source: str = "reforms.yaml"):
    with db.transaction() as session:
        return reforms.apply_specs(
            session,
            actor=actor,
            specs=[ReformSpec.model_validate(item) for item in specs],
            source=source,
        )


def page(db: Database, code: str = "RF-01"):
    with db.session() as session:
        return ledger.reform_page(session, code)


def milestone_id(db: Database, name: str, code: str = "RF-01") -> int:
    return next(m.id for m in page(db, code).milestones if m.name == name)


def act(db: Database, actor: Actor, name: str, transition: str, **extra: Any) -> None:
    with db.transaction() as session:
        reforms.milestone_act(
            session,
            actor=actor,
            code="RF-01",
            milestone_id=milestone_id(db, name),
            action=MilestoneAction(transition=transition, **extra),
        )


def evidence(db: Database, actor: Actor, name: str, content: bytes = b"minutes") -> int:
    with db.transaction() as session:
        return reforms.add_milestone_evidence(
            session,
            actor=actor,
            code="RF-01",
            milestone_id=milestone_id(db, name),
            filename="会议纪要.pdf",
            content=content,
            content_type="application/pdf",
        ).id


def versions(db: Database, code: str = "RF-01") -> list[tuple[int, str]]:
    with db.session() as session:
        reform = ledger.get(session, code)
        return [(v.version, v.kind) for v in ledger.versions(session, reform)][::-1]


def count(db: Database, model: Any) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


# -- progress and lights ----------------------------------------------------------------


def test_milestones_alone_give_the_verified_share_and_the_worst_light(
    loop_world: World, at: Callable[[datetime], None]
) -> None:
    db, people = loop_world.database, loop_world.actors
    apply(db, people["reform"], spec(milestones=MILESTONES))
    fresh = page(db)
    assert [(m.name, m.state, m.light) for m in fresh.milestones] == [
        ("方案印发", "planned", "red"),  # due 31 March, not done
        ("系统上线", "planned", "yellow"),  # due in two working days
        ("全面推广", "planned", "green"),
    ]
    assert fresh.reform.progress == 0.0 and fresh.reform.light == "red"

    evidence(db, people["hz_wjw_officer"], "方案印发")
    act(db, people["hz_wjw_officer"], "方案印发", "submit")
    act(db, people["reform"], "方案印发", "verify")
    done = page(db)
    first = done.milestones[0]
    assert (first.state, first.light, first.evidence_count) == ("verified", "green", 1)
    assert first.done_at is not None
    # 1 of the weights 1 + 2 + 1 is verified; the worst open light is 系统上线's 黄
    assert done.reform.progress == pytest.approx(1 / 4)
    assert done.reform.light == "yellow"
    assert (done.reform.milestones_done, done.reform.milestones_total) == (1, 3)

    # an added milestone already past its due date turns the reform red
    overdue = {"name": "中期评估", "due": "2025-06-01", "weight": 1}
    assert apply(db, people["reform"], spec(milestones=[*MILESTONES, overdue])).updated == 1
    late = page(db)
    assert {m.name: m.light for m in late.milestones}["中期评估"] == "red"
    assert late.reform.progress == pytest.approx(1 / 5) and late.reform.light == "red"


def test_key_results_alone_read_the_brain(computed: Database, loop_world: World, at) -> None:
    apply(computed, loop_world.actors["reform"], spec(key_results=[PLACES, ON_TIME, NEVER]))
    shown = page(computed)
    places, on_time, never = shown.key_results
    # places: baseline is January's value (the period holding 31 January); on 30 April
    # (the end of the newest period) the line from 4.667 (31 Jan) to 6.0 (31 Dec) stands
    # at 4.667 + 1.333 × 89 / 334
    assert places.baseline == pytest.approx(JAN_PLACES)
    assert (places.current, places.current_period) == (pytest.approx(APR_PLACES), "2025-04")
    assert places.expected == pytest.approx(JAN_PLACES + (6 - JAN_PLACES) * 89 / 334)
    assert places.progress == pytest.approx((APR_PLACES - JAN_PLACES) / (6 - JAN_PLACES))
    assert places.light == "green" and places.region.name == "杭州市"
    # on time: 90 (given) on 31 Dec 2024 to 100 on 30 June 2025, expected 96.63 on 30
    # April; 88.89 is below it by more than 5%: red, and no progress (below the baseline)
    assert on_time.current == pytest.approx(APR_ON_TIME)
    assert on_time.expected == pytest.approx(90 + 10 * 120 / 181)
    assert (on_time.light, on_time.progress) == ("red", 0.0)
    # never computed: no data, left out of both progress and light
    assert (never.current, never.baseline, never.progress, never.light) == (
        None, None, None, "no_data",
    )  # fmt: skip
    expected = (places.progress * 1 + 0.0 * 3) / (1 + 3)
    assert shown.reform.progress == pytest.approx(expected)
    assert shown.reform.light == "red"


def test_milestones_and_key_results_together(computed: Database, loop_world: World, at) -> None:
    people = loop_world.actors
    two = [
        {"name": "方案印发", "due": "2025-03-31"},
        {"name": "全面推广", "due": "2025-09-30"},
    ]
    apply(computed, people["reform"], spec(milestones=two, key_results=[{**PLACES, "weight": 2}]))
    evidence(computed, people["hz_wjw_officer"], "方案印发")
    act(computed, people["hz_wjw_second"], "方案印发", "submit")
    act(computed, people["supervisor"], "方案印发", "verify")
    shown = page(computed)
    share = (APR_PLACES - JAN_PLACES) / (6 - JAN_PLACES)
    # the milestones weigh their total 2 with half verified; the key result weighs 2
    assert shown.reform.progress == pytest.approx((0.5 * 2 + share * 2) / 4)
    assert shown.reform.light == "green"


def test_a_reform_with_nothing_measured_has_no_data(loop_world: World, at) -> None:
    apply(loop_world.database, loop_world.actors["reform"], spec(key_results=[NEVER]))
    shown = page(loop_world.database).reform
    assert (shown.progress, shown.light) == (None, "no_data")


# -- applying ---------------------------------------------------------------------------


def test_applying_the_same_specs_again_changes_nothing(loop_world: World, at) -> None:
    db, reform = loop_world.database, loop_world.actors["reform"]
    both = [spec(milestones=MILESTONES), spec("RF-02", participants=["zj_wjw", "zj_gat"])]
    first = apply(db, reform, *both)
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    logged = count(db, ChangeLog)
    at(datetime(2025, 6, 11, 4, tzinfo=UTC))
    again = apply(db, reform, *both)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert versions(db) == [(1, "created")] and versions(db, "RF-02") == [(1, "created")]
    assert count(db, ChangeLog) == logged
    with db.session() as session:
        assert ledger.get(session, "RF-01").updated_at == NOON
    changed = apply(db, reform, spec(milestones=MILESTONES, description="新增说明"), both[1])
    assert (changed.updated, changed.unchanged) == (1, 1)
    assert versions(db) == [(1, "created"), (2, "changed")]
    with db.session() as session:
        change = session.scalars(select(ChangeLog).where(ChangeLog.action == "reform.update")).one()
    assert change.before == {"description": ""} and change.after == {"description": "新增说明"}


def test_milestones_are_matched_by_name_and_only_planned_ones_removed(
    loop_world: World, at
) -> None:
    db, people = loop_world.database, loop_world.actors
    apply(db, people["reform"], spec(milestones=MILESTONES))
    kept_id = milestone_id(db, "系统上线")
    evidence(db, people["hz_wjw_officer"], "方案印发")
    act(db, people["hz_wjw_officer"], "方案印发", "submit")
    # 方案印发 (submitted) and 全面推广 (planned) dropped; 系统上线 moved; 验收 new
    moved = {"name": "系统上线", "due": "2025-07-15", "weight": 3}
    apply(db, people["reform"], spec(milestones=[moved, {"name": "验收", "due": "2025-11-30"}]))
    shown = page(db)
    assert [(m.name, m.due.isoformat(), m.weight, m.state) for m in shown.milestones] == [
        ("方案印发", "2025-03-31", 1.0, "submitted"),
        ("系统上线", "2025-07-15", 3.0, "planned"),
        ("验收", "2025-11-30", 1.0, "planned"),
    ]
    assert milestone_id(db, "系统上线") == kept_id


def test_key_results_are_replaced(computed: Database, loop_world: World, at) -> None:
    reform = loop_world.actors["reform"]
    apply(computed, reform, spec(key_results=[PLACES, ON_TIME]))
    apply(computed, reform, spec(key_results=[{**ON_TIME, "target": 95}]))
    shown = page(computed)
    assert [(k.indicator.code, k.target) for k in shown.key_results] == [("on_time_rate", 95.0)]


def test_the_batch_is_kept_year_by_year(loop_world: World, at) -> None:
    db, reform = loop_world.database, loop_world.actors["reform"]
    at(datetime(2024, 3, 1, 4, tzinfo=UTC))
    apply(db, reform, spec(batch="planning", starts_on="2024-01-01"))
    at(datetime(2025, 3, 3, 4, tzinfo=UTC))
    apply(db, reform, spec(batch="implementing", starts_on="2024-01-01"))
    at(datetime(2026, 3, 2, 4, tzinfo=UTC))
    # a file that says nothing of 2025 leaves 2025 as it was
    apply(db, reform, spec(batch="upgrading", starts_on="2024-01-01", batches={2024: "planning"}))
    shown = page(db).reform
    assert shown.batch == "upgrading"
    assert shown.batches == {2024: "planning", 2025: "implementing", 2026: "upgrading"}
    with db.session() as session:
        then = ledger.ledger(session, as_of=date(2024, 12, 31))
        now_upgrading = ledger.ledger(session, batch="upgrading")
    assert [(r.code, r.batch) for r in then.data] == [("RF-01", "planning")]
    assert [r.code for r in now_upgrading.data] == ["RF-01"]
    with pytest.raises(ValidationFailed, match=r"reform RF-01: batches\.2027: batches holds"):
        apply(db, reform, spec(batch="upgrading", batches={2027: "planning"}))
    with pytest.raises(ValidationFailed, match=r"batches\.2026: .*this year's \(2026\)"):
        apply(db, reform, spec(batch="upgrading", batches={2026: "planning"}))


def test_the_ledger_as_it_stood_on_a_past_date(loop_world: World, at) -> None:
    db, people = loop_world.database, loop_world.actors
    at(datetime(2025, 3, 3, 4, tzinfo=UTC))
    apply(db, people["reform"], spec(name="第一版名称", milestones=MILESTONES[:1]))
    at(datetime(2025, 4, 1, 4, tzinfo=UTC))
    apply(db, people["reform"], spec("RF-02", batch="planning"))
    at(datetime(2025, 5, 6, 4, tzinfo=UTC))
    apply(db, people["reform"], spec(name="第二版名称", milestones=MILESTONES[:1]))
    at(datetime(2025, 5, 7, 4, tzinfo=UTC))
    with db.transaction() as session:
        reforms.check_in(session, actor=people["hz_wjw_officer"], code="RF-01", note="已完成招标")

    def listed(**filters: Any) -> list[tuple[str, str, int, str]]:
        with db.session() as session:
            found = ledger.ledger(session, **filters)
        return [(r.code, r.name, r.version, r.light) for r in found.data]

    assert listed(as_of=date(2025, 3, 2)) == []
    # on 15 March the milestone due 31 March was on time
    assert listed(as_of=date(2025, 3, 15)) == [("RF-01", "第一版名称", 1, "green")]
    assert listed(as_of=date(2025, 4, 30)) == [
        ("RF-01", "第一版名称", 1, "green"),
        ("RF-02", "测试改革RF-02", 1, "no_data"),
    ]
    # 6 May: renamed, and the milestone is overdue by then
    assert listed(as_of=date(2025, 5, 6))[0] == ("RF-01", "第二版名称", 2, "red")
    assert listed(as_of=date(2025, 5, 6), batch="planning") == [
        ("RF-02", "测试改革RF-02", 1, "no_data")
    ]
    assert listed(as_of=date(2025, 5, 6), q="第一版") == []
    assert listed(q="第二版") == [("RF-01", "第二版名称", 3, "red")]
    assert versions(db) == [(1, "created"), (2, "changed"), (3, "check_in")]
    with db.session() as session:
        as_list = ledger.ledger(session, as_of=date(2025, 4, 30))
    assert as_list.as_of == date(2025, 4, 30) and as_list.count == 2


def test_the_ledger_filters_by_system_and_region_subtree(loop_world: World, at) -> None:
    db, reform = loop_world.database, loop_world.actors["reform"]
    apply(
        db,
        reform,
        spec("RF-HZ"),
        spec("RF-SC", region=SHANGCHENG, system="grassroots"),
        spec("RF-NB", region=NINGBO),
        spec("RF-ZJ", region=PROVINCE, batch="upgrading"),
    )
    with db.session() as session:

        def codes(**filters: Any) -> list[str]:
            return [r.code for r in ledger.ledger(session, **filters).data]

        # upgrading comes first (迭代升级, 启动实施, 谋划推进), then by code
        assert codes() == ["RF-ZJ", "RF-HZ", "RF-NB", "RF-SC"]
        assert codes(region=HANGZHOU) == ["RF-HZ", "RF-SC"]
        assert codes(region=PROVINCE) == ["RF-ZJ", "RF-HZ", "RF-NB", "RF-SC"]
        assert codes(system="grassroots") == ["RF-SC"]
        assert codes(q="rf-h") == ["RF-HZ"] and codes(q="rf-h", as_of=NOON.date()) == ["RF-HZ"]
        assert codes(region=HANGZHOU, as_of=NOON.date()) == ["RF-HZ", "RF-SC"]
        with pytest.raises(ValidationFailed, match="unknown batch 'soon'"):
            ledger.ledger(session, batch="soon")
        with pytest.raises(ValidationFailed, match="unknown region 999999"):
            ledger.ledger(session, region="999999")
        summary = {row.batch: row for row in ledger.by_batch(session)}
    assert list(summary) == ["upgrading", "implementing", "planning"]
    assert (summary["implementing"].label, summary["implementing"].count) == ("启动实施", 3)
    assert summary["implementing"].lights == {"green": 0, "yellow": 0, "red": 0, "no_data": 3}
    assert summary["planning"].count == 0 and summary["planning"].progress is None


def test_by_batch_counts_lights_and_averages_progress(loop_world: World, at) -> None:
    db, people = loop_world.database, loop_world.actors
    apply(
        db,
        people["reform"],
        spec(milestones=MILESTONES[2:]),  # on time: green, 0
        spec("RF-02", milestones=[{"name": "逾期节点", "due": "2025-05-30"}]),  # red, 0
        spec("RF-03"),  # nothing measured
    )
    evidence(db, people["hz_wjw_officer"], "全面推广")
    act(db, people["hz_wjw_officer"], "全面推广", "submit")
    act(db, people["supervisor"], "全面推广", "verify")  # RF-01: green, 1
    with db.session() as session:
        implementing = ledger.by_batch(session)[1]
    assert implementing.count == 3
    assert implementing.lights == {"green": 1, "yellow": 0, "red": 1, "no_data": 1}
    assert implementing.progress == pytest.approx((1.0 + 0.0) / 2)


# -- check-ins and milestones -----------------------------------------------------------


def test_check_ins_are_versions_with_the_reform_as_it_stood(loop_world: World, at) -> None:
    db, people = loop_world.database, loop_world.actors
    apply(db, people["reform"], spec(milestones=MILESTONES))
    at(datetime(2025, 6, 11, 4, tzinfo=UTC))
    with db.transaction() as session:
        row = reforms.check_in(
            session, actor=people["hz_wjw_officer"], code="RF-01", note="  完成试点 3 个  "
        )
        assert (row.version, row.kind, row.note, row.actor_name) == (
            2, "check_in", "完成试点 3 个", "hz_wjw_officer",
        )  # fmt: skip
        assert row.snapshot["reform"]["version"] == 2
        assert [m["name"] for m in row.snapshot["milestones"]] == [m["name"] for m in MILESTONES]
        assert row.light == "red" and row.progress == 0.0
    with pytest.raises(ValidationFailed, match="needs a note"), db.transaction() as session:
        reforms.check_in(session, actor=people["hz_wjw_officer"], code="RF-01", note="  ")
    with pytest.raises(NotFound, match="no reform 'RF-99'"), db.transaction() as session:
        reforms.check_in(session, actor=people["hz_wjw_officer"], code="RF-99", note="x")
    shown = page(db)
    assert [(v.version, v.kind) for v in shown.versions] == [(2, "check_in"), (1, "created")]
    assert shown.reform.version == 2


def test_a_milestone_is_submitted_with_evidence_and_verified_by_someone_else(
    loop_world: World, at
) -> None:
    db, people = loop_world.database, loop_world.actors
    apply(db, people["reform"], spec(milestones=MILESTONES))
    with pytest.raises(InvalidTransition, match="closure needs evidence"):
        act(db, people["hz_wjw_officer"], "方案印发", "submit")
    proof = evidence(db, people["hz_wjw_officer"], "方案印发")
    with pytest.raises(ValidationFailed, match="is not this milestone's"):
        act(db, people["hz_wjw_officer"], "系统上线", "submit", attachments=[proof])
    act(db, people["reform"], "方案印发", "submit", attachments=[proof])
    with pytest.raises(InvalidTransition, match="may not be the one who rectified it"):
        act(db, people["reform"], "方案印发", "verify")
    with pytest.raises(PermissionDenied, match=r"may not loop\.verify"):
        act(db, people["hz_wjw_officer"], "方案印发", "verify")
    with pytest.raises(ValidationFailed, match="send_back needs a comment"):
        act(db, people["supervisor"], "方案印发", "send_back")
    act(db, people["supervisor"], "方案印发", "send_back", comment="纪要缺少签章")
    act(db, people["hz_wjw_officer"], "方案印发", "submit")  # its evidence is still there
    act(db, people["supervisor"], "方案印发", "verify")
    with pytest.raises(InvalidTransition, match="it is verified"):
        act(db, people["supervisor"], "方案印发", "send_back", comment="再看看")
    with pytest.raises(ValidationFailed, match="verified: no more evidence"):
        evidence(db, people["hz_wjw_officer"], "方案印发", b"late")
    with pytest.raises(NotFound, match="has no milestone 999"), db.transaction() as session:
        reforms.milestone_act(
            session,
            actor=people["supervisor"],
            code="RF-01",
            milestone_id=999,
            action=MilestoneAction(transition="verify"),
        )
    shown = page(db)
    assert shown.milestones[0].state == "verified"
    assert [e.filename for e in shown.evidence[shown.milestones[0].id]] == ["会议纪要.pdf"]
    assert [(v.kind, v.note) for v in shown.versions[:3]] == [
        ("milestone", "方案印发：核验通过"),
        ("milestone", "方案印发：提交完成"),
        ("milestone", "方案印发：退回（纪要缺少签章）"),
    ]
    with db.session() as session:
        asked = session.scalars(
            select(Notification.user_id).where(Notification.kind == "verification_requested")
        ).all()
        sent_back = session.scalars(
            select(Notification.user_id).where(Notification.kind == "sent_back")
        ).all()
        officers = {orgs.user(session, name).id for name in ("hz_wjw_officer", "hz_wjw_second")}
        reform_id, supervisor_id = (
            orgs.user(session, name).id for name in ("reform", "supervisor")
        )
    # each submission asks every verifier but the one who submitted (reform, the first time)
    assert Counter(asked)[reform_id] == 1 and Counter(asked)[supervisor_id] == 2
    assert set(sent_back) == officers


# -- permissions ------------------------------------------------------------------------


def test_only_the_lead_department_checks_in_and_only_the_reform_office_keeps_the_ledger(
    loop_world: World, at
) -> None:
    db, people = loop_world.database, loop_world.actors
    apply(db, people["reform"], spec(milestones=MILESTONES))
    denied = r"gat_admin may not loop\.check_in on reform RF-01"
    with pytest.raises(PermissionDenied, match=denied), db.transaction() as session:
        reforms.check_in(session, actor=people["gat_admin"], code="RF-01", note="越权")
    with pytest.raises(PermissionDenied, match=r"gat_admin may not loop\.check_in"):
        evidence(db, people["gat_admin"], "方案印发")
    with pytest.raises(PermissionDenied, match=r"hz_wjw_officer may not loop\.ledger"):
        apply(db, people["hz_wjw_officer"], spec(name="自己改名"))
    assert versions(db) == [(1, "created")]


def test_a_ledger_keeper_of_one_city_keeps_only_its_reforms(loop_world: World, at) -> None:
    keeper = add_user(
        loop_world, "hz_reform", department="hz_wjw", role="reform_office", grant_region=HANGZHOU
    )
    db = loop_world.database
    assert apply(db, keeper, spec(region=SHANGCHENG)).created == 1
    with pytest.raises(PermissionDenied, match=r"hz_reform may not loop\.ledger on reform RF-02"):
        apply(db, keeper, spec("RF-02", region=NINGBO))
    apply(db, loop_world.actors["reform"], spec(region=NINGBO))  # moved out of Hangzhou
    with pytest.raises(PermissionDenied, match="on reform RF-01"):
        apply(db, keeper, spec(region=GONGSHU))


# -- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lead": "nope"}, "reforms.yaml: reform RF-02: lead: unknown department 'nope'"),
        ({"participants": ["zj_wjw", "ghost"]},
         "reform RF-02: participants[1]: unknown department 'ghost'"),
        ({"region": "339999"}, "reform RF-02: region: unknown region 339999"),
        ({"key_results": [{**PLACES, "indicator": "ghost"}]},
         "reform RF-02: key_results[0].indicator: unknown indicator 'ghost'"),
        ({"key_results": [{**PLACES, "region": "339999"}]},
         "reform RF-02: key_results[0].region: unknown region 339999"),
        ({"key_results": [{**PLACES, "target_on": "2025-01-01"}]},
         "key_results[0].target_on: target_on must come after baseline_on"),
        ({"milestones": [MILESTONES[0], MILESTONES[0]]},
         "reform RF-02: milestones[1].name: milestone '方案印发' appears twice"),
    ],
)  # fmt: skip
def test_bad_specs_are_refused_whole_naming_the_reform_and_field(
    loop_world: World, at, change: dict[str, Any], message: str
) -> None:
    db = loop_world.database
    with pytest.raises(ValidationFailed) as refused:
        apply(db, loop_world.actors["reform"], spec(), spec("RF-02", **change))
    assert message in refused.value.detail and "\n" not in refused.value.detail
    assert count(db, Reform) == 0 and count(db, ReformVersion) == 0


def test_bad_yaml_names_the_document_and_the_reform(loop_world: World, at) -> None:
    db, reform = loop_world.database, loop_world.actors["reform"]

    def refused(text: str) -> str:
        with pytest.raises(ValidationFailed) as caught, db.transaction() as session:
            reforms.apply_yaml(session, actor=reform, text=text, source="ledger.yaml")
        return caught.value.detail

    broken = refused("reforms: [")
    assert broken.startswith("ledger.yaml:") and "not valid YAML" in broken
    assert refused("items: []") == "ledger.yaml: expected a mapping with a 'reforms' list"
    bad_date = yaml.safe_dump({"reforms": [spec(ends_on="2024-12-31")]})
    assert refused(bad_date) == "ledger.yaml: reform RF-01: ends_on comes before starts_on"
    unknown = yaml.safe_dump({"reforms": [spec(colour="red")]})
    assert refused(unknown).startswith("ledger.yaml: reform RF-01: colour: Extra inputs")
    twice = yaml.safe_dump({"reforms": [spec(), spec()]})
    assert refused(twice) == "ledger.yaml: reform RF-01 appears twice"
    good = yaml.safe_dump({"reforms": [spec(milestones=MILESTONES)]}, allow_unicode=True)
    with db.transaction() as session:
        report = reforms.apply_yaml(session, actor=reform, text=good, source="ledger.yaml")
    assert (report.created, report.updated, report.unchanged) == (1, 0, 0)
    assert count(db, Reform) == 1


# -- linked problems --------------------------------------------------------------------


def test_a_reform_page_lists_the_problems_on_its_key_results(
    computed: Database, loop_world: World, at
) -> None:
    apply(computed, loop_world.actors["reform"], spec(key_results=[ON_TIME]))

    def report(title: str, region: str, indicator: str | None) -> None:
        data = ProblemCreate(title=title, channel="inspection", system="digital_society",
                             region=region, indicator=indicator)  # fmt: skip
        with computed.transaction() as session:
            problems.report(session, actor=SYSTEM, data=data)

    report("上城按期办结率偏低", SHANGCHENG, "on_time_rate")
    report("杭州按期办结率偏低", HANGZHOU, "on_time_rate")
    report("宁波按期办结率偏低", NINGBO, "on_time_rate")  # another city
    report("上城案件数异常", SHANGCHENG, "cases")  # another indicator
    report("上城其他问题", SHANGCHENG, None)
    assert [p.title for p in page(computed).problems] == [
        "杭州按期办结率偏低",
        "上城按期办结率偏低",
    ]


# -- the worker -------------------------------------------------------------------------


def test_the_worker_records_moved_lights_and_reminds_once(loop_world: World, at) -> None:
    db, people = loop_world.database, loop_world.actors
    apply(db, people["reform"], spec(milestones=MILESTONES[1:]))  # 系统上线 12 June: 黄
    # on 10 June nothing moved since the version just written; 系统上线 is due soon
    assert reforms.recompute(db) == 1
    assert versions(db) == [(1, "created")]
    at(datetime(2025, 6, 13, 4, tzinfo=UTC))  # a day late: 红
    assert reforms.recompute(db) == 2  # a version and an overdue reminder
    assert reforms.recompute(db) == 0
    assert versions(db) == [(1, "created"), (2, "recomputed")]
    shown = page(db)
    assert (shown.versions[0].light, shown.versions[0].actor) == ("red", "system")
    with db.session() as session:
        sent = session.execute(
            select(Notification.user_id, Notification.kind).order_by(Notification.id)
        ).all()
        officers = {orgs.user(session, name).id for name in ("hz_wjw_officer", "hz_wjw_second")}
    assert {user for user, kind in sent if kind == "deadline_approaching"} == officers
    assert {user for user, kind in sent if kind == "deadline_passed"} == officers
    assert len(sent) == 4


# -- both stores ------------------------------------------------------------------------


def test_the_ledger_on_every_store(world: World, at) -> None:
    """The writes and reads that differ by dialect (row locks, JSON snapshots, the newest
    version per reform), on SQLite and PostgreSQL: milestones only, the brain being empty."""
    db, people = world.database, world.actors
    apply(db, people["admin"], spec(lead="zj_wjw", region=PROVINCE, milestones=MILESTONES))
    evidence(db, people["admin"], "方案印发")
    act(db, people["admin"], "方案印发", "submit")
    with pytest.raises(InvalidTransition, match="may not be the one"):
        act(db, people["admin"], "方案印发", "verify")
    act(db, people["auditor"], "方案印发", "verify")
    at(datetime(2025, 6, 13, 4, tzinfo=UTC))  # 系统上线 is a day late
    with db.transaction() as session:
        reforms.check_in(session, actor=people["admin"], code="RF-01", note="推进中")
    assert reforms.recompute(db) == 1  # the overdue reminder; the check-in saw the red
    assert reforms.recompute(db) == 0
    with db.session() as session:
        then = ledger.ledger(session, as_of=NOON.date())
        now = ledger.ledger(session, region=PROVINCE)
    assert [(r.version, r.light, r.progress) for r in then.data] == [(4, "yellow", 0.25)]
    assert [(r.version, r.light, r.progress) for r in now.data] == [(5, "red", 0.25)]
    assert versions(db) == [
        (1, "created"), (2, "milestone"), (3, "milestone"), (4, "milestone"), (5, "check_in"),
    ]  # fmt: skip


def test_the_ledger_reads_in_bulk(loop_world: World, at) -> None:
    """As many statements for 30 reforms as for 3, whatever their milestones and key
    results: no query per reform."""
    db, reform = loop_world.database, loop_world.actors["reform"]

    def made(first: int, last: int) -> list[dict[str, Any]]:
        return [
            spec(f"RF-{n:02d}", milestones=MILESTONES[: 1 + n % 3], key_results=[PLACES, ON_TIME],
                 participants=["zj_wjw", "zj_gat"], batch=("planning", "upgrading")[n % 2])
            for n in range(first, last)
        ]  # fmt: skip

    def counted() -> list[int]:
        seen: list[str] = []

        def saw(*args: Any) -> None:
            seen.append(args[2])

        found = []
        event.listen(db.engine, "before_cursor_execute", saw)
        try:
            for read in (
                lambda s: ledger.ledger(s),
                lambda s: ledger.ledger(s, region=HANGZHOU, as_of=NOON.date()),
                lambda s: ledger.by_batch(s),
            ):
                with db.session() as session:
                    before = len(seen)
                    read(session)
                    found.append(len(seen) - before)
        finally:
            event.remove(db.engine, "before_cursor_execute", saw)
        return found

    apply(db, reform, *made(0, 3))
    few = counted()
    assert all(few), few
    apply(db, reform, *made(3, 30))
    assert counted() == few
