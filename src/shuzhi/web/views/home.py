from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shuzhi.catalog import queries as catalog
from shuzhi.orgs import queries as orgs
from shuzhi.regions import queries as regions
from shuzhi.web.app import render
from shuzhi.web.views.deps import PageActor, SessionDep

router = APIRouter()


@router.get("/")
def home(request: Request, session: SessionDep, actor: PageActor) -> Response:
    """The cockpit home: the catalog's numbers (the same payload as /api/v1/catalog/stats)."""
    stats = catalog.stats(session, actor=actor)
    return render(
        request,
        "home.html",
        actor=actor,
        stats=stats,
        departments=orgs.count_departments(session),
        counties=regions.count(session, level="county"),
    )
