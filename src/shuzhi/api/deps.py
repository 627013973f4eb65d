"""Typed dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session

from shuzhi.core.db import Database
from shuzhi.core.errors import Unauthenticated
from shuzhi.core.permissions import Actor
from shuzhi.orgs import queries as orgs
from shuzhi.orgs import service as orgs_service
from shuzhi.orgs.schemas import ID_MAX


def get_database(request: Request) -> Database:
    return request.app.state.database


DatabaseDep = Annotated[Database, Depends(get_database)]


def get_session(database: DatabaseDep) -> Iterator[Session]:
    with database.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_actor(request: Request, session: SessionDep, database: DatabaseDep) -> Actor:
    """The caller, from ``Authorization: Bearer <API token>``; 401 without one."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthenticated("present an API token as 'Authorization: Bearer <token>'")
    plaintext = credential.strip()
    token = orgs_service.live_token(session, plaintext=plaintext)
    account = token.user
    if orgs_service.token_use_due(token):
        with database.transaction() as writer:
            orgs_service.touch_token(writer, token_id=token.id)
    request.state.actor_name = account.username
    return orgs.actor_for(session, account)


ActorDep = Annotated[Actor, Depends(get_actor)]


# Bounded so that no number a client sends overflows the database driver: an offset past a
# million rows pages nothing real, and an id past ID_MAX names no row.
OFFSET_MAX = 1_000_000
Offset = Annotated[int, Query(ge=0, le=OFFSET_MAX, description="rows to skip")]
IdPath = Annotated[int, Path(ge=1, le=ID_MAX)]
