from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, status

from shuzhi.api import PREFIX
from shuzhi.api.deps import ActorDep, DatabaseDep, Offset, SessionDep
from shuzhi.catalog import queries, service
from shuzhi.catalog.queries import Filters
from shuzhi.catalog.schemas import (
    ApplyResult,
    CatalogStats,
    HistoryEntry,
    ResourceCreate,
    ResourceList,
    ResourcePublic,
    ResourceUpdate,
    TransitionRequest,
)

router = APIRouter(prefix=f"{PREFIX}/catalog", tags=["catalog"])


@router.get("/resources", response_model=ResourceList)
def search_resources(
    session: SessionDep,
    actor: ActorDep,
    q: str | None = Query(None, description="words that must all appear"),
    provider: str | None = None,
    system: str | None = None,
    grade: str | None = None,
    sharing: str | None = None,
    state: str | None = None,
    region: str | None = Query(None, description="only resources in this region's subtree"),
    limit: int = Query(50, ge=1, le=500),
    offset: Offset = 0,
) -> ResourceList:
    filters = Filters(
        q=q,
        provider=provider,
        system=system,
        grade=grade,
        sharing=sharing,
        state=state,
        region=region,
    )
    found, total = queries.search(session, actor=actor, filters=filters, limit=limit, offset=offset)
    return ResourceList(data=[queries.summary(r) for r in found], count=total)


@router.get("/stats", response_model=CatalogStats)
def catalog_stats(session: SessionDep, actor: ActorDep) -> CatalogStats:
    """Counts behind the cockpit home page."""
    return queries.stats(session, actor=actor)


@router.post("/resources", response_model=ResourcePublic, status_code=status.HTTP_201_CREATED)
def create_resource(body: ResourceCreate, database: DatabaseDep, actor: ActorDep) -> ResourcePublic:
    with database.transaction() as session:
        resource = service.create(session, actor=actor, data=body)
        return queries.public(session, actor=actor, resource=resource)


@router.get("/resources/{code}", response_model=ResourcePublic)
def get_resource(code: str, session: SessionDep, actor: ActorDep) -> ResourcePublic:
    return queries.public(
        session, actor=actor, resource=queries.get(session, actor=actor, code=code)
    )


@router.put("/resources/{code}", response_model=ResourcePublic)
def update_resource(
    code: str, body: ResourceUpdate, database: DatabaseDep, actor: ActorDep
) -> ResourcePublic:
    with database.transaction() as session:
        resource = service.update(session, actor=actor, code=code, data=body)
        return queries.public(session, actor=actor, resource=resource)


@router.post("/resources/{code}/transitions/{name}", response_model=ResourcePublic)
def fire_transition(
    code: str,
    name: str,
    database: DatabaseDep,
    actor: ActorDep,
    body: TransitionRequest | None = None,
) -> ResourcePublic:
    """Move the resource through its lifecycle: submit, recall, approve, reject, withdraw,
    revise. reject and withdraw need a comment."""
    with database.transaction() as session:
        service.transition(
            session, actor=actor, code=code, name=name, comment=body.comment if body else None
        )
        resource = queries.get(session, actor=actor, code=code)
        return queries.public(session, actor=actor, resource=resource)


@router.get("/resources/{code}/history", response_model=list[HistoryEntry])
def resource_history(code: str, session: SessionDep, actor: ActorDep) -> list[HistoryEntry]:
    return queries.history(session, resource=queries.get(session, actor=actor, code=code))


@router.post("/apply", response_model=ApplyResult)
def apply_yaml(
    database: DatabaseDep,
    actor: ActorDep,
    document: Annotated[
        str, Body(media_type="application/yaml", description="a catalog YAML file")
    ],
    source: str = Query("request", description="a name for the document in errors"),
) -> ApplyResult:
    """Create or update every resource of a YAML document; all or nothing."""
    with database.transaction() as session:
        return service.apply(session, actor=actor, text=document, source=source)
