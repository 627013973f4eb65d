"""The monthly brief: what it lists, in Markdown, HTML and through the interfaces."""

from __future__ import annotations

from datetime import date

import yaml
from fastapi.testclient import TestClient

from shuzhi.brain import reports, service
from shuzhi.brain.schemas import TargetSet
from shuzhi.core.db import Database
from shuzhi.core.permissions import SYSTEM
from shuzhi.server import create_app
from tests.api.support import assert_problem, auth
from tests.brain.data import HANGZHOU
from tests.brain.test_warnings import RULES
from tests.cli.test_cli import assert_one_line_error, cli, run
from tests.conftest import World


def prepare(db: Database) -> None:
    service.compute(db, actor=SYSTEM)
    entry = TargetSet(indicator="places_per_1000", value=4.7, grain="year", periods=["2025"],
                      subtree=HANGZHOU)  # fmt: skip
    with db.transaction() as session:
        service.set_targets(session, actor=SYSTEM, entries=[entry])
        service.apply_rules(session, actor=SYSTEM, text=yaml.safe_dump(RULES), source="r.yaml")
    service.evaluate_warnings(db, actor=SYSTEM, today=date(2025, 5, 10))


def test_brief_of_a_city_lists_lights_warnings_and_rankings(brain_db: Database) -> None:
    prepare(brain_db)
    with brain_db.session() as session:
        march = reports.build(session, month=date(2025, 3, 1), region=HANGZHOU)
        april = reports.build(session, month=date(2025, 4, 1), region=HANGZHOU)
    assert march.title == "杭州市全领域月度简报（2025年3月）"
    places = next(row for row in march.indicators if row.code == "places_per_1000")
    # 杭州 in March: (5 + 10) / (1100 + 2000) × 1000 = 4.84 ≥ 4.7
    assert round(places.value, 2) == 4.84 and places.light == "green"
    assert march.lights["green"] >= 1
    ranking = next(r for r in march.rankings if r.indicator == "places_per_1000")
    # 拱墅 10/2000 = 5.0 ahead of 上城 5/1100 = 4.55
    assert ranking.best == [("拱墅区", 5.0)] and ranking.worst[0][0] == "上城区"
    # no on-time warning fired in March; in April 拱墅's 0% fired nothing yet (pending)
    assert [w.region_name for w in march.new_warnings] == []
    markdown = reports.to_markdown(april)
    assert markdown.startswith("# 杭州市全领域月度简报（2025年4月）")
    assert "上城区" in markdown or "无。" in markdown
    html = reports.to_html(april)
    assert html.startswith("<!doctype html>") and "<script" not in html


def test_brief_names_warnings_fired_and_resolved_in_its_month(brain_db: Database) -> None:
    prepare(brain_db)
    with brain_db.session() as session:
        february = reports.build(session, month=date(2025, 2, 1), region=HANGZHOU)
    # 上城's on-time rate fired in February (90, 90 under 95, pending_for 2)
    assert [(w.region_name, w.rule_name) for w in february.new_warnings] == [
        ("上城区", "按期办结率低于95%")
    ]
    assert february.new_warnings[0].severity == "high"


def test_report_through_cli_and_api(brain_world: World, tmp_path) -> None:
    prepare(brain_world.database)
    out = tmp_path / "brief.html"
    assert "wrote" in cli("brain", "report", "--month", "2025-02", "--region", HANGZHOU,
                          "--format", "html", "--output", str(out)).stdout  # fmt: skip
    assert "按期办结率低于95%" in out.read_text("utf-8")
    assert_one_line_error(run("brain", "report", "--month", "2025-13"), "is not a month")
    with TestClient(create_app(database=brain_world.database)) as client:
        admin = auth(brain_world, "admin")
        body = client.get("/api/v1/brain/report", params={"month": "2025-02", "region": HANGZHOU},
                          headers=admin).json()  # fmt: skip
        assert body["new_warnings"][0]["region_name"] == "上城区"
        markdown = client.get("/api/v1/brain/report", headers=admin,
                              params={"month": "2025-02", "format": "md"})  # fmt: skip
        assert markdown.headers["content-type"].startswith("text/markdown")
        assert markdown.text.startswith("# 浙江省全领域月度简报（2025年2月）")
        missing = client.get("/api/v1/brain/report", headers=admin,
                             params={"month": "2025-02", "region": "999999"})  # fmt: skip
        assert_problem(missing, 404, "not-found")
