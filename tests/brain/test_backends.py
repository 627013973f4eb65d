"""The brain's whole path on each metadata backend, PostgreSQL included: definitions,
targets, computation, rules, warnings with their events, goals and a report."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml

from shuzhi.brain import queries, reports, service
from shuzhi.brain.schemas import TargetSet
from shuzhi.core.permissions import SYSTEM
from tests.brain.data import GONGSHU, HANGZHOU, SHANGCHENG, define, load
from tests.brain.test_goals import GOALS
from tests.brain.test_warnings import RULES
from tests.conftest import World


def test_the_brain_on_each_backend(world: World, tmp_path: Path) -> None:
    db = world.database
    load(db, tmp_path)
    define(db)
    run = service.compute(db, actor=SYSTEM)
    assert run.state == "succeeded"
    entry = TargetSet(indicator="on_time_rate", value=92, grain="quarter", periods=["2025-Q1"],
                      subtree=HANGZHOU)  # fmt: skip
    with db.transaction() as session:
        assert service.set_targets(session, actor=SYSTEM, entries=[entry]).created == 14
        service.apply_rules(session, actor=SYSTEM, text=yaml.safe_dump(RULES), source="r.yaml")
        service.apply_goals(session, actor=SYSTEM, text=yaml.safe_dump(GOALS), source="g.yaml")
    summary = service.evaluate_warnings(db, actor=SYSTEM, today=date(2025, 5, 10))
    assert summary.transitions > 0
    with db.session() as session:
        evaluated = queries.evaluation(
            session, queries.get(session, "on_time_rate"), grain="quarter", children_of=HANGZHOU
        )
        lights = {r.region_code: r.light for r in evaluated.data if r.period == "2025-Q1"}
        assert lights == {SHANGCHENG: "yellow", GONGSHU: "green"}
        recovering = queries.warnings(session, states=["recovering"], rule="on_time_low")
        assert [w.region_code for w in recovering.data] == [SHANGCHENG]
        story = queries.warning_public(
            session, queries.get_warning(session, recovering.data[0].id),
            names=queries.regions(session), with_events=True,
        )  # fmt: skip
        assert [e.to_state for e in story.events or []] == ["pending", "firing", "recovering"]
        tree = queries.goal_tree(session, today=date(2025, 5, 1))
        assert tree.data[0].children[0].key_results[0].light == "green"
        brief = reports.build(session, month=date(2025, 2, 1), region=HANGZHOU)
        assert [w.region_name for w in brief.new_warnings] == ["上城区"]
