"""The brain (大脑) in the cockpit: the indicator catalogue, an indicator's page in one
region (its history against the target, the forecast band, the drill-down into the child
regions, the region's warnings), the early warnings, one warning's story, the strategic
goals and the monthly brief; and, for those who may, defining indicators and targets and
recomputing.

Every page renders the payload of its API twin and computes no number of its own:

- ``/brain`` ↔ ``GET /api/v1/brain/indicators?system=&q=&region=``
- ``/brain/indicators/{code}`` ↔ ``GET /api/v1/brain/indicators/{code}/overview?region=&grain=``
- ``/brain/warnings`` ↔ ``GET /api/v1/brain/warnings?state=&severity=&system=&rule=&region=``
- ``/brain/warnings/{id}`` ↔ ``GET /api/v1/brain/warnings/{id}``
- ``/brain/goals`` ↔ ``GET /api/v1/brain/goals``
- ``/brain/report?month=&region=&system=`` ↔ ``GET /api/v1/brain/report`` (its ``format=md``
  and ``format=html`` are ``/brain/report.md`` and ``/brain/report.html`` here, because the
  API's need a Bearer token, not a session); without ``?month=``, the month most of the
  region's indicators last have a value for

Every signed-in user gets these pages, as every API caller gets their twins. The forms
that write are shown to those allowed their action and refused (the forbidden page) to
the others; each post is one service call, as its API twin's, and comes back as a flash:

- ``POST /brain/apply`` ↔ ``POST /api/v1/brain/apply`` (an indicators YAML file), for
  ``brain.define`` in any department (the service checks each indicator's owner);
- ``POST /brain/compute`` ↔ ``POST /api/v1/brain/runs`` then ``.../warnings/evaluate``,
  for ``brain.compute`` in the user's department, as the service requires;
- ``POST /brain/indicators/{code}/targets`` ↔ ``POST /api/v1/brain/targets`` (one entry) and
  ``.../targets/import`` ↔ ``POST /api/v1/brain/targets/import``, for ``brain.define`` on
  the indicator's owner.

The warnings list shows, unless ``?state=`` says otherwise, the open warnings: firing,
pending and recovering, those someone has to look at. ``?state=`` may be repeated;
``?state=all`` shows every state. The counts by state (``by_state``) are the query's,
among the warnings the other filters match. The list is the query's first 500 (its
default limit; the page says when it is reached), 50 a page. A select's value that is not one of its
choices (hand-edited) is ignored, as on /aggregation; an unknown region or indicator is a
404, because an empty answer would read as "nothing to report there".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from shuzhi.brain import queries, reports, service
from shuzhi.brain.models import Indicator
from shuzhi.brain.rules import WARNING, Grain, Severity, parse_period
from shuzhi.brain.schemas import IndicatorSpec, Report, RunPublic, TargetSet, WarningSummary
from shuzhi.core.db import Database
from shuzhi.core.enums import System
from shuzhi.core.errors import Message, NotFound, PermissionDenied, ShuzhiError, ValidationFailed
from shuzhi.core.permissions import Actor, Scope, allowed
from shuzhi.loop import queries as loop_queries
from shuzhi.loop.rules import PROBLEM
from shuzhi.orgs import queries as orgs
from shuzhi.orgs.schemas import ID_MAX
from shuzhi.regions.models import Region
from shuzhi.web.app import render, translator_for
from shuzhi.web.flash import redirect
from shuzhi.web.session import checked_form
from shuzhi.web.views.deps import DatabaseDep, PageActor, PageNumber, SessionDep

router = APIRouter()
WarningId = Annotated[int, Path(ge=1, le=ID_MAX)]  # a larger id names no row and overflows
Code = Annotated[str | None, Query(max_length=12)]

PROVINCE = "330000"  # whose values the catalogue shows unless told, as its API twin
OPEN_STATES = ("firing", "pending", "recovering")
EVERY_STATE = "all"
WARNINGS_SHOWN = 500  # the query's default limit; the page says when it is reached
WARNINGS_PAGE = 50
CHOOSABLE_LEVELS = ("province", "city", "county")  # towns would make the selects too long
BRIEF_LEVELS = ("province", "city")  # whose monthly briefs the form offers
UPLOAD_MAX_BYTES = 10_000_000  # as the API's targets import; a definitions file is far smaller


def _choosable(names: dict[str, Region]) -> list[Region]:
    return sorted(
        (region for region in names.values() if region.level in CHOOSABLE_LEVELS),
        key=lambda region: region.code,
    )


def _known_region(names: dict[str, Region], code: str | None) -> str | None:
    if code and code not in names:
        raise NotFound(Message("unknown region {code!r}", code=code), field="region")
    return code or None


def _one_of(value: str | None, choices: set[str]) -> str | None:
    return value if value in choices else None


# -- who may write: the checks the services make, asked before showing a form -----------------


def _may_define_somewhere(actor: Actor) -> bool:
    """Whether the actor may define any department's indicators; which ones, the service
    says for each indicator of a file."""
    return bool(actor.scopes_for("brain.define"))


def _may_define(actor: Actor, indicator: Indicator) -> bool:
    return allowed(actor, "brain.define", Scope(department_id=indicator.owner_id))


def _may_compute(actor: Actor) -> bool:
    return allowed(actor, "brain.compute", Scope(department_id=actor.department_id))


@router.get("/brain")
def catalogue_page(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    system: str | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    region: Code = None,
) -> Response:
    """Same payload as GET /api/v1/brain/indicators: each indicator with its newest value
    and light in the region (the province by default), shown by system."""
    names = queries.regions(session)
    system = _one_of(system, {item.value for item in System})
    chosen = _known_region(names, region) or PROVINCE
    rows = queries.catalogue(session, system=system, q=q or None, region=chosen)
    can_compute = _may_compute(actor)
    last = queries.last_run(session) if can_compute else None
    return render(
        request,
        "brain/catalogue.html",
        actor=actor,
        can_define=_may_define_somewhere(actor),
        can_compute=can_compute,
        last_run=queries.run_public(last) if last else None,
        indicators=rows,
        count=len(rows),
        system=system or "",
        q=q or "",
        region=chosen,
        region_name=names[chosen].name if chosen in names else chosen,
        regions=_choosable(names),
        province=PROVINCE,
        default_decimals=IndicatorSpec.model_fields["decimals"].default,
    )


def _grain(session: Session, code: str, grain: str | None) -> str | None:
    """``?grain=`` as a grain the indicator is reported by; the query refuses a real grain
    the indicator lacks, this refuses what is not a grain at all."""
    if not grain:
        return None
    if grain not in {item.value for item in Grain}:
        spec = queries.spec_of(queries.get(session, code))
        raise ValidationFailed(
            Message(
                "{code} is reported by {join}; choose one of those",
                code=code,
                join=", ".join(g.value for g in spec.grains),
            ),
            field="grain",
        )
    return grain


@router.get("/brain/indicators/{code}")
def indicator_page(
    code: str,
    request: Request,
    session: SessionDep,
    actor: PageActor,
    region: Code = None,
    grain: Annotated[str | None, Query(max_length=12)] = None,
) -> Response:
    """Same payload as GET /api/v1/brain/indicators/{code}/overview?region=&grain=."""
    indicator = queries.get(session, code)
    page = queries.indicator_page(
        session, indicator, region=region or None, grain=_grain(session, code, grain)
    )
    can_define = _may_define(actor, indicator)
    return render(
        request,
        "brain/indicator.html",
        actor=actor,
        page=page,
        spec=queries.spec_of(indicator),
        states=WARNING.states,
        can_define=can_define,
        regions=_choosable(queries.regions(session)) if can_define else [],
        # targets are mostly set for a year; a month or quarter of a stock is held to it
        target_grain=Grain.year.value if Grain.year.value in page.grains else page.grain,
    )


@router.get("/brain/warnings")
def warnings_page(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    page: PageNumber,
    state: list[str] = Query(default_factory=list),
    severity: str | None = None,
    system: str | None = None,
    rule: Annotated[str | None, Query(max_length=63)] = None,
    region: Code = None,
    indicator: Annotated[str | None, Query(max_length=63)] = None,
) -> Response:
    """Same payload as GET /api/v1/brain/warnings with the same filters; the open states
    (firing, pending, recovering) unless ``state`` is given, every state with ``all``."""
    names = queries.regions(session)
    rules = queries.rules(session)
    if EVERY_STATE in state:
        states: list[str] = []
    else:
        states = [code for code in dict.fromkeys(state) if code in WARNING.states]
        states = states or list(OPEN_STATES)
    severity = _one_of(severity, {item.value for item in Severity})
    system = _one_of(system, {item.value for item in System})
    rule = _one_of(rule, {item.code for item in rules})
    chosen = _known_region(names, region)
    if indicator:
        queries.get(session, indicator)
    found = queries.warnings(
        session,
        states=states,
        rule=rule,
        indicator=indicator or None,
        region=chosen,
        system=system,
        severity=severity,
        limit=WARNINGS_SHOWN,
    )
    first = (page - 1) * WARNINGS_PAGE
    return render(
        request,
        "brain/warnings.html",
        actor=actor,
        found=found,
        rows=found.data[first : first + WARNINGS_PAGE],
        first=first,
        page=page,
        pages=max(1, -(-found.count // WARNINGS_PAGE)),
        states=WARNING.states,
        chosen_states=states,
        state_query=urlencode([("state", code) for code in states or [EVERY_STATE]]),
        open_states=OPEN_STATES,
        severity=severity or "",
        system=system or "",
        rule=rule or "",
        region=chosen or "",
        indicator=indicator or "",
        rules=rules,
        regions=_choosable(names),
        limit=WARNINGS_SHOWN,
    )


@router.get("/brain/warnings/{warning_id}")
def warning_page(
    warning_id: WarningId, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    """Same payload as GET /api/v1/brain/warnings/{id}: the warning with every change of
    its state and the values behind it; and the problems it raised, the payload of
    GET /api/v1/brain/warnings/{id}/problems (the closed loop's ``for_warning``)."""
    warning = queries.warning_public(
        session,
        queries.get_warning(session, warning_id),
        names=queries.regions(session),
        with_events=True,
    )
    return render(
        request,
        "brain/warning.html",
        actor=actor,
        warning=warning,
        states=WARNING.states,
        problems=loop_queries.for_warning(session, warning_id),
        problem_states=PROBLEM.states,
    )


# -- strategic goals --------------------------------------------------------------------------


@router.get("/brain/goals")
def goals_page(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Same payload as GET /api/v1/brain/goals: every goal tree, each goal's progress and
    light rolled up from its key results and sub-goals."""
    return render(
        request,
        "brain/goals.html",
        actor=actor,
        tree=queries.goal_tree(session),
        # how each indicator writes its numbers, and whose a goal is: names, not figures
        decimals={code: spec.decimals for code, spec in queries.specs(session).items()},
        owners={item.code: item.name for item in orgs.departments(session)},
    )


# -- the monthly brief ----------------------------------------------------------------------


def _newest_month(session: Session, region: str, system: str | None) -> date | None:
    """The month the brief shows until one is chosen: the one most of the region's
    indicators (of the system) last have a value for, the newer of two as common. Not
    simply the newest month with any value: a few event counts run into a month the
    monthly returns have not reached, and its brief would be mostly "no data"."""
    codes = [item.code for item in queries.search(session, system=system)]
    newest: dict[str, date] = {}
    for row in queries.value_rows(indicators=codes, region=region, grain=Grain.month):
        if row["value"] is not None:  # the rows come in period order: the last one stays
            newest[row["indicator"]] = row["period_start"]
    counted = Counter(newest.values())
    return max(counted, key=lambda month: (counted[month], month), default=None)


def _brief(
    session: Session, month: str | None, region: str | None, system: str | None
) -> tuple[Report | None, str, str | None]:
    """The brief as GET /api/v1/brain/report builds it, with the region it is of and the
    system (a hand-edited one is ignored); none when no month has a value yet."""
    names = queries.regions(session)
    chosen = _known_region(names, region) or PROVINCE
    system = _one_of(system, {item.value for item in System})
    start = parse_period(Grain.month, month) if month else _newest_month(session, chosen, system)
    if start is None:
        return None, chosen, system
    return reports.build(session, month=start, region=chosen, system=system), chosen, system


Month = Annotated[str | None, Query(max_length=7, description="e.g. 2025-04")]


@router.get("/brain/report")
def report_page(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    month: Month = None,
    region: Code = None,
    system: str | None = None,
) -> Response:
    """Same payload as GET /api/v1/brain/report?month=&region=&system=; without a month,
    the newest month the region has a value for."""
    report, chosen, system = _brief(session, month, region, system)
    names = queries.regions(session)
    offered = [item for item in _choosable(names) if item.level in BRIEF_LEVELS]
    if chosen not in {item.code for item in offered}:
        offered.append(names[chosen])  # a county's brief, asked for by hand
    shown = {"month": report.month if report else "", "region": chosen, "system": system or ""}
    return render(
        request,
        "brain/report.html",
        actor=actor,
        report=report,
        month=report.month if report else "",
        region=chosen,
        system=system or "",
        regions=offered,
        download_query=urlencode({key: value for key, value in shown.items() if value}),
    )


def _brief_file(
    session: Session, month: str | None, region: str | None, system: str | None
) -> tuple[Report, str]:
    report, chosen, system = _brief(session, month, region, system)
    if report is None:
        raise NotFound(Message("no month has a computed value yet"), field="month")
    return report, "-".join(["brief", chosen, report.month, *([system] if system else [])])


DOWNLOADS = {
    "md": (reports.to_markdown, "text/markdown; charset=utf-8"),
    "html": (reports.to_html, "text/html; charset=utf-8"),
}


@router.get("/brain/report.{suffix}")
def report_download(
    suffix: Literal["md", "html"],
    session: SessionDep,
    actor: PageActor,
    month: Month = None,
    region: Code = None,
    system: str | None = None,
) -> Response:
    """GET /api/v1/brain/report?format=md|html for a browser holding a session."""
    report, name = _brief_file(session, month, region, system)
    render_as, media_type = DOWNLOADS[suffix]
    return Response(
        render_as(report),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}.{suffix}"'},
    )


# -- defining and computing -------------------------------------------------------------------


def _text(form: FormData, name: str) -> str:
    return str(form.get(name) or "").strip()


async def _uploaded(request: Request, form: FormData) -> tuple[str, bytes] | str:
    """The file sent with the form, or why there is none to use."""
    _ = translator_for(request)
    sent = form.get("file")
    if not isinstance(sent, UploadFile) or not sent.filename:
        return _("Choose a file.")
    try:
        data = await sent.read(UPLOAD_MAX_BYTES + 1)
    finally:
        await sent.close()
    if len(data) > UPLOAD_MAX_BYTES:
        return _("{name} is larger than {mb} MB.").format(
            name=sent.filename, mb=UPLOAD_MAX_BYTES // 1_000_000
        )
    return sent.filename, data


def _in_transaction(database: Database, call: Callable[[Session], Any]) -> Any:
    """One service call in a transaction: all of it is written, or nothing."""
    with database.transaction() as session:
        return call(session)


@router.post("/brain/apply")
async def apply_definitions(request: Request, database: DatabaseDep, actor: PageActor) -> Response:
    """Apply an indicators YAML file: every indicator of it, or none and the reason."""
    form = await checked_form(request)
    if not _may_define_somewhere(actor):
        raise PermissionDenied(Message("{name} may not define indicators", name=actor.name))
    _ = translator_for(request)
    sent = await _uploaded(request, form)
    if isinstance(sent, str):
        return redirect(request, "/brain", error=sent)
    name, data = sent
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return redirect(request, "/brain", error=_("{name}: not UTF-8 text.").format(name=name))
    try:
        result = await run_in_threadpool(
            _in_transaction,
            database,
            lambda session: service.apply(session, actor=actor, text=text, source=name),
        )
    except ShuzhiError as exc:
        return redirect(request, "/brain", error=exc.detail)
    summary = _("Applied: {created} created, {updated} updated, {unchanged} unchanged.")
    return redirect(
        request,
        "/brain",
        ok=summary.format(
            created=len(result.created),
            updated=len(result.updated),
            unchanged=len(result.unchanged),
        ),
    )


def _compute_and_evaluate(database: Database, actor: Actor) -> tuple[RunPublic, WarningSummary]:
    run = service.compute(database, actor=actor)
    return queries.run_public(run), service.evaluate_warnings(database, actor=actor)


@router.post("/brain/compute")
async def recompute(request: Request, database: DatabaseDep, actor: PageActor) -> Response:
    """Compute every indicator now, then evaluate the warning rules over the new values, as
    POST /api/v1/brain/runs and .../warnings/evaluate do one after the other."""
    await checked_form(request)
    if not _may_compute(actor):
        raise PermissionDenied(Message("{name} may not compute indicators", name=actor.name))
    _ = translator_for(request)
    try:
        run, summary = await run_in_threadpool(_compute_and_evaluate, database, actor)
    except ShuzhiError as exc:
        return redirect(request, "/brain", error=exc.detail)
    message = _(
        "Run {run}: {rows} values in {seconds} s; warnings: {evaluated} evaluated, "
        "{transitions} changed state, {firing} firing."
    )
    return redirect(
        request,
        "/brain",
        ok=message.format(
            run=run.id,
            rows=f"{run.rows:,}",
            seconds=f"{run.seconds:.1f}" if run.seconds is not None else "—",
            evaluated=summary.evaluated,
            transitions=summary.transitions,
            firing=summary.firing,
        ),
    )


def _definable(session: Session, actor: Actor, code: str) -> Indicator:
    """The indicator whose targets the actor sets; the forbidden page for anyone else."""
    indicator = queries.get(session, code)
    if not _may_define(actor, indicator):
        raise PermissionDenied(
            Message("{name} may not set targets of {code}", name=actor.name, code=code)
        )
    return indicator


def _back_to(session: Session, indicator: Indicator, form: FormData) -> str:
    """The indicator's page the form was on (its region and grain, when they are real)."""
    region = _text(form, "page_region")
    grain = _text(form, "page_grain")
    spec = queries.spec_of(indicator)
    query = {
        **({"region": region} if region in queries.regions(session) else {}),
        **({"grain": grain} if grain in {g.value for g in spec.grains} else {}),
    }
    return f"/brain/indicators/{indicator.code}" + (f"?{urlencode(query)}" if query else "")


def _targets_written(request: Request, created: int, updated: int) -> str:
    _ = translator_for(request)
    return _("Targets: {created} created, {updated} updated.").format(
        created=created, updated=updated
    )


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


@router.post("/brain/indicators/{code}/targets")
async def set_target(
    code: str, request: Request, database: DatabaseDep, session: SessionDep, actor: PageActor
) -> Response:
    """Set one target (a value for a period of a grain, in a region or its whole subtree),
    as one entry of POST /api/v1/brain/targets."""
    form = await checked_form(request)
    indicator = _definable(session, actor, code)
    back = _back_to(session, indicator, form)
    _ = translator_for(request)
    region = _text(form, "region")
    if not _text(form, "value"):
        return redirect(request, back, error=_("Give the target value."))
    if not _text(form, "period"):
        return redirect(request, back, error=_("Give the period the target is for."))
    try:
        entry = TargetSet.model_validate(
            {
                "indicator": code,
                "value": _text(form, "value"),
                "grain": _text(form, "grain") or Grain.year.value,
                "periods": [_text(form, "period")],
                **({"subtree": region} if form.get("subtree") else {"regions": [region]}),
                "note": _text(form, "note"),
            }
        )
    except ValidationError as exc:
        return redirect(request, back, error=_first_error(exc))
    try:
        result = await run_in_threadpool(
            _in_transaction,
            database,
            lambda writer: service.set_targets(writer, actor=actor, entries=[entry]),
        )
    except ShuzhiError as exc:
        return redirect(request, back, error=exc.detail)
    return redirect(request, back, ok=_targets_written(request, result.created, result.updated))


def _import_targets(database: Database, actor: Actor, name: str, data: bytes) -> Any:
    entries = service.parse_targets_upload(data, source=name)
    with database.transaction() as session:
        return service.set_targets(session, actor=actor, entries=entries, where=name)


@router.post("/brain/indicators/{code}/targets/import")
async def import_targets(
    code: str, request: Request, database: DatabaseDep, session: SessionDep, actor: PageActor
) -> Response:
    """Import a targets file (YAML, or an XLSX sheet) as POST
    /api/v1/brain/targets/import does: every row, or none and the rows at fault."""
    form = await checked_form(request)
    indicator = _definable(session, actor, code)
    back = _back_to(session, indicator, form)
    sent = await _uploaded(request, form)
    if isinstance(sent, str):
        return redirect(request, back, error=sent)
    name, data = sent
    try:
        result = await run_in_threadpool(_import_targets, database, actor, name, data)
    except ShuzhiError as exc:
        return redirect(request, back, error=exc.detail)
    return redirect(request, back, ok=_targets_written(request, result.created, result.updated))
