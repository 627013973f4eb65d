"""Reads of the gateway's consumers, credentials, applications, grants and access log,
each limited to what the actor may see; anything else is reported as not found."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.orm import Session

from shuzhi.catalog.models import Resource
from shuzhi.catalog.queries import transitions
from shuzhi.catalog.schemas import HistoryEntry
from shuzhi.core import clock
from shuzhi.core.errors import Message, NotFound
from shuzhi.core.permissions import Actor, Scope, allowed, require
from shuzhi.gateway.models import AccessLog, Application, Consumer, Credential, Grant, Service
from shuzhi.gateway.rules import APPLICATION, GRANT
from shuzhi.gateway.schemas import (
    AccessLogPublic,
    ApplicationPublic,
    ConsumerPublic,
    CredentialIssued,
    CredentialPublic,
    GrantField,
    GrantPublic,
    ServicePublic,
)
from shuzhi.orgs.models import Department

# actions that let one see a consumer: its owners, and the platform's operators and auditors
CONSUMER_SIDE = ("gateway.apply", "gateway.manage_consumers")
OVERSIGHT = ("gateway.operate", "audit.read")


def consumer_scope(consumer: Consumer) -> Scope:
    return Scope(department_id=consumer.department_id, region_code=consumer.department.region_code)


def _oversees(actor: Actor) -> bool:
    return any(allowed(actor, action) for action in OVERSIGHT)


def held_on(actor: Actor, actions: tuple[str, ...], department: ColumnElement[int]) -> list:
    """Conditions on a department id column that match what ``actor`` holds ``actions`` on
    (region scopes are applied through the department's region)."""
    conditions: list[ColumnElement[bool]] = []
    for action in actions:
        for grant in actor.scopes_for(action):
            parts: list[ColumnElement[bool]] = [true()]
            if grant.departments is not None:
                parts.append(department.in_(sorted(grant.departments)))
            if grant.regions is not None:
                parts.append(
                    department.in_(
                        select(Department.id).where(
                            Department.region_code.in_(sorted(grant.regions))
                        )
                    )
                )
            conditions.append(and_(*parts))
    return conditions


def consumer_visible(actor: Actor) -> ColumnElement[bool]:
    if not actor.authenticated:
        return false()
    if _oversees(actor):
        return true()
    return or_(false(), *held_on(actor, CONSUMER_SIDE, Consumer.department_id))


def consumer(session: Session, *, actor: Actor, code: str) -> Consumer:
    found = session.scalar(select(Consumer).where(Consumer.code == code, consumer_visible(actor)))
    if found is None:
        raise NotFound(Message("no consumer {code!r}", code=code), field="consumer")
    return found


def consumers(session: Session, *, actor: Actor, department: str | None = None) -> list[Consumer]:
    stmt = select(Consumer).where(consumer_visible(actor)).order_by(Consumer.code)
    if department:
        stmt = stmt.join(Department, Department.id == Consumer.department_id).where(
            Department.code == department
        )
    return list(session.scalars(stmt))


def consumer_public(session: Session, item: Consumer) -> ConsumerPublic:
    live = session.scalar(
        select(func.count())
        .select_from(Credential)
        .where(Credential.consumer_id == item.id, Credential.revoked_at.is_(None))
    )
    return ConsumerPublic(
        code=item.code,
        name=item.name,
        department=item.department.code,
        department_name=item.department.name,
        description=item.description,
        contact=item.contact,
        active=item.active,
        created_by=item.created_by,
        created_at=item.created_at,
        credentials=live or 0,
    )


def credential_state(item: Any) -> str:
    """A credential's state (the model, or a call's view of it)."""
    if item.revoked_at is not None:
        return "revoked"
    if item.expires_at is not None:
        return "expired" if item.expires_at <= clock.now() else "rotating"
    return "active"


def credentials(session: Session, *, consumer: Consumer) -> list[Credential]:
    return list(
        session.scalars(
            select(Credential).where(Credential.consumer_id == consumer.id).order_by(Credential.id)
        )
    )


def credential_issued(item: Credential, secret: str) -> CredentialIssued:
    """The credential with its secret, for the one answer that may show it."""
    return CredentialIssued(**credential_public(item).model_dump(), secret=secret)


def credential_public(item: Credential) -> CredentialPublic:
    return CredentialPublic(
        id=item.id,
        consumer=item.consumer.code,
        access_key=item.access_key,
        state=credential_state(item),
        created_by=item.created_by,
        created_at=item.created_at,
        expires_at=item.expires_at,
        revoked_at=item.revoked_at,
        last_used_at=item.last_used_at,
    )


# -- applications and grants ------------------------------------------------------------


def _two_sided(actor: Actor, consumer_id: ColumnElement[int], resource_id: ColumnElement[int]):
    """Seen by the consumer's side and by the resource's provider side (and oversight)."""
    if not actor.authenticated:
        return false()
    if _oversees(actor):
        return true()
    consumer_side = held_on(actor, CONSUMER_SIDE, Consumer.department_id)
    provider_side = held_on(actor, ("gateway.decide",), Resource.provider_id)
    return or_(
        false(),
        consumer_id.in_(select(Consumer.id).where(or_(false(), *consumer_side))),
        resource_id.in_(select(Resource.id).where(or_(false(), *provider_side))),
    )


def application_visible(actor: Actor) -> ColumnElement[bool]:
    return _two_sided(actor, Application.consumer_id, Application.resource_id)


def grant_visible(actor: Actor) -> ColumnElement[bool]:
    return _two_sided(actor, Grant.consumer_id, Grant.resource_id)


def application(session: Session, *, actor: Actor, application_id: int) -> Application:
    found = session.scalar(
        select(Application).where(Application.id == application_id, application_visible(actor))
    )
    if found is None:
        raise NotFound(
            Message("no access application {application_id}", application_id=application_id),
            field="id",
        )
    return found


def _filtered(
    stmt: Select,
    model: type[Application] | type[Grant],
    *,
    state: str | None,
    consumer: str | None,
    resource: str | None,
) -> Select:
    if state:
        stmt = stmt.where(model.state == state)
    if consumer:
        stmt = stmt.where(
            model.consumer_id.in_(select(Consumer.id).where(Consumer.code == consumer))
        )
    if resource:
        stmt = stmt.where(
            model.resource_id.in_(select(Resource.id).where(Resource.code == resource))
        )
    return stmt


def applications(
    session: Session,
    *,
    actor: Actor,
    state: str | None = None,
    consumer: str | None = None,
    resource: str | None = None,
    awaiting_me: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Application], int]:
    """Applications the actor may see, newest first. ``awaiting_me``: those pending or
    escalated that the actor may decide (a provider's inbox)."""
    stmt = _filtered(
        select(Application).where(application_visible(actor)),
        Application,
        state=state,
        consumer=consumer,
        resource=resource,
    )
    if awaiting_me:
        provider_side = held_on(actor, ("gateway.decide",), Resource.provider_id)
        stmt = stmt.where(
            Application.state.in_(("pending", "escalated")),
            Application.resource_id.in_(select(Resource.id).where(or_(false(), *provider_side))),
        )
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Application.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def grant_of_application(session: Session, application_id: int) -> Grant | None:
    return session.scalar(select(Grant).where(Grant.application_id == application_id))


