from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shuzhi.core import audit
from shuzhi.web.app import render
from shuzhi.web.views.deps import PageActor, PageNumber, SessionDep

router = APIRouter()
PAGE = 50


@router.get("/changes")
def changes(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    page: PageNumber,
    object_type: str | None = None,
    object_id: str | None = None,
    by: str | None = None,
) -> Response:
    """Same payload as GET /api/v1/changes."""
    rows, total = audit.changes(
        session,
        actor=actor,
        object_type=object_type or None,
        object_id=object_id or None,
        actor_name=by or None,
        limit=PAGE,
        offset=(page - 1) * PAGE,
    )
    return render(
        request,
        "changes.html",
        actor=actor,
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE)),
        object_type=object_type or "",
        object_id=object_id or "",
        by=by or "",
    )
