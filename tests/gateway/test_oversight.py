"""Usage statistics and the auditor's flags, from access logs written as calls make them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shuzhi.core import clock
from shuzhi.core.db import Database
from shuzhi.core.permissions import SYSTEM
from shuzhi.gateway import oversight
from tests.conftest import World
from tests.gateway.data import log_call


@pytest.fixture
def pinned() -> object:
    # a Wednesday noon in Beijing
    clock.set_clock(lambda: datetime(2026, 11, 25, 4, 0, tzinfo=UTC))
    yield
    clock.set_clock(None)


def test_usage_sums_calls_refusals_and_rows_by_day_consumer_and_resource(
    sqlite_world: World, pinned: object
) -> None:
    db: Database = sqlite_world.database
    now = clock.now()
    with db.transaction() as session:
        for minutes in range(3):
            log_call(session, now - timedelta(minutes=minutes), purpose="案件A")
        log_call(session, now, status=403, outcome="no-grant", rows=0)
        log_call(session, now - timedelta(days=1), consumer="hz_police_app", rows=7)
        log_call(session, now - timedelta(days=40), consumer="hz_police_app", rows=100)
    with db.session() as session:
        report = oversight.usage(session, actor=SYSTEM, days=30)
    by_consumer = {item.key: (item.calls, item.refused, item.rows) for item in report.by_consumer}
    assert by_consumer == {"zj_health_app": (4, 1, 15), "hz_police_app": (1, 0, 7)}
    assert [(item.key, item.calls) for item in report.by_day] == [
        ("2026-11-24", 1),
        ("2026-11-25", 4),
    ]
    purposes = {(row.consumer, row.purpose): row.calls for row in report.rows}
    assert purposes[("zj_health_app", "案件A")] == 3


def test_usage_of_a_department_is_its_own_systems_and_resources_only(
    sqlite_world: World, pinned: object
) -> None:
    db = sqlite_world.database
    with db.transaction() as session:
        log_call(session, clock.now(), consumer="zj_health_app", target="other_resource")
    with db.session() as session:
        # the health commission's officer has no consumer called zj_health_app registered
        # (none exist in this world), nor provides other_resource
        report = oversight.usage(session, actor=sqlite_world.actors["wjw_officer"])
        assert report.rows == []
        assert oversight.usage(session, actor=sqlite_world.actors["auditor"]).rows


def test_many_distinct_lookups_in_a_day_are_flagged_with_the_count(
    sqlite_world: World, pinned: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHUZHI_GATEWAY__FLAG_DISTINCT_LOOKUPS", "5")
    from shuzhi.core.settings import reset_settings

    reset_settings()
    db = sqlite_world.database
    now = clock.now()
    with db.transaction() as session:
        for number in range(8):
            log_call(session, now - timedelta(minutes=number), lookup=f"{number:032x}")
        for number in range(4):  # another consumer stays under the line
            log_call(session, now, consumer="hz_police_app", lookup=f"{number:032x}")
    with db.session() as session:
        found = oversight.flags(session, actor=SYSTEM).data
    walking = [flag for flag in found if flag.kind == "distinct_lookups"]
    assert [(flag.consumer, flag.calls) for flag in walking] == [("zj_health_app", 8)]
    assert "8 distinct records" in walking[0].explanation


def test_calls_at_machine_regular_intervals_without_purpose_are_flagged(
    sqlite_world: World, pinned: object
) -> None:
    db = sqlite_world.database
    start = clock.now() - timedelta(hours=3)
    with db.transaction() as session:
        for number in range(30):  # every 300 s, no purpose
            log_call(session, start + timedelta(seconds=300 * number))
        for number in range(30):  # a person: irregular, and with a purpose
            log_call(
                session,
                start + timedelta(seconds=37 * number * number),
                consumer="hz_police_app",
                purpose="案件B",
            )
    with db.session() as session:
        found = oversight.flags(session, actor=SYSTEM).data
    regular = [flag for flag in found if flag.kind == "machine_regular"]
    assert [flag.consumer for flag in regular] == ["zj_health_app"]
    assert "every 300 s" in regular[0].explanation


def test_calls_outside_working_hours_are_flagged_with_the_hours(
    sqlite_world: World, pinned: object
) -> None:
    db = sqlite_world.database
    # 2026-11-24 01:00 Beijing time is 17:00 UTC the day before
    night = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
    with db.transaction() as session:
        for number in range(25):
            log_call(session, night + timedelta(minutes=5 * number), purpose="夜间")
        for _ in range(25):  # office hours: 10:00 Beijing
            log_call(session, datetime(2026, 11, 24, 2, 0, tzinfo=UTC), consumer="hz_police_app")
    with db.session() as session:
        found = oversight.flags(session, actor=SYSTEM).data
    night_flags = [flag for flag in found if flag.kind == "off_hours"]
    assert [(flag.consumer, flag.day, flag.calls) for flag in night_flags] == [
        ("zj_health_app", "2026-11-24", 25)
    ]
    assert "outside 08:00–20:00, in the hours 01, 02, 03" in night_flags[0].explanation
