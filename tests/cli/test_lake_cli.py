"""`shuzhi ingest`, `quarantine`, `lake` and `quality`, driven as a user drives them.

Successful commands run in-process on ``app``. Errors are mapped to one line and exit 2 by
``main()``; most error cases call ``main()`` in-process (the same path, quicker), and one
runs ``python -m shuzhi`` to show a real process prints no traceback.
"""

from __future__ import annotations

import codecs
import csv
import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shuzhi.cli.main import main
from shuzhi.core.db import Database
from shuzhi.lake.models import Batch, Health, PiiFlag
from shuzhi.lake.service import lake_of
from tests.cli.test_cli import assert_one_line_error, cli, cli_json, run
from tests.conftest import World, resource_doc
from tests.lake.data import (
    CODE,
    COUNTS,
    NAMES,
    REFUSED,
    ROWS,
    RULE_COUNTS,
    TITLES,
    VALID_A,
    VALID_B,
    Template,
    build_template,
    publish,
    row,
    world_from,
    write_csv,
    write_sqlite,
    write_xlsx,
)


@pytest.fixture(scope="session")
def lake_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(sqlite_template, tmp_path_factory.mktemp("lake-template"))


@pytest.fixture
def loaded(lake_template: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """The test world with the all-types resource published, on SQLite."""
    return world_from(lake_template, tmp_path, monkeypatch)


def shuzhi(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """``main()`` in-process: exit status, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["shuzhi", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def assert_error(status: int, err: str, *fragments: str) -> None:
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def batch_count(database: Database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(Batch)) or 0


# ingest ------------------------------------------------------------------------------------


def test_ingest_json_is_the_batch_summary(loaded: World, tmp_path: Path) -> None:
    found = cli_json("ingest", CODE, str(write_csv(tmp_path / "people.csv")))
    assert {
        "batch_id",
        "rows_read",
        "rows_loaded",
        "rows_quarantined",
        "duplicates",
        "snapshot",
    } <= set(found)
    assert {name: found[name] for name in COUNTS} == COUNTS
    assert found["rows_read"] == (
        found["rows_loaded"] + found["rows_quarantined"] + found["duplicates"]
    )
    assert found["state"] == "succeeded" and found["connector"] == "csv"
    assert found["rule_counts"] == RULE_COUNTS
    assert found["snapshot"] == lake_of().current(CODE)
    assert found["mapping"] == {name: name for name in NAMES}


def test_ingest_prints_a_summary_then_unchanged_for_the_same_input(
    loaded: World, tmp_path: Path
) -> None:
    path = str(write_csv(tmp_path / "people.csv"))
    lines = cli("ingest", CODE, path).stdout.splitlines()
    snapshot = lake_of().current(CODE)
    assert lines[0] == (
        f"batch 1 succeeded: read 19, loaded 3, quarantined 15, duplicates 1; "
        f"snapshot {snapshot} (3 rows)"
    )
    assert "  citizen_id     1" in lines
    assert lines[-1] == f"see them with: shuzhi quarantine list {CODE}"
    again = cli("ingest", CODE, path).stdout.splitlines()
    assert again[0].startswith("batch 2 unchanged (same input as the current snapshot)")
    assert lake_of().current(CODE) == snapshot


def test_ingest_names_a_field_that_looks_personal(loaded: World, tmp_path: Path) -> None:
    from tests.lake.test_service import CONTACTS, contacts_csv, contacts_doc

    publish(loaded.database, contacts_doc())
    lines = cli("ingest", CONTACTS, str(contacts_csv(tmp_path / "c.csv"))).stdout.splitlines()
    assert lines[-1] == (
        "field contact is declared not personal but 60% of its values look like phone "
        f"(e.g. 139****0000): reclassify it, or shuzhi lake review-pii {CONTACTS} contact"
    )
    found = cli_json("ingest", CONTACTS, str(contacts_csv(tmp_path / "c2.csv", mobiles=7)))
    assert found["pii_findings"] == [
        {"field": "contact", "kind": "phone", "share": 0.7, "example": "139****0000"}
    ]


def test_ingest_options_reach_the_connector(loaded: World, tmp_path: Path) -> None:
    headers = [*TITLES[:-1], "收入（元）"]
    book = write_xlsx(tmp_path / "人员.xlsx", headers=headers, sheet="登记表", header_row=2)
    found = cli_json(
        "ingest", CODE, str(book), "--sheet", "登记表", "--header-row", "2",
        "--map", "收入（元）=income",
    )  # fmt: skip
    assert {name: found[name] for name in COUNTS} == COUNTS
    assert found["connector"] == "xlsx" and found["mapping"]["收入（元）"] == "income"

    # a file whose name says nothing, declared as GBK CSV
    path = tmp_path / "export.dat"
    write_csv(path, [VALID_A, VALID_B, row()], headers=TITLES, encoding="gbk")
    found = cli_json("ingest", CODE, str(path), "--format", "csv", "--encoding", "gbk")
    assert (found["connector"], found["rows_loaded"]) == ("csv", 3)


def test_ingest_incremental_with_a_watermark(loaded: World, tmp_path: Path) -> None:
    cli("ingest", CODE, str(write_csv(tmp_path / "full.csv", [VALID_A, VALID_B])))
    newer = row(updated_at="2025-01-01 00:00:00")
    found = cli_json(
        "ingest", CODE, str(write_csv(tmp_path / "delta.csv", [VALID_A, newer])),
        "--mode", "incremental", "--watermark", "updated_at",
    )  # fmt: skip
    assert (found["mode"], found["rows_loaded"], found["duplicates"]) == ("incremental", 1, 1)
    assert found["snapshot_rows"] == 3


def test_a_database_table_is_ingested_from_its_url(loaded: World, tmp_path: Path) -> None:
    url = write_sqlite(tmp_path / "source.sqlite")
    found = cli_json("ingest", CODE, url, "--table", "people")
    assert (found["connector"], found["rows_loaded"]) == ("sql", 3)
    assert found["source"] == f"{url} table people"


# errors: one line, exit 2 ------------------------------------------------------------------------


def test_an_ingest_error_is_one_line_from_a_real_process(loaded: World, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(f"id_card,full_name\n{VALID_A[0]},张三,多余\n", encoding="utf-8")
    assert_one_line_error(run("ingest", CODE, str(path)), "people.csv does not parse")
    assert batch_count(loaded.database) == 1


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["ingest", "nope", "{csv}"], ["no catalog resource 'nope'"]),
        (["ingest", CODE, "{csv}", "--map", "证件号"], ["'证件号'", "write it as 'column=field'"]),
        (["ingest", CODE, "{csv}", "--map", "id_card=nickname"], ["no field 'nickname'"]),
        (["ingest", CODE, "{xlsx}", "--sheet", "不存在"], ["has no sheet '不存在'"]),
        (["ingest", CODE, "{csv}", "--encoding", "klingon"], ["unknown encoding 'klingon'"]),
        (["ingest", CODE, "{csv}", "--mode", "sideways"], ["sideways"]),
        (["ingest", CODE, "sqlite:///{tmp}/none.db"], ["--table or --query"]),
        (["quarantine", "list", "nope"], ["no catalog resource 'nope'"]),
        (["lake", "batches", "nope"], ["no catalog resource 'nope'"]),
        (["lake", "query", "DROP TABLE x"], ["only SELECT"]),
        (["lake", "query", "SELECT * FROM read_csv('/etc/passwd')"], ["query failed"]),
        (["lake", "review-pii", CODE, "company"], ["company of gat_register is not flagged"]),
        (["quality", "report", "--provider", "zj_nope"], ["no department 'zj_nope'"]),
    ],
)
def test_bad_commands_are_one_line_errors(
    args: list[str],
    fragments: list[str],
    loaded: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = {
        "csv": str(write_csv(tmp_path / "people.csv", [VALID_A])),
        "xlsx": str(write_xlsx(tmp_path / "people.xlsx", [VALID_A])),
        "tmp": str(tmp_path),
    }
    status, _out, err = shuzhi([arg.format(**files) for arg in args], monkeypatch, capsys)
    assert_error(status, err, *fragments)
    assert lake_of().current(CODE) is None


@pytest.mark.parametrize(
    ("user", "args", "fragment"),
    [
        ("viewer", ["ingest", CODE, "{csv}"], "resource gat_register"),
        ("wjw_officer", ["ingest", CODE, "{csv}"], "resource gat_register"),
        ("gat_officer", ["lake", "query", "SELECT 1"], "the lake"),
        ("viewer", ["quarantine", "list", CODE], "data of gat_register"),
    ],
)
def test_a_token_without_the_right_is_refused(
    user: str,
    args: list[str],
    fragment: str,
    loaded: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SHUZHI_TOKEN", loaded.tokens[user])
    csv_path = str(write_csv(tmp_path / "people.csv", [VALID_A]))
    status, _out, err = shuzhi([arg.format(csv=csv_path) for arg in args], monkeypatch, capsys)
    assert_error(status, err, fragment)
    assert batch_count(loaded.database) == 0


def test_an_ingest_while_a_batch_runs_is_refused(
    loaded: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with lake_of().locked(CODE):
        status, _out, err = shuzhi(
            ["ingest", CODE, str(write_csv(tmp_path / "p.csv"))], monkeypatch, capsys
        )
    assert_error(status, err, "already running")


# the quarantine ----------------------------------------------------------------------------------


def test_quarantine_list_show_and_export(loaded: World, tmp_path: Path) -> None:
    cli("ingest", CODE, str(write_csv(tmp_path / "人员.csv", headers=TITLES, encoding="gbk")))

    listed = cli_json("quarantine", "list", CODE)
    assert listed["count"] == len(REFUSED)
    assert {
        item["row"]: (item["rule"], item["field"], item["value"]) for item in listed["data"]
    } == REFUSED
    only = cli_json("quarantine", "list", CODE, "--rule", "primary_key", "--limit", "1")
    assert (only["count"], [item["row"] for item in only["data"]]) == (2, [5])
    table = cli("quarantine", "list", CODE, "--limit", "3").stdout.splitlines()
    assert table[0].split() == ["row", "rule", "field", "value", "failures"]
    assert table[-1] == "3 of 15 of batch 1"

    shown = cli_json("quarantine", "show", CODE)
    assert shown == {
        "batch_id": 1,
        "rows_read": 19,
        "rows_quarantined": 15,
        "rule_counts": RULE_COUNTS,
    }
    assert "batch 1: 15 of 19 rows quarantined" in cli("quarantine", "show", CODE).stdout

    target = tmp_path / "refused.csv"
    out = cli("quarantine", "export", CODE, "--output", str(target)).stdout
    assert out.strip() == f"15 row(s) written to {target}"
    raw = target.read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)
    lines = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert lines[0] == ["行号 row", "规则 rule", "字段 field", *TITLES]
    assert len(lines) == 1 + len(REFUSED)
    assert lines[1][:3] == ["5", "primary_key:id_card", "id_card"]
    assert lines[1][3:] == ["" if value is None else value for value in ROWS[4]]


# the lake ----------------------------------------------------------------------------------------


def test_lake_query_and_batches(loaded: World, tmp_path: Path) -> None:
    batch = cli_json("ingest", CODE, str(write_csv(tmp_path / "people.csv")))
    sql = f"SELECT full_name, age FROM {CODE} ORDER BY id_card"
    found = cli_json("lake", "query", sql)
    assert found == {
        "columns": ["full_name", "age"],
        "rows": [["张三", 74], ["李四", 34], ["王五", None]],
        "count": 3,
        "truncated": False,
        "snapshots": {CODE: batch["snapshot"]},
    }
    assert cli_json("lake", "query", sql, "--limit", "2")["truncated"] is True
    lines = cli("lake", "query", sql, "--limit", "2").stdout.splitlines()
    assert lines[0].split() == ["full_name", "age"]
    assert lines[-1] == "2 row(s) (more rows not shown)"

    cli("ingest", CODE, str(write_csv(tmp_path / "people.csv")))
    listed = cli_json("lake", "batches", CODE)
    assert listed["count"] == 2
    assert [(item["batch_id"], item["state"]) for item in listed["data"]] == [
        (2, "unchanged"),
        (1, "succeeded"),
    ]
    table = cli("lake", "batches", CODE).stdout.splitlines()
    assert table[0].split()[:3] == ["batch", "state", "mode"]


def test_lake_recover_marks_dead_batches_failed(loaded: World, tmp_path: Path) -> None:
    cli("ingest", CODE, str(write_csv(tmp_path / "people.csv")))
    assert cli("lake", "recover").stdout.strip() == "0 interrupted batch(es) marked failed"
    with loaded.database.transaction() as session:
        first = session.get(Batch, 1)
        assert first is not None
        session.add(
            Batch(
                resource_id=first.resource_id,
                source="killed",
                connector="csv",
                mode="full",
                state="running",
                fingerprint="",
                mapping={},
                actor="system",
                started_at=first.started_at,
            )
        )
    assert cli("lake", "recover").stdout.strip() == "1 interrupted batch(es) marked failed"
    assert cli_json("lake", "batches", CODE)["data"][0]["state"] == "failed"


def test_lake_review_pii_and_the_quality_report(loaded: World, tmp_path: Path) -> None:
    publish(
        loaded.database,
        resource_doc(
            code="wjw_contacts",
            provider="zj_wjw",
            fields=[
                {"name": "n", "title": "序号", "type": "integer", "primary_key": True},
                {"name": "contact", "title": "联系方式"},
            ],
        ),
    )
    path = tmp_path / "contacts.csv"
    path.write_text("n,contact\n1,13900001111\n2,13900002222\n3,值班室\n", encoding="utf-8")
    cli("ingest", "wjw_contacts", str(path))

    report = cli_json("quality", "report")
    assert [flag["field"] for flag in report["pii_flags"]] == ["contact"]
    overall = report["overall"]
    assert (overall["published"], overall["current"], overall["coverage"]) == (2, 1, 0.5)
    resources = {item["code"]: item for item in report["resources"]}
    assert (resources["wjw_contacts"]["light"], resources["wjw_contacts"]["pii_flags"]) == (
        "green",
        1,
    )
    assert resources[CODE]["light"] == "no_data"
    with loaded.database.session() as session:
        # all, two providers, one system: one row each for today
        assert session.scalar(select(func.count()).select_from(Health)) == 4

    out = cli("lake", "review-pii", "wjw_contacts", "contact").stdout
    assert out.strip() == "wjw_contacts.contact marked reviewed"
    with loaded.database.session() as session:
        flag = session.scalar(select(PiiFlag))
        assert flag is not None and (flag.reviewed, flag.reviewed_by) == (True, "system")
    assert cli_json("quality", "report")["pii_flags"] == []
    table = cli("quality", "report").stdout
    assert "wjw_contacts" in table and "coverage" in table
    only = json.loads(cli("quality", "report", "--provider", "zj_wjw", "--json").stdout)
    assert [item["code"] for item in only["resources"]] == ["wjw_contacts"]
