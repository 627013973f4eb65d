from __future__ import annotations

from fastapi import APIRouter, Query

from shuzhi.api import PREFIX
from shuzhi.api.deps import ActorDep, Offset, SessionDep
from shuzhi.regions import queries
from shuzhi.regions.schemas import RegionList, RegionNode, RegionPublic

router = APIRouter(prefix=f"{PREFIX}/regions", tags=["regions"])


@router.get("", response_model=RegionList)
def list_regions(
    session: SessionDep,
    actor: ActorDep,
    level: str | None = None,
    parent: str | None = None,
    q: str | None = Query(None, description="part of a name, or a code prefix"),
    limit: int = Query(500, ge=1, le=5000),
    offset: Offset = 0,
) -> RegionList:
    """Regions in tree order; ``count`` is how many match, beyond this page too."""
    found, total = queries.search(
        session, level=level, parent=parent, q=q, limit=limit, offset=offset
    )
    return RegionList(data=[RegionPublic.model_validate(r) for r in found], count=total)


@router.get("/tree", response_model=list[RegionNode])
def region_tree(session: SessionDep, actor: ActorDep, root: str | None = None) -> list[RegionNode]:
    return queries.tree(session, root)


@router.get("/{code}", response_model=RegionPublic)
def get_region(code: str, session: SessionDep, actor: ActorDep) -> RegionPublic:
    return RegionPublic.model_validate(queries.get(session, code))


@router.get("/{code}/ancestors", response_model=RegionList)
def region_ancestors(code: str, session: SessionDep, actor: ActorDep) -> RegionList:
    found = queries.ancestors(session, code)
    return RegionList(data=[RegionPublic.model_validate(r) for r in found], count=len(found))


@router.get("/{code}/subtree", response_model=RegionList)
def region_subtree(code: str, session: SessionDep, actor: ActorDep) -> RegionList:
    found = queries.subtree(session, code)
    return RegionList(data=[RegionPublic.model_validate(r) for r in found], count=len(found))
