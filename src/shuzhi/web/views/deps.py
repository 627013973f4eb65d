"""Dependencies of the cockpit views."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from shuzhi.core.db import Database
from shuzhi.core.errors import Message, Unauthenticated
from shuzhi.core.permissions import Actor
from shuzhi.web.session import actor_from_cookie


def get_database(request: Request) -> Database:
    return request.app.state.database


DatabaseDep = Annotated[Database, Depends(get_database)]


def get_session(database: DatabaseDep) -> Iterator[Session]:
    with database.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def page_actor(request: Request, session: SessionDep) -> Actor:
    """The signed-in user; without one the error handler sends the browser to /login."""
    actor = actor_from_cookie(request, session)
    request.state.actor = actor
    if not actor.authenticated:
        raise Unauthenticated(Message("log in"))
    return actor


PageActor = Annotated[Actor, Depends(page_actor)]


MAX_PAGE = 100_000  # far past any real list; OFFSET stays a number the database accepts


def page_number(page: str | None = None) -> int:
    """``?page=`` as typed or edited by hand: anything but a number is the first page."""
    try:
        number = int(page or 1)
    except ValueError:
        return 1
    return min(max(number, 1), MAX_PAGE)


PageNumber = Annotated[int, Depends(page_number)]
