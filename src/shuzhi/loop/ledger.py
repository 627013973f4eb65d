"""Reading the ledger of major reforms (重大改革"一本账"): the list now or as it stood on a
past date, a reform's page, and the batches for the cockpit home.

Progress and light are computed here, never typed in:

- A **milestone** is done once verified. Its light is ``core.workflow.deadline_light``:
  绿 when verified, 红 when open past its due date, 黄 when open within ``loop.warn_days``
  working days of it, 绿 otherwise. The milestones of a reform are as far along as the
  verified share of their weights.
- A **key result** reads the brain's computed values of its indicator in its region, at the
  indicator's reporting frequency: the newest value is the current one; the baseline is
  the one given, or else the value of the period that contains ``baseline_on``. Where it
  should stand is ``brain.goals.expected_at`` on the straight line from the baseline (at
  ``baseline_on``) to the target (at ``target_on``), at the end of the current value's
  period; its progress is ``brain.goals.progress`` and its light
  ``brain.goals.key_result_light`` (无数据 without a value).
- A **reform**'s progress is the weighted mean of the milestones' share (weighing the
  milestones' total weight) and of each key result's progress (weighing its weight); a
  key result without data is left out rather than counted as nothing. Its light is the
  worst of its milestones' lights and its key results' lights, 无数据 ignored; with no
  milestone and no key result that has data, it is 无数据 (``brain.goals.roll_up``).

The ledger at a past date is each reform's latest ``ReformVersion`` written on or before
that day (every change, check-in, milestone step and recomputation writes one, with the
whole reform as it then stood); a reform created later is absent. Days, today's included,
are the days where the government works (``calendar.timezone``): a milestone falls due,
and a day of the ledger ends, at local midnight.

A list evaluates every reform with one read of the brain's results and one query per
table, never one per reform.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from shuzhi.brain import queries as brain
from shuzhi.brain.goals import ORDER, expected_at, key_result_light, progress, roll_up
from shuzhi.brain.models import Indicator
from shuzhi.brain.rules import Grain, period_end, period_label
from shuzhi.brain.schemas import IndicatorSpec
from shuzhi.core import calendar as working
from shuzhi.core import workflow
from shuzhi.core.enums import Light, System
from shuzhi.core.errors import Message, NotFound, ValidationFailed
from shuzhi.core.settings import Settings, get_settings
from shuzhi.loop import queries
from shuzhi.loop.models import Evidence, Milestone, Reform, ReformKeyResult, ReformVersion
from shuzhi.loop.rules import Batch
from shuzhi.loop.schemas import (
    BatchSummary,
    EvidencePublic,
    KeyResultPublic,
    MilestonePublic,
    ProblemPublic,
    Ref,
    ReformList,
    ReformPage,
    ReformPublic,
    VersionPublic,
)
from shuzhi.regions.models import Region

BATCH_ORDER = {batch.value: index for index, batch in enumerate(Batch)}
PROBLEMS_PER_KEY_RESULT = 100  # a reform's page lists the newest of each key result's


def get(session: Session, code: str) -> Reform:
    found = session.scalar(select(Reform).where(Reform.code == code))
    if found is None:
        raise NotFound(Message("no reform {code!r}", code=code), field="reform")
    return found


@dataclass(frozen=True)
class Evaluated:
    """A reform as the ledger shows it now: the row, its milestones and its key results."""

    public: ReformPublic
    milestones: list[MilestonePublic]
    key_results: list[KeyResultPublic]

    def snapshot(self) -> dict[str, Any]:
        """The whole reform as JSON, kept in its ``ReformVersion``."""
        return {
            "reform": self.public.model_dump(mode="json"),
            "milestones": [item.model_dump(mode="json") for item in self.milestones],
            "key_results": [item.model_dump(mode="json") for item in self.key_results],
        }

    def stamped(self, version: int, at: datetime) -> Evaluated:
        public = self.public.model_copy(update={"version": version, "updated_at": at})
        return Evaluated(public, self.milestones, self.key_results)


# -- computing progress and lights ------------------------------------------------------


def _grain(spec: IndicatorSpec) -> Grain:
    """The indicator's reporting frequency, or its finest grain (as the brain's lists)."""
    return spec.frequency if spec.frequency in spec.grains else spec.grains[0]


def milestone_public(
    milestone: Milestone, *, today: date, warn_days: int, calendar: working.WorkCalendar
) -> MilestonePublic:
    light = workflow.deadline_light(
        milestone.due,
        today,
        done=milestone.state == "verified",
        warn_days=warn_days,
        calendar=calendar,
    )
    return MilestonePublic(
        id=milestone.id,
        name=milestone.name,
        due=milestone.due,
        weight=milestone.weight,
        state=milestone.state,
        light=light.value,
        evidence_count=milestone.evidence_count or 0,
        done_at=milestone.done_at,
    )


def key_result_public(
    kr: ReformKeyResult,
    *,
    indicator: Indicator,
    spec: IndicatorSpec,
    rows: Sequence[dict[str, Any]],
    names: queries.Names,
) -> KeyResultPublic:
    """``rows``: the indicator's computed values in the key result's region, in period
    order (as ``brain.queries.value_rows`` gives them)."""
    grain = _grain(spec)
    series = [row for row in rows if row["grain"] == grain.value and row["value"] is not None]
    baseline = kr.baseline
    if baseline is None:
        at_base = [
            row
            for row in series
            if row["period_start"] <= kr.baseline_on <= period_end(grain, row["period_start"])
        ]
        baseline = at_base[0]["value"] if at_base else None
    current = series[-1] if series else None
    value = current["value"] if current else None
    expected = None
    if current is not None and baseline is not None:
        expected = expected_at(
            period_end(grain, current["period_start"]),
            baseline=(kr.baseline_on, baseline),
            milestones=[(kr.target_on, kr.target)],
        )
    return KeyResultPublic(
        indicator=Ref(code=indicator.code, name=indicator.name),
        region=names.region(kr.region_code),
        unit=spec.unit,
        baseline=baseline,
        baseline_on=kr.baseline_on,
        target=kr.target,
        target_on=kr.target_on,
        current=value,
        current_period=period_label(grain, current["period_start"]) if current else None,
        expected=expected,
        progress=progress(value, baseline, kr.target, spec.direction),
        light=key_result_light(value, expected, spec.direction, spec.tolerance),
        weight=kr.weight,
    )


def combine(
    milestones: Sequence[MilestonePublic], key_results: Sequence[KeyResultPublic]
) -> tuple[float | None, str]:
    """A reform's (progress, light) from its milestones and key results (module docstring)."""
    parts: list[tuple[float | None, str, float]] = []
    total = sum(item.weight for item in milestones)
    if milestones and total > 0:
        done = sum(item.weight for item in milestones if item.state == "verified")
        worst = min((item.light for item in milestones), key=ORDER.__getitem__)
        parts.append((done / total, worst, total))
    parts += [(item.progress, item.light, item.weight) for item in key_results]
    return roll_up(parts)


