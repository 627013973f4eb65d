"""The cockpit home (驾驶舱): one payload for leaders, for a region of the tree.

What it holds and where each number comes from:

- **Tiles**, one per system and 基层治理: the light is the worst light of the system's key
  indicators in the region (红 over 黄 over 绿; 无数据 only when none has a value or the
  system has no key indicator), with the counts of firing warnings and open and overdue
  problems in the region's subtree, and the aggregation coverage of the system's
  resources.
- **Key indicators** are those with a target in the region (only a target gives a light).
  Each is evaluated as the brain's indicator list evaluates it (``brain.queries.latest_of``:
  its newest value at its reporting frequency against the target), with its last
  ``TREND_POINTS`` values for a sparkline.
- **Warnings**: the firing ones in the subtree, the most severe and newest first, each
  with the problem it raised.
- **Ledger**: ``loop.ledger.by_batch`` (the province's ledger of major reforms).
- **Problems**: ``loop.queries.stats`` by channel over the subtree (closure and on-time
  rates, overdue count).
- **Aggregation (全量归集)**: ``lake.queries.report``'s roll-ups and the catalog's counts;
  resources are not regional, so these are the platform's whatever the region.
- **Drill-down**: the region's ancestors (breadcrumbs) and each child region with its
  light, red indicators, firing warnings and problems.

Reads are bounded: one read of the brain's results for the region and its children, one
query each for indicators, targets, warnings and regions, one statistics query per
dimension; never one query per tile, indicator or child.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import case, select
from sqlalchemy.orm import Session

from shuzhi.brain import queries as brain
from shuzhi.brain.evaluation import evaluate
from shuzhi.brain.models import EarlyWarning, Indicator, Rule, Target
from shuzhi.brain.rules import Grain, period_label
from shuzhi.brain.schemas import IndicatorSpec, WarningPublic
from shuzhi.catalog import queries as catalog
from shuzhi.catalog.schemas import CatalogStats
from shuzhi.core import calendar as working
from shuzhi.core.enums import Light, System
from shuzhi.core.errors import Message, NotFound
from shuzhi.core.permissions import Actor
from shuzhi.core.settings import Settings
from shuzhi.lake import queries as lake
from shuzhi.lake.schemas import Rollup
from shuzhi.loop import ledger
from shuzhi.loop import queries as problems
from shuzhi.loop.models import Problem
from shuzhi.loop.schemas import BatchSummary, StatRow
from shuzhi.orgs import queries as orgs
from shuzhi.regions.models import Region

TREND_POINTS = 12  # the sparkline's periods
WARNINGS_SHOWN = 10
# worst first; 无数据 says nothing about how the region is doing, so it never wins
SEVERITY = {Light.red.value: 0, Light.yellow.value: 1, Light.green.value: 2}
WARNING_ORDER = {"high": 0, "medium": 1, "low": 2}


class RegionRef(BaseModel):
    code: str
    name: str
    level: str


class TrendPoint(BaseModel):
    period: str
    value: float | None


class KeyIndicator(BaseModel):
    """A key indicator in the region: its newest value against its target, and a trend."""

    code: str
    name: str
    system: str
    unit: str
    direction: str
    decimals: int
    period: str | None
    value: float | None
    target: float | None
    light: str
    trend: list[TrendPoint]


class SystemTile(BaseModel):
    system: str
    label: str
    light: str = Field(description="the worst light of the system's key indicators")
    key_indicators: int
    lights: dict[str, int] = Field(description="key indicators by light")
    warnings_firing: int
    problems_open: int
    problems_overdue: int
    coverage: float | None = Field(description="aggregation coverage of its resources")


class ProblemLink(BaseModel):
    id: int
    code: str
    state: str


class CockpitWarning(BaseModel):
    warning: WarningPublic
    problem: ProblemLink | None = Field(description="the open problem it raised, if any")


class ProblemSummary(BaseModel):
    total: StatRow
    by_channel: list[StatRow]


class ChildRegion(BaseModel):
    """A child region for the drill-down table."""

    region: RegionRef
    light: str
    red_indicators: int
    warnings_firing: int
    problems: StatRow | None


class Aggregation(BaseModel):
    """Full aggregation (全量归集): the platform's catalog and lake coverage."""

    overall: Rollup
    by_system: list[Rollup]
    catalog: CatalogStats
    departments: int
    counties: int


