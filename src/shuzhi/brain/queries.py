"""Reads: indicator definitions, runs, and computed values from the results in the lake."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import pyarrow as pa
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from shuzhi.brain.compute import RESULT_SCHEMA, SourceInfo
from shuzhi.brain.evaluation import evaluate
from shuzhi.brain.goals import expected_at, key_result_light, roll_up
from shuzhi.brain.goals import progress as goal_progress
from shuzhi.brain.models import (
    EarlyWarning,
    Goal,
    Indicator,
    KeyResult,
    Rule,
    Run,
    Target,
    WarningEvent,
)
from shuzhi.brain.rules import WARNING, Grain, RuleKind, parse_period, period_end, period_label
from shuzhi.brain.schemas import (
    EvaluationList,
    EvaluationRow,
    GoalList,
    GoalNode,
    IndicatorPage,
    IndicatorPublic,
    IndicatorSpec,
    IndicatorValue,
    KeyResultView,
    MilestoneSpec,
    RegionRef,
    RulePublic,
    RunPublic,
    TargetPublic,
    WarningEventPublic,
    WarningList,
    WarningPublic,
)
from shuzhi.catalog.models import Resource
from shuzhi.core import clock
from shuzhi.core.enums import Light, System
from shuzhi.core.errors import Message, NotFound, ValidationFailed
from shuzhi.core.settings import Settings, get_settings
from shuzhi.lake.engine import reader
from shuzhi.lake.rules import literal
from shuzhi.lake.storage import Lake
from shuzhi.orgs.models import Department
from shuzhi.regions.models import Region

RESULTS = "_brain"  # the results' folder in the lake; no catalog code starts with "_"


def results_lake(settings: Settings | None = None) -> Lake:
    return Lake((settings or get_settings()).lake_dir)


def get(session: Session, code: str) -> Indicator:
    found = session.scalar(select(Indicator).where(Indicator.code == code))
    if found is None:
        raise NotFound(Message("unknown indicator {code!r}", code=code), field="indicator")
    return found


def spec_of(indicator: Indicator) -> IndicatorSpec:
    return IndicatorSpec.model_validate(indicator.spec)


def specs(session: Session) -> dict[str, IndicatorSpec]:
    return {row.code: spec_of(row) for row in session.scalars(select(Indicator))}


def search(session: Session, *, system: str | None = None, q: str | None = None) -> list[Indicator]:
    statement = select(Indicator).order_by(Indicator.system, Indicator.code)
    if system:
        try:
            statement = statement.where(Indicator.system == System(system).value)
        except ValueError:
            raise ValidationFailed(
                Message(
                    "unknown system {system!r}: use one of {choices}",
                    system=system,
                    choices=System.choices(),
                ),
                field="system",
            ) from None
    if q:
        pattern = f"%{q.strip()}%"
        statement = statement.where(
            or_(
                Indicator.code.ilike(pattern),
                Indicator.name.ilike(pattern),
                Indicator.name_en.ilike(pattern),
            )
        )
    return list(session.scalars(statement))


def public(indicator: Indicator, *, latest: dict[str, Any] | None = None) -> IndicatorPublic:
    spec = spec_of(indicator)
    return IndicatorPublic(
        code=indicator.code,
        name=indicator.name,
        name_en=indicator.name_en,
        system=indicator.system,
        system_label=System(indicator.system).zh,
        owner=indicator.owner.code,
        owner_name=indicator.owner.name,
        unit=spec.unit,
        direction=spec.direction.value,
        measure=spec.measure.kind.value,
        additivity=spec.additivity.value if spec.additivity else "",
        grains=[grain.value for grain in spec.grains],
        sources=spec.sources,
        version=indicator.version,
        spec=spec.model_dump(mode="json", exclude_defaults=True),
        latest=latest,
        updated_at=indicator.updated_at,
    )


def sources(session: Session, codes: Iterable[str]) -> dict[str, SourceInfo]:
    """The catalog resources of ``codes`` that exist, with their fields' types."""
    wanted = set(codes)
    rows = session.scalars(select(Resource).where(Resource.code.in_(wanted))) if wanted else []
    return {
        resource.code: SourceInfo(
            resource.code, {field.name: field.type for field in resource.fields}
        )
        for resource in rows
    }


def region_paths(session: Session) -> list[str]:
    return list(session.scalars(select(Region.path)))


