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
    # evaluating again raises no second problem
    brain.evaluate_warnings(db, actor=SYSTEM, today=date(2025, 5, 10))
    assert client.get("/api/v1/problems", headers=officer).json()["count"] == 1
    inbox = client.get("/api/v1/inbox", headers=officer)
    if inbox.status_code == 200:
        assert any(item["object_id"] == str(pid) for item in inbox.json()["data"])

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
