"""Ingestion as a use case: batches recorded, refusals clean, kills recovered, incremental
upserts, retention, idempotency and the personal-data flags."""

from __future__ import annotations

import codecs
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from shuzhi.core.db import Database
from shuzhi.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from shuzhi.core.models import ChangeLog
from shuzhi.core.permissions import SYSTEM
from shuzhi.core.settings import get_settings, reset_settings
from shuzhi.lake import queries, service
from shuzhi.lake.models import Batch, Health, PiiFlag, Quality
from shuzhi.lake.rules import BatchState, Mode
from shuzhi.lake.service import INTERRUPTED, lake_of
from tests.conftest import World, resource_doc
from tests.lake.data import (
    CODE,
    COUNTS,
    NAMES,
    ROWS,
    SNAPSHOT,
    TITLES,
    VALID_A,
    VALID_B,
    VALID_C,
    Counted,
    all_types_doc,
    batches_of,
    create_draft,
    files_under,
    ingest,
    publish,
    republish,
    row,
    snapshot_rows,
    withdraw,
    write_csv,
    write_sqlite,
    write_xlsx,
)

# end to end, on SQLite and PostgreSQL ---------------------------------------------------------


def test_a_batch_is_recorded_with_its_quality_audit_and_health(
    any_lake_world: World, tmp_path: Path
) -> None:
    db = any_lake_world.database
    officer = any_lake_world.actors["gat_officer"]
    batch = ingest(db, write_csv(tmp_path / "people.csv"), actor=officer)

    assert batch.state == "succeeded"
    assert Counted.of(batch) == Counted(**COUNTS)
    assert batch.actor == "gat_officer"
    assert batch.finished_at is not None and batch.finished_at >= batch.started_at
    assert lake_of().current(CODE) == batch.snapshot
    assert snapshot_rows() == SNAPSHOT
    assert lake_of().quarantine_file(CODE, batch.id).exists()
    with db.session() as session:
        [quality] = session.scalars(select(Quality).where(Quality.batch_id == batch.id))
        assert quality.rows == 3
        assert quality.validity == pytest.approx(3 / 18)
        assert quality.uniqueness == pytest.approx(1 - 1 / 19)
        [change] = session.scalars(select(ChangeLog).where(ChangeLog.action == "lake.ingest"))
        assert change.actor_name == "gat_officer"
        assert change.after is not None and change.after["rows_loaded"] == 3
        # today's coverage roll-up follows every batch
        overall = session.scalar(select(Health).where(Health.scope == "all"))
        assert overall is not None and (overall.published, overall.current) == (1, 1)
        listed, total = queries.batches(session, actor=officer, code=CODE)
        assert total == 1 and listed[0].id == batch.id


# bad input: a clear error, the batch failed, nothing new in the lake ---------------------------

Make = Callable[[Path], tuple[str, dict[str, Any]]]


def _csv_text(path: Path, text: str, encoding: str = "utf-8") -> str:
    return _bytes(path, text.encode(encoding))


