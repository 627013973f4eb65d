"""Problems on both backends: deadlines in working days, the machine's guards, evidence,
reminders and escalation, statistics worked out by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from shuzhi.core import clock
from shuzhi.core.db import Database
from shuzhi.core.errors import (
    InvalidTransition,
    NotFound,
    PermissionDenied,
    TooLarge,
    ValidationFailed,
)
from shuzhi.core.permissions import Actor
from shuzhi.loop import queries, service
from shuzhi.loop.models import Problem
from shuzhi.loop.schemas import ProblemAction, ProblemCreate
from shuzhi.notify.models import Notification
from tests.conftest import World
from tests.loop.conftest import add_loop_people


@pytest.fixture
def people(world: World) -> World:
    return add_loop_people(world)


@pytest.fixture
def at() -> Iterator[Callable[[str], None]]:
    """Move the clock to 09:00 Beijing time (01:00 UTC) of a day."""

    def to(day: str) -> None:
        moment = datetime.fromisoformat(day).replace(hour=1, tzinfo=UTC)
        clock.set_clock(lambda: moment)

    yield to
    clock.set_clock(None)


def new(db: Database, actor: Actor, **changes: object) -> int:
    data = {"title": "窗口办件超时", "channel": "inspection", "system": "digital_government",
            "region": "330102", "department": "hz_wjw", **changes}  # fmt: skip
    with db.transaction() as session:
        return service.report(session, actor=actor, data=ProblemCreate.model_validate(data)).id


def act(db: Database, actor: Actor, problem_id: int, transition: str, **extra: object) -> Problem:
    with db.transaction() as session:
        problem = service.act(session, actor=actor, problem_id=problem_id,
                              action=ProblemAction(transition=transition, **extra))  # fmt: skip
        session.expunge(problem)
        return problem


def evidence(db: Database, actor: Actor, problem_id: int, content: bytes = b"report") -> int:
    with db.transaction() as session:
        return service.add_problem_evidence(
            session, actor=actor, problem_id=problem_id, filename="整改报告.pdf", content=content
        ).id


def test_a_deadline_counts_working_days_around_the_spring_festival(people: World, at) -> None:
    db, reform = people.database, people.actors["reform"]
    at("2026-02-10")
    pid = new(db, reform)
    with db.session() as session:
        problem = session.get(Problem, pid)
        # 11–14 Feb (the 14th is a working Saturday), festival 15–23 Feb, 24–28 Feb (the 28th
        # works), then 2–16 March: the 20th working day is 16 March
        assert problem.state == "assigned" and problem.deadline == date(2026, 3, 16)
        assert problem.department.code == "hz_wjw" and problem.code == "WT-2026-00001"


def test_the_guards_name_the_rule_that_forbids(people: World, at) -> None:
    db = people.database
    admin, supervisor, reform = (people.actors[n] for n in ("admin", "supervisor", "reform"))
    at("2026-03-02")
    pid = new(db, reform)
    with pytest.raises(ValidationFailed, match="reassign needs a comment"):
        act(db, reform, pid, "reassign", department="sc_wjw")
    assert act(db, reform, pid, "reassign", department="sc_wjw", comment="属地管理").state == (
        "assigned"
    )
    act(db, admin, pid, "accept")
    with pytest.raises(InvalidTransition, match="closure needs evidence"):
        act(db, admin, pid, "request_closure")
    act(db, admin, pid, "request_closure", attachments=[evidence(db, admin, pid)])
    # the platform admin may verify in general, but not what it rectified itself
    with pytest.raises(InvalidTransition, match="verifier may not be the one who rectified"):
        act(db, admin, pid, "verify")
    with pytest.raises(InvalidTransition, match="needs verified"):
        act(db, reform, pid, "close")
    with pytest.raises(ValidationFailed, match="send_back needs a comment"):
        act(db, supervisor, pid, "send_back")
    act(db, supervisor, pid, "send_back", comment="证明材料不全")
    act(db, admin, pid, "request_closure")  # the evidence already given counts
    act(db, supervisor, pid, "verify")
    closed = act(db, reform, pid, "close")
    assert closed.state == "closed" and closed.closed_on_time is True
    with db.session() as session:
        page = queries.page(session, service.get(session, pid), actor=reform)
        assert page.problem.light == "green" and page.problem.department.code == "sc_wjw"
        assert [s.transition for s in page.timeline] == [
            "assign", "reassign", "accept", "request_closure", "send_back", "request_closure",
            "verify", "close",
        ]  # fmt: skip
        assert page.timeline[4].comment == "证明材料不全" and page.actions == []


def test_only_the_responsible_department_rectifies(people: World) -> None:
    db = people.database
    pid = new(db, people.actors["reform"], department="zj_gat")
    with pytest.raises(PermissionDenied):
        act(db, people.actors["hz_wjw_officer"], pid, "accept")
    with pytest.raises(PermissionDenied):
        evidence(db, people.actors["hz_wjw_officer"], pid)


def test_people_are_told_once(people: World, at) -> None:
    db, reform = people.database, people.actors["reform"]
    officer, supervisor = people.actors["hz_wjw_officer"], people.actors["supervisor"]
    at("2026-03-02")
    pid = new(db, reform)
    act(db, officer, pid, "accept")
    act(db, officer, pid, "request_closure", attachments=[evidence(db, officer, pid)])
    act(db, supervisor, pid, "send_back", comment="不完整")
    with db.session() as session:
        kinds = dict(session.execute(
            select(Notification.kind, func.count()).where(Notification.user_id == officer.id)
            .group_by(Notification.kind)
        ).all())  # fmt: skip
        told = set(session.scalars(
            select(Notification.kind).where(Notification.user_id == supervisor.id)))  # fmt: skip
    assert kinds == {"assigned": 1, "sent_back": 1}
    assert told == {"verification_requested"}


def test_reminders_and_escalation(people: World, at) -> None:
    db, reform = people.database, people.actors["reform"]
    officer = people.actors["hz_wjw_officer"]
    at("2026-02-10")
    pid = new(db, reform)  # due 16 March
    at("2026-03-10")
    assert service.remind(db) == 0  # 4 working days ahead: not yet
    at("2026-03-12")
    assert service.remind(db) == 1 and service.remind(db) == 0  # once
    at("2026-03-17")
    assert service.remind(db) == 1  # overdue, not yet escalated
    at("2026-03-23")  # 5 working days late: 17, 18, 19, 20, 23 March
    assert service.remind(db) == 1
    with db.session() as session:
        problem = session.get(Problem, pid)
        assert problem.escalation == 1 and problem.escalated_to_id is not None
        public = queries.public(problem, queries.Names(session))
        assert public.escalated_to.code == "zj_wjw" and public.light == "red"
        assert public.overdue_days == 5
        kinds = list(session.scalars(
            select(Notification.kind).where(Notification.user_id == officer.id)
            .order_by(Notification.id)))  # fmt: skip
    assert kinds == ["assigned", "deadline_approaching", "deadline_passed"]
    assert service.remind(db) == 0


def test_statistics_by_hand(people: World, at) -> None:
    db, reform = people.database, people.actors["reform"]
    admin, supervisor = people.actors["admin"], people.actors["supervisor"]
    at("2026-03-02")
    a = new(db, reform, deadline="2026-03-05")
    b = new(db, reform, deadline="2026-03-20", channel="audit")
    new(db, reform, deadline="2026-03-04", region="330203", department="zj_gat")
    new(db, reform, department=None, channel="audit")  # reported, not assigned yet
    for pid in (a, b):
        act(db, admin, pid, "accept")
        act(db, admin, pid, "request_closure", attachments=[evidence(db, admin, pid)])
        act(db, supervisor, pid, "verify")
    at("2026-03-06")
    act(db, reform, a, "close")  # a day late, 4 days after report
    act(db, reform, b, "close")  # on time
    with db.session() as session:
        by_department = queries.stats(session, by="department")
        rows = {row.key: row for row in by_department.data}
        assert (rows["hz_wjw"].total, rows["hz_wjw"].closed, rows["hz_wjw"].on_time_rate) == (
            2,
            2,
            0.5,
        )
        assert rows["hz_wjw"].average_days == 4.0 and rows["hz_wjw"].closure_rate == 1.0
        assert (rows["zj_gat"].open, rows["zj_gat"].overdue) == (1, 1)
        assert rows["-"].total == 1  # the unassigned one
        total = by_department.total
        assert (total.total, total.closed, total.overdue, total.closure_rate) == (4, 2, 1, 0.5)
        by_region = {row.key: row.total for row in queries.stats(session, by="region").data}
        assert by_region == {"330100": 3, "330200": 1}
        in_hangzhou = queries.stats(session, by="region", filters=queries.Filters(region="330100"))
        assert {row.key: row.total for row in in_hangzhou.data} == {"330102": 3}
        by_channel = {row.key: row.total for row in queries.stats(session, by="channel").data}
        assert by_channel == {"inspection": 2, "audit": 2}
        red, count = queries.page_of(session, queries.Filters(light="red"))
        assert count == 1 and red[0].department.code == "zj_gat"
        assert queries.page_of(session, queries.Filters(light="green"))[1] == 2
        assert queries.page_of(session, queries.Filters(states=("reported",)))[1] == 1
        columns = {c.state: c.count for c in queries.board(session, queries.Filters()).columns}
        assert columns == {"reported": 1, "assigned": 1, "rectifying": 0,
                           "closure_requested": 0, "verified": 0, "closed": 2}  # fmt: skip


def test_bad_input_writes_nothing(people: World) -> None:
    db, reform = people.database, people.actors["reform"]
    with db.session() as session:
        before = session.scalar(select(func.count(Problem.id)))
    with pytest.raises(NotFound, match="department"):
        new(db, reform, department="nowhere")
    with pytest.raises(ValidationFailed, match="unknown region"):
        new(db, reform, region="999999")
    with pytest.raises(ValidationFailed, match="indicator"):
        new(db, reform, indicator="nope")
    with pytest.raises(PermissionDenied):
        new(db, people.actors["viewer"])
    with db.session() as session:
        assert session.scalar(select(func.count(Problem.id))) == before
        with pytest.raises(ValidationFailed, match="unknown state"):
            queries.page_of(session, queries.Filters(states=("lost",)))
        with pytest.raises(ValidationFailed, match="by is one of"):
            queries.stats(session, by="colour")


def test_evidence_is_kept_by_its_hash(people: World, monkeypatch: pytest.MonkeyPatch) -> None:
    db, officer = people.database, people.actors["hz_wjw_officer"]
    pid = new(db, people.actors["reform"])
    first, second = evidence(db, officer, pid, b"same"), evidence(db, officer, pid, b"same")
    with db.session() as session:
        one, path = service.evidence_file(session, first)
        two, other = service.evidence_file(session, second)
        assert path == other and path.read_bytes() == b"same" and one.sha256 == two.sha256
        assert session.get(Problem, pid).evidence_count == 2
    monkeypatch.setenv("SHUZHI_LOOP__EVIDENCE_MAX_MB", "1")
    from shuzhi.core.settings import reset_settings

    reset_settings()
    with pytest.raises(TooLarge):
        evidence(db, officer, pid, b"x" * 1_000_001)
    with pytest.raises(ValidationFailed, match="empty"):
        evidence(db, officer, pid, b"")


def test_a_department_reports_on_its_own_behalf(people: World) -> None:
    db, officer = people.database, people.actors["hz_wjw_officer"]
    pid = new(db, officer, department=None, channel="grassroots")
    with db.session() as session:
        assert session.get(Problem, pid).state == "reported"
    # assigning is the reform office's
    with pytest.raises(PermissionDenied, match=r"loop\.assign"):
        new(db, officer)
