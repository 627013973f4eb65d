"""Gateway use cases: consumers and their credentials, access applications and the
decisions that turn them into grants, and the background jobs that keep both current."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shuzhi.catalog import queries as catalog_queries
from shuzhi.catalog.models import Resource
from shuzhi.core import audit, clock
from shuzhi.core.calendar import add_working_days
from shuzhi.core.db import Database
from shuzhi.core.errors import Conflict, Message, NotFound, ValidationFailed
from shuzhi.core.permissions import SYSTEM, Actor, require
from shuzhi.core.plugins import Job, hookimpl
from shuzhi.core.settings import Settings, get_settings
from shuzhi.gateway import ledger, queries
from shuzhi.gateway.masking import mode_for
from shuzhi.gateway.models import (
    Application,
    Consumer,
    Credential,
    Grant,
    Nonce,
    Service,
    Usage,
)
from shuzhi.gateway.rules import (
    ACCESS_KEY_PREFIX,
    APPLICATION,
    GRANT,
    HTTP_METHODS,
    CredentialState,
    NotShared,
    Right,
)
from shuzhi.gateway.schemas import ApplicationCreate, ConsumerCreate, Decision, ServiceCreate
from shuzhi.notify import service as notify
from shuzhi.orgs import queries as orgs_queries
from shuzhi.regions import queries as regions

# -- consumers and credentials ---------------------------------------------------------


def create_consumer(session: Session, *, actor: Actor, data: ConsumerCreate) -> Consumer:
    department = orgs_queries.department(session, data.department)
    require(
        actor,
        "gateway.manage_consumers",
        orgs_queries.department_scope(department),
        what=Message("department {code}", code=department.code),
    )
    if session.scalar(select(Consumer.id).where(Consumer.code == data.code)) is not None:
        raise Conflict(Message("consumer {code!r} already exists", code=data.code), field="code")
    consumer = Consumer(
        code=data.code,
        name=data.name,
        department_id=department.id,
        description=data.description,
        contact=data.contact,
        active=True,
        created_by=actor.name,
        created_at=clock.now(),
    )
    session.add(consumer)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="gateway_consumer.create",
        object_type="gateway_consumer",
        object_id=consumer.code,
        object_repr=consumer.name,
        after=audit.snapshot(consumer),
    )
    return consumer


def _managed(session: Session, *, actor: Actor, code: str) -> Consumer:
    consumer = queries.consumer(session, actor=actor, code=code)
    require(
        actor,
        "gateway.manage_consumers",
        queries.consumer_scope(consumer),
        what=Message("consumer {code}", code=code),
    )
    return consumer


def set_consumer_active(session: Session, *, actor: Actor, code: str, active: bool) -> Consumer:
    consumer = _managed(session, actor=actor, code=code)
    before = consumer.active
    consumer.active = active
    audit.record(
        session,
        actor=actor,
        action="gateway_consumer.enable" if active else "gateway_consumer.disable",
        object_type="gateway_consumer",
        object_id=code,
        object_repr=consumer.name,
        before={"active": before},
        after={"active": active},
    )
    return consumer


def derive_secret(secret_key: bytes, *, access_key: str, salt: str) -> str:
    """The secret of a credential, computed from the platform key: the database alone
    cannot give it back, and the server needs no copy of it."""
    mac = hmac.new(
        secret_key, f"gateway-credential\n{access_key}\n{salt}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _issue(
    session: Session, *, actor: Actor, consumer: Consumer, settings: Settings
) -> tuple[Credential, str]:
    access_key = ACCESS_KEY_PREFIX + secrets.token_hex(10).upper()
    salt = secrets.token_hex(16)
    credential = Credential(
        consumer_id=consumer.id,
        access_key=access_key,
        salt=salt,
        created_by=actor.name,
        created_at=clock.now(),
    )
    session.add(credential)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="gateway_credential.create",
        object_type="gateway_credential",
        object_id=access_key,
        object_repr=consumer.code,
    )
    return credential, derive_secret(settings.secret(), access_key=access_key, salt=salt)


def issue_credential(
    session: Session, *, actor: Actor, consumer: str, settings: Settings | None = None
) -> tuple[Credential, str]:
    """A new access key and its secret; the secret is returned this once."""
    owner = _managed(session, actor=actor, code=consumer)
    return _issue(session, actor=actor, consumer=owner, settings=settings or get_settings())


def _credential(session: Session, *, actor: Actor, access_key: str) -> Credential:
    credential = session.scalar(select(Credential).where(Credential.access_key == access_key))
    if credential is None:
        raise NotFound(
            Message("no credential {access_key!r}", access_key=access_key), field="access_key"
        )
    _managed(session, actor=actor, code=credential.consumer.code)
    return credential


def rotate_credential(
    session: Session, *, actor: Actor, access_key: str, settings: Settings | None = None
) -> tuple[Credential, str]:
    """A new credential for the same consumer; the old one keeps working for the overlap
    window (setting ``gateway.credential_overlap_hours``) so that callers can switch."""
    settings = settings or get_settings()
    old = _credential(session, actor=actor, access_key=access_key)
    state = queries.credential_state(old)
    if state not in ("active", "rotating"):
        raise Conflict(
            Message(
                "credential {access_key} is {credential_state}",
                access_key=access_key,
                credential_state=state,
                state_label=CredentialState(state).zh,
            )
        )
    overlap_ends = clock.now() + timedelta(hours=settings.gateway.credential_overlap_hours)
    if old.expires_at is None or old.expires_at > overlap_ends:
        old.expires_at = overlap_ends
    audit.record(
        session,
        actor=actor,
        action="gateway_credential.rotate",
        object_type="gateway_credential",
        object_id=access_key,
        object_repr=old.consumer.code,
        after={"expires_at": old.expires_at},
    )
    return _issue(session, actor=actor, consumer=old.consumer, settings=settings)


def revoke_credential(session: Session, *, actor: Actor, access_key: str) -> Credential:
    credential = _credential(session, actor=actor, access_key=access_key)
    if credential.revoked_at is not None:
        raise Conflict(Message("credential {access_key} is already revoked", access_key=access_key))
    credential.revoked_at = clock.now()
    audit.record(
        session,
        actor=actor,
        action="gateway_credential.revoke",
        object_type="gateway_credential",
        object_id=access_key,
        object_repr=credential.consumer.code,
        after={"revoked_at": credential.revoked_at},
    )
    return credential


# -- applications ----------------------------------------------------------------------


def _region_within(session: Session, inner: str, outer: str) -> bool:
    return regions.get(session, inner).path.startswith(regions.get(session, outer).path)


def region_field(resource: Any) -> str | None:
    """The field rows are scoped by: the resource's (or a call's view of it) first field
    holding region codes."""
    for field in resource.fields:
        if field.format == "region_code":
            return field.name
    return None


def _check_region(session: Session, *, consumer: Consumer, resource: Resource, region: str) -> None:
    regions.get(session, region)
    home = consumer.department.region_code
    if not _region_within(session, region, home):
        raise ValidationFailed(
            Message(
                "region {region} is outside the consumer's region {home}", region=region, home=home
            ),
            field="region",
        )
    if _region_within(session, resource.region_code, region):
        return  # the scope covers the whole resource
    if not _region_within(session, region, resource.region_code):
        raise ValidationFailed(
            Message(
                "region {region} does not overlap resource {code}'s region {region_code}",
                region=region,
                code=resource.code,
                region_code=resource.region_code,
            ),
            field="region",
        )
    if region_field(resource) is None:
        raise ValidationFailed(
            Message(
                "resource {code} has no region field, so it can only be "
                "granted for its whole region {region_code}",
                code=resource.code,
                region_code=resource.region_code,
            ),
            field="region",
        )


def _check_fields(resource: Resource, data: ApplicationCreate) -> tuple[list[str], list[str]]:
    known = {field.name: field for field in resource.fields}
    fields = list(dict.fromkeys(data.fields))
    unknown = [name for name in fields + data.clear_fields if name not in known]
    if unknown:
        raise ValidationFailed(
            Message(
                "resource {code} has no field {unknown_item!r}",
                code=resource.code,
                unknown_item=unknown[0],
            ),
            field="fields",
        )
    outside = [name for name in data.clear_fields if name not in fields]
    if outside:
        raise ValidationFailed(
            Message(
                "{outside_item!r} is asked in clear but not among the fields",
                outside_item=outside[0],
            ),
            field="clear_fields",
        )
    # a field that is not personal is sent in clear anyway
    clear = [name for name in dict.fromkeys(data.clear_fields) if known[name].pii != "none"]
    return fields, clear


MAX_GRANT_DAYS = 5 * 365


def apply(
    session: Session,
    *,
    actor: Actor,
    data: ApplicationCreate,
    settings: Settings | None = None,
) -> Application:
    """Apply for a resource. Unconditional resources are granted at once when no personal
    field is asked in clear; everything else waits for the provider's decision."""
    settings = settings or get_settings()
    consumer = queries.consumer(session, actor=actor, code=data.consumer)
    require(
        actor,
        "gateway.apply",
        queries.consumer_scope(consumer),
        what=Message("consumer {code}", code=consumer.code),
    )
    if not consumer.active:
        raise Conflict(Message("consumer {code} is disabled", code=consumer.code))
    resource = catalog_queries.get(session, actor=actor, code=data.resource)
    if resource.state != "published":
        raise Conflict(
            Message("resource {code} is not published", code=resource.code), field="resource"
        )
    if resource.sharing == "none":
        raise NotShared(
            Message(
                "resource {code} is 不予共享 (not shared) and cannot be applied for",
                code=resource.code,
            )
        )
    rights = list(dict.fromkeys(str(right) for right in data.rights))
    if resource.grade == "L4" and (Right.read in rights or Right.call in rights):
        raise NotShared(
            Message(
                "resource {code} is graded L4 and never leaves the platform; "
                "only verification can be applied for",
                code=resource.code,
            )
        )
    if Right.call in rights and registered_service(session, resource.id) is None:
        raise ValidationFailed(
            Message(
                "resource {code} has no service registered at the gateway to call",
                code=resource.code,
            ),
            field="rights",
        )
    fields, clear = _check_fields(resource, data)
    if not fields and rights != [Right.call]:
        raise ValidationFailed(Message("name the fields to read or verify"), field="fields")
    region = data.region or consumer.department.region_code
    _check_region(session, consumer=consumer, resource=resource, region=region)
    today = clock.now().date()
    valid_from = data.valid_from or today
    try:
        valid_until = data.valid_until or valid_from + timedelta(days=settings.gateway.grant_days)
    except OverflowError:
        raise ValidationFailed(
            Message("valid_from is beyond any calendar"), field="valid_from"
        ) from None
    if (valid_until - valid_from).days > MAX_GRANT_DAYS:
        raise ValidationFailed(
            Message(
                "a grant lasts at most {value} years; apply again when it ends",
                value=MAX_GRANT_DAYS // 365,
            ),
            field="valid_until",
        )
    if valid_until < valid_from or valid_until < today:
        raise ValidationFailed(
            Message("valid_until must be today or later, and not before valid_from"),
            field="valid_until",
        )
    waiting = session.scalar(
        select(Application.id).where(
            Application.consumer_id == consumer.id,
            Application.resource_id == resource.id,
            Application.state.in_(("pending", "escalated")),
        )
    )
    if waiting is not None:
        raise Conflict(
            Message(
                "consumer {code} already has application {waiting} for {code2} awaiting a decision",
                code=consumer.code,
                waiting=waiting,
                code2=resource.code,
            )
        )
    now = clock.now()
    application = Application(
        consumer_id=consumer.id,
        resource_id=resource.id,
        fields=fields,
        clear_fields=clear,
        rights=rights,
        purpose_code=data.purpose_code,
        purpose=data.purpose,
        legal_basis=data.legal_basis,
        region_code=region,
        valid_from=valid_from,
        valid_until=valid_until,
        due_at=add_working_days(now, settings.gateway.decision_days),
        submitted_by=actor.name,
        submitted_at=now,
    )
    session.add(application)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="gateway_application.create",
        object_type="gateway_application",
        object_id=application.id,
        object_repr=f"{consumer.code} → {resource.code}",
        after=audit.snapshot(application),
    )
    if resource.sharing == "unconditional" and not clear:
        _approve(
            session,
            actor=SYSTEM,
            application=application,
            decision=Decision(comment="无条件共享: granted after the checks"),
            settings=settings,
        )
    return application


