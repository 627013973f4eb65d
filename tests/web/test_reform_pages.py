"""The ledger of major reforms in the cockpit, as a browser without JavaScript reads it: the
ledger by batch (now and at a past date) and a reform's page, with the forms of those who
may check in, give evidence, submit and verify. The reforms and their worked-out lights
are those of tests/loop/test_reforms.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from shuzhi.brain import service as brain
from shuzhi.core import clock
from shuzhi.core.permissions import SYSTEM
from shuzhi.server import create_app
from tests.brain.conftest import brain_template, brain_world  # noqa: F401
from tests.conftest import World
from tests.loop.conftest import loop_world  # noqa: F401
from tests.loop.test_reforms import MILESTONES, NOON, PLACES, apply, spec
from tests.web.support import csrf_of, flashed, login
from tests.web.test_brain_pages import get, rows, section, text


@pytest.fixture
def site(loop_world: World) -> Iterator[World]:  # noqa: F811
    """Three reforms made at NOON (RF-01 with the milestones and the places key result,
    RF-02 planning, RF-03 in 宁波), the brain computed; RF-01 renamed a day later."""
    db = loop_world.database
    brain.compute(db, actor=SYSTEM)
    clock.set_clock(lambda: NOON)
    reform = loop_world.actors["reform"]
    apply(
        db,
        reform,
        spec(name="大综合一体化行政执法改革", milestones=MILESTONES, key_results=[PLACES]),
        spec("RF-02", name="浙有善育", batch="planning"),
        spec("RF-03", name="宁波国土空间治理", region="330200", system="digital_government"),
    )
    clock.set_clock(lambda: datetime(2025, 6, 11, 4, tzinfo=UTC))
    apply(
        db, reform, spec(name="大综合一体化行政执法", milestones=MILESTONES, key_results=[PLACES])
    )
    yield loop_world
    clock.set_clock(None)


@pytest.fixture
def client(site: World) -> Iterator[TestClient]:
    with TestClient(create_app(database=site.database)) as test_client:
        yield test_client


def test_every_user_finds_the_ledger_in_the_menu(client: TestClient) -> None:
    login(client, "viewer")
    home = get(client, "/")
    assert '<a href="/reforms" class="">改革一本账</a>' in home
    assert '<a href="/reforms" class="active">改革一本账</a>' in get(client, "/reforms/RF-01")


def test_the_ledger_by_batch_with_lights_and_progress(client: TestClient) -> None:
    login(client, "viewer")
    page = get(client, "/reforms")
    assert "启动实施" in section(page, "batch-implementing")
    implementing = {row["code"]: row for row in rows(page, "reforms-implementing")}
    assert set(implementing) == {"RF-01", "RF-03"}
    first = implementing["RF-01"]
    # 方案印发 is overdue on 11 June: red; nothing verified, the key result part way
    assert (first["light"], first["version"]) == ("red", "2")
    assert 0 < float(first["progress"]) < 1
    assert "大综合一体化行政执法" in page and "红" in text(section(page, "reforms-implementing"))
    assert [row["code"] for row in rows(page, "reforms-planning")] == ["RF-02"]
    assert "batch-upgrading" not in page
    narrowed = get(client, "/reforms?region=330100&system=digital_society")
    assert "RF-03" not in narrowed and "RF-01" in narrowed
    assert "浙有善育" in get(client, "/reforms?q=善育") and "RF-01" not in get(
        client, "/reforms?q=善育"
    )
    assert "RF-02" in get(client, "/reforms?batch=nonsense")  # a hand-edited choice is ignored
    get(client, "/reforms?region=999999", status=404)
    get(client, "/reforms?as_of=yesterday", status=422)


def test_the_ledger_at_a_past_date(client: TestClient) -> None:
    login(client, "viewer")
    then = get(client, "/reforms?as_of=2025-06-10")
    assert 'data-testid="as-of-note"' in then
    assert "大综合一体化行政执法改革" in then  # the name it had on 10 June
    assert [row["version"] for row in rows(then, "reforms-implementing")] == ["1", "1"]
    before = get(client, "/reforms?as_of=2025-06-09")
    assert 'data-testid="no-reforms"' in before


def test_a_reform_page_shows_milestones_key_results_and_versions(client: TestClient) -> None:
    login(client, "viewer")
    page = get(client, "/reforms/RF-01")
    assert "大综合一体化行政执法" in page
    lights = [(row["state"], row["light"]) for row in rows(page, "milestones")]
    assert lights == [("planned", "red"), ("planned", "yellow"), ("planned", "green")]
    (kr,) = rows(page, "key-results")
    assert (kr["indicator"], kr["region"], kr["light"]) == ("places_per_1000", "330100", "green")
    assert round(float(kr["current"]), 2) == 5.16
    assert [row["kind"] for row in rows(page, "versions")] == ["changed", "created"]
    # a viewer reads; it has no form to write with
    assert 'data-testid="check-in-form"' not in page
    assert 'data-testid="evidence-form' not in page and 'data-testid="step-' not in page
    get(client, "/reforms/NOPE", status=404)


def test_the_lead_department_checks_in_and_submits_and_another_verifies(
    client: TestClient,
) -> None:
    login(client, "hz_wjw_officer")
    page = get(client, "/reforms/RF-01")
    assert 'data-testid="check-in-form"' in page
    first = rows(page, "milestones")[0]["id"]
    # no evidence yet: submitting is held back, saying why
    assert "申请销号须有佐证材料" in section(page, f"blocked-{first}-submit")
    posted = client.post(
        "/reforms/RF-01/check-ins",
        data={"csrf": csrf_of(page), "note": "已完成执法事项梳理"},
        follow_redirects=False,
    )
    assert posted.status_code == 303 and posted.headers["location"] == "/reforms/RF-01#versions"
    after = get(client, "/reforms/RF-01")
    assert flashed(after) == "动态更新已记录为第 3 版。"
    assert rows(after, "versions")[0]["kind"] == "check_in" and "已完成执法事项梳理" in after
    uploaded = client.post(
        f"/reforms/RF-01/milestones/{first}/evidence",
        data={"csrf": csrf_of(after)},
        files={"file": ("纪要.pdf", b"%PDF minutes", "application/pdf")},
        follow_redirects=False,
    )
    assert uploaded.status_code == 303
    with_file = get(client, "/reforms/RF-01")
    assert flashed(with_file) == "佐证材料 纪要.pdf 已上传。"
    link = re.search(rf'href="(/reforms/RF-01/milestones/{first}/evidence/\d+)"', with_file)
    assert link and client.get(link.group(1)).content == b"%PDF minutes"
    assert f'data-testid="step-{first}-submit"' in with_file
    client.post(
        f"/reforms/RF-01/milestones/{first}/transitions",
        data={"csrf": csrf_of(with_file), "transition": "submit"},
    )
    assert rows(get(client, "/reforms/RF-01"), "milestones")[0]["state"] == "submitted"

    client.cookies.clear()
    login(client, "supervisor")
    review = get(client, "/reforms/RF-01")
    assert f'data-testid="step-{first}-verify"' in review
    done = client.post(
        f"/reforms/RF-01/milestones/{first}/transitions",
        data={"csrf": csrf_of(review), "transition": "verify"},
    ).text
    assert flashed(done) == "核验通过：已完成。"
    assert (rows(done, "milestones")[0]["state"], rows(done, "milestones")[0]["light"]) == (
        "verified", "green",
    )  # fmt: skip


def test_a_refused_step_comes_back_with_the_rule(client: TestClient) -> None:
    login(client, "reform")
    page = get(client, "/reforms/RF-01")
    first = rows(page, "milestones")[0]["id"]
    back = client.post(
        f"/reforms/RF-01/milestones/{first}/transitions",
        data={"csrf": csrf_of(page), "transition": "submit"},
    )
    assert back.status_code == 200
    assert "申请销号须有佐证材料" in (flashed(back.text) or "")
    empty = client.post("/reforms/RF-01/check-ins", data={"csrf": csrf_of(page), "note": " "})
    assert "进展填报须说明推进了什么" in (flashed(empty.text) or "")


def test_others_are_refused_the_forms(client: TestClient) -> None:
    login(client, "gat_admin")
    page = get(client, "/reforms/RF-01")
    assert 'data-testid="check-in-form"' not in page
    first = rows(page, "milestones")[0]["id"]
    refused = client.post("/reforms/RF-01/check-ins", data={"csrf": csrf_of(page), "note": "越权"})
    assert refused.status_code == 403
    upload = client.post(
        f"/reforms/RF-01/milestones/{first}/evidence",
        data={"csrf": csrf_of(page)},
        files={"file": ("x.txt", b"x", "text/plain")},
    )
    assert upload.status_code == 403
    step = client.post(
        f"/reforms/RF-01/milestones/{first}/transitions",
        data={"csrf": csrf_of(page), "transition": "submit"},
    )
    assert step.status_code == 403
    forged = client.post("/reforms/RF-01/check-ins", data={"csrf": "0" * 64, "note": "x"})
    assert forged.status_code in (400, 403)
    versions = rows(get(client, "/reforms/RF-01"), "versions")
    assert [row["kind"] for row in versions] == ["changed", "created"]
