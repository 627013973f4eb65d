from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from shuzhi.brain import queries, reports, service
from shuzhi.brain.rules import Grain, parse_period
from shuzhi.brain.schemas import ApplyResult, GoalNode, TargetResult, TargetSet
from shuzhi.cli.common import (
    JsonOption,
    acting,
    print_applied,
    print_json,
    print_table,
    read_text_file,
    reading,
    writing,
)
from shuzhi.core.enums import System
from shuzhi.core.errors import ValidationFailed

app = typer.Typer(
    help="The brain (大脑): indicators, their computation, targets and warnings.",
    no_args_is_help=True,
)
Code = Annotated[str, typer.Argument(help="Indicator code.")]


def _apply_file(file: Path, use_case: Callable[..., ApplyResult], json: bool) -> None:
    text = read_text_file(file)
    with writing() as (session, actor):
        result = use_case(session, actor=actor, text=text, source=file.name)
    print_applied(result, json)


@app.command()
def apply(
    file: Path = typer.Argument(..., help="An indicators YAML file."), json: JsonOption = False
) -> None:
    """Create or update every indicator of a YAML file; one bad indicator rejects the file."""
    _apply_file(file, service.apply, json)


@app.command("indicators")
def list_indicators(
    system: str = typer.Option(None, help="System code (e.g. digital_society)."),
    query: str = typer.Option(None, "--search", "-q", help="Part of a code or name."),
    json: JsonOption = False,
) -> None:
    """List the indicators."""
    with reading() as (session, _):
        rows = [queries.public(row) for row in queries.search(session, system=system, q=query)]
    if json:
        print_json({"data": rows, "count": len(rows)})
        return
    print_table(
        [(r.code, r.name, r.system_label, r.owner, r.unit, r.measure) for r in rows],
        ["code", "name", "system", "owner", "unit", "measure"],
    )


@app.command()
def show(code: Code, json: JsonOption = False) -> None:
    """Show one indicator's definition."""
    with reading() as (session, _):
        public = queries.public(queries.get(session, code))
    if json:
        print_json(public)
        return
    typer.echo(f"{public.code}  {public.name}  ({public.name_en})")
    typer.echo(
        f"system {public.system} · owner {public.owner} · unit {public.unit or '-'} · "
        f"{public.direction} is better · {public.measure}, {public.additivity} · "
        f"grains {', '.join(public.grains)} · sources {', '.join(public.sources) or '-'}"
    )


@app.command()
def compute(
    engine: str = typer.Option(None, help="duckdb or spark (default: the brain.engine setting)."),
    indicator: list[str] = typer.Option(
        None, "--indicator", "-i", help="Only this indicator (and those derived from it)."
    ),
    json: JsonOption = False,
) -> None:
    """Compute indicators for every region and period and make the results current."""
    db, actor = acting()
    run = service.compute(db, actor=actor, engine=engine, indicators=indicator or None)
    public = queries.run_public(run)
    if json:
        print_json(public)
        return
    typer.echo(
        f"run {public.id} on {public.engine}: {len(public.indicators)} indicators, "
        f"{public.rows} values in {public.seconds or 0:.1f} s (snapshot {public.snapshot})"
    )


@app.command()
def values(
    code: Code,
    region: str = typer.Option(None, help="Region code (default: every region)."),
    grain: Grain = typer.Option(Grain.month, help="day, week, month, quarter or year."),
    start: str = typer.Option(None, "--from", help="First period, e.g. 2025-01 or 2025-Q1."),
    end: str = typer.Option(None, "--to", help="Last period."),
    json: JsonOption = False,
) -> None:
    """Computed values of one indicator."""
    first: date | None = parse_period(grain, start) if start else None
    last: date | None = parse_period(grain, end) if end else None
    with reading() as (session, _):
        queries.get(session, code)
        rows = queries.values(
            session,
            queries.value_rows(indicator=code, region=region, grain=grain, start=first, end=last),
        )
    if json:
        print_json({"data": rows, "count": len(rows)})
        return
    print_table(
        [
            (v.region_code, v.region_name, v.period, "" if v.value is None else f"{v.value:.4g}")
            for v in rows
        ],
        ["region", "name", "period", "value"],
    )


@app.command()
def runs(limit: int = typer.Option(20, min=1, max=500), json: JsonOption = False) -> None:
    """Recent computations: engine, state, size and what they read."""
    with reading() as (session, _):
        rows = [queries.run_public(run) for run in queries.runs(session, limit=limit)]
    if json:
        print_json({"data": rows, "count": len(rows)})
        return
    print_table(
        [
            (r.id, r.engine, r.state, r.trigger, len(r.indicators), r.rows, r.error or "")
            for r in rows
        ],
        ["run", "engine", "state", "trigger", "indicators", "values", "error"],
    )


