"""The whole closed loop through the REST API: an indicator drops, its warning fires, a
problem is raised and assigned, rectified with evidence, refused verification while the
warning fires, the indicator recovers, the warning resolves, the problem is verified and
closed, and its light turns green."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shuzhi.brain import service as brain
from shuzhi.core.db import Database
from shuzhi.core.permissions import SYSTEM
from shuzhi.lake.rules import Mode
from shuzhi.server import create_app
from tests.api.support import assert_problem, auth
from tests.brain.data import GONGSHU, MONTHLY, write
from tests.conftest import World
from tests.lake.data import ingest


@pytest.fixture
def client(loop_world: World, watched: Database) -> Iterator[TestClient]:
    with TestClient(create_app(database=loop_world.database)) as client:
        yield client


def recover(db: Database, folder: Path) -> None:
    """May's figures: 拱墅 settles every case on time again."""
    rows = [[GONGSHU, "2025-05-01", "cases", 5], [GONGSHU, "2025-05-01", "on_time", 5]]
    path = write(folder / "may.csv", ["region_code", "month", "item", "value"], rows)
    ingest(db, path, code=MONTHLY, mode=Mode.incremental)
    brain.compute(db, actor=SYSTEM)
    brain.evaluate_warnings(db, actor=SYSTEM, today=date(2025, 6, 10))