def _bytes(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _header(*names: str) -> str:
    return ",".join(names) + "\n"


GOOD_LINE = f"{VALID_A[0]},张三\n"

BAD_INPUTS: dict[str, tuple[Make, str]] = {
    "a row with an extra cell": (
        lambda tmp: (
            _csv_text(tmp / "a.csv", _header("id_card", "full_name") + GOOD_LINE + "x,y,z\n"),
            {},
        ),
        "does not parse",
    ),
    "bytes neither UTF-8 nor GB18030": (
        lambda tmp: (_bytes(tmp / "a.csv", b"id_card,full_name\n\xff\xfe\x80,x\n"), {}),
        "cannot detect the encoding",
    ),
    "a UTF-8 file (BOM) with a stray byte": (
        lambda tmp: (
            _bytes(
                tmp / "a.csv",
                codecs.BOM_UTF8 + f"id_card,full_name\n{GOOD_LINE}".encode() + b"\xff,x\n",
            ),
            {},
        ),
        "a.csv is not valid UTF-8; give --encoding",
    ),
    "GBK declared as UTF-8": (
        lambda tmp: (
            _csv_text(tmp / "a.csv", _header("公民身份号码", "姓名") + GOOD_LINE, "gbk"),
            {"encoding": "utf-8"},
        ),
        "not valid UTF-8",
    ),
    "UTF-8 declared as ASCII": (
        lambda tmp: (
            _csv_text(tmp / "a.csv", _header("id_card", "full_name") + GOOD_LINE),
            {"encoding": "ascii"},
        ),
        "not valid ascii at byte 37",
    ),
    "a header matching no field": (
        lambda tmp: (
            _csv_text(
                tmp / "a.csv", _header("id_card", "full_name", "籍贯") + GOOD_LINE[:-1] + ",杭州\n"
            ),
            {},
        ),
        "column '籍贯' matches no field",
    ),
    "a header twice": (
        lambda tmp: (
            _csv_text(
                tmp / "a.csv",
                _header("id_card", "full_name", "full_name") + GOOD_LINE[:-1] + ",x\n",
            ),
            {},
        ),
        "column 'full_name' appears twice",
    ),
    "an empty header cell": (
        lambda tmp: (
            _csv_text(tmp / "a.csv", _header("id_card", "", "full_name") + f"{VALID_A[0]},,x\n"),
            {},
        ),
        "header cell 2 is empty",
    ),
    "no column for a required field": (
        lambda tmp: (
            _csv_text(tmp / "a.csv", _header("id_card", "mobile") + f"{VALID_A[0]},x\n"),
            {},
        ),
        "no column for required field full_name (姓名)",
    ),
    "an unknown sheet": (
        lambda tmp: (str(write_xlsx(tmp / "a.xlsx", ROWS[:2])), {"sheet": "不存在"}),
        "has no sheet '不存在'; it has 人员",
    ),
    "a corrupt workbook": (
        lambda tmp: (_csv_text(tmp / "a.xlsx", "PK\x03\x04 this is not a zip"), {}),
        "is not a readable XLSX workbook",
    ),
    "an unreachable database": (
        lambda tmp: ("postgresql+psycopg://nobody@127.0.0.1:1/x", {"table": "people"}),
        "cannot read postgresql+psycopg://nobody@127.0.0.1:1/x table people",
    ),
    "a missing table": (
        lambda tmp: (write_sqlite(tmp / "other.sqlite", ROWS[:1], "other"), {"table": "people"}),
        "no such table: people",
    ),
    "a missing database file": (
        lambda tmp: (f"sqlite:///{tmp / 'nowhere.sqlite'}", {"table": "people"}),
        "no such file",
    ),
    "a missing file": (lambda tmp: (str(tmp / "nowhere.csv"), {}), "no such file"),
    "broken JSON": (
        lambda tmp: (_csv_text(tmp / "a.json", '[{"id_card": "1"'), {}),
        "a.json does not parse",
    ),
    "an unknown format": (lambda tmp: (str(tmp / "a.dbf"), {}), "cannot tell the format"),
}


def test_bad_input_fails_the_batch_and_leaves_the_lake_as_it_was(
    lake_world: World, tmp_path: Path
) -> None:
    """Every case against one previous snapshot (a store per case would be slow)."""
    db = lake_world.database
    previous = ingest(db, write_csv(tmp_path / "good.csv"))
    lake = lake_of()
    before = files_under(lake.root)
    wrong: dict[str, str] = {}
    for number, (case, (make, message)) in enumerate(BAD_INPUTS.items()):
        folder = tmp_path / f"case-{number}"
        folder.mkdir()
        location, options = make(folder)
        try:
            ingest(db, location, **options)
        except ValidationFailed as exc:
            detail = exc.detail
        except Exception as exc:
            wrong[case] = f"raised {type(exc).__name__}: {exc}"
            continue
        else:
            wrong[case] = "was loaded"
            continue
        failed = batches_of(db)[-1]
        problems = [
            f"message {detail!r} lacks {message!r}" if message not in detail else "",
            "the message spans lines" if "\n" in detail else "",
            f"batch {failed.id} is {failed.state}" if failed.state != "failed" else "",
            "the batch error is not the message" if failed.error != detail else "",
            "the batch names a snapshot" if failed.snapshot is not None else "",
            "the current snapshot moved" if lake.current(CODE) != previous.snapshot else "",
            f"the lake changed: {files_under(lake.root) ^ before}"
            if files_under(lake.root) != before
            else "",
        ]
        if any(problems):
            wrong[case] = "; ".join(problem for problem in problems if problem)
    assert wrong == {}
    assert len(batches_of(db)) == 1 + len(BAD_INPUTS)
    assert snapshot_rows() == SNAPSHOT


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"full_name": "nickname"}, "the resource has no field 'nickname'"),
        ({"籍贯": "region"}, "the source has no column '籍贯'"),
        ({"company": "full_name"}, "field full_name is fed by more than one column"),
    ],
)
def test_a_bad_map_fails_the_batch(
    overrides: dict[str, str], message: str, lake_world: World, tmp_path: Path
) -> None:
    with pytest.raises(ValidationFailed, match=message):
        ingest(lake_world.database, write_csv(tmp_path / "people.csv"), overrides=overrides)
    [failed] = batches_of(lake_world.database)
    assert failed.state == "failed" and message in (failed.error or "")
    assert lake_of().current(CODE) is None
    assert lake_of().snapshots(CODE) == []


