"""The demo province's closed loop: a ledger of about thirty reforms across the three
batches with a history, about two hundred problems from every channel in every state, and
the brain's firing warnings turned into problems, some being rectified but none verified
while its warning fires. Built once for the module, at a small scale."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from shuzhi.brain.models import EarlyWarning
from shuzhi.core import workflow
from shuzhi.core.db import Database, get_database, reset_database
from shuzhi.core.enums import Light, System
from shuzhi.core.errors import InvalidTransition
from shuzhi.core.models import WorkflowTransition
from shuzhi.core.permissions import SYSTEM
from shuzhi.core.settings import load_settings, reset_settings
from shuzhi.demo.build import DEMO_PASSWORD, build
from shuzhi.demo.loop import LOOP_LOGINS, reform_specs
from shuzhi.loop import ledger, queries
from shuzhi.loop.cockpit import overview
from shuzhi.loop.models import Evidence, Milestone, Problem, Reform, ReformVersion
from shuzhi.loop.rules import PROBLEM, Batch, Channel
from shuzhi.loop.schemas import ProblemAction
from shuzhi.loop.service import act
from shuzhi.orgs import queries as orgs_queries
from shuzhi.orgs import service as orgs_service
from tests.lake.data import ARGON2_QUICK

SEED = 7
THEMES = ("大综合一体化行政执法", "浙有善育", "公权力大数据监督", "国土空间治理")


@pytest.fixture(scope="module")
def demo(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Database, dict[str, Any], Path]]:
    """The demo built once (scale 0.05) in its own store and data directory."""
    folder = tmp_path_factory.mktemp("demo-loop")
    path = folder / "shuzhi.db"
    shutil.copy(sqlite_template, path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHUZHI_DATA_DIR", str(folder / "data"))
        patch.setenv("SHUZHI_DATABASE__URL", f"sqlite:///{path}")
        for name, value in ARGON2_QUICK.items():
            patch.setenv(name, value)
        reset_settings()
        reset_database()
        try:
            summary = build(get_database(), seed=SEED, data_dir=folder / "data", scale=0.05)
        finally:
            reset_database()
    reset_settings()
    database = Database(f"sqlite:///{path}", settings=load_settings())
    yield database, summary, folder
    database.dispose()


def test_the_ledger_holds_about_thirty_reforms_in_every_batch(demo: Any) -> None:
    db, summary, _ = demo
    with db.session() as session:
        reforms = list(session.scalars(select(Reform)))
        lights = Counter(row.light for row in ledger.ledger(session).data)
        milestones = Counter(session.scalars(select(Milestone.state)))
    assert 28 <= len(reforms) <= 36
    assert {reform.batch for reform in reforms} == {batch.value for batch in Batch}
    names = " ".join(reform.name for reform in reforms)
    for theme in THEMES:
        assert theme in names, theme
    assert {reform.system for reform in reforms} >= {
        "party_building", "digital_government", "digital_society", "digital_rule_of_law",
        "grassroots",
    }  # fmt: skip
    # some verified, some waiting for verification, some missed: the lights vary
    assert milestones["verified"] > 20 and milestones["submitted"] > 0
    assert lights["red"] > 0 and lights["green"] > 0
    assert sum(1 for reform in reforms if reform.key_results) >= 10
    # a reform that moved 谋划推进 → 启动实施 → 迭代升级
    moved = {r.code: [row.batch for row in r.batches] for r in reforms}["ZJ-2022-002"]
    assert list(dict.fromkeys(moved)) == ["planning", "implementing", "upgrading"]
    assert summary["loop"]["reforms"]["created"] == len(reforms)


def test_the_ledger_as_of_last_year_differs_from_today(demo: Any) -> None:
    db, _, _ = demo
    specs = {spec.code: spec for spec in reform_specs()}
    with db.session() as session:
        last_year = max(session.scalars(select(ReformVersion.at))).year - 1
        now = {row.code: row for row in ledger.ledger(session).data}
        then = {row.code: row for row in ledger.ledger(session, as_of=date(last_year, 9, 30)).data}
        check_ins = session.scalar(
            select(func.count(ReformVersion.id)).where(ReformVersion.kind == "check_in")
        )
    # the reforms the ledger held then, in the batch each was in that year
    assert then and set(then) <= set(now)
    assert set(then) == {code for code, spec in specs.items() if spec.starts_on.year <= last_year}
    for code, row in then.items():
        assert row.batch == specs[code].batches.get(last_year, specs[code].batch), code
    assert any(then[code].batch != now[code].batch for code in then)
    assert any(then[code].milestones_done < now[code].milestones_done for code in then)
    assert (check_ins or 0) > 10


def test_problems_come_from_every_channel_in_every_state(demo: Any) -> None:
    db, _, _ = demo
    with db.session() as session:
        rows = list(session.scalars(select(Problem)))
        stats = queries.stats(session, by="channel")
    assert len(rows) >= 180
    assert {row.channel for row in rows} == {channel.value for channel in Channel}
    assert {row.state for row in rows} == set(PROBLEM.states)
    assert stats.total.overdue > 10  # open past their deadline
    closed = [row for row in rows if row.state == "closed"]
    on_time = Counter(row.closed_on_time for row in closed)
    assert on_time[True] > 0 and on_time[False] > 0  # some closed late
    assert len({row.region_code for row in rows}) > 30
    assert len({row.department_id for row in rows if row.department_id}) > 8


def test_evidence_and_a_different_verifier_for_every_closure(demo: Any) -> None:
    db, _, _ = demo
    with db.session() as session:
        done = list(
            session.scalars(
                select(Problem).where(
                    Problem.state.in_(("closure_requested", "verified", "closed"))
                )
            )
        )
        files = Counter(
            session.scalars(select(Evidence.object_id).where(Evidence.object_type == "problem"))
        )
        for problem in done:
            assert files[problem.id] >= 1, problem.code
            steps = workflow.history(session, object_type="loop_problem", object_id=str(problem.id))
            asked = [step.actor_name for step in steps if step.transition == "request_closure"]
            verified = [step.actor_name for step in steps if step.transition == "verify"]
            assert asked, problem.code
            assert not set(verified) & set(asked), problem.code
        sent_back = session.scalar(
            select(func.count(WorkflowTransition.id)).where(
                WorkflowTransition.object_type == "loop_problem",
                WorkflowTransition.transition == "send_back",
            )
        )
    assert sent_back  # some were sent back once before they were verified
    assert len([p for p in done if p.state == "closed"]) > 20


def test_every_firing_warning_has_its_problem(demo: Any) -> None:
    db, summary, _ = demo
    with db.session() as session:
        firing = list(session.scalars(select(EarlyWarning).where(EarlyWarning.state == "firing")))
        raised = {
            problem.warning_id: problem
            for problem in session.scalars(select(Problem).where(Problem.warning_id.is_not(None)))
        }
        assert firing, "the demo's brain fires warnings"
        for warning in firing:
            problem = raised[warning.id]
            assert problem.channel == "warning"
            assert problem.indicator_id == warning.indicator_id
            assert problem.region_code == warning.region_code
            assert [p.id for p in queries.for_warning(session, warning.id)] == [problem.id]
        states = Counter(problem.state for problem in raised.values())
    assert summary["loop"]["warning_problems"] == len(raised)
    # the departments have started on some: accepted, evidence given, closure asked
    assert states["rectifying"] > 0 and states["closure_requested"] > 0


def test_a_problem_is_not_verified_while_its_warning_fires(demo: Any) -> None:
    db, _, _ = demo
    with db.session() as session:
        waiting = session.scalar(
            select(Problem)
            .join(EarlyWarning, EarlyWarning.id == Problem.warning_id)
            .where(Problem.state == "closure_requested", EarlyWarning.state == "firing")
            .limit(1)
        )
        assert waiting is not None
        reform = orgs_queries.actor_for(session, orgs_queries.user(session, "reform"))
    with pytest.raises(InvalidTransition, match="still firing"), db.transaction() as session:
        act(session, actor=reform, problem_id=waiting.id,
            action=ProblemAction(transition="verify"))  # fmt: skip
    with db.session() as session:
        assert session.get(Problem, waiting.id).state == "closure_requested"  # type: ignore[union-attr]


def test_every_system_tile_of_the_cockpit_has_lit_key_indicators(
    demo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The six systems and grassroots governance each show key indicators (those with a
    target) for the province, every one of them with a light, none without data."""
    db, _, folder = demo
    monkeypatch.setenv("SHUZHI_DATA_DIR", str(folder / "data"))
    reset_settings()
    try:
        with db.session() as session:
            tiles = overview(session, actor=SYSTEM).tiles
    finally:
        reset_settings()
    assert [tile.system for tile in tiles] == [system.value for system in System]
    for tile in tiles:
        assert tile.key_indicators > 0, tile.system
        assert tile.lights[Light.no_data.value] == 0, tile.system
        assert tile.light in (Light.green.value, Light.yellow.value, Light.red.value)


