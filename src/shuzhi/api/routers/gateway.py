"""Managing the gateway: consumers, credentials, applications, decisions, grants, and
the access log for auditors. Calls through the gateway itself are in ``gateway_calls``."""

from __future__ import annotations

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from shuzhi.api import PREFIX
from shuzhi.api.deps import ActorDep, DatabaseDep, IdPath, Offset, SessionDep
from shuzhi.catalog.schemas import HistoryEntry
from shuzhi.gateway import oversight, queries, service
from shuzhi.gateway.schemas import (
    AccessLogList,
    ApplicationCreate,
    ApplicationList,
    ApplicationPublic,
    ChainReport,
    ConsumerCreate,
    ConsumerList,
    ConsumerPublic,
    CredentialIssued,
    CredentialList,
    CredentialPublic,
    Decision,
    FlagList,
    GrantList,
    GrantPublic,
    ServiceCreate,
    ServiceList,
    ServicePublic,
    UsageReport,
)

router = APIRouter(prefix=f"{PREFIX}/gateway", tags=["gateway"])
audit_router = APIRouter(prefix=f"{PREFIX}/audit", tags=["audit"])

Limit = Query(100, ge=1, le=1000)


class Comment(BaseModel):
    comment: str | None = Field(None, max_length=2000)


# -- consumers and credentials ------------------------------------------------------------


@router.get("/consumers", response_model=ConsumerList)
def list_consumers(
    session: SessionDep, actor: ActorDep, department: str | None = None
) -> ConsumerList:
    found = queries.consumers(session, actor=actor, department=department)
    return ConsumerList(
        data=[queries.consumer_public(session, item) for item in found], count=len(found)
    )


@router.post("/consumers", response_model=ConsumerPublic, status_code=status.HTTP_201_CREATED)
def create_consumer(body: ConsumerCreate, database: DatabaseDep, actor: ActorDep) -> ConsumerPublic:
    with database.transaction() as session:
        consumer = service.create_consumer(session, actor=actor, data=body)
        return queries.consumer_public(session, consumer)


@router.get("/consumers/{code}", response_model=ConsumerPublic)
def get_consumer(code: str, session: SessionDep, actor: ActorDep) -> ConsumerPublic:
    return queries.consumer_public(session, queries.consumer(session, actor=actor, code=code))


def _switch(database: DatabaseDep, actor: ActorDep, code: str, active: bool) -> ConsumerPublic:
    with database.transaction() as session:
        consumer = service.set_consumer_active(session, actor=actor, code=code, active=active)
        return queries.consumer_public(session, consumer)


@router.post("/consumers/{code}/enable", response_model=ConsumerPublic)
def enable_consumer(code: str, database: DatabaseDep, actor: ActorDep) -> ConsumerPublic:
    return _switch(database, actor, code, True)


@router.post("/consumers/{code}/disable", response_model=ConsumerPublic)
def disable_consumer(code: str, database: DatabaseDep, actor: ActorDep) -> ConsumerPublic:
    """Stop every call of the consumer; its keys stay, refused."""
    return _switch(database, actor, code, False)


@router.get("/consumers/{code}/credentials", response_model=CredentialList)
def list_credentials(code: str, session: SessionDep, actor: ActorDep) -> CredentialList:
    consumer = queries.consumer(session, actor=actor, code=code)
    found = queries.credentials(session, consumer=consumer)
    return CredentialList(
        data=[queries.credential_public(item) for item in found], count=len(found)
    )


@router.post(
    "/consumers/{code}/credentials",
    response_model=CredentialIssued,
    status_code=status.HTTP_201_CREATED,
)
def issue_credential(code: str, database: DatabaseDep, actor: ActorDep) -> CredentialIssued:
    """A new access key and secret; the secret is in this answer only."""
    with database.transaction() as session:
        credential, secret = service.issue_credential(session, actor=actor, consumer=code)
        return queries.credential_issued(credential, secret)


