"""Shared fixtures: settings isolated per test, and a metadata store on every backend.

The ``db`` fixture runs each test on SQLite and on PostgreSQL. Each test gets a fresh
copy of a template database that is migrated once per session (a file copy for SQLite,
``CREATE DATABASE ... TEMPLATE`` for PostgreSQL). Components that are missing skip the
tests that need them, with the reason, unless SHUZHI_REQUIRE_ALL=1 (CI), where they fail.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from shuzhi.core.db import Database, get_database, reset_database
from shuzhi.core.permissions import SYSTEM, Actor
from shuzhi.core.settings import load_settings, reset_settings
from shuzhi.orgs import queries as orgs_queries
from shuzhi.orgs import service as orgs
from shuzhi.orgs.schemas import DepartmentCreate, GrantCreate, UserCreate
from shuzhi.regions import service as regions
from shuzhi.server import create_app
from tests.support.pgcluster import PgCluster, find_pg_bin

REQUIRE_ALL = os.environ.get("SHUZHI_REQUIRE_ALL") == "1"
PASSWORD = "Correct-Horse-42"
ISOLATED_ENV = (
    "SHUZHI_DATABASE__URL",
    "SHUZHI_TOKEN",
    "SHUZHI_CONFIG",
    "SHUZHI_ENVIRONMENT",
    "SHUZHI_PASSWORD",
    "SHUZHI_SECURITY__SECRET_KEY",
)


def need(available: bool, reason: str) -> None:
    """Skip locally when a component is missing; fail in CI, where everything must run."""
    if available:
        return
    if REQUIRE_ALL:
        pytest.fail(f"{reason}, and SHUZHI_REQUIRE_ALL=1 requires it")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("SHUZHI_DATA_DIR", str(data_dir))
    # argon2id stays argon2id, at a cost that keeps the suite quick
    monkeypatch.setenv("SHUZHI_SECURITY__ARGON2_TIME_COST", "1")
    monkeypatch.setenv("SHUZHI_SECURITY__ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("SHUZHI_SECURITY__ARGON2_PARALLELISM", "1")
    for name in ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)
    reset_settings()
    reset_database()
    yield data_dir
    reset_database()
    reset_settings()


def prepare(database: Database) -> None:
    """What `shuzhi db upgrade` and `shuzhi regions load --builtin zhejiang` do."""
    database.upgrade()
    with database.transaction() as session:
        orgs.sync_builtin_roles(session)
        regions.load_builtin(session, actor=SYSTEM)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    database = Database(f"sqlite:///{path}", settings=load_settings())
    prepare(database)
    with database.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    database.dispose()
    return path


@pytest.fixture(scope="session")
def spark_session() -> Any:
    """The process's shared SparkSession (one per xdist worker: a JVM takes seconds to
    start), for tests marked ``spark``; engines opened later reuse it."""
    need(importlib.util.find_spec("pyspark") is not None, "pyspark is not installed")
    from shuzhi.lake.spark import java_problem, shared_session

    problem = java_problem()
    need(problem is None, f"Spark cannot start: {problem}")
    return shared_session(master="local[2]", driver_memory="1g")


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    need(find_pg_bin() is not None, "PostgreSQL server binaries (initdb, pg_ctl) not found")
    cluster = PgCluster(tmp_path_factory.mktemp("pg"))
    cluster.start()
    try:
        database = Database(cluster.create_database("shuzhi_template"), settings=load_settings())
        prepare(database)
        database.dispose()
        yield cluster
    finally:
        cluster.stop()


def _database_for(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    cleanup = None
    if backend == "sqlite":
        path = tmp_path / "shuzhi.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        name = f"t_{uuid.uuid4().hex[:12]}"
        url = cluster.create_database(name, template="shuzhi_template")
        cleanup = lambda: cluster.drop_database(name)  # noqa: E731
    monkeypatch.setenv("SHUZHI_DATABASE__URL", url)
    reset_settings()
    reset_database()
    database = get_database()
    yield database
    reset_database()
    if cleanup:
        cleanup()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    """A migrated store with roles and the Zhejiang tree, on each backend in turn."""
    yield from _database_for(request, request.param, tmp_path, monkeypatch)


@pytest.fixture
def sqlite_db(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    """SQLite only: for interface tests whose backend behaviour the ``db`` tests cover."""
    yield from _database_for(request, "sqlite", tmp_path, monkeypatch)


@dataclass
class World:
    """A small province: three departments and a user for each kind of access."""

    database: Database
    actors: dict[str, Actor] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def actor(self, username: str) -> Actor:
        with self.database.session() as session:
            return orgs_queries.actor_for(session, orgs_queries.user(session, username))


USERS = (
    # username, department, role, grant department (None: platform-wide)
    ("admin", "zj_dsj", "platform_admin", None),
    ("gat_officer", "zj_gat", "data_officer", "zj_gat"),
    ("wjw_officer", "zj_wjw", "data_officer", "zj_wjw"),
    ("gat_admin", "zj_gat", "department_admin", "zj_gat"),
    ("auditor", "zj_dsj", "auditor", None),
    ("viewer", "zj_wjw", "viewer", None),
)


def make_user(
    session: Session,
    username: str,
    *,
    department: str,
    role: str,
    grant_department: str | None = None,
    grant_region: str | None = None,
) -> None:
    """A user (password ``PASSWORD``) with one grant, made by the platform operator."""
    orgs.create_user(
        session,
        actor=SYSTEM,
        data=UserCreate(
            username=username, display_name=username, password=PASSWORD, department=department
        ),
    )
    orgs.grant_role(
        session,
        actor=SYSTEM,
        username=username,
        data=GrantCreate(role=role, department=grant_department, region=grant_region),
    )


def build_world(database: Database) -> World:
    world = World(database)
    with database.transaction() as session:
        for code, name, region, parent in (
            ("zj_dsj", "浙江省大数据发展管理局", "330000", None),
            ("zj_gat", "浙江省公安厅", "330000", None),
            ("zj_wjw", "浙江省卫生健康委员会", "330000", None),
            ("hz_gaj", "杭州市公安局", "330100", "zj_gat"),
        ):
            orgs.create_department(
                session,
                actor=SYSTEM,
                data=DepartmentCreate(code=code, name=name, region=region, parent=parent),
            )
        for username, department, role, grant_department in USERS:
            make_user(
                session,
                username,
                department=department,
                role=role,
                grant_department=grant_department,
            )
            _token, plaintext = orgs.create_token(
                session, actor=SYSTEM, username=username, name="tests"
            )
            world.tokens[username] = plaintext
    for username, *_ in USERS:
        world.actors[username] = world.actor(username)
    return world


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


@pytest.fixture
def sqlite_world(sqlite_db: Database) -> World:
    return build_world(sqlite_db)


@pytest.fixture
def postgres_world(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """PostgreSQL only, for behaviour SQLite cannot show (row locks between writers).
    Tests using it carry the ``postgres`` marker."""
    for database in _database_for(request, "postgres", tmp_path, monkeypatch):
        yield build_world(database)


@pytest.fixture
def any_client(world: World) -> Iterator[TestClient]:
    """A client of the whole app on each backend in turn, PostgreSQL included."""
    with TestClient(create_app(database=world.database)) as client:
        yield client


def add_user(
    world: World,
    username: str,
    *,
    department: str,
    role: str,
    grant_department: str | None = None,
    grant_region: str | None = None,
) -> Actor:
    """A user made by the platform operator, with one grant; returns its actor."""
    with world.database.transaction() as session:
        make_user(
            session,
            username,
            department=department,
            role=role,
            grant_department=grant_department,
            grant_region=grant_region,
        )
    return world.actor(username)


RESOURCE = {
    "code": "gat_population",
    "name": "浙江省常住人口基本信息",
    "summary": "常住人口的身份与居住信息",
    "provider": "zj_gat",
    "classification": "basic",
    "format": "table",
    "update_cycle": "daily",
    "system": "digital_society",
    "sharing": "conditional",
    "sharing_conditions": "仅限办理民生事项时使用",
    "open": "prohibited",
    "grade": "L3",
    "national_level": "important",
    "region": "330000",
    "tags": ["人口", "户籍"],
    "fields": [
        {
            "name": "id_card",
            "title": "公民身份号码",
            "type": "string",
            "pii": "id_card",
            "primary_key": True,
        },
        {"name": "full_name", "title": "姓名", "type": "string", "pii": "name", "nullable": False},
        {"name": "region_code", "title": "行政区划代码", "type": "string"},
        {"name": "registered_on", "title": "登记日期", "type": "date"},
    ],
}


def resource_doc(**overrides: object) -> dict:
    """A valid catalog resource document, with overrides."""
    return {**RESOURCE, **overrides}
