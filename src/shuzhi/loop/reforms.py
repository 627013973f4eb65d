"""Keeping the ledger of major reforms (重大改革"一本账"): reforms written from specs (YAML,
the API, an Excel import), periodic check-ins (动态更新), milestones submitted with evidence
and verified by someone else.

- ``apply_specs`` creates or updates reforms by code, idempotently and all or nothing:
  every department, indicator and region code is checked before anything is written, and
  a reform whose spec changes nothing counts as unchanged and gets no new version.
  Milestones are matched by name (a changed due date or weight is updated, a new one
  added, one no longer listed removed only while it is still planned: a submitted or
  verified milestone stays); key results are replaced.
- A reform's batch is kept year by year (``ReformBatch``): ``batch`` is this year's and
  ``batches`` earlier years'; a year never mentioned again keeps what it had, so a reform
  that moves 谋划推进 → 启动实施 → 迭代升级 keeps its history.
- Milestones move through ``rules.MILESTONE``: submitting needs evidence, verifying needs
  someone other than the submitter.
- Every change, check-in, milestone step and evidence file writes the change log and a
  ``ReformVersion`` holding the whole reform as it then stood, so ``ledger.ledger(as_of=)``
  can show the ledger at any past date. The worker's ``loop.reforms`` job adds a version
  (kind ``recomputed``) whenever a reform's computed progress or light moved (new
  indicator values, a due date passing) and reminds lead departments of milestones due
  within ``loop.warn_days`` working days or overdue.

Progress and light are computed, never typed: the rule is in ``shuzhi.loop.ledger``.

Permissions: ``loop.ledger`` on the reform's region to create or change it;
``loop.check_in`` on its lead department (and region) to check in, give evidence and
submit milestones; ``loop.verify`` there to verify or send back a milestone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shuzhi.brain.models import Indicator
from shuzhi.core import audit, clock
from shuzhi.core import calendar as working
from shuzhi.core.db import Database
from shuzhi.core.documents import load_yaml
from shuzhi.core.errors import (
    Message,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationFailed,
)
from shuzhi.core.permissions import SYSTEM, Actor, Scope, require
from shuzhi.core.plugins import Job, hookimpl
from shuzhi.core.settings import Settings, get_settings
from shuzhi.loop import ledger
from shuzhi.loop import service as loop_service
from shuzhi.loop.models import (
    Evidence,
    Milestone,
    Reform,
    ReformBatch,
    ReformKeyResult,
    ReformVersion,
    Reminder,
)
from shuzhi.loop.rules import MILESTONE
from shuzhi.loop.schemas import ApplyReport, MilestoneAction, ReformSpec
from shuzhi.notify import service as notify
from shuzhi.orgs import queries as orgs_queries
from shuzhi.orgs.models import Department
from shuzhi.regions.models import Region

log = logging.getLogger(__name__)

PROGRESS_EPSILON = 1e-9  # a recomputed progress closer than this to the last is unchanged


def locked(session: Session, code: str) -> Reform:
    """The reform, its row locked until the transaction ends (PostgreSQL), so that two
    writers never number a version alike."""
    found = session.scalar(select(Reform).where(Reform.code == code).with_for_update(of=Reform))
    if found is None:
        raise NotFound(Message("no reform {code!r}", code=code), field="reform")
    return found


def lead_scope(reform: Reform) -> Scope:
    """What check-ins, evidence and milestone steps are checked against."""
    return Scope(department_id=reform.lead_department_id, region_code=reform.region_code)


def ledger_scope(region_code: str) -> Scope:
    """What creating or changing a reform is checked against."""
    return Scope(region_code=region_code)


# -- reading a file ---------------------------------------------------------------------


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{loc}: {message}" if loc else message


def parse_yaml(text: str, *, source: str) -> list[ReformSpec]:
    """Every reform of a YAML document (a ``reforms:`` list), or one error naming the
    document and the reform."""
    document = load_yaml(text, source=source)
    if not isinstance(document, dict) or not isinstance(document.get("reforms"), list):
        raise ValidationFailed(
            Message("{source}: expected a mapping with a 'reforms' list", source=source)
        )
    specs = []
    for index, item in enumerate(document["reforms"], start=1):
        code = item.get("code") if isinstance(item, dict) else None
        label = code if isinstance(code, str) else f"#{index}"
        try:
            specs.append(ReformSpec.model_validate(item))
        except ValidationError as exc:
            raise ValidationFailed(
                Message(
                    "{source}: reform {label}: {first}",
                    source=source,
                    label=label,
                    first=_first(exc),
                )
            ) from None
    return specs


# -- validating specs against the store -------------------------------------------------


@dataclass(frozen=True)
class _Wanted:
    """A spec with its codes resolved: what the reform's rows should hold."""

    spec: ReformSpec
    fields: dict[str, Any]
    batches: dict[int, str]
    milestones: dict[str, tuple[date, float]]
    key_results: list[tuple[int, str, float | None, date, float, date, float]]


