"""Full aggregation (全量归集) in the cockpit: a resource's data tab, uploads into the lake,
scheduled sources, and the aggregation-health page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from shuzhi.catalog import queries as catalog
from shuzhi.catalog.models import Resource
from shuzhi.catalog.rules import LIFECYCLE
from shuzhi.core.enums import Light
from shuzhi.core.errors import Message, NotFound, PermissionDenied, ShuzhiError, ValidationFailed
from shuzhi.core.permissions import Actor, allowed
from shuzhi.lake import queries, service
from shuzhi.lake.models import Batch
from shuzhi.lake.pipeline import parse_map
from shuzhi.lake.rules import BatchState, Mode
from shuzhi.orgs import queries as orgs
from shuzhi.orgs.schemas import ID_MAX
from shuzhi.web.app import render, translator_for
from shuzhi.web.flash import redirect
from shuzhi.web.session import checked_form
from shuzhi.web.views.deps import DatabaseDep, PageActor, PageNumber, SessionDep

router = APIRouter()
QUARANTINE_PAGE = 25
TREND_DAYS = 90
BatchId = Annotated[int | None, Query(ge=1, le=ID_MAX)]


def _data_url(code: str) -> str:
    return f"/catalog/{code}/data"


@router.get("/catalog/{code}/data")
def data_page(
    code: str,
    request: Request,
    session: SessionDep,
    actor: PageActor,
    page: PageNumber,
    batch: BatchId = None,
    rule: str | None = None,
) -> Response:
    """Same payloads as GET /api/v1/lake/resources/{code}/data, .../quarantine and
    /api/v1/lake/sources?resource={code}, with the catalog's own record for the schema."""
    settings = request.app.state.settings
    resource = queries.readable(session, actor=actor, code=code)
    rows, total, shown = queries.quarantine(
        session,
        actor=actor,
        code=code,
        batch_id=batch,
        rule=rule or None,
        limit=QUARANTINE_PAGE,
        offset=(page - 1) * QUARANTINE_PAGE,
        settings=settings,
    )
    return render(
        request,
        "catalog/data.html",
        actor=actor,
        resource=catalog.public(session, actor=actor, resource=resource),
        tab=queries.data_tab(session, actor=actor, code=code, settings=settings),
        quarantine=rows,
        quarantine_total=total,
        quarantine_batch=queries.batch_public(shown) if shown else None,
        rule=rule or "",
        page=page,
        pages=max(1, -(-total // QUARANTINE_PAGE)),
        sources=[
            queries.source_public(item) for item in queries.sources(session, actor=actor, code=code)
        ],
        can_ingest=allowed(actor, "lake.ingest", catalog.scope_of(resource)),
        upload_max_mb=settings.lake.upload_max_mb,
        modes=list(Mode),
        lifecycle=LIFECYCLE,
    )


@router.get("/catalog/{code}/quarantine.csv")
def quarantine_csv(
    code: str, request: Request, session: SessionDep, actor: PageActor, batch: BatchId = None
) -> FileResponse:
    """The cockpit's twin of GET /api/v1/lake/resources/{code}/quarantine.csv: the same file,
    for a browser holding a session rather than a Bearer token."""
    target = queries.quarantine_csv(
        session, actor=actor, code=code, batch_id=batch, settings=request.app.state.settings
    )
    return FileResponse(
        target,
        media_type="text/csv; charset=utf-8",
        filename=f"{code}-quarantine.csv",
        background=BackgroundTask(target.unlink, missing_ok=True),
    )


def _batch_summary(request: Request, batch: Batch) -> str:
    _ = translator_for(request)
    if batch.state == BatchState.unchanged.value:
        return _("Batch {n}: the same data as the current snapshot, nothing rewritten.").format(
            n=batch.id
        )
    message = _("Batch {n}: read {read}, loaded {loaded}, quarantined {bad}, duplicates {dup}.")
    return message.format(
        n=batch.id,
        read=batch.rows_read,
        loaded=batch.rows_loaded,
        bad=batch.rows_quarantined,
        dup=batch.duplicates,
    )


def _upload_options(request: Request, form: Any) -> dict[str, Any]:
    """The upload form as ``ingest_upload`` options, as the API's multipart form is read."""
    _ = translator_for(request)
    text = str(form.get("map") or "")
    pairs = [line.strip() for line in text.replace("\r", "\n").split("\n") if line.strip()]
    for pair in pairs:
        if "=" not in pair:
            raise ValidationFailed(
                _("Column mapping {line}: write it as column=field.").format(line=pair),
                field="map",
            )
    try:
        mode = Mode(str(form.get("mode") or Mode.full.value))
    except ValueError:
        raise ValidationFailed(_("Choose full or incremental."), field="mode") from None
    return {
        "mode": mode,
        "overrides": parse_map(pairs),
        "source_options": {
            "sheet": str(form.get("sheet") or "").strip() or None,
            "encoding": str(form.get("encoding") or "").strip() or None,
        },
    }


@router.post("/catalog/{code}/data/upload")
async def upload(code: str, request: Request, database: DatabaseDep, actor: PageActor) -> Response:
    """Ingest a file sent from the data tab: the whole batch, or nothing and the reason."""
    form = await checked_form(request)
    _ = translator_for(request)
    back = _data_url(code)
    sent = form.get("file")
    if not isinstance(sent, UploadFile) or not sent.filename:
        return redirect(request, back, error=_("Choose a file to load."))
    try:
        options = _upload_options(request, form)
        batch = await run_in_threadpool(
            service.ingest_upload,
            database,
            actor=actor,
            code=code,
            stream=sent.file,
            filename=sent.filename,
            settings=request.app.state.settings,
            **options,
        )
    except (NotFound, PermissionDenied):
        raise  # a resource the user may not load into gets the error page, not a message
    except ShuzhiError as exc:
        return redirect(request, back, error=exc.detail)
    finally:
        await sent.close()
    return redirect(request, back, ok=_batch_summary(request, batch))


@router.post("/catalog/{code}/pii/{field}/review")
async def review_pii(
    code: str, field: str, request: Request, database: DatabaseDep, actor: PageActor
) -> Response:
    await checked_form(request)
    _ = translator_for(request)
    try:
        service.review_pii(database, actor=actor, code=code, field=field)
    except (NotFound, PermissionDenied):
        raise
    except ShuzhiError as exc:
        return redirect(request, _data_url(code), error=exc.detail)
    return redirect(request, _data_url(code), ok=_("Marked as reviewed."))


@router.post("/catalog/{code}/sources/{source_id}/run")
async def run_source(
    code: str, source_id: int, request: Request, database: DatabaseDep, actor: PageActor
) -> Response:
    """Pull a registered source now, whatever its schedule."""
    await checked_form(request)
    _ = translator_for(request)
    with database.session() as session:
        if source_id not in {s.id for s in queries.sources(session, actor=actor, code=code)}:
            raise NotFound(
                Message("no source {source_id} of {code}", source_id=source_id, code=code),
                field="source",
            )
    try:
        batch = await run_in_threadpool(
            service.run_source,
            database,
            source_id=source_id,
            actor=actor,
            force=True,
            settings=request.app.state.settings,
        )
    except (NotFound, PermissionDenied):
        raise
    except ShuzhiError as exc:
        return redirect(request, _data_url(code), error=exc.detail)
    if batch is None:
        return redirect(
            request, _data_url(code), error=_("Another worker is pulling this source now.")
        )
    return redirect(request, _data_url(code), ok=_batch_summary(request, batch))


def _data_readable(session: Session, actor: Actor, codes: list[str]) -> set[str]:
    """Which of these resources' data tabs the actor may open, to link only those."""
    if not codes or not actor.scopes_for("lake.read"):
        return set()
    found = session.scalars(select(Resource).where(Resource.code.in_(codes)))
    return {item.code for item in found if allowed(actor, "lake.read", catalog.scope_of(item))}


@router.get("/aggregation")
def aggregation_page(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    provider: str | None = None,
    light: str | None = None,
) -> Response:
    """Same payloads as GET /api/v1/lake/quality?provider=, /api/v1/lake/health/trend and
    /api/v1/lake/sources; the light filter only narrows the resource list."""
    provider = provider or None
    light = light if light in {item.value for item in Light} else None
    report = queries.report(session, actor=actor, provider=provider)
    resources = [row for row in report.resources if light is None or row.light == light]
    trend = queries.trend(
        session,
        scope="provider" if provider else "all",
        key=provider or "all",
        days=TREND_DAYS,
    )
    sources = [
        queries.source_public(item)
        for item in queries.sources(session, actor=actor)
        if provider is None or item.resource.provider.code == provider
    ]
    return render(
        request,
        "aggregation.html",
        actor=actor,
        report=report,
        resources=resources,
        trend=trend,
        sources=sources,
        readable=_data_readable(session, actor, [row.code for row in resources]),
        provider=provider or "",
        light=light or "",
        departments=orgs.departments(session),
    )