def application_public(session: Session, item: Application) -> ApplicationPublic:
    made = grant_of_application(session, item.id)
    return ApplicationPublic(
        id=item.id,
        consumer=item.consumer.code,
        consumer_name=item.consumer.name,
        consumer_department=item.consumer.department.code,
        resource=item.resource.code,
        resource_name=item.resource.name,
        provider=item.resource.provider.code,
        sharing=item.resource.sharing,
        fields=list(item.fields),
        clear_fields=list(item.clear_fields),
        rights=list(item.rights),
        purpose_code=item.purpose_code,
        purpose=item.purpose,
        legal_basis=item.legal_basis,
        region=item.region_code,
        valid_from=item.valid_from,
        valid_until=item.valid_until,
        state=item.state,
        state_label=APPLICATION.state_of(item).zh,
        due_at=item.due_at,
        overdue=item.state in ("pending", "escalated") and item.due_at < clock.now(),
        submitted_by=item.submitted_by,
        submitted_at=item.submitted_at,
        decided_by=item.decided_by,
        decided_at=item.decided_at,
        reason=item.reason,
        grant_id=made.id if made else None,
    )


def history(session: Session, *, object_type: str, object_id: int) -> list[HistoryEntry]:
    return transitions(session, object_type=object_type, object_id=str(object_id))


def grant(session: Session, *, actor: Actor, grant_id: int) -> Grant:
    found = session.scalar(select(Grant).where(Grant.id == grant_id, grant_visible(actor)))
    if found is None:
        raise NotFound(Message("no grant {grant_id}", grant_id=grant_id), field="id")
    return found