def test_a_map_renames_and_drops_columns(lake_world: World, tmp_path: Path) -> None:
    headers = ["证件号", *NAMES[1:], "内部编号"]
    path = write_csv(tmp_path / "people.csv", [[*item, "n1"] for item in ROWS], headers=headers)
    batch = ingest(lake_world.database, path, overrides={"证件号": "id_card", "内部编号": ""})
    assert Counted.of(batch) == Counted(**COUNTS)
    assert batch.mapping["证件号"] == "id_card" and "内部编号" not in batch.mapping
    assert snapshot_rows() == SNAPSHOT


# who may load what ------------------------------------------------------------------------


def test_an_unknown_resource_is_not_found_and_starts_no_batch(
    lake_world: World, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match="no catalog resource 'nope'"):
        ingest(lake_world.database, write_csv(tmp_path / "people.csv"), code="nope")
    assert batches_of(lake_world.database) == []


@pytest.mark.parametrize("user", ["viewer", "wjw_officer", "auditor"])
def test_only_the_providers_officers_may_load_its_resource(
    user: str, lake_world: World, tmp_path: Path
) -> None:
    with pytest.raises(PermissionDenied):
        ingest(
            lake_world.database, write_csv(tmp_path / "people.csv"), actor=lake_world.actors[user]
        )
    assert batches_of(lake_world.database) == []
    assert files_under(lake_of().root) == set()


@pytest.mark.parametrize("user", ["gat_officer", "gat_admin", "admin"])
def test_the_providers_officers_and_admins_may_load(
    user: str, lake_world: World, tmp_path: Path
) -> None:
    rows = [VALID_A, VALID_B]
    batch = ingest(
        lake_world.database,
        write_csv(tmp_path / "people.csv", rows),
        actor=lake_world.actors[user],
    )
    assert (batch.state, batch.actor, batch.rows_loaded) == ("succeeded", user, 2)


def test_a_withdrawn_resource_takes_no_data(lake_world: World, tmp_path: Path) -> None:
    previous = ingest(lake_world.database, write_csv(tmp_path / "people.csv"))
    withdraw(lake_world.database, CODE)
    with pytest.raises(ValidationFailed, match="withdrawn"):
        ingest(lake_world.database, write_csv(tmp_path / "people.csv", [VALID_A]))
    assert [item.id for item in batches_of(lake_world.database)] == [previous.id]
    assert lake_of().current(CODE) == previous.snapshot


def test_a_second_batch_of_the_same_resource_is_refused_while_one_runs(
    lake_world: World, tmp_path: Path
) -> None:
    previous = ingest(lake_world.database, write_csv(tmp_path / "people.csv"))
    with lake_of().locked(CODE), pytest.raises(Conflict, match="already running"):
        ingest(lake_world.database, write_csv(tmp_path / "people.csv", [VALID_A]))
    assert [item.id for item in batches_of(lake_world.database)] == [previous.id]
    assert lake_of().current(CODE) == previous.snapshot


