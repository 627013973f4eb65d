from __future__ import annotations

from fastapi import APIRouter, status

from shuzhi.api import PREFIX
from shuzhi.api.deps import ActorDep, DatabaseDep, IdPath, SessionDep
from shuzhi.orgs import queries, service
from shuzhi.orgs.schemas import (
    DepartmentCreate,
    DepartmentList,
    DepartmentPublic,
    DepartmentUpdate,
    GrantCreate,
    RoleList,
    RolePublic,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenPublic,
    UserCreate,
    UserList,
    UserPublic,
    UserUpdate,
)

router = APIRouter(prefix=PREFIX, tags=["orgs"])


@router.get("/departments", response_model=DepartmentList)
def list_departments(
    session: SessionDep,
    actor: ActorDep,
    region: str | None = None,
    system: str | None = None,
    q: str | None = None,
) -> DepartmentList:
    found = queries.departments(session, region=region, system=system, q=q)
    return DepartmentList(
        data=[queries.department_public(session, d) for d in found], count=len(found)
    )


@router.post("/departments", response_model=DepartmentPublic, status_code=status.HTTP_201_CREATED)
def create_department(
    body: DepartmentCreate, database: DatabaseDep, actor: ActorDep
) -> DepartmentPublic:
    with database.transaction() as session:
        dept = service.create_department(session, actor=actor, data=body)
        return queries.department_public(session, dept)


@router.get("/departments/{code}", response_model=DepartmentPublic)
def get_department(code: str, session: SessionDep, actor: ActorDep) -> DepartmentPublic:
    return queries.department_public(session, queries.department(session, code))


@router.patch("/departments/{code}", response_model=DepartmentPublic)
def update_department(
    code: str, body: DepartmentUpdate, database: DatabaseDep, actor: ActorDep
) -> DepartmentPublic:
    with database.transaction() as session:
        dept = service.update_department(session, actor=actor, code=code, data=body)
        return queries.department_public(session, dept)


@router.get("/roles", response_model=RoleList)
def list_roles(session: SessionDep, actor: ActorDep) -> RoleList:
    found = queries.roles(session)
    return RoleList(
        data=[
            RolePublic(code=r.code, name_zh=r.name_zh, name_en=r.name_en, actions=list(r.actions))
            for r in found
        ],
        count=len(found),
    )


@router.get("/users/me", response_model=UserPublic)
def me(session: SessionDep, actor: ActorDep) -> UserPublic:
    return queries.user_public(session, queries.user(session, actor.name))


@router.get("/users", response_model=UserList)
def list_users(session: SessionDep, actor: ActorDep, department: str | None = None) -> UserList:
    """Users the caller may manage: those of departments in its ``orgs.manage_users`` scope."""
    visible = queries.manageable_users(session, actor=actor, department=department)
    return UserList(data=[queries.user_public(session, u) for u in visible], count=len(visible))


@router.post("/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, database: DatabaseDep, actor: ActorDep) -> UserPublic:
    with database.transaction() as session:
        account = service.create_user(session, actor=actor, data=body)
        return queries.user_public(session, account)


@router.get("/users/{username}", response_model=UserPublic)
def get_user(username: str, session: SessionDep, actor: ActorDep) -> UserPublic:
    return queries.user_public(
        session, queries.visible_user(session, actor=actor, username=username)
    )


@router.patch("/users/{username}", response_model=UserPublic)
def update_user(
    username: str, body: UserUpdate, database: DatabaseDep, actor: ActorDep
) -> UserPublic:
    """Deactivate a user (it can no longer log in or use its tokens), or activate it again."""
    with database.transaction() as session:
        account = service.set_active(session, actor=actor, username=username, active=body.active)
        return queries.user_public(session, account)


@router.post(
    "/users/{username}/grants", response_model=UserPublic, status_code=status.HTTP_201_CREATED
)
def grant_role(
    username: str, body: GrantCreate, database: DatabaseDep, actor: ActorDep
) -> UserPublic:
    with database.transaction() as session:
        service.grant_role(session, actor=actor, username=username, data=body)
        return queries.user_public(session, queries.user(session, username))


@router.delete("/users/{username}/grants", response_model=UserPublic)
def revoke_role(
    username: str, body: GrantCreate, database: DatabaseDep, actor: ActorDep
) -> UserPublic:
    with database.transaction() as session:
        service.revoke_role(session, actor=actor, username=username, data=body)
        return queries.user_public(session, queries.user(session, username))


def _token_public(token: object) -> TokenPublic:
    return TokenPublic.model_validate(token, from_attributes=True)


@router.get("/tokens", response_model=TokenList)
def list_tokens(session: SessionDep, actor: ActorDep) -> TokenList:
    found = queries.tokens_of(session, actor.id or 0)
    return TokenList(data=[_token_public(t) for t in found], count=len(found))


@router.post("/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, database: DatabaseDep, actor: ActorDep) -> TokenCreated:
    with database.transaction() as session:
        token, plaintext = service.create_token(
            session, actor=actor, username=actor.name, name=body.name, days=body.days
        )
        return TokenCreated(**_token_public(token).model_dump(), token=plaintext)


@router.delete("/tokens/{token_id}", response_model=TokenPublic)
def revoke_token(token_id: IdPath, database: DatabaseDep, actor: ActorDep) -> TokenPublic:
    with database.transaction() as session:
        return _token_public(service.revoke_token(session, actor=actor, token_id=token_id))