class CockpitOverview(BaseModel):
    region: RegionRef
    ancestors: list[RegionRef] = Field(description="from the root down, for breadcrumbs")
    as_of: date
    tiles: list[SystemTile]
    indicators: list[KeyIndicator]
    warnings: list[CockpitWarning]
    warnings_firing: int
    ledger: list[BatchSummary]
    reforms: int
    problems: ProblemSummary
    children: list[ChildRegion]
    aggregation: Aggregation


def _ref(region: Region) -> RegionRef:
    return RegionRef(code=region.code, name=region.name, level=region.level)


def worst(lights: list[str]) -> str:
    """The worst of ``lights`` (无数据 when none is red, yellow or green)."""
    known = [light for light in lights if light in SEVERITY]
    return min(known, key=SEVERITY.__getitem__) if known else Light.no_data.value


def _grain(spec: IndicatorSpec) -> Grain:
    return spec.frequency if spec.frequency in spec.grains else spec.grains[0]


def _key_indicators(
    session: Session,
    regions: list[str],
    *,
    focus: str,
    settings: Settings | None,
) -> tuple[list[KeyIndicator], dict[str, dict[str, str]]]:
    """The focus region's key indicators, and every region's light of each (by region,
    then indicator code): one query for targets, one read of the brain's results."""
    targets: dict[int, dict[tuple[str, str, date], float]] = defaultdict(dict)
    for row in session.scalars(select(Target).where(Target.region_code.in_(regions))):
        targets[row.indicator_id][(row.region_code, row.grain, row.period_start)] = row.value
    keyed = {
        indicator_id
        for indicator_id, found in targets.items()
        if any(region == focus for region, _, _ in found)
    }
    if not keyed:
        return [], {}
    indicators = list(
        session.scalars(
            select(Indicator)
            .where(Indicator.id.in_(keyed))
            .order_by(Indicator.system, Indicator.code)
        )
    )
    specs = {row.code: brain.spec_of(row) for row in indicators}
    grains = {_grain(spec) for spec in specs.values()}
    series: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in brain.value_rows(
        indicators=list(specs),
        regions_in=regions,
        grain=next(iter(grains)) if len(grains) == 1 else None,
        settings=settings,
    ):
        series[(row["indicator"], row["region_code"])].append(row)
    lights: dict[str, dict[str, str]] = defaultdict(dict)
    shown = []
    for indicator in indicators:
        spec = specs[indicator.code]
        grain = _grain(spec)
        for region in regions:
            # the newest periods are all the light and the trend need (rows come in order)
            rows = [
                row for row in series.get((indicator.code, region), []) if row["grain"] == grain
            ][-TREND_POINTS:]
            # as brain.queries.latest_of: one region's rows, its newest evaluated last
            found = evaluate(spec, rows, targets=targets[indicator.id], parents={}, grain=grain)
            last = found[-1] if found else None
            light = (last.light if last else None) or Light.no_data.value
            lights[region][indicator.code] = light
            if region != focus:
                continue
            shown.append(
                KeyIndicator(
                    code=indicator.code,
                    name=indicator.name,
                    system=indicator.system,
                    unit=spec.unit,
                    direction=spec.direction.value,
                    decimals=spec.decimals,
                    period=period_label(last.grain, last.period_start) if last else None,
                    value=last.value if last else None,
                    target=last.target if last else None,
                    light=light,
                    trend=[
                        TrendPoint(
                            period=period_label(item.grain, item.period_start), value=item.value
                        )
                        for item in found[-TREND_POINTS:]
                    ],
                )
            )
    return shown, lights


def _subtree(session: Session, region: Region) -> dict[str, str]:
    """Each region of the subtree (the region included) with the child of ``region`` it
    lies under (the region itself for itself)."""
    depth = len(region.path)
    under: dict[str, str] = {}
    for code, path in session.execute(
        select(Region.code, Region.path).where(Region.path.startswith(region.path))
    ):
        rest = path[depth:].strip("/")
        under[code] = rest.split("/", 1)[0] if rest else region.code
    return under


