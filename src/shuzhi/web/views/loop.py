"""The problem lists (问题清单) in the cockpit: the table with its statistics, the kanban by
state, a problem's page (timeline, evidence, the linked warning, the transitions the user
may fire), and, for those who may, reporting a problem and importing or exporting XLSX.

Every page renders the payload of its API twin and computes no number of its own:

- ``/problems`` ↔ ``GET /api/v1/problems`` (the table), ``GET /api/v1/problems/stats?by=``
  (the strip on top is its ``total``, the table below its rows) and ``?by=state`` (the
  counts on the state chips, among the problems the other filters match)
- ``/problems/board`` ↔ ``GET /api/v1/problems/board``
- ``/problems/{id}`` ↔ ``GET /api/v1/problems/{id}``
- ``/problems/export.xlsx`` ↔ ``GET /api/v1/problems/export.xlsx``, here because the API's
  needs a Bearer token, not a session; likewise ``/problems/{id}/evidence/{evidence_id}``
  ↔ ``GET /api/v1/evidence/{id}``

Every signed-in user reads these pages, as every API caller reads their twins. Each post is
one service call, as its API twin's, and comes back as a flash (a refused transition names
the rule that forbids it):

- ``POST /problems`` ↔ ``POST /api/v1/problems`` (``loop.report``), the form of
  ``/problems/new``; a refused report comes back as the form with what was typed and the
  reason;
- ``POST /problems/import`` ↔ ``POST /api/v1/problems/import``, answered with the import's
  report (the row errors table), not a flash;
- ``POST /problems/{id}/transitions`` ↔ ``POST /api/v1/problems/{id}/transitions``;
- ``POST /problems/{id}/evidence`` ↔ ``POST /api/v1/problems/{id}/evidence``.

A transition the user holds the permission for but a rule forbids now (verifying while the
linked warning still fires, asking for closure without evidence) is shown with the rule,
and its button still posts: the service decides again, and says why it refuses.

The filters are the API's; a select's value that is not one of its choices (hand-edited)
is ignored, as on /brain/warnings; an unknown region or department is the query's 422.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from shuzhi.brain import queries as brain_queries
from shuzhi.brain.rules import WARNING
from shuzhi.core.enums import Light, System
from shuzhi.core.errors import Message, NotFound, PermissionDenied, ShuzhiError
from shuzhi.core.permissions import Actor, allowed
from shuzhi.loop import excel, queries, service
from shuzhi.loop.models import Evidence
from shuzhi.loop.rules import DONE_STATES, PROBLEM, UNRECOVERED, Channel, ProblemSeverity
from shuzhi.loop.schemas import ImportReport, ProblemAction, ProblemCreate
from shuzhi.orgs import queries as orgs
from shuzhi.orgs.schemas import ID_MAX
from shuzhi.regions.models import Region
from shuzhi.web.app import locale_of, render, translator_for
from shuzhi.web.flash import redirect
from shuzhi.web.session import checked_form
from shuzhi.web.views.deps import DatabaseDep, PageActor, PageNumber, SessionDep

router = APIRouter()
ItemId = Annotated[int, Path(ge=1, le=ID_MAX)]  # a larger id names no row and overflows
Text = Annotated[str | None, Query(max_length=100)]

PAGE = 50  # rows of the table: the API's default limit
PER_STATE = 20  # cards of a board column: the API's default
DEFAULT_SORT = "-reported"
STAT_DIMENSIONS = ("department", "region", "channel", "system")  # the switch under the strip
CHOOSABLE_LEVELS = ("province", "city", "county")  # towns would make the selects too long
IMPORT_MAX_BYTES = 20_000_000  # as the API's import
FILTER_NAMES = ("channel", "system", "region", "department", "severity", "light", "q", "warning")
LINKED = {"1": True, "0": False}  # ?warning=: raised by a warning, or not


# -- the filters, as the API reads them -------------------------------------------------------


class Listing:
    """The filters of a list page as chosen, with links that change one of them."""

    def __init__(self, path: str, states: Sequence[str], chosen: dict[str, str]) -> None:
        self.path = path
        self.states = list(states)
        self.chosen = chosen

    def filters(self, *, states: Sequence[str] | None = None) -> queries.Filters:
        chosen = self.chosen
        return queries.Filters(
            states=tuple(self.states if states is None else states),
            channel=chosen.get("channel") or None,
            system=chosen.get("system") or None,
            region=chosen.get("region") or None,
            department=chosen.get("department") or None,
            severity=chosen.get("severity") or None,
            light=chosen.get("light") or None,
            q=chosen.get("q") or None,
            warning=LINKED.get(chosen.get("warning", "")),
        )

    def pairs(self, **changes: Any) -> list[tuple[str, str]]:
        """The query string's pairs, with ``changes`` applied (None or "" drops one)."""
        values: dict[str, Any] = {"state": self.states, **self.chosen, **changes}
        pairs: list[tuple[str, str]] = []
        for name, value in values.items():
            if isinstance(value, list | tuple):
                pairs.extend((name, str(item)) for item in value)
            elif value not in (None, ""):
                pairs.append((name, str(value)))
        return pairs

    def href(self, path: str | None = None, **changes: Any) -> str:
        query = urlencode(self.pairs(**changes))
        return (path or self.path) + (f"?{query}" if query else "")

    @property
    def narrowed(self) -> bool:
        return any(self.chosen.get(name) for name in FILTER_NAMES)


