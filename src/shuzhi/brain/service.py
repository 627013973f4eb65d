"""Use cases of the brain: define indicators, compute them, keep them current."""

from __future__ import annotations

import io
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from openpyxl import load_workbook
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shuzhi.brain import compute as computing
from shuzhi.brain import queries, signals
from shuzhi.brain.evaluation import Evaluated, evaluate
from shuzhi.brain.forecast import forecast_many
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
from shuzhi.brain.queries import RESULTS
from shuzhi.brain.rules import (
    WARNING,
    Additivity,
    Grain,
    RuleKind,
    Signal,
    parse_period,
    period_label,
    step,
)
from shuzhi.brain.schemas import (
    ApplyResult,
    ForecastSummary,
    GoalSpec,
    IndicatorSpec,
    RuleSpec,
    TargetResult,
    TargetSet,
    WarningSummary,
)
from shuzhi.core import audit, clock, events, plugins
from shuzhi.core.db import Database
from shuzhi.core.documents import load_yaml
from shuzhi.core.errors import Conflict, Message, NotFound, ShuzhiError, ValidationFailed
from shuzhi.core.permissions import SYSTEM, Actor, Scope, require
from shuzhi.core.plugins import Job, hookimpl
from shuzhi.core.settings import Settings, get_settings
from shuzhi.lake.engine import open_engine
from shuzhi.lake.storage import Lake
from shuzhi.orgs import queries as orgs_queries
from shuzhi.orgs.models import Department
from shuzhi.regions.models import Region

log = logging.getLogger(__name__)

ENGINES = ("duckdb", "spark")


# -- definitions ----------------------------------------------------------------------------


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{loc + ': ' if loc else ''}{message}"


def parse_file(text: str, *, source: str) -> list[IndicatorSpec]:
    """Every indicator of a YAML file, or one error naming the file and the indicator."""
    document = load_yaml(text, source=source)
    if not isinstance(document, dict) or not isinstance(document.get("indicators"), list):
        raise ValidationFailed(
            Message("{source}: expected a mapping with an 'indicators' list", source=source)
        )
    parsed: list[IndicatorSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(document["indicators"], start=1):
        code = item.get("code") if isinstance(item, dict) else None
        label = code if isinstance(code, str) else f"#{index}"
        parsed.append(
            _spec(item, where=Message("{source}: indicator {label}", source=source, label=label))
        )
        if parsed[-1].code in seen:
            raise ValidationFailed(
                Message(
                    "{source}: indicator {code} appears twice", source=source, code=parsed[-1].code
                )
            )
        seen.add(parsed[-1].code)
    return parsed


def _spec(item: Any, *, where: str) -> IndicatorSpec:
    try:
        return IndicatorSpec.model_validate(item)
    except ValidationError as exc:
        raise ValidationFailed(
            Message("{where}: {first}", where=where, first=_first(exc))
        ) from None


def _check(
    session: Session, incoming: Iterable[IndicatorSpec], *, drop: str | None = None
) -> dict[str, IndicatorSpec]:
    """Validate the indicators as they would stand together after the change; returns them."""
    merged = queries.specs(session)
    for spec in incoming:
        merged[spec.code] = spec
    if drop is not None:
        merged.pop(drop, None)
    wanted = {source for spec in merged.values() for source in spec.sources}
    departments = set(session.scalars(select(Department.code)))
    computing.validate(merged, sources=queries.sources(session, wanted), departments=departments)
    return merged


def _stored(spec: IndicatorSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_none=True)


def save(session: Session, *, actor: Actor, spec: IndicatorSpec) -> tuple[Indicator, bool]:
    """Create or replace one indicator; returns it and whether anything changed."""
    owner = orgs_queries.department(session, spec.owner, field="owner")
    require(
        actor,
        "brain.define",
        Scope(department_id=owner.id),
        what=Message("indicators of {code}", code=owner.code),
    )
    _check(session, [spec])
    existing = session.scalar(select(Indicator).where(Indicator.code == spec.code))
    now = clock.now()
    stored = _stored(spec)
    if existing is None:
        indicator = Indicator(
            code=spec.code,
            name=spec.name,
            name_en=spec.name_en,
            system=spec.system.value,
            owner_id=owner.id,
            spec=stored,
            version=1,
            created_at=now,
            updated_at=now,
        )
        session.add(indicator)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="brain.indicator.create",
            object_type="indicator",
            object_id=spec.code,
            object_repr=spec.name,
            after=stored,
        )
        return indicator, True
    if existing.owner_id != owner.id:
        require(
            actor,
            "brain.define",
            Scope(department_id=existing.owner_id),
            what=Message("indicator {code}", code=existing.code),
        )
    if existing.spec == stored:
        return existing, False
    before = existing.spec
    existing.name = spec.name
    existing.name_en = spec.name_en
    existing.system = spec.system.value
    existing.owner_id = owner.id
    existing.spec = stored
    existing.version += 1
    existing.updated_at = now
    audit.record(
        session,
        actor=actor,
        action="brain.indicator.update",
        object_type="indicator",
        object_id=spec.code,
        object_repr=spec.name,
        before=before,
        after=stored,
    )
    return existing, True