def _approve(
    session: Session,
    *,
    actor: Actor,
    application: Application,
    decision: Decision,
    settings: Settings,
) -> Grant:
    resource = application.resource
    approved_clear = (
        set(application.clear_fields)
        if decision.clear_fields is None
        else set(decision.clear_fields)
    )
    beyond = approved_clear - set(application.clear_fields)
    if beyond:
        raise ValidationFailed(
            Message(
                "{value!r} was not asked in clear; only asked fields can be approved",
                value=sorted(beyond)[0],
            ),
            field="clear_fields",
        )
    APPLICATION.fire(
        session,
        application,
        "approve",
        actor=actor,
        scope=catalog_queries.scope_of(resource),
        object_id=str(application.id),
        comment=decision.comment,
    )
    application.decided_by = actor.name
    application.decided_at = clock.now()
    application.reason = decision.comment
    kinds = {field.name: field.pii for field in resource.fields}
    previous = queries.live_grant(
        session, consumer_id=application.consumer_id, resource_id=resource.id
    )
    grant = Grant(
        application_id=application.id,
        consumer_id=application.consumer_id,
        resource_id=resource.id,
        fields={
            name: str(
                mode_for(
                    pii=kinds[name],
                    grade=resource.grade,
                    approved_clear=name in approved_clear,
                    settings=settings.gateway,
                )
            )
            for name in application.fields
        },
        rights=list(application.rights),
        purpose_code=application.purpose_code,
        purpose=application.purpose,
        region_code=application.region_code,
        valid_from=application.valid_from,
        valid_until=application.valid_until,
        requests_per_second=decision.requests_per_second or settings.gateway.requests_per_second,
        rows_per_day=decision.rows_per_day or settings.gateway.rows_per_day,
        created_at=clock.now(),
    )
    session.add(grant)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="gateway_grant.create",
        object_type="gateway_grant",
        object_id=grant.id,
        object_repr=f"{application.consumer.code} → {resource.code}",
        after=audit.snapshot(grant),
    )
    if previous is not None:
        GRANT.fire(
            session,
            previous,
            "revoke",
            actor=SYSTEM,
            scope=catalog_queries.scope_of(resource),
            object_id=str(previous.id),
            comment=f"superseded by grant {grant.id}",
        )
    return grant