class _Lookups:
    """Departments, indicators and regions named by a set of specs, fetched once."""

    def __init__(self, session: Session, specs: Sequence[ReformSpec]) -> None:
        departments = {code for spec in specs for code in (spec.lead, *spec.participants)}
        indicators = {kr.indicator for spec in specs for kr in spec.key_results}
        regions = {spec.region for spec in specs} | {
            kr.region for spec in specs for kr in spec.key_results
        }
        self.departments: dict[str, int] = dict(
            session.execute(
                select(Department.code, Department.id).where(Department.code.in_(departments))
            ).all()
        )
        self.indicators: dict[str, int] = dict(
            session.execute(
                select(Indicator.code, Indicator.id).where(Indicator.code.in_(indicators))
            ).all()
        )
        self.regions = set(session.scalars(select(Region.code).where(Region.code.in_(regions))))


def _resolve(spec: ReformSpec, found: _Lookups, *, year: int, source: str) -> _Wanted:
    def fail(field: str, reason: str) -> ValidationFailed:
        return ValidationFailed(f"{source}: reform {spec.code}: {field}: {reason}", field=field)

    if spec.lead not in found.departments:
        raise fail("lead", f"unknown department {spec.lead!r}")
    for index, code in enumerate(spec.participants):
        if code not in found.departments:
            raise fail(f"participants[{index}]", f"unknown department {code!r}")
    if spec.region not in found.regions:
        raise fail("region", f"unknown region {spec.region}")
    batches = {}
    for when, batch in sorted(spec.batches.items()):
        if when > year or (when == year and batch != spec.batch):
            raise fail(
                f"batches.{when}",
                f"batches holds earlier years; this year's ({year}) batch is {spec.batch.value}",
            )
        batches[when] = batch.value
    batches[year] = spec.batch.value
    milestones: dict[str, tuple[date, float]] = {}
    for index, item in enumerate(spec.milestones):
        if item.name in milestones:
            raise fail(f"milestones[{index}].name", f"milestone {item.name!r} appears twice")
        milestones[item.name] = (item.due, item.weight)
    key_results = []
    for index, kr in enumerate(spec.key_results):
        where = f"key_results[{index}]"
        if kr.indicator not in found.indicators:
            raise fail(f"{where}.indicator", f"unknown indicator {kr.indicator!r}")
        if kr.region not in found.regions:
            raise fail(f"{where}.region", f"unknown region {kr.region}")
        if kr.target_on <= kr.baseline_on:
            raise fail(f"{where}.target_on", "target_on must come after baseline_on")
        key_results.append(
            (found.indicators[kr.indicator], kr.region, kr.baseline, kr.baseline_on, kr.target,
             kr.target_on, kr.weight)
        )  # fmt: skip
    fields = {
        "name": spec.name,
        "system": spec.system.value,
        "batch": spec.batch.value,
        "level": spec.level.value,
        "lead_department_id": found.departments[spec.lead],
        "participants": [found.departments[code] for code in spec.participants],
        "region_code": spec.region,
        "starts_on": spec.starts_on,
        "ends_on": spec.ends_on,
        "description": spec.description,
    }
    return _Wanted(spec, fields, batches, milestones, key_results)


