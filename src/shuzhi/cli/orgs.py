from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer

from shuzhi.cli.common import JsonOption, print_json, print_table, reading, writing
from shuzhi.core.enums import System
from shuzhi.core.errors import ValidationFailed
from shuzhi.orgs import queries, service
from shuzhi.orgs.schemas import (
    ID_MAX,
    TOKEN_DAYS_MAX,
    DepartmentCreate,
    GrantCreate,
    TokenCreated,
    TokenPublic,
    UserCreate,
)

departments = typer.Typer(help="Departments (委办局) and their regions.", no_args_is_help=True)
users = typer.Typer(help="Users, role grants and API tokens.", no_args_is_help=True)
roles = typer.Typer(help="Roles and the actions they grant.", no_args_is_help=True)

PASSWORD_ENV = "SHUZHI_PASSWORD"
Username = Annotated[str, typer.Argument(help="Login name.")]


@departments.command("list")
def list_departments(
    region: str = typer.Option(None, help="Only this region's subtree."),
    system: str = typer.Option(None, help="Only those serving this system."),
    json: JsonOption = False,
) -> None:
    """List departments."""
    with reading() as (session, _actor):
        found = [
            queries.department_public(session, d)
            for d in queries.departments(session, region=region, system=system)
        ]
    if json:
        print_json(found)
    else:
        print_table(
            [(d.code, d.name, d.region, d.parent) for d in found],
            ["code", "name", "region", "parent"],
        )


@departments.command("create")
def create_department(
    code: str = typer.Option(..., help="Department code, e.g. zj_gat."),
    name: str = typer.Option(..., help="Full name."),
    region: str = typer.Option(..., help="Region code where it sits."),
    parent: str = typer.Option(None, help="Parent department code."),
    system: list[str] = typer.Option([], "--system", help=f"Repeatable: {System.choices()}."),
    credit_code: str = typer.Option(None, help="GB 32100 unified social credit code."),
    json: JsonOption = False,
) -> None:
    """Create a department."""
    try:
        systems = [System(s) for s in system]
    except ValueError:
        raise ValidationFailed(f"--system must be one of {System.choices()}") from None
    with writing() as (session, actor):
        dept = service.create_department(
            session,
            actor=actor,
            data=DepartmentCreate(
                code=code,
                name=name,
                region=region,
                parent=parent,
                systems=systems,
                credit_code=credit_code,
            ),
        )
        public = queries.department_public(session, dept)
    print_json(public) if json else typer.echo(f"created department {public.code}")


@users.command("list")
def list_users(
    department: str = typer.Option(None, help="Only this department's users."),
    json: JsonOption = False,
) -> None:
    """List the users the caller manages, with their grants (the local operator: all)."""
    with reading() as (session, actor):
        found = [
            queries.user_public(session, u)
            for u in queries.manageable_users(session, actor=actor, department=department)
        ]
    if json:
        print_json(found)
    else:
        print_table(
            [
                (
                    u.username,
                    u.display_name,
                    u.department or "",
                    "yes" if u.active else "no",
                    ", ".join(
                        f"{g.role}@{g.department or '*'}/{g.region or '*'}" for g in u.grants
                    ),
                )
                for u in found
            ],
            ["username", "name", "department", "active", "grants"],
        )


def _password(prompt: bool) -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    if not prompt:
        raise ValidationFailed(f"set {PASSWORD_ENV} or run in a terminal to be asked")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise ValidationFailed("the two passwords differ")
    return first


