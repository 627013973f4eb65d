"""Warnings become problems: one per firing episode, through the warning-channel hook,
with the worker as the safety net; a failing channel never undoes an evaluation."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from shuzhi.brain import service as brain
from shuzhi.brain.models import EarlyWarning
from shuzhi.core.db import Database
from shuzhi.core.permissions import SYSTEM
from shuzhi.lake.rules import Mode
from shuzhi.loop import queries, service
from shuzhi.loop.models import Problem
from shuzhi.loop.schemas import ProblemAction
from tests.brain.data import GONGSHU, MONTHLY, write
from tests.conftest import World
from tests.lake.data import ingest


def month(db: Database, folder: Path, day: str, on_time: int, today: date) -> None:
    rows = [[GONGSHU, day, "cases", 5], [GONGSHU, day, "on_time", on_time]]
    ingest(db, write(folder / f"{day}.csv", ["region_code", "month", "item", "value"], rows),
           code=MONTHLY, mode=Mode.incremental)  # fmt: skip
    brain.compute(db, actor=SYSTEM)
    brain.evaluate_warnings(db, actor=SYSTEM, today=today)


def problems(db: Database) -> list[tuple[str, int | None, str]]:
    with db.session() as session:
        return [
            (p.state, p.warning_id, p.region_code)
            for p in session.scalars(select(Problem).order_by(Problem.id))
        ]


def close(db: Database, world: World, problem_id: int) -> None:
    officer, supervisor = world.actors["hz_wjw_officer"], world.actors["supervisor"]
    with db.transaction() as session:
        service.act(session, actor=officer, problem_id=problem_id,
                    action=ProblemAction(transition="accept"))  # fmt: skip
        evidence = service.add_problem_evidence(
            session, actor=officer, problem_id=problem_id, filename="a.txt", content=b"done"
        )
        closure = ProblemAction(transition="request_closure", attachments=[evidence.id])
        service.act(session, actor=officer, problem_id=problem_id, action=closure)
    for actor, name in ((supervisor, "verify"), (world.actors["reform"], "close")):
        with db.transaction() as session:
            service.act(session, actor=actor, problem_id=problem_id,
                        action=ProblemAction(transition=name))  # fmt: skip


def test_each_firing_episode_raises_one_problem(
    watched: Database, loop_world: World, tmp_path: Path
) -> None:
    brain.evaluate_warnings(watched, actor=SYSTEM, today=date(2025, 5, 10))
    [(state, warning_id, region)] = problems(watched)
    assert (state, region) == ("assigned", GONGSHU)
    # still firing in May: the same problem, not a second one
    month(watched, tmp_path, "2025-05-01", 1, date(2025, 6, 10))
    assert len(problems(watched)) == 1
    # June recovers; the problem is rectified, verified and closed
    month(watched, tmp_path, "2025-06-01", 5, date(2025, 7, 10))
    with watched.session() as session:
        problem_id = session.scalar(select(Problem.id))
        assert [p.id for p in queries.for_warning(session, warning_id)] == [problem_id]
    close(watched, loop_world, problem_id)
    # July falls again: a new episode, a new problem for the same warning
    month(watched, tmp_path, "2025-07-01", 0, date(2025, 8, 10))
    assert problems(watched) == [
        ("closed", warning_id, GONGSHU), ("assigned", warning_id, GONGSHU)
    ]  # fmt: skip


def test_a_failing_channel_never_undoes_the_evaluation(
    watched: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the loop is down")

    monkeypatch.setattr(service, "on_warning_changes", broken)
    summary = brain.evaluate_warnings(watched, actor=SYSTEM, today=date(2025, 5, 10))
    assert summary.firing >= 1 and problems(watched) == []
    with watched.session() as session:
        assert session.scalar(select(EarlyWarning.id).where(EarlyWarning.state == "firing"))
    # the worker's job catches up, once
    assert service.sync_warnings(watched) == 1 and service.sync_warnings(watched) == 0
    assert [state for state, *_ in problems(watched)] == ["assigned"]
