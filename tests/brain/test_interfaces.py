"""The brain through the CLI and the REST API, as an analyst drives it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from shuzhi.core.db import Database
from shuzhi.server import create_app
from tests.api.support import assert_problem, auth
from tests.brain.data import (
    GONGSHU,
    HANGZHOU,
    INDICATORS,
    PROVINCE,
    SHANGCHENG,
    define,
    derived,
    monthly,
)
from tests.cli.test_cli import assert_one_line_error, cli, cli_json, run
from tests.conftest import World


@pytest.fixture
def client(brain_world: World) -> TestClient:
    with TestClient(create_app(database=brain_world.database)) as client:
        yield client


def test_cli_apply_compute_and_read_values(brain_db: Database, tmp_path: Path) -> None:
    path = tmp_path / "indicators.yaml"
    path.write_text(yaml.safe_dump({"indicators": INDICATORS}, allow_unicode=True), "utf-8")
    assert cli_json("brain", "apply", str(path))["unchanged"] == [i["code"] for i in INDICATORS]
    listed = cli_json("brain", "indicators", "--system", "grassroots")
    assert {row["code"] for row in listed["data"]} == {"events", "people", "closed_share", "never"}
    run_ = cli_json("brain", "compute")
    assert run_["state"] == "succeeded" and run_["engine"] == "duckdb" and run_["rows"] > 0
    values = cli_json(
        "brain", "values", "on_time_rate", "--region", HANGZHOU, "--grain", "quarter",
        "--from", "2025-Q1", "--to", "2025-Q1",
    )  # fmt: skip
    assert [(v["period"], round(v["value"], 4)) for v in values["data"]] == [
        ("2025-Q1", round(6800 / 75, 4))
    ]
    assert values["data"][0]["region_name"] == "杭州市"
    shown = cli("brain", "show", "places_per_1000").stdout
    assert "semi_additive" in shown and "test_county_monthly" in shown
    assert cli_json("brain", "runs")["data"][0]["id"] == run_["id"]


def test_cli_errors_are_one_line(brain_db: Database, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"indicators": [{**monthly("x1", "cases"), "source": "nowhere"}]}), "utf-8"
    )
    assert_one_line_error(run("brain", "apply", str(bad)), "bad.yaml", "unknown resource nowhere")
    assert_one_line_error(run("brain", "show", "nope"), "unknown indicator 'nope'")
    assert_one_line_error(
        run("brain", "values", "cases", "--grain", "quarter", "--from", "2025-13"),
        "is not a quarter",
    )
    assert_one_line_error(run("brain", "compute", "--engine", "oracle"), "unknown engine")


def test_cli_apply_orders_through_stored_indicators(brain_db: Database, tmp_path: Path) -> None:
    def file(name: str, *indicators: dict) -> str:
        path = tmp_path / name
        path.write_text(yaml.safe_dump({"indicators": list(indicators)}), "utf-8")
        return str(path)

    define(brain_db, [derived("d_a", "cases + 1"), derived("d_b", "d_a * 2"),
                      derived("d_s", "d_b + 1")])  # fmt: skip
    reroute = file("reroute.yaml", derived("d_a", "d_s * 10"), derived("d_b", "cases * 2"))
    assert cli_json("brain", "apply", reroute)["updated"] == ["d_a", "d_b"]
    cycle = file("cycle.yaml", derived("d_new", "cases"), derived("d_b", "d_a + 1"))
    assert_one_line_error(run("brain", "apply", cycle), "cycle.yaml", "form a cycle")
    assert "d_new" not in {row["code"] for row in cli_json("brain", "indicators")["data"]}


def test_api_defines_computes_and_reads(client: TestClient, brain_world: World) -> None:
    admin = auth(brain_world, "admin")
    body = monthly("api_cases", "cases", name="接口定义的指标")
    created = client.put("/api/v1/brain/indicators/api_cases", json=body, headers=admin)
    assert created.status_code == 200, created.text
    assert created.json()["version"] == 1
    run_ = client.post("/api/v1/brain/runs", json={"indicators": ["api_cases"]}, headers=admin)
    assert run_.status_code == 201 and run_.json()["indicators"] == ["api_cases"]
    values = client.get(
        "/api/v1/brain/indicators/api_cases/values",
        params={"region": "330000", "grain": "year"},
        headers=admin,
    ).json()
    assert [(v["period"], v["value"]) for v in values["data"]] == [("2025", 122.0)]
    listed = client.get("/api/v1/brain/indicators", params={"q": "接口"}, headers=admin).json()
    assert [row["code"] for row in listed["data"]] == ["api_cases"]
    assert client.delete("/api/v1/brain/indicators/api_cases", headers=admin).status_code == 204


def test_api_refusals(client: TestClient, brain_world: World) -> None:
    admin = auth(brain_world, "admin")
    viewer = auth(brain_world, "viewer")
    assert_problem(client.get("/api/v1/brain/indicators/nope", headers=admin), 404, "not-found")
    assert_problem(client.get("/api/v1/brain/indicators"), 401, "unauthenticated")
    # a viewer reads but does not define
    assert client.get("/api/v1/brain/indicators", headers=viewer).status_code == 200
    put = client.put("/api/v1/brain/indicators/v1", json=monthly("v1", "cases"), headers=viewer)
    assert_problem(put, 403, "forbidden")
    mismatch = client.put("/api/v1/brain/indicators/v2", json=monthly("v3", "cases"), headers=admin)
    assert_problem(mismatch, 422, "validation")
    cycle = {
        "code": "cases_per_1000", "name": "循环", "system": "grassroots", "owner": "zj_gat",
        "measure": {"kind": "derived", "expression": "cases_per_1000 * 2"},
    }  # fmt: skip
    problem = assert_problem(
        client.put("/api/v1/brain/indicators/cases_per_1000", json=cycle, headers=admin),
        422,
        "validation",
    )
    assert "cycle" in problem["detail"]
    used = client.delete("/api/v1/brain/indicators/cases", headers=admin)
    assert "cases_per_1000" in assert_problem(used, 409, "conflict")["detail"]
    bad_yaml = client.post(
        "/api/v1/brain/apply",
        content="indicators: [",
        headers={**admin, "content-type": "application/yaml"},
    )
    assert_problem(bad_yaml, 422, "validation")
    assert_problem(
        client.post("/api/v1/brain/runs", json={"engine": "oracle"}, headers=admin),
        422,
        "validation",
    )


def test_cli_targets_and_evaluation(brain_db: Database, tmp_path: Path) -> None:
    cli("brain", "compute")
    made = cli_json("brain", "targets", "set", "on_time_rate", "--value", "92", "--grain",
                    "quarter", "--period", "2025-Q1", "--subtree", HANGZHOU)  # fmt: skip
    assert made["created"] == 14
    listed = cli_json("brain", "targets", "list", "on_time_rate")
    assert {row["region_code"] for row in listed["data"]} >= {HANGZHOU, SHANGCHENG, GONGSHU}
    evaluated = cli_json("brain", "evaluate", "on_time_rate", "--grain", "quarter",
                         "--period", "2025-Q1", "--children-of", HANGZHOU)  # fmt: skip
    lights = {row["region_code"]: row["light"] for row in evaluated["data"]}
    # 上城 90.0 is within 5% of 92 (87.4); 拱墅 93.3 is above it
    assert lights == {SHANGCHENG: "yellow", GONGSHU: "green"}
    table = cli("brain", "evaluate", "on_time_rate", "--grain", "quarter", "--region", HANGZHOU)
    assert "90.67" in table.stdout and "yellow" in table.stdout  # 68/75 within 5% of 92
    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump({"targets": [
        {"indicator": "cases", "value": 100, "grain": "year", "period": "2025",
         "regions": [PROVINCE]}]}), "utf-8")  # fmt: skip
    assert cli_json("brain", "targets", "import", str(path))["created"] == 1
    broken = tmp_path / "broken.yaml"
    broken.write_text("targets: [{indicator: cases, value: 1, periods: ['2025'], regions: [x]}]")
    assert_one_line_error(run("brain", "targets", "import", str(broken)), "unknown region x")


def test_api_targets_and_evaluation(client: TestClient, brain_world: World) -> None:
    admin = auth(brain_world, "admin")
    client.post("/api/v1/brain/runs", headers=admin)
    entries = [{"indicator": "population", "value": 3000, "grain": "quarter",
                "periods": ["2025-Q1"], "regions": [PROVINCE, HANGZHOU]}]  # fmt: skip
    written = client.post("/api/v1/brain/targets", json=entries, headers=admin)
    assert written.json() == {"written": 2, "created": 2, "updated": 0}
    evaluated = client.get(
        "/api/v1/brain/indicators/population/evaluation",
        params={"grain": "quarter", "from": "2025-Q1", "to": "2025-Q1"},
        headers=admin,
    ).json()
    by_region = {row["region_code"]: row for row in evaluated["data"]}
    assert by_region[PROVINCE]["light"] == "green"  # 3600 ≥ 3000
    assert by_region[HANGZHOU]["light"] == "green"  # 3100 ≥ 3000
    assert by_region[SHANGCHENG]["light"] is None
    upload = client.post(
        "/api/v1/brain/targets/import",
        files={"file": ("t.yaml", b"targets: [{indicator: nope, value: 1, periods: ['2025'], "
                                  b"regions: ['330000']}]")},
        headers=admin,
    )  # fmt: skip
    assert "unknown indicator 'nope'" in assert_problem(upload, 404, "not-found")["detail"]
    listed = client.get("/api/v1/brain/indicators/population/targets", headers=admin).json()
    assert listed["count"] == 2


RULES_YAML = """
rules:
  - code: on_time_low
    name: 按期办结率低于95%
    kind: threshold
    indicators: [on_time_rate]
    value: 95
    severity: high