def evaluate(
    session: Session,
    reforms: Sequence[Reform],
    *,
    today: date | None = None,
    settings: Settings | None = None,
    names: queries.Names | None = None,
) -> dict[int, Evaluated]:
    """Each reform's public view, computed now, by reform id: one read of the brain's
    results for every key result together."""
    settings = settings or get_settings()
    today = today or working.today()
    names = names or queries.Names(session)
    calendar = working.default()
    results = [kr for reform in reforms for kr in reform.key_results]
    wanted = {kr.indicator_id for kr in results}
    indicators = (
        {row.id: row for row in session.scalars(select(Indicator).where(Indicator.id.in_(wanted)))}
        if wanted
        else {}
    )
    specs = {key: brain.spec_of(row) for key, row in indicators.items()}
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if results:
        for row in brain.value_rows(
            indicators=sorted({row.code for row in indicators.values()}),
            regions_in=sorted({kr.region_code for kr in results}),
            settings=settings,
        ):
            series.setdefault((row["indicator"], row["region_code"]), []).append(row)
    found: dict[int, Evaluated] = {}
    for reform in reforms:
        milestones = [
            milestone_public(
                item, today=today, warn_days=settings.loop.warn_days, calendar=calendar
            )
            for item in sorted(reform.milestones, key=lambda m: (m.due, m.id or 0))
        ]
        key_results = [
            key_result_public(
                kr,
                indicator=indicators[kr.indicator_id],
                spec=specs[kr.indicator_id],
                rows=series.get((indicators[kr.indicator_id].code, kr.region_code), []),
                names=names,
            )
            for kr in sorted(reform.key_results, key=lambda k: k.position)
        ]
        share, light = combine(milestones, key_results)
        lead = names.department(reform.lead_department_id)
        assert lead is not None, f"reform {reform.code} names a department that is gone"
        public = ReformPublic(
            id=reform.id,
            code=reform.code,
            name=reform.name,
            system=reform.system,
            batch=reform.batch,
            batches={row.year: row.batch for row in reform.batches},
            level=reform.level,
            lead=lead,
            participants=[ref for i in reform.participants if (ref := names.department(i))],
            region=names.region(reform.region_code),
            starts_on=reform.starts_on,
            ends_on=reform.ends_on,
            description=reform.description,
            progress=share,
            light=light,
            milestones_done=sum(1 for item in milestones if item.state == "verified"),
            milestones_total=len(milestones),
            version=reform.version,
            updated_at=reform.updated_at,
        )
        found[reform.id] = Evaluated(public, milestones, key_results)
    return found


