"""The whole closed loop once in a real browser: the indicator drops and its warning fires,
the problem it raised is accepted, evidenced and put up for closure by the responsible
department; verification is refused while the warning fires (整改不完成，预警不变色); the
indicator recovers, the problem is verified and closed (销号), and its light turns green
on its page and in the list.

The province is tests/loop/conftest.py's ``watched`` one (拱墅区's on-time rate falls to 0%
in April). The cockpit runs on a live uvicorn on loopback over that store, on a thread of
this process, so that the test can change the brain's data between two browser sessions;
Chromium runs on a thread of its own, as in test_browser_gateway.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from shuzhi.brain import service as brain
from shuzhi.core.db import Database
from shuzhi.core.permissions import SYSTEM
from shuzhi.lake.rules import Mode
from shuzhi.server import create_app
from tests.brain.conftest import brain_template, brain_world  # noqa: F401
from tests.brain.data import GONGSHU, MONTHLY, write
from tests.conftest import PASSWORD, World, need
from tests.lake.data import ingest
from tests.loop.conftest import loop_db, loop_world, watched  # noqa: F401
from tests.web.test_browser import (
    CHROMIUM,
    START_TIMEOUT_S,
    Page,
    _free_port,
    expect,
    log_in,
    log_out,
    sync_playwright,
)
from tests.web.test_browser_gateway import in_browser

pytestmark = pytest.mark.browser

EVIDENCE = "拱墅区已逐件复核4月超期案件，整改报告见附件。".encode()


@contextmanager
def live_cockpit(database: Database) -> Iterator[str]:
    """The cockpit over ``database`` on a free loopback port, until the block ends."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(database=database), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, name="cockpit", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            pytest.fail("the cockpit's uvicorn stopped while starting")
        if time.monotonic() > deadline:
            pytest.fail(f"the cockpit's uvicorn did not start in {START_TIMEOUT_S}s")
        time.sleep(0.05)  # a poll interval, bounded by the deadline above
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def recover(db: Database, folder: Path) -> None:
    """May's figures: 拱墅 settles every case on time again; the brain recomputes and the
    warning, evaluated a month later, resolves."""
    rows = [[GONGSHU, "2025-05-01", "cases", 5], [GONGSHU, "2025-05-01", "on_time", 5]]
    path = write(folder / "may.csv", ["region_code", "month", "item", "value"], rows)
    ingest(db, path, code=MONTHLY, mode=Mode.incremental)
    brain.compute(db, actor=SYSTEM)
    brain.evaluate_warnings(db, actor=SYSTEM, today=date(2025, 6, 10))


def watch_errors(page: Page) -> list[Any]:
    errors: list[Any] = []
    page.on("pageerror", lambda error: errors.append(error))
    return errors