def _stored_key_results(
    reform: Reform,
) -> list[tuple[int, str, float | None, date, float, date, float]]:
    return [
        (kr.indicator_id, kr.region_code, kr.baseline, kr.baseline_on, kr.target, kr.target_on,
         kr.weight)
        for kr in sorted(reform.key_results, key=lambda k: k.position)
    ]  # fmt: skip


def _changes(reform: Reform, wanted: _Wanted) -> bool:
    """Whether applying ``wanted`` would change anything of ``reform``."""
    if any(getattr(reform, key) != value for key, value in wanted.fields.items()):
        return True
    had = {row.year: row.batch for row in reform.batches}
    if {**had, **wanted.batches} != had:
        return True
    current = {item.name: item for item in reform.milestones}
    for name, (due, weight) in wanted.milestones.items():
        item = current.get(name)
        if item is None or item.due != due or item.weight != weight:
            return True
    if any(
        name not in wanted.milestones and item.state == MILESTONE.initial
        for name, item in current.items()
    ):
        return True
    return _stored_key_results(reform) != wanted.key_results


def _described(reform: Reform, codes: dict[int, str], indicators: dict[int, str]) -> dict[str, Any]:
    """The reform as the change log shows it (codes, not ids)."""
    milestones = sorted(reform.milestones, key=lambda m: (m.due, m.name))
    key_results = sorted(reform.key_results, key=lambda k: k.position)
    return {
        "name": reform.name,
        "system": reform.system,
        "batch": reform.batch,
        "level": reform.level,
        "lead": codes.get(reform.lead_department_id),
        "participants": [codes.get(i) for i in reform.participants],
        "region": reform.region_code,
        "starts_on": reform.starts_on,
        "ends_on": reform.ends_on,
        "description": reform.description,
        "batches": {str(row.year): row.batch for row in reform.batches},
        "milestones": [
            {"name": m.name, "due": m.due, "weight": m.weight, "state": m.state} for m in milestones
        ],
        "key_results": [
            {
                "indicator": indicators.get(kr.indicator_id),
                "region": kr.region_code,
                "baseline": kr.baseline,
                "baseline_on": kr.baseline_on,
                "target": kr.target,
                "target_on": kr.target_on,
                "weight": kr.weight,
            }
            for kr in key_results
        ],
    }


def _write(reform: Reform, wanted: _Wanted) -> None:
    for key, value in wanted.fields.items():
        setattr(reform, key, value)
    years = {row.year: row for row in reform.batches}
    for year, batch in wanted.batches.items():
        if year in years:
            years[year].batch = batch
        else:
            reform.batches.append(ReformBatch(year=year, batch=batch))
    current = {item.name: item for item in reform.milestones}
    for name, (due, weight) in wanted.milestones.items():
        item = current.get(name)
        if item is None:
            reform.milestones.append(
                Milestone(name=name, due=due, weight=weight, state=MILESTONE.initial,
                          evidence_count=0)
            )  # fmt: skip
        else:
            item.due, item.weight = due, weight
    for name, item in current.items():
        if name not in wanted.milestones and item.state == MILESTONE.initial:
            reform.milestones.remove(item)
    if _stored_key_results(reform) != wanted.key_results:
        reform.key_results.clear()
        for position, (indicator_id, region, baseline, baseline_on, target, target_on,
                       weight) in enumerate(wanted.key_results):  # fmt: skip
            reform.key_results.append(
                ReformKeyResult(position=position, indicator_id=indicator_id, region_code=region,
                                baseline=baseline, baseline_on=baseline_on, target=target,
                                target_on=target_on, weight=weight)
            )  # fmt: skip


def _may_keep_the_ledger(actor: Actor) -> None:
    if not actor.authenticated:
        raise Unauthenticated(Message("log in or present an API token"))
    if not actor.scopes_for("loop.ledger"):
        raise PermissionDenied(Message("{name} may not loop.ledger", name=actor.name))