# -- the ledger -------------------------------------------------------------------------


def _region(session: Session, code: str | None) -> Region | None:
    if not code:
        return None
    found = session.get(Region, code)
    if found is None:
        raise ValidationFailed(Message("unknown region {code}", code=code), field="region")
    return found


def _matches(reform: ReformPublic, *, q: str | None) -> bool:
    needle = (q or "").strip().lower()
    return not needle or needle in reform.name.lower() or needle in reform.code.lower()


def _ordered(rows: Iterable[ReformPublic]) -> list[ReformPublic]:
    return sorted(rows, key=lambda row: (BATCH_ORDER.get(row.batch, 99), row.code))


def day_end(day: date, settings: Settings | None = None) -> datetime:
    """The first moment after ``day`` where the government works."""
    zone = ZoneInfo((settings or get_settings()).calendar.timezone)
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)


def ledger(
    session: Session,
    *,
    batch: str | None = None,
    system: str | None = None,
    region: str | None = None,
    q: str | None = None,
    as_of: date | None = None,
    settings: Settings | None = None,
) -> ReformList:
    """The reforms matching every filter given (``region``: its whole subtree), by batch
    then code; now, or as each stood at the end of the day ``as_of``."""
    if batch:
        Batch.check(batch, name="batch")
    if system:
        System.check(system, name="system")
    root = _region(session, region)
    if as_of is None:
        query = select(Reform)
        if batch:
            query = query.where(Reform.batch == batch)
        if system:
            query = query.where(Reform.system == system)
        if root is not None:
            query = query.where(
                Reform.region_code.in_(select(Region.code).where(Region.path.startswith(root.path)))
            )
        if q and q.strip():
            needle = q.strip()
            query = query.where(
                or_(
                    Reform.name.icontains(needle, autoescape=True),
                    Reform.code.icontains(needle, autoescape=True),
                )
            )
        reforms = list(session.scalars(query))
        evaluated = evaluate(session, reforms, settings=settings)
        data = _ordered(evaluated[reform.id].public for reform in reforms)
        return ReformList(data=data, count=len(data))
    newest = (
        select(ReformVersion.reform_id, func.max(ReformVersion.version).label("version"))
        .where(ReformVersion.at < day_end(as_of, settings))
        .group_by(ReformVersion.reform_id)
        .subquery()
    )
    snapshots = session.scalars(
        select(ReformVersion.snapshot).join(
            newest,
            and_(
                ReformVersion.reform_id == newest.c.reform_id,
                ReformVersion.version == newest.c.version,
            ),
        )
    )
    within: set[str] | None = None
    if root is not None:
        within = set(session.scalars(select(Region.code).where(Region.path.startswith(root.path))))
    rows = []
    for snapshot in snapshots:
        public = ReformPublic.model_validate(snapshot["reform"])
        if batch and public.batch != batch:
            continue
        if system and public.system != system:
            continue
        if within is not None and public.region.code not in within:
            continue
        if _matches(public, q=q):
            rows.append(public)
    data = _ordered(rows)
    return ReformList(data=data, count=len(data), as_of=as_of)