@users.command("create")
def create_user(
    username: str = typer.Argument(..., help="Login name."),
    name: str = typer.Option(..., "--name", help="Display name."),
    department: str = typer.Option(None, help="Department code."),
    email: str = typer.Option(None, help="E-mail address."),
    role: str = typer.Option(
        None, help="Grant this role right away (for --department, or platform-wide without one)."
    ),
    json: JsonOption = False,
) -> None:
    """Create a user; the password comes from SHUZHI_PASSWORD or a prompt."""
    password = _password(prompt=os.isatty(0))
    with writing() as (session, actor):
        account = service.create_user(
            session,
            actor=actor,
            data=UserCreate(
                username=username,
                display_name=name,
                password=password,
                department=department,
                email=email,
            ),
        )
        if role:
            service.grant_role(
                session,
                actor=actor,
                username=username,
                data=GrantCreate(role=role, department=department),
            )
        public = queries.user_public(session, account)
    print_json(public) if json else typer.echo(f"created user {username}")


@users.command("grant")
def grant(
    username: Username,
    role: str = typer.Option(..., help="Role code."),
    department: str = typer.Option(None, help="Department code (and those under it)."),
    region: str = typer.Option(None, help="Root of a region subtree."),
) -> None:
    """Grant a role to a user for a department and region subtree."""
    with writing() as (session, actor):
        service.grant_role(
            session,
            actor=actor,
            username=username,
            data=GrantCreate(role=role, department=department, region=region),
        )
    typer.echo(f"granted {role} to {username}")


@users.command("revoke")
def revoke(
    username: Username,
    role: str = typer.Option(..., help="Role code."),
    department: str = typer.Option(None),
    region: str = typer.Option(None),
) -> None:
    """Take a role grant away."""
    with writing() as (session, actor):
        service.revoke_role(
            session,
            actor=actor,
            username=username,
            data=GrantCreate(role=role, department=department, region=region),
        )
    typer.echo(f"revoked {role} from {username}")


@users.command("set-password")
def set_password(username: Username) -> None:
    """Set a user's password (from SHUZHI_PASSWORD or a prompt)."""
    password = _password(prompt=os.isatty(0))
    with writing() as (session, actor):
        service.set_password(session, actor=actor, username=username, password=password)
    typer.echo(f"password of {username} changed")


def _set_active(username: str, active: bool) -> None:
    with writing() as (session, actor):
        service.set_active(session, actor=actor, username=username, active=active)
    typer.echo(f"user {username} {'activated' if active else 'deactivated'}")


@users.command("activate")
def activate(username: Username) -> None:
    """Let a deactivated user log in and use its tokens again."""
    _set_active(username, True)


@users.command("deactivate")
def deactivate(username: Username) -> None:
    """Stop a user from logging in or using its tokens; its grants and history stay."""
    _set_active(username, False)


@users.command("token-create")
def token_create(
    username: Username,
    name: str = typer.Option(..., help="What the token is for."),
    days: int = typer.Option(
        None, min=1, max=TOKEN_DAYS_MAX, help="Lifetime in days (default from settings)."
    ),
    json: JsonOption = False,
) -> None:
    """Issue an API token; the secret is printed this once."""
    with writing() as (session, actor):
        token, plaintext = service.create_token(
            session, actor=actor, username=username, name=name, days=days
        )
        created = TokenCreated(
            **TokenPublic.model_validate(token, from_attributes=True).model_dump(), token=plaintext
        )
    if json:
        print_json(created)
    else:
        typer.echo(plaintext)
        typer.echo(
            f"token {created.id} expires {created.expires_at:%Y-%m-%d}; it is not shown again",
            err=True,
        )


@users.command("token-revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(min=1, max=ID_MAX, help="Id shown by token-create.")],
) -> None:
    """Revoke an API token by id."""
    with writing() as (session, actor):
        service.revoke_token(session, actor=actor, token_id=token_id)
    typer.echo(f"token {token_id} revoked")


@roles.command("list")
def list_roles(json: JsonOption = False) -> None:
    """List roles and their actions."""
    with reading() as (session, _actor):
        found = [
            {"code": r.code, "name_zh": r.name_zh, "name_en": r.name_en, "actions": list(r.actions)}
            for r in queries.roles(session)
        ]
    if json:
        print_json(found)
    else:
        print_table(
            [(r["code"], r["name_zh"], ", ".join(r["actions"])) for r in found],
            ["code", "name", "actions"],
        )
