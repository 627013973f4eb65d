"""The problem lists run as many SQL statements for 60 problems as for 6, and for a page of
50 as for a page of 1: names, departments, warnings and indicators are fetched per page,
never per row (no N+1). ``bench/loop.py`` measures the same at 100,000 problems."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shuzhi.brain.models import EarlyWarning, Indicator, Rule
from shuzhi.core import clock
from shuzhi.core.db import Database
from shuzhi.loop import queries, service
from shuzhi.loop.schemas import ProblemAction, ProblemCreate
from shuzhi.orgs.models import Department
from shuzhi.regions.models import Region
from tests.conftest import World
from tests.loop.conftest import add_loop_people
from tests.support.statements import counting

# one problem of each batch ends in each state, so that the board shows every column at
# both sizes (a column with no problems runs no query)
STATES = ("reported", "assigned", "rectifying", "closure_requested", "verified", "closed")
# departments a problem that stays assigned may have; the rest go to those the Hangzhou
# officer can rectify for
ELSEWHERE = ("zj_gat", "hz_gaj", "zj_wjw", "zj_dsj")


@pytest.fixture
def people(world: World) -> World:
    world = add_loop_people(world)
    with world.database.transaction() as session:
        owner = session.scalar(select(Department.id).where(Department.code == "zj_wjw"))
        now = clock.now()
        # the rows a warning hangs on: an indicator and a rule (their specs are not read by
        # the lists), and a warning in each Hangzhou district
        indicators = [
            Indicator(code=f"count_{n}", name=f"计数指标{n}", system="digital_society",
                      owner_id=owner, spec={}, created_at=now, updated_at=now)
            for n in range(3)
        ]  # fmt: skip
        rule = Rule(code="low", name="低于目标", kind="threshold", severity="high", spec={},
                    enabled=False, created_at=now, updated_at=now)  # fmt: skip
        session.add_all([*indicators, rule])
        session.flush()
        for number, code in enumerate(counties(session)):
            warning = EarlyWarning(rule_id=rule.id, indicator_id=indicators[number % 3].id,
                                   region_code=code, grain="month", message=f"预警{code}",
                                   since=now, updated_at=now)  # fmt: skip
            session.add(warning)
    return world


def counties(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(Region.code).where(Region.parent_code == "330100").order_by(Region.code)
        )
    )


def add_problems(world: World, first: int, count: int) -> None:
    """``count`` problems reported through the service, each in its own district,
    department, channel and warning where it can be, and moved on to its state."""
    db = world.database
    reform, officer = world.actors["reform"], world.actors["hz_wjw_officer"]
    supervisor = world.actors["supervisor"]
    today = clock.now().date()
    with db.session() as session:
        districts = counties(session)
        warnings = {w.region_code: w for w in session.scalars(select(EarlyWarning)).unique().all()}
    for number in range(first, first + count):
        state = STATES[number % len(STATES)]
        region = districts[number % len(districts)]
        if state == "reported":
            department = None
        elif state == "assigned":
            department = ELSEWHERE[number // 6 % len(ELSEWHERE)]
        else:
            department = ("hz_wjw", "sc_wjw")[number % 2]
        data = ProblemCreate(
            title=f"问题{number}",
            channel=("inspection", "audit", "patrol", "petition", "opinion")[number % 5],
            system=("digital_government", "digital_society", "grassroots")[number % 3],
            region=region,
            department=department,
            co_departments=["zj_gat", "hz_gaj"] if number % 3 == 0 else [],
            # every other one is late: it shows red until it is verified
            deadline=today + timedelta(days=-20 if number % 2 else 30),
            indicator=f"count_{number % 3}" if number % 4 == 1 else None,
        )
        with db.transaction() as session:
            warning = session.get(EarlyWarning, warnings[region].id) if number % 2 else None
            problem_id = service.report(session, actor=reform, data=data, warning=warning).id
        steps = STATES.index(state) - STATES.index("assigned")
        path = ((officer, "accept"), (officer, "request_closure"), (supervisor, "verify"),
                (reform, "close"))  # fmt: skip
        for done, (actor, transition) in enumerate(path):
            if done >= steps:
                break
            with db.transaction() as session:
                if transition == "request_closure":
                    service.add_problem_evidence(
                        session, actor=officer, problem_id=problem_id, filename="整改报告.pdf",
                        content=f"report {number}".encode(),
                    )  # fmt: skip
                service.act(session, actor=actor, problem_id=problem_id,
                            action=ProblemAction(transition=transition))  # fmt: skip


def statements(db: Database, read: Callable[[Session], Any]) -> tuple[int, Any]:
    """How many statements ``read`` runs on a fresh session, and what it returned."""
    with db.session() as session, counting(db) as seen:
        answer = read(session)
    return len(seen), answer


LISTS: dict[str, queries.Filters] = {
    "all": queries.Filters(),
    "red": queries.Filters(light="red"),
    "hangzhou rectifying": queries.Filters(region="330100", states=("rectifying",)),
    "raised by a warning": queries.Filters(warning=True),
    "department": queries.Filters(department="hz_wjw"),
}


def reads() -> dict[str, Callable[[Session], Any]]:
    found: dict[str, Callable[[Session], Any]] = {
        f"page_of {name}": lambda s, f=filters: queries.page_of(s, f, limit=50)
        for name, filters in LISTS.items()
    }
    found["page_of by deadline"] = lambda s: queries.page_of(
        s, queries.Filters(), limit=50, sort="deadline"
    )
    found["board"] = lambda s: queries.board(s, queries.Filters(), per_state=20)
    for by in queries.DIMENSIONS:
        found[f"stats {by}"] = lambda s, by=by: queries.stats(s, by=by)
    return found


def test_lists_board_and_statistics_run_as_many_statements_for_60_problems_as_for_6(
    people: World,
) -> None:
    db = people.database
    add_problems(people, 0, 6)
    small = {name: statements(db, read) for name, read in reads().items()}
    add_problems(people, 6, 54)
    large = {name: statements(db, read) for name, read in reads().items()}

    # the second measurement read ten times the rows, every kind of link among them
    rows, count = large["page_of all"][1]
    assert (len(small["page_of all"][1][0]), len(rows), count) == (6, 50, 60)
    assert len({row.warning.id for row in rows if row.warning}) > 5
    assert len({row.indicator.code for row in rows if row.indicator}) == 3
    assert {ref.code for row in rows for ref in row.co_departments} == {"zj_gat", "hz_gaj"}
    assert len({row.department.code for row in rows if row.department}) == 6
    assert {row.light for row in rows} == {"red", "yellow", "green"}
    board = large["board"][1]
    assert [column.count for column in board.columns] == [10] * 6
    assert [len(column.data) for column in board.columns] == [10] * 6
    assert large["stats department"][1].total.total == 60

    assert {name: n for name, (n, _) in large.items()} == {
        name: n for name, (n, _) in small.items()
    }


def test_a_page_of_50_runs_as_many_statements_as_a_page_of_1(people: World) -> None:
    db = people.database
    add_problems(people, 0, 60)
    for filters in LISTS.values():
        one, (rows_one, _) = statements(db, lambda s, f=filters: queries.page_of(s, f, limit=1))
        many, (rows_many, _) = statements(db, lambda s, f=filters: queries.page_of(s, f, limit=50))
        assert len(rows_one) == 1 and len(rows_many) > 5
        assert one == many, filters
    one, _ = statements(db, lambda s: queries.board(s, queries.Filters(), per_state=1))
    many, board = statements(db, lambda s: queries.board(s, queries.Filters(), per_state=200))
    assert sum(len(column.data) for column in board.columns) == 60
    assert one == many