targets_app = typer.Typer(help="Targets of indicators by region and period.", no_args_is_help=True)
app.add_typer(targets_app, name="targets")


@targets_app.command("set")
def set_target(
    code: Code,
    value: float = typer.Option(..., help="The target."),
    period: list[str] = typer.Option(..., "--period", "-p", help="A period, e.g. 2026 or 2026-Q2."),
    grain: Grain = typer.Option(Grain.year, help="The periods' grain."),
    region: list[str] = typer.Option(None, "--region", "-r", help="A region code (repeatable)."),
    subtree: str = typer.Option(None, help="Every region of this subtree, itself included."),
    note: str = typer.Option("", help="Where the target comes from."),
    json: JsonOption = False,
) -> None:
    """Set one indicator's target for some regions and periods."""
    entry = TargetSet(
        indicator=code,
        value=value,
        grain=grain,
        periods=period,
        regions=region or [],
        subtree=subtree,
        note=note,
    )
    with writing() as (session, actor):
        result = service.set_targets(session, actor=actor, entries=[entry])
    _written(result, json)


@targets_app.command("import")
def import_targets(
    file: Path = typer.Argument(..., help="A targets YAML file or XLSX workbook."),
    json: JsonOption = False,
) -> None:
    """Import targets; a file with one bad row imports nothing and names every bad row."""
    if not file.is_file():
        raise ValidationFailed(f"{file}: no such file")
    entries = service.parse_targets_upload(file.read_bytes(), source=file.name)
    with writing() as (session, actor):
        result = service.set_targets(session, actor=actor, entries=entries, where=file.name)
    _written(result, json)


def _written(result: TargetResult, json: bool) -> None:
    if json:
        print_json(result)
    else:
        typer.echo(f"{result.created} targets created, {result.updated} updated")


@targets_app.command("list")
def list_targets(code: Code, json: JsonOption = False) -> None:
    """The targets of one indicator."""
    with reading() as (session, _):
        rows = queries.target_list(session, queries.get(session, code))
    if json:
        print_json({"data": rows, "count": len(rows)})
        return
    print_table(
        [(r.region_code, r.region_name, r.period, f"{r.value:g}", r.origin) for r in rows],
        ["region", "name", "period", "target", "origin"],
    )


@app.command()
def evaluate(
    code: Code,
    grain: Grain = typer.Option(Grain.year, help="day, week, month, quarter or year."),
    period: str = typer.Option(None, help="One period (default: every period)."),
    region: str = typer.Option(None, help="One region."),
    children_of: str = typer.Option(None, help="The children of a region (a drill-down)."),
    json: JsonOption = False,
) -> None:
    """Values against targets: light, change on the year and the period, rank."""
    start = parse_period(grain, period) if period else None
    with reading() as (session, _):
        result = queries.evaluation(
            session,
            queries.get(session, code),
            grain=grain,
            region=region,
            children_of=children_of,
            start=start,
            end=start,
        )
    if json:
        print_json(result)
        return

    def number(value: float | None, suffix: str = "") -> str:
        return "" if value is None else f"{value:.4g}{suffix}"

    print_table(
        [
            (
                r.region_code,
                r.region_name,
                r.period,
                number(r.value),
                number(r.target),
                r.light or "",
                number(r.yoy, "%"),
                f"{r.rank}/{r.siblings}" if r.rank else "",
            )
            for r in result.data
        ],
        ["region", "name", "period", "value", "target", "light", "yoy", "rank"],
    )