# a batch killed mid-way ----------------------------------------------------------------------

KILLED_BATCH = """
import sys, time
from pathlib import Path
from shuzhi.core.db import get_database
from shuzhi.core.permissions import SYSTEM
from shuzhi.lake import service
from shuzhi.lake.connectors import SourceSpec
from shuzhi.lake.storage import Lake

where, code, source, ready = sys.argv[1:5]


def stop(*args, **kwargs):
    Path(ready).write_text("stopped")
    time.sleep(120)


progress = None
if where == "checking":
    progress = lambda phase, rows: stop() if phase == where else None
else:
    setattr(Lake, where, stop)
service.ingest(
    get_database(), actor=SYSTEM, code=code, source=SourceSpec(location=source),
    progress=progress,
)
"""


def kill_mid_batch(tmp_path: Path, where: str, source: Path) -> None:
    """Run a batch in another process (the test's data dir and database) and SIGKILL it
    once it reaches ``where``."""
    ready = tmp_path / f"stopped-{where}"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_BATCH, where, CODE, str(source), str(ready)],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            if process.poll() is not None:
                pytest.fail(f"the batch ended before it was killed:\n{process.stderr.read()}")
            assert time.monotonic() < deadline, "the batch never reached the kill point"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL


@pytest.mark.parametrize(
    ("where", "recovery"),
    [
        ("checking", "recover_all"),  # staged in DuckDB, nothing written yet
        ("publish_staged", "next ingest"),  # snapshot and quarantine written, not moved
    ],
)
def test_a_killed_batch_leaves_the_previous_snapshot_and_is_recovered(
    where: str, recovery: str, lake_world: World, tmp_path: Path
) -> None:
    db = lake_world.database
    lake = lake_of()
    previous = ingest(db, write_csv(tmp_path / "good.csv"))
    kept = files_under(lake.root)

    # a refused row too, so that the batch has a quarantine file to leave behind
    kill_mid_batch(tmp_path, where, write_csv(tmp_path / "next.csv", [VALID_A, row(age="x")]))

    killed = batches_of(db)[-1]
    assert killed.state == BatchState.running.value
    assert lake.current(CODE) == previous.snapshot
    assert snapshot_rows() == SNAPSHOT  # and readable
    assert not lake.is_locked(CODE)  # the kernel let go of the dead process's lock
    if where == "publish_staged":
        assert list((lake.folder(CODE) / ".staging").iterdir())

    if recovery == "recover_all":
        assert service.recover_all(db) == 1
        assert service.recover_all(db) == 0
    else:
        after = ingest(db, write_csv(tmp_path / "again.csv", [VALID_C]))
        assert after.state == "succeeded" and lake.current(CODE) == after.snapshot

    killed = batch_by_id(db, killed.id)
    assert (killed.state, killed.error) == (BatchState.failed.value, INTERRUPTED)
    assert killed.finished_at is not None
    assert not (lake.folder(CODE) / ".staging").exists() or not any(
        (lake.folder(CODE) / ".staging").iterdir()
    )
    assert not (lake.temp_dir / f"batch-{killed.id}").exists()
    assert not lake.quarantine_file(CODE, killed.id).exists()
    if recovery == "recover_all":
        assert files_under(lake.root) == kept
        final = ingest(db, write_csv(tmp_path / "again.csv", [VALID_C]))
        assert final.state == "succeeded"
        assert snapshot_rows() == [item for item in SNAPSHOT if item[0] == VALID_C[0]]


def batch_by_id(db: Database, batch_id: int) -> Batch:
    with db.session() as session:
        found = session.get(Batch, batch_id)
        assert found is not None
        return found