@router.post(
    "/credentials/{access_key}/rotate",
    response_model=CredentialIssued,
    status_code=status.HTTP_201_CREATED,
)
def rotate_credential(access_key: str, database: DatabaseDep, actor: ActorDep) -> CredentialIssued:
    with database.transaction() as session:
        credential, secret = service.rotate_credential(session, actor=actor, access_key=access_key)
        return queries.credential_issued(credential, secret)


@router.post("/credentials/{access_key}/revoke", response_model=CredentialPublic)
def revoke_credential(access_key: str, database: DatabaseDep, actor: ActorDep) -> CredentialPublic:
    with database.transaction() as session:
        return queries.credential_public(
            service.revoke_credential(session, actor=actor, access_key=access_key)
        )


# -- services -------------------------------------------------------------------------------


@router.get("/services", response_model=ServiceList)
def list_services(session: SessionDep, actor: ActorDep) -> ServiceList:
    found = queries.services(session, actor=actor)
    return ServiceList(data=[queries.service_public(item) for item in found], count=len(found))


@router.get("/services/{code}", response_model=ServicePublic)
def get_service(code: str, session: SessionDep, actor: ActorDep) -> ServicePublic:
    return queries.service_public(queries.service(session, actor=actor, code=code))


@router.put("/services", response_model=ServicePublic)
def register_service(body: ServiceCreate, database: DatabaseDep, actor: ActorDep) -> ServicePublic:
    """Register a department's service behind the gateway (or change it)."""
    with database.transaction() as session:
        return queries.service_public(service.register_service(session, actor=actor, data=body))


# -- applications --------------------------------------------------------------------------


@router.get("/applications", response_model=ApplicationList)
def list_applications(
    session: SessionDep,
    actor: ActorDep,
    state: str | None = None,
    consumer: str | None = None,
    resource: str | None = None,
    inbox: bool = Query(False, description="only those awaiting the caller's decision"),
    limit: int = Limit,
    offset: Offset = 0,
) -> ApplicationList:
    found, total = queries.applications(
        session,
        actor=actor,
        state=state,
        consumer=consumer,
        resource=resource,
        awaiting_me=inbox,
        limit=limit,
        offset=offset,
    )
    return ApplicationList(
        data=[queries.application_public(session, item) for item in found], count=total
    )


@router.post("/applications", response_model=ApplicationPublic, status_code=status.HTTP_201_CREATED)
def apply(body: ApplicationCreate, database: DatabaseDep, actor: ActorDep) -> ApplicationPublic:
    """Apply for a resource; an unconditional one is granted at once."""
    with database.transaction() as session:
        return queries.application_public(session, service.apply(session, actor=actor, data=body))


@router.get("/applications/{application_id}", response_model=ApplicationPublic)
def get_application(
    application_id: IdPath, session: SessionDep, actor: ActorDep
) -> ApplicationPublic:
    item = queries.application(session, actor=actor, application_id=application_id)
    return queries.application_public(session, item)


@router.get("/applications/{application_id}/history", response_model=list[HistoryEntry])
def application_history(
    application_id: IdPath, session: SessionDep, actor: ActorDep
) -> list[HistoryEntry]:
    queries.application(session, actor=actor, application_id=application_id)
    return queries.history(session, object_type="gateway_application", object_id=application_id)


@router.get("/grants/{grant_id}/history", response_model=list[HistoryEntry])
def grant_history(grant_id: IdPath, session: SessionDep, actor: ActorDep) -> list[HistoryEntry]:
    queries.grant(session, actor=actor, grant_id=grant_id)
    return queries.history(session, object_type="gateway_grant", object_id=grant_id)


def _decide(
    database: DatabaseDep, actor: ActorDep, application_id: int, *, approve: bool, body: Decision
) -> ApplicationPublic:
    with database.transaction() as session:
        item = service.decide(
            session, actor=actor, application_id=application_id, approve=approve, decision=body
        )
        return queries.application_public(session, item)


@router.post("/applications/{application_id}/approve", response_model=ApplicationPublic)
def approve(
    application_id: IdPath, database: DatabaseDep, actor: ActorDep, body: Decision | None = None
) -> ApplicationPublic:
    return _decide(database, actor, application_id, approve=True, body=body or Decision())