def test_the_whole_loop(client: TestClient, loop_world: World, tmp_path: Path) -> None:
    db = loop_world.database
    officer, second = auth(loop_world, "hz_wjw_officer"), auth(loop_world, "hz_wjw_second")
    supervisor, reform = auth(loop_world, "supervisor"), auth(loop_world, "reform")

    # the reform office promised to bring 拱墅's on-time rate from 80% to 100% this year
    reform_spec = {
        "code": "GS-ONTIME", "name": "拱墅办件提速", "system": "digital_government",
        "batch": "implementing", "lead": "hz_wjw", "region": GONGSHU,
        "starts_on": "2025-01-01", "ends_on": "2025-12-31",
        "key_results": [{"indicator": "on_time_rate", "region": GONGSHU, "baseline": 80,
                         "baseline_on": "2025-03-31", "target": 100,
                         "target_on": "2025-12-31"}],
    }  # fmt: skip
    put = client.put("/api/v1/reforms/GS-ONTIME", json=reform_spec, headers=reform)
    assert put.status_code == 200, put.text

    def ledger_row() -> dict:
        rows = client.get("/api/v1/reforms", headers=reform).json()["data"]
        return next(row for row in rows if row["code"] == "GS-ONTIME")

    # April: 拱墅's on-time rate falls to 0% and the warning fires; the hook raises a problem
    brain.evaluate_warnings(db, actor=SYSTEM, today=date(2025, 5, 10))
    response = client.get("/api/v1/problems", params={"warning": True}, headers=officer)
    assert response.status_code == 200, response.text
    listed = response.json()
    assert listed["count"] == 1
    problem = listed["data"][0]
    assert problem["channel"] == "warning" and problem["region"]["code"] == GONGSHU
    assert problem["state"] == "assigned" and problem["light"] == "yellow"
    # the indicator's owner is the province's health commission; 拱墅 is in 杭州
    assert problem["department"]["code"] == "hz_wjw"
    assert problem["warning"]["state"] == "firing"
    pid = problem["id"]
    assert (ledger_row()["progress"], ledger_row()["light"]) == (0.0, "red")
    # evaluating again raises no second problem
    brain.evaluate_warnings(db, actor=SYSTEM, today=date(2025, 5, 10))
    assert client.get("/api/v1/problems", headers=officer).json()["count"] == 1
    # the department is told in its inbox
    inbox = client.get("/api/v1/inbox", headers=officer)
    assert inbox.status_code == 200, inbox.text
    assert [(item["kind"], item["object_id"]) for item in inbox.json()["data"]] == [
        ("assigned", str(pid))
    ]

    def fire(headers: dict[str, str], transition: str, **body: object) -> object:
        return client.post(
            f"/api/v1/problems/{pid}/transitions",
            json={"transition": transition, **body},
            headers=headers,
        )

    assert fire(officer, "accept").json()["problem"]["state"] == "rectifying"
    # closure without evidence is refused, naming the rule
    body = assert_problem(fire(officer, "request_closure"), 409, "invalid-transition")
    assert "closure needs evidence" in body["detail"]
    uploaded = client.post(
        f"/api/v1/problems/{pid}/evidence",
        files={"file": ("整改报告.txt", "已完成整改".encode(), "text/plain")},
        data={"note": "整改报告"},
        headers=officer,
    )
    assert uploaded.status_code == 201, uploaded.text
    evidence = uploaded.json()
    page = fire(officer, "request_closure", attachments=[evidence["id"]]).json()
    assert page["problem"]["state"] == "closure_requested"
    assert page["timeline"][-1]["attachments"] == [evidence["id"]]
    downloaded = client.get(f"/api/v1/evidence/{evidence['id']}", headers=supervisor)
    assert downloaded.content == "已完成整改".encode()
    # the rectifier cannot verify its own work; nor may anyone while the warning fires
    body = assert_problem(fire(officer, "verify"), 403, "forbidden")
    body = assert_problem(fire(supervisor, "verify"), 409, "invalid-transition")
    assert "warning" in body["detail"] and "still firing" in body["detail"]
    # closing an unverified problem is refused
    body = assert_problem(fire(reform, "close"), 409, "invalid-transition")
    assert "needs verified" in body["detail"]
    assert fire(second, "verify").status_code == 403  # a department admin cannot verify

    # May: the indicator recovers, the warning resolves
    recover(db, tmp_path)
    page = client.get(f"/api/v1/problems/{pid}", headers=supervisor).json()
    assert page["problem"]["warning"]["state"] == "normal"
    assert page["problem"]["light"] == "yellow"  # not green before verification
    assert "verify" in [a["name"] for a in page["actions"]]
    assert fire(supervisor, "verify").json()["problem"]["state"] == "verified"
    closed = fire(reform, "close").json()["problem"]
    assert closed["state"] == "closed" and closed["light"] == "green"
    assert closed["on_time"] is True and closed["days_to_close"] == 0
    # May's 100% meets the reform's target: its progress updates from the indicator
    assert (ledger_row()["progress"], ledger_row()["light"]) == (1.0, "green")
    page = client.get("/api/v1/reforms/GS-ONTIME", headers=reform).json()
    assert [p["id"] for p in page["problems"]] == [pid]
    states = [step["to_state"] for step in client.get(
        f"/api/v1/problems/{pid}", headers=reform).json()["timeline"]]  # fmt: skip
    assert states == ["assigned", "rectifying", "closure_requested", "verified", "closed"]
    raised = client.get(f"/api/v1/brain/warnings/{problem['warning']['id']}/problems",
                        headers=reform).json()  # fmt: skip
    assert [row["id"] for row in raised["data"]] == [pid]
    green = client.get("/api/v1/problems", params={"light": "green"}, headers=reform).json()
    assert [row["id"] for row in green["data"]] == [pid]
    stats = client.get("/api/v1/problems/stats", params={"by": "channel"}, headers=reform).json()
    assert stats["total"]["closed"] == 1 and stats["total"]["closure_rate"] == 1.0
    assert stats["total"]["on_time_rate"] == 1.0


def test_an_indicator_a_reform_promised_cannot_be_deleted(
    client: TestClient, loop_world: World
) -> None:
    reform, admin = auth(loop_world, "reform"), auth(loop_world, "admin")
    spec = {
        "code": "KEEP", "name": "保留指标", "system": "digital_society", "batch": "planning",
        "lead": "hz_wjw", "starts_on": "2025-01-01", "ends_on": "2026-12-31",
        "key_results": [{"indicator": "average_cases", "region": "330000",
                         "baseline_on": "2025-01-31", "baseline": 10, "target": 5,
                         "target_on": "2026-12-31"}],
    }  # fmt: skip
    assert client.put("/api/v1/reforms/KEEP", json=spec, headers=reform).status_code == 200
    body = assert_problem(
        client.delete("/api/v1/brain/indicators/average_cases", headers=admin), 409, "conflict"
    )
    assert "reform" in body["detail"]
    assert client.get("/api/v1/brain/indicators/average_cases", headers=admin).status_code == 200