def decide(
    session: Session,
    *,
    actor: Actor,
    application_id: int,
    approve: bool,
    decision: Decision,
    settings: Settings | None = None,
) -> Application:
    """The provider's decision: approve (making a grant) or reject with a reason."""
    application = queries.application(session, actor=actor, application_id=application_id)
    if approve:
        _approve(
            session,
            actor=actor,
            application=application,
            decision=decision,
            settings=settings or get_settings(),
        )
    else:
        APPLICATION.fire(
            session,
            application,
            "reject",
            actor=actor,
            scope=catalog_queries.scope_of(application.resource),
            object_id=str(application.id),
            comment=decision.comment,
        )
        application.decided_by = actor.name
        application.decided_at = clock.now()
        application.reason = decision.comment
    session.flush()
    return application


def withdraw(session: Session, *, actor: Actor, application_id: int) -> Application:
    application = queries.application(session, actor=actor, application_id=application_id)
    APPLICATION.fire(
        session,
        application,
        "withdraw",
        actor=actor,
        scope=queries.consumer_scope(application.consumer),
        object_id=str(application.id),
    )
    return application


def change_grant(
    session: Session, *, actor: Actor, grant_id: int, name: str, comment: str | None = None
) -> Grant:
    """Suspend, resume or revoke a grant (the provider's side decides)."""
    grant = queries.grant(session, actor=actor, grant_id=grant_id)
    if name not in ("suspend", "resume", "revoke"):
        raise ValidationFailed(Message("unknown grant action {name!r}", name=name), field="action")
    GRANT.fire(
        session,
        grant,
        name,
        actor=actor,
        scope=catalog_queries.scope_of(grant.resource),
        object_id=str(grant.id),
        comment=comment,
    )
    return grant