@router.post("/applications/{application_id}/reject", response_model=ApplicationPublic)
def reject(
    application_id: IdPath, database: DatabaseDep, actor: ActorDep, body: Decision | None = None
) -> ApplicationPublic:
    """Reject with ``{"comment": "the reason"}``; a reason is required."""
    return _decide(database, actor, application_id, approve=False, body=body or Decision())


@router.post("/applications/{application_id}/withdraw", response_model=ApplicationPublic)
def withdraw(application_id: IdPath, database: DatabaseDep, actor: ActorDep) -> ApplicationPublic:
    with database.transaction() as session:
        item = service.withdraw(session, actor=actor, application_id=application_id)
        return queries.application_public(session, item)


# -- grants ----------------------------------------------------------------------------------


@router.get("/grants", response_model=GrantList)
def list_grants(
    session: SessionDep,
    actor: ActorDep,
    state: str | None = None,
    consumer: str | None = None,
    resource: str | None = None,
    limit: int = Limit,
    offset: Offset = 0,
) -> GrantList:
    found, total = queries.grants(
        session,
        actor=actor,
        state=state,
        consumer=consumer,
        resource=resource,
        limit=limit,
        offset=offset,
    )
    return GrantList(data=[queries.grant_public(item) for item in found], count=total)


@router.get("/grants/{grant_id}", response_model=GrantPublic)
def get_grant(grant_id: IdPath, session: SessionDep, actor: ActorDep) -> GrantPublic:
    return queries.grant_public(queries.grant(session, actor=actor, grant_id=grant_id))


@router.post("/grants/{grant_id}/{action}", response_model=GrantPublic)
def change_grant(
    grant_id: IdPath,
    action: str,
    database: DatabaseDep,
    actor: ActorDep,
    body: Comment | None = None,
) -> GrantPublic:
    """``suspend`` (a comment is required), ``resume`` or ``revoke`` (comment required)."""
    with database.transaction() as session:
        item = service.change_grant(
            session,
            actor=actor,
            grant_id=grant_id,
            name=action,
            comment=body.comment if body else None,
        )
        return queries.grant_public(item)


# -- usage and the access log --------------------------------------------------------


@router.get("/usage", response_model=UsageReport)
def usage(
    session: SessionDep,
    actor: ActorDep,
    days: int = Query(30, ge=1, le=366),
    consumer: str | None = None,
    resource: str | None = None,
) -> UsageReport:
    """Calls, refusals and rows by day, consumer, resource and purpose: all of them for
    auditors, otherwise those of the caller's systems and on its department's resources."""
    return oversight.usage(session, actor=actor, days=days, consumer=consumer, target=resource)


@audit_router.get("/access-log/flags", response_model=FlagList)
def access_log_flags(
    session: SessionDep, actor: ActorDep, days: int = Query(14, ge=1, le=92)
) -> FlagList:
    """Patterns worth an auditor's look, each explaining itself."""
    return oversight.flags(session, actor=actor, days=days)


@audit_router.get("/access-log", response_model=AccessLogList)
def access_log(
    session: SessionDep,
    actor: ActorDep,
    consumer: str | None = None,
    target: str | None = Query(None, description="resource or service code"),
    outcome: str | None = Query(None, description="ok, or the problem type of a refusal"),
    limit: int = Limit,
    offset: Offset = 0,
) -> AccessLogList:
    rows, total = queries.access_log(
        session,
        actor=actor,
        consumer=consumer,
        target=target,
        outcome=outcome,
        limit=limit,
        offset=offset,
    )
    return AccessLogList(data=[queries.access_log_public(row) for row in rows], count=total)


@audit_router.get("/access-log/verify", response_model=ChainReport)
def verify_access_log(session: SessionDep, actor: ActorDep) -> ChainReport:
    """Walk the hash chain; ``intact`` false names the first entry that does not match."""
    result = service.verify_chain(session, actor=actor)
    return ChainReport(
        intact=result.intact,
        entries=result.entries,
        first_bad=result.first_bad,
        reason=result.reason,
    )
