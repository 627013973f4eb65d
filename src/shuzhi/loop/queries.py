"""Reading the problem lists: filtered pages, statistics and a problem's page.

A list is one query for the page and one for the count; names of regions and departments
come from one lookup each per request, never one query per row (benchmarked with 100,000
problems in ``bench/loop.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from shuzhi.brain.models import Indicator
from shuzhi.core import calendar as working
from shuzhi.core import workflow
from shuzhi.core.enums import Light, System
from shuzhi.core.errors import Message, ValidationFailed
from shuzhi.core.models import WorkflowTransition
from shuzhi.core.permissions import Actor
from shuzhi.loop.models import Evidence, Problem
from shuzhi.loop.rules import DONE_STATES, PROBLEM, Channel
from shuzhi.loop.schemas import (
    ActionHint,
    Board,
    BoardColumn,
    EvidencePublic,
    ProblemPage,
    ProblemPublic,
    ProblemStats,
    Ref,
    StatRow,
    StepPublic,
    WarningLink,
)
from shuzhi.loop.service import scope_of
from shuzhi.orgs.models import Department
from shuzhi.regions.models import Region

SORTS = {
    # problems without a deadline (reported, not yet assigned) last on every backend
    "deadline": (Problem.deadline.asc().nulls_last(), Problem.id.asc()),
    "-deadline": (Problem.deadline.desc().nulls_last(), Problem.id.desc()),
    "reported": (Problem.reported_at.asc(), Problem.id.asc()),
    "-reported": (Problem.reported_at.desc(), Problem.id.desc()),
    "code": (Problem.code.asc(),),
}
# a board column's cards: assigned problems always have a deadline, so the plain order
# lets the (state, deadline) index serve it
_BOARD_ORDER = (Problem.deadline.asc(), Problem.id.asc())
DIMENSIONS = ("department", "region", "channel", "system", "state", "severity")
# not yet verified: spelled out, as SQLite uses no index for NOT IN
UNDONE = tuple(code for code in PROBLEM.states if code not in DONE_STATES)


@dataclass
class Filters:
    """What a problem list is narrowed to; every field optional."""

    states: Sequence[str] = ()
    channel: str | None = None
    system: str | None = None
    region: str | None = None
    department: str | None = None
    severity: str | None = None
    light: str | None = None
    q: str | None = None
    warning: bool | None = None
    indicator: str | None = None
    deadline_before: date | None = None
    deadline_after: date | None = None


class Names:
    """Region and department names for a whole page, fetched once."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._regions: dict[str, str] | None = None
        self._departments: dict[int, Department] | None = None

    def region(self, code: str) -> Ref:
        if self._regions is None:
            self._regions = dict(self.session.execute(select(Region.code, Region.name)).all())
        return Ref(code=code, name=self._regions.get(code, code))

    def department(self, department_id: int | None) -> Ref | None:
        if department_id is None:
            return None
        if self._departments is None:
            self._departments = {d.id: d for d in self.session.scalars(select(Department))}
        found = self._departments.get(department_id)
        return Ref(code=found.code, name=found.name) if found else None


def _today() -> date:
    return working.today()


def light_of(problem: Problem, today: date) -> str:
    """绿 once verified; 红 when open past its deadline; 黄 while it is being rectified
    (the problem-list practice: an open item is never green)."""
    return workflow.deadline_light(
        problem.deadline,
        today,
        done=problem.state in DONE_STATES,
        warn_days=0,
        calendar=working.default(),
        open_light=Light.yellow,
    ).value


