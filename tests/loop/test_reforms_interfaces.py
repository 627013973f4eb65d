"""The reform ledger through the CLI and the REST API, as the reform office and a lead
department drive it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from shuzhi.core import clock
from shuzhi.core.permissions import SYSTEM
from shuzhi.orgs import service as orgs
from shuzhi.server import create_app
from tests.api.support import assert_problem
from tests.cli.test_cli import assert_one_line_error, cli, cli_json, run
from tests.conftest import World
from tests.loop.test_reforms import MILESTONES, NOON, spec

PEOPLE = ("reform", "hz_wjw_officer", "supervisor", "gat_admin")


@pytest.fixture
def staffed(loop_world: World) -> Iterator[World]:
    """The loop's people with API tokens, the clock at NOON."""
    clock.set_clock(lambda: NOON)
    with loop_world.database.transaction() as session:
        for name in PEOPLE:
            _, plaintext = orgs.create_token(session, actor=SYSTEM, username=name, name="tests")
            loop_world.tokens[name] = plaintext
    yield loop_world
    clock.set_clock(None)


@pytest.fixture
def client(staffed: World) -> Iterator[TestClient]:
    with TestClient(create_app(database=staffed.database)) as test_client:
        yield test_client


def document(*specs: dict[str, Any]) -> str:
    return yaml.safe_dump({"reforms": list(specs)}, allow_unicode=True)


def as_user(world: World, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[name]}"}


# -- the API ----------------------------------------------------------------------------


def test_api_keeps_the_ledger(client: TestClient, staffed: World) -> None:
    reform, officer = as_user(staffed, "reform"), as_user(staffed, "hz_wjw_officer")
    body = document(spec(milestones=MILESTONES))
    yaml_headers = {**reform, "content-type": "application/yaml"}
    applied = client.post("/api/v1/reforms/apply", content=body, headers=yaml_headers)
    assert applied.status_code == 200, applied.text
    assert applied.json() == {"created": 1, "updated": 0, "unchanged": 0}
    again = client.post("/api/v1/reforms/apply", content=body, headers=yaml_headers)
    assert again.json() == {"created": 0, "updated": 0, "unchanged": 1}

    put = client.put("/api/v1/reforms/RF-02", json=spec("RF-02", batch="planning"), headers=reform)
    assert put.status_code == 200, put.text
    assert (put.json()["code"], put.json()["batch"], put.json()["light"]) == (
        "RF-02", "planning", "no_data",
    )  # fmt: skip

    listed = client.get("/api/v1/reforms", headers=officer).json()
    assert [(r["code"], r["light"]) for r in listed["data"]] == [
        ("RF-01", "red"),
        ("RF-02", "no_data"),
    ]
    planning = client.get("/api/v1/reforms", params={"batch": "planning"}, headers=officer)
    assert [r["code"] for r in planning.json()["data"]] == ["RF-02"]
    before = client.get("/api/v1/reforms", params={"as_of": "2025-06-09"}, headers=officer)
    assert before.json() == {"data": [], "count": 0, "as_of": "2025-06-09"}
    batches = client.get("/api/v1/reforms/batches", headers=officer).json()
    assert [(b["batch"], b["label"], b["count"]) for b in batches] == [
        ("upgrading", "迭代升级", 0), ("implementing", "启动实施", 1), ("planning", "谋划推进", 1),
    ]  # fmt: skip

    page = client.get("/api/v1/reforms/RF-01", headers=officer).json()
    first = page["milestones"][0]
    assert (first["name"], first["light"]) == ("方案印发", "red")
    url = f"/api/v1/reforms/RF-01/milestones/{first['id']}"
    refused = client.post(f"{url}/transitions", json={"transition": "submit"}, headers=officer)
    assert "closure needs evidence" in assert_problem(refused, 409, "invalid-transition")["detail"]
    proof = client.post(
        f"{url}/evidence",
        files={"file": ("纪要.pdf", b"%PDF minutes", "application/pdf")},
        data={"note": "会议纪要"},
        headers=officer,
    )
    assert proof.status_code == 201, proof.text
    assert (proof.json()["filename"], proof.json()["note"]) == ("纪要.pdf", "会议纪要")
    downloaded = client.get(f"/api/v1/evidence/{proof.json()['id']}", headers=officer)
    assert downloaded.status_code == 200 and downloaded.content == b"%PDF minutes"
    submitted = client.post(
        f"{url}/transitions",
        json={"transition": "submit", "attachments": [proof.json()["id"]]},
        headers=officer,
    )
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["state"] == "submitted"
    mine = client.post(f"{url}/transitions", json={"transition": "verify"}, headers=officer)
    assert_problem(mine, 403, "forbidden")
    verified = client.post(f"{url}/transitions", json={"transition": "verify"}, headers=reform)
    assert (verified.json()["state"], verified.json()["light"]) == ("verified", "green")

    checked = client.post(
        "/api/v1/reforms/RF-01/check-ins", json={"note": "试点扩面"}, headers=officer
    )
    assert checked.status_code == 201, checked.text
    assert (checked.json()["kind"], checked.json()["note"]) == ("check_in", "试点扩面")
    versions = client.get("/api/v1/reforms/RF-01", headers=officer).json()["versions"]
    assert [v["kind"] for v in versions] == [
        "check_in",
        "milestone",
        "milestone",
        "milestone",
        "created",
    ]
    assert versions[0]["version"] == 5