"""


def test_cli_rules_warnings_and_forecasts(brain_db: Database, tmp_path: Path) -> None:
    cli("brain", "compute")
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_YAML, "utf-8")
    assert cli_json("brain", "rules", "apply", str(path))["created"] == ["on_time_low"]
    assert [r["code"] for r in cli_json("brain", "rules", "list")["data"]] == ["on_time_low"]
    summary = cli_json("brain", "warn")
    assert summary["firing"] >= 1
    # 拱墅: 100, 80 (fires), 100 (recovering), 0 (fires again)
    firing = cli_json("brain", "warnings", "--state", "firing", "--region", GONGSHU)
    assert [w["indicator"] for w in firing["data"]] == ["on_time_rate"]
    story = cli_json("brain", "warning", str(firing["data"][0]["id"]))
    assert [e["to_state"] for e in story["events"]] == [
        "pending", "firing", "recovering", "firing",
    ]  # fmt: skip
    assert "预警中" in cli("brain", "warning", str(firing["data"][0]["id"])).stdout
    made = cli_json("brain", "forecast", "--indicator", "cases")
    assert made["too_short"] == made["series"] > 0  # four months is too short to forecast
    assert_one_line_error(run("brain", "warning", "999999"), "no warning 999999")


def test_api_rules_warnings_and_forecasts(client: TestClient, brain_world: World) -> None:
    admin = auth(brain_world, "admin")
    client.post("/api/v1/brain/runs", headers=admin)
    applied = client.post(
        "/api/v1/brain/rules/apply",
        content=RULES_YAML,
        headers={**admin, "content-type": "application/yaml"},
    )
    assert applied.json()["created"] == ["on_time_low"]
    evaluated = client.post("/api/v1/brain/warnings/evaluate", headers=admin).json()
    assert evaluated["firing"] >= 1
    listed = client.get("/api/v1/brain/warnings", params={"state": "firing"}, headers=admin).json()
    assert listed["by_state"]["firing"] == listed["count"] >= 1
    one = client.get(f"/api/v1/brain/warnings/{listed['data'][0]['id']}", headers=admin).json()
    assert one["events"] and one["events"][-1]["to_state"] == one["state"]
    viewer = auth(brain_world, "viewer")
    assert_problem(client.post("/api/v1/brain/warnings/evaluate", headers=viewer), 403, "forbidden")
    rule = {"code": "x_rule", "name": "未知指标", "kind": "stale", "indicators": ["ghost"]}
    assert_problem(client.put("/api/v1/brain/rules/x_rule", json=rule, headers=admin), 404,
                   "not-found")  # fmt: skip
    assert_problem(client.get("/api/v1/brain/warnings/999999", headers=admin), 404, "not-found")
    forecasts = client.post("/api/v1/brain/forecasts", json={"indicators": ["cases"]},
                            headers=admin).json()  # fmt: skip
    assert forecasts["too_short"] == forecasts["series"]
    latest = client.get("/api/v1/brain/indicators/cases/forecasts",
                        params={"region": SHANGCHENG}, headers=admin).json()  # fmt: skip
    assert latest["points"] == [] and "too short" in latest["reason"]
