from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shuzhi.orgs import queries
from shuzhi.web.app import render
from shuzhi.web.views.deps import PageActor, SessionDep

router = APIRouter()


@router.get("/departments")
def departments(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    region: str | None = None,
    system: str | None = None,
    q: str | None = None,
) -> Response:
    """Same payload as GET /api/v1/departments."""
    found = queries.departments(session, region=region or None, system=system or None, q=q or None)
    return render(
        request,
        "orgs/departments.html",
        actor=actor,
        departments=[queries.department_public(session, d) for d in found],
        q=q or "",
        system=system or "",
    )
