"""Counting the SQL statements a piece of code runs: the "no N+1" checks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from shuzhi.core.db import Database


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    """The SQL statements run on ``db`` inside the block."""
    seen: list[str] = []

    def saw(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", saw)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", saw)