def apply_specs(
    session: Session, *, actor: Actor, specs: list[ReformSpec], source: str
) -> ApplyReport:
    """Create or update every reform of ``specs`` by code, all or nothing: each is checked
    (its codes, the actor's ``loop.ledger`` on its region, and on the region it had)
    before any is written; an unchanged reform gets no new version."""
    _may_keep_the_ledger(actor)
    codes = [spec.code for spec in specs]
    twice = sorted({code for code in codes if codes.count(code) > 1})
    if twice:
        raise ValidationFailed(
            Message(
                "{source}: reform {twice_item} appears twice", source=source, twice_item=twice[0]
            ),
            field="code",
        )
    year = working.today().year
    found = _Lookups(session, specs)
    wanted = [_resolve(spec, found, year=year, source=source) for spec in specs]
    existing = {
        row.code: row
        for row in session.scalars(
            select(Reform).where(Reform.code.in_(codes)).with_for_update(of=Reform)
        )
    }
    for item in wanted:
        code = item.spec.code
        require(
            actor,
            "loop.ledger",
            ledger_scope(item.spec.region),
            what=Message("reform {code}", code=code),
        )
        if code in existing and existing[code].region_code != item.spec.region:
            old = existing[code].region_code
            require(
                actor, "loop.ledger", ledger_scope(old), what=Message("reform {code}", code=code)
            )
    department_codes = dict(session.execute(select(Department.id, Department.code)).all())
    indicator_codes = {value: key for key, value in found.indicators.items()}
    indicator_codes.update(
        session.execute(
            select(Indicator.id, Indicator.code).where(
                Indicator.id.in_(
                    {kr.indicator_id for row in existing.values() for kr in row.key_results}
                )
            )
        ).all()
    )
    report = ApplyReport(created=0, updated=0, unchanged=0)
    now = clock.now()
    touched: list[tuple[Reform, str]] = []
    for item in wanted:
        reform = existing.get(item.spec.code)
        if reform is None:
            reform = Reform(code=item.spec.code, version=1, created_at=now, updated_at=now)
            _write(reform, item)
            session.add(reform)
            session.flush()
            audit.record(
                session,
                actor=actor,
                action="reform.create",
                object_type="loop_reform",
                object_id=reform.id,
                object_repr=reform.code,
                after=_described(reform, department_codes, indicator_codes),
            )
            report.created += 1
            touched.append((reform, "created"))
            continue
        if not _changes(reform, item):
            report.unchanged += 1
            continue
        before = _described(reform, department_codes, indicator_codes)
        _write(reform, item)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="reform.update",
            object_type="loop_reform",
            object_id=reform.id,
            object_repr=reform.code,
            before=before,
            after=_described(reform, department_codes, indicator_codes),
        )
        report.updated += 1
        touched.append((reform, "changed"))
    for kind in ("created", "changed"):
        group = [reform for reform, what in touched if what == kind]
        if group:
            _versions(session, group, actor=actor, kind=kind, note=source, bump=kind != "created")
    return report


def apply_yaml(session: Session, *, actor: Actor, text: str, source: str) -> ApplyReport:
    """``apply_specs`` over a YAML document's ``reforms:`` list."""
    return apply_specs(session, actor=actor, specs=parse_yaml(text, source=source), source=source)


# -- versions ---------------------------------------------------------------------------


