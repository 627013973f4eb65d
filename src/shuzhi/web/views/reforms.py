"""The ledger of major reforms (重大改革"一本账") in the cockpit: the ledger by batch (now,
or as it stood on a past date) and a reform's page with its milestones, key results,
versions and linked problems; for those allowed, check-ins, milestone steps and evidence.

Every page renders the payload of its API twin and computes no number of its own:

- ``/reforms?batch=&system=&region=&q=&as_of=`` ↔ ``GET /api/v1/reforms`` with the same
  filters (a select's value that is not one of its choices is ignored; an unknown region
  is the 404 page, a date that is not one the 422 page);
- ``/reforms/{code}`` ↔ ``GET /api/v1/reforms/{code}``.

Every signed-in user reads them. The forms that write are shown to those allowed their
action and refused (the forbidden page) to the others; each post is one service call, as
its API twin's, and comes back as a flash with what it did or the rule that refused it:

- ``POST /reforms/{code}/check-ins`` ↔ ``POST /api/v1/reforms/{code}/check-ins``
  (``loop.check_in`` on the lead department);
- ``POST /reforms/{code}/milestones/{id}/transitions`` ↔ the API's (the transition's own
  action: ``loop.check_in`` to submit, ``loop.verify`` to verify or send back);
- ``POST /reforms/{code}/milestones/{id}/evidence`` ↔ the API's (``loop.check_in``), and
  ``GET`` of one evidence file as ``GET /api/v1/evidence/{id}`` for a browser.

A milestone shows the steps the user may take now; a submission waits for its evidence
(the submit button appears once a file is attached) and the submitter sees no verify
button, as the machine's guards say.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from shuzhi.core.enums import System
from shuzhi.core.errors import Message, NotFound, PermissionDenied, ShuzhiError, ValidationFailed
from shuzhi.core.permissions import Actor, allowed
from shuzhi.core.workflow import Attempt
from shuzhi.loop import ledger, reforms
from shuzhi.loop import service as loop_service
from shuzhi.loop.models import Reform
from shuzhi.loop.rules import MILESTONE, PROBLEM, Batch
from shuzhi.loop.schemas import MilestoneAction
from shuzhi.orgs.schemas import ID_MAX
from shuzhi.regions.models import Region
from shuzhi.web.app import locale_of, render, translator_for
from shuzhi.web.flash import redirect
from shuzhi.web.session import checked_form
from shuzhi.web.views.deps import DatabaseDep, PageActor, SessionDep

router = APIRouter()
ItemId = Annotated[int, Path(ge=1, le=ID_MAX)]  # a larger id names no row and overflows
CHOOSABLE_LEVELS = ("province", "city", "county")  # towns would make the select too long


def _one_of(value: str | None, choices: set[str]) -> str | None:
    return value if value in choices else None


def _regions(session: Session) -> list[Region]:
    return list(
        session.scalars(
            select(Region).where(Region.level.in_(CHOOSABLE_LEVELS)).order_by(Region.code)
        )
    )


def _as_of(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            Message("as_of {text!r} is not a date (YYYY-MM-DD)", text=text), field="as_of"
        ) from None


@router.get("/reforms")
def ledger_page(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    batch: str | None = None,
    system: str | None = None,
    region: Annotated[str | None, Query(max_length=12)] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    as_of: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """Same payload as GET /api/v1/reforms with the same filters: the ledger by batch."""
    batch = _one_of(batch, {item.value for item in Batch})
    system = _one_of(system, {item.value for item in System})
    if region and session.get(Region, region) is None:
        raise NotFound(Message("unknown region {region!r}", region=region), field="region")
    day = _as_of(as_of)
    found = ledger.ledger(
        session, batch=batch, system=system, region=region or None, q=q or None, as_of=day
    )
    return render(
        request,
        "reforms/ledger.html",
        actor=actor,
        found=found,
        batches=list(Batch),
        batch=batch or "",
        system=system or "",
        region=region or "",
        q=q or "",
        as_of=day.isoformat() if day else "",
        regions=_regions(session),
    )


def _steps(reform: Reform, actor: Actor) -> dict[int, list[dict[str, Any]]]:
    """For each milestone, the steps the user may take now, and those only a guard holds
    back with its reason (so the page says why, rather than hiding it)."""
    scope = reforms.lead_scope(reform)
    found: dict[int, list[dict[str, Any]]] = {}
    for milestone in reform.milestones:
        steps = []
        for transition in MILESTONE.transitions.values():
            if milestone.state not in transition.sources:
                continue
            if not allowed(actor, transition.action, scope):
                continue
            reasons = [guard(milestone, Attempt(actor)) for guard in transition.guards]
            steps.append(
                {
                    "name": transition.name,
                    "label": transition.label(),
                    "needs_comment": transition.needs_comment,
                    "blocked": next((reason for reason in reasons if reason), None),
                }
            )
        found[milestone.id] = steps
    return found


@router.get("/reforms/{code}")
def reform_page(code: str, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Same payload as GET /api/v1/reforms/{code}."""
    page = ledger.reform_page(session, code)
    reform = ledger.get(session, code)
    scope = reforms.lead_scope(reform)
    _ = translator_for(request)
    kinds = {
        "created": _("Reform created"),
        "changed": _("Reform changed"),
        "check_in": _("Check-in"),
        "milestone": _("Milestone step"),
        "recomputed": _("Recomputed"),
    }
    return render(
        request,
        "reforms/reform.html",
        actor=actor,
        page=page,
        r=page.reform,
        steps=_steps(reform, actor),
        may_check_in=allowed(actor, "loop.check_in", scope),
        milestone_states=MILESTONE.states,
        problem_states=PROBLEM.states,
        version_kinds=kinds,
        evidence_max_mb=request.app.state.settings.loop.evidence_max_mb,
    )