def version_public(row: ReformVersion) -> VersionPublic:
    return VersionPublic(
        version=row.version,
        at=row.at,
        actor=row.actor_name,
        kind=row.kind,
        note=row.note,
        progress=row.progress,
        light=row.light,
    )


def versions(session: Session, reform: Reform) -> list[VersionPublic]:
    """The reform's versions, newest first."""
    rows = session.scalars(
        select(ReformVersion)
        .where(ReformVersion.reform_id == reform.id)
        .order_by(ReformVersion.version.desc())
    )
    return [version_public(row) for row in rows]


def linked_problems(
    session: Session, reform: Reform, *, names: queries.Names | None = None
) -> list[ProblemPublic]:
    """Problems on one of the reform's key-result indicators in the key result's region or
    below it, newest first."""
    names = names or queries.Names(session)
    today = working.today()
    seen: dict[int, ProblemPublic] = {}
    indicator_codes = dict(
        session.execute(
            select(Indicator.id, Indicator.code).where(
                Indicator.id.in_({kr.indicator_id for kr in reform.key_results})
            )
        ).all()
    )
    for pair in dict.fromkeys((kr.indicator_id, kr.region_code) for kr in reform.key_results):
        indicator_id, region_code = pair
        found, _ = queries.search(
            session,
            queries.Filters(indicator=indicator_codes[indicator_id], region=region_code),
            limit=PROBLEMS_PER_KEY_RESULT,
        )
        for problem in found:
            if problem.id not in seen:
                seen[problem.id] = queries.public(problem, names, today=today)
    return sorted(seen.values(), key=lambda item: (item.reported_at, item.id), reverse=True)


def evidence(session: Session, reform: Reform) -> dict[int, list[EvidencePublic]]:
    ids = [item.id for item in reform.milestones]
    found: dict[int, list[EvidencePublic]] = {}
    if not ids:
        return found
    rows = session.scalars(
        select(Evidence)
        .where(Evidence.object_type == "milestone", Evidence.object_id.in_(ids))
        .order_by(Evidence.id)
    )
    for row in rows:
        found.setdefault(row.object_id, []).append(
            EvidencePublic.model_validate(row, from_attributes=True)
        )
    return found


def reform_page(session: Session, code: str, *, settings: Settings | None = None) -> ReformPage:
    """A reform with its milestones (and their evidence), key results, versions and the
    problems linked to it through its key results."""
    reform = get(session, code)
    names = queries.Names(session)
    found = evaluate(session, [reform], settings=settings, names=names)[reform.id]
    return ReformPage(
        reform=found.public,
        milestones=found.milestones,
        key_results=found.key_results,
        versions=versions(session, reform),
        problems=linked_problems(session, reform, names=names),
        evidence=evidence(session, reform),
    )


def by_batch(
    session: Session, *, locale: str = "zh-CN", settings: Settings | None = None
) -> list[BatchSummary]:
    """Each batch with its reforms' count, lights and mean progress, for the cockpit home."""
    reforms = list(session.scalars(select(Reform)))
    evaluated = evaluate(session, reforms, settings=settings)
    out = []
    for batch in Batch:
        rows = [found.public for found in evaluated.values() if found.public.batch == batch.value]
        lights = {light.value: 0 for light in (Light.green, Light.yellow, Light.red, Light.no_data)}
        for row in rows:
            lights[row.light] = lights.get(row.light, 0) + 1
        shares = [row.progress for row in rows if row.progress is not None]
        out.append(
            BatchSummary(
                batch=batch.value,
                label=batch.label(locale),
                count=len(rows),
                lights=lights,
                progress=sum(shares) / len(shares) if shares else None,
            )
        )
    return out
