from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from shuzhi.loop import cockpit
from shuzhi.web.app import locale_of, render
from shuzhi.web.views.deps import PageActor, SessionDep

router = APIRouter()


@router.get("/")
def home(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    region: Annotated[str | None, Query(max_length=12)] = None,
) -> Response:
    """The cockpit home (驾驶舱): the same payload as GET /api/v1/cockpit?region=."""
    found = cockpit.overview(session, actor=actor, region=region or None, locale=locale_of(request))
    return render(request, "home.html", actor=actor, cockpit=found)