def test_the_liaisons_log_in_and_are_listed(demo: Any) -> None:
    db, summary, folder = demo
    listed = [login["username"] for login in summary["logins"]]
    for username, *_ in LOOP_LOGINS:
        assert username in listed
    with db.transaction() as session:
        account = orgs_service.authenticate(
            session, username=LOOP_LOGINS[0][0], password=DEMO_PASSWORD
        )
        grants = [g.role for g in orgs_queries.user_public(session, account).grants]
    assert grants == ["department_admin"]
    assert (folder / "data" / "demo.json").is_file()


def test_rebuilding_adds_nothing_to_the_loop(demo: Any) -> None:
    db, _, folder = demo

    def counts() -> tuple[int, ...]:
        with db.session() as session:
            return tuple(
                session.scalar(select(func.count()).select_from(model)) or 0
                for model in (Reform, ReformVersion, Milestone, Problem, Evidence)
            )

    before = counts()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHUZHI_DATA_DIR", str(folder / "data"))
        patch.setenv("SHUZHI_DATABASE__URL", str(db.engine.url))
        for name, value in ARGON2_QUICK.items():
            patch.setenv(name, value)
        reset_settings()
        reset_database()
        try:
            again = build(get_database(), seed=SEED, data_dir=folder / "data", scale=0.05)
        finally:
            reset_database()
    reset_settings()
    assert again["loop"]["problems"] == {"problems": 0}
    assert again["loop"]["reforms"]["created"] == 0
    after = counts()
    assert after == before