def grants(
    session: Session,
    *,
    actor: Actor,
    state: str | None = None,
    consumer: str | None = None,
    resource: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Grant], int]:
    stmt = _filtered(
        select(Grant).where(grant_visible(actor)),
        Grant,
        state=state,
        consumer=consumer,
        resource=resource,
    )
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Grant.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def live_grant(session: Session, *, consumer_id: int, resource_id: int) -> Grant | None:
    """The consumer's newest grant on the resource that is not revoked or expired."""
    return session.scalar(
        select(Grant)
        .where(
            Grant.consumer_id == consumer_id,
            Grant.resource_id == resource_id,
            Grant.state.in_(("active", "suspended")),
        )
        .order_by(Grant.id.desc())
        .limit(1)
    )


def grant_public(item: Grant) -> GrantPublic:
    by_name = {field.name: field for field in item.resource.fields}
    # the resource's order, then any field it no longer has: JSON keeps no key order
    names = [name for name in by_name if name in item.fields]
    names += [name for name in item.fields if name not in by_name]
    return GrantPublic(
        id=item.id,
        application_id=item.application_id,
        consumer=item.consumer.code,
        consumer_name=item.consumer.name,
        resource=item.resource.code,
        resource_name=item.resource.name,
        provider=item.resource.provider.code,
        fields=[
            GrantField(
                name=name,
                title=by_name[name].title if name in by_name else "",
                pii=by_name[name].pii if name in by_name else "none",
                mode=item.fields[name],
            )
            for name in names
        ],
        rights=list(item.rights),
        purpose_code=item.purpose_code,
        purpose=item.purpose,
        region=item.region_code,
        valid_from=item.valid_from,
        valid_until=item.valid_until,
        requests_per_second=item.requests_per_second,
        rows_per_day=item.rows_per_day,
        state=item.state,
        state_label=GRANT.state_of(item).zh,
        created_at=item.created_at,
    )


def in_force(item: Any, today: date) -> bool:
    """Whether a grant (the model, or any row with its state and validity) is in force."""
    return item.state == "active" and item.valid_from <= today <= item.valid_until


# -- the access log --------------------------------------------------------------------


def access_log(
    session: Session,
    *,
    actor: Actor,
    consumer: str | None = None,
    target: str | None = None,
    outcome: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AccessLog], int]:
    """The access log, newest first; needs ``audit.read`` over the whole platform."""
    require(actor, "audit.read", what=Message("the gateway access log"))
    stmt = select(AccessLog)
    if consumer:
        stmt = stmt.where(AccessLog.consumer_code == consumer)
    if target:
        stmt = stmt.where(AccessLog.target == target)
    if outcome:
        stmt = stmt.where(AccessLog.outcome == outcome)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(AccessLog.seq.desc()).limit(limit).offset(offset))
    return list(rows), total


def access_log_public(row: AccessLog) -> AccessLogPublic:
    return AccessLogPublic(
        seq=row.seq,
        at=row.at,
        request_id=row.request_id,
        consumer=row.consumer_code,
        access_key=row.access_key,
        end_user=row.end_user,
        purpose=row.purpose,
        operation=row.operation,
        target=row.target,
        grant_id=row.grant_id,
        method=row.method,
        path=row.path,
        fields=list(row.fields or []),
        masking=dict(row.masking or {}),
        rows=row.rows,
        status=row.status,
        outcome=row.outcome,
        latency_ms=row.latency_ms,
        response_sha256=row.response_sha256,
        hash=row.hash,
    )


# -- services ---------------------------------------------------------------------------


def services(session: Session, *, actor: Actor) -> list[Service]:
    """Services registered at the gateway, of published resources the actor may see."""
    from shuzhi.catalog.queries import visible

    return list(
        session.scalars(
            select(Service)
            .join(Resource, Resource.id == Service.resource_id)
            .where(visible(actor))
            .order_by(Resource.code)
        )
    )


def service(session: Session, *, actor: Actor, code: str) -> Service:
    from shuzhi.catalog.queries import get

    resource = get(session, actor=actor, code=code)
    found = session.scalar(select(Service).where(Service.resource_id == resource.id))
    if found is None:
        raise NotFound(
            Message("resource {code} has no service registered at the gateway", code=code)
        )
    return found


def service_public(item: Service) -> ServicePublic:
    return ServicePublic(
        code=item.resource.code,
        name=item.resource.name,
        provider=item.resource.provider.code,
        base_url=item.base_url,
        methods=list(item.methods),
        paths=list(item.paths),
        timeout_seconds=item.timeout_seconds,
        max_response_kb=item.max_response_kb,
        openapi=item.openapi,
        registered_by=item.registered_by,
        registered_at=item.registered_at,
    )