def _versions(
    session: Session,
    reforms: Sequence[Reform],
    *,
    actor: Actor,
    kind: str,
    note: str,
    bump: bool = True,
    evaluated: dict[int, ledger.Evaluated] | None = None,
    settings: Settings | None = None,
) -> list[ReformVersion]:
    """A version of each reform as it stands now (computed once for all of them)."""
    now = clock.now()
    session.flush()
    if evaluated is None:
        evaluated = ledger.evaluate(
            session, reforms, today=working.local_date(now), settings=settings
        )
    rows = []
    for reform in reforms:
        if bump:
            reform.version += 1
        reform.updated_at = now
        found = evaluated[reform.id].stamped(reform.version, now)
        row = ReformVersion(
            reform_id=reform.id,
            version=reform.version,
            at=now,
            actor_name=actor.name,
            kind=kind,
            note=note,
            progress=found.public.progress,
            light=found.public.light,
            snapshot=found.snapshot(),
        )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def check_in(session: Session, *, actor: Actor, code: str, note: str) -> ReformVersion:
    """A periodic update (动态更新) of the reform by its lead department: a version with the
    note and the reform as it stands."""
    reform = locked(session, code)
    require(actor, "loop.check_in", lead_scope(reform), what=Message("reform {code}", code=code))
    note = (note or "").strip()
    if not note:
        raise ValidationFailed(Message("a check-in needs a note saying what moved"), field="note")
    audit.record(
        session,
        actor=actor,
        action="reform.check_in",
        object_type="loop_reform",
        object_id=reform.id,
        object_repr=reform.code,
        after={"note": note},
    )
    return _versions(session, [reform], actor=actor, kind="check_in", note=note)[0]


# -- milestones -------------------------------------------------------------------------


def milestone_of(reform: Reform, milestone_id: int) -> Milestone:
    for item in reform.milestones:
        if item.id == milestone_id:
            return item
    raise NotFound(
        Message(
            "reform {code} has no milestone {milestone_id}",
            code=reform.code,
            milestone_id=milestone_id,
        ),
        field="milestone",
    )


def _tell(
    session: Session,
    reform: Reform,
    milestone: Milestone,
    *,
    key: str,
    user_ids: Iterable[int],
    kind: str,
    title: str,
) -> None:
    notify.notify(
        session,
        user_ids=user_ids,
        key=f"milestone:{milestone.id}:{key}",
        kind=kind,
        title=title,
        body=f"{reform.name}：{milestone.name}",
        link=f"/reforms/{reform.code}",
        object_type="milestone",
        object_id=str(milestone.id),
    )


def milestone_act(
    session: Session, *, actor: Actor, code: str, milestone_id: int, action: MilestoneAction
) -> Milestone:
    """Submit a milestone as done (with evidence), verify it, or send it back."""
    reform = locked(session, code)
    milestone = milestone_of(reform, milestone_id)
    loop_service.own_evidence(session, "milestone", milestone.id, action.attachments)
    scope = lead_scope(reform)
    MILESTONE.fire(
        session,
        milestone,
        action.transition,
        actor=actor,
        scope=scope,
        object_id=str(milestone.id),
        comment=action.comment,
        attachments=action.attachments,
    )
    if action.transition == "submit":
        milestone.rectifier_id = actor.id
    elif action.transition == "verify":
        milestone.done_at = clock.now()
    label = MILESTONE.transitions[action.transition].zh
    note = f"{milestone.name}：{label}" + (f"（{action.comment}）" if action.comment else "")
    version = _versions(session, [reform], actor=actor, kind="milestone", note=note)[0]
    named = f"改革 {reform.code} 里程碑「{milestone.name}」"
    key = f"{action.transition}:v{version.version}"
    if action.transition == "submit":
        verifiers = orgs_queries.users_who(session, "loop.verify", scope)
        _tell(
            session,
            reform,
            milestone,
            key=key,
            user_ids=[user for user in verifiers if user != actor.id],
            kind="verification_requested",
            title=f"{named}已提交，请核验",
        )
    elif action.transition == "send_back":
        keepers = orgs_queries.users_who(
            session, "loop.check_in", scope, department_id=reform.lead_department_id
        )
        _tell(
            session,
            reform,
            milestone,
            key=key,
            user_ids=keepers,
            kind="sent_back",
            title=f"{named}被退回：{action.comment}",
        )
    return milestone