def apply(session: Session, *, actor: Actor, text: str, source: str) -> ApplyResult:
    """Create or update every indicator of a YAML file, idempotently, all or nothing: the
    whole file is validated together first (a derived indicator may name one defined
    further down, or reach one through a stored indicator)."""
    specs = parse_file(text, source=source)
    try:
        merged = _check(session, specs)
    except ShuzhiError as exc:
        raise exc.reworded(
            Message("{source}: {detail}", source=source, detail=exc.detail)
        ) from None
    result = ApplyResult(created=[], updated=[], unchanged=[])
    by_code = {spec.code: spec for spec in specs}
    # Saved inputs first, as each save checks against what is stored, and ordered over the
    # whole set as it will stand: when the file's A reads a stored S that reads the file's B,
    # B's old definition may still read A, a cycle the applied file does not have.
    # Reported in file order.
    position = {code: index for index, code in enumerate(by_code)}
    for layer in computing.layers(merged):
        for code in sorted(by_code.keys() & layer, key=position.__getitem__):
            spec = by_code[code]
            existed = session.scalar(select(Indicator.id).where(Indicator.code == code))
            try:
                _, changed = save(session, actor=actor, spec=spec)
            except ShuzhiError as exc:
                raise exc.reworded(
                    Message(
                        "{source}: indicator {code}: {detail}",
                        source=source,
                        code=code,
                        detail=exc.detail,
                    )
                ) from None
            _tally(result, code, existed=existed is not None, changed=changed)
    for bucket in (result.created, result.updated, result.unchanged):
        bucket.sort(key=position.__getitem__)
    return result


def _tally(result: ApplyResult, code: str, *, existed: bool, changed: bool) -> None:
    bucket = result.unchanged if not changed else result.updated if existed else result.created
    bucket.append(code)


def delete(session: Session, *, actor: Actor, code: str) -> None:
    indicator = queries.get(session, code)
    require(
        actor,
        "brain.define",
        Scope(department_id=indicator.owner_id),
        what=Message("indicator {code}", code=code),
    )
    users = sorted(
        other
        for other, spec in queries.specs(session).items()
        if code in computing.dependencies(spec)
    )
    if users:
        raise Conflict(
            Message(
                "indicator {code} is used by {join}; change those first",
                code=code,
                join=", ".join(users),
            )
        )
    audit.record(
        session,
        actor=actor,
        action="brain.indicator.delete",
        object_type="indicator",
        object_id=code,
        object_repr=indicator.name,
        before=indicator.spec,
    )
    session.delete(indicator)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # a higher package (a reform's key result) still names it; the brain cannot know whom
        raise Conflict(
            Message(
                "indicator {code} is still referred to (a reform's key result); remove that first",
                code=code,
            )
        ) from None


# -- targets ----------------------------------------------------------------------------------


def _target_rows(
    session: Session, entry: TargetSet, *, regions: dict[str, Region]
) -> list[tuple[str, Grain, date]]:
    if entry.subtree is not None:
        if entry.subtree not in regions:
            raise NotFound(
                Message("unknown region {subtree}", subtree=entry.subtree), field="subtree"
            )
        prefix = regions[entry.subtree].path
        codes = sorted(code for code, region in regions.items() if region.path.startswith(prefix))
    else:
        codes = []
    for code in entry.regions:
        if code not in regions:
            raise NotFound(Message("unknown region {code}", code=code), field="regions")
        codes.append(code)
    starts = [parse_period(entry.grain, period) for period in entry.periods]
    return [(code, entry.grain, start) for code in dict.fromkeys(codes) for start in starts]


def set_targets(
    session: Session,
    *,
    actor: Actor,
    entries: Iterable[TargetSet],
    origin: str = "entered",
    where: str = "",
) -> TargetResult:
    """Write targets (replacing those of the same indicator, region, grain and period);
    all or nothing: the interface rolls the transaction back on the first bad entry, and
    the error names it (``where``: the file it came from)."""
    regions = queries.regions(session)
    created = updated = 0
    now = clock.now()
    for index, entry in enumerate(entries, start=1):
        try:
            indicator = queries.get(session, entry.indicator)
            require(
                actor,
                "brain.define",
                Scope(department_id=indicator.owner_id),
                what=Message("targets of {code}", code=indicator.code),
            )
            rows = _target_rows(session, entry, regions=regions)
        except ShuzhiError as exc:
            raise exc.reworded(
                Message(
                    "{where}: target #{index}: {detail}",
                    where=where,
                    index=index,
                    detail=exc.detail,
                )
                if where
                else Message("target #{index}: {detail}", index=index, detail=exc.detail)
            ) from None
        existing = {
            (row.region_code, row.grain, row.period_start): row
            for row in session.scalars(select(Target).where(Target.indicator_id == indicator.id))
        }
        for region, grain, start in rows:
            found = existing.get((region, grain.value, start))
            if found is None:
                session.add(
                    Target(
                        indicator_id=indicator.id,
                        region_code=region,
                        grain=grain.value,
                        period_start=start,
                        value=entry.value,
                        origin=origin,
                        note=entry.note,
                        actor=actor.name,
                        updated_at=now,
                    )
                )
                created += 1
            elif (found.value, found.origin, found.note) != (entry.value, origin, entry.note):
                found.value, found.origin, found.note = entry.value, origin, entry.note
                found.actor, found.updated_at = actor.name, now
                updated += 1
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="brain.targets.set",
            object_type="indicator",
            object_id=indicator.code,
            object_repr=indicator.name,
            after={**entry.model_dump(mode="json"), "origin": origin, "rows": len(rows)},
        )
    return TargetResult(written=created + updated, created=created, updated=updated)


def parse_targets(text: str, *, source: str) -> list[TargetSet]:
    """The ``targets:`` list of a YAML file."""
    document = load_yaml(text, source=source)
    if not isinstance(document, dict) or not isinstance(document.get("targets"), list):
        raise ValidationFailed(
            Message("{source}: expected a mapping with a 'targets' list", source=source)
        )
    out = []
    for index, item in enumerate(document["targets"], start=1):
        try:
            out.append(TargetSet.model_validate(item))
        except ValidationError as exc:
            raise ValidationFailed(
                Message(
                    "{source}: target #{index}: {first}",
                    source=source,
                    index=index,
                    first=_first(exc),
                )
            ) from None
    return out