def public(problem: Problem, names: Names, *, today: date | None = None) -> ProblemPublic:
    today = today or _today()
    calendar = working.default()
    overdue = 0
    if problem.deadline and problem.state not in DONE_STATES and today > problem.deadline:
        overdue = calendar.between(problem.deadline, today)
    warning = problem.warning
    return ProblemPublic(
        id=problem.id,
        code=problem.code,
        title=problem.title,
        description=problem.description,
        channel=problem.channel,
        system=problem.system,
        region=names.region(problem.region_code),
        severity=problem.severity,
        state=problem.state,
        department=names.department(problem.department_id),
        responsible_person=problem.responsible_person,
        co_departments=[ref for i in problem.co_departments if (ref := names.department(i))],
        measures=problem.measures,
        deadline=problem.deadline,
        light=light_of(problem, today),
        overdue_days=overdue,
        on_time=problem.closed_on_time,
        days_to_close=problem.days_to_close,
        warning=(
            WarningLink(
                id=warning.id,
                state=warning.state,
                rule=warning.rule.code,
                indicator=warning.indicator.code if warning.indicator else None,
                message=warning.message,
            )
            if warning is not None
            else None
        ),
        indicator=(
            Ref(code=problem.indicator.code, name=problem.indicator.name)
            if problem.indicator is not None
            else None
        ),
        evidence_count=problem.evidence_count,
        escalation=problem.escalation,
        escalated_to=names.department(problem.escalated_to_id),
        reported_at=problem.reported_at,
        reported_by=problem.reported_by,
        assigned_at=problem.assigned_at,
        closed_at=problem.closed_at,
    )


def _filtered(session: Session, query: Select, filters: Filters) -> Select:
    if filters.states:
        unknown = set(filters.states) - set(PROBLEM.states)
        if unknown:
            raise ValidationFailed(
                Message("unknown state {join}", join=", ".join(sorted(unknown))), field="state"
            )
        query = query.where(Problem.state.in_(list(filters.states)))
    if filters.channel:
        Channel.check(filters.channel, name="channel")
        query = query.where(Problem.channel == filters.channel)
    if filters.system:
        System.check(filters.system, name="system")
        query = query.where(Problem.system == filters.system)
    if filters.severity:
        query = query.where(Problem.severity == filters.severity)
    if filters.region:
        region = session.get(Region, filters.region)
        if region is None:
            raise ValidationFailed(
                Message("unknown region {region}", region=filters.region), field="region"
            )
        if region.parent_code is not None:
            query = query.where(
                Problem.region_code.in_(
                    select(Region.code).where(Region.path.startswith(region.path))
                )
            )
    if filters.department:
        department = session.scalar(select(Department).where(Department.code == filters.department))
        if department is None:
            raise ValidationFailed(
                Message("unknown department {department}", department=filters.department),
                field="department",
            )
        query = query.where(Problem.department_id == department.id)
    if filters.indicator:
        query = query.where(
            Problem.indicator_id.in_(
                select(Indicator.id).where(Indicator.code == filters.indicator)
            )
        )
    if filters.warning is not None:
        query = query.where(
            Problem.warning_id.is_not(None) if filters.warning else Problem.warning_id.is_(None)
        )
    if filters.q:
        needle = f"%{filters.q.strip()}%"
        query = query.where(or_(Problem.title.like(needle), Problem.code.like(needle)))
    if filters.deadline_before:
        query = query.where(Problem.deadline <= filters.deadline_before)
    if filters.deadline_after:
        query = query.where(Problem.deadline >= filters.deadline_after)
    if filters.light:
        query = query.where(_light_clause(filters.light, _today()))
    return query


def _light_clause(light: str, today: date) -> Any:
    undone = Problem.state.in_(UNDONE)
    overdue = and_(undone, Problem.deadline < today)
    if light == Light.green.value:
        return Problem.state.in_(list(DONE_STATES))
    if light == Light.red.value:
        return overdue
    if light == Light.yellow.value:
        return and_(undone, or_(Problem.deadline.is_(None), Problem.deadline >= today))
    raise ValidationFailed(Message("light is one of green, yellow, red"), field="light")


def search(
    session: Session,
    filters: Filters,
    *,
    limit: int = 50,
    offset: int = 0,
    sort: str = "-reported",
) -> tuple[list[Problem], int]:
    """A page of problems and how many match in all."""
    if sort not in SORTS:
        raise ValidationFailed(
            Message("sort is one of {join}", join=", ".join(SORTS)), field="sort"
        )
    count = session.scalar(_filtered(session, select(func.count()).select_from(Problem), filters))
    return _page(session, filters, order=SORTS[sort], limit=limit, offset=offset), count or 0