def regions(session: Session) -> dict[str, Region]:
    return {region.code: region for region in session.scalars(select(Region))}


def run_public(run: Run) -> RunPublic:
    seconds = (
        (run.finished_at - run.started_at).total_seconds() if run.finished_at is not None else None
    )
    return RunPublic(
        id=run.id,
        engine=run.engine,
        state=run.state,
        trigger=run.trigger,
        indicators=run.indicators,
        rows=run.rows,
        snapshot=run.snapshot,
        read=run.read,
        error=run.error,
        actor=run.actor,
        started_at=run.started_at,
        finished_at=run.finished_at,
        seconds=seconds,
    )


def runs(session: Session, *, limit: int = 20) -> list[Run]:
    return list(session.scalars(select(Run).order_by(Run.id.desc()).limit(limit)))


def last_run(session: Session) -> Run | None:
    return session.scalar(
        select(Run).where(Run.state == "succeeded").order_by(Run.id.desc()).limit(1)
    )


def results(settings: Settings | None = None) -> pa.Table:
    """Every computed value of the current results (empty before the first run)."""
    lake = results_lake(settings)
    path = lake.current_file(RESULTS)
    if path is None:
        return RESULT_SCHEMA.empty_table()
    import pyarrow.parquet as pq

    return pq.read_table(path, schema=RESULT_SCHEMA)


