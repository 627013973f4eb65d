from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, File, Query, UploadFile, status
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, Field

from shuzhi.api import PREFIX
from shuzhi.api.deps import ActorDep, DatabaseDep, IdPath, SessionDep
from shuzhi.brain import queries, reports, service
from shuzhi.brain.rules import Grain, parse_period
from shuzhi.brain.schemas import (
    ApplyResult,
    EvaluationList,
    ForecastSummary,
    GoalList,
    IndicatorList,
    IndicatorPage,
    IndicatorPublic,
    IndicatorSpec,
    Report,
    RulePublic,
    RuleSpec,
    RunPublic,
    TargetList,
    TargetResult,
    TargetSet,
    ValueList,
    WarningList,
    WarningPublic,
    WarningSummary,
)
from shuzhi.core.enums import System
from shuzhi.core.errors import TooLarge, ValidationFailed

router = APIRouter(prefix=f"{PREFIX}/brain", tags=["brain"])
TARGETS_MAX_BYTES = 10_000_000


@router.get("/indicators", response_model=IndicatorList)
def list_indicators(
    session: SessionDep,
    actor: ActorDep,
    system: str | None = Query(None, description="a system code"),
    q: str | None = Query(None, max_length=100, description="part of a code or name"),
    region: str = Query("330000", max_length=12, description="whose newest values"),
) -> IndicatorList:
    """Indicators with their newest value and light in ``region`` (the province)."""
    rows = queries.catalogue(session, system=system, q=q, region=region)
    return IndicatorList(data=rows, count=len(rows))


@router.get("/indicators/{code}", response_model=IndicatorPublic)
def get_indicator(code: str, session: SessionDep, actor: ActorDep) -> IndicatorPublic:
    return queries.public(queries.get(session, code))


@router.get("/indicators/{code}/overview", response_model=IndicatorPage)
def indicator_overview(
    code: str,
    session: SessionDep,
    actor: ActorDep,
    region: str | None = Query(None, max_length=12, description="default: the province"),
    grain: Grain | None = Query(None, description="default: the reporting frequency"),
) -> IndicatorPage:
    """What the indicator page shows: history against target, forecast band, each child
    region's light and rank, and warnings."""
    return queries.indicator_page(session, queries.get(session, code), region=region, grain=grain)


@router.put("/indicators/{code}", response_model=IndicatorPublic)
def put_indicator(
    code: str, body: IndicatorSpec, database: DatabaseDep, actor: ActorDep
) -> IndicatorPublic:
    """Create or replace an indicator; validated with every other indicator."""
    if body.code != code:
        raise ValidationFailed(f"the body defines {body.code}, not {code}", field="code")
    with database.transaction() as session:
        indicator, _ = service.save(session, actor=actor, spec=body)
        return queries.public(indicator)


@router.delete("/indicators/{code}", status_code=status.HTTP_204_NO_CONTENT)
def delete_indicator(code: str, database: DatabaseDep, actor: ActorDep) -> None:
    with database.transaction() as session:
        service.delete(session, actor=actor, code=code)


@router.post("/apply", response_model=ApplyResult)
def apply_yaml(
    database: DatabaseDep,
    actor: ActorDep,
    document: Annotated[
        str, Body(media_type="application/yaml", description="an indicators YAML file")
    ],
    source: str = Query("request", max_length=200, description="a name for the document"),
) -> ApplyResult:
    """Create or update every indicator of a YAML document; all or nothing."""
    with database.transaction() as session:
        return service.apply(session, actor=actor, text=document, source=source)


@router.get("/indicators/{code}/values", response_model=ValueList)
def indicator_values(
    code: str,
    session: SessionDep,
    actor: ActorDep,
    region: str | None = Query(None, max_length=12, description="a region code"),
    grain: Grain = Query(Grain.month),
    start: str | None = Query(None, alias="from", max_length=12, description="e.g. 2025-01"),
    end: str | None = Query(None, alias="to", max_length=12, description="e.g. 2025-12"),
) -> ValueList:
    """Computed values for every region (or one) and period of a grain."""
    queries.get(session, code)
    rows = queries.value_rows(
        indicator=code,
        region=region,
        grain=grain,
        start=parse_period(grain, start) if start else None,
        end=parse_period(grain, end) if end else None,
    )
    last = queries.last_run(session)
    data = queries.values(session, rows)
    return ValueList(data=data, count=len(data), run=last.id if last else None)