def _page(
    session: Session, filters: Filters, *, order: Sequence[Any], limit: int, offset: int
) -> list[Problem]:
    """The page's ids are chosen on the bare table first and the rows then joined to them
    with their relationships, so a deep page does not pay the joins of every row it skips
    (a join, not IN: PostgreSQL plans IN as a semi-join after the joins)."""
    ids = (
        _filtered(session, select(Problem.id), filters)
        .order_by(*order)
        .limit(limit)
        .offset(offset)
        .subquery()
    )
    query = select(Problem).join(ids, ids.c.id == Problem.id).order_by(*order)
    return list(session.scalars(query).unique())


def page_of(
    session: Session, filters: Filters, *, limit: int = 50, offset: int = 0, sort: str = "-reported"
) -> tuple[list[ProblemPublic], int]:
    rows, count = search(session, filters, limit=limit, offset=offset, sort=sort)
    names = Names(session)
    today = _today()
    return [public(problem, names, today=today) for problem in rows], count


def state_counts(session: Session, filters: Filters) -> dict[str, int]:
    query = _filtered(session, select(Problem.state, func.count(Problem.id)), filters).group_by(
        Problem.state
    )
    return {state: count for state, count in session.execute(query)}


def board(
    session: Session, filters: Filters, *, per_state: int = 20, locale: str = "zh-CN"
) -> Board:
    """A column per state (in the machine's order) with its count and its cards closest
    to their deadline first."""
    counts = state_counts(session, filters)
    names = Names(session)
    today = _today()
    columns = []
    for code, state in PROBLEM.states.items():
        rows: list[Problem] = []
        if counts.get(code):
            narrowed = Filters(**{**filters.__dict__, "states": (code,)})
            order = SORTS["-reported"] if code == "reported" else _BOARD_ORDER
            rows = _page(session, narrowed, order=order, limit=per_state, offset=0)
        columns.append(
            BoardColumn(
                state=code,
                label=state.label(locale),
                count=counts.get(code, 0),
                data=[public(problem, names, today=today) for problem in rows],
            )
        )
    return Board(columns=columns)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def stats(
    session: Session, *, by: str, filters: Filters | None = None, locale: str = "zh-CN"
) -> ProblemStats:
    """Counts, closure rate, on-time rate and mean days to 销号 grouped by ``by``: one
    aggregate query. By region, problems are counted under the filter region's children
    (the province's cities, a city's counties)."""
    if by not in DIMENSIONS:
        raise ValidationFailed(
            Message("by is one of {join}", join=", ".join(DIMENSIONS)), field="by"
        )
    filters = filters or Filters()
    today = _today()
    closed = Problem.state == "closed"
    undone = Problem.state.in_(UNDONE)
    measures = (
        func.count(),
        func.sum(case((closed, 1), else_=0)),
        # overdue as the light says it: not yet verified and past the deadline
        func.sum(case((and_(undone, Problem.deadline < today), 1), else_=0)),
        func.sum(case((and_(closed, Problem.closed_on_time.is_(True)), 1), else_=0)),
        func.avg(case((closed, Problem.days_to_close), else_=None)),
    )
    if by == "region":
        root = session.get(Region, filters.region or "") if filters.region else None
        if root is None:
            root = session.scalar(select(Region).where(Region.parent_code.is_(None)))
        assert root is not None
        width = 9 if root.level in ("county", "town") else 6
        key = func.substr(Region.path, len(root.path) + 1, width)
        query = select(key, *measures).join(Region, Region.code == Problem.region_code)
    elif by == "department":
        # "+ 0" keeps SQLite from reading the whole table in the order of the department
        # index to save a sort (3× slower at 100,000 rows); PostgreSQL hashes either way
        key = Problem.department_id + 0
        query = select(key, *measures)
    else:
        key = getattr(Problem, by)
        query = select(key, *measures)
    query = _filtered(session, query, filters).group_by(key)
    names = Names(session)
    rows = []
    for value, total, done, overdue, on_time, days in session.execute(query):
        label, code = _label(by, value, names, locale)
        rows.append(_row(code, label, total, done, overdue, on_time, days))
    rows.sort(key=lambda row: (-row.total, row.key))
    grand = [sum(getattr(row, name) for row in rows) for name in ("total", "closed", "overdue")]
    on_time_all = sum((row.on_time_rate or 0) * row.closed for row in rows)
    days_all = sum((row.average_days or 0) * row.closed for row in rows)
    total_row = _row(
        "*",
        "合计" if locale.startswith("zh") else "total",
        grand[0],
        grand[1],
        grand[2],
        round(on_time_all),
        days_all / grand[1] if grand[1] else None,
    )
    return ProblemStats(by=by, total=total_row, data=rows)


