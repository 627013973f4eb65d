"""Fixtures of the lake tests: the all-types resource, published, on a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shuzhi.core.db import Database, reset_database
from tests.conftest import World
from tests.lake.data import Template, all_types_doc, build_template, publish, world_from


@pytest.fixture(scope="session")
def lake_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(sqlite_template, tmp_path_factory.mktemp("lake-template"))


@pytest.fixture
def lake_world(
    lake_template: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """SQLite, with the test world and the all-types resource published: for tests whose
    backend is irrelevant."""
    yield world_from(lake_template, tmp_path, monkeypatch)
    reset_database()


@pytest.fixture
def any_lake_world(world: World) -> World:
    """The same on each backend in turn, PostgreSQL included."""
    publish(world.database, all_types_doc())
    return world


@pytest.fixture
def lake_db(lake_world: World) -> Database:
    return lake_world.database
