"""Authorization as data: one ``allowed(actor, action, resource)``, deny by default.

An actor holds grants; a grant is a role's actions scoped to a set of departments (a
department and the departments under it) and a set of regions (a region subtree).
``None`` as a scope means unrestricted. The orgs package builds actors from its tables;
this module only decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shuzhi.core.errors import Message, PermissionDenied, Unauthenticated

ALL = "*"


@dataclass(frozen=True)
class Grant:
    role: str
    actions: frozenset[str]
    departments: frozenset[int] | None = None
    regions: frozenset[str] | None = None

    def permits(self, action: str) -> bool:
        return ALL in self.actions or action in self.actions

    @property
    def unrestricted(self) -> bool:
        return self.departments is None and self.regions is None


@dataclass(frozen=True)
class Actor:
    id: int | None
    name: str
    grants: tuple[Grant, ...] = ()
    department_id: int | None = None
    authenticated: bool = True

    def scopes_for(self, action: str) -> list[Grant]:
        return [grant for grant in self.grants if grant.permits(action)]


@dataclass(frozen=True)
class Scope:
    """What a resource belongs to, for permission checks."""

    department_id: int | None = None
    region_code: str | None = None
    owner_id: int | None = field(default=None)


SYSTEM = Actor(id=None, name="system", grants=(Grant("system", frozenset({ALL})),))
ANONYMOUS = Actor(id=None, name="anonymous", authenticated=False)


def allowed(actor: Actor, action: str, resource: Scope | None = None) -> bool:
    """Whether ``actor`` may do ``action`` on ``resource`` (``None``: platform-wide)."""
    if not actor.authenticated:
        return False
    for grant in actor.scopes_for(action):
        if resource is None:
            if grant.unrestricted:
                return True
            continue
        if grant.departments is not None and resource.department_id not in grant.departments:
            continue
        if grant.regions is not None and resource.region_code not in grant.regions:
            continue
        return True
    return False


def covers(
    actor: Actor,
    action: str,
    *,
    departments: frozenset[int] | None,
    regions: frozenset[str] | None,
) -> bool:
    """Whether one grant gives ``action`` over every department and region of a scope.

    ``None`` means every department (or region); only an unrestricted grant covers it. Used
    where a scope is handed on (a role grant), so that nobody gives what it does not hold.
    """
    if not actor.authenticated:
        return False
    for grant in actor.scopes_for(action):
        if grant.departments is not None and (
            departments is None or not departments <= grant.departments
        ):
            continue
        if grant.regions is not None and (regions is None or not regions <= grant.regions):
            continue
        return True
    return False


def require(actor: Actor, action: str, resource: Scope | None = None, *, what: str = "") -> None:
    """Refuse unless ``actor`` may do ``action`` in ``resource``; ``what`` names the object in
    the refusal (a ``Message`` is said in the reader's language on a page)."""
    if not actor.authenticated:
        raise Unauthenticated(Message("log in or present an API token"))
    if not allowed(actor, action, resource):
        raise PermissionDenied(
            Message(
                "{actor} may not {action} on {what}", actor=actor.name, action=action, what=what
            )
            if what
            else Message("{actor} may not {action}", actor=actor.name, action=action)
        )
