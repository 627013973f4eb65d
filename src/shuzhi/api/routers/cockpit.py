"""The cockpit home's payload (驾驶舱), the twin of the page at /."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from shuzhi.api import PREFIX
from shuzhi.api.deps import ActorDep, SessionDep
from shuzhi.loop import cockpit
from shuzhi.loop.cockpit import CockpitOverview

router = APIRouter(prefix=PREFIX, tags=["cockpit"])


@router.get("/cockpit", response_model=CockpitOverview)
def overview(
    session: SessionDep,
    actor: ActorDep,
    region: Annotated[
        str | None, Query(max_length=12, description="default: the root of the region tree")
    ] = None,
) -> CockpitOverview:
    """For leaders, in one region: the systems' lights, key indicators with their trend,
    firing warnings, the reform ledger by batch, problem closure and on-time rates,
    aggregation coverage, and each child region for drilling down."""
    return cockpit.overview(session, actor=actor, region=region or None)