def _one_of(value: str | None, choices: Iterable[str]) -> str:
    return value if value and value in set(choices) else ""


def chosen_filters(
    channel: Text = None,
    system: Text = None,
    region: Annotated[str | None, Query(max_length=12)] = None,
    department: Annotated[str | None, Query(max_length=32)] = None,
    severity: Text = None,
    light: Text = None,
    q: Text = None,
    warning: Text = None,
) -> dict[str, str]:
    """The list's filters but the states, as typed or hand-edited ("" when not chosen)."""
    return {
        "channel": _one_of(channel, (item.value for item in Channel)),
        "system": _one_of(system, (item.value for item in System)),
        "region": (region or "").strip(),
        "department": (department or "").strip(),
        "severity": _one_of(severity, (item.value for item in ProblemSeverity)),
        "light": _one_of(light, (Light.red.value, Light.yellow.value, Light.green.value)),
        "q": (q or "").strip(),
        "warning": _one_of(warning, LINKED),
    }


Chosen = Annotated[dict[str, str], Depends(chosen_filters)]


def _states(state: list[str]) -> list[str]:
    return [code for code in dict.fromkeys(state) if code in PROBLEM.states]


def _choosable_regions(session: Session) -> list[Region]:
    """The province, its cities and counties in tree order."""
    found = brain_queries.regions(session).values()
    return sorted((r for r in found if r.level in CHOOSABLE_LEVELS), key=lambda r: r.path)


def _form_context(session: Session) -> dict[str, Any]:
    """The choices the filter and report forms offer."""
    return {
        "regions": _choosable_regions(session),
        "departments": orgs.departments(session),
        "channels": list(Channel),
        "systems": list(System),
        "severities": list(ProblemSeverity),
        "lights": (Light.red, Light.yellow, Light.green),
        "states": PROBLEM.states,
    }


def _may_report(actor: Actor) -> bool:
    """Whether to offer the report and import forms; the service checks the region."""
    return bool(actor.scopes_for("loop.report"))


# -- the table ------------------------------------------------------------------------------


