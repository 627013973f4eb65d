"""Reads over the lake: the quarantine and its export, the data tab, operator SQL, and the
quality and coverage report."""

from __future__ import annotations

import codecs
import csv
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shuzhi.core.errors import NotFound, PermissionDenied, Unauthenticated, ValidationFailed
from shuzhi.core.permissions import ANONYMOUS, SYSTEM
from shuzhi.core.settings import reset_settings
from shuzhi.lake import queries, service
from shuzhi.lake.models import Health
from tests.conftest import World, resource_doc
from tests.lake.data import (
    CODE,
    REFUSED,
    ROWS,
    TITLES,
    VALID_A,
    VALID_B,
    VALID_C,
    all_types_doc,
    create_draft,
    ingest,
    publish,
    write_csv,
)

# the quarantine ------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["gat_officer", "auditor", "admin"])
def test_the_provider_and_auditors_read_the_quarantine(
    user: str, lake_world: World, tmp_path: Path
) -> None:
    batch = ingest(lake_world.database, write_csv(tmp_path / "people.csv"))
    with lake_world.database.session() as session:
        rows, total, chosen = queries.quarantine(
            session, actor=lake_world.actors[user], code=CODE, rule="type"
        )
        assert chosen is not None and chosen.id == batch.id
        assert (total, [item.row for item in rows]) == (2, [16, 18])
        page, total, _ = queries.quarantine(
            session, actor=lake_world.actors[user], code=CODE, limit=4, offset=2
        )
        assert total == len(REFUSED)
        assert [item.row for item in page] == sorted(REFUSED)[2:6]
        listed, count = queries.batches(session, actor=lake_world.actors[user], code=CODE)
        assert count == 1 and listed[0].id == batch.id


@pytest.mark.parametrize("user", ["wjw_officer", "viewer"])
def test_others_cannot_read_a_resources_quarantine_or_batches(
    user: str, lake_world: World, tmp_path: Path
) -> None:
    ingest(lake_world.database, write_csv(tmp_path / "people.csv"))
    with lake_world.database.session() as session:
        with pytest.raises(PermissionDenied):
            queries.quarantine(session, actor=lake_world.actors[user], code=CODE)
        with pytest.raises(PermissionDenied):
            queries.batches(session, actor=lake_world.actors[user], code=CODE)
        with pytest.raises(PermissionDenied):
            queries.data_tab(session, actor=lake_world.actors[user], code=CODE)


def test_a_resource_never_loaded_has_an_empty_quarantine(lake_world: World) -> None:
    with lake_world.database.session() as session:
        assert queries.quarantine(session, actor=SYSTEM, code=CODE) == ([], 0, None)
        with pytest.raises(NotFound, match="no batch 99 of gat_register"):
            queries.quarantine(session, actor=SYSTEM, code=CODE, batch_id=99)


def test_the_export_is_excel_ready_csv_under_the_source_headers(
    lake_world: World, tmp_path: Path
) -> None:
    ingest(lake_world.database, write_csv(tmp_path / "人员.csv", headers=TITLES, encoding="gbk"))
    target = tmp_path / "refused.csv"
    with lake_world.database.session() as session:
        written = queries.export_quarantine(session, actor=SYSTEM, code=CODE, target=target)
    assert written == len(REFUSED)
    raw = target.read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)
    lines = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert lines[0] == ["行号 row", "规则 rule", "字段 field", *TITLES]
    assert [int(line[0]) for line in lines[1:]] == sorted(REFUSED)
    by_row = {int(line[0]): line for line in lines[1:]}
    assert by_row[12][1:3] == ["max:age", "age"]
    assert by_row[12][3:] == ["" if value is None else value for value in ROWS[11]]
    assert by_row[19][1] == "mobile:mobile,type:age"


# the data tab --------------------------------------------------------------------------------