class ComputeRequest(BaseModel):
    engine: str | None = Field(None, description="duckdb or spark")
    indicators: list[str] = Field(default_factory=list, max_length=200)


@router.post("/runs", response_model=RunPublic, status_code=status.HTTP_201_CREATED)
def compute(
    database: DatabaseDep, actor: ActorDep, body: ComputeRequest | None = None
) -> RunPublic:
    """Compute indicators now (all, or the ones named and those derived from them)."""
    body = body or ComputeRequest()
    run = service.compute(
        database, actor=actor, engine=body.engine, indicators=body.indicators or None
    )
    return queries.run_public(run)


@router.get("/runs", response_model=list[RunPublic])
def list_runs(
    session: SessionDep, actor: ActorDep, limit: int = Query(20, ge=1, le=500)
) -> list[RunPublic]:
    return [queries.run_public(run) for run in queries.runs(session, limit=limit)]


@router.get("/indicators/{code}/targets", response_model=TargetList)
def list_targets(code: str, session: SessionDep, actor: ActorDep) -> TargetList:
    rows = queries.target_list(session, queries.get(session, code))
    return TargetList(data=rows, count=len(rows))


@router.post("/targets", response_model=TargetResult)
def set_targets(
    body: Annotated[list[TargetSet], Body(max_length=500)],
    database: DatabaseDep,
    actor: ActorDep,
) -> TargetResult:
    """Set targets (one value for some regions and periods, per entry); all or nothing."""
    with database.transaction() as session:
        return service.set_targets(session, actor=actor, entries=body)


@router.post("/targets/import", response_model=TargetResult)
def import_targets(
    database: DatabaseDep,
    actor: ActorDep,
    file: Annotated[UploadFile, File(description="a targets YAML file or XLSX workbook")],
) -> TargetResult:
    """Import targets from YAML (`targets:` list) or an XLSX sheet headed 指标代码, 行政区划代码,
    周期类型, 期间, 目标值 (备注). A file with a bad row imports nothing."""
    name = file.filename or "upload"
    data = file.file.read(TARGETS_MAX_BYTES + 1)
    if len(data) > TARGETS_MAX_BYTES:
        raise TooLarge(f"{name}: a targets file is at most {TARGETS_MAX_BYTES // 1_000_000} MB")
    entries = service.parse_targets_upload(data, source=name)
    with database.transaction() as session:
        return service.set_targets(session, actor=actor, entries=entries, where=name)


@router.get("/indicators/{code}/evaluation", response_model=EvaluationList)
def evaluation(
    code: str,
    session: SessionDep,
    actor: ActorDep,
    grain: Grain = Query(Grain.month),
    region: str | None = Query(None, max_length=12, description="one region"),
    children_of: str | None = Query(None, max_length=12, description="the children of one"),
    start: str | None = Query(None, alias="from", max_length=12),
    end: str | None = Query(None, alias="to", max_length=12),
) -> EvaluationList:
    """Values with their target, light, year-on-year and period-on-period change, and rank
    among sibling regions."""
    return queries.evaluation(
        session,
        queries.get(session, code),
        grain=grain,
        region=region,
        children_of=children_of,
        start=parse_period(grain, start) if start else None,
        end=parse_period(grain, end) if end else None,
    )


@router.get("/rules", response_model=list[RulePublic])
def list_rules(session: SessionDep, actor: ActorDep) -> list[RulePublic]:
    return [queries.rule_public(rule) for rule in queries.rules(session)]


@router.put("/rules/{code}", response_model=RulePublic)
def put_rule(code: str, body: RuleSpec, database: DatabaseDep, actor: ActorDep) -> RulePublic:
    """Create or replace a warning rule; its warnings start afresh if it changed."""
    if body.code != code:
        raise ValidationFailed(f"the body defines {body.code}, not {code}", field="code")
    with database.transaction() as session:
        rule, _ = service.save_rule(session, actor=actor, spec=body)
        return queries.rule_public(rule)