def _warnings(
    session: Session, under: dict[str, str], names: dict[str, Region]
) -> tuple[list[CockpitWarning], Counter[str], Counter[str], int]:
    """The firing warnings of the subtree: the first shown, counts by system and by child."""
    firing = select(EarlyWarning).where(
        EarlyWarning.state == "firing", EarlyWarning.region_code.in_(list(under))
    )
    by_system: Counter[str] = Counter()
    by_child: Counter[str] = Counter()
    for region_code, system in session.execute(
        firing.with_only_columns(EarlyWarning.region_code, Indicator.system).join(
            Indicator, Indicator.id == EarlyWarning.indicator_id
        )
    ):
        by_system[system] += 1
        by_child[under[region_code]] += 1
    order = case(WARNING_ORDER, value=Rule.severity, else_=len(WARNING_ORDER))
    rows = list(
        session.scalars(
            firing.join(Rule, Rule.id == EarlyWarning.rule_id)
            .order_by(order, EarlyWarning.since.desc(), EarlyWarning.id)
            .limit(WARNINGS_SHOWN)
        )
    )
    raised: dict[int, ProblemLink] = {}
    if rows:
        for problem_id, code, state, warning_id in session.execute(
            select(Problem.id, Problem.code, Problem.state, Problem.warning_id)
            .where(Problem.warning_id.in_([row.id for row in rows]))
            .order_by(Problem.id)
        ):
            raised[warning_id] = ProblemLink(id=problem_id, code=code, state=state)
    shown = [
        CockpitWarning(
            warning=brain.warning_public(session, row, names=names), problem=raised.get(row.id)
        )
        for row in rows
    ]
    return shown, by_system, by_child, sum(by_system.values())


def overview(
    session: Session,
    *,
    actor: Actor,
    region: str | None = None,
    locale: str = "zh-CN",
    settings: Settings | None = None,
) -> CockpitOverview:
    """The cockpit home for ``region`` (the root of the tree by default)."""
    names = brain.regions(session)
    if region is None:
        roots = sorted(code for code, item in names.items() if item.parent_code is None)
        if not roots:
            raise NotFound(
                Message("no region is loaded: load the region tree first"), field="region"
            )
        region = roots[0]
    focus = names.get(region)
    if focus is None:
        raise NotFound(Message("unknown region {region!r}", region=region), field="region")
    ancestors = []
    parent = focus.parent_code
    while parent is not None and parent in names:
        ancestors.insert(0, _ref(names[parent]))
        parent = names[parent].parent_code
    children = sorted(
        (item for item in names.values() if item.parent_code == focus.code),
        key=lambda item: item.code,
    )
    indicators, lights = _key_indicators(
        session,
        [focus.code, *(child.code for child in children)],
        focus=focus.code,
        settings=settings,
    )
    under = _subtree(session, focus)
    warnings, warnings_by_system, warnings_by_child, firing = _warnings(session, under, names)

    scope = problems.Filters(region=focus.code)
    by_channel = problems.stats(session, by="channel", filters=scope, locale=locale)
    by_system = {
        row.key: row
        for row in problems.stats(session, by="system", filters=scope, locale=locale).data
    }
    by_child = (
        {row.key: row for row in problems.stats(session, by="region", filters=scope).data}
        if children
        else {}
    )

    health = lake.report(session, actor=actor)
    coverage = {rollup.key: rollup.coverage for rollup in health.by_system}
    tiles = []
    for system in System:
        mine = [item for item in indicators if item.system == system.value]
        counted = Counter(item.light for item in mine)
        stats = by_system.get(system.value)
        tiles.append(
            SystemTile(
                system=system.value,
                label=system.label(locale),
                light=worst([item.light for item in mine]),
                key_indicators=len(mine),
                lights={light.value: counted.get(light.value, 0) for light in Light},
                warnings_firing=warnings_by_system.get(system.value, 0),
                problems_open=stats.open if stats else 0,
                problems_overdue=stats.overdue if stats else 0,
                coverage=coverage.get(system.value),
            )
        )
    rows = []
    for child in children:
        mine = lights.get(child.code, {})
        rows.append(
            ChildRegion(
                region=_ref(child),
                light=worst(list(mine.values())),
                red_indicators=sum(1 for light in mine.values() if light == Light.red.value),
                warnings_firing=warnings_by_child.get(child.code, 0),
                problems=by_child.get(child.code),
            )
        )
    batches = ledger.by_batch(session, locale=locale, settings=settings)
    return CockpitOverview(
        region=_ref(focus),
        ancestors=ancestors,
        as_of=working.today(),
        tiles=tiles,
        indicators=indicators,
        warnings=warnings,
        warnings_firing=firing,
        ledger=batches,
        reforms=sum(batch.count for batch in batches),
        problems=ProblemSummary(total=by_channel.total, by_channel=by_channel.data),
        children=rows,
        aggregation=Aggregation(
            overall=health.overall,
            by_system=health.by_system,
            catalog=catalog.stats(session, actor=actor),
            departments=orgs.count_departments(session),
            counties=sum(1 for item in names.values() if item.level == "county"),
        ),
    )
