"""Reads: departments, users, grants, tokens, and building an actor from its grants."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shuzhi.core.errors import Message, NotFound
from shuzhi.core.permissions import Actor, Grant, Scope, allowed
from shuzhi.orgs.models import ApiToken, Department, Role, RoleGrant, User
from shuzhi.orgs.schemas import DepartmentPublic, GrantPublic, UserPublic
from shuzhi.regions import queries as regions
from shuzhi.regions.models import Region


def department(session: Session, code: str, *, field: str = "department") -> Department:
    found = session.scalar(select(Department).where(Department.code == code))
    if found is None:
        raise NotFound(Message("unknown department code {code!r}", code=code), field=field)
    return found


department_by_code = department


def department_by_id(session: Session, department_id: int) -> Department | None:
    return session.get(Department, department_id)


def department_scope(dept: Department) -> Scope:
    return Scope(department_id=dept.id, region_code=dept.region_code)


def departments(
    session: Session,
    *,
    region: str | None = None,
    system: str | None = None,
    q: str | None = None,
) -> list[Department]:
    stmt = select(Department).order_by(Department.region_code, Department.code)
    if region:
        root = regions.get(session, region)
        stmt = stmt.join(Region, Region.code == Department.region_code).where(
            Region.path.startswith(root.path)
        )
    if q:
        stmt = stmt.where(
            Department.name.contains(q, autoescape=True)
            | Department.code.contains(q, autoescape=True)
        )
    found = list(session.scalars(stmt))
    if system:
        found = [d for d in found if system in (d.systems or [])]
    return found


def department_public(session: Session, dept: Department) -> DepartmentPublic:
    region = session.get(Region, dept.region_code)
    return DepartmentPublic(
        code=dept.code,
        name=dept.name,
        region=dept.region_code,
        region_name=region.name if region else "",
        level=dept.level,
        parent=dept.parent.code if dept.parent else None,
        systems=list(dept.systems or []),
        credit_code=dept.credit_code,
    )


def department_descendants(session: Session, department_id: int) -> frozenset[int]:
    """The department and every department under it."""
    children: dict[int | None, list[int]] = defaultdict(list)
    for dept_id, parent_id in session.execute(select(Department.id, Department.parent_id)):
        children[parent_id].append(dept_id)
    found, stack = set(), [department_id]
    while stack:
        current = stack.pop()
        if current in found:
            continue
        found.add(current)
        stack.extend(children.get(current, ()))
    return frozenset(found)


def user(session: Session, username: str) -> User:
    found = session.scalar(select(User).where(User.username == username))
    if found is None:
        raise NotFound(Message("unknown user {username!r}", username=username), field="username")
    return found


def users(session: Session, *, department: str | None = None) -> list[User]:
    stmt = select(User).order_by(User.username)
    if department:
        stmt = stmt.where(User.department_id == department_by_code(session, department).id)
    return list(session.scalars(stmt))


def user_scope(account: User) -> Scope | None:
    """What a user belongs to, for ``orgs.manage_users`` checks (None: no department)."""
    return department_scope(account.department) if account.department else None


def can_manage(actor: Actor, account: User) -> bool:
    return allowed(actor, "orgs.manage_users", user_scope(account))


def visible_user(session: Session, *, actor: Actor, username: str) -> User:
    """The user, if it is the actor or one it manages; otherwise NotFound."""
    account = user(session, username)
    if account.id != actor.id and not can_manage(actor, account):
        raise NotFound(Message("unknown user {username!r}", username=username), field="username")
    return account


def manageable_users(
    session: Session, *, actor: Actor, department: str | None = None
) -> list[User]:
    """The users whose department lies in the actor's ``orgs.manage_users`` scope."""
    return [u for u in users(session, department=department) if can_manage(actor, u)]


def grants_of(session: Session, user_id: int) -> list[RoleGrant]:
    return list(
        session.scalars(
            select(RoleGrant).where(RoleGrant.user_id == user_id).order_by(RoleGrant.id)
        )
    )


def user_public(session: Session, account: User) -> UserPublic:
    return UserPublic(
        username=account.username,
        display_name=account.display_name,
        email=account.email,
        department=account.department.code if account.department else None,
        active=account.active,
        grants=[
            GrantPublic(
                role=grant.role_code,
                role_name=grant.role.name_zh,
                department=grant.department.code if grant.department else None,
                region=grant.region_code,
            )
            for grant in grants_of(session, account.id)
        ],
    )


def roles(session: Session) -> list[Role]:
    return list(session.scalars(select(Role).order_by(Role.code)))


def role(session: Session, code: str) -> Role:
    found = session.get(Role, code)
    if found is None:
        raise NotFound(Message("unknown role {code!r}", code=code), field="role")
    return found


def actor_for(session: Session, account: User) -> Actor:
    """The permission view of a user: each grant with its scopes expanded."""
    grants = []
    for grant in grants_of(session, account.id):
        grants.append(
            Grant(
                role=grant.role_code,
                actions=frozenset(grant.role.actions or ()),
                departments=(
                    department_descendants(session, grant.department_id)
                    if grant.department_id is not None
                    else None
                ),
                regions=(
                    regions.subtree_codes(session, grant.region_code)
                    if grant.region_code is not None
                    else None
                ),
            )
        )
    return Actor(
        id=account.id,
        name=account.username,
        grants=tuple(grants),
        department_id=account.department_id,
    )


def tokens_of(session: Session, user_id: int, *, kind: str = "api") -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.kind == kind)
            .order_by(ApiToken.id)
        )
    )


def count_departments(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Department)) or 0


def _actors(session: Session) -> dict[int, Actor]:
    cache = session.info.get("orgs_actors")
    if cache is None:
        cache = session.info["orgs_actors"] = {}
    return cache


def users_who(
    session: Session, action: str, scope: Scope | None, *, department_id: int | None = None
) -> list[int]:
    """Active users who may do ``action`` on ``scope`` (platform-wide when None; only those
    of ``department_id`` when given)."""
    query = (
        select(User)
        .join(RoleGrant, RoleGrant.user_id == User.id)
        .join(Role, Role.code == RoleGrant.role_code)
        .where(User.active.is_(True))
        .distinct()
    )
    if department_id is not None:
        query = query.where(User.department_id == department_id)
    actors = _actors(session)
    found = []
    for account in session.scalars(query):
        actor = actors.get(account.id)
        if actor is None:
            actor = actors[account.id] = actor_for(session, account)
        if allowed(actor, action, scope):
            found.append(account.id)
    return found