@router.post("/rules/apply", response_model=ApplyResult)
def apply_rules(
    database: DatabaseDep,
    actor: ActorDep,
    document: Annotated[str, Body(media_type="application/yaml", description="a rules YAML file")],
    source: str = Query("request", max_length=200),
) -> ApplyResult:
    with database.transaction() as session:
        return service.apply_rules(session, actor=actor, text=document, source=source)


@router.post("/warnings/evaluate", response_model=WarningSummary)
def evaluate_warnings(database: DatabaseDep, actor: ActorDep) -> WarningSummary:
    """Evaluate every rule now over the current results (the worker does it after each
    computation)."""
    return service.evaluate_warnings(database, actor=actor)


@router.get("/warnings", response_model=WarningList)
def list_warnings(
    session: SessionDep,
    actor: ActorDep,
    state: list[str] = Query(default_factory=list, description="repeat for several"),
    rule: str | None = Query(None, max_length=63),
    indicator: str | None = Query(None, max_length=63),
    region: str | None = Query(None, max_length=12),
    system: str | None = Query(None, max_length=30),
    severity: str | None = Query(None, max_length=10),
    limit: int = Query(500, ge=1, le=5000),
) -> WarningList:
    return queries.warnings(
        session,
        states=state,
        rule=rule,
        indicator=indicator,
        region=region,
        system=system,
        severity=severity,
        limit=limit,
    )


@router.get("/warnings/{warning_id}", response_model=WarningPublic)
def get_warning(warning_id: IdPath, session: SessionDep, actor: ActorDep) -> WarningPublic:
    """One warning with its story: every change of state and the values behind it."""
    return queries.warning_public(
        session,
        queries.get_warning(session, warning_id),
        names=queries.regions(session),
        with_events=True,
    )


class ForecastRequest(BaseModel):
    indicators: list[str] = Field(default_factory=list, max_length=200)
    origins: int = Field(1, ge=1, le=12)
    horizon: int | None = Field(None, ge=1, le=60)


@router.post("/forecasts", response_model=ForecastSummary)
def make_forecasts(
    database: DatabaseDep, actor: ActorDep, body: ForecastRequest | None = None
) -> ForecastSummary:
    """Forecast indicator series with the model chosen per series by backtest."""
    body = body or ForecastRequest()
    return service.forecast(
        database,
        actor=actor,
        indicators=body.indicators or None,
        origins=body.origins,
        horizon=body.horizon,
    )


@router.get("/indicators/{code}/forecasts")
def indicator_forecasts(
    code: str,
    session: SessionDep,
    actor: ActorDep,
    region: str = Query(..., max_length=12),
) -> dict[str, Any]:
    """The latest forecast of one region's series, and the model and error it came from."""
    queries.get(session, code)
    return queries.latest_forecast(code, region)


@router.get("/goals", response_model=GoalList)
def goals(session: SessionDep, actor: ActorDep) -> GoalList:
    """Every goal tree, with progress and lights computed from its key results."""
    return queries.goal_tree(session)


@router.post("/goals/apply", response_model=ApplyResult)
def apply_goals(
    database: DatabaseDep,
    actor: ActorDep,
    document: Annotated[str, Body(media_type="application/yaml", description="a goals YAML file")],
    source: str = Query("request", max_length=200),
) -> ApplyResult:
    """Create or replace goal trees; milestones become targets (origin goal)."""
    with database.transaction() as session:
        return service.apply_goals(session, actor=actor, text=document, source=source)


@router.get(
    "/report",
    response_model=Report,
    responses={200: {"content": {"text/markdown": {}, "text/html": {}}}},
)
def monthly_report(
    session: SessionDep,
    actor: ActorDep,
    month: str = Query(..., max_length=7, description="e.g. 2026-09"),
    region: str | None = Query(None, max_length=12, description="default: the province"),
    system: System | None = Query(None),
    format: Literal["json", "md", "html"] = Query("json"),
) -> Any:
    """The monthly brief of a region (and a system): lights, new and resolved warnings,
    forecasts that miss their targets, and the rankings of its children."""
    report = reports.build(
        session,
        month=parse_period(Grain.month, month),
        region=region,
        system=system.value if system else None,
    )
    if format == "md":
        return PlainTextResponse(reports.to_markdown(report), media_type="text/markdown")
    if format == "html":
        return HTMLResponse(reports.to_html(report))
    return report
