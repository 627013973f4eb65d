"""Problems from the console and through the API's Excel routes, as the reform office and
a department officer drive them."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook

from shuzhi.core.db import Database
from shuzhi.server import create_app
from tests.api.support import assert_problem, auth
from tests.cli.test_cli import assert_one_line_error, cli, cli_json, run
from tests.conftest import World
from tests.loop.conftest import add_loop_people


@pytest.fixture
def people(sqlite_db: Database) -> World:
    from tests.conftest import build_world

    return add_loop_people(build_world(sqlite_db))


@pytest.fixture
def client(people: World) -> Iterator[TestClient]:
    with TestClient(create_app(database=people.database)) as client:
        yield client


def test_the_console_runs_a_problem_through(people: World, tmp_path: Path) -> None:
    made = cli_json(
        "problems", "report", "--title", "窗口办件超时", "--channel", "inspection",
        "--system", "digital_government", "--region", "330102", "--department", "hz_wjw",
        "--deadline", "2030-01-31",
    )  # fmt: skip
    pid = str(made["id"])
    assert made["state"] == "assigned" and made["deadline"] == "2030-01-31"
    officer = {"SHUZHI_TOKEN": people.tokens["hz_wjw_officer"]}
    assert cli_json("problems", "act", pid, "accept", env=officer)["state"] == "rectifying"
    report = tmp_path / "整改报告.txt"
    report.write_text("已整改", encoding="utf-8")
    evidence = cli_json("problems", "evidence", pid, str(report), env=officer)
    closure = cli_json(
        "problems", "act", pid, "request_closure", "--evidence", str(evidence["id"]), env=officer
    )
    assert closure["state"] == "closure_requested"
    shown = cli_json("problems", "show", pid)
    assert [s["transition"] for s in shown["timeline"]] == ["assign", "accept", "request_closure"]
    assert shown["evidence"][0]["sha256"] == evidence["sha256"]
    listed = cli_json("problems", "list", "--state", "closure_requested")
    assert [row["id"] for row in listed["data"]] == [made["id"]] and listed["count"] == 1
    stats = cli_json("problems", "stats", "--by", "channel")
    assert stats["data"][0]["key"] == "inspection" and stats["total"]["open"] == 1
    board = cli_json("problems", "board")
    assert {c["state"]: c["count"] for c in board["columns"]}["closure_requested"] == 1
    assert "窗口办件超时" in cli("problems", "list").stdout
    # the workbook round trip from the console
    out = tmp_path / "problems.xlsx"
    assert cli_json("problems", "export", "--output", str(out))["bytes"] > 0
    assert load_workbook(out).active["C2"].value == "窗口办件超时"
    again = cli_json("problems", "import", str(out))
    assert (again["created"], again["updated"], again["errors"]) == (0, 0, [])


def test_console_refusals_are_one_line(people: World, tmp_path: Path) -> None:
    assert_one_line_error(run("problems", "show", "999"), "no problem 999")
    assert_one_line_error(
        run("problems", "report", "--title", "x", "--channel", "audit", "--system",
            "digital_government", "--region", "999999"),
        "unknown region 999999",
    )  # fmt: skip
    made = cli_json(
        "problems", "report", "--title", "无证据", "--channel", "audit", "--system",
        "digital_government", "--region", "330102", "--department", "hz_wjw",
    )  # fmt: skip
    officer = people.tokens["hz_wjw_officer"]
    run("problems", "act", str(made["id"]), "accept", SHUZHI_TOKEN=officer)
    assert_one_line_error(
        run("problems", "act", str(made["id"]), "request_closure", SHUZHI_TOKEN=officer),
        "closure needs evidence",
    )
    assert_one_line_error(run("problems", "list", "--light", "blue"), "light is one of")
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a workbook")
    assert_one_line_error(run("problems", "import", str(bad)), "bad.xlsx")


def test_the_api_exports_and_imports_workbooks(client: TestClient, people: World) -> None:
    reform = auth(people, "reform")
    for title in ("甲问题", "乙问题"):
        body = {"title": title, "channel": "petition", "system": "digital_society",
                "region": "330102", "department": "hz_wjw"}  # fmt: skip
        assert client.post("/api/v1/problems", json=body, headers=reform).status_code == 201
    exported = client.get("/api/v1/problems/export.xlsx", params={"q": "甲"}, headers=reform)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/vnd.openxmlformats")
    rows = list(load_workbook(io.BytesIO(exported.content)).active.values)
    assert [row[2] for row in rows[1:]] == ["甲问题"]
    # a hand-written sheet with one bad row imports nothing, and names the row and column
    book = Workbook()
    sheet = book.active
    sheet.title = "问题清单"
    sheet.append(["问题标题", "问题来源", "所属系统", "行政区划代码", "责任单位", "整改期限"])
    sheet.append(["丙问题", "信访", "数字社会", "330102", "hz_wjw", "2030-05-01"])
    sheet.append(["丁问题", "信访", "数字社会", "330102", "nowhere", "2030-05-01"])
    path = io.BytesIO()
    book.save(path)
    files = {"file": ("list.xlsx", path.getvalue())}
    refused = client.post("/api/v1/problems/import", files=files, headers=reform).json()
    assert refused["imported"] == 0 and [(e["row"], e["column"]) for e in refused["errors"]] == [
        (3, "责任单位")
    ]
    assert client.get("/api/v1/problems", headers=reform).json()["count"] == 2
    partial = client.post(
        "/api/v1/problems/import", params={"good_only": True}, files=files, headers=reform
    ).json()
    assert partial["created"] == 1
    assert client.get("/api/v1/problems", headers=reform).json()["count"] == 3
    viewer = auth(people, "viewer")
    assert_problem(
        client.post("/api/v1/problems/import", files=files, headers=viewer), 403, "forbidden"
    )
    assert_problem(
        client.get("/api/v1/problems", params={"state": "lost"}, headers=viewer),
        422,
        "validation",
    )


def test_the_ledger_round_trips_through_the_console_and_the_api(
    client: TestClient, people: World, tmp_path: Path
) -> None:
    spec = tmp_path / "reforms.yaml"
    spec.write_text(
        "reforms:\n"
        "  - {code: ZJ-1, name: 浙有善育, system: digital_society, batch: implementing,\n"
        "     lead: zj_wjw, starts_on: 2025-01-01, ends_on: 2027-12-31,\n"
        "     milestones: [{name: 试点, due: 2026-06-30}, {name: 全省推开, due: 2027-06-30}]}\n",
        encoding="utf-8",
    )
    cli("reforms", "apply", str(spec))
    out = tmp_path / "ledger.xlsx"
    assert cli_json("reforms", "export", "--output", str(out))["bytes"] > 0
    book = load_workbook(out)
    assert book["改革一本账"]["C2"].value == "浙有善育"
    assert [row[1] for row in book["里程碑"].iter_rows(min_row=2, values_only=True)] == [
        "试点", "全省推开"
    ]  # fmt: skip
    again = cli_json("reforms", "import", str(out))
    assert (again["created"], again["updated"], again["errors"]) == (0, 0, [])
    reform = auth(people, "reform")
    exported = client.get("/api/v1/reforms/export.xlsx", headers=reform)
    assert exported.status_code == 200 and exported.content[:2] == b"PK"
    files = {"file": ("ledger.xlsx", exported.content)}
    answer = client.post("/api/v1/reforms/import", params={"dry_run": True}, files=files,
                         headers=reform).json()  # fmt: skip
    assert answer["dry_run"] is True and answer["errors"] == [] and answer["updated"] == 0