def test_a_batch_killed_after_it_committed_becomes_current_on_recovery(
    any_lake_world: World, tmp_path: Path
) -> None:
    """The metadata store is the truth: a batch recorded as succeeded is the current one,
    even if its process died before it moved the pointer."""
    db = any_lake_world.database
    lake = lake_of()
    previous = ingest(db, write_csv(tmp_path / "good.csv"))

    kill_mid_batch(tmp_path, "point", write_csv(tmp_path / "next.csv", [VALID_A, VALID_B]))

    landed = batches_of(db)[-1]
    assert landed.state == "succeeded" and landed.snapshot != previous.snapshot
    assert lake.current(CODE) == previous.snapshot  # the pointer did not move
    service.recover_all(db)
    assert lake.current(CODE) == landed.snapshot
    assert [item[0] for item in snapshot_rows()] == sorted([VALID_A[0], VALID_B[0]])


def test_recover_all_skips_a_resource_whose_batch_is_alive(
    lake_world: World, tmp_path: Path
) -> None:
    db = lake_world.database
    ingest(db, write_csv(tmp_path / "good.csv"))
    with db.transaction() as session:
        resource_id = session.scalar(select(Batch.resource_id))
        session.add(
            Batch(
                resource_id=resource_id,
                source="elsewhere",
                connector="csv",
                mode="full",
                state="running",
                fingerprint="",
                mapping={},
                actor="system",
                started_at=batches_of(db)[0].started_at,
            )
        )
    with lake_of().locked(CODE):
        assert service.recover_all(db) == 0
    assert batches_of(db)[-1].state == "running"
    assert service.recover_all(db) == 1
    assert batches_of(db)[-1].state == "failed"


# incremental loads ---------------------------------------------------------------------------


def by_id() -> dict[str, tuple[Any, ...]]:
    return {item[0]: item for item in snapshot_rows()}


AGE = NAMES.index("age")
NEW_ID = row()[0]


def test_an_incremental_batch_upserts_by_key(lake_world: World, tmp_path: Path) -> None:
    db = lake_world.database
    first = ingest(db, write_csv(tmp_path / "full.csv", [VALID_A, VALID_B, VALID_C]))
    changed = list(VALID_A)
    changed[AGE] = "75"
    batch = ingest(
        db,
        write_csv(tmp_path / "delta.csv", [changed, row(), row(age="abc")]),
        mode=Mode.incremental,
    )
    assert batch.mode == "incremental"
    # the snapshot says where it came from, for readers without the metadata store
    lineage = lake_of().lineage(CODE, batch.snapshot)
    assert lineage is not None
    assert (lineage["batch_id"], lineage["mode"], lineage["based_on"], lineage["rows"]) == (
        batch.id,
        "incremental",
        first.snapshot,
        4,
    )
    assert lineage["source"].endswith("delta.csv")
    assert lake_of().lineage(CODE, first.snapshot)["based_on"] is None  # type: ignore[index]
    assert Counted.of(batch) == Counted(
        rows_read=3, rows_loaded=2, rows_quarantined=1, duplicates=0
    )
    assert batch.rule_counts == {"type": 1}
    assert batch.snapshot_rows == 4
    rows = by_id()
    assert set(rows) == {VALID_A[0], VALID_B[0], VALID_C[0], NEW_ID}
    assert rows[VALID_A[0]][AGE] == 75  # replaced
    assert rows[VALID_B[0]][AGE] == 34  # untouched
    with db.session() as session:
        quality = session.scalar(select(Quality).where(Quality.batch_id == batch.id))
        assert quality is not None and quality.volume_change == pytest.approx(1 / 3)


def test_a_watermark_skips_rows_the_lake_already_has_as_duplicates(
    lake_world: World, tmp_path: Path
) -> None:
    db = lake_world.database
    ingest(db, write_csv(tmp_path / "full.csv", [VALID_A, VALID_B, VALID_C]))
    stale = list(VALID_A)
    stale[AGE] = "99"  # changed, but not newer than what the lake holds
    fresh = row(updated_at="2024-05-01 00:00:00")
    batch = ingest(
        db,
        write_csv(tmp_path / "delta.csv", [stale, fresh]),
        mode=Mode.incremental,
        watermark="updated_at",
    )
    assert Counted.of(batch) == Counted(
        rows_read=2, rows_loaded=1, rows_quarantined=0, duplicates=1
    )
    rows = by_id()
    assert rows[VALID_A[0]][AGE] == 74
    assert NEW_ID in rows and len(rows) == 4


