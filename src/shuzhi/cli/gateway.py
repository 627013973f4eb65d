"""`shuzhi gateway` and `shuzhi audit`: consumers, credentials, applications, grants, and
the gateway's access log."""

from __future__ import annotations

import json as jsonlib
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from shuzhi.cli.common import JsonOption, print_json, print_table, reading, writing
from shuzhi.core.errors import ValidationFailed
from shuzhi.gateway import oversight, queries, service
from shuzhi.gateway.schemas import (
    ApplicationCreate,
    ConsumerCreate,
    CredentialIssued,
    Decision,
    ServiceCreate,
)

app = typer.Typer(help="The sharing gateway (数据共享网关).", no_args_is_help=True)
consumers_app = typer.Typer(help="Application systems that call the gateway.", no_args_is_help=True)
credentials_app = typer.Typer(help="Access keys of consumers.", no_args_is_help=True)
app.add_typer(consumers_app, name="consumers")
app.add_typer(credentials_app, name="credentials")
services_app = typer.Typer(
    help="Department services behind the gateway (业务协同).", no_args_is_help=True
)
app.add_typer(services_app, name="services")
audit_app = typer.Typer(help="The gateway's hash-chained access log.", no_args_is_help=True)

Consumer = Annotated[str, typer.Argument(help="Consumer code.")]
AccessKey = Annotated[str, typer.Argument(help="Access key.")]
ApplicationId = Annotated[int, typer.Argument(min=1, help="Application id.")]
GrantId = Annotated[int, typer.Argument(min=1, help="Grant id.")]
Reason = Annotated[str, typer.Option("--reason", help="Why (required).")]


def _day(text: str | None, option: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            f"--{option} {text!r} is not a date (YYYY-MM-DD)", field=option
        ) from None