# the columns of a targets workbook, as a government office heads them
TARGET_COLUMNS = {
    "indicator": ("指标代码", "indicator"),
    "region": ("行政区划代码", "region"),
    "grain": ("周期类型", "grain"),
    "period": ("期间", "period"),
    "value": ("目标值", "value"),
    "note": ("备注", "note"),
}
GRAIN_WORDS = {"年": "year", "季": "quarter", "季度": "quarter", "月": "month", "周": "week",
               "日": "day"}  # fmt: skip


def parse_targets_workbook(data: bytes, *, source: str) -> list[TargetSet]:
    """Targets from the first sheet of an XLSX workbook, one row per region and period.

    Every bad row is reported (row number, column, reason) in one error, and nothing is
    taken from a workbook that has one."""
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        raise ValidationFailed(Message("{source}: not an XLSX workbook", source=source)) from None
    sheet = book.worksheets[0]
    lines = sheet.iter_rows(values_only=True)
    header = [str(cell).strip() if cell is not None else "" for cell in next(lines, ())]
    where: dict[str, int] = {}
    for key, names in TARGET_COLUMNS.items():
        for index, cell in enumerate(header):
            if cell in names:
                where[key] = index
    missing = [
        TARGET_COLUMNS[key][0] for key in TARGET_COLUMNS if key not in where and key != "note"
    ]
    if missing:
        raise ValidationFailed(
            Message("{source}: missing columns {join}", source=source, join=", ".join(missing))
        )
    entries: list[TargetSet] = []
    errors: list[str] = []
    for number, cells in enumerate(lines, start=2):
        if not any(cell not in (None, "") for cell in cells):
            continue

        def cell(key: str, cells: tuple = cells) -> Any:
            index = where.get(key)
            return cells[index] if index is not None and index < len(cells) else None

        grain = str(cell("grain") or "year").strip()
        period = cell("period")
        if isinstance(period, datetime | date):
            period = f"{period:%Y-%m}" if GRAIN_WORDS.get(grain, grain) == "month" else period
        try:
            entries.append(
                TargetSet(
                    indicator=str(cell("indicator") or "").strip(),
                    value=cell("value"),
                    grain=GRAIN_WORDS.get(grain, grain),
                    periods=[str(period if period is not None else "").strip()],
                    regions=[str(cell("region") or "").strip()],
                    note=str(cell("note") or ""),
                )
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            column = str(error["loc"][0]) if error["loc"] else ""
            heading = TARGET_COLUMNS.get(
                {"periods": "period", "regions": "region"}.get(column, column)
            )
            label = heading[0] if heading else column
            errors.append(
                f"row {number} {label}: {str(error['msg']).removeprefix('Value error, ')}"
            )
    if errors:
        more = Message(" (and {count} more)", count=len(errors) - 5) if len(errors) > 5 else ""
        raise ValidationFailed(
            Message("{source}: {join}{more}", source=source, join="; ".join(errors[:5]), more=more)
        )
    if not entries:
        raise ValidationFailed(Message("{source}: no target rows", source=source))
    return entries


def parse_targets_upload(data: bytes, *, source: str) -> list[TargetSet]:
    """Targets from a file as uploaded: an XLSX workbook (by its signature) or YAML."""
    if data[:4] == b"PK\x03\x04":
        return parse_targets_workbook(data, source=source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed(
            Message("{source}: neither an XLSX workbook nor UTF-8 YAML", source=source)
        ) from None
    return parse_targets(text, source=source)


# -- warning rules and warnings ------------------------------------------------------------------


def parse_rules(text: str, *, source: str) -> list[RuleSpec]:
    document = load_yaml(text, source=source)
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise ValidationFailed(
            Message("{source}: expected a mapping with a 'rules' list", source=source)
        )
    out: list[RuleSpec] = []
    for index, item in enumerate(document["rules"], start=1):
        code = item.get("code") if isinstance(item, dict) else None
        label = code if isinstance(code, str) else f"#{index}"
        try:
            out.append(RuleSpec.model_validate(item))
        except ValidationError as exc:
            raise ValidationFailed(
                Message(
                    "{source}: rule {label}: {first}", source=source, label=label, first=_first(exc)
                )
            ) from None
    return out


def save_rule(session: Session, *, actor: Actor, spec: RuleSpec) -> tuple[Rule, bool]:
    """Create or replace a rule; returns it and whether anything changed. A changed rule
    starts its warnings afresh: what they said was said under the old rule."""
    require(actor, "brain.define", what=Message("warning rules"))
    known = set(session.scalars(select(Indicator.code)))
    for code in spec.indicators:
        if code != "*" and code not in known:
            raise NotFound(
                Message("rule {code}: unknown indicator {code2!r}", code=spec.code, code2=code),
                field="indicators",
            )
    stored = spec.model_dump(mode="json")
    rule = session.scalar(select(Rule).where(Rule.code == spec.code))
    now = clock.now()
    if rule is not None and rule.spec == stored:
        return rule, False
    if rule is None:
        rule = Rule(code=spec.code, version=0, created_at=now, spec={})
        session.add(rule)
    else:
        for warning in session.scalars(select(EarlyWarning).where(EarlyWarning.rule_id == rule.id)):
            session.delete(warning)
    before = rule.spec or None
    rule.name, rule.kind, rule.severity = spec.name, spec.kind.value, spec.severity.value
    rule.spec, rule.enabled, rule.updated_at = stored, spec.enabled, now
    rule.version += 1
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="brain.rule.save",
        object_type="rule",
        object_id=spec.code,
        object_repr=spec.name,
        before=before,
        after=stored,
    )
    return rule, True


def apply_rules(session: Session, *, actor: Actor, text: str, source: str) -> ApplyResult:
    result = ApplyResult(created=[], updated=[], unchanged=[])
    for spec in parse_rules(text, source=source):
        existed = session.scalar(select(Rule.id).where(Rule.code == spec.code))
        try:
            _, changed = save_rule(session, actor=actor, spec=spec)
        except ShuzhiError as exc:
            raise exc.reworded(
                Message("{source}: {detail}", source=source, detail=exc.detail)
            ) from None
        _tally(result, spec.code, existed=existed is not None, changed=changed)
    return result


def evaluate_warnings(
    db: Database,
    *,
    actor: Actor,
    settings: Settings | None = None,
    today: date | None = None,
) -> WarningSummary:
    """Evaluate every enabled rule for every indicator and watched region, stepping each
    warning through the periods computed since it was last evaluated (the first time,
    through the whole history), so its story is the same whenever it is evaluated."""
    require(
        actor, "brain.compute", Scope(department_id=actor.department_id), what=Message("warnings")
    )
    settings = settings or get_settings()
    today = today or clock.now().date()
    evaluated = transitions = 0
    changes: list[dict[str, Any]] = []
    with db.transaction() as session:
        specs = queries.specs(session)
        indicators = {row.code: row for row in session.scalars(select(Indicator))}
        names = queries.regions(session)
        parents = {code: region.parent_code for code, region in names.items()}
        forecasts = queries.forecast_lookup(settings)
        existing = {
            (w.rule_id, w.indicator_id, w.region_code): w
            for w in session.scalars(select(EarlyWarning))
        }
        cache: dict[tuple[str, str], list[Evaluated]] = {}
        for rule in session.scalars(select(Rule).where(Rule.enabled.is_(True)).order_by(Rule.id)):
            spec_rule = RuleSpec.model_validate(rule.spec)
            codes = sorted(specs) if "*" in spec_rule.indicators else spec_rule.indicators
            watched = sorted(c for c, r in names.items() if r.level in spec_rule.levels)
            for code in codes:
                if code not in specs:
                    continue
                spec, indicator = specs[code], indicators[code]
                key = (code, spec_rule.grain.value)
                if key not in cache:
                    rows = queries.value_rows(
                        indicator=code, grain=spec_rule.grain, settings=settings
                    )
                    reach = max((r["last_time"] for r in rows if r["last_time"]), default=None)
                    cache[key] = evaluate(
                        spec,
                        rows,
                        targets=queries.targets(session, indicator),
                        parents=parents,
                        grain=spec_rule.grain,
                        last_time=reach,
                    )
                year_targets = (
                    queries.targets(session, indicator)
                    if spec_rule.kind is RuleKind.forecast_miss
                    else {}
                )
                by_region: dict[str, list[Evaluated]] = defaultdict(list)
                for item in cache[key]:
                    by_region[item.region_code].append(item)
                periods = sorted({item.period_start for item in cache[key]})
                for region in watched:
                    warning = existing.get((rule.id, indicator.id, region))
                    if warning is None:
                        warning = EarlyWarning(
                            rule_id=rule.id,
                            indicator_id=indicator.id,
                            region_code=region,
                            grain=spec_rule.grain.value,
                            since=clock.now(),
                            updated_at=clock.now(),
                        )
                        session.add(warning)
                        session.flush()
                    try:
                        readings = _readings(
                            spec_rule,
                            spec,
                            by_region.get(region, []),
                            periods=periods,
                            after=warning.period_start,
                            today=today,
                            forecasts=forecasts,
                            indicator=code,
                            region=region,
                            targets=year_targets,
                        )
                    except Exception as exc:  # one bad evaluation must not stop the others
                        log.exception("warning %s could not be evaluated", warning.id)
                        problem = f"评估出错：{type(exc).__name__}: {exc}"[:500]
                        readings = [(periods[-1] if periods else None,
                                     signals.Reading(Signal.error, message=problem))]  # fmt: skip
                    start = warning.state
                    for period, reading in readings:
                        evaluated += 1
                        transitions += _apply_reading(session, warning, spec_rule, period, reading)
                    if warning.state != start:
                        changes.append(
                            {
                                "warning_id": warning.id,
                                "from_state": start,
                                "to_state": warning.state,
                            }
                        )
        firing = sum(
            1 for w in session.scalars(select(EarlyWarning).where(EarlyWarning.state == "firing"))
        )
    if changes:
        _tell_channels(db, changes)
    return WarningSummary(evaluated=evaluated, transitions=transitions, firing=firing)


def _tell_channels(db: Database, changes: list[dict[str, Any]]) -> None:
    """Hand the committed changes to the warning channels (the closed loop turns firing
    warnings into problems); a failing channel is logged and never undoes the evaluation."""
    try:
        plugins.manager().hook.shuzhi_on_warnings(database=db, changes=changes)
    except Exception:
        log.exception("a warning channel failed")


def _readings(
    rule: RuleSpec,
    spec: IndicatorSpec,
    rows: list[Evaluated],
    *,
    periods: list[date],
    after: date | None,
    today: date,
    forecasts: queries.ForecastLookup,
    indicator: str,
    region: str,
    targets: dict[tuple[str, str, date], float],
) -> list[tuple[date | None, signals.Reading]]:
    """The readings of one warning for each period since ``after``."""
    if not periods:
        return [(None, signals.no_data(spec, ""))] if after is None else []
    latest = periods[-1]
    by_period = {row.period_start: row for row in rows}
    if rule.kind is RuleKind.stale:
        if after is not None and after >= latest:
            return []
        last = max((row.period_start for row in rows if row.value is not None), default=None)
        return [(latest, signals.stale(rule, spec, region_last=last, latest=latest, today=today))]
    if rule.kind in (RuleKind.anomaly, RuleKind.forecast_miss):
        todo = [latest] if after is None or after < latest else []
    else:
        todo = [period for period in periods if after is None or period > after]
    out: list[tuple[date | None, signals.Reading]] = []
    for period in todo:
        row = by_period.get(period)
        label = period_label(rule.grain, period)
        if row is None:
            out.append((period, signals.no_data(spec, label)))
        elif rule.kind is RuleKind.threshold:
            out.append((period, signals.threshold(rule, spec, row)))
        elif rule.kind is RuleKind.change:
            out.append((period, signals.change(rule, spec, row)))
        elif rule.kind is RuleKind.consecutive:
            upto = [r for r in rows if r.period_start <= period]
            out.append((period, signals.consecutive(rule, spec, upto)))
        elif rule.kind is RuleKind.anomaly:
            bounds = forecasts.bounds(indicator, region, rule.grain.value, period)
            out.append((period, signals.anomaly(rule, spec, row, bounds)))
        else:
            year = date(period.year, 1, 1)
            projected = _projection(
                spec,
                rule.grain,
                year,
                observed={r.period_start: r.value for r in rows if r.value is not None},
                forecast=forecasts.means(indicator, region, rule.grain.value),
            )
            out.append(
                (
                    period,
                    signals.forecast_miss(
                        rule,
                        spec,
                        projected=projected,
                        target=targets.get((region, "year", year)),
                        period=f"{period.year}年",
                    ),
                )
            )
    return out


def _projection(
    spec: IndicatorSpec,
    grain: Grain,
    year: date,
    *,
    observed: dict[date, float],
    forecast: dict[date, float],
) -> float | None:
    """Where the year is heading: the last period's value for a rate or a stock, the sum
    of its periods for an additive flow, observed where known and forecast elsewhere."""
    step = {Grain.month: 1, Grain.quarter: 3}.get(grain)
    if step is None:
        return None
    periods = [date(year.year, month, 1) for month in range(1, 13, step)]
    known = [observed.get(period, forecast.get(period)) for period in periods]
    if spec.additivity is Additivity.additive:
        return None if any(value is None for value in known) else float(sum(known))  # type: ignore[arg-type]
    return known[-1]


def _apply_reading(
    session: Session,
    warning: EarlyWarning,
    rule: RuleSpec,
    period: date | None,
    reading: signals.Reading,
) -> int:
    names, bad, good = step(
        warning.state,
        warning.bad_count,
        warning.good_count,
        reading.signal,
        pending_for=rule.pending_for,
        recover_for=rule.recover_for,
    )
    now = clock.now()
    for name in names:
        before = warning.state
        WARNING.fire(session, warning, name, actor=SYSTEM, scope=Scope(), object_id=str(warning.id))
        session.add(
            WarningEvent(
                warning_id=warning.id,
                from_state=before,
                to_state=warning.state,
                grain=warning.grain,
                period_start=period,
                value=reading.value,
                line=reading.line,
                message=reading.message,
                at=now,
            )
        )
        warning.since = now
        events.emit_after_commit(
            session,
            "brain.warning",
            warning_id=warning.id,
            rule=rule.code,
            indicator=warning.indicator.code if warning.indicator else None,
            region=warning.region_code,
            from_state=before,
            to_state=warning.state,
            period=period.isoformat() if period else None,
            value=reading.value,
            line=reading.line,
            message=reading.message,
        )
    warning.bad_count, warning.good_count = bad, good
    if period is not None:
        warning.period_start = period
    warning.value, warning.line, warning.message = reading.value, reading.line, reading.message
    warning.updated_at = now
    return len(names)


# -- computation --------------------------------------------------------------------------------


def _with_dependents(specs: dict[str, IndicatorSpec], wanted: set[str]) -> set[str]:
    """``wanted`` and every derived indicator that reads one of them, transitively."""
    found = set(wanted)
    grew = True
    while grew:
        grew = False
        for code, spec in specs.items():
            if code not in found and found & set(computing.dependencies(spec)):
                found.add(code)
                grew = True
    return found


def compute(
    db: Database,
    *,
    actor: Actor,
    engine: str | None = None,
    indicators: Iterable[str] | None = None,
    trigger: str = "manual",
    settings: Settings | None = None,
) -> Run:
    """Compute indicators (all, or those named and the derived ones that read them) for
    every region and period, and make the results current in the lake; returns the run.

    A failure (an engine that cannot start, a query that fails) records the run as failed
    and leaves the previous results current."""
    settings = settings or get_settings()
    kind = engine or settings.brain.engine
    if kind not in ENGINES:
        raise ValidationFailed(
            Message("unknown engine {kind!r}: use duckdb or spark", kind=kind), field="engine"
        )
    require(
        actor, "brain.compute", Scope(department_id=actor.department_id), what=Message("indicators")
    )
    with db.session() as session:
        specs = queries.specs(session)
        named = list(dict.fromkeys(indicators or []))
        for code in named:
            queries.get(session, code)
        wanted = _with_dependents(specs, set(named)) if named else set(specs)
        used = {source for code in wanted for source in specs[code].sources}
        # derived indicators may read base ones outside ``wanted``: their sources too
        sources = queries.sources(session, used)
        regions = computing.regions_table(queries.region_paths(session))
    lake = queries.results_lake(settings)
    with lake.locked(RESULTS, wait=True):
        with db.transaction() as session:
            run = Run(
                engine=kind,
                state="running",
                trigger=trigger,
                indicators=sorted(wanted),
                actor=actor.name,
                started_at=clock.now(),
            )
            session.add(run)
            session.flush()
            run_id = run.id
        try:
            return _run(
                db,
                run_id=run_id,
                kind=kind,
                specs=specs,
                wanted=wanted,
                partial=bool(named),
                sources=sources,
                regions=regions,
                settings=settings,
            )
        except BaseException as exc:
            message = str(exc) if isinstance(exc, ShuzhiError) else f"{type(exc).__name__}: {exc}"
            with db.transaction() as session:
                failed = session.get(Run, run_id)
                assert failed is not None
                failed.state = "failed"
                failed.error = message[:2000]
                failed.finished_at = clock.now()
            lake.clear_staging(RESULTS)
            raise


def _run(
    db: Database,
    *,
    run_id: int,
    kind: str,
    specs: dict[str, IndicatorSpec],
    wanted: set[str],
    partial: bool,
    sources: dict[str, computing.SourceInfo],
    regions: pa.Table,
    settings: Settings,
) -> Run:
    lake = queries.results_lake(settings)
    previous = (
        queries.results(settings)
        if partial or any(computing.dependencies(specs[code]) for code in wanted)
        else None
    )
    with open_engine(kind, lake, sorted(sources), settings=settings) as engine:
        fresh = computing.compute(
            engine, specs, sources=sources, regions=regions, wanted=wanted, known=previous
        )
        read = engine.read
    if partial and previous is not None:
        kept = previous.filter(pc.invert(pc.is_in(previous["indicator"], pa.array(sorted(wanted)))))
        table = pa.concat_tables([kept, fresh])
    else:
        table = fresh
    table = table.sort_by(
        [
            ("indicator", "ascending"),
            ("region_code", "ascending"),
            ("grain", "ascending"),
            ("period_start", "ascending"),
        ]
    )
    lineage = {"run": run_id, "engine": kind, "indicators": sorted(wanted), "read": read}
    snapshot = _write_snapshot(lake, RESULTS, run_id, table, lineage)
    with db.transaction() as session:
        run = session.get(Run, run_id)
        assert run is not None
        run.state = "succeeded"
        run.rows = table.num_rows
        run.snapshot = snapshot
        run.read = read
        run.finished_at = clock.now()
        events.emit_after_commit(
            session, "brain.computed", run_id=run_id, indicators=sorted(wanted)
        )
    _prune(db, lake, settings.brain.results_kept)
    with db.session() as session:
        done = session.get(Run, run_id)
        assert done is not None
        session.expunge(done)
        return done


def _write_snapshot(
    lake: Lake, folder: str, number: int, table: pa.Table, lineage: dict[str, Any]
) -> str:
    """Write ``table`` as a new snapshot of ``folder`` and make it current, atomically."""
    snapshot = f"{clock.now():%Y%m%dT%H%M%S}-b{number}"
    staging = lake.staging_dir(folder, snapshot)
    staging.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, staging / "data.parquet")
    (staging / "lineage.json").write_text(json.dumps(lineage, ensure_ascii=False, indent=2))
    lake.publish_staged(folder, snapshot)
    lake.point(folder, snapshot)
    return snapshot


