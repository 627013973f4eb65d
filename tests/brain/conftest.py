"""Fixtures of the brain's tests: the small province of ``data``, loaded and defined once
per session and copied for each test (its store and its lake)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from shuzhi.core.db import Database, get_database, reset_database
from shuzhi.core.settings import reset_settings
from tests.brain.data import define, load
from tests.conftest import World
from tests.lake.data import ARGON2_QUICK, Template, build_template, world_from


@pytest.fixture(scope="session")
def brain_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Template:
    folder = tmp_path_factory.mktemp("brain-template")
    template = build_template(sqlite_template, folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHUZHI_DATA_DIR", str(folder / "data"))
        patch.setenv("SHUZHI_DATABASE__URL", f"sqlite:///{template.path}")
        for name, value in ARGON2_QUICK.items():
            patch.setenv(name, value)
        reset_settings()
        reset_database()
        try:
            database = get_database()
            load(database, folder)
            define(database)
            with database.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            reset_database()
    reset_settings()
    return template


@pytest.fixture
def brain_world(
    brain_template: Template,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    isolated_settings: Path,
) -> Iterator[World]:
    """The test world with the brain's resources loaded and its indicators defined."""
    shutil.copytree(brain_template.path.parent / "data", isolated_settings, dirs_exist_ok=True)
    world = world_from(brain_template, tmp_path, monkeypatch)
    yield world
    reset_database()


@pytest.fixture
def brain_db(brain_world: World) -> Database:
    return brain_world.database