rules_app = typer.Typer(help="Early-warning rules.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@rules_app.command("apply")
def apply_rules(
    file: Path = typer.Argument(..., help="A rules YAML file."), json: JsonOption = False
) -> None:
    """Create or update every rule of a YAML file; a changed rule's warnings start afresh."""
    _apply_file(file, service.apply_rules, json)


@rules_app.command("list")
def list_rules(json: JsonOption = False) -> None:
    """The warning rules."""
    with reading() as (session, _):
        rows = [queries.rule_public(rule) for rule in queries.rules(session)]
    if json:
        print_json({"data": rows, "count": len(rows)})
        return
    print_table(
        [(r.code, r.name, r.kind, r.severity, "yes" if r.enabled else "no") for r in rows],
        ["code", "name", "kind", "severity", "enabled"],
    )


@app.command()
def warn(json: JsonOption = False) -> None:
    """Evaluate every warning rule over the current results."""
    db, actor = acting()
    summary = service.evaluate_warnings(db, actor=actor)
    if json:
        print_json(summary)
        return
    typer.echo(
        f"{summary.evaluated} evaluations, {summary.transitions} changes of state, "
        f"{summary.firing} warnings firing"
    )


@app.command()
def warnings(
    state: list[str] = typer.Option(None, "--state", help="normal, pending, firing, ..."),
    rule: str = typer.Option(None, help="Rule code."),
    indicator: str = typer.Option(None, help="Indicator code."),
    region: str = typer.Option(None, help="Region code."),
    limit: int = typer.Option(100, min=1, max=5000),
    json: JsonOption = False,
) -> None:
    """Warnings, the most severe and newest first."""
    with reading() as (session, _):
        result = queries.warnings(
            session, states=state, rule=rule, indicator=indicator, region=region, limit=limit
        )
    if json:
        print_json(result)
        return
    print_table(
        [(w.id, w.state, w.severity, w.region_name, w.indicator, w.period or "", w.message)
         for w in result.data],
        ["id", "state", "severity", "region", "indicator", "period", "message"],
    )  # fmt: skip
    typer.echo(", ".join(f"{state} {count}" for state, count in result.by_state.items() if count))


@app.command()
def warning(warning_id: int = typer.Argument(..., min=1), json: JsonOption = False) -> None:
    """One warning and its story."""
    with reading() as (session, _):
        public = queries.warning_public(
            session,
            queries.get_warning(session, warning_id),
            names=queries.regions(session),
            with_events=True,
        )
    if json:
        print_json(public)
        return
    typer.echo(f"#{public.id} {public.state_label} · {public.rule_name} · {public.region_name}")
    typer.echo(public.message)
    for event in public.events or []:
        typer.echo(
            f"  {event.period or '-'}  {event.from_state} → {event.to_state}  {event.message}"
        )


@app.command()
def forecast(
    indicator: list[str] = typer.Option(None, "--indicator", "-i", help="Only this indicator."),
    origins: int = typer.Option(
        1, min=1, max=12, help="Also forecast from each of the last periods left out."
    ),
    horizon: int = typer.Option(None, min=1, max=60, help="Periods ahead (brain setting)."),
    json: JsonOption = False,
) -> None:
    """Forecast indicator series, choosing each one's model by backtest."""
    db, actor = acting()
    summary = service.forecast(
        db, actor=actor, indicators=indicator or None, origins=origins, horizon=horizon
    )
    if json:
        print_json(summary)
        return
    chosen = ", ".join(f"{model} {count}" for model, count in sorted(summary.models.items()))
    typer.echo(
        f"{summary.forecast} of {summary.series} series forecast in {summary.seconds:.1f} s"
        f" ({chosen}); {summary.too_short} too short"
    )


goals_app = typer.Typer(help="Strategic goals (战略管理).", no_args_is_help=True)
app.add_typer(goals_app, name="goals")


@goals_app.command("apply")
def apply_goals(
    file: Path = typer.Argument(..., help="A goals YAML file."), json: JsonOption = False
) -> None:
    """Create or replace goal trees; each milestone becomes a target (origin goal)."""
    _apply_file(file, service.apply_goals, json)


@goals_app.command("show")
def show_goals(json: JsonOption = False) -> None:
    """Every goal tree with progress and lights."""
    with reading() as (session, _):
        result = queries.goal_tree(session)
    if json:
        print_json(result)
        return

    def percent(value: float | None) -> str:
        return "—" if value is None else f"{value:.0%}"

    def show(node: GoalNode, depth: int) -> None:
        typer.echo(f"{'  ' * depth}{node.name}  [{node.light}] {percent(node.progress)}")
        for kr in node.key_results:
            typer.echo(
                f"{'  ' * (depth + 1)}· {kr.indicator_name} {kr.current_period or ''}: "
                f"{'—' if kr.current is None else f'{kr.current:.4g}'} "
                f"(→ {kr.final_target:g}{kr.unit}) [{kr.light}] {percent(kr.progress)}"
            )
        for child in node.children:
            show(child, depth + 1)

    for root in result.data:
        show(root, 0)


@app.command()
def report(
    month: str = typer.Option(..., help="The month, e.g. 2026-09."),
    region: str = typer.Option(None, help="Region code (default: the province)."),
    system: System = typer.Option(None, help="One system (default: all)."),
    format: str = typer.Option("md", help="md or html (--json for the data)."),
    output: Path = typer.Option(None, "--output", "-o", help="Write to this file."),
    json: JsonOption = False,
) -> None:
    """The monthly brief of a region: lights, warnings, forecasts missing targets, rankings."""
    format = "json" if json else format
    if format not in ("md", "html", "json"):
        raise ValidationFailed(f"unknown format {format!r}: use md or html", field="format")
    with reading() as (session, _):
        brief = reports.build(
            session,
            month=parse_period(Grain.month, month),
            region=region,
            system=system.value if system else None,
        )
    if format == "json":
        text = brief.model_dump_json(indent=2)
    else:
        text = reports.to_markdown(brief) if format == "md" else reports.to_html(brief)
    if output is None:
        typer.echo(text)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output}: {brief.title}")