def test_api_refusals_are_problems(client: TestClient, staffed: World) -> None:
    reform = as_user(staffed, "reform")
    client.put("/api/v1/reforms/RF-01", json=spec(milestones=MILESTONES), headers=reform)
    assert_problem(client.get("/api/v1/reforms"), 401, "unauthenticated")
    assert_problem(client.get("/api/v1/reforms/NOPE", headers=reform), 404, "not-found")
    bad_day = client.get("/api/v1/reforms", params={"as_of": "2025-13-01"}, headers=reform)
    assert_problem(bad_day, 422, "validation")
    bad_batch = client.get("/api/v1/reforms", params={"batch": "soon"}, headers=reform)
    assert "unknown batch 'soon'" in assert_problem(bad_batch, 422, "validation")["detail"]
    mismatch = client.put("/api/v1/reforms/RF-09", json=spec("RF-10"), headers=reform)
    assert "defines RF-10, not RF-09" in assert_problem(mismatch, 422, "validation")["detail"]
    unknown = client.put("/api/v1/reforms/RF-03", json=spec("RF-03", lead="nope"), headers=reform)
    assert assert_problem(unknown, 422, "validation")["detail"] == (
        "request: reform RF-03: lead: unknown department 'nope'"
    )
    yaml_headers = {"content-type": "application/yaml"}
    broken = client.post(
        "/api/v1/reforms/apply", content="reforms: [", headers={**reform, **yaml_headers}
    )
    assert_problem(broken, 422, "validation")
    officer_apply = client.post(
        "/api/v1/reforms/apply",
        content=document(spec("RF-04")),
        headers={**as_user(staffed, "hz_wjw_officer"), **yaml_headers},
    )
    assert_problem(officer_apply, 403, "forbidden")
    stranger = client.post(
        "/api/v1/reforms/RF-01/check-ins",
        json={"note": "越权"},
        headers=as_user(staffed, "gat_admin"),
    )
    assert "gat_admin may not loop.check_in" in assert_problem(stranger, 403, "forbidden")["detail"]
    empty = client.post("/api/v1/reforms/RF-01/check-ins", json={"note": " "}, headers=reform)
    assert_problem(empty, 422, "validation")
    ghost = client.post(
        "/api/v1/reforms/RF-01/milestones/999/transitions",
        json={"transition": "submit"},
        headers=reform,
    )
    assert "has no milestone 999" in assert_problem(ghost, 404, "not-found")["detail"]
    reforms_left = client.get("/api/v1/reforms", headers=reform).json()
    assert [r["code"] for r in reforms_left["data"]] == ["RF-01"]


# -- the CLI ----------------------------------------------------------------------------


def test_cli_keeps_the_ledger(staffed: World, tmp_path: Path) -> None:
    path = tmp_path / "reforms.yaml"
    path.write_text(document(spec(milestones=MILESTONES)), encoding="utf-8")
    officer = {"SHUZHI_TOKEN": staffed.tokens["hz_wjw_officer"]}
    supervisor = {"SHUZHI_TOKEN": staffed.tokens["supervisor"]}
    assert cli_json("reforms", "apply", str(path)) == {"created": 1, "updated": 0, "unchanged": 0}
    assert "0 created, 0 updated, 1 unchanged" in cli("reforms", "apply", str(path)).stdout
    listed = cli_json("reforms", "list", "--batch", "implementing")
    assert [(r["code"], r["light"]) for r in listed["data"]] == [("RF-01", "red")]
    table = cli("reforms", "list", "--region", "330100").stdout
    assert "测试改革RF-01" in table and "启动实施" in table and "红" in table and "0/3" in table
    assert cli_json("reforms", "list", "--as-of", "2025-06-09")["data"] == []

    shown = cli_json("reforms", "show", "RF-01")
    first = shown["milestones"][0]
    assert first["name"] == "方案印发"
    evidence = tmp_path / "纪要.txt"
    evidence.write_text("会议纪要", encoding="utf-8")
    submitted = cli_json(
        "reforms", "milestone", "RF-01", str(first["id"]), "submit", "--evidence", str(evidence),
        env=officer,
    )  # fmt: skip
    assert (submitted["state"], submitted["evidence_count"]) == ("submitted", 1)
    verified = cli_json("reforms", "milestone", "RF-01", str(first["id"]), "verify", env=supervisor)
    assert (verified["state"], verified["light"]) == ("verified", "green")
    checked = cli_json("reforms", "check-in", "RF-01", "--note", "完成招标", env=officer)
    assert (checked["kind"], checked["actor"]) == ("check_in", "hz_wjw_officer")
    text = cli("reforms", "show", "RF-01").stdout
    assert "方案印发" in text and "verified" in text and "25.0%" in text
    history = cli_json("reforms", "history", "RF-01")
    assert [v["kind"] for v in history["data"]] == [
        "check_in", "milestone", "milestone", "milestone", "created",
    ]  # fmt: skip
    assert "完成招标" in cli("reforms", "history", "RF-01").stdout


def test_cli_errors_are_one_line(staffed: World, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(document(spec(lead="nope")), encoding="utf-8")
    assert_one_line_error(
        run("reforms", "apply", str(bad)), "bad.yaml: reform RF-01: lead: unknown department 'nope'"
    )
    assert_one_line_error(run("reforms", "show", "NOPE"), "no reform 'NOPE'")
    assert_one_line_error(run("reforms", "list", "--as-of", "2025-13-01"), "is not a date")
    assert_one_line_error(run("reforms", "list", "--batch", "soon"), "unknown batch 'soon'")
    assert cli_json("reforms", "list")["count"] == 0  # nothing written