def _prune(db: Database, lake: Any, kept: int) -> None:
    with db.session() as session:
        names = list(
            session.scalars(
                select(Run.snapshot)
                .where(Run.state == "succeeded", Run.snapshot.is_not(None))
                .order_by(Run.id.desc())
                .limit(kept)
            )
        )
    current = lake.current(RESULTS)
    lake.prune(RESULTS, [name for name in names if name] + ([current] if current else []))


def stale_indicators(db: Database, settings: Settings | None = None) -> list[str]:
    """Indicators whose sources got a new snapshot since the results were computed."""
    settings = settings or get_settings()
    lake = queries.results_lake(settings)
    with db.session() as session:
        specs = queries.specs(session)
        last = queries.last_run(session)
        read: dict[str, str] = {}
        computed: set[str] = set()
        for run in session.scalars(select(Run).where(Run.state == "succeeded").order_by(Run.id)):
            read.update(run.read)
            computed.update(run.indicators)
    if last is None:
        return sorted(specs) if specs else []
    stale = []
    for code, spec in specs.items():
        if code not in computed and spec.sources:
            stale.append(code)
            continue
        if any(lake.current(source) not in (None, read.get(source)) for source in spec.sources):
            stale.append(code)
    return sorted(stale)


def recompute_stale(db: Database, worker: str) -> int:
    """The worker's job: recompute what new snapshots made stale; returns how many."""
    stale = stale_indicators(db)
    if not stale:
        return 0
    try:
        run = compute(db, actor=SYSTEM, indicators=stale, trigger=f"stale:{worker}")
    except ShuzhiError as exc:
        log.warning("recompute of %s failed: %s", ", ".join(stale), exc.detail)
        return 0
    return len(run.indicators)


