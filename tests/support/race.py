"""Two transactions racing on PostgreSQL, in a fixed order."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.orm import Session

from shuzhi.core.db import Database

WAIT_S = 30


def _wait_until_blocked(database: Database, thread: threading.Thread) -> None:
    """Until some session of this database waits on a lock (or the thread ended)."""
    with database.engine.connect() as probe:
        for _ in range(300):
            waiting = probe.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).scalar()
            if waiting or not thread.is_alive():
                return
            threading.Event().wait(0.05)


def race(
    database: Database,
    first: Callable[[Session], object],
    second: Callable[[Session], object],
) -> object:
    """``first`` writes and keeps its transaction open; ``second`` starts meanwhile and, once
    it is blocked, ``first`` commits. Returns how ``second`` ended: "done" or its error."""
    flushed, may_commit = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def run_first() -> None:
        with database.transaction() as session:
            first(session)
            flushed.set()
            may_commit.wait(WAIT_S)

    def run_second() -> None:
        try:
            with database.transaction() as session:
                second(session)
            outcome["second"] = "done"
        except Exception as exc:  # whatever it was, it is the outcome
            outcome["second"] = exc

    one = threading.Thread(target=run_first)
    one.start()
    assert flushed.wait(WAIT_S)
    two = threading.Thread(target=run_second)
    two.start()
    _wait_until_blocked(database, two)
    may_commit.set()
    one.join(WAIT_S)
    two.join(WAIT_S)
    return outcome.get("second")
