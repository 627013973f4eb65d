"""Scheduled pulls: sources registered on a resource, their next run, the worker's job
running them as batches with retries and backoff, one at a time per resource, claims that
survive a dead worker, and `shuzhi sources` / `shuzhi worker` as a user runs them."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from shuzhi.core import clock
from shuzhi.core.db import Database
from shuzhi.core.errors import NotFound, PermissionDenied, ValidationFailed
from shuzhi.core.models import ChangeLog
from shuzhi.core.permissions import SYSTEM, Actor
from shuzhi.core.settings import get_settings, reset_settings
from shuzhi.lake import queries, service
from shuzhi.lake.models import Batch, Source
from shuzhi.lake.rules import CYCLE_CRON, backoff, next_run
from shuzhi.lake.schemas import SourceCreate
from shuzhi.lake.service import lake_of
from shuzhi.web.i18n import say
from tests.cli.test_cli import cli, cli_json, run
from tests.cli.test_lake_cli import assert_error, shuzhi
from tests.conftest import World
from tests.lake.data import (
    CODE,
    COUNTS,
    NAMES,
    TITLES,
    VALID_A,
    VALID_B,
    Counted,
    all_types_doc,
    batches_of,
    republish,
    snapshot_rows,
    write_csv,
    write_sqlite,
)

SHANGHAI = "Asia/Shanghai"
# Tuesday 10 June 2025, 08:00 in Shanghai
START = datetime(2025, 6, 10, 0, 0, tzinfo=UTC)
# "0 2 * * *" in Shanghai after START: 02:00 on the 11th there, 18:00 on the 10th in UTC
NIGHTLY = "0 2 * * *"
FIRST_NIGHT = datetime(2025, 6, 10, 18, 0, tzinfo=UTC)
SECOND_NIGHT = FIRST_NIGHT + timedelta(days=1)


@dataclass
class Held:
    """The time every shuzhi module sees until the test moves it."""

    moment: datetime

    def move(self, **delta: float) -> datetime:
        self.moment += timedelta(**delta)
        return self.moment

    def to(self, moment: datetime) -> datetime:
        self.moment = moment
        return moment


@pytest.fixture
def held() -> Iterator[Held]:
    at = Held(START)
    clock.set_clock(lambda: at.moment)
    try:
        yield at
    finally:
        clock.set_clock(None)


def inbox() -> Path:
    folder = get_settings().inbox_dir
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def register(
    db: Database,
    location: str | Path,
    *,
    schedule: str = NIGHTLY,
    actor: Actor = SYSTEM,
    code: str = CODE,
    name: str = "nightly",
    **options: Any,
) -> int:
    with db.transaction() as session:
        source = service.register_source(
            session,
            actor=actor,
            code=code,
            data=SourceCreate(name=name, location=str(location), schedule=schedule, **options),
        )
        return source.id


def source_of(db: Database, source_id: int) -> Source:
    with db.session() as session:
        found = session.get(Source, source_id)
        assert found is not None
        session.expunge(found)
        return found


def source_count(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Source)) or 0


def set_source(db: Database, source_id: int, **values: Any) -> None:
    with db.transaction() as session:
        found = session.get(Source, source_id)
        assert found is not None
        for name, value in values.items():
            setattr(found, name, value)


def pull(db: Database, worker: str = "host:1") -> int:
    """One look of the worker's job; returns how many batches it started (a failed pull
    is a batch too, which the job does not count as run)."""
    before = len(batches_of(db))
    service.run_due_pulls(db, worker)
    return len(batches_of(db)) - before


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# the next run --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "after", "timezone", "expected"),
    [
        (NIGHTLY, START, SHANGHAI, FIRST_NIGHT),
        # strictly after: at the very minute it fires, the next one is a day later
        (NIGHTLY, FIRST_NIGHT, SHANGHAI, SECOND_NIGHT),
        (NIGHTLY, FIRST_NIGHT - timedelta(seconds=1), SHANGHAI, FIRST_NIGHT),
        # the same expression read in another zone
        (NIGHTLY, START, "UTC", datetime(2025, 6, 10, 2, 0, tzinfo=UTC)),
        ("*/15 * * * *", START + timedelta(minutes=1), SHANGHAI, START + timedelta(minutes=15)),
        # Mondays at 06:30 Shanghai; START is a Tuesday
        ("30 6 * * 1", START, SHANGHAI, datetime(2025, 6, 15, 22, 30, tzinfo=UTC)),
        # Berlin leaves summer time on 26 October 2025: 02:00 there is 00:00 UTC before
        # and 01:00 UTC after
        (NIGHTLY, datetime(2025, 10, 24, 12, tzinfo=UTC), "Europe/Berlin",
         datetime(2025, 10, 25, 0, 0, tzinfo=UTC)),
        (NIGHTLY, datetime(2025, 10, 26, 12, tzinfo=UTC), "Europe/Berlin",
         datetime(2025, 10, 27, 1, 0, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_the_next_run_is_the_first_firing_after_in_the_schedule_time_zone(
    schedule: str, after: datetime, timezone: str, expected: datetime
) -> None:
    found = next_run(schedule, "daily", after, timezone)
    assert found == expected
    assert found.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("cycle", "expected"),
    [
        ("real_time", START + timedelta(minutes=15)),
        ("daily", FIRST_NIGHT),
        ("weekly", datetime(2025, 6, 15, 18, 0, tzinfo=UTC)),  # Monday 16 June, 02:00
        ("monthly", datetime(2025, 6, 30, 18, 0, tzinfo=UTC)),  # 1 July, 02:00
        ("quarterly", datetime(2025, 6, 30, 18, 0, tzinfo=UTC)),  # 1 July, 02:00
        ("yearly", datetime(2025, 12, 31, 18, 0, tzinfo=UTC)),  # 1 January 2026, 02:00
    ],
)
def test_cycle_follows_the_resources_update_cycle(cycle: str, expected: datetime) -> None:
    assert set(CYCLE_CRON) >= {cycle}
    assert next_run("cycle", cycle, START, SHANGHAI) == expected
    assert next_run("cycle", cycle, START, SHANGHAI) == next_run(
        CYCLE_CRON[cycle], "irregular", START, SHANGHAI
    )


@pytest.mark.parametrize(
    ("schedule", "cycle", "message"),
    [
        ("cycle", "irregular", r"update cycle \(irregular\) has no schedule"),
        ("61 * * * *", "daily", "not a usable cron expression"),
        ("0 2 * *", "daily", "not a usable cron expression"),
        ("every night", "daily", "not a usable cron expression"),
        ("0 0 30 2 *", "daily", "not a usable cron expression"),  # 30 February never comes
    ],
)
def test_a_schedule_that_never_fires_is_a_value_error(
    schedule: str, cycle: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        next_run(schedule, cycle, START, SHANGHAI)


def test_the_backoff_doubles_from_a_minute_to_at_most_an_hour() -> None:
    waits = [backoff(attempt) for attempt in range(1, 10)]
    assert [wait.total_seconds() / 60 for wait in waits] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff(0) == timedelta(minutes=1)
    assert backoff(1000) == timedelta(hours=1)


# registering ---------------------------------------------------------------------------------


def test_a_source_registered_with_a_cron_runs_next_at_its_first_firing(
    lake_world: World, held: Held
) -> None:
    db = lake_world.database
    path = write_csv(inbox() / "people.csv")
    source_id = register(db, path, format="csv", map={"联系电话": "mobile"})
    source = source_of(db, source_id)
    assert (source.schedule, source.mode, source.enabled) == (NIGHTLY, "full", True)
    assert source.next_run_at == FIRST_NIGHT
    assert (source.last_run_at, source.attempts, source.claimed_by) == (None, 0, None)
    # what differs from the defaults, and nothing more
    assert source.options == {"format": "csv", "map": {"联系电话": "mobile"}}
    assert (source.created_by, source.created_at) == ("system", START)
    with db.session() as session:
        change = session.scalar(select(ChangeLog).where(ChangeLog.action == "lake.source.create"))
    assert change is not None and change.object_id == str(source_id)
    assert batches_of(db) == []  # registering pulls nothing


def test_a_source_registered_on_the_update_cycle_follows_it(lake_world: World, held: Held) -> None:
    db = lake_world.database
    path = write_csv(inbox() / "people.csv")
    daily = register(db, path, schedule="cycle")
    assert source_of(db, daily).next_run_at == FIRST_NIGHT
    republish(db, all_types_doc(update_cycle="monthly"))
    monthly = register(db, path, schedule="cycle", name="monthly")
    assert source_of(db, monthly).next_run_at == datetime(2025, 6, 30, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("code", "schedule", "user", "error", "message"),
    [
        ("nope", NIGHTLY, None, NotFound, "no catalog resource 'nope'"),
        (CODE, "61 * * * *", None, ValidationFailed, "not a usable cron expression"),
        (CODE, "cycle", "irregular", ValidationFailed, "has no schedule"),
        (CODE, NIGHTLY, "wjw_officer", PermissionDenied, "resource gat_register"),
        (CODE, NIGHTLY, "viewer", PermissionDenied, "resource gat_register"),
    ],
)
def test_a_source_that_cannot_be_pulled_is_not_registered(
    lake_world: World,
    code: str,
    schedule: str,
    user: str | None,
    error: type[Exception],
    message: str,
) -> None:
    db = lake_world.database
    actor = SYSTEM
    if user == "irregular":
        republish(db, all_types_doc(update_cycle="irregular"))
    elif user is not None:
        actor = lake_world.actors[user]
    with pytest.raises(error, match=message):
        register(db, write_csv(inbox() / "people.csv"), code=code, schedule=schedule, actor=actor)
    assert source_count(db) == 0


# the worker's job ----------------------------------------------------------------------------


def test_a_due_pull_runs_as_a_batch_and_waits_for_its_next_firing(
    lake_world: World, held: Held
) -> None:
    db = lake_world.database
    source_id = register(db, write_csv(inbox() / "people.csv"))
    assert service.run_due_pulls(db, "host:1") == 0  # not yet due
    assert batches_of(db) == []

    held.to(FIRST_NIGHT + timedelta(minutes=1))
    assert service.run_due_pulls(db, "host:1") == 1
    [batch] = batches_of(db)
    assert (batch.state, batch.source_id, batch.actor, batch.connector) == (
        "succeeded",
        source_id,
        "system",
        "csv",
    )
    assert Counted.of(batch) == Counted(**COUNTS) and Counted.of(batch).balanced()
    assert batch.snapshot == lake_of().current(CODE)
    assert len(snapshot_rows()) == 3

    pulled = source_of(db, source_id)
    assert pulled.last_batch_id == batch.id
    assert pulled.last_run_at == held.moment
    assert pulled.next_run_at == SECOND_NIGHT
    assert (pulled.attempts, pulled.last_error) == (0, None)
    assert (pulled.claimed_by, pulled.claimed_at) == (None, None)

    # the same moment again: nothing is due, nothing runs twice
    assert service.run_due_pulls(db, "host:2") == 0
    assert len(batches_of(db)) == 1
    # the next night, the same file: a batch recorded as unchanged, nothing rewritten
    held.to(SECOND_NIGHT)
    assert service.run_due_pulls(db, "host:1") == 1
    assert [item.state for item in batches_of(db)] == ["succeeded", "unchanged"]
    assert lake_of().current(CODE) == batch.snapshot


def test_the_worker_job_is_registered_as_a_plugin(lake_world: World) -> None:
    from shuzhi.core.plugins import jobs

    [pulls] = [job for job in jobs() if job.name == "lake.pulls"]
    assert pulls.run is service.run_due_pulls


def test_a_failing_pull_is_retried_with_backoff_and_a_success_resets_it(
    lake_world: World, held: Held
) -> None:
    db = lake_world.database
    path = inbox() / "people.csv"  # the department has not delivered it yet
    source_id = register(db, path)
    held.to(FIRST_NIGHT)
    waits = []
    for attempt in (1, 2, 3):
        assert pull(db) == 1
        failed = source_of(db, source_id)
        assert failed.attempts == attempt
        assert failed.last_error == f"no such file: {path}"
        assert failed.last_run_at == held.moment
        assert failed.claimed_by is None
        waits.append(failed.next_run_at - held.moment)
        # not due until the backoff has passed
        held.to(failed.next_run_at - timedelta(seconds=1))
        assert pull(db) == 0
        held.move(seconds=1)
    assert waits == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert [item.state for item in batches_of(db)] == ["failed"] * 3
    assert lake_of().current(CODE) is None  # no snapshot from a failed pull

    write_csv(path)
    assert service.run_due_pulls(db, "host:1") == 1
    pulled = source_of(db, source_id)
    assert (pulled.attempts, pulled.last_error) == (0, None)
    assert pulled.next_run_at == SECOND_NIGHT  # back on its schedule
    assert batches_of(db)[-1].id == pulled.last_batch_id
    assert batches_of(db)[-1].state == "succeeded"

    # and a later failure starts the backoff again from one minute
    path.unlink()
    held.to(SECOND_NIGHT)
    assert pull(db) == 1
    again = source_of(db, source_id)
    assert (again.attempts, again.next_run_at) == (1, SECOND_NIGHT + timedelta(minutes=1))
    assert again.last_batch_id == pulled.last_batch_id  # the last good batch is kept


def test_a_database_that_cannot_be_read_is_a_failed_attempt(lake_world: World, held: Held) -> None:
    db = lake_world.database
    path = inbox() / "people.db"
    path.write_bytes(b"this is no database, whatever its name says" * 100)
    url = f"sqlite:///{path}"
    source_id = register(db, url, table="people")
    held.to(FIRST_NIGHT)
    assert pull(db) == 1
    failed = source_of(db, source_id)
    assert failed.attempts == 1
    assert failed.last_error == f"cannot read {url} table people: file is not a database"
    assert failed.next_run_at == FIRST_NIGHT + timedelta(minutes=1)
    [batch] = batches_of(db)
    assert (batch.state, batch.source_id, batch.error) == ("failed", source_id, failed.last_error)
    assert lake_of().current(CODE) is None


def test_a_missing_database_file_is_named_and_not_created(lake_world: World, held: Held) -> None:
    """Reading a source writes nothing: a pull from a SQLite file that is not there yet
    must not leave an empty database in its place, and says the file is missing."""
    db = lake_world.database
    path = inbox() / "people.db"
    source_id = register(db, f"sqlite:///{path}", table="people")
    held.to(FIRST_NIGHT)
    assert pull(db) == 1
    failed = source_of(db, source_id)
    assert failed.attempts == 1
    assert failed.last_error == f"no such file: {path}"
    assert not path.exists()

    # delivered: the retry loads it
    write_sqlite(path, [VALID_A, VALID_B])
    held.to(failed.next_run_at)
    assert service.run_due_pulls(db, "host:1") == 1
    assert source_of(db, source_id).attempts == 0
    assert batches_of(db)[-1].rows_loaded == 2


def test_after_its_retries_a_failing_pull_waits_for_its_next_firing(
    lake_world: World, held: Held, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHUZHI_LAKE__PULL_RETRIES", "2")
    reset_settings()
    db = lake_world.database
    source_id = register(db, inbox() / "missing.csv")
    held.to(FIRST_NIGHT)
    for attempts, wait in ((1, 1), (2, 2)):
        assert pull(db) == 1
        failed = source_of(db, source_id)
        assert (failed.attempts, failed.next_run_at) == (
            attempts,
            held.moment + timedelta(minutes=wait),
        )
        held.to(failed.next_run_at)
    assert pull(db) == 1  # the third failure: retries spent
    gave_up = source_of(db, source_id)
    assert gave_up.attempts == 0
    assert gave_up.next_run_at == SECOND_NIGHT
    assert gave_up.last_error is not None and "no such file" in gave_up.last_error
    assert len(batches_of(db)) == 3


def test_a_pull_waits_while_another_batch_of_its_resource_runs(
    lake_world: World, held: Held
) -> None:
    """One batch per resource at a time: a pull finding the resource busy is left due for
    the worker's next look, neither failed nor run alongside."""
    db = lake_world.database
    source_id = register(db, write_csv(inbox() / "people.csv"))
    held.to(FIRST_NIGHT)
    with lake_of().locked(CODE):
        assert service.run_due_pulls(db, "host:1") == 0
    waiting = source_of(db, source_id)
    assert (waiting.attempts, waiting.last_error, waiting.last_run_at) == (0, None, None)
    assert (waiting.claimed_by, waiting.next_run_at) == (None, FIRST_NIGHT)
    assert batches_of(db) == []
    assert service.run_due_pulls(db, "host:1") == 1
    assert [item.state for item in batches_of(db)] == ["succeeded"]


