from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from shuzhi.core.db import Database
from shuzhi.core.errors import DatabaseRevisionError, NotFound
from shuzhi.core.permissions import SYSTEM
from shuzhi.migrations import metadata


def test_migrations_create_exactly_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    assert diff == []


def test_migrated_database_passes_the_revision_check(db: Database) -> None:
    db.check_revision()
    assert db.current_revision() == db.head_revision()


def test_empty_database_is_refused_with_the_command_to_run(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DatabaseRevisionError, match="run `shuzhi db upgrade`"):
        database.check_revision()


def test_unknown_revision_is_refused(db: Database) -> None:
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    with pytest.raises(DatabaseRevisionError, match="f00dfeed, which this release"):
        db.check_revision()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_failing_unit_of_work_leaves_nothing(db: Database) -> None:
    from shuzhi.core import audit
    from shuzhi.core.models import ChangeLog

    with pytest.raises(RuntimeError), db.transaction() as session:
        audit.record(session, actor=SYSTEM, action="test.thing", object_type="thing", object_id="1")
        session.flush()
        raise RuntimeError("boom")
    with db.session() as session:
        assert session.query(ChangeLog).filter_by(action="test.thing").count() == 0


def test_nul_in_text_is_refused_on_every_backend(db: Database) -> None:
    from shuzhi.core.errors import ValidationFailed
    from shuzhi.orgs import queries
    from shuzhi.orgs import service as orgs
    from shuzhi.orgs.schemas import DepartmentCreate

    with (
        pytest.raises(ValidationFailed, match="NUL"),
        db.transaction() as session,
    ):
        orgs.create_department(
            session,
            actor=SYSTEM,
            data=DepartmentCreate(code="zj_nul", name="浙江\x00省", region="330000"),
        )
    with db.session() as session, pytest.raises(NotFound):
        queries.department(session, "zj_nul")


def test_a_server_checkpoints_in_the_background_not_in_a_commit(tmp_path: Path) -> None:
    import time

    from shuzhi.core.db import AUTOCHECKPOINT_PAGES, BACKSTOP_PAGES

    database = Database(f"sqlite:///{tmp_path / 'x.db'}")

    def autocheckpoint() -> int:
        with database.engine.connect() as connection:
            return connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()

    assert autocheckpoint() == AUTOCHECKPOINT_PAGES
    stop = database.checkpoint_in_background(0.05)
    try:
        # commits leave the log to the thread, checkpointing only far behind it
        assert autocheckpoint() == BACKSTOP_PAGES
        with database.driver_transaction() as driver:
            driver.execute("CREATE TABLE t (n INTEGER, text TEXT)")
        for n in range(200):
            with database.driver_transaction() as driver:
                driver.execute("INSERT INTO t VALUES (:n, :text)", {"n": n, "text": "x" * 2000})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = database.last_checkpoint
            if found is not None and found[1] > 0 and found[2] == found[1]:
                break
            time.sleep(0.02)
        busy, pages, copied = database.last_checkpoint or (1, 0, 0)
        assert (busy, copied) == (0, pages) and pages > 0
    finally:
        stop()
    assert autocheckpoint() == AUTOCHECKPOINT_PAGES
    database.checkpoint_in_background(0)()  # 0: commits checkpoint, as SQLite does
    assert autocheckpoint() == AUTOCHECKPOINT_PAGES
    memory = Database("sqlite://")
    memory.checkpoint_in_background(0.05)()
    assert memory.last_checkpoint is None
