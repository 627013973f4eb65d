"""Fixtures of the closed loop's tests: the brain's small province with its warning rules,
and people for each part of the loop."""

from __future__ import annotations

import pytest
import yaml

from shuzhi.brain import service as brain
from shuzhi.core.db import Database
from shuzhi.core.permissions import SYSTEM
from shuzhi.orgs import service as orgs
from shuzhi.orgs.schemas import DepartmentCreate
from tests.brain.conftest import brain_db, brain_template, brain_world  # noqa: F401
from tests.conftest import World, make_user

RULES = {
    "rules": [
        {"code": "on_time_low", "name": "按期办结率低于95%", "kind": "threshold",
         "indicators": ["on_time_rate"], "value": 95, "pending_for": 1, "recover_for": 1,
         "severity": "high"},
    ]
}  # fmt: skip

# username, department, role, grant department, grant region
LOOP_USERS = (
    ("reform", "zj_dsj", "reform_office", None, None),
    ("hz_wjw_officer", "hz_wjw", "department_admin", "hz_wjw", None),
    ("hz_wjw_second", "hz_wjw", "department_admin", "hz_wjw", None),
    ("supervisor", "zj_dsj", "auditor", None, None),
)


def add_loop_people(world: World) -> World:
    with world.database.transaction() as session:
        for code, name, region, parent in (
            ("hz_wjw", "杭州市卫生健康委员会", "330100", "zj_wjw"),
            ("sc_wjw", "上城区卫生健康局", "330102", "hz_wjw"),
        ):
            orgs.create_department(
                session,
                actor=SYSTEM,
                data=DepartmentCreate(code=code, name=name, region=region, parent=parent),
            )
        for username, department, role, grant_department, region in LOOP_USERS:
            make_user(session, username, department=department, role=role,
                      grant_department=grant_department, grant_region=region)  # fmt: skip
            _token, plaintext = orgs.create_token(
                session, actor=SYSTEM, username=username, name="tests"
            )
            world.tokens[username] = plaintext
    for username, *_ in LOOP_USERS:
        world.actors[username] = world.actor(username)
    return world


@pytest.fixture
def loop_world(brain_world: World) -> World:  # noqa: F811
    return add_loop_people(brain_world)


@pytest.fixture
def loop_db(loop_world: World) -> Database:
    return loop_world.database


@pytest.fixture
def watched(loop_db: Database) -> Database:
    brain.compute(loop_db, actor=SYSTEM)
    with loop_db.transaction() as session:
        brain.apply_rules(session, actor=SYSTEM, text=yaml.safe_dump(RULES), source="r.yaml")
    return loop_db
