"""Every difference between SQLite and PostgreSQL lives here."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from shuzhi.core.errors import ValidationFailed


class _JSON(TypeDecorator[Any]):
    """JSON on SQLite, JSONB on PostgreSQL; a NUL in any string inside is refused before
    serialisation turns it into a \\u0000 escape that PostgreSQL's JSONB rejects."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if _has_nul(value):
            raise ValidationFailed("text cannot contain the NUL character (0x00)")
        return value


JSONType = _JSON()


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on both stores.

    SQLite keeps no zone, so values are normalised to UTC before they are written and
    given their zone back when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use shuzhi.core.clock")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Driver:
    """A DBAPI connection for the statements of a hot path: SQL written once with
    ``:name`` parameters for both stores, values given as the column types would write
    them, and NUL refused as everywhere else."""

    def __init__(self, connection: Any, backend: str) -> None:
        self.connection = connection
        self.sqlite = backend == "sqlite"
        self.cursor = connection.cursor()
        # PostgreSQL locks the rows a statement reads this way; SQLite's writer lock does
        self.for_update = "" if self.sqlite else " FOR UPDATE"

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        if params and _has_nul(params):
            raise ValidationFailed("text cannot contain the NUL character (0x00)")
        self.cursor.execute(sql if self.sqlite else _pyformat(sql), params or {})
        return self.cursor

    def time(self, value: datetime) -> Any:
        """As ``UTCDateTime`` writes it: UTC, kept as SQLAlchemy's text on SQLite."""
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(" ", "microseconds") if self.sqlite else value

    def json(self, value: Any) -> Any:
        """As ``JSONType`` writes it: JSON text on SQLite, JSONB on PostgreSQL."""
        if self.sqlite:
            return json.dumps(value, ensure_ascii=False)
        from psycopg.types.json import Jsonb

        return Jsonb(value)


@lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    return re.sub(r"(?<![:\w]):([a-z_][a-z0-9_]*)", r"%(\1)s", sql)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


def refuse_nul(engine: Engine) -> None:
    """PostgreSQL cannot store NUL in text and fails with a driver error; SQLite would
    store it. Both refuse it here, with a clear error, whichever interface it came from."""

    @event.listens_for(engine, "before_cursor_execute")
    def _check(
        _conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if _has_nul(parameters):
            raise ValidationFailed("text cannot contain the NUL character (0x00)")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def configure_sqlite(engine: Engine, *, busy_timeout_ms: int) -> None:
    """WAL, foreign keys, and transactions we begin ourselves.

    The driver's implicit BEGIN is switched off so that a write transaction can start
    with BEGIN IMMEDIATE: it takes the write lock up front instead of failing half-way
    when another writer got there first.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("shuzhi_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _insert(session: Any) -> Any:
    """The dialect's INSERT (with ON CONFLICT) for a session or a connection."""
    bind = session.get_bind() if isinstance(session, Session) else session
    if bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def insert_new(
    session: Any, table: Any, values: dict[str, Any], *, unique: tuple[str, ...]
) -> bool:
    """Insert the row unless one with the same ``unique`` columns exists; whether it was
    new. One statement, no savepoint: a concurrent twin makes this one a no-op."""
    stmt = (
        _insert(session)(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(unique))
        .returning(*(table.c[name] for name in unique))
    )
    return session.execute(stmt).first() is not None


def put(session: Any, table: Any, *, keys: dict[str, Any], values: dict[str, Any]) -> None:
    """Insert the row at ``keys`` with ``values``, or set them on the row already there."""
    stmt = _insert(session)(table).values(**keys, **values)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=list(keys), set_={name: stmt.excluded[name] for name in values}
        )
    )


def add_to_counter(
    session: Any, table: Any, *, keys: dict[str, Any], amounts: dict[str, int]
) -> tuple[int, ...]:
    """Add ``amounts`` to the row of ``table`` at ``keys`` (made if missing) in one
    statement, and return the new totals: several server processes count together."""
    stmt = _insert(session)(table).values(**keys, **amounts)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + stmt.excluded[name] for name in amounts},
    ).returning(*(table.c[name] for name in amounts))
    return tuple(session.execute(stmt).one())