def _row(
    key: str, label: str, total: int, done: int, overdue: int, on_time: int, days: Any
) -> StatRow:
    total, done, overdue, on_time = (
        int(total or 0),
        int(done or 0),
        int(overdue or 0),
        int(on_time or 0),
    )
    return StatRow(
        key=key,
        label=label,
        total=total,
        open=total - done,
        closed=done,
        overdue=overdue,
        closure_rate=_rate(done, total),
        on_time_rate=_rate(on_time, done),
        average_days=round(float(days), 1) if days is not None else None,
    )


def _label(by: str, value: Any, names: Names, locale: str) -> tuple[str, str]:
    if value is None:
        return ("未指定" if locale.startswith("zh") else "unassigned"), "-"
    if by == "department":
        ref = names.department(value)
        return (ref.name, ref.code) if ref else (str(value), str(value))
    if by == "region":
        ref = names.region(value)
        return ref.name, ref.code
    if by == "state":
        return PROBLEM.states[value].label(locale), value
    enum = {"channel": Channel, "system": System}.get(by)
    if enum is not None and value in {m.value for m in enum}:
        return enum(value).label(locale), value
    return str(value), str(value)


def timeline(session: Session, object_type: str, object_id: int, machine: Any) -> list[StepPublic]:
    steps = workflow.history(session, object_type=object_type, object_id=str(object_id))
    return [_step(step, machine) for step in steps]


def _step(step: WorkflowTransition, machine: Any) -> StepPublic:
    transition = machine.transitions.get(step.transition)
    return StepPublic(
        transition=step.transition,
        label=transition.label() if transition else step.transition,
        from_state=step.from_state,
        to_state=step.to_state,
        actor=step.actor_name,
        at=step.at,
        comment=step.comment,
        attachments=list(step.attachments or []),
    )


def evidence_of(session: Session, object_type: str, object_id: int) -> list[EvidencePublic]:
    rows = session.scalars(
        select(Evidence)
        .where(Evidence.object_type == object_type, Evidence.object_id == object_id)
        .order_by(Evidence.id)
    )
    return [EvidencePublic.model_validate(row, from_attributes=True) for row in rows]


def page(session: Session, problem: Problem, *, actor: Actor) -> ProblemPage:
    actions = [
        ActionHint(name=t.name, label=t.label(), needs_comment=t.needs_comment)
        for t in PROBLEM.available(problem, actor, scope_of(problem))
    ]
    blocked = [
        ActionHint(name=t.name, label=t.label(), needs_comment=t.needs_comment, reason=reason)
        for t, reason in PROBLEM.blocked(problem, actor, scope_of(problem))
    ]
    return ProblemPage(
        problem=public(problem, Names(session)),
        timeline=timeline(session, "loop_problem", problem.id, PROBLEM),
        evidence=evidence_of(session, "problem", problem.id),
        actions=actions,
        blocked=blocked,
    )


def for_warning(session: Session, warning_id: int) -> list[ProblemPublic]:
    """The problems a warning raised, newest first (the warning's page shows them)."""
    names = Names(session)
    rows = session.scalars(
        select(Problem).where(Problem.warning_id == warning_id).order_by(Problem.id.desc())
    )
    return [public(problem, names) for problem in rows]