def _names(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


# -- consumers --------------------------------------------------------------------------


@consumers_app.command("list")
def list_consumers(
    department: str = typer.Option(None, help="Only this department's."),
    json: JsonOption = False,
) -> None:
    """Consumers the caller may see."""
    with reading() as (session, actor):
        rows = [
            queries.consumer_public(session, item)
            for item in queries.consumers(session, actor=actor, department=department)
        ]
    if json:
        print_json({"data": rows, "count": len(rows)})
        return
    print_table(
        [(r.code, r.name, r.department, "yes" if r.active else "no", r.credentials) for r in rows],
        ["code", "name", "department", "active", "keys"],
    )


@consumers_app.command("add")
def add_consumer(
    code: Consumer,
    name: str = typer.Option(..., help="Name of the application system."),
    department: str = typer.Option(..., help="Code of the owning department."),
    description: str = typer.Option("", help="What the system does."),
    contact: str = typer.Option("", help="Who runs it."),
    json: JsonOption = False,
) -> None:
    """Register an application system of a department."""
    data = ConsumerCreate(
        code=code, name=name, department=department, description=description, contact=contact
    )
    with writing() as (session, actor):
        public = queries.consumer_public(
            session, service.create_consumer(session, actor=actor, data=data)
        )
    if json:
        print_json(public)
        return
    typer.echo(f"consumer {public.code} registered for {public.department}")


def _switch(code: str, active: bool, json: bool) -> None:
    with writing() as (session, actor):
        public = queries.consumer_public(
            session, service.set_consumer_active(session, actor=actor, code=code, active=active)
        )
    if json:
        print_json(public)
        return
    typer.echo(f"consumer {code} {'enabled' if active else 'disabled'}")


@consumers_app.command("disable")
def disable_consumer(code: Consumer, json: JsonOption = False) -> None:
    """Stop every call of a consumer (its keys stay, refused)."""
    _switch(code, False, json)


@consumers_app.command("enable")
def enable_consumer(code: Consumer, json: JsonOption = False) -> None:
    """Let a disabled consumer call again."""
    _switch(code, True, json)


# -- credentials ------------------------------------------------------------------------


def _print_issued(issued: CredentialIssued, json: bool) -> None:
    if json:
        print_json(issued)
        return
    typer.echo(f"access key  {issued.access_key}")
    typer.echo(f"secret      {issued.secret}")
    typer.echo("The secret is shown this once; keep it in the consumer's secret store.")


@credentials_app.command("list")
def list_credentials(consumer: Consumer, json: JsonOption = False) -> None:
    """A consumer's access keys and their state (secrets are never shown again)."""
    with reading() as (session, actor):
        owner = queries.consumer(session, actor=actor, code=consumer)
        rows = [
            queries.credential_public(item) for item in queries.credentials(session, consumer=owner)
        ]
    if json:
        print_json({"data": rows, "count": len(rows)})
        return
    print_table(
        [(r.access_key, r.state, r.created_at, r.expires_at, r.last_used_at) for r in rows],
        ["access key", "state", "created", "expires", "last used"],
    )


@credentials_app.command("issue")
def issue_credential(consumer: Consumer, json: JsonOption = False) -> None:
    """A new access key and secret for a consumer."""
    with writing() as (session, actor):
        credential, secret = service.issue_credential(session, actor=actor, consumer=consumer)
        issued = queries.credential_issued(credential, secret)
    _print_issued(issued, json)


@credentials_app.command("rotate")
def rotate_credential(access_key: AccessKey, json: JsonOption = False) -> None:
    """A new key for the same consumer; the old one works until the overlap ends."""
    with writing() as (session, actor):
        credential, secret = service.rotate_credential(session, actor=actor, access_key=access_key)
        issued = queries.credential_issued(credential, secret)
    _print_issued(issued, json)


@credentials_app.command("revoke")
def revoke_credential(access_key: AccessKey, json: JsonOption = False) -> None:
    """Refuse every call made with this key from now on."""
    with writing() as (session, actor):
        public = queries.credential_public(
            service.revoke_credential(session, actor=actor, access_key=access_key)
        )
    if json:
        print_json(public)
        return
    typer.echo(f"credential {access_key} revoked")


# -- applications -----------------------------------------------------------------------


@app.command()
def apply(
    consumer: str = typer.Option(..., help="Consumer code."),
    resource: str = typer.Option(..., help="Resource code."),
    fields: str = typer.Option(..., help="Comma-separated fields."),
    clear: str = typer.Option(None, help="Comma-separated personal fields asked in clear."),
    rights: str = typer.Option("read", help="read, verify, or read,verify."),
    matter: str = typer.Option(..., help="Administrative matter code (事项编码)."),
    purpose: str = typer.Option(..., help="What the data is for."),
    basis: str = typer.Option(..., help="Legal basis."),
    region: str = typer.Option(None, help="Region scope; the consumer's region if absent."),
    valid_from: str = typer.Option(None, "--from", help="First day (YYYY-MM-DD)."),
    valid_until: str = typer.Option(None, "--until", help="Last day (YYYY-MM-DD)."),
    json: JsonOption = False,
) -> None:
    """Apply for a resource; an unconditional one is granted at once."""
    data = ApplicationCreate(
        consumer=consumer,
        resource=resource,
        fields=_names(fields),
        clear_fields=_names(clear),
        rights=_names(rights),
        purpose_code=matter,
        purpose=purpose,
        legal_basis=basis,
        region=region,
        valid_from=_day(valid_from, "from"),
        valid_until=_day(valid_until, "until"),
    )
    with writing() as (session, actor):
        public = queries.application_public(session, service.apply(session, actor=actor, data=data))
    if json:
        print_json(public)
        return
    typer.echo(f"application {public.id}: {public.state_label} ({public.state})")
    if public.grant_id:
        typer.echo(f"grant {public.grant_id} made")
    else:
        typer.echo(f"awaiting {public.provider}'s decision by {public.due_at:%Y-%m-%d %H:%M} UTC")


@app.command()
def applications(
    application_id: int = typer.Argument(None, min=1, help="Show this one, with its history."),
    state: str = typer.Option(None, help="pending, escalated, approved, rejected, withdrawn."),
    consumer: str = typer.Option(None, help="Consumer code."),
    resource: str = typer.Option(None, help="Resource code."),
    inbox: bool = typer.Option(False, "--inbox", help="Only those awaiting my decision."),
    limit: int = typer.Option(100, min=1, max=1000),
    json: JsonOption = False,
) -> None:
    """List applications the caller may see, or show one."""
    with reading() as (session, actor):
        if application_id is not None:
            item = queries.application(session, actor=actor, application_id=application_id)
            public = queries.application_public(session, item)
            history = queries.history(
                session, object_type="gateway_application", object_id=application_id
            )
            if json:
                print_json({**public.model_dump(mode="json"), "history": history})
                return
            typer.echo(
                f"application {public.id}  {public.consumer} → {public.resource}  [{public.state}]"
            )
            clear = ", ".join(public.clear_fields) or "-"
            typer.echo(f"fields {', '.join(public.fields)}; in clear {clear}")
            typer.echo(f"matter {public.purpose_code}: {public.purpose}")
            typer.echo(f"legal basis: {public.legal_basis}")
            typer.echo(f"region {public.region}; valid {public.valid_from} – {public.valid_until}")
            for step in history:
                typer.echo(
                    f"  {step.at:%Y-%m-%d %H:%M} {step.actor} {step.transition} → {step.to_state}"
                    + (f": {step.comment}" if step.comment else "")
                )
            return
        found, total = queries.applications(
            session,
            actor=actor,
            state=state,
            consumer=consumer,
            resource=resource,
            awaiting_me=inbox,
            limit=limit,
        )
        rows = [queries.application_public(session, item) for item in found]
    if json:
        print_json({"data": rows, "count": total})
        return
    print_table(
        [
            (
                r.id,
                r.consumer,
                r.resource,
                r.state,
                f"{r.due_at:%Y-%m-%d}",
                "!" if r.overdue else "",
            )
            for r in rows
        ],
        ["id", "consumer", "resource", "state", "due", "overdue"],
    )
    typer.echo(f"{len(rows)} of {total}")


@app.command()
def approve(
    application_id: ApplicationId,
    clear: str = typer.Option(None, help="Personal fields approved in clear (of those asked)."),
    rps: int = typer.Option(None, min=1, help="Requests per second of the grant."),
    rows_per_day: int = typer.Option(None, min=1, help="Rows per day of the grant."),
    comment: str = typer.Option(None, help="A note on the decision."),
    json: JsonOption = False,
) -> None:
    """Approve an application, making its grant."""
    decision = Decision(
        clear_fields=_names(clear) if clear is not None else None,
        requests_per_second=rps,
        rows_per_day=rows_per_day,
        comment=comment,
    )
    with writing() as (session, actor):
        public = queries.application_public(
            session,
            service.decide(
                session, actor=actor, application_id=application_id, approve=True, decision=decision
            ),
        )
    if json:
        print_json(public)
        return
    typer.echo(f"application {application_id} approved; grant {public.grant_id}")


@app.command()
def reject(application_id: ApplicationId, reason: Reason, json: JsonOption = False) -> None:
    """Reject an application, giving the reason."""
    with writing() as (session, actor):
        public = queries.application_public(
            session,
            service.decide(
                session,
                actor=actor,
                application_id=application_id,
                approve=False,
                decision=Decision(comment=reason),
            ),
        )
    if json:
        print_json(public)
        return
    typer.echo(f"application {application_id} rejected")


@app.command()
def withdraw(application_id: ApplicationId, json: JsonOption = False) -> None:
    """Withdraw an application that awaits a decision."""
    with writing() as (session, actor):
        public = queries.application_public(
            session, service.withdraw(session, actor=actor, application_id=application_id)
        )
    if json:
        print_json(public)
        return
    typer.echo(f"application {application_id} withdrawn")


# -- grants -----------------------------------------------------------------------------


@app.command()
def grants(
    grant_id: int = typer.Argument(None, min=1, help="Show this one, with its fields."),
    state: str = typer.Option(None, help="active, suspended, revoked, expired."),
    consumer: str = typer.Option(None, help="Consumer code."),
    resource: str = typer.Option(None, help="Resource code."),
    limit: int = typer.Option(100, min=1, max=1000),
    json: JsonOption = False,
) -> None:
    """List grants the caller may see, or show one."""
    with reading() as (session, actor):
        if grant_id is not None:
            public = queries.grant_public(queries.grant(session, actor=actor, grant_id=grant_id))
            if json:
                print_json(public)
                return
            typer.echo(
                f"grant {public.id}  {public.consumer} → {public.resource}  [{public.state}]"
            )
            typer.echo(
                f"region {public.region}; valid {public.valid_from} – {public.valid_until}; "
                f"{public.requests_per_second}/s, {public.rows_per_day} rows/day"
            )
            print_table(
                [(f.name, f.title, f.pii, f.mode) for f in public.fields],
                ["field", "title", "pii", "mode"],
            )
            return
        found, total = queries.grants(
            session, actor=actor, state=state, consumer=consumer, resource=resource, limit=limit
        )
        rows = [queries.grant_public(item) for item in found]
    if json:
        print_json({"data": rows, "count": total})
        return
    print_table(
        [(r.id, r.consumer, r.resource, r.state, r.region, r.valid_until) for r in rows],
        ["id", "consumer", "resource", "state", "region", "until"],
    )
    typer.echo(f"{len(rows)} of {total}")


def _change(grant_id: int, name: str, comment: str | None, json: bool) -> None:
    with writing() as (session, actor):
        public = queries.grant_public(
            service.change_grant(
                session, actor=actor, grant_id=grant_id, name=name, comment=comment
            )
        )
    if json:
        print_json(public)
        return
    typer.echo(f"grant {grant_id} {public.state}")


@app.command()
def revoke(grant_id: GrantId, reason: Reason, json: JsonOption = False) -> None:
    """Revoke a grant for good."""
    _change(grant_id, "revoke", reason, json)


@app.command()
def suspend(grant_id: GrantId, reason: Reason, json: JsonOption = False) -> None:
    """Suspend a grant until it is resumed."""
    _change(grant_id, "suspend", reason, json)


@app.command()
def resume(grant_id: GrantId, json: JsonOption = False) -> None:
    """Resume a suspended grant."""
    _change(grant_id, "resume", None, json)


# -- the access log ---------------------------------------------------------------------


@audit_app.command("verify")
def verify_log(json: JsonOption = False) -> None:
    """Walk the access log's hash chain: exit 0 when intact, 1 naming the first bad entry."""
    with reading() as (session, actor):
        result = service.verify_chain(session, actor=actor)
    if json:
        print_json(
            {
                "intact": result.intact,
                "entries": result.entries,
                "first_bad": result.first_bad,
                "reason": result.reason,
            }
        )
    elif result.intact:
        typer.echo(f"access log intact: {result.entries} entries")
    else:
        typer.echo(f"access log broken at entry {result.first_bad}: {result.reason}", err=True)
    if not result.intact:
        raise typer.Exit(1)


@audit_app.command("log")
def access_log(
    consumer: str = typer.Option(None, help="Consumer code."),
    target: str = typer.Option(None, help="Resource or service code."),
    outcome: str = typer.Option(None, help="ok, or a refusal's problem type."),
    limit: int = typer.Option(50, min=1, max=1000),
    json: JsonOption = False,
) -> None:
    """The newest gateway calls, allowed and refused."""
    with reading() as (session, actor):
        found, total = queries.access_log(
            session, actor=actor, consumer=consumer, target=target, outcome=outcome, limit=limit
        )
        rows = [queries.access_log_public(row) for row in found]
    if json:
        print_json({"data": rows, "count": total})
        return
    print_table(
        [
            (
                r.seq,
                f"{r.at:%Y-%m-%d %H:%M:%S}",
                r.consumer or "-",
                r.operation,
                r.target or "-",
                r.status,
                r.outcome,
                r.rows,
                r.end_user or "",
                r.purpose or "",
            )
            for r in rows
        ],
        [
            "seq",
            "at (UTC)",
            "consumer",
            "op",
            "target",
            "status",
            "outcome",
            "rows",
            "user",
            "purpose",
        ],
    )
    typer.echo(f"{len(rows)} of {total}")


@app.command()
def usage(
    days: int = typer.Option(30, min=1, max=366, help="How many days back."),
    consumer: str = typer.Option(None, help="Consumer code."),
    resource: str = typer.Option(None, help="Resource code."),
    json: JsonOption = False,
) -> None:
    """Calls, refusals and rows by day, consumer, resource and purpose."""
    with reading() as (session, actor):
        report = oversight.usage(
            session, actor=actor, days=days, consumer=consumer, target=resource
        )
    if json:
        print_json(report)
        return
    print_table(
        [
            (r.day, r.consumer or "-", r.target or "-", r.purpose or "", r.calls, r.refused, r.rows)
            for r in report.rows
        ],
        ["day", "consumer", "target", "purpose", "calls", "refused", "rows"],
    )


@audit_app.command("flags")
def access_log_flags(
    days: int = typer.Option(14, min=1, max=92, help="How many days back."),
    json: JsonOption = False,
) -> None:
    """Patterns in the access log worth a look, each saying why."""
    with reading() as (session, actor):
        found = oversight.flags(session, actor=actor, days=days)
    if json:
        print_json(found)
        return
    for flag in found.data:
        typer.echo(f"{flag.day}  {flag.consumer}  {flag.title}: {flag.explanation}")
    typer.echo(f"{len(found.data)} flags since {found.since}")


# -- services ---------------------------------------------------------------------------


@services_app.command("list")
def list_services(json: JsonOption = False) -> None:
    """Services registered at the gateway."""
    with reading() as (session, actor):
        rows = [queries.service_public(item) for item in queries.services(session, actor=actor)]
    if json:
        print_json({"data": rows, "count": len(rows)})
        return
    print_table(
        [(r.code, r.provider, r.base_url, ",".join(r.methods), " ".join(r.paths)) for r in rows],
        ["code", "provider", "base url", "methods", "paths"],
    )


@services_app.command("register")
def register_service(
    resource: str = typer.Argument(..., help="The catalog resource the service is."),
    base_url: str = typer.Option(..., help="http(s)://host[:port]/path on the allow-list."),
    methods: str = typer.Option("GET", help="Comma-separated methods (GET,POST,...)."),
    paths: str = typer.Option("/**", help="Comma-separated path patterns (* and **)."),
    timeout: int = typer.Option(10, min=1, max=120, help="Seconds to wait for an answer."),
    max_kb: int = typer.Option(1024, min=1, help="Largest answer passed back, KiB."),
    openapi: Path = typer.Option(None, help="The service's OpenAPI document (JSON)."),
    json: JsonOption = False,
) -> None:
    """Register a department's service behind the gateway, or change it."""
    document = None
    if openapi is not None:
        try:
            document = jsonlib.loads(openapi.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValidationFailed(
                f"cannot read {openapi} as JSON: {exc}", field="openapi"
            ) from None
    data = ServiceCreate(
        resource=resource,
        base_url=base_url,
        methods=_names(methods),
        paths=_names(paths),
        timeout_seconds=timeout,
        max_response_kb=max_kb,
        openapi=document,
    )
    with writing() as (session, actor):
        public = queries.service_public(service.register_service(session, actor=actor, data=data))
    if json:
        print_json(public)
        return
    typer.echo(f"service {public.code} registered at {public.base_url}")