def test_the_data_tab_masks_personal_fields_in_its_sample(
    lake_world: World, tmp_path: Path
) -> None:
    batch = ingest(lake_world.database, write_csv(tmp_path / "people.csv"))
    with lake_world.database.session() as session:
        tab = queries.data_tab(session, actor=lake_world.actors["gat_officer"], code=CODE)
    assert (tab.snapshot, tab.rows) == (batch.snapshot, 3)
    assert tab.masked == ["id_card", "full_name", "mobile", "email"]
    sample = {row[0]: dict(zip(tab.columns, row, strict=True)) for row in tab.sample}
    assert len(sample) == 3
    shown = sample["110105********002X"]  # VALID_A's citizen ID: region and last four kept
    assert shown["full_name"] == "张*"  # the surname stays, as government systems show it
    assert shown["mobile"] == "139****1111"
    assert shown["email"] == "z***@example.cn"
    assert shown["company"] == VALID_A[2]  # not personal: as loaded
    assert shown["age"] == 74
    assert not any(VALID_A[0] in str(value) for row in tab.sample for value in row)
    assert [item.batch_id for item in tab.batches] == [batch.id]
    assert [point.batch_id for point in tab.quality] == [batch.id]


# operator SQL --------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["admin", None])
def test_operators_query_the_lake_by_resource_code(
    user: str | None, lake_world: World, tmp_path: Path
) -> None:
    batch = ingest(lake_world.database, write_csv(tmp_path / "people.csv"))
    actor = lake_world.actors[user] if user else SYSTEM
    with lake_world.database.session() as session:
        result = queries.run_query(
            session, actor=actor, sql=f"SELECT full_name, age FROM {CODE} ORDER BY id_card"
        )
        limited = queries.run_query(session, actor=actor, sql=f"SELECT * FROM {CODE}", limit=2)
    assert result.columns == ["full_name", "age"]
    assert result.rows == [["张三", 74], ["李四", 34], ["王五", None]]
    assert (result.count, result.truncated) == (3, False)
    assert result.snapshots == {CODE: batch.snapshot}
    assert (limited.count, limited.truncated) == (2, True)


@pytest.mark.parametrize("user", ["gat_officer", "gat_admin", "auditor", "viewer"])
def test_only_platform_operators_may_query_the_lake(user: str, lake_world: World) -> None:
    with lake_world.database.session() as session, pytest.raises(PermissionDenied):
        queries.run_query(session, actor=lake_world.actors[user], sql="SELECT 1")


def test_the_default_row_limit_comes_from_the_settings(
    lake_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(lake_world.database, write_csv(tmp_path / "people.csv"))
    monkeypatch.setenv("SHUZHI_LAKE__QUERY_ROW_LIMIT", "1")
    reset_settings()
    with lake_world.database.session() as session:
        result = queries.run_query(session, actor=SYSTEM, sql=f"SELECT * FROM {CODE}")
    assert (result.count, result.truncated) == (1, True)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("   ", "give an SQL query"),
        (f"DROP VIEW {CODE}", "only SELECT"),
        (f"COPY {CODE} TO '/tmp/out.csv'", "only SELECT"),
        (f"SELECT 1; SELECT * FROM {CODE}", "exactly one"),
        ("SELECT * FROM read_csv('/etc/passwd')", "query failed"),
    ],
)
def test_operator_sql_is_one_select_over_the_lake(
    sql: str, message: str, lake_world: World
) -> None:
    with (
        lake_world.database.session() as session,
        pytest.raises(ValidationFailed, match=message),
    ):
        queries.run_query(session, actor=SYSTEM, sql=sql)


# quality and coverage ------------------------------------------------------------------------

CLINICS = "wjw_clinics"


@pytest.fixture
def province(lake_world: World) -> World:
    """The loaded-or-not resources of two providers in two systems, and one draft."""
    db = lake_world.database
    publish(
        db,
        resource_doc(
            code=CLINICS,
            name="医疗机构名录",
            provider="zj_wjw",
            system="digital_government",
            update_cycle="weekly",
        ),
    )
    create_draft(db, all_types_doc(code="draft_x"))
    return lake_world