# -- forecasts ----------------------------------------------------------------------------------

SEASON = {Grain.day: 7, Grain.week: 52, Grain.month: 12, Grain.quarter: 4, Grain.year: 1}
FORECAST_SCHEMA = pa.schema(
    [
        ("indicator", pa.string()),
        ("region_code", pa.string()),
        ("grain", pa.string()),
        ("origin", pa.date32()),  # the last period the forecast saw
        ("model", pa.string()),
        ("mase", pa.float64()),
        ("reason", pa.string()),  # why a series has no forecast (then one row, step 0)
        ("step", pa.int32()),
        ("period_start", pa.date32()),
        ("mean", pa.float64()),
        ("lo80", pa.float64()),
        ("hi80", pa.float64()),
        ("lo95", pa.float64()),
        ("hi95", pa.float64()),
    ]
)
FORECAST_LEVELS = ("province", "city", "county")
ORIGINS_KEPT = 3


def _series(rows: list[dict[str, Any]], grain: Grain) -> tuple[list[date], list[float | None]]:
    """A region's values at every period from its first to its last, None where missing."""
    known = {row["period_start"]: row["value"] for row in rows}
    periods = [min(known)]
    while periods[-1] < max(known):
        periods.append(_next_start(grain, periods[-1]))
    return periods, [known.get(period) for period in periods]