def test_the_first_incremental_batch_loads_everything(lake_world: World, tmp_path: Path) -> None:
    batch = ingest(lake_world.database, write_csv(tmp_path / "a.csv"), mode=Mode.incremental)
    assert Counted.of(batch) == Counted(**COUNTS)
    assert snapshot_rows() == SNAPSHOT


def test_an_incremental_batch_needs_a_primary_key(lake_world: World, tmp_path: Path) -> None:
    db = lake_world.database
    fields = [{**item, "primary_key": False} for item in all_types_doc()["fields"]]
    create_draft(db, all_types_doc(code="gat_log", fields=fields))  # keyless: cannot publish
    with pytest.raises(ValidationFailed, match="needs a primary key"):
        ingest(db, write_csv(tmp_path / "a.csv"), code="gat_log", mode=Mode.incremental)
    [failed] = batches_of(db, "gat_log")
    assert failed.state == "failed"
    # a full load of a keyless resource drops only exact repeats
    batch = ingest(db, write_csv(tmp_path / "a.csv"), code="gat_log")
    assert (batch.duplicates, batch.rule_counts.get("primary_key")) == (1, None)


def test_retention_keeps_the_configured_number_of_snapshots(
    lake_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHUZHI_LAKE__SNAPSHOTS_KEPT", "2")
    reset_settings()
    assert get_settings().lake.snapshots_kept == 2
    landed = []
    batch_ids = []
    for age in ("30", "31", "32", "33"):
        rows = [row(age=age), row(age="not a number")]
        batch = ingest(lake_world.database, write_csv(tmp_path / f"{age}.csv", rows))
        landed.append(batch.snapshot)
        batch_ids.append(batch.id)
    assert set(lake_of().snapshots(CODE)) == set(landed[-2:])
    assert lake_of().current(CODE) == landed[-1]
    # the refused rows are kept as long as the data they came with, no longer
    kept = {i for i in batch_ids if lake_of().quarantine_file(CODE, i).exists()}
    assert kept == set(batch_ids[-2:])


# the same input twice ----------------------------------------------------------------------


def test_the_same_input_again_is_unchanged_and_writes_nothing(
    any_lake_world: World, tmp_path: Path
) -> None:
    db = any_lake_world.database
    first = ingest(db, write_csv(tmp_path / "people.csv"))
    files = files_under(lake_of().root)

    again = ingest(db, write_csv(tmp_path / "copy.csv"))

    assert again.state == BatchState.unchanged.value
    assert again.id != first.id
    assert again.snapshot == first.snapshot == lake_of().current(CODE)
    assert Counted.of(again) == Counted.of(first)
    assert again.rule_counts == first.rule_counts
    assert files_under(lake_of().root) == files
    with db.session() as session:
        # the quarantine shown is still the one of the batch that made the snapshot
        _rows, total, chosen = queries.quarantine(session, actor=SYSTEM, code=CODE)
        assert chosen is not None and (chosen.id, total) == (first.id, 15)
        assert session.scalar(select(func.count()).select_from(Quality)) == 1

    changed = [list(item) for item in ROWS]
    changed[1][AGE] = "35"
    third = ingest(db, write_csv(tmp_path / "changed.csv", changed))
    assert third.state == "succeeded"
    assert third.snapshot not in (None, first.snapshot)
    assert by_id()[VALID_B[0]][AGE] == 35


def test_the_same_data_under_other_headers_is_a_new_mapping_and_a_new_batch(
    lake_world: World, tmp_path: Path
) -> None:
    db = lake_world.database
    first = ingest(db, write_csv(tmp_path / "people.csv"))
    second = ingest(db, write_csv(tmp_path / "人员.csv", headers=TITLES, encoding="gbk"))
    assert second.state == "succeeded" and second.snapshot != first.snapshot
    assert snapshot_rows() == SNAPSHOT


# personal data in fields declared not personal ------------------------------------------------

CONTACTS = "wjw_contacts"


def contacts_doc(contact_pii: str = "none") -> dict[str, Any]:
    return resource_doc(
        code=CONTACTS,
        name="医疗机构联系人",
        provider="zj_wjw",
        fields=[
            {"name": "n", "title": "序号", "type": "integer", "primary_key": True},
            {"name": "contact", "title": "联系方式", "pii": contact_pii},
            {"name": "remark", "title": "备注"},
        ],
    )


def contacts_csv(path: Path, mobiles: int = 6) -> Path:
    lines = ["n,contact,remark"] + [
        f"{n},{f'1390000{n:04d}' if n < mobiles else '值班室'},第{n}条" for n in range(10)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def flags(db: Database) -> list[PiiFlag]:
    with db.session() as session:
        return list(session.scalars(select(PiiFlag).order_by(PiiFlag.field)))


def test_a_field_declared_not_personal_that_holds_mobiles_is_flagged_until_reclassified(
    lake_world: World, tmp_path: Path
) -> None:
    db = lake_world.database
    publish(db, contacts_doc())
    officer = lake_world.actors["wjw_officer"]
    batch = ingest(db, contacts_csv(tmp_path / "c.csv"), code=CONTACTS, actor=officer)

    [flag] = flags(db)
    assert (flag.field, flag.kind, flag.share, flag.batch_id) == ("contact", "phone", 0.6, batch.id)
    assert flag.example == "139****0000"
    assert not flag.reviewed
    # the batch says so too, and keeps saying it whatever later batches find
    found = [{"field": "contact", "kind": "phone", "share": 0.6, "example": "139****0000"}]
    assert [item.model_dump() for item in queries.batch_public(batch).pii_findings] == found
    with db.session() as session:
        report = queries.report(session, actor=SYSTEM)
        assert [item.field for item in report.pii_flags] == ["contact"]
        assert next(item for item in report.resources if item.code == CONTACTS).pii_flags == 1

    with pytest.raises(PermissionDenied):
        service.review_pii(
            db, actor=lake_world.actors["gat_officer"], code=CONTACTS, field="contact"
        )
    with pytest.raises(NotFound, match="not flagged"):
        service.review_pii(db, actor=officer, code=CONTACTS, field="remark")
    reviewed = service.review_pii(db, actor=officer, code=CONTACTS, field="contact")
    assert (reviewed.reviewed, reviewed.reviewed_by) == (True, "wjw_officer")
    with db.session() as session:
        assert queries.report(session, actor=SYSTEM).pii_flags == []
        assert session.scalar(select(ChangeLog).where(ChangeLog.action == "lake.review_pii"))

    # a reviewed flag stays reviewed while the data still looks the same
    ingest(db, contacts_csv(tmp_path / "c2.csv", mobiles=7), code=CONTACTS, actor=officer)
    [flag] = flags(db)
    assert (flag.reviewed, flag.share) == (True, 0.7)

    # declared personal at last: the flag goes with the next batch
    republish(db, contacts_doc(contact_pii="phone"))
    again = ingest(db, contacts_csv(tmp_path / "c2.csv", mobiles=7), code=CONTACTS, actor=officer)
    assert again.state == "succeeded"  # the field definitions changed, so it is not unchanged
    assert flags(db) == []
    assert queries.batch_public(again).pii_findings == []
    with db.session() as session:
        first = session.get(Batch, batch.id)
        assert first is not None
        assert [item.model_dump() for item in queries.batch_public(first).pii_findings] == found


def test_an_unreviewed_flag_goes_when_the_data_stops_looking_personal(
    lake_world: World, tmp_path: Path
) -> None:
    db = lake_world.database
    publish(db, contacts_doc())
    ingest(db, contacts_csv(tmp_path / "c.csv", mobiles=5), code=CONTACTS)
    assert [flag.share for flag in flags(db)] == [0.5]
    ingest(db, contacts_csv(tmp_path / "c2.csv", mobiles=1), code=CONTACTS)
    assert flags(db) == []