def test_due_sources_of_one_resource_are_pulled_in_turn_oldest_due_first(
    lake_world: World, held: Held
) -> None:
    """Each pull is its own batch, one after the other in the order they fell due; the
    last one's snapshot is current."""
    db = lake_world.database
    late = register(db, write_csv(inbox() / "a.csv", [VALID_A]), name="late")
    early = register(db, write_csv(inbox() / "b.csv", [VALID_A, VALID_B]), name="early")
    set_source(db, early, next_run_at=FIRST_NIGHT - timedelta(hours=1))
    held.to(FIRST_NIGHT)
    assert service.run_due_pulls(db, "host:1") == 2
    batches = batches_of(db)
    assert [(item.source_id, item.rows_loaded) for item in batches] == [(early, 2), (late, 1)]
    assert [item.state for item in batches] == ["succeeded", "succeeded"]
    assert lake_of().current(CODE) == batches[1].snapshot
    assert [row[0] for row in snapshot_rows()] == [VALID_A[0]]


def test_a_claim_of_a_live_worker_is_left_alone_until_its_lease_lapses(
    lake_world: World, held: Held
) -> None:
    db = lake_world.database
    source_id = register(db, write_csv(inbox() / "people.csv"))
    held.to(FIRST_NIGHT)
    set_source(db, source_id, claimed_by="other-host:77", claimed_at=FIRST_NIGHT)
    assert service.run_due_pulls(db, "host:1") == 0
    assert batches_of(db) == []
    assert source_of(db, source_id).claimed_by == "other-host:77"

    lease = timedelta(minutes=get_settings().lake.pull_lease_minutes)
    held.to(FIRST_NIGHT + lease + timedelta(seconds=1))
    assert service.run_due_pulls(db, "host:1") == 1  # its worker is taken for dead
    pulled = source_of(db, source_id)
    assert (pulled.claimed_by, pulled.last_batch_id) == (None, batches_of(db)[0].id)