@router.get("/problems")
def problems_page(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    page: PageNumber,
    chosen: Chosen,
    state: list[str] = Query(default_factory=list),
    sort: Text = None,
    by: Text = None,
) -> Response:
    """Same payloads as GET /api/v1/problems (the table), GET /api/v1/problems/stats?by=
    (the strip and the statistics table) and ?by=state (the counts on the chips)."""
    sort = _one_of(sort, queries.SORTS) or DEFAULT_SORT
    by_default = STAT_DIMENSIONS[0]
    by = _one_of(by, STAT_DIMENSIONS) or by_default
    # the defaults stay out of the links
    shown = {"sort": "" if sort == DEFAULT_SORT else sort, "by": "" if by == by_default else by}
    listing = Listing("/problems", _states(state), {**chosen, **shown})
    locale = locale_of(request)
    filters = listing.filters()
    rows, count = queries.page_of(session, filters, limit=PAGE, offset=(page - 1) * PAGE, sort=sort)
    by_state = queries.stats(session, by="state", filters=listing.filters(states=()), locale=locale)
    return render(
        request,
        "loop/problems.html",
        actor=actor,
        listing=listing,
        rows=rows,
        count=count,
        first=(page - 1) * PAGE,
        page=page,
        pages=max(1, -(-count // PAGE)),
        sort=sort,
        by=by,
        dimensions=STAT_DIMENSIONS,
        stats=queries.stats(session, by=by, filters=filters, locale=locale),
        state_counts={row.key: row.total for row in by_state.data},
        all_count=by_state.total.total,
        can_report=_may_report(actor),
        **_form_context(session),
    )


@router.get("/problems/board")
def board_page(request: Request, session: SessionDep, actor: PageActor, chosen: Chosen) -> Response:
    """Same payload as GET /api/v1/problems/board: a column per state with its count and
    the cards nearest their deadline first."""
    listing = Listing("/problems/board", [], chosen)
    board = queries.board(
        session, listing.filters(), per_state=PER_STATE, locale=locale_of(request)
    )
    return render(
        request,
        "loop/board.html",
        actor=actor,
        listing=listing,
        board=board,
        **_form_context(session),
    )


@router.get("/problems/export.xlsx")
def export_page(
    session: SessionDep,
    actor: PageActor,
    chosen: Chosen,
    state: list[str] = Query(default_factory=list),
) -> Response:
    """GET /api/v1/problems/export.xlsx for a browser holding a session: every problem the
    list's filters match."""
    listing = Listing("/problems", _states(state), chosen)
    return Response(
        excel.export_problems(session, listing.filters()),
        media_type=excel.XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="problems.xlsx"'},
    )


# -- reporting and importing ----------------------------------------------------------------


def _text(form: FormData, name: str) -> str:
    return str(form.get(name) or "").strip()


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


REPORT_FIELDS = (
    "title",
    "description",
    "channel",
    "system",
    "region",
    "severity",
    "department",
    "responsible_person",
    "deadline",
    "measures",
    "indicator",
)


def _report_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    data: dict[str, str],
    error: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "loop/report.html",
        actor=actor,
        status=status,
        error=error,
        data=data,
        **_form_context(session),
    )


@router.get("/problems/new")
def report_form(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """The form whose post is POST /api/v1/problems."""
    if not _may_report(actor):
        raise PermissionDenied(Message("{name} may not report problems", name=actor.name))
    return _report_page(request, session, actor, data={})


@router.post("/problems")
async def report(
    request: Request, database: DatabaseDep, session: SessionDep, actor: PageActor
) -> Response:
    """Report a problem: it is on the list (and assigned, when a department is given), or
    the form comes back with the reason and nothing is saved."""
    form = await checked_form(request)
    if not _may_report(actor):
        raise PermissionDenied(Message("{name} may not report problems", name=actor.name))
    data = {name: _text(form, name) for name in REPORT_FIELDS}
    try:
        # an empty optional box means "not given", as a missing JSON key does in the API
        body = ProblemCreate.model_validate({k: v for k, v in data.items() if v != ""})
        with database.transaction() as writer:
            made = service.report(
                writer, actor=actor, data=body, settings=request.app.state.settings
            )
            problem_id, code = made.id, made.code
    except ValidationError as exc:
        return _report_page(request, session, actor, data=data, error=_first_error(exc), status=422)
    except ShuzhiError as exc:
        return _report_page(request, session, actor, data=data, error=exc.detail, status=exc.status)
    _ = translator_for(request)
    return redirect(
        request, f"/problems/{problem_id}", ok=_("Problem {code} reported.").format(code=code)
    )


async def _uploaded(
    request: Request, form: FormData, *, limit: int
) -> tuple[str, bytes, str] | str:
    """The file sent with the form (name, bytes, content type), or why there is none."""
    _ = translator_for(request)
    sent = form.get("file")
    if not isinstance(sent, UploadFile) or not sent.filename:
        return _("Choose a file.")
    try:
        data = await sent.read(limit + 1)
    finally:
        await sent.close()
    if len(data) > limit:
        return _("{name} is larger than {mb} MB.").format(name=sent.filename, mb=limit // 1_000_000)
    return sent.filename, data, sent.content_type or "application/octet-stream"


@router.post("/problems/import")
async def import_problems(request: Request, database: DatabaseDep, actor: PageActor) -> Response:
    """Import a problem list as POST /api/v1/problems/import does: every row, or none and
    the rows at fault (only the good ones when asked); the answer is the import's report."""
    form = await checked_form(request)
    if not _may_report(actor):
        raise PermissionDenied(Message("{name} may not import problems", name=actor.name))
    good_only, dry_run = bool(form.get("good_only")), bool(form.get("dry_run"))
    sent = await _uploaded(request, form, limit=IMPORT_MAX_BYTES)
    if isinstance(sent, str):
        return redirect(request, "/problems", error=sent)
    name, data, _type = sent
    result: ImportReport | None = None
    error: str | None = None
    try:
        with database.transaction() as writer:
            result = excel.import_problems(
                writer, actor=actor, data=data, source=name, good_only=good_only, dry_run=dry_run
            )
    except ShuzhiError as exc:
        error = exc.detail
    failed = error is not None or (result is not None and result.errors and not result.imported)
    return render(
        request,
        "loop/imported.html",
        actor=actor,
        status=422 if failed and not dry_run else 200,
        filename=name,
        result=result,
        error=error,
        good_only=good_only,
        dry_run=dry_run,
    )


# -- a problem's page -----------------------------------------------------------------------


@router.get("/problems/{problem_id}")
def problem_page(
    problem_id: ItemId, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    """Same payload as GET /api/v1/problems/{id}: the problem, its timeline, its evidence
    and the transitions the user may fire."""
    problem = service.get(session, problem_id)
    page = queries.page(session, problem, actor=actor)
    scope = service.scope_of(problem)
    warning = page.problem.warning
    return render(
        request,
        "loop/problem.html",
        actor=actor,
        page=page,
        p=page.problem,
        states=PROBLEM.states,
        transitions=PROBLEM.transitions,
        warning_states=WARNING.states,
        blocked=page.blocked,
        warning_unrecovered=warning is not None and warning.state in UNRECOVERED,
        may_upload=allowed(actor, "loop.rectify", scope) and problem.state not in DONE_STATES,
        evidence_names={item.id: item.filename for item in page.evidence},
        departments=orgs.departments(session),
        evidence_max_mb=request.app.state.settings.loop.evidence_max_mb,
    )


def _ids(values: Sequence[Any]) -> list[int]:
    """Evidence ids ticked on the form; anything else names no evidence of the problem."""
    return [int(v) for v in map(str, values) if v.isdigit() and int(v) <= ID_MAX]


def _acted(request: Request, database: Any, back: str, act: Callable[[Session], str]) -> Response:
    """Run ``act`` in one transaction and go back to ``back`` with what it says, or with
    the refusal (the rule that forbids it) and nothing changed."""
    try:
        with database.transaction() as writer:
            message = act(writer)
    except ValidationError as exc:
        return redirect(request, back, error=_first_error(exc))
    except ShuzhiError as exc:
        return redirect(request, back, error=exc.detail)
    return redirect(request, back, ok=message)


@router.post("/problems/{problem_id}/transitions")
async def transition(
    problem_id: ItemId,
    request: Request,
    database: DatabaseDep,
    session: SessionDep,
    actor: PageActor,
) -> Response:
    """Fire one transition, as POST /api/v1/problems/{id}/transitions."""
    form = await checked_form(request)
    service.get(session, problem_id)  # an unknown problem is the 404 page, not a flash
    _ = translator_for(request)
    name = _text(form, "transition")

    def act(writer: Session) -> str:
        action = ProblemAction.model_validate(
            {
                "transition": name,
                "comment": _text(form, "comment") or None,
                "attachments": _ids(form.getlist("attachments")),
                "department": _text(form, "department") or None,
                "deadline": _text(form, "deadline") or None,
            }
        )
        service.act(
            writer,
            actor=actor,
            problem_id=problem_id,
            action=action,
            settings=request.app.state.settings,
        )
        done = PROBLEM.transitions[name].label(locale_of(request))
        return _("{action}: done.").format(action=done)

    return _acted(request, database, f"/problems/{problem_id}", act)


@router.post("/problems/{problem_id}/evidence")
async def upload_evidence(
    problem_id: ItemId,
    request: Request,
    database: DatabaseDep,
    session: SessionDep,
    actor: PageActor,
) -> Response:
    """Attach an evidence file, as POST /api/v1/problems/{id}/evidence."""
    form = await checked_form(request)
    service.get(session, problem_id)
    back = f"/problems/{problem_id}"
    settings = request.app.state.settings
    sent = await _uploaded(request, form, limit=settings.loop.evidence_max_mb * 1_000_000)
    if isinstance(sent, str):
        return redirect(request, back, error=sent)
    name, data, content_type = sent
    _ = translator_for(request)

    def act(writer: Session) -> str:
        evidence = service.add_problem_evidence(
            writer,
            actor=actor,
            problem_id=problem_id,
            filename=name,
            content=data,
            content_type=content_type,
            note=_text(form, "note"),
            settings=settings,
        )
        return _("Evidence {name} attached.").format(name=evidence.filename)

    return _acted(request, database, back, act)


@router.get("/problems/{problem_id}/evidence/{evidence_id}")
def download_evidence(
    problem_id: ItemId, evidence_id: ItemId, session: SessionDep, actor: PageActor
) -> Response:
    """GET /api/v1/evidence/{id} for a browser holding a session; always a download, so a
    file that is a web page is never shown as one of this site's."""
    evidence, path = service.evidence_file(session, evidence_id)
    if not _belongs(evidence, problem_id):
        raise NotFound(
            Message(
                "problem {problem_id} has no evidence {evidence_id}",
                problem_id=problem_id,
                evidence_id=evidence_id,
            ),
            field="evidence",
        )
    return FileResponse(
        path,
        media_type=evidence.content_type,
        filename=evidence.filename,
        content_disposition_type="attachment",
    )


def _belongs(evidence: Evidence, problem_id: int) -> bool:
    return evidence.object_type == "problem" and evidence.object_id == problem_id
