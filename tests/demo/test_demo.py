"""The demo province: complete, valid, deterministic from its seed, and built only once."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shuzhi.catalog.models import Resource
from shuzhi.core.db import Database
from shuzhi.core.enums import System
from shuzhi.core.models import ChangeLog
from shuzhi.core.permissions import allowed
from shuzhi.core.standards import is_credit_code
from shuzhi.demo.build import DEMO_PASSWORD, LOGINS, build, logins
from shuzhi.orgs import queries as orgs_queries
from shuzhi.orgs import service as orgs_service
from shuzhi.orgs.models import Department, User
from tests.support.pgcluster import PgCluster

SEED = 7


def counts(database: Database) -> dict[str, int]:
    with database.session() as session:
        return {
            "departments": session.scalar(select(func.count(Department.id))) or 0,
            "users": session.scalar(select(func.count(User.id))) or 0,
            "resources": session.scalar(select(func.count(Resource.id))) or 0,
            "creates": session.scalar(
                select(func.count(ChangeLog.id)).where(ChangeLog.action.like("%.create"))
            )
            or 0,
        }


def states(database: Database) -> dict[str, str]:
    with database.session() as session:
        return {
            code: state for code, state in session.execute(select(Resource.code, Resource.state))
        }


def credit_codes(database: Database) -> dict[str, str | None]:
    with database.session() as session:
        rows = session.execute(select(Department.code, Department.credit_code))
        return {code: credit for code, credit in rows}


@pytest.fixture
def fresh_database(
    db: Database, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], Database]]:
    """Empty, never-migrated databases on the backend of ``db``."""
    made: list[tuple[Database, Callable[[], None] | None]] = []

    def make() -> Database:
        name = f"t_{uuid.uuid4().hex[:12]}"
        cleanup = None
        if db.backend == "sqlite":
            url = f"sqlite:///{tmp_path / name}.db"
        else:
            cluster: PgCluster = request.getfixturevalue("pg_cluster")
            url = cluster.create_database(name)
            cleanup = lambda: cluster.drop_database(name)  # noqa: E731
        database = Database(url)
        made.append((database, cleanup))
        return database

    yield make
    for database, cleanup in made:
        database.dispose()
        if cleanup:
            cleanup()


def test_the_demo_province_is_complete(db: Database, tmp_path: Path) -> None:
    summary = build(db, seed=SEED, data_dir=tmp_path, scale=0)

    assert summary["departments"] == 44
    assert counts(db)["departments"] == 44
    assert summary["resources"] >= 30
    assert summary["resources"] == counts(db)["resources"]
    with db.session() as session:
        systems = set(session.scalars(select(Resource.system)))
        providers = set(session.scalars(select(Resource.provider_id)))
        departments = list(session.scalars(select(Department)))
    assert systems == {system.value for system in System}
    assert len(providers) > 10  # the catalog comes from many departments, not one

    for department in departments:
        assert department.credit_code is not None, department.code
        assert is_credit_code(department.credit_code), department.credit_code
    assert len({d.credit_code for d in departments}) == len(departments)


def test_the_lifecycle_leaves_resources_in_every_state_but_withdrawn(
    db: Database, tmp_path: Path
) -> None:
    build(db, seed=SEED, data_dir=tmp_path, scale=0)
    by_state = Counter(states(db).values())
    assert by_state["rejected"] == 1
    assert by_state["pending_review"] >= 1
    assert by_state["draft"] >= 1
    assert by_state["published"] > sum(by_state.values()) / 2
    assert by_state["withdrawn"] == 0


def test_every_role_has_a_login_with_the_demo_password(db: Database, tmp_path: Path) -> None:
    summary = build(db, seed=SEED, data_dir=tmp_path, scale=0)
    assert len(summary["logins"]) == 10
    assert summary["password"] == DEMO_PASSWORD

    with db.transaction() as session:
        roles = {role.code for role in orgs_queries.roles(session)}
        granted = set()
        for login in LOGINS:
            account = orgs_service.authenticate(
                session, username=login.username, password=DEMO_PASSWORD
            )
            grants = [
                (grant.role, grant.department)
                for grant in orgs_queries.user_public(session, account).grants
            ]
            assert (login.role, login.department) in grants, login.username
            granted.add(login.role)
    assert granted == roles


def test_a_demo_officer_may_edit_only_its_own_department(db: Database, tmp_path: Path) -> None:
    build(db, seed=SEED, data_dir=tmp_path, scale=0)
    with db.session() as session:
        officer = orgs_queries.actor_for(session, orgs_queries.user(session, "gat_officer"))
        own = orgs_queries.department_scope(orgs_queries.department(session, "zj_gat"))
        other = orgs_queries.department_scope(orgs_queries.department(session, "zj_wjw"))
    assert allowed(officer, "catalog.edit", own)
    assert not allowed(officer, "catalog.edit", other)


def test_rebuilding_creates_nothing(db: Database, tmp_path: Path) -> None:
    build(db, seed=SEED, data_dir=tmp_path, scale=0)
    before, before_states = counts(db), states(db)

    again = build(db, seed=SEED, data_dir=tmp_path, scale=0)

    assert counts(db) == before
    assert states(db) == before_states
    assert again["resources_created"] == 0
    assert again["regions_created"] == 0


def test_the_same_seed_builds_the_same_province(
    db: Database, fresh_database: Callable[[], Database], tmp_path: Path
) -> None:
    build(db, seed=SEED, data_dir=tmp_path / "a", scale=0)
    other = fresh_database()
    summary = build(other, seed=SEED, data_dir=tmp_path / "b", scale=0)

    assert summary["regions_created"] == 102  # from nothing: migrated, roles, regions
    assert states(other) == states(db)
    assert credit_codes(other) == credit_codes(db)


def test_another_seed_builds_another_province(
    db: Database, fresh_database: Callable[[], Database], tmp_path: Path
) -> None:
    build(db, seed=SEED, data_dir=tmp_path / "a", scale=0)
    other = fresh_database()
    build(other, seed=SEED + 1, data_dir=tmp_path / "b", scale=0)

    mine, theirs = credit_codes(db), credit_codes(other)
    assert mine.keys() == theirs.keys()
    assert all(mine[code] != theirs[code] for code in mine)
    assert set(states(other)) == set(states(db))  # same resources, other choices


def test_demo_json_records_the_build(db: Database, tmp_path: Path) -> None:
    assert logins(tmp_path) is None
    summary = build(db, seed=SEED, data_dir=tmp_path / "data", scale=0)

    written = json.loads((tmp_path / "data" / "demo.json").read_text(encoding="utf-8"))
    assert written == summary
    assert written["seed"] == SEED
    assert [login["username"] for login in written["logins"]] == [
        login.username for login in LOGINS
    ]
    assert logins(tmp_path / "data") == written


def test_demo_loads_the_departments_data_into_the_lake(sqlite_db: Database, tmp_path: Path) -> None:
    from shuzhi.core.permissions import SYSTEM
    from shuzhi.lake import queries as lake_queries
    from shuzhi.lake.models import Batch, Source

    summary = build(sqlite_db, seed=SEED, data_dir=tmp_path, scale=0.05)
    assert summary["batches"] >= 20
    assert summary["rows_loaded"] > 1000 and summary["rows_quarantined"] > 0
    with sqlite_db.session() as session:
        report = lake_queries.report(session, actor=SYSTEM)
        batches = session.scalar(select(func.count(Batch.id)))
        sources = session.scalar(select(func.count(Source.id)))
    by_code = {row.code: row for row in report.resources}
    for anchor in ("gat_resident_population", "scjgj_enterprise_registration"):
        assert by_code[anchor].snapshot is not None
        assert by_code[anchor].validity is not None and by_code[anchor].validity < 1
    assert by_code["wwj_protected_cultural_relic"].light == "no_data"
    assert 0 < report.overall.coverage < 1
    assert sources == 2
    # a second build loads nothing twice
    again = build(sqlite_db, seed=SEED, data_dir=tmp_path, scale=0.05)
    assert again["batches"] == 0
    with sqlite_db.session() as session:
        assert session.scalar(select(func.count(Batch.id))) == batches
        assert session.scalar(select(func.count(Source.id))) == sources