def test_a_source_shows_running_for_as_long_as_the_lease_setting(
    lake_world: World, held: Held, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = lake_world.database
    source_id = register(db, write_csv(inbox() / "people.csv"))
    monkeypatch.setenv("SHUZHI_LAKE__PULL_LEASE_MINUTES", "5")
    reset_settings()
    set_source(db, source_id, claimed_by="other-host:77", claimed_at=FIRST_NIGHT)
    with db.session() as session:
        source = session.get(Source, source_id)
        assert source is not None
        seen = {
            minutes: queries.source_public(
                source, now=FIRST_NIGHT + timedelta(minutes=minutes)
            ).running
            for minutes in (4, 6)
        }
    assert seen == {4: True, 6: False}


def test_a_schedule_refusal_is_said_in_chinese() -> None:
    with pytest.raises(ValueError) as caught:
        next_run("cycle", "irregular", START, SHANGHAI)
    assert str(caught.value).startswith("the resource's update cycle (irregular) has no schedule")
    assert say(caught.value.args[0], "zh-CN").startswith("该资源的更新周期（不定期）没有对应排程")


def test_a_claim_of_a_dead_process_is_released_and_pulled_once(
    lake_world: World, held: Held
) -> None:
    """A worker killed mid-pull leaves its claim; the next start releases the claims of
    processes on this host that no longer exist, and the pull runs once, not twice."""
    db = lake_world.database
    host = socket.gethostname()
    path = write_csv(inbox() / "people.csv")
    dead, alive, elsewhere = (register(db, path, name=name) for name in ("d", "a", "e"))
    claims = {
        dead: f"{host}:{dead_pid()}",
        alive: f"{host}:{os.getpid()}",
        elsewhere: "another-host:1",  # another host's processes cannot be seen from here
    }
    held.to(FIRST_NIGHT)
    for source_id, owner in claims.items():
        set_source(db, source_id, claimed_by=owner, claimed_at=FIRST_NIGHT)

    assert service.run_due_pulls(db, "host:1") == 0  # every one is claimed
    assert service.release_dead_claims(db) == 1
    assert source_of(db, dead).claimed_by is None
    assert source_of(db, alive).claimed_by == claims[alive]
    assert source_of(db, elsewhere).claimed_by == claims[elsewhere]
    assert service.release_dead_claims(db) == 0

    assert service.run_due_pulls(db, "host:1") == 1
    assert service.run_due_pulls(db, "host:2") == 0
    assert [item.source_id for item in batches_of(db)] == [dead]


# the command line ----------------------------------------------------------------------------


def test_sources_add_list_run_and_remove(lake_world: World, held: Held) -> None:
    headers = [*TITLES]
    headers[NAMES.index("mobile")] = "手机"
    path = write_csv(inbox() / "people.csv", headers=headers)
    added = cli_json("sources", "add", CODE, str(path), "--name", "公安夜间推送",
                     "--schedule", NIGHTLY, "--map", "手机=mobile")  # fmt: skip
    assert added == {
        "id": 1,
        "resource": CODE,
        "name": "公安夜间推送",
        "location": str(path),
        "schedule": NIGHTLY,
        "mode": "full",
        "enabled": True,
        "options": {"map": {"手机": "mobile"}},
        "next_run_at": "2025-06-10T18:00:00Z",
        "last_run_at": None,
        "last_batch_id": None,
        "last_error": None,
        "attempts": 0,
        "running": False,
    }
    out = cli(
        "sources", "add", CODE, str(path), "--name", "by cycle", "--map", "手机=mobile"
    ).stdout
    assert out.strip() == "source 2 registered; next run 2025-06-10 18:00 UTC"

    listed = cli_json("sources", "list", CODE)
    assert listed["count"] == 2 and [item["id"] for item in listed["data"]] == [1, 2]
    assert listed["data"][1]["schedule"] == "cycle"
    table = cli("sources", "list").stdout.splitlines()
    assert table[0].split()[:5] == ["id", "resource", "name", "schedule", "mode"]
    assert table[2].split()[:3] == ["1", CODE, "公安夜间推送"]
    assert "2025-06-10 18:00" in table[2]

    held.move(hours=1)
    found = cli_json("sources", "run", "1")
    assert {name: found[name] for name in COUNTS} == COUNTS
    assert found["rows_read"] == (
        found["rows_loaded"] + found["rows_quarantined"] + found["duplicates"]
    )
    assert (found["state"], found["snapshot"]) == ("succeeded", lake_of().current(CODE))
    [first] = cli_json("sources", "list", CODE)["data"][:1]
    assert first["last_batch_id"] == found["batch_id"]
    assert first["last_run_at"] == "2025-06-10T01:00:00Z"
    assert first["next_run_at"] == "2025-06-10T18:00:00Z"
    line = cli("sources", "run", "2").stdout.strip()
    assert line == "batch 2 unchanged: read 19, loaded 3, quarantined 15"

    assert cli("sources", "remove", "2").stdout.strip() == "source 2 removed"
    assert [item["id"] for item in cli_json("sources", "list")["data"]] == [1]
    assert len(batches_of(lake_world.database)) == 2  # its batches stay


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["sources", "add", "nope", "{csv}", "--name", "s"], ["no catalog resource 'nope'"]),
        (
            ["sources", "add", CODE, "{csv}", "--name", "s", "--schedule", "61 * * * *"],
            ["'61 * * * *' is not a usable cron expression"],
        ),
        (
            ["sources", "add", CODE, "{csv}", "--name", "s", "--schedule", "nightly"],
            ["'nightly' is not a usable cron expression"],
        ),
        (["sources", "add", CODE, "/etc/passwd", "--name", "s"], ["outside the source"]),
        (["sources", "add", CODE, "{csv}", "--name", "s", "--mode", "sideways"], ["sideways"]),
        (["sources", "add", CODE, "{csv}", "--name", ""], ["name"]),
        (["sources", "add", CODE, "{csv}", "--name", "s", "--map", "联系电话"], ["column=field"]),
        (["sources", "list", "nope"], ["no catalog resource 'nope'"]),
        (["sources", "run", "99"], ["no source 99"]),
        (["sources", "remove", "99"], ["no source 99"]),
    ],
)
def test_bad_sources_commands_are_one_line_errors(
    lake_world: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    fragments: list[str],
) -> None:
    csv_path = str(write_csv(inbox() / "people.csv"))
    status, _out, err = shuzhi([arg.format(csv=csv_path) for arg in args], monkeypatch, capsys)
    assert_error(status, err, *fragments)
    assert source_count(lake_world.database) == 0