def _next_start(grain: Grain, start: date) -> date:
    if grain in (Grain.day, Grain.week):
        return start + timedelta(days=1 if grain is Grain.day else 7)
    months = {Grain.month: 1, Grain.quarter: 3, Grain.year: 12}[grain]
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def forecast(
    db: Database,
    *,
    actor: Actor,
    indicators: Iterable[str] | None = None,
    grain: Grain = Grain.month,
    horizon: int | None = None,
    origins: int = 1,
    settings: Settings | None = None,
) -> ForecastSummary:
    """Forecast every indicator × region series (province, cities, counties) at ``grain``
    from the current results, with the model chosen per series by backtest; ``origins``
    > 1 also forecasts from each of the last periods left out, so that the newest values
    can be checked against what was expected of them (the anomaly rule)."""
    settings = settings or get_settings()
    require(
        actor, "brain.compute", Scope(department_id=actor.department_id), what=Message("forecasts")
    )
    horizon = horizon or settings.brain.forecast_horizon
    started = clock.now()
    with db.session() as session:
        specs = queries.specs(session)
        for code in indicators or []:
            queries.get(session, code)
        levels = {code: region.level for code, region in queries.regions(session).items()}
    wanted = [code for code in (indicators or sorted(specs)) if grain in specs[code].grains]
    work: list[tuple[tuple[str, str, date], list[float | None]]] = []
    for code in wanted:
        by_region: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in queries.value_rows(indicator=code, grain=grain, settings=settings):
            if levels.get(row["region_code"]) in FORECAST_LEVELS and row["value"] is not None:
                by_region[row["region_code"]].append(row)
        for region, rows in sorted(by_region.items()):
            periods, values = _series(rows, grain)
            for back in range(max(1, origins)):
                if back >= len(periods) - 1:
                    break
                end = len(periods) - back
                work.append(((code, region, periods[end - 1]), values[:end]))
    results = forecast_many(
        work, season_length=SEASON[grain], horizon=horizon, n_jobs=settings.brain.forecast_jobs
    )
    columns: dict[str, list[Any]] = {name: [] for name in FORECAST_SCHEMA.names}

    def add(**row: Any) -> None:
        for name in FORECAST_SCHEMA.names:
            columns[name].append(row.get(name))

    models: dict[str, int] = defaultdict(int)
    short = 0
    for result in results:
        code, region, origin = result.key  # type: ignore[misc]
        common = {
            "indicator": code,
            "region_code": region,
            "grain": grain.value,
            "origin": origin,
            "model": result.model,
            "mase": result.backtest_mase,
        }
        if result.reason is not None:
            short += 1
            add(**common, reason=result.reason, step=0, period_start=origin)
            continue
        models[result.model or ""] += 1
        start = origin
        for point in result.points:
            start = _next_start(grain, start)
            add(**common, step=point.step, period_start=start, mean=point.mean, lo80=point.lo80,
                hi80=point.hi80, lo95=point.lo95, hi95=point.hi95)  # fmt: skip
    fresh = pa.table(columns, schema=FORECAST_SCHEMA)
    lake = queries.results_lake(settings)
    with lake.locked(queries.FORECASTS, wait=True):
        previous = _previous_forecasts(lake, fresh)
        table = pa.concat_tables([previous, fresh]) if previous is not None else fresh
        number = int(clock.now().timestamp())
        lineage = {"results": lake.current(RESULTS), "indicators": wanted, "grain": grain.value}
        _write_snapshot(lake, queries.FORECASTS, number, table, lineage)
        keep = lake.snapshots(queries.FORECASTS)[-2:]
        lake.prune(queries.FORECASTS, keep)
    return ForecastSummary(
        series=len(results),
        forecast=len(results) - short,
        too_short=short,
        models=dict(models),
        seconds=(clock.now() - started).total_seconds(),
    )


