from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shuzhi.regions import queries
from shuzhi.web.app import render
from shuzhi.web.views.deps import PageActor, SessionDep

router = APIRouter()


@router.get("/regions")
def region_tree(
    request: Request, session: SessionDep, actor: PageActor, root: str | None = None
) -> Response:
    """Same payload as GET /api/v1/regions/tree."""
    return render(request, "regions.html", actor=actor, tree=queries.tree(session, root or None))