def add_milestone_evidence(
    session: Session,
    *,
    actor: Actor,
    code: str,
    milestone_id: int,
    filename: str,
    content: bytes,
    content_type: str = "application/octet-stream",
    note: str = "",
    settings: Settings | None = None,
) -> Evidence:
    """A file as evidence of a milestone, by its lead department (``loop.check_in``)."""
    reform = locked(session, code)
    milestone = milestone_of(reform, milestone_id)
    evidence = loop_service.add_evidence(
        session,
        actor=actor,
        target=milestone,
        object_type="milestone",
        action="loop.check_in",
        scope=lead_scope(reform),
        filename=filename,
        content=content,
        content_type=content_type,
        note=note,
        settings=settings,
    )
    _versions(
        session,
        [reform],
        actor=actor,
        kind="milestone",
        note=f"{milestone.name}：上传佐证材料 {evidence.filename}",
        settings=settings,
    )
    return evidence


# -- the worker -------------------------------------------------------------------------


def _moved(found: ledger.Evaluated, last: ReformVersion | None) -> bool:
    if last is None:
        return True
    if found.public.light != last.light:
        return True
    before, now = last.progress, found.public.progress
    if before is None or now is None:
        return before is not now
    return abs(before - now) > PROGRESS_EPSILON


def _once(session: Session, milestone: Milestone, kind: str) -> bool:
    exists = session.scalar(
        select(Reminder.id).where(
            Reminder.object_type == "milestone",
            Reminder.object_id == milestone.id,
            Reminder.kind == kind,
        )
    )
    if exists:
        return False
    session.add(
        Reminder(object_type="milestone", object_id=milestone.id, kind=kind, at=clock.now())
    )
    return True


def recompute(db: Database, _worker: str = "", *, settings: Settings | None = None) -> int:
    """A ``recomputed`` version of each reform whose computed progress or light moved
    since its last version, and a reminder (once) to the lead department of each planned
    milestone due within ``loop.warn_days`` working days or overdue. Returns how many."""
    settings = settings or get_settings()
    handled = 0
    with db.transaction() as session:
        reforms = list(
            session.scalars(select(Reform).order_by(Reform.id).with_for_update(of=Reform))
        )
        if not reforms:
            return 0
        today = working.today()
        evaluated = ledger.evaluate(session, reforms, today=today, settings=settings)
        newest = (
            select(ReformVersion.reform_id, func.max(ReformVersion.version).label("version"))
            .group_by(ReformVersion.reform_id)
            .subquery()
        )
        last = {
            row.reform_id: row
            for row in session.scalars(
                select(ReformVersion).join(
                    newest,
                    (ReformVersion.reform_id == newest.c.reform_id)
                    & (ReformVersion.version == newest.c.version),
                )
            )
        }
        moved = [reform for reform in reforms if _moved(evaluated[reform.id], last.get(reform.id))]
        if moved:
            _versions(session, moved, actor=SYSTEM, kind="recomputed", note="", evaluated=evaluated)
            handled += len(moved)
        handled += _remind(session, reforms, today=today, settings=settings)
    return handled


def _remind(session: Session, reforms: Sequence[Reform], *, today: date, settings: Settings) -> int:
    soon = working.default().add(today, settings.loop.warn_days)
    sent = 0
    for reform in reforms:
        for milestone in reform.milestones:
            if milestone.state != MILESTONE.initial or milestone.due > soon:
                continue
            late = milestone.due < today
            kind = f"{'overdue' if late else 'approaching'}:{milestone.due.isoformat()}"
            if not _once(session, milestone, kind):
                continue
            keepers = orgs_queries.users_who(
                session,
                "loop.check_in",
                lead_scope(reform),
                department_id=reform.lead_department_id,
            )
            due = milestone.due.isoformat()
            title = (
                f"改革 {reform.code} 里程碑「{milestone.name}」已逾期（{due}）"
                if late
                else f"改革 {reform.code} 里程碑「{milestone.name}」将于 {due} 到期"
            )
            kind_ = "deadline_passed" if late else "deadline_approaching"
            _tell(session, reform, milestone, key=kind, user_ids=keepers, kind=kind_, title=title)
            sent += 1
    return sent


@hookimpl
def shuzhi_jobs() -> list[Job]:
    return [Job("loop.reforms", recompute)]