def _previous_forecasts(lake: Lake, fresh: pa.Table) -> pa.Table | None:
    """The stored forecasts to keep beside new ones: of other series, and of the same
    series from the last few origins before the new ones (for anomaly checks)."""
    path = lake.current_file(queries.FORECASTS)
    if path is None:
        return None
    old = pq.read_table(path, schema=FORECAST_SCHEMA)
    if old.num_rows == 0:
        return None
    keys = ["indicator", "region_code", "grain", "origin"]
    renewed = {tuple(row[key] for key in keys) for row in fresh.select(keys).to_pylist()}
    origins: dict[tuple[str, str, str], set[date]] = defaultdict(set)
    for row in old.select(keys).to_pylist():
        origins[(row["indicator"], row["region_code"], row["grain"])].add(row["origin"])
    for key in renewed:
        origins[key[:3]].add(key[3])
    kept_origins = {key: sorted(found)[-ORIGINS_KEPT:] for key, found in origins.items()}
    mask = [
        (ind, reg, gr, org) not in renewed and org in kept_origins[(ind, reg, gr)]
        for ind, reg, gr, org in zip(
            old["indicator"].to_pylist(),
            old["region_code"].to_pylist(),
            old["grain"].to_pylist(),
            old["origin"].to_pylist(),
            strict=True,
        )
    ]
    return old.filter(pa.array(mask))


@hookimpl
def shuzhi_jobs() -> list[Job]:
    return [Job("brain.recompute", recompute_stale)]


__all__ = ["ENGINES", "apply", "compute", "delete", "parse_file", "save"]


# -- strategic goals ------------------------------------------------------------------------