def test_the_whole_loop_once_in_the_browser(
    loop_world: World,  # noqa: F811
    watched: Database,  # noqa: F811
    tmp_path: Path,
) -> None:
    need(sync_playwright is not None, "Playwright not installed (pip install playwright)")
    need(CHROMIUM.exists(), "Chromium not installed (Debian package chromium)")
    # April: 拱墅's on-time rate is 0%; its warning fires and raises a problem for 杭州's
    # health commission, the owner's counterpart there
    brain.evaluate_warnings(watched, actor=SYSTEM, today=date(2025, 5, 10))
    problem: dict[str, str] = {}

    def rectify_and_try_to_verify(page: Page) -> None:
        errors = watch_errors(page)
        log_in(page, "hz_wjw_officer", PASSWORD)
        page.locator("nav.mainnav a[href='/problems']").click()
        page.get_by_test_id("filter-warning").select_option("1")
        page.get_by_test_id("filter-submit").click()
        row = page.locator("[data-testid=problems] tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_have_attribute("data-region", GONGSHU)
        expect(row).to_have_attribute("data-light", "yellow")
        expect(row).to_have_attribute("data-state", "assigned")
        problem_id = row.get_attribute("data-id")
        assert problem_id
        problem["id"] = problem_id
        row.get_by_test_id(f"open-{problem_id}").click()

        expect(page.get_by_test_id("warning-state")).to_have_text("预警中")
        expect(page.get_by_test_id("warning-blocks")).to_contain_text("整改不完成，预警不变色")
        expect(page.get_by_test_id("department")).to_have_text("杭州市卫生健康委员会")
        page.get_by_test_id("transition-accept").click()
        expect(page.get_by_test_id("flash")).to_have_text("签收整改：已完成。")
        expect(page.get_by_test_id("state")).to_have_text("整改中")
        expect(page.get_by_test_id("blocked-request_closure")).to_contain_text("须有佐证材料")

        page.get_by_test_id("evidence-file").set_input_files(
            files=[{"name": "整改报告.txt", "mimeType": "text/plain", "buffer": EVIDENCE}]
        )
        page.get_by_test_id("evidence-note").fill("4月超期案件复核")
        page.get_by_test_id("evidence-submit").click()
        expect(page.get_by_test_id("flash")).to_have_text("佐证材料 整改报告.txt 已上传。")
        evidence = page.locator("[data-testid=evidence] tbody tr")
        expect(evidence).to_have_count(1)
        expect(evidence).to_contain_text("4月超期案件复核")
        with page.expect_download() as downloading:
            evidence.locator("a").click()
        saved = Path(downloading.value.path())
        assert saved.read_bytes() == EVIDENCE

        page.get_by_test_id("transition-request_closure").click()
        expect(page.get_by_test_id("flash")).to_have_text("申请销号：已完成。")
        expect(page.get_by_test_id("state")).to_have_text("申请销号")
        step = page.locator("[data-testid=timeline] tr[data-transition=request_closure]")
        expect(step.locator("a")).to_have_text("整改报告.txt")  # the evidence went with it
        log_out(page)

        log_in(page, "supervisor", PASSWORD)
        page.goto(f"/problems/{problem_id}")
        expect(page.get_by_test_id("blocked-verify")).to_contain_text("仍处于“预警中”")
        page.get_by_test_id("transition-verify").click()
        expect(page.get_by_test_id("flash")).to_contain_text(
            "仍处于“预警中”：指标恢复后问题方可销号"
        )
        expect(page.get_by_test_id("state")).to_have_text("申请销号")
        assert errors == []

    def verify_and_close(page: Page) -> None:
        errors = watch_errors(page)
        problem_id = problem["id"]
        log_in(page, "supervisor", PASSWORD)
        page.goto(f"/problems/{problem_id}")
        expect(page.get_by_test_id("warning-state")).to_have_text("正常")
        expect(page.get_by_test_id("warning-blocks")).to_have_count(0)
        expect(page.get_by_test_id("blocked-verify")).to_have_count(0)
        page.get_by_test_id("transition-verify").click()
        expect(page.get_by_test_id("flash")).to_have_text("核验通过：已完成。")
        expect(page.get_by_test_id("state")).to_have_text("已核验")
        log_out(page)

        log_in(page, "reform", PASSWORD)
        page.goto(f"/problems/{problem_id}")
        page.get_by_test_id("transition-close").click()
        expect(page.get_by_test_id("flash")).to_have_text("销号：已完成。")
        expect(page.get_by_test_id("state")).to_have_text("已销号")
        expect(page.locator("[data-testid=light] .light")).to_have_attribute("data-light", "green")
        expect(page.get_by_test_id("light")).to_have_text("绿")
        steps = page.locator("[data-testid=timeline] tbody tr")
        expect(steps).to_have_count(5)  # assigned, accepted, requested, verified, closed
        expect(page.get_by_test_id("actions")).to_have_count(0)  # nothing more to do

        page.locator("nav.mainnav a[href='/problems']").click()
        row = page.locator(f"[data-testid=problems] tr[data-id='{problem_id}']")
        expect(row).to_have_attribute("data-light", "green")
        expect(row.locator(".light")).to_have_text("绿")
        expect(page.get_by_test_id("strip-closure")).to_have_text("100.0%")
        page.get_by_test_id("tab-board").click()
        closed = page.get_by_test_id("column-closed")
        expect(closed).to_have_attribute("data-count", "1")
        expect(closed.locator(f"article[data-id='{problem_id}']")).to_have_attribute(
            "data-light", "green"
        )
        assert errors == []

    with live_cockpit(watched) as url:
        in_browser(url, rectify_and_try_to_verify)
        # May: the indicator recovers and the warning resolves
        recover(watched, tmp_path)
        in_browser(url, verify_and_close)
