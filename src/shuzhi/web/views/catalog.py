"""Catalog pages: browse and search, detail with lifecycle buttons, create and edit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from shuzhi.catalog import queries, service
from shuzhi.catalog.queries import Filters
from shuzhi.catalog.rules import LIFECYCLE
from shuzhi.catalog.schemas import ResourceCreate, ResourceUpdate
from shuzhi.core.errors import NotFound, ShuzhiError
from shuzhi.core.permissions import Actor, allowed
from shuzhi.orgs import queries as orgs
from shuzhi.web.app import render, translator_for
from shuzhi.web.flash import redirect
from shuzhi.web.session import checked_form
from shuzhi.web.views.deps import DatabaseDep, PageActor, PageNumber, SessionDep

router = APIRouter()
PAGE = 20
FIELD_COLUMNS = ("name", "title", "type", "pii", "description")


def _filters(request: Request) -> Filters:
    params = request.query_params
    return Filters(
        **{
            key: params.get(key) or None
            for key in ("q", "provider", "system", "grade", "sharing", "state", "region")
        }
    )


def _results(request: Request, session: Any, actor: Actor, page: int) -> dict[str, Any]:
    filters = _filters(request)
    found, total = queries.search(
        session, actor=actor, filters=filters, limit=PAGE, offset=(page - 1) * PAGE
    )
    return {
        "filters": filters,
        "resources": [queries.summary(r) for r in found],
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE)),
        "query": str(request.query_params),
        "states": LIFECYCLE.states,
    }


@router.get("/catalog")
def catalog_page(
    request: Request, session: SessionDep, actor: PageActor, page: PageNumber
) -> Response:
    """Same payload as GET /api/v1/catalog/resources."""
    return render(
        request,
        "catalog/list.html",
        actor=actor,
        can_edit=bool(actor.scopes_for("catalog.edit")),
        departments=orgs.departments(session),
        **_results(request, session, actor, page),
    )


@router.post("/catalog/apply")
async def apply_yaml(request: Request, database: DatabaseDep, actor: PageActor) -> Response:
    """Apply an uploaded catalog YAML file: all of it, or nothing with the reason."""
    form = await checked_form(request)
    _ = translator_for(request)
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not upload.filename:
        return redirect(request, "/catalog", error=_("Choose a YAML file."))
    raw = await upload.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return redirect(request, "/catalog", error=f"{upload.filename}: not UTF-8 text")
    try:
        with database.transaction() as writer:
            result = service.apply(writer, actor=actor, text=text, source=upload.filename)
    except ShuzhiError as exc:
        return redirect(request, "/catalog", error=exc.detail)
    summary = _("Applied: {created} created, {updated} updated, {unchanged} unchanged.").format(
        created=len(result.created), updated=len(result.updated), unchanged=len(result.unchanged)
    )
    return redirect(request, "/catalog", ok=summary)


@router.get("/catalog/results")
def catalog_results(
    request: Request, session: SessionDep, actor: PageActor, page: PageNumber
) -> Response:
    """The result table alone, swapped in by htmx as the user types."""
    return render(
        request, "catalog/_results.html", actor=actor, **_results(request, session, actor, page)
    )


def _form_data(form: Any) -> dict[str, Any]:
    """A resource document from the edit form; the field table arrives as parallel lists."""
    data: dict[str, Any] = {
        key: (form.get(key) or "").strip()
        for key in (
            "code",
            "name",
            "summary",
            "provider",
            "classification",
            "format",
            "update_cycle",
            "system",
            "sharing",
            "sharing_conditions",
            "open",
            "grade",
            "national_level",
            "region",
        )
    }
    data["tags"] = [t for t in (form.get("tags") or "").replace("，", ",").split(",") if t.strip()]
    version = str(form.get("version") or "")
    if version.isascii() and version.isdigit():
        data["version"] = int(version)
    columns = {column: form.getlist(f"field_{column}") for column in FIELD_COLUMNS}
    primary = set(form.getlist("field_primary_key"))
    required = set(form.getlist("field_required"))
    fields = []
    for index, name in enumerate(columns["name"]):
        if not name.strip():
            continue
        fields.append(
            {
                **{
                    column: (columns[column][index] if index < len(columns[column]) else "").strip()
                    for column in FIELD_COLUMNS
                },
                "primary_key": str(index) in primary,
                "nullable": str(index) not in required and str(index) not in primary,
            }
        )
    data["fields"] = fields
    return data


def _validation_message(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def _edit_page(
    request: Request,
    session: Any,
    actor: Actor,
    *,
    data: dict[str, Any],
    creating: bool,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "catalog/edit.html",
        actor=actor,
        data=data,
        creating=creating,
        error=error,
        status=status,
        departments=orgs.departments(session),
    )


@router.get("/catalog/new")
def new_resource(request: Request, session: SessionDep, actor: PageActor) -> Response:
    department = (
        orgs.department_by_id(session, actor.department_id) if actor.department_id else None
    )
    data = {
        "provider": department.code if department else "",
        "region": department.region_code if department else "",
        "fields": [],
        "tags": [],
    }
    return _edit_page(request, session, actor, data=data, creating=True)


@router.post("/catalog/new")
async def create_resource(
    request: Request, database: DatabaseDep, session: SessionDep, actor: PageActor
) -> Response:
    form = await checked_form(request)
    data = _form_data(form)
    try:
        body = ResourceCreate.model_validate({k: v for k, v in data.items() if k != "version"})
        with database.transaction() as writer:
            service.create(writer, actor=actor, data=body)
    except ValidationError as exc:
        return _edit_page(
            request,
            session,
            actor,
            data=data,
            creating=True,
            error=_validation_message(exc),
            status=422,
        )
    except ShuzhiError as exc:
        return _edit_page(
            request, session, actor, data=data, creating=True, error=exc.detail, status=exc.status
        )
    _ = translator_for(request)
    return redirect(request, f"/catalog/{body.code}", ok=_("Saved."))


@router.get("/catalog/{code}")
def resource_page(code: str, request: Request, session: SessionDep, actor: PageActor) -> Response:
    """Same payload as GET /api/v1/catalog/resources/{code} and its /history."""
    resource = queries.get(session, actor=actor, code=code)
    return render(
        request,
        "catalog/detail.html",
        actor=actor,
        resource=queries.public(session, actor=actor, resource=resource),
        history=queries.history(session, resource=resource),
        lifecycle=LIFECYCLE,
        editable=resource.state in ("draft", "rejected"),
        data_tab=allowed(actor, "lake.read", queries.scope_of(resource)),
    )


@router.get("/catalog/{code}/edit")
def edit_resource(code: str, request: Request, session: SessionDep, actor: PageActor) -> Response:
    public = queries.public(
        session, actor=actor, resource=queries.get(session, actor=actor, code=code)
    )
    data = public.model_dump(mode="json")
    return _edit_page(request, session, actor, data=data, creating=False)


@router.post("/catalog/{code}/edit")
async def save_resource(
    code: str, request: Request, database: DatabaseDep, session: SessionDep, actor: PageActor
) -> Response:
    form = await checked_form(request)
    data = _form_data(form)
    data["code"] = code
    try:
        body = ResourceUpdate.model_validate({k: v for k, v in data.items() if k != "code"})
        with database.transaction() as writer:
            service.update(writer, actor=actor, code=code, data=body)
    except ValidationError as exc:
        return _edit_page(
            request,
            session,
            actor,
            data=data,
            creating=False,
            error=_validation_message(exc),
            status=422,
        )
    except NotFound:
        raise  # a resource the user may not see gets the error page, not a form
    except ShuzhiError as exc:
        return _edit_page(
            request, session, actor, data=data, creating=False, error=exc.detail, status=exc.status
        )
    _ = translator_for(request)
    return redirect(request, f"/catalog/{code}", ok=_("Saved."))


@router.post("/catalog/{code}/transitions/{name}")
async def fire_transition(
    code: str, name: str, request: Request, database: DatabaseDep, actor: PageActor
) -> Response:
    form = await checked_form(request)
    try:
        with database.transaction() as writer:
            service.transition(
                writer, actor=actor, code=code, name=name, comment=str(form.get("comment", ""))
            )
    except NotFound:
        raise
    except ShuzhiError as exc:
        return redirect(request, f"/catalog/{code}", error=exc.detail)
    _ = translator_for(request)
    return redirect(request, f"/catalog/{code}", ok=_("Done."))