def parse_goals(text: str, *, source: str) -> list[GoalSpec]:
    document = load_yaml(text, source=source)
    if not isinstance(document, dict) or not isinstance(document.get("goals"), list):
        raise ValidationFailed(
            Message("{source}: expected a mapping with a 'goals' list", source=source)
        )
    out = []
    for index, item in enumerate(document["goals"], start=1):
        code = item.get("code") if isinstance(item, dict) else None
        label = code if isinstance(code, str) else f"#{index}"
        try:
            out.append(GoalSpec.model_validate(item))
        except ValidationError as exc:
            raise ValidationFailed(
                Message(
                    "{source}: goal {label}: {first}", source=source, label=label, first=_first(exc)
                )
            ) from None
    return out


def _walk(
    goals: list[GoalSpec], parent: str | None = None
) -> Iterator[tuple[GoalSpec, str | None]]:
    for goal in goals:
        yield goal, parent
        yield from _walk(goal.children, goal.code)


def apply_goals(session: Session, *, actor: Actor, text: str, source: str) -> ApplyResult:
    """Create or replace goal trees from YAML, all or nothing. The file is the whole of
    each tree it names: goals under its roots that the file no longer lists are removed.
    Each key result's milestones become the targets (origin ``goal``) of its indicator in
    its region for the milestone's year."""
    require(actor, "brain.define", what=Message("strategic goals"))
    roots = parse_goals(text, source=source)
    flat = list(_walk(roots))
    codes = [goal.code for goal, _ in flat]
    twice = sorted({code for code in codes if codes.count(code) > 1})
    if twice:
        raise ValidationFailed(
            Message("{source}: goal {twice_item} appears twice", source=source, twice_item=twice[0])
        )
    indicators = {row.code: row for row in session.scalars(select(Indicator))}
    known_regions = set(session.scalars(select(Region.code)))
    departments = {row.code: row.id for row in session.scalars(select(Department))}
    for goal, _ in flat:
        where = Message("{source}: goal {code}", source=source, code=goal.code)
        if goal.owner is not None and goal.owner not in departments:
            raise NotFound(
                Message("{where}: unknown owner department {owner}", where=where, owner=goal.owner)
            )
        for result in goal.key_results:
            if result.indicator not in indicators:
                raise NotFound(
                    Message(
                        "{where}: unknown indicator {indicator!r}",
                        where=where,
                        indicator=result.indicator,
                    )
                )
            if result.region not in known_regions:
                raise NotFound(
                    Message("{where}: unknown region {region}", where=where, region=result.region)
                )
            try:
                parse_period(Grain.year, result.baseline_period)
            except ValidationFailed:
                raise ValidationFailed(
                    Message(
                        "{where}: baseline_period {baseline_period!r} is not a year",
                        where=where,
                        baseline_period=result.baseline_period,
                    )
                ) from None
    existing = {row.code: row for row in session.scalars(select(Goal))}
    result = ApplyResult(created=[], updated=[], unchanged=[])
    now = clock.now()
    ids: dict[str, int] = {}
    for position, (goal, parent) in enumerate(flat):
        row = existing.get(goal.code)
        fields = {
            "name": goal.name,
            "parent_id": ids[parent] if parent else None,
            "position": position,
            "system": goal.system.value if goal.system else None,
            "owner_id": departments[goal.owner] if goal.owner else None,
            "description": goal.description,
            "starts_on": goal.starts_on,
            "ends_on": goal.ends_on,
        }
        wanted = [
            (
                index,
                indicators[kr.indicator].id,
                kr.region,
                kr.baseline_period,
                kr.baseline,
                [m.model_dump(mode="json") for m in kr.milestones],
                kr.weight,
            )
            for index, kr in enumerate(goal.key_results)
        ]
        if row is None:
            row = Goal(code=goal.code, updated_at=now, **fields)
            session.add(row)
            session.flush()
            result.created.append(goal.code)
            had: list[tuple] = []
        else:
            stored = select(KeyResult).where(KeyResult.goal_id == row.id)
            had = [
                (kr.position, kr.indicator_id, kr.region_code, kr.baseline_period, kr.baseline,
                 kr.milestones, kr.weight)
                for kr in session.scalars(stored.order_by(KeyResult.position))
            ]  # fmt: skip
            same = all(getattr(row, key) == value for key, value in fields.items())
            (result.unchanged if same and had == wanted else result.updated).append(goal.code)
            for key, value in fields.items():
                setattr(row, key, value)
            row.updated_at = now
        ids[goal.code] = row.id
        if had != wanted:
            for old in session.scalars(select(KeyResult).where(KeyResult.goal_id == row.id)):
                session.delete(old)
            for position_, indicator_id, region, period, baseline, milestones, weight in wanted:
                session.add(
                    KeyResult(goal_id=row.id, position=position_, indicator_id=indicator_id,
                              region_code=region, baseline_period=period, baseline=baseline,
                              milestones=milestones, weight=weight)
                )  # fmt: skip
    # goals under these roots that the file no longer lists
    listed = set(codes)
    for code, row in existing.items():
        if code in listed:
            continue
        parent_id = row.parent_id
        while parent_id is not None:
            parent = session.get(Goal, parent_id)
            if parent is None:
                break
            if parent.code in {root.code for root in roots}:
                session.delete(row)
                break
            parent_id = parent.parent_id
    session.flush()
    entries = [
        TargetSet(
            indicator=kr.indicator,
            value=milestone.target,
            grain=Grain.year,
            periods=[str(milestone.date.year)],
            regions=[kr.region],
            note=f"goal {goal.code}",
        )
        for goal, _ in flat
        for kr in goal.key_results
        for milestone in kr.milestones
    ]
    set_targets(session, actor=actor, entries=entries, origin="goal", where=source)
    audit.record(
        session,
        actor=actor,
        action="brain.goals.apply",
        object_type="goal",
        object_id=",".join(root.code for root in roots),
        after={"goals": codes},
    )
    return result
