"""Problems in a closed loop: reported, assigned, rectified with evidence, verified, closed.

Every change of state goes through ``rules.PROBLEM``; this module adds what a transition
carries (the department it is assigned to, the deadline, who asked for closure) and tells
people (inbox) and other systems (webhooks). Warnings that reach Firing become problems
through the ``shuzhi_on_warnings`` hook, and the worker runs reminders and escalation.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shuzhi.brain.models import EarlyWarning, Indicator
from shuzhi.core import audit, clock
from shuzhi.core import calendar as working
from shuzhi.core.db import Database
from shuzhi.core.errors import Message, NotFound, TooLarge, ValidationFailed
from shuzhi.core.permissions import SYSTEM, Actor, Scope, allowed, require
from shuzhi.core.plugins import Job, hookimpl
from shuzhi.core.settings import Settings, get_settings
from shuzhi.loop.models import Evidence, Problem, Reminder
from shuzhi.loop.rules import MILESTONE, PROBLEM, UNRECOVERED, Channel
from shuzhi.loop.schemas import ProblemAction, ProblemCreate, ProblemUpdate
from shuzhi.notify import service as notify
from shuzhi.orgs import queries as orgs
from shuzhi.orgs.models import Department
from shuzhi.regions import queries as regions
from shuzhi.regions.models import Region

log = logging.getLogger(__name__)

SEVERITY_OF_WARNING = {"info": "general", "warning": "serious", "critical": "major"}
_SAFE_NAME = re.compile(r"[^\w.\-\u4e00-\u9fff]+")


def scope_of(problem: Problem) -> Scope:
    return Scope(department_id=problem.department_id, region_code=problem.region_code)


def get(session: Session, problem_id: int) -> Problem:
    problem = session.get(Problem, problem_id)
    if problem is None:
        raise NotFound(Message("no problem {problem_id}", problem_id=problem_id), field="problem")
    return problem


def next_code(session: Session, year: int) -> str:
    prefix = f"WT-{year}-"
    last = session.scalar(
        select(func.max(Problem.code)).where(
            Problem.code.startswith(prefix), func.length(Problem.code) == len(prefix) + 5
        )
    )
    number = int(last[len(prefix) :]) + 1 if last and last[len(prefix) :].isdigit() else 1
    return f"{prefix}{number:05d}"


def department_of(session: Session, code: str, *, field: str = "department") -> Department:
    return orgs.department(session, code, field=field)


def _deadline(deadline: date | None, *, settings: Settings) -> date:
    if deadline is None:
        return working.default().add(working.today(), settings.loop.problem_days)
    return deadline


def counterpart(session: Session, owner: Department, region_code: str) -> Department:
    """The owner department's counterpart (对口部门) for a region: among the owner and the
    departments under it, the one whose region is nearest above or at ``region_code``."""
    ids = orgs.department_descendants(session, owner.id) | {owner.id}
    candidates = {
        dept.region_code: dept
        for dept in session.scalars(
            select(Department).where(Department.id.in_(ids)).order_by(Department.id.desc())
        )
    }
    region = regions.get(session, region_code)
    for code in reversed(region.path.strip("/").split("/")):
        if code in candidates:
            return candidates[code]
    return owner


# -- telling people ---------------------------------------------------------------------


def _tell(
    session: Session,
    problem: Problem,
    *,
    event: str,
    user_ids: Iterable[int],
    kind: str,
    title: str,
    key: str | None = None,
) -> None:
    notify.notify(
        session,
        user_ids=user_ids,
        key=key or f"problem:{problem.id}:{event}:{problem.updated_at.isoformat()}",
        kind=kind,
        title=title,
        body=problem.title,
        link=f"/problems/{problem.id}",
        object_type="problem",
        object_id=str(problem.id),
    )


def _publish(session: Session, problem: Problem, event: str, **extra: Any) -> None:
    notify.publish(
        session,
        event=f"problem.{event}",
        payload={
            "id": problem.id,
            "code": problem.code,
            "title": problem.title,
            "state": problem.state,
            "channel": problem.channel,
            "region": problem.region_code,
            "department": problem.department.code if problem.department else None,
            "deadline": problem.deadline.isoformat() if problem.deadline else None,
            "warning_id": problem.warning_id,
            **extra,
        },
    )


# -- reporting and changing -------------------------------------------------------------


def _check_region(session: Session, code: str) -> None:
    if session.get(Region, code) is None:
        raise ValidationFailed(Message("unknown region {code}", code=code), field="region")


def _co_departments(session: Session, codes: Sequence[str]) -> list[int]:
    return [department_of(session, code, field="co_departments").id for code in codes]


def _indicator(session: Session, code: str | None) -> Indicator | None:
    if code is None:
        return None
    indicator = session.scalar(select(Indicator).where(Indicator.code == code))
    if indicator is None:
        raise ValidationFailed(Message("unknown indicator {code!r}", code=code), field="indicator")
    return indicator


def report(
    session: Session,
    *,
    actor: Actor,
    data: ProblemCreate,
    warning: EarlyWarning | None = None,
    settings: Settings | None = None,
) -> Problem:
    """Put a problem on the list; with a department it is assigned at once."""
    settings = settings or get_settings()
    # a department reports on its own behalf; the reform office (unscoped) on anyone's
    where = Scope(department_id=actor.department_id, region_code=data.region)
    require(actor, "loop.report", where, what=Message("region {region}", region=data.region))
    _check_region(session, data.region)
    department = department_of(session, data.department) if data.department else None
    indicator = _indicator(session, data.indicator)
    if data.code and session.scalar(select(Problem.id).where(Problem.code == data.code)):
        raise ValidationFailed(
            Message("problem {code} exists already", code=data.code), field="code"
        )
    now = clock.now()
    problem = Problem(
        code=data.code or next_code(session, now.year),
        title=data.title,
        description=data.description,
        channel=data.channel.value,
        system=data.system.value,
        region_code=data.region,
        severity=data.severity.value,
        state=PROBLEM.initial,
        responsible_person=data.responsible_person,
        co_departments=_co_departments(session, data.co_departments),
        measures=data.measures,
        deadline=data.deadline,
        warning_id=warning.id if warning else None,
        indicator_id=indicator.id if indicator else None,
        evidence_count=0,
        escalation=0,
        reported_at=now,
        reported_by=actor.name,
        updated_at=now,
    )
    session.add(problem)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="problem.report",
        object_type="loop_problem",
        object_id=problem.id,
        object_repr=problem.code,
        after={"code": problem.code, "title": problem.title, "channel": problem.channel},
    )
    _publish(session, problem, "reported")
    if department is not None:
        assign(
            session,
            problem,
            actor=actor,
            department=department,
            deadline=data.deadline,
            settings=settings,
        )
    return problem


def assign(
    session: Session,
    problem: Problem,
    *,
    actor: Actor,
    department: Department,
    deadline: date | None = None,
    comment: str | None = None,
    transition: str = "assign",
    settings: Settings | None = None,
) -> Problem:
    """Assign (or, with a comment, reassign) a problem to a department and a deadline."""
    settings = settings or get_settings()
    name = transition
    PROBLEM.fire(
        session,
        problem,
        name,
        actor=actor,
        scope=scope_of(problem),
        object_id=str(problem.id),
        comment=comment,
    )
    before = problem.department.code if problem.department else None
    problem.department_id = department.id
    problem.department = department
    problem.deadline = _deadline(deadline or problem.deadline, settings=settings)
    problem.assigned_at = problem.updated_at = clock.now()
    problem.escalation, problem.escalated_to_id = 0, None
    problem.rectifier_id = None
    audit.record(
        session,
        actor=actor,
        action=f"problem.{name}_to",
        object_type="loop_problem",
        object_id=problem.id,
        object_repr=problem.code,
        before={"department": before},
        after={"department": department.code, "deadline": problem.deadline.isoformat()},
    )
    _tell(
        session,
        problem,
        event=name,
        user_ids=orgs.users_who(
            session, "loop.rectify", scope_of(problem), department_id=department.id
        ),
        kind="assigned",
        title=f"交办问题 {problem.code}，整改期限 {problem.deadline.isoformat()}",
    )
    _publish(session, problem, "assigned")
    return problem


# what holds evidence, by its object type: a refusal names it by its machine's name, which a
# page says in Chinese
_HOLDERS = {"problem": PROBLEM, "milestone": MILESTONE}


def _holder(object_type: str) -> Message:
    return Message(_HOLDERS[object_type].name)


def own_evidence(session: Session, object_type: str, object_id: int, ids: Sequence[int]) -> None:
    """Refuse attachments that are not evidence given to this very item."""
    if not ids:
        return
    found = set(
        session.scalars(
            select(Evidence.id).where(
                Evidence.id.in_(ids),
                Evidence.object_type == object_type,
                Evidence.object_id == object_id,
            )
        )
    )
    missing = sorted(set(ids) - found)
    if missing:
        raise ValidationFailed(
            Message(
                "evidence {join} is not this {object_type}'s",
                join=", ".join(map(str, missing)),
                object_type=_holder(object_type),
            ),
            field="attachments",
        )


def act(
    session: Session,
    *,
    actor: Actor,
    problem_id: int,
    action: ProblemAction,
    settings: Settings | None = None,
) -> Problem:
    """Fire a transition of a problem with what it needs."""
    settings = settings or get_settings()
    problem = get(session, problem_id)
    if action.transition in ("assign", "reassign"):
        if not action.department:
            raise ValidationFailed(
                Message(
                    "{transition} needs a department",
                    transition=action.transition,
                    transition_label=PROBLEM.transitions[action.transition].zh,
                ),
                field="department",
            )
        return assign(
            session,
            problem,
            actor=actor,
            department=department_of(session, action.department),
            deadline=action.deadline,
            comment=action.comment,
            transition=action.transition,
            settings=settings,
        )
    own_evidence(session, "problem", problem.id, action.attachments)
    PROBLEM.fire(
        session,
        problem,
        action.transition,
        actor=actor,
        scope=scope_of(problem),
        object_id=str(problem.id),
        comment=action.comment,
        attachments=action.attachments,
    )
    now = clock.now()
    problem.updated_at = now
    scope = scope_of(problem)
    if action.transition == "request_closure":
        problem.rectifier_id = actor.id
        verifiers = [u for u in orgs.users_who(session, "loop.verify", scope) if u != actor.id]
        _tell(
            session,
            problem,
            event="request_closure",
            user_ids=verifiers,
            kind="verification_requested",
            title=f"问题 {problem.code} 申请销号，请核验",
        )
    elif action.transition == "send_back":
        rectifiers = orgs.users_who(
            session, "loop.rectify", scope, department_id=problem.department_id
        )
        _tell(
            session,
            problem,
            event="send_back",
            user_ids=rectifiers,
            kind="sent_back",
            title=f"问题 {problem.code} 被退回整改：{action.comment}",
        )
    elif action.transition == "close":
        closed_on = working.local_date(now)
        problem.closed_at = now
        problem.closed_on_time = problem.deadline is None or closed_on <= problem.deadline
        problem.days_to_close = (closed_on - working.local_date(problem.reported_at)).days
    _publish(session, problem, action.transition, actor=actor.name, comment=action.comment)
    return problem


def update(session: Session, *, actor: Actor, problem_id: int, data: ProblemUpdate) -> Problem:
    """Change a problem's details: the reform office any of them, the responsible
    department its measures and responsible person."""
    problem = get(session, problem_id)
    if problem.state == "closed":
        raise ValidationFailed(
            Message("problem {code} is closed (销号)", code=problem.code), field="state"
        )
    changes = data.model_dump(exclude_unset=True)
    rectifier_fields = {"measures", "responsible_person"}
    action = "loop.rectify" if set(changes) <= rectifier_fields else "loop.assign"
    if action == "loop.rectify" and allowed(actor, "loop.assign", scope_of(problem)):
        action = "loop.assign"
    require(actor, action, scope_of(problem), what=Message("problem {code}", code=problem.code))
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "co_departments":
            value = _co_departments(session, value or [])
        elif name == "deadline" and value is None:
            raise ValidationFailed(
                Message("a problem's deadline cannot be removed"), field="deadline"
            )
        elif hasattr(value, "value"):
            value = value.value
        old = getattr(problem, name)
        if old != value:
            before[name], after[name] = _plain(old), _plain(value)
            setattr(problem, name, value)
    if after:
        problem.updated_at = clock.now()
        audit.record(
            session,
            actor=actor,
            action="problem.update",
            object_type="loop_problem",
            object_id=problem.id,
            object_repr=problem.code,
            before=before,
            after=after,
        )
    return problem


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


# -- evidence ---------------------------------------------------------------------------


def evidence_dir(settings: Settings) -> Path:
    return settings.data_dir / "evidence"


def store_file(content: bytes, *, settings: Settings) -> tuple[str, Path]:
    """Keep ``content`` under the data directory by its SHA-256 (the same file twice is
    stored once); returns the hash and the path."""
    digest = hashlib.sha256(content).hexdigest()
    path = evidence_dir(settings) / digest[:2] / digest
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(content)
        partial.replace(path)
    return digest, path


def add_evidence(
    session: Session,
    *,
    actor: Actor,
    target: Any,
    object_type: str,
    action: str,
    scope: Scope,
    filename: str,
    content: bytes,
    content_type: str = "application/octet-stream",
    note: str = "",
    settings: Settings | None = None,
) -> Evidence:
    settings = settings or get_settings()
    require(
        actor,
        action,
        scope,
        what=Message("{object_type} {id}", object_type=_holder(object_type), id=target.id),
    )
    if getattr(target, "state", None) in ("closed", "verified"):
        raise ValidationFailed(
            Message(
                "{object_type} {id} is {state}: no more evidence",
                object_type=_holder(object_type),
                id=target.id,
                state=target.state,
                state_label=_HOLDERS[object_type].state_label(target.state),
            )
        )
    limit = settings.loop.evidence_max_mb * 1_000_000
    if len(content) > limit:
        raise TooLarge(
            Message(
                "{filename}: evidence is at most {evidence_max_mb} MB",
                filename=filename,
                evidence_max_mb=settings.loop.evidence_max_mb,
            )
        )
    if not content:
        raise ValidationFailed(
            Message("{filename}: the file is empty", filename=filename), field="file"
        )
    name = _SAFE_NAME.sub("_", Path(filename or "evidence").name).strip("._")[:200] or "evidence"
    digest, _ = store_file(content, settings=settings)
    evidence = Evidence(
        object_type=object_type,
        object_id=target.id,
        filename=name,
        content_type=(content_type or "application/octet-stream")[:100],
        size=len(content),
        sha256=digest,
        note=note[:2000],
        uploaded_by=actor.name,
        uploaded_at=clock.now(),
    )
    session.add(evidence)
    target.evidence_count = (target.evidence_count or 0) + 1
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"{object_type}.evidence",
        object_type=f"loop_{object_type}",
        object_id=target.id,
        after={"evidence": evidence.id, "filename": name, "sha256": digest},
    )
    return evidence


def add_problem_evidence(
    session: Session,
    *,
    actor: Actor,
    problem_id: int,
    filename: str,
    content: bytes,
    content_type: str = "application/octet-stream",
    note: str = "",
    settings: Settings | None = None,
) -> Evidence:
    problem = get(session, problem_id)
    return add_evidence(
        session,
        actor=actor,
        target=problem,
        object_type="problem",
        action="loop.rectify",
        scope=scope_of(problem),
        filename=filename,
        content=content,
        content_type=content_type,
        note=note,
        settings=settings,
    )


def evidence_file(
    session: Session, evidence_id: int, *, settings: Settings | None = None
) -> tuple[Evidence, Path]:
    settings = settings or get_settings()
    evidence = session.get(Evidence, evidence_id)
    if evidence is None:
        raise NotFound(
            Message("no evidence {evidence_id}", evidence_id=evidence_id), field="evidence"
        )
    path = evidence_dir(settings) / evidence.sha256[:2] / evidence.sha256
    if not path.is_file():
        raise NotFound(
            Message(
                "the file of evidence {evidence_id} is missing from the data directory",
                evidence_id=evidence_id,
            )
        )
    return evidence, path


# -- warnings become problems -----------------------------------------------------------


def raise_from_warnings(
    db: Database, *, warning_ids: Iterable[int] | None = None, settings: Settings | None = None
) -> int:
    """One problem for each firing warning that has no open problem yet, assigned to the
    indicator owner's counterpart for the warning's region. Idempotent: the hook after an
    evaluation and the worker both call it."""
    settings = settings or get_settings()
    created = 0
    with db.transaction() as session:
        open_for = select(Problem.warning_id).where(
            Problem.warning_id.is_not(None), Problem.state != "closed"
        )
        query = select(EarlyWarning).where(
            EarlyWarning.state == "firing", EarlyWarning.id.not_in(open_for)
        )
        if warning_ids is not None:
            query = query.where(EarlyWarning.id.in_(list(warning_ids)))
        names = {region.code: region.name for region in session.scalars(select(Region))}
        for warning in session.scalars(query.order_by(EarlyWarning.id).with_for_update()):
            indicator = warning.indicator
            department = counterpart(session, indicator.owner, warning.region_code)
            region = names.get(warning.region_code, warning.region_code)
            data = ProblemCreate(
                title=f"【预警】{region}{indicator.name}：{warning.rule.name}"[:300],
                description=warning.message,
                channel=Channel.warning,
                system=indicator.system,
                region=warning.region_code,
                severity=SEVERITY_OF_WARNING.get(warning.rule.severity, "general"),
                department=department.code,
                indicator=indicator.code,
            )
            report(session, actor=SYSTEM, data=data, warning=warning, settings=settings)
            created += 1
    return created


def on_warning_changes(db: Database, changes: Sequence[dict[str, Any]]) -> None:
    """After an evaluation: raise problems for warnings that fired, and tell the verifiers
    of problems whose warnings recovered that they can now be verified."""
    fired = [c["warning_id"] for c in changes if c.get("to_state") == "firing"]
    if fired:
        raise_from_warnings(db, warning_ids=fired)
    recovered = [c["warning_id"] for c in changes if c.get("to_state") not in UNRECOVERED]
    if not recovered:
        return
    with db.transaction() as session:
        for problem in session.scalars(
            select(Problem).where(
                Problem.warning_id.in_(recovered),
                Problem.state.in_(("closure_requested", "verified")),
            )
        ):
            _tell(
                session,
                problem,
                event="warning_recovered",
                user_ids=orgs.users_who(session, "loop.verify", scope_of(problem)),
                kind="warning_recovered",
                title=f"问题 {problem.code} 关联预警已恢复，可以核验销号",
            )


# -- reminders and escalation -----------------------------------------------------------


def remind(db: Database, _worker: str = "", *, settings: Settings | None = None) -> int:
    """Remind departments of deadlines coming and passed, and escalate overdue problems one
    department up every ``loop.escalate_days`` working days. Each is sent once: what was
    sent is read in one query, so a tick over many overdue problems stays cheap."""
    settings = settings or get_settings()
    calendar = working.default()
    today = working.today()
    soon = calendar.add(today, settings.loop.warn_days)
    handled = 0
    with db.transaction() as session:
        due = list(
            session.scalars(
                select(Problem)
                .where(
                    Problem.state.in_(("assigned", "rectifying")),
                    Problem.deadline.is_not(None),
                    Problem.deadline <= soon,
                )
                .order_by(Problem.id)
            )
        )
        sent = {
            (object_id, kind)
            for object_id, kind in session.execute(
                select(Reminder.object_id, Reminder.kind).where(
                    Reminder.object_type == "problem",
                    Reminder.object_id.in_(
                        select(Problem.id).where(
                            Problem.state.in_(("assigned", "rectifying")),
                            Problem.deadline <= soon,
                        )
                    ),
                )
            )
        }
        people: dict[int | None, list[int]] = {}

        def told(problem: Problem) -> list[int]:
            if problem.department_id not in people:
                people[problem.department_id] = orgs.users_who(
                    session, "loop.rectify", scope_of(problem), department_id=problem.department_id
                )
            return people[problem.department_id]

        now = clock.now()
        for problem in due:
            deadline = problem.deadline
            assert deadline is not None
            late = deadline < today
            key = f"{'overdue' if late else 'approaching'}:{deadline.isoformat()}"
            if (problem.id, key) not in sent:
                session.add(Reminder(object_type="problem", object_id=problem.id, kind=key, at=now))
                _tell(
                    session,
                    problem,
                    event=key,
                    key=f"problem:{problem.id}:{key}",
                    user_ids=told(problem),
                    kind="deadline_passed" if late else "deadline_approaching",
                    title=f"问题 {problem.code} 已逾期（期限 {deadline.isoformat()}）"
                    if late
                    else f"问题 {problem.code} 将于 {deadline.isoformat()} 到期",
                )
                if late:
                    _publish(session, problem, "overdue")
                handled += 1
            if late:
                level = calendar.between(deadline, today) // settings.loop.escalate_days
                if level > problem.escalation:
                    handled += _escalate(session, problem, level=level)
    return handled


def _escalate(session: Session, problem: Problem, *, level: int) -> int:
    current = session.get(Department, problem.escalated_to_id or problem.department_id or 0)
    upper = current.parent if current is not None else None
    if upper is None:
        return 0
    problem.escalation = min(level, problem.escalation + 1)
    problem.escalated_to_id = upper.id
    audit.record(
        session,
        actor=SYSTEM,
        action="problem.escalate",
        object_type="loop_problem",
        object_id=problem.id,
        object_repr=problem.code,
        after={"escalation": problem.escalation, "to": upper.code},
    )
    _tell(
        session,
        problem,
        event=f"escalated:{problem.escalation}",
        key=f"problem:{problem.id}:escalated:{problem.escalation}",
        user_ids=orgs.users_who(
            session,
            "loop.rectify",
            Scope(department_id=upper.id, region_code=upper.region_code),
            department_id=upper.id,
        ),
        kind="escalated",
        title=f"逾期督办：问题 {problem.code}（{upper.name}）",
    )
    _publish(session, problem, "escalated", to=upper.code, level=problem.escalation)
    return 1


def sync_warnings(db: Database, _worker: str = "") -> int:
    return raise_from_warnings(db)


@hookimpl
def shuzhi_jobs() -> list[Job]:
    return [Job("loop.warnings", sync_warnings), Job("loop.remind", remind)]


@hookimpl
def shuzhi_on_warnings(database: Database, changes: list[dict[str, Any]]) -> None:
    on_warning_changes(database, changes)