# -- writing ----------------------------------------------------------------------------


def _text(form: FormData, name: str) -> str:
    return str(form.get(name) or "").strip()


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _acted(request: Request, database: Any, back: str, act: Callable[[Session], str]) -> Response:
    """Run ``act`` in one transaction and go back with what it says, or with the refusal
    (the rule that forbids it) and nothing changed."""
    try:
        with database.transaction() as writer:
            message = act(writer)
    except ValidationError as exc:
        return redirect(request, back, error=_first_error(exc))
    except ShuzhiError as exc:
        return redirect(request, back, error=exc.detail)
    return redirect(request, back, ok=message)


def _lead_may(session: Session, actor: Actor, code: str, action: str) -> Reform:
    """The reform, when the actor may do ``action`` on its lead department; the forbidden
    page otherwise (and the 404 page for an unknown reform)."""
    reform = ledger.get(session, code)
    if not allowed(actor, action, reforms.lead_scope(reform)):
        raise PermissionDenied(
            Message(
                "{name} may not {action} on reform {code}",
                name=actor.name,
                action=action,
                code=code,
            )
        )
    return reform


@router.post("/reforms/{code}/check-ins")
async def check_in(
    code: str, request: Request, database: DatabaseDep, session: SessionDep, actor: PageActor
) -> Response:
    """Record a check-in, as POST /api/v1/reforms/{code}/check-ins."""
    form = await checked_form(request)
    _lead_may(session, actor, code, "loop.check_in")
    _ = translator_for(request)
    note = _text(form, "note")

    def act(writer: Session) -> str:
        version = reforms.check_in(writer, actor=actor, code=code, note=note)
        return _("Check-in recorded as version {n}.").format(n=version.version)

    return _acted(request, database, f"/reforms/{code}#versions", act)


@router.post("/reforms/{code}/milestones/{milestone_id}/transitions")
async def milestone_transition(
    code: str,
    milestone_id: ItemId,
    request: Request,
    database: DatabaseDep,
    session: SessionDep,
    actor: PageActor,
) -> Response:
    """Take one step of a milestone, as POST
    /api/v1/reforms/{code}/milestones/{id}/transitions."""
    form = await checked_form(request)
    name = _text(form, "transition")
    transition = MILESTONE.transitions.get(name)
    reform = ledger.get(session, code)
    reforms.milestone_of(reform, milestone_id)  # an unknown milestone is the 404 page
    if transition is not None and not allowed(actor, transition.action, reforms.lead_scope(reform)):
        raise PermissionDenied(
            Message(
                "{name} may not {action} on reform {code}",
                name=actor.name,
                action=transition.action,
                code=code,
            )
        )
    _ = translator_for(request)

    def act(writer: Session) -> str:
        action = MilestoneAction.model_validate(
            {"transition": name, "comment": _text(form, "comment") or None}
        )
        reforms.milestone_act(
            writer, actor=actor, code=code, milestone_id=milestone_id, action=action
        )
        done = MILESTONE.transitions[name].label(locale_of(request))
        return _("{action}: done.").format(action=done)

    return _acted(request, database, f"/reforms/{code}#milestones", act)


async def _uploaded(
    request: Request, form: FormData, *, limit: int
) -> tuple[str, bytes, str] | str:
    """The file sent with the form, or why there is none to use."""
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


@router.post("/reforms/{code}/milestones/{milestone_id}/evidence")
async def milestone_evidence(
    code: str,
    milestone_id: ItemId,
    request: Request,
    database: DatabaseDep,
    session: SessionDep,
    actor: PageActor,
) -> Response:
    """Attach an evidence file to a milestone, as POST
    /api/v1/reforms/{code}/milestones/{id}/evidence."""
    form = await checked_form(request)
    reform = _lead_may(session, actor, code, "loop.check_in")
    reforms.milestone_of(reform, milestone_id)
    back = f"/reforms/{code}#milestones"
    settings = request.app.state.settings
    sent = await _uploaded(request, form, limit=settings.loop.evidence_max_mb * 1_000_000)
    if isinstance(sent, str):
        return redirect(request, back, error=sent)
    name, data, content_type = sent
    _ = translator_for(request)

    def act(writer: Session) -> str:
        evidence = reforms.add_milestone_evidence(
            writer,
            actor=actor,
            code=code,
            milestone_id=milestone_id,
            filename=name,
            content=data,
            content_type=content_type,
            note=_text(form, "note"),
            settings=settings,
        )
        return _("Evidence {name} attached.").format(name=evidence.filename)

    return _acted(request, database, back, act)


@router.get("/reforms/{code}/milestones/{milestone_id}/evidence/{evidence_id}")
def download_evidence(
    code: str, milestone_id: ItemId, evidence_id: ItemId, session: SessionDep, actor: PageActor
) -> Response:
    """GET /api/v1/evidence/{id} for a browser holding a session; always a download."""
    reforms.milestone_of(ledger.get(session, code), milestone_id)
    evidence, path = loop_service.evidence_file(session, evidence_id)
    if evidence.object_type != "milestone" or evidence.object_id != milestone_id:
        raise NotFound(
            Message(
                "milestone {milestone_id} has no evidence {evidence_id}",
                milestone_id=milestone_id,
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