def test_coverage_counts_published_resources_with_a_current_snapshot(
    province: World, tmp_path: Path
) -> None:
    batch = ingest(
        province.database, write_csv(tmp_path / "clean.csv", [VALID_A, VALID_B, VALID_C])
    )
    with province.database.session() as session:
        found = queries.report(session, actor=province.actors["viewer"])
    assert (found.overall.published, found.overall.current, found.overall.coverage) == (2, 1, 0.5)
    providers = {item.key: item for item in found.by_provider}
    assert set(providers) == {"zj_gat", "zj_wjw"}
    assert (providers["zj_gat"].coverage, providers["zj_wjw"].coverage) == (1.0, 0.0)
    assert providers["zj_gat"].name == "浙江省公安厅"
    assert providers["zj_wjw"].lights == {"green": 0, "yellow": 0, "red": 0, "no_data": 1}
    systems = {item.key: (item.published, item.current) for item in found.by_system}
    assert systems == {"digital_government": (1, 0), "digital_society": (1, 1)}
    resources = {item.code: item for item in found.resources}
    assert set(resources) == {CODE, CLINICS}  # the draft is not counted
    loaded = resources[CODE]
    assert (loaded.light, loaded.freshness, loaded.snapshot, loaded.rows) == (
        "green",
        "green",
        batch.snapshot,
        3,
    )
    assert (loaded.validity, loaded.uniqueness, loaded.last_batch_state) == (1.0, 1.0, "succeeded")
    never = resources[CLINICS]
    assert (never.light, never.freshness, never.snapshot, never.last_loaded_at) == (
        "no_data",
        "no_data",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("later", "light"),
    [
        (timedelta(days=1), "green"),
        (timedelta(days=2, hours=12), "yellow"),
        (timedelta(days=4), "red"),
    ],
)
def test_a_daily_resource_turns_yellow_then_red_as_time_passes(
    later: timedelta, light: str, province: World, tmp_path: Path
) -> None:
    batch = ingest(province.database, write_csv(tmp_path / "clean.csv", [VALID_A, VALID_B]))
    assert batch.finished_at is not None
    with province.database.session() as session:
        found = queries.report(session, actor=SYSTEM, now=batch.finished_at + later)
    [row] = [item for item in found.resources if item.code == CODE]
    assert (row.freshness, row.light) == (light, light)
    assert found.generated_at == batch.finished_at + later


def test_low_validity_is_red_and_a_failed_last_batch_is_yellow(
    province: World, tmp_path: Path
) -> None:
    db = province.database
    ingest(db, write_csv(tmp_path / "all.csv"))  # 3 of 18 rows valid
    with db.session() as session:
        [row] = [
            item for item in queries.report(session, actor=SYSTEM).resources if item.code == CODE
        ]
    assert (row.freshness, row.light) == ("green", "red")

    ingest(db, write_csv(tmp_path / "clean.csv", [VALID_A]))
    with pytest.raises(ValidationFailed):
        ingest(db, tmp_path / "missing.csv")
    with db.session() as session:
        [row] = [
            item for item in queries.report(session, actor=SYSTEM).resources if item.code == CODE
        ]
    assert (row.last_batch_state, row.light, row.rows) == ("failed", "yellow", 1)


def test_the_report_narrows_to_a_provider_and_needs_a_user(province: World) -> None:
    with province.database.session() as session:
        found = queries.report(session, actor=SYSTEM, provider="zj_wjw")
        assert [item.code for item in found.resources] == [CLINICS]
        assert [item.key for item in found.by_provider] == ["zj_wjw"]
        with pytest.raises(NotFound, match="no department 'zj_nope'"):
            queries.report(session, actor=SYSTEM, provider="zj_nope")
        with pytest.raises(Unauthenticated):
            queries.report(session, actor=ANONYMOUS)


def test_health_is_one_row_a_day_per_scope_and_gives_the_trend(
    province: World, tmp_path: Path
) -> None:
    db = province.database
    batch = ingest(db, write_csv(tmp_path / "clean.csv", [VALID_A]))
    assert batch.finished_at is not None
    today = batch.finished_at
    scopes = 1 + 2 + 2  # all, two providers, two systems

    def health_rows() -> int:
        with db.session() as session:
            return session.scalar(select(func.count()).select_from(Health)) or 0

    assert health_rows() == scopes  # the batch kept today's roll-up
    for now in (today, today + timedelta(minutes=1), today + timedelta(days=1)):
        with db.transaction() as session:
            assert (
                service.record_health(session, queries.report(session, actor=SYSTEM, now=now))
                == scopes
            )
    assert health_rows() == 2 * scopes

    with db.session() as session:
        points = queries.trend(session)
        by_provider = queries.trend(session, scope="provider", key="zj_wjw")
    assert [point.day for point in points] == [
        today.date().isoformat(),
        (today + timedelta(days=1)).date().isoformat(),
    ]
    assert [(point.published, point.current, point.coverage) for point in points] == [
        (2, 1, 0.5)
    ] * 2
    assert points[0].lights["no_data"] == 1
    assert [point.current for point in by_provider] == [0, 0]
