"""Defects found in review of the lake: each test failed before its fix."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from shuzhi.core import clock
from shuzhi.core.errors import Conflict, ValidationFailed
from shuzhi.core.models import ChangeLog
from shuzhi.core.permissions import SYSTEM
from shuzhi.core.settings import get_settings
from shuzhi.lake import queries, service
from shuzhi.lake.connectors import SourceSpec
from shuzhi.lake.models import Source
from shuzhi.lake.rules import Mode
from shuzhi.lake.schemas import SourceCreate
from tests.conftest import World, resource_doc
from tests.lake.data import (
    CODE,
    ROWS,
    VALID_A,
    all_types_doc,
    batches_of,
    create_draft,
    ingest,
    republish,
    snapshot_rows,
    write_csv,
    write_sqlite,
)


def register(db: Any, location: str, **options: Any) -> Source:
    with db.transaction() as session:
        source = service.register_source(
            session,
            actor=SYSTEM,
            code=CODE,
            data=SourceCreate(name="review", location=location, **options),
        )
        session.expunge(source)
        return source


# security: a registered source reads only what it may --------------------------------------


def test_a_database_file_outside_the_source_directories_cannot_be_registered(
    lake_world: World, tmp_path: Path
) -> None:
    """A SQLite URL is a file: registering one must not read the platform's own store (its
    password hashes) or any other file the server can open."""
    db = lake_world.database
    store = get_settings().database.url  # the metadata store itself, a SQLite file
    assert store.startswith("sqlite:///")
    for location in (store, write_sqlite(tmp_path / "elsewhere.db")):
        with pytest.raises(ValidationFailed, match="outside the source directories"):
            register(db, location, query="SELECT * FROM user_account")

    inbox = get_settings().inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    inside = register(db, write_sqlite(inbox / "people.db"), table="people")
    assert inside.location.endswith("inbox/people.db")


def test_a_location_with_a_nul_character_is_refused_in_one_line(lake_world: World) -> None:
    inbox = get_settings().inbox_dir
    with pytest.raises(ValidationFailed):
        register(lake_world.database, f"{inbox}/\x00people.csv")


def test_a_password_given_in_a_url_query_is_hidden_wherever_the_source_is_shown(
    lake_world: World,
) -> None:
    location = "postgresql://reader@db.example:5432/people?password=s3cret&sslmode=require"
    assert "s3cret" not in SourceSpec(location=location, table="t").describe()
    assert "sslmode=require" in SourceSpec(location=location, table="t").describe()

    db = lake_world.database
    source = register(db, location, table="people")
    with db.session() as session:
        shown = queries.source_public(session.get(Source, source.id))
        change = session.scalar(select(ChangeLog).where(ChangeLog.action == "lake.source.create"))
    assert "s3cret" not in shown.location
    assert change is not None and "s3cret" not in str(change.after)


# errors: bad reading options are one-line errors, not tracebacks ------------------------------


@pytest.mark.parametrize("delimiter", ['"', ";;", "\n"])
def test_an_unusable_delimiter_is_a_validation_error(
    lake_world: World, tmp_path: Path, delimiter: str
) -> None:
    with pytest.raises(ValidationFailed, match="delimiter"):
        ingest(lake_world.database, write_csv(tmp_path / "people.csv"), delimiter=delimiter)
    assert batches_of(lake_world.database)[-1].state == "failed"


@pytest.mark.parametrize("encoding", ["utf-16", "rot13", "hex", "base64"])
def test_an_encoding_that_does_not_decode_text_is_a_validation_error(
    lake_world: World, tmp_path: Path, encoding: str
) -> None:
    with pytest.raises(ValidationFailed, match="encoding"):
        ingest(lake_world.database, write_csv(tmp_path / "people.csv"), encoding=encoding)


@pytest.mark.parametrize("filename", ["..", ".", "/", "a" * 300 + ".csv", "é" * 200 + ".csv"])
def test_any_upload_file_name_is_kept_inside_its_own_folder(
    lake_world: World, tmp_path: Path, filename: str
) -> None:
    settings = get_settings()
    path = service.save_upload(io.BytesIO(b"a,b\n1,2\n"), filename=filename, settings=settings)
    try:
        assert path.is_file()
        assert path.parent.parent == queries.lake_of(settings).temp_dir
        assert len(path.name.encode()) <= 255
        if filename.endswith(".csv"):
            assert path.suffix == ".csv"  # the format is still told by the suffix
    finally:
        path.unlink()
        path.parent.rmdir()


# correctness --------------------------------------------------------------------------------

ADDED = {"name": "remark", "title": "备注", "type": "string"}


def with_remark() -> dict[str, Any]:
    doc = all_types_doc()
    doc["fields"].append(dict(ADDED))
    return doc


def test_the_data_tab_shows_a_snapshot_older_than_a_field_added_since(
    lake_world: World, tmp_path: Path
) -> None:
    db = lake_world.database
    ingest(db, write_csv(tmp_path / "people.csv"))
    republish(db, with_remark())
    with db.session() as session:
        tab = queries.data_tab(session, actor=SYSTEM, code=CODE)
    assert tab.columns[-1] == "remark"
    assert len(tab.sample) == 3 and all(item[-1] is None for item in tab.sample)


def test_an_incremental_load_after_a_field_was_added_upserts_by_name(
    lake_world: World, tmp_path: Path
) -> None:
    db = lake_world.database
    ingest(db, write_csv(tmp_path / "people.csv"))
    republish(db, with_remark())
    names = [item["name"] for item in with_remark()["fields"]]
    changed = [*VALID_A[:-1], "9.5", "新备注"]  # row A again, income and remark new
    batch = ingest(
        db,
        write_csv(tmp_path / "more.csv", [changed], headers=names),
        mode=Mode.incremental,
    )
    assert batch.state == "succeeded"
    rows = {item[0]: item for item in snapshot_rows()}
    assert len(rows) == 3
    assert rows[VALID_A[0]][-2:] == (9.5, "新备注")
    assert all(item[-1] is None for key, item in rows.items() if key != VALID_A[0])


def test_an_incremental_load_after_a_field_changed_type_is_refused_in_one_line(
    lake_world: World, tmp_path: Path
) -> None:
    db = lake_world.database
    ingest(db, write_csv(tmp_path / "people.csv"))
    doc = all_types_doc()
    next(item for item in doc["fields"] if item["name"] == "age")["type"] = "string"
    doc["fields"] = [
        {**item, "rules": None} if item["name"] == "age" else item for item in doc["fields"]
    ]
    republish(db, doc)
    with pytest.raises(ValidationFailed, match="full"):
        ingest(db, write_csv(tmp_path / "people.csv"), mode=Mode.incremental)


def test_without_a_key_identical_rows_with_empty_cells_are_duplicates(
    lake_world: World, tmp_path: Path
) -> None:
    """A resource without a primary key (a draft) takes each row as its own key: an exact
    repeat is dropped, empty cells and all."""
    db = lake_world.database
    create_draft(
        db,
        resource_doc(
            code="gat_notes",
            fields=[
                {"name": "title", "title": "标题", "type": "string"},
                {"name": "note", "title": "备注", "type": "string"},
            ],
        ),
    )
    path = tmp_path / "notes.csv"
    path.write_text("title,note\n甲,\n甲,\n乙,x\n乙,x\n", encoding="utf-8")
    batch = ingest(db, path, code="gat_notes")
    assert (batch.rows_read, batch.rows_loaded, batch.duplicates) == (4, 2, 2)


# scheduled pulls ----------------------------------------------------------------------------


def inbox_csv() -> str:
    inbox = get_settings().inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    return str(write_csv(inbox / "people.csv", ROWS))


def test_two_workers_never_both_pull_a_source_and_a_dead_ones_claim_lapses(
    lake_world: World,
) -> None:
    db = lake_world.database
    source = register(db, inbox_csv())
    now = clock.now()
    lease = timedelta(minutes=get_settings().lake.pull_lease_minutes)
    with db.transaction() as session:
        session.get(Source, source.id).next_run_at = now - timedelta(minutes=1)
    assert service._claim(db, source.id, "host:1", now, lease)
    assert not service._claim(db, source.id, "host:2", now, lease)
    with pytest.raises(Conflict):
        service.run_source(db, source_id=source.id, force=True)
    later = now + lease + timedelta(minutes=1)
    assert service._claim(db, source.id, "host:2", later, lease)


def test_a_pull_whose_schedule_no_longer_fires_releases_its_claim(lake_world: World) -> None:
    """The resource's update cycle became irregular after its 'cycle' source was
    registered: the pull still ends, its claim released, and the worker goes on."""
    db = lake_world.database
    source = register(db, inbox_csv())
    republish(db, all_types_doc(update_cycle="irregular"))
    with db.transaction() as session:
        session.get(Source, source.id).next_run_at = clock.now() - timedelta(minutes=1)
    assert service.run_due_pulls(db, "host:1") == 1
    with db.session() as session:
        pulled = session.get(Source, source.id)
        assert pulled.claimed_by is None
        assert pulled.last_batch_id is not None
        assert pulled.last_error and "schedule" in pulled.last_error


def test_a_source_file_replaced_by_a_link_outside_the_inbox_is_not_read(
    lake_world: World, tmp_path: Path
) -> None:
    """Departments drop files into the inbox; the location is checked at each pull, not
    only when the source was registered."""
    db = lake_world.database
    location = inbox_csv()
    source = register(db, location)
    secret = write_csv(tmp_path / "elsewhere.csv")
    Path(location).unlink()
    Path(location).symlink_to(secret)
    with pytest.raises(ValidationFailed, match="outside the source directories"):
        service.run_source(db, source_id=source.id, force=True)
    assert batches_of(db) == []


def test_a_database_source_is_read_in_a_read_only_session(lake_world: World) -> None:
    import sqlite3

    source = get_settings().inbox_dir / "writes.db"
    source.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as connection:
        connection.execute("CREATE TABLE t (x TEXT)")
    with pytest.raises(ValidationFailed, match=r"readonly|read-only|read only"):
        service.ingest(
            lake_world.database,
            actor=SYSTEM,
            code=CODE,
            source=SourceSpec(
                location=f"sqlite:///{source}", query="INSERT INTO t VALUES ('x') RETURNING x"
            ),
        )
    with sqlite3.connect(source) as connection:
        assert connection.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_pull_that_finds_its_resource_busy_is_not_a_failed_attempt(lake_world: World) -> None:
    db = lake_world.database
    inbox = get_settings().inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    path = write_csv(inbox / "busy.csv")
    with db.transaction() as session:
        source = service.register_source(
            session,
            actor=SYSTEM,
            code=CODE,
            data=SourceCreate(name="busy", location=str(path), schedule="0 2 * * *"),
        )
        source_id = source.id
    with queries.lake_of().locked(CODE), pytest.raises(Conflict, match="already running"):
        service.run_source(db, source_id=source_id, force=True)
    with db.session() as session:
        source = session.get(Source, source_id)
        assert (source.attempts, source.last_error, source.claimed_by) == (0, None, None)
    assert service.run_source(db, source_id=source_id, force=True) is not None


def test_recovery_leaves_a_batch_running_on_another_host_until_it_times_out(
    lake_world: World, tmp_path: Path
) -> None:
    from shuzhi.lake.models import Batch
    from shuzhi.lake.rules import BatchState

    db = lake_world.database
    ingest(db, write_csv(tmp_path / "first.csv"))
    with db.session() as session:
        resource_id = session.scalar(select(Batch.resource_id))
    with db.transaction() as session:
        elsewhere = Batch(
            resource_id=resource_id,
            source="x.csv",
            connector="csv",
            mode="full",
            state=BatchState.running.value,
            fingerprint="",
            actor="system",
            runner="another-host:4242",
            started_at=clock.now() - timedelta(hours=2),
        )
        session.add(elsewhere)
        session.flush()
        elsewhere_id = elsewhere.id

    def state() -> str:
        with db.session() as session:
            found = session.get(Batch, elsewhere_id)
            assert found is not None
            return found.state

    assert service.recover_all(db) == 0
    assert state() == "running"
    with db.transaction() as session:
        found = session.get(Batch, elsewhere_id)
        assert found is not None
        found.started_at = clock.now() - timedelta(hours=25)
    assert service.recover_all(db) == 1
    assert state() == "failed"
