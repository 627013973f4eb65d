"""Use cases for departments, users, grants, tokens and logins. The only writer of orgs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shuzhi.core import audit, clock, ids
from shuzhi.core.errors import (
    Conflict,
    Message,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationFailed,
)
from shuzhi.core.permissions import ALL, SYSTEM, Actor, Scope, covers, require
from shuzhi.core.settings import get_settings
from shuzhi.core.standards import is_credit_code
from shuzhi.orgs import queries, security
from shuzhi.orgs.models import ApiToken, Department, Role, RoleGrant, User
from shuzhi.orgs.rules import BUILTIN_ROLES, USERNAME, password_problem
from shuzhi.orgs.schemas import DepartmentCreate, DepartmentUpdate, GrantCreate, UserCreate
from shuzhi.regions import queries as regions

TOKEN_PREFIX = "shz_"


def sync_builtin_roles(session: Session) -> int:
    """Make the role table match the built-in roles; returns how many rows changed."""
    changed = 0
    for spec in BUILTIN_ROLES:
        role = session.get(Role, spec.code)
        values = {
            "name_zh": spec.zh,
            "name_en": spec.en,
            "actions": list(spec.actions),
            "builtin": True,
        }
        if role is None:
            session.add(Role(code=spec.code, **values))
            changed += 1
        elif any(getattr(role, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(role, key, value)
            changed += 1
    if changed:
        session.flush()
        audit.record(
            session,
            actor=SYSTEM,
            action="role.sync",
            object_type="role",
            object_id="*",
            after={"changed": changed},
        )
    return changed


# departments ------------------------------------------------------------------------


def _check_credit_code(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    value = value.strip().upper()
    if not is_credit_code(value):
        raise ValidationFailed(
            Message("credit code {value!r} fails the GB 32100 check character", value=value),
            field="credit_code",
        )
    return value


def create_department(session: Session, *, actor: Actor, data: DepartmentCreate) -> Department:
    region = regions.get(session, data.region)
    parent = queries.department(session, data.parent, field="parent") if data.parent else None
    # the new department sits under its parent and in its own region: both must be in scope
    scope = Scope(department_id=parent.id if parent else None, region_code=region.code)
    require(
        actor, "orgs.manage_departments", scope, what=Message("department {code}", code=data.code)
    )
    if session.scalar(select(Department.id).where(Department.code == data.code)):
        raise Conflict(Message("department {code} already exists", code=data.code), field="code")
    dept = Department(
        code=data.code,
        name=data.name,
        region_code=region.code,
        level=region.level,
        parent_id=parent.id if parent else None,
        systems=[system.value for system in data.systems],
        credit_code=_check_credit_code(data.credit_code),
        created_at=clock.now(),
    )
    session.add(dept)
    _flush_unique(session, Message("department {code}", code=data.code))
    audit.record(
        session,
        actor=actor,
        action="department.create",
        object_type="department",
        object_id=dept.code,
        object_repr=dept.name,
        after=audit.snapshot(dept),
    )
    return dept


def update_department(
    session: Session, *, actor: Actor, code: str, data: DepartmentUpdate
) -> Department:
    dept = queries.department(session, code)
    require(
        actor,
        "orgs.manage_departments",
        queries.department_scope(dept),
        what=Message("department {code}", code=code),
    )
    before = audit.snapshot(dept)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("name"):
        dept.name = changes["name"]
    if "systems" in changes and changes["systems"] is not None:
        dept.systems = [system.value for system in data.systems or []]
    if "credit_code" in changes:
        dept.credit_code = _check_credit_code(changes["credit_code"])
    if "parent" in changes:
        if changes["parent"]:
            parent = queries.department(session, changes["parent"], field="parent")
            # moving it changes the new parent's subtree, so that must be in scope too
            require(
                actor,
                "orgs.manage_departments",
                Scope(department_id=parent.id, region_code=dept.region_code),
                what=Message("departments under {code}", code=parent.code),
            )
            if parent.id in queries.department_descendants(session, dept.id):
                raise ValidationFailed(
                    Message(
                        "department {code} is under {code2}; it cannot be its parent",
                        code=parent.code,
                        code2=code,
                    ),
                    field="parent",
                )
            dept.parent_id = parent.id
        else:
            # a root department is outside every department grant, as at creation
            require(
                actor,
                "orgs.manage_departments",
                Scope(region_code=dept.region_code),
                what=Message("department {code} as a root", code=code),
            )
            dept.parent_id = None
    _flush_unique(session, Message("department {code}", code=code))
    after = audit.snapshot(dept)
    if after != before:
        audit.record(
            session,
            actor=actor,
            action="department.update",
            object_type="department",
            object_id=code,
            object_repr=dept.name,
            before=before,
            after=after,
        )
    return dept


def apply_department(session: Session, *, actor: Actor, data: DepartmentCreate) -> Department:
    """Create the department, or bring an existing one in line with ``data``."""
    existing = session.scalar(select(Department).where(Department.code == data.code))
    if existing is None:
        return create_department(session, actor=actor, data=data)
    if existing.region_code != data.region:
        raise Conflict(
            Message(
                "department {code} is in region {region_code}, not {region}",
                code=data.code,
                region_code=existing.region_code,
                region=data.region,
            ),
            field="region",
        )
    return update_department(
        session,
        actor=actor,
        code=data.code,
        data=DepartmentUpdate(
            name=data.name, parent=data.parent, systems=data.systems, credit_code=data.credit_code
        ),
    )


def _flush_unique(session: Session, what: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(
            Message("{what} clashes with an existing record: {orig}", what=what, orig=str(exc.orig))
        ) from None


# users and grants ---------------------------------------------------------------------


def _reach(
    session: Session, department_id: int | None, region_code: str | None
) -> tuple[frozenset[int] | None, frozenset[str] | None]:
    """The departments and regions a grant for this department and region covers."""
    return (
        queries.department_descendants(session, department_id)
        if department_id is not None
        else None,
        regions.subtree_codes(session, region_code) if region_code is not None else None,
    )


def _require_can_hand_out(
    session: Session,
    *,
    actor: Actor,
    role: Role,
    department_id: int | None,
    region_code: str | None,
    verb: str,
) -> None:
    """The actor manages users over the whole scope and holds every action of the role
    there, so it can give (or take away) only what it could have given."""
    departments, region_codes = _reach(session, department_id, region_code)
    needed = ["orgs.manage_users", *role.actions]
    beyond = [
        action
        for action in needed
        if not covers(actor, action, departments=departments, regions=region_codes)
    ]
    if beyond:
        raise PermissionDenied(
            Message(
                "{name} cannot {verb} {code} there: it does not hold {join} over that scope",
                name=actor.name,
                verb=verb,
                verb_label={"grant": "授予", "revoke": "撤销"}.get(verb, verb),
                code=role.code,
                join=", ".join(beyond),
            )
        )


def _manageable(session: Session, *, actor: Actor, username: str) -> User:
    """A user the actor may act on: itself, or a user in its ``orgs.manage_users`` scope
    whose every grant the actor could have given. Anyone else is reported as unknown (or
    as too powerful, once visible), so that users cannot be probed."""
    account = queries.visible_user(session, actor=actor, username=username)
    if account.id == actor.id:
        return account
    for grant in queries.grants_of(session, account.id):
        departments, region_codes = _reach(session, grant.department_id, grant.region_code)
        # the same rule as handing the grant out: its scope must be the actor's to manage
        for action in ("orgs.manage_users", *grant.role.actions):
            if not covers(actor, action, departments=departments, regions=region_codes):
                raise PermissionDenied(
                    Message(
                        "{name} cannot act on {username}: {username} holds "
                        "{role_code} beyond what you hold",
                        name=actor.name,
                        username=username,
                        role_code=grant.role_code,
                    )
                )
    return account


def create_user(session: Session, *, actor: Actor, data: UserCreate) -> User:
    if not USERNAME.match(data.username):
        raise ValidationFailed(
            Message("username {username!r} is not allowed", username=data.username),
            field="username",
        )
    dept = queries.department(session, data.department) if data.department else None
    require(
        actor,
        "orgs.manage_users",
        queries.department_scope(dept) if dept else None,
        what=Message("user {username}", username=data.username),
    )
    problem = password_problem(
        data.password, min_length=get_settings().security.password_min_length
    )
    if problem:
        raise ValidationFailed(problem, field="password")
    if session.scalar(select(User.id).where(User.username == data.username)):
        raise Conflict(
            Message("user {username} already exists", username=data.username), field="username"
        )
    account = User(
        username=data.username,
        display_name=data.display_name,
        email=data.email,
        password_hash=security.hash_password(data.password),
        department_id=dept.id if dept else None,
        active=True,
        created_at=clock.now(),
    )
    session.add(account)
    _flush_unique(session, Message("user {username}", username=data.username))
    audit.record(
        session,
        actor=actor,
        action="user.create",
        object_type="user",
        object_id=account.username,
        object_repr=account.display_name,
        after=audit.snapshot(account),
    )
    return account


def set_password(session: Session, *, actor: Actor, username: str, password: str) -> User:
    account = _manageable(session, actor=actor, username=username)
    problem = password_problem(password, min_length=get_settings().security.password_min_length)
    if problem:
        raise ValidationFailed(problem, field="password")
    account.password_hash = security.hash_password(password)
    # a new password ends every cockpit session that the old one opened
    for token in queries.tokens_of(session, account.id, kind="session"):
        if token.revoked_at is None:
            token.revoked_at = clock.now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.set_password",
        object_type="user",
        object_id=username,
        after={"password": "changed"},
    )
    return account


def set_active(session: Session, *, actor: Actor, username: str, active: bool) -> User:
    account = _manageable(session, actor=actor, username=username)
    if account.id == actor.id and not active:
        raise ValidationFailed(Message("you cannot deactivate yourself"), field="active")
    if account.active != active:
        if not active:
            # a reactivated user logs in afresh instead of finding old sessions alive
            for token in queries.tokens_of(session, account.id, kind="session"):
                if token.revoked_at is None:
                    token.revoked_at = clock.now()
        account.active = active
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="user.activate" if active else "user.deactivate",
            object_type="user",
            object_id=username,
            before={"active": not active},
            after={"active": active},
        )
    return account


def grant_role(session: Session, *, actor: Actor, username: str, data: GrantCreate) -> RoleGrant:
    """Give a user a role for a department and region subtree.

    A grantor can hand out only what it holds itself over that scope, so a department
    administrator cannot make anyone a platform administrator.
    """
    account = queries.visible_user(session, actor=actor, username=username)
    role = queries.role(session, data.role)
    dept = queries.department(session, data.department) if data.department else None
    region = regions.get(session, data.region) if data.region else None
    _require_can_hand_out(
        session,
        actor=actor,
        role=role,
        department_id=dept.id if dept else None,
        region_code=region.code if region else None,
        verb="grant",
    )
    existing = session.scalar(
        select(RoleGrant).where(
            RoleGrant.user_id == account.id,
            RoleGrant.role_code == role.code,
            RoleGrant.department_id.is_(None)
            if dept is None
            else RoleGrant.department_id == dept.id,
            RoleGrant.region_code.is_(None)
            if region is None
            else RoleGrant.region_code == region.code,
        )
    )
    if existing is not None:
        return existing
    grant = RoleGrant(
        user_id=account.id,
        role_code=role.code,
        department_id=dept.id if dept else None,
        region_code=region.code if region else None,
        created_at=clock.now(),
    )
    session.add(grant)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.grant",
        object_type="user",
        object_id=username,
        after={"role": role.code, "department": data.department, "region": data.region},
    )
    return grant


def _is_platform_wide_admin(grant: RoleGrant) -> bool:
    return (
        ALL in (grant.role.actions or ())
        and grant.department_id is None
        and grant.region_code is None
    )


def _platform_admins(session: Session) -> int:
    """Active users holding every action everywhere: who can still run the platform."""
    grants = session.scalars(
        select(RoleGrant)
        .join(User, User.id == RoleGrant.user_id)
        .where(
            User.active.is_(True),
            RoleGrant.department_id.is_(None),
            RoleGrant.region_code.is_(None),
        )
    )
    return len({grant.user_id for grant in grants if _is_platform_wide_admin(grant)})


def revoke_role(session: Session, *, actor: Actor, username: str, data: GrantCreate) -> None:
    """Take a grant away; the same rule as granting: only what the actor could have given."""
    account = queries.visible_user(session, actor=actor, username=username)
    for grant in queries.grants_of(session, account.id):
        dept_code = grant.department.code if grant.department else None
        if (grant.role_code, dept_code, grant.region_code) != (
            data.role,
            data.department,
            data.region,
        ):
            continue
        _require_can_hand_out(
            session,
            actor=actor,
            role=grant.role,
            department_id=grant.department_id,
            region_code=grant.region_code,
            verb="revoke",
        )
        if _is_platform_wide_admin(grant) and _platform_admins(session) <= 1:
            raise Conflict(
                Message(
                    "{username} is the last platform administrator; grant the "
                    "role to someone else first",
                    username=username,
                )
            )
        session.delete(grant)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="user.revoke",
            object_type="user",
            object_id=username,
            before={"role": data.role, "department": data.department, "region": data.region},
        )
        return
    raise NotFound(
        Message("{username} holds no such grant of {role}", username=username, role=data.role)
    )


# authentication ----------------------------------------------------------------------


LOGIN_FAILED = "wrong username or password (after repeated failures a login is locked for a while)"


@dataclass(frozen=True)
class LoginOutcome:
    user: User | None
    locked_until: datetime | None = None

    @property
    def message(self) -> str:
        # the same words whether the user exists, the password is wrong or the login is
        # locked: a login form must not tell which usernames are real
        return LOGIN_FAILED


def login(session: Session, *, username: str, password: str) -> LoginOutcome:
    """Check a password and count failures; the caller commits either outcome.

    Unknown users and wrong passwords get the same message. After
    ``login_max_failures`` wrong passwords in a row the login is locked for
    ``login_lockout_minutes``, right password or not.
    """
    sec = get_settings().security
    now = clock.now()
    account = session.scalar(select(User).where(User.username == username))
    if account is None:
        security.burn_time(password)
        return LoginOutcome(None)
    if account.locked_until is not None:
        if account.locked_until > now:
            security.burn_time(password)
            return LoginOutcome(None, locked_until=account.locked_until)
        account.locked_until = None  # the lock has run out
    if not security.verify_password(account.password_hash, password) or not account.active:
        account.failed_logins = (account.failed_logins or 0) + 1
        if account.failed_logins >= sec.login_max_failures:
            account.failed_logins = 0
            account.locked_until = now + timedelta(minutes=sec.login_lockout_minutes)
            audit.record(
                session,
                actor=SYSTEM,
                action="user.lock",
                object_type="user",
                object_id=account.username,
                after={"locked_until": account.locked_until},
            )
        session.flush()
        return LoginOutcome(None, locked_until=account.locked_until)
    account.failed_logins = 0
    account.locked_until = None
    account.last_login_at = now
    if security.hasher().check_needs_rehash(account.password_hash):
        account.password_hash = security.hash_password(password)
    session.flush()
    return LoginOutcome(account)


def authenticate(session: Session, *, username: str, password: str) -> User:
    """The user with this password, or Unauthenticated with the reason."""
    outcome = login(session, username=username, password=password)
    if outcome.user is None:
        raise Unauthenticated(outcome.message)
    return outcome.user


def _new_token(
    session: Session, *, account: User, kind: str, name: str, lifetime: timedelta
) -> tuple[ApiToken, str]:
    secret = ids.secret_token(24)
    plaintext = f"{TOKEN_PREFIX}{secret}"
    now = clock.now()
    token = ApiToken(
        user_id=account.id,
        kind=kind,
        name=name,
        prefix=plaintext[:10],
        token_hash=ids.digest(plaintext),
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(token)
    session.flush()
    return token, plaintext


MAX_TOKEN_DAYS = 3650


def create_token(
    session: Session, *, actor: Actor, username: str, name: str, days: int | None = None
) -> tuple[ApiToken, str]:
    """A new API token; the plaintext is returned once and only its hash is kept."""
    account = _manageable(session, actor=actor, username=username)
    if days is not None and not 1 <= days <= MAX_TOKEN_DAYS:
        raise ValidationFailed(
            Message("a token lives 1 to {MAX_TOKEN_DAYS} days", MAX_TOKEN_DAYS=MAX_TOKEN_DAYS),
            field="days",
        )
    lifetime = timedelta(days=days or get_settings().security.token_days)
    token, plaintext = _new_token(
        session, account=account, kind="api", name=name, lifetime=lifetime
    )
    audit.record(
        session,
        actor=actor,
        action="token.create",
        object_type="api_token",
        object_id=token.id,
        object_repr=f"{username}:{name}",
        after={"prefix": token.prefix, "expires_at": token.expires_at},
    )
    return token, plaintext


def revoke_token(session: Session, *, actor: Actor, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if (
        token is None
        or token.kind != "api"
        or (token.user_id != actor.id and not queries.can_manage(actor, token.user))
    ):
        raise NotFound(Message("no API token {token_id}", token_id=token_id))
    _manageable(session, actor=actor, username=token.user.username)
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="token.revoke",
            object_type="api_token",
            object_id=token.id,
            object_repr=token.prefix,
            after={"revoked_at": token.revoked_at},
        )
    return token


def _token_of(session: Session, plaintext: str) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == ids.digest(plaintext)))


def live_token(session: Session, *, plaintext: str, kind: str = "api") -> ApiToken:
    """The live token of this kind with an active user behind it, or Unauthenticated."""
    if not plaintext.startswith(TOKEN_PREFIX):
        raise Unauthenticated(Message("malformed token"))
    token = _token_of(session, plaintext)
    if token is None or token.kind != kind:
        raise Unauthenticated(Message("unknown token"))
    if token.revoked_at is not None:
        raise Unauthenticated(Message("token revoked"))
    if token.expires_at <= clock.now():
        raise Unauthenticated(Message("token expired"))
    if not token.user.active:
        raise Unauthenticated(Message("user deactivated"))
    return token


def resolve_token(session: Session, *, plaintext: str, kind: str = "api") -> User:
    """The active user behind a live token of this kind, or Unauthenticated."""
    return live_token(session, plaintext=plaintext, kind=kind).user


# A token's last use is recorded at most this often, so that reads stay reads.
TOKEN_USE_GRANULARITY = timedelta(minutes=5)


def token_use_due(token: ApiToken) -> bool:
    """Whether this token's last use is unrecorded or older than the granularity."""
    last = token.last_used_at
    return last is None or clock.now() - last >= TOKEN_USE_GRANULARITY


def touch_token(session: Session, *, token_id: int) -> None:
    token = session.get(ApiToken, token_id)
    if token is not None:
        token.last_used_at = clock.now()


def start_session(session: Session, *, account: User) -> str:
    """A cockpit login: a session token whose hash is kept, so logout can revoke it."""
    lifetime = timedelta(hours=get_settings().security.session_hours)
    _token, plaintext = _new_token(
        session, account=account, kind="session", name="cockpit", lifetime=lifetime
    )
    audit.record(
        session,
        actor=Actor(id=account.id, name=account.username),
        action="session.start",
        object_type="user",
        object_id=account.username,
    )
    return plaintext


def end_session(session: Session, *, plaintext: str) -> None:
    token = _token_of(session, plaintext)
    if token is not None and token.kind == "session" and token.revoked_at is None:
        token.revoked_at = clock.now()
        audit.record(
            session,
            actor=Actor(id=token.user_id, name=token.user.username),
            action="session.end",
            object_type="user",
            object_id=token.user.username,
        )