def test_a_forced_pull_that_fails_is_one_line_and_counts_as_an_attempt(
    lake_world: World,
    held: Held,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = inbox() / "later.csv"
    cli("sources", "add", CODE, str(path), "--name", "later")
    status, _out, err = shuzhi(["sources", "run", "1"], monkeypatch, capsys)
    assert_error(status, err, f"no such file: {path}")
    failed = source_of(lake_world.database, 1)
    assert (failed.attempts, failed.claimed_by) == (1, None)
    assert failed.next_run_at == START + timedelta(minutes=1)
    assert lake_of().current(CODE) is None


def test_sources_commands_need_the_right_to_load_the_resource(
    lake_world: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    csv_path = str(write_csv(inbox() / "people.csv"))
    source_id = register(lake_world.database, csv_path)
    monkeypatch.setenv("SHUZHI_TOKEN", lake_world.tokens["wjw_officer"])
    for args in (
        ["sources", "add", CODE, csv_path, "--name", "s"],
        ["sources", "run", str(source_id)],
        ["sources", "remove", str(source_id)],
    ):
        status, _out, err = shuzhi(args, monkeypatch, capsys)
        assert_error(status, err, "wjw_officer may not lake.ingest on")
    assert source_count(lake_world.database) == 1
    assert batches_of(lake_world.database) == []
    # and it does not see the source among its own
    status, out, _err = shuzhi(["sources", "list", "--json"], monkeypatch, capsys)
    assert status == 0 and '"count": 0' in out


def test_the_worker_recovers_from_a_killed_worker_and_pulls_once(lake_world: World) -> None:
    """`shuzhi worker --once` in a real process, after a worker was killed mid-pull: its
    batch is marked failed, its claim released, and the due pull runs once."""
    db = lake_world.database
    source_id = register(db, write_csv(inbox() / "people.csv"))
    killed = f"{socket.gethostname()}:{dead_pid()}"
    now = clock.now()
    set_source(
        db, source_id, next_run_at=now - timedelta(minutes=5), claimed_by=killed, claimed_at=now
    )
    with db.transaction() as session:
        resource_id = session.scalar(select(Source.resource_id).where(Source.id == source_id))
        session.add(
            Batch(
                resource_id=resource_id,
                source_id=source_id,
                source="people.csv",
                connector="csv",
                mode="full",
                state="running",
                fingerprint="",
                mapping={},
                actor="system",
                runner=killed,
                started_at=now - timedelta(minutes=4),
            )
        )

    proc = run("worker", "--once")
    assert proc.returncode == 0, proc.stderr
    assert "lake.pulls" in proc.stderr
    interrupted, pulled = batches_of(db)
    assert interrupted.state == "failed" and "interrupted" in (interrupted.error or "")
    assert (pulled.state, pulled.source_id, pulled.rows_loaded) == ("succeeded", source_id, 3)
    source = source_of(db, source_id)
    assert (source.claimed_by, source.last_batch_id, source.attempts) == (None, pulled.id, 0)
    assert source.next_run_at is not None and source.next_run_at > now

    # the next look finds nothing due: the pull is not run again
    assert service.release_dead_claims(db) == 0
    assert service.run_due_pulls(db, "host:2") == 0
    assert len(batches_of(db)) == 2