# -- services ------------------------------------------------------------------------


def registered_service(session: Session, resource_id: int) -> Service | None:
    return session.scalar(select(Service).where(Service.resource_id == resource_id))


def _host_allowed(host: str, port: int | None, allowed_hosts: list[str]) -> bool:
    for entry in allowed_hosts:
        name, _, wanted = entry.strip().lower().partition(":")
        if name == host.lower() and (not wanted or (port is not None and wanted == str(port))):
            return True
    return False


def _check_service(data: ServiceCreate, settings: Settings) -> tuple[str, list[str], list[str]]:
    url = urlsplit(data.base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValidationFailed(
            Message("base_url must be an http:// or https:// URL"), field="base_url"
        )
    if url.query or url.fragment or url.username or url.password:
        raise ValidationFailed(
            Message("base_url takes no query, fragment or credentials"), field="base_url"
        )
    try:
        port = url.port
    except ValueError:
        raise ValidationFailed(Message("base_url has an invalid port"), field="base_url") from None
    if not _host_allowed(url.hostname, port, settings.gateway.service_hosts):
        where = f"{url.hostname}:{port}" if port else url.hostname
        raise ValidationFailed(
            Message(
                "{where} is not on the operator's allow-list of service "
                "hosts (SHUZHI_GATEWAY__SERVICE_HOSTS)",
                where=where,
            ),
            field="base_url",
        )
    methods = list(dict.fromkeys(method.upper() for method in data.methods))
    unknown = [method for method in methods if method not in HTTP_METHODS]
    if unknown:
        raise ValidationFailed(
            Message(
                "method {unknown_item!r} is not one of {join}",
                unknown_item=unknown[0],
                join=", ".join(HTTP_METHODS),
            ),
            field="methods",
        )
    paths = list(dict.fromkeys(data.paths))
    for path in paths:
        if not path.startswith("/") or ".." in path or any(c in path for c in "?#\\ "):
            raise ValidationFailed(
                Message(
                    "path pattern {path!r} must start with / and hold no .., ?, # or spaces",
                    path=path,
                ),
                field="paths",
            )
    return data.base_url.rstrip("/"), methods, paths


def register_service(
    session: Session, *, actor: Actor, data: ServiceCreate, settings: Settings | None = None
) -> Service:
    """Put a department's service behind the gateway, or change how it is reached."""
    settings = settings or get_settings()
    resource = catalog_queries.get(session, actor=actor, code=data.resource)
    require(
        actor,
        "gateway.services",
        catalog_queries.scope_of(resource),
        what=Message("resource {code}", code=resource.code),
    )
    if resource.state != "published":
        raise Conflict(
            Message("resource {code} is not published", code=resource.code), field="resource"
        )
    base_url, methods, paths = _check_service(data, settings)
    found = registered_service(session, resource.id)
    before = audit.snapshot(found) if found else None
    if found is None:
        found = Service(resource_id=resource.id)
        session.add(found)
    found.base_url = base_url
    found.methods = methods
    found.paths = paths
    found.timeout_seconds = data.timeout_seconds
    found.max_response_kb = data.max_response_kb
    found.openapi = data.openapi
    found.registered_by = actor.name
    found.registered_at = clock.now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="gateway_service.register",
        object_type="gateway_service",
        object_id=resource.code,
        object_repr=resource.name,
        before=before,
        after=audit.snapshot(found),
    )
    return found