def value_rows(
    *,
    indicator: str | None = None,
    indicators: Iterable[str] | None = None,
    region: str | None = None,
    regions_in: Iterable[str] | None = None,
    grain: Grain | str | None = None,
    start: date | None = None,
    end: date | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Computed values matching every filter given, ordered by indicator, region, period."""
    lake = results_lake(settings)
    path = lake.current_file(RESULTS)
    if path is None:
        return []
    terms = []
    if indicator is not None:
        terms.append(f"indicator = {literal(indicator)}")
    if indicators is not None:
        listed = ", ".join(literal(code) for code in indicators) or "NULL"
        terms.append(f"indicator IN ({listed})")
    if region is not None:
        terms.append(f"region_code = {literal(region)}")
    if regions_in is not None:
        listed = ", ".join(literal(code) for code in regions_in) or "NULL"
        terms.append(f"region_code IN ({listed})")
    if grain is not None:
        terms.append(f"grain = {literal(Grain(grain).value)}")
    if start is not None:
        terms.append(f"period_start >= DATE {literal(start.isoformat())}")
    if end is not None:
        terms.append(f"period_start <= DATE {literal(end.isoformat())}")
    where = " AND ".join(terms) or "TRUE"
    con = reader(settings or get_settings())
    try:
        table = con.sql(
            f"SELECT * FROM read_parquet({literal(str(path))}) WHERE {where} "
            "ORDER BY indicator, region_code, grain, period_start"
        ).to_arrow_table()
    finally:
        con.close()
    return table.to_pylist()


def values(
    session: Session, rows: list[dict[str, Any]], *, names: dict[str, Region] | None = None
) -> list[IndicatorValue]:
    names = names if names is not None else regions(session)
    out = []
    for row in rows:
        region = names.get(row["region_code"])
        out.append(
            IndicatorValue(
                indicator=row["indicator"],
                region_code=row["region_code"],
                region_name=region.name if region else "",
                region_level=region.level if region else "",
                grain=row["grain"],
                period=period_label(row["grain"], row["period_start"]),
                period_start=row["period_start"],
                value=row["value"],
                numerator=row["numerator"],
                denominator=row["denominator"],
            )
        )
    return out


def targets(session: Session, indicator: Indicator) -> dict[tuple[str, str, date], float]:
    return {
        (row.region_code, row.grain, row.period_start): row.value
        for row in session.scalars(select(Target).where(Target.indicator_id == indicator.id))
    }


def target_list(
    session: Session, indicator: Indicator, *, names: dict[str, Region] | None = None
) -> list[TargetPublic]:
    names = names if names is not None else regions(session)
    rows = session.scalars(
        select(Target)
        .where(Target.indicator_id == indicator.id)
        .order_by(Target.grain, Target.period_start, Target.region_code)
    )
    return [
        TargetPublic(
            indicator=indicator.code,
            region_code=row.region_code,
            region_name=names[row.region_code].name if row.region_code in names else "",
            grain=row.grain,
            period=period_label(row.grain, row.period_start),
            period_start=row.period_start,
            value=row.value,
            origin=row.origin,
            note=row.note,
            actor=row.actor,
            updated_at=row.updated_at,
        )
        for row in rows
    ]


def evaluation(
    session: Session,
    indicator: Indicator,
    *,
    grain: Grain | str,
    region: str | None = None,
    children_of: str | None = None,
    start: date | None = None,
    end: date | None = None,
    settings: Settings | None = None,
) -> EvaluationList:
    """Each value of the indicator at ``grain`` with its target, light, changes and rank;
    for one region, or the children of one (a drill-down), or every region."""
    spec = spec_of(indicator)
    names = regions(session)
    parents = {code: region.parent_code for code, region in names.items()}
    rows = value_rows(indicator=indicator.code, grain=grain, settings=settings)
    reach = max((row["last_time"] for row in rows if row["last_time"] is not None), default=None)
    found = evaluate(
        spec,
        rows,
        targets=targets(session, indicator),
        parents=parents,
        grain=grain,
        last_time=reach,
    )
    data = []
    for item in found:
        if region is not None and item.region_code != region:
            continue
        if children_of is not None and parents.get(item.region_code) != children_of:
            continue
        if start is not None and item.period_start < start:
            continue
        if end is not None and item.period_start > end:
            continue
        place = names.get(item.region_code)
        data.append(
            EvaluationRow(
                **item.as_dict(),
                region_name=place.name if place else "",
                region_level=place.level if place else "",
                parent=place.parent_code if place else None,
                period=period_label(item.grain, item.period_start),
            )
        )
    return EvaluationList(
        indicator=indicator.code,
        unit=spec.unit,
        direction=spec.direction.value,
        data=data,
        count=len(data),
    )


FORECASTS = "_brain_forecasts"  # the forecasts' folder in the lake


class ForecastLookup:
    """The stored forecasts, for warnings: the interval a period was forecast to fall in
    before it was observed, and the latest forecast of each series."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self._bounds: dict[tuple[str, str, str, date], tuple[date, tuple[float, ...]]] = {}
        self._latest: dict[tuple[str, str, str], tuple[date, dict[date, float]]] = {}
        for row in rows:
            series = (row["indicator"], row["region_code"], row["grain"])
            origin, start = row["origin"], row["period_start"]
            bounds = (row["lo80"], row["hi80"], row["lo95"], row["hi95"])
            key = (*series, start)
            if origin < start and (key not in self._bounds or self._bounds[key][0] < origin):
                self._bounds[key] = (origin, bounds)
            latest = self._latest.get(series)
            if latest is None or latest[0] < origin:
                self._latest[series] = (origin, {start: row["mean"]})
            elif latest[0] == origin:
                latest[1][start] = row["mean"]

    def bounds(
        self, indicator: str, region: str, grain: str, start: date
    ) -> tuple[float, float, float, float] | None:
        found = self._bounds.get((indicator, region, grain, start))
        return found[1] if found else None  # type: ignore[return-value]

    def means(self, indicator: str, region: str, grain: str) -> dict[date, float]:
        found = self._latest.get((indicator, region, grain))
        return dict(found[1]) if found else {}


def forecast_rows(
    *,
    indicator: str | None = None,
    region: str | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    path = results_lake(settings).current_file(FORECASTS)
    if path is None:
        return []
    terms = ["TRUE"]
    if indicator is not None:
        terms.append(f"indicator = {literal(indicator)}")
    if region is not None:
        terms.append(f"region_code = {literal(region)}")
    con = reader(settings or get_settings())
    try:
        return (
            con.sql(
                f"SELECT * FROM read_parquet({literal(str(path))}) WHERE {' AND '.join(terms)} "
                "ORDER BY indicator, region_code, grain, origin, period_start"
            )
            .to_arrow_table()
            .to_pylist()
        )
    finally:
        con.close()


def forecast_lookup(settings: Settings | None = None) -> ForecastLookup:
    return ForecastLookup(forecast_rows(settings=settings))


def rule_public(rule: Rule) -> RulePublic:
    return RulePublic(
        code=rule.code,
        name=rule.name,
        kind=rule.kind,
        kind_label=RuleKind(rule.kind).zh,
        severity=rule.severity,
        enabled=rule.enabled,
        version=rule.version,
        spec=rule.spec,
    )


def rules(session: Session) -> list[Rule]:
    return list(session.scalars(select(Rule).order_by(Rule.code)))


def get_warning(session: Session, warning_id: int) -> EarlyWarning:
    found = session.get(EarlyWarning, warning_id)
    if found is None:
        raise NotFound(Message("no warning {warning_id}", warning_id=warning_id), field="warning")
    return found


def warning_public(
    session: Session,
    warning: EarlyWarning,
    *,
    names: dict[str, Region],
    with_events: bool = False,
) -> WarningPublic:
    spec = spec_of(warning.indicator)
    region = names.get(warning.region_code)
    history = None
    if with_events:
        history = [
            WarningEventPublic(
                from_state=event.from_state,
                to_state=event.to_state,
                period=period_label(event.grain, event.period_start)
                if event.period_start
                else None,
                value=event.value,
                line=event.line,
                message=event.message,
                at=event.at,
            )
            for event in session.scalars(
                select(WarningEvent)
                .where(WarningEvent.warning_id == warning.id)
                .order_by(WarningEvent.id)
            )
        ]
    return WarningPublic(
        id=warning.id,
        rule=warning.rule.code,
        rule_name=warning.rule.name,
        kind=warning.rule.kind,
        severity=warning.rule.severity,
        indicator=warning.indicator.code,
        indicator_name=warning.indicator.name,
        unit=spec.unit,
        system=warning.indicator.system,
        owner=warning.indicator.owner.code,
        region_code=warning.region_code,
        region_name=region.name if region else "",
        region_level=region.level if region else "",
        state=warning.state,
        state_label=WARNING.states[warning.state].zh,
        grain=warning.grain,
        period=period_label(warning.grain, warning.period_start) if warning.period_start else None,
        value=warning.value,
        line=warning.line,
        message=warning.message,
        since=warning.since,
        updated_at=warning.updated_at,
        events=history,
    )


def warnings(
    session: Session,
    *,
    states: Iterable[str] | None = None,
    rule: str | None = None,
    indicator: str | None = None,
    region: str | None = None,
    system: str | None = None,
    severity: str | None = None,
    limit: int = 500,
) -> WarningList:
    """Warnings matching every filter given, the most severe and newest first, with the
    count of every state among those the other filters match."""
    statement = (
        select(EarlyWarning)
        .join(Rule, Rule.id == EarlyWarning.rule_id)
        .join(Indicator, Indicator.id == EarlyWarning.indicator_id)
    )
    if rule:
        statement = statement.where(Rule.code == rule)
    if indicator:
        statement = statement.where(Indicator.code == indicator)
    if region:
        statement = statement.where(EarlyWarning.region_code == region)
    if system:
        statement = statement.where(Indicator.system == system)
    if severity:
        statement = statement.where(Rule.severity == severity)
    by_state: dict[str, int] = dict.fromkeys(WARNING.states, 0)
    for state, count in session.execute(
        statement.with_only_columns(EarlyWarning.state, func.count()).group_by(EarlyWarning.state)
    ):
        by_state[state] = count
    wanted = list(states or [])
    if wanted:
        statement = statement.where(EarlyWarning.state.in_(wanted))
    order = case({"high": 0, "medium": 1, "low": 2}, value=Rule.severity, else_=3)
    rows = session.scalars(
        statement.order_by(order, EarlyWarning.since.desc(), EarlyWarning.id).limit(limit)
    )
    names = regions(session)
    data = [warning_public(session, row, names=names) for row in rows]
    return WarningList(data=data, count=len(data), by_state=by_state)


def latest_forecast(
    indicator: str, region: str, *, settings: Settings | None = None
) -> dict[str, Any]:
    """The newest forecast of one series: model, backtest error and points (or why not)."""
    rows = forecast_rows(indicator=indicator, region=region, settings=settings)
    if not rows:
        return {"indicator": indicator, "region_code": region, "model": None, "points": []}
    origin = max(row["origin"] for row in rows)
    latest = [row for row in rows if row["origin"] == origin]
    first = latest[0]
    return {
        "indicator": indicator,
        "region_code": region,
        "grain": first["grain"],
        "origin": origin,
        "model": first["model"],
        "mase": first["mase"],
        "reason": first["reason"],
        "points": [
            {
                "period": period_label(row["grain"], row["period_start"]),
                "period_start": row["period_start"],
                **{key: row[key] for key in ("mean", "lo80", "hi80", "lo95", "hi95")},
            }
            for row in latest
            if row["reason"] is None
        ],
    }


def latest_of(
    session: Session, indicator: Indicator, rows: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The newest evaluated value among one region's ``rows`` of an indicator, at its
    reporting frequency (or its finest grain), for lists."""
    spec = spec_of(indicator)
    grain = spec.frequency if spec.frequency in spec.grains else spec.grains[0]
    rows = [row for row in rows if row["grain"] == grain.value]
    if not rows:
        return None
    # one region's rows: enough for its light and changes (a rank needs its siblings)
    found = evaluate(spec, rows, targets=targets(session, indicator), parents={}, grain=grain)
    last = found[-1]
    return {
        "grain": last.grain,
        "period": period_label(last.grain, last.period_start),
        **{key: getattr(last, key) for key in ("value", "target", "light", "yoy", "pop")},
        "complete": last.complete,
    }


def catalogue(
    session: Session,
    *,
    system: str | None = None,
    q: str | None = None,
    region: str = "330000",
    settings: Settings | None = None,
) -> list[IndicatorPublic]:
    """Indicators with their newest value in ``region`` (the province by default)."""
    found = search(session, system=system, q=q)
    by_indicator: dict[str, list[dict[str, Any]]] = {row.code: [] for row in found}
    for row in value_rows(indicators=list(by_indicator), region=region, settings=settings):
        by_indicator[row["indicator"]].append(row)
    return [public(row, latest=latest_of(session, row, by_indicator[row.code])) for row in found]


def _ref(region: Region) -> RegionRef:
    return RegionRef(code=region.code, name=region.name, level=region.level)


def _children(
    rows: list[EvaluationRow],
    names: dict[str, Region],
    region: str,
    latest: EvaluationRow | None,
) -> list[EvaluationRow]:
    """Every child region at the latest period, best first; one without a value shows as
    no data rather than disappearing (and its siblings' ranks say how many were ranked)."""
    if latest is None:
        return []
    found = {
        row.region_code: row
        for row in rows
        if row.parent == region and row.period_start == latest.period_start
    }
    for code, child in names.items():
        if child.parent_code == region and code not in found:
            found[code] = EvaluationRow(
                region_code=code,
                region_name=child.name,
                region_level=child.level,
                parent=region,
                grain=latest.grain,
                period=latest.period,
                period_start=latest.period_start,
                value=None,
                target=None,
                expected=None,
                light=Light.no_data.value,
                complete=latest.complete,
                yoy=None,
                yoy_delta=None,
                pop=None,
                pop_delta=None,
                rank=None,
                siblings=0,
            )
    return sorted(
        found.values(), key=lambda row: (row.rank is None, row.rank or 0, row.region_code)
    )


def indicator_page(
    session: Session,
    indicator: Indicator,
    *,
    region: str | None = None,
    grain: Grain | str | None = None,
    settings: Settings | None = None,
) -> IndicatorPage:
    """The indicator in one region (the root of the tree by default): its history against
    the target, the latest forecast, each child region's light and rank, and the
    region's warnings on it."""
    spec = spec_of(indicator)
    names = regions(session)
    if region is None:
        roots = sorted(code for code, item in names.items() if item.parent_code is None)
        region = roots[0] if roots else "330000"
    if region not in names:
        raise NotFound(Message("unknown region {region!r}", region=region), field="region")
    default = spec.frequency if spec.frequency in spec.grains else spec.grains[0]
    try:
        chosen = Grain(grain) if grain is not None else default
    except ValueError:
        raise ValidationFailed(
            Message(
                "unknown grain {grain!r}: use one of {choices}",
                grain=grain,
                choices=Grain.choices(),
            ),
            field="grain",
        ) from None
    if chosen not in spec.grains:
        raise ValidationFailed(
            Message(
                "{code} is reported by {join}, not {value}",
                code=indicator.code,
                join=", ".join(g.value for g in spec.grains),
                value=chosen.value,
            ),
            field="grain",
        )
    every = evaluation(session, indicator, grain=chosen, settings=settings)
    series = [row for row in every.data if row.region_code == region]
    latest = series[-1] if series else None
    children = _children(every.data, names, region, latest)
    ancestors = []
    parent = names[region].parent_code
    while parent is not None and parent in names:
        ancestors.insert(0, _ref(names[parent]))
        parent = names[parent].parent_code
    found = warnings(session, indicator=indicator.code, region=region)
    return IndicatorPage(
        indicator=public(indicator, latest=latest.model_dump(mode="json") if latest else None),
        region=_ref(names[region]),
        ancestors=ancestors,
        grain=chosen.value,
        grains=[g.value for g in spec.grains],
        series=series,
        latest=latest,
        children=children,
        forecast=latest_forecast(indicator.code, region, settings=settings)
        if chosen is Grain.month
        else {"points": []},
        warnings=[w for w in found.data if w.state != "normal"],
    )


def goal_tree(
    session: Session, *, today: date | None = None, settings: Settings | None = None
) -> GoalList:
    """Every goal tree with its key results' and goals' progress and lights."""
    today = today or clock.now().date()
    names = regions(session)
    goals = list(session.scalars(select(Goal).order_by(Goal.position, Goal.id)))
    results: dict[int, list[KeyResult]] = {}
    for kr in session.scalars(select(KeyResult).order_by(KeyResult.position)):
        results.setdefault(kr.goal_id, []).append(kr)
    owners = {row.id: row.code for row in session.scalars(select(Department))}
    children: dict[int | None, list[Goal]] = {}
    for goal in goals:
        children.setdefault(goal.parent_id, []).append(goal)

    def view(kr: KeyResult) -> KeyResultView:
        spec = spec_of(kr.indicator)
        grain = spec.frequency if spec.frequency in spec.grains else spec.grains[0]
        rows = [
            row
            for row in value_rows(indicator=kr.indicator.code, region=kr.region_code,
                                  settings=settings)
            if row["value"] is not None
        ]  # fmt: skip
        baseline = kr.baseline
        base_start = parse_period(Grain.year, kr.baseline_period)
        if baseline is None:
            at_base = [r for r in rows if r["grain"] == "year" and r["period_start"] == base_start]
            baseline = at_base[0]["value"] if at_base else None
        newest = [r for r in rows if r["grain"] == grain.value]
        current = newest[-1] if newest else None
        milestones = [(date.fromisoformat(m["date"]), float(m["target"])) for m in kr.milestones]
        expected = None
        if current is not None and baseline is not None:
            measured = period_end(grain, current["period_start"])
            expected = expected_at(
                measured, baseline=(period_end(Grain.year, base_start), baseline),
                milestones=milestones,
            )  # fmt: skip
        upcoming = next((m for m in milestones if m[0] >= today), milestones[-1])
        value = current["value"] if current else None
        region = names.get(kr.region_code)
        return KeyResultView(
            indicator=kr.indicator.code,
            indicator_name=kr.indicator.name,
            unit=spec.unit,
            direction=spec.direction.value,
            region_code=kr.region_code,
            region_name=region.name if region else "",
            baseline_period=kr.baseline_period,
            baseline=baseline,
            current_period=period_label(grain, current["period_start"]) if current else None,
            current=value,
            expected=expected,
            next_milestone=MilestoneSpec(date=upcoming[0], target=upcoming[1]),
            final_target=milestones[-1][1],
            progress=goal_progress(value, baseline, milestones[-1][1], spec.direction),
            light=key_result_light(value, expected, spec.direction, spec.tolerance),
            weight=kr.weight,
        )

    def node(goal: Goal) -> GoalNode:
        krs = [view(kr) for kr in results.get(goal.id, [])]
        subs = [node(child) for child in children.get(goal.id, [])]
        share, light = roll_up(
            [(kr.progress, kr.light, kr.weight) for kr in krs]
            + [(sub.progress, sub.light, 1.0) for sub in subs]
        )
        return GoalNode(
            code=goal.code,
            name=goal.name,
            system=goal.system,
            owner=owners.get(goal.owner_id) if goal.owner_id else None,
            description=goal.description,
            starts_on=goal.starts_on,
            ends_on=goal.ends_on,
            progress=share,
            light=light,
            key_results=krs,
            children=subs,
        )

    return GoalList(data=[node(goal) for goal in children.get(None, [])], as_of=today)
