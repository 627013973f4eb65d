"""Reads over the catalog, always through what the actor may see.

Published resources are visible to every signed-in user; any other state only to
actors holding ``catalog.read_draft`` over the resource's department and region.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, func, or_, select, true
from sqlalchemy.orm import Session

from shuzhi.catalog.models import Resource
from shuzhi.catalog.rules import LIFECYCLE
from shuzhi.catalog.schemas import (
    CatalogStats,
    FieldSpec,
    HistoryEntry,
    ResourcePublic,
    ResourceSummary,
)
from shuzhi.core import workflow
from shuzhi.core.errors import Message, NotFound
from shuzhi.core.permissions import Actor, Scope, allowed
from shuzhi.orgs import queries as orgs
from shuzhi.regions.models import Region


def scope_of(resource: Resource) -> Scope:
    return Scope(department_id=resource.provider_id, region_code=resource.region_code)


def can_read(actor: Actor, resource: Resource) -> bool:
    if not actor.authenticated:
        return False
    return resource.state == "published" or allowed(actor, "catalog.read_draft", scope_of(resource))


def visible(actor: Actor) -> ColumnElement[bool]:
    if not actor.authenticated:
        return false()
    conditions: list[ColumnElement[bool]] = [Resource.state == "published"]
    for grant in actor.scopes_for("catalog.read_draft"):
        parts: list[ColumnElement[bool]] = [true()]
        if grant.departments is not None:
            parts.append(Resource.provider_id.in_(sorted(grant.departments)))
        if grant.regions is not None:
            parts.append(Resource.region_code.in_(sorted(grant.regions)))
        conditions.append(and_(*parts))
    return or_(*conditions)


def get(session: Session, *, actor: Actor, code: str) -> Resource:
    """The resource, or NotFound also when the actor may not see it (no existence leak)."""
    resource = session.scalar(select(Resource).where(Resource.code == code))
    if resource is None or not can_read(actor, resource):
        raise NotFound(Message("no catalog resource {code!r}", code=code), field="code")
    return resource


@dataclass(frozen=True)
class Filters:
    q: str | None = None
    provider: str | None = None
    system: str | None = None
    grade: str | None = None
    sharing: str | None = None
    state: str | None = None
    region: str | None = None


def search(
    session: Session, *, actor: Actor, filters: Filters, limit: int = 50, offset: int = 0
) -> tuple[list[Resource], int]:
    """Full-text search and filters; every term must match; name hits rank first."""
    stmt = select(Resource).where(visible(actor))
    if filters.provider:
        stmt = stmt.where(Resource.provider_id == orgs.department(session, filters.provider).id)
    for column, value in (
        (Resource.system, filters.system),
        (Resource.grade, filters.grade),
        (Resource.sharing, filters.sharing),
        (Resource.state, filters.state),
    ):
        if value:
            stmt = stmt.where(column == value)
    if filters.region:
        root = session.get(Region, filters.region)
        if root is None:
            raise NotFound(
                Message("unknown region code {region!r}", region=filters.region), field="region"
            )
        stmt = stmt.join(Region, Region.code == Resource.region_code).where(
            Region.path.startswith(root.path)
        )
    order: list[ColumnElement[object]] = []
    terms = (filters.q or "").lower().split()
    for term in terms:
        stmt = stmt.where(Resource.search_text.contains(term, autoescape=True))
    if terms:
        # every term anywhere in the name, not the joined phrase: Chinese names have no spaces
        def holds_all(column: Any) -> ColumnElement[bool]:
            return and_(*(func.lower(column).contains(term, autoescape=True) for term in terms))

        order.append(case((holds_all(Resource.name), 0), (holds_all(Resource.code), 1), else_=2))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(*order, Resource.code).limit(limit).offset(offset))
    return list(rows), total


def summary(resource: Resource) -> ResourceSummary:
    return ResourceSummary(
        code=resource.code,
        name=resource.name,
        summary=resource.summary,
        provider=resource.provider.code,
        provider_name=resource.provider.name,
        system=resource.system,
        sharing=resource.sharing,
        open=resource.open_attribute,
        grade=resource.grade,
        region=resource.region_code,
        state=resource.state,
        tags=list(resource.tags or []),
        updated_at=resource.updated_at,
    )


def public(session: Session, *, actor: Actor, resource: Resource) -> ResourcePublic:
    region = session.get(Region, resource.region_code)
    return ResourcePublic(
        **summary(resource).model_dump(),
        classification=resource.classification,
        format=resource.format,
        update_cycle=resource.update_cycle,
        sharing_conditions=resource.sharing_conditions,
        national_level=resource.national_level,
        region_name=region.name if region else "",
        version=resource.version,
        created_at=resource.created_at,
        fields=[FieldSpec.model_validate(field) for field in resource.fields],
        transitions=[t.name for t in LIFECYCLE.available(resource, actor, scope_of(resource))],
    )


def transitions(session: Session, *, object_type: str, object_id: str) -> list[HistoryEntry]:
    """The state machine history of any item, as the history tables show it."""
    return [
        HistoryEntry(
            transition=row.transition,
            from_state=row.from_state,
            to_state=row.to_state,
            actor=row.actor_name,
            comment=row.comment,
            at=row.at,
        )
        for row in workflow.history(session, object_type=object_type, object_id=object_id)
    ]


def history(session: Session, *, resource: Resource) -> list[HistoryEntry]:
    return transitions(session, object_type=Resource.__tablename__, object_id=resource.code)


def counts_by_state(session: Session, *, actor: Actor) -> dict[str, int]:
    rows = session.execute(
        select(Resource.state, func.count()).where(visible(actor)).group_by(Resource.state)
    )
    return {state: n for state, n in rows}


def stats(session: Session, *, actor: Actor) -> CatalogStats:
    """Counts for the cockpit: every state the actor may see, and published by attribute."""
    by_state = counts_by_state(session, actor=actor)

    def published_by(column: Any) -> dict[str, int]:
        rows = session.execute(
            select(column, func.count())
            .where(Resource.state == "published", visible(actor))
            .group_by(column)
        )
        return {key: n for key, n in rows}

    return CatalogStats(
        total=sum(by_state.values()),
        by_state=by_state,
        published_by_system=published_by(Resource.system),
        published_by_grade=published_by(Resource.grade),
        published_by_sharing=published_by(Resource.sharing),
    )