# -- background jobs -------------------------------------------------------------------


def escalate_overdue(db: Database, _worker: str = "") -> int:
    """Pending applications past their decision deadline go to the platform operator:
    escalated, and a notice in the inbox of everyone who runs the gateway."""
    with db.transaction() as session:
        overdue = list(
            session.scalars(
                select(Application).where(
                    Application.state == "pending", Application.due_at < clock.now()
                )
            )
        )
        operators = orgs_queries.users_who(session, "gateway.operate", None) if overdue else []
        for application in overdue:
            APPLICATION.fire(
                session,
                application,
                "escalate",
                actor=SYSTEM,
                scope=None,
                object_id=str(application.id),
                comment=f"no decision by {application.due_at:%Y-%m-%d %H:%M} UTC",
            )
            notify.notify(
                session,
                user_ids=operators,
                key=f"gateway_application:{application.id}:escalated",
                kind="application_escalated",
                title=(
                    f"共享申请 #{application.id}（{application.consumer.name} 申请"
                    f"{application.resource.name}）逾期未决，请督办"
                ),
                body=application.purpose,
                link=f"/gateway/applications/{application.id}",
                object_type="gateway_application",
                object_id=str(application.id),
            )
    return len(overdue)


def expire_grants(db: Database, _worker: str = "") -> int:
    today: date = clock.now().date()
    with db.transaction() as session:
        ended = list(
            session.scalars(
                select(Grant).where(
                    Grant.state.in_(("active", "suspended")), Grant.valid_until < today
                )
            )
        )
        for grant in ended:
            GRANT.fire(
                session,
                grant,
                "expire",
                actor=SYSTEM,
                scope=None,
                object_id=str(grant.id),
                comment=f"valid until {grant.valid_until}",
            )
    return len(ended)


def prune_counters(db: Database, _worker: str = "", *, settings: Settings | None = None) -> int:
    """Forget nonces older than twice the skew window and per-second counters older than
    an hour; daily counters stay for the usage statistics."""
    settings = settings or get_settings()
    now = clock.now()
    nonce_horizon = now - timedelta(seconds=2 * settings.gateway.clock_skew_seconds)
    second_horizon = f"s:{int((now - timedelta(hours=1)).timestamp()):012d}"
    with db.transaction() as session:
        nonces = session.execute(delete(Nonce).where(Nonce.seen_at < nonce_horizon)).rowcount
        seconds = session.execute(
            delete(Usage).where(Usage.window.startswith("s:"), Usage.window < second_horizon)
        ).rowcount
    return (nonces or 0) + (seconds or 0)


@hookimpl
def shuzhi_jobs() -> list[Job]:
    return [
        Job("gateway.escalate", escalate_overdue),
        Job("gateway.expire", expire_grants),
        Job("gateway.prune", prune_counters),
    ]


def verify_chain(session: Session, *, actor: Actor) -> ledger.Verification:
    require(actor, "audit.read", what=Message("the gateway access log"))
    return ledger.verify(session)
