"""Stamps: a value per kind of metadata, replaced in the transaction that changes it.

A process may keep what it read of that metadata for as long as the stamp it read with
is unchanged, and check the stamp again inside its own transaction before it acts on
what it kept. A new stamp is a random number, not the next one: a database restored from
a backup, or another database at the same address, cannot bring back a value that a
process kept different metadata under. A model joins a stamp by naming it::

    class Grant(Base):
        __stamp__ = ACCESS

Every flush that inserts, changes or deletes such a row, and every ORM ``INSERT``,
``UPDATE`` or ``DELETE`` statement on its table, replaces the stamp in the same
transaction: a rollback takes the new stamp back with the change.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import BigInteger, String, event, select
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from shuzhi.core.db import Base
from shuzhi.core.dialect import put

# who may read what: credentials, consumers, grants, catalog resources and their fields,
# regions (a grant's region scope is a subtree)
ACCESS = "access"


class Stamp(Base):
    __tablename__ = "stamp"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


def _stamp_of(model: Any) -> str | None:
    return getattr(model, "__stamp__", None)


def new_value() -> int:
    return secrets.randbits(62)


def replace(session: Session, names: set[str]) -> None:
    connection = session.connection()
    for name in sorted(names):
        put(connection, Stamp.__table__, keys={"name": name}, values={"value": new_value()})


def read(session: Session, name: str) -> int:
    return session.scalar(select(Stamp.value).where(Stamp.name == name)) or 0


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: Any) -> None:
    names = {
        name
        for item in (*session.new, *session.dirty, *session.deleted)
        if (name := _stamp_of(type(item))) is not None
    }
    if names:
        replace(session, names)


@event.listens_for(Session, "do_orm_execute")
def _bulk(execution: ORMExecuteState) -> None:
    if not (execution.is_insert or execution.is_update or execution.is_delete):
        return
    names = {
        name for mapper in execution.all_mappers if (name := _stamp_of(mapper.class_)) is not None
    }
    if names:
        replace(execution.session, names)
