"""Fixtures of the gateway tests: the people resource loaded, two consumers with keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shuzhi.server import create_app
from tests.conftest import World
from tests.gateway.data import Gateway, load_people, make_consumer, people_doc
from tests.lake import conftest as lake_fixtures
from tests.lake.data import publish

# the lake's fixtures, which the SQLite `gateway` fixture builds on
lake_template = lake_fixtures.lake_template
lake_world = lake_fixtures.lake_world


def _gateway(world: World, tmp_path: Path) -> Iterator[Gateway]:
    publish(world.database, people_doc())
    load_people(world.database, tmp_path)
    with TestClient(create_app(database=world.database)) as http:
        gateway = Gateway(world, http)
        # a provincial system of the health commission, and a Hangzhou police system
        gateway.keys["zj_health_app"] = make_consumer(world.database, "zj_health_app", "zj_wjw")
        gateway.keys["hz_police_app"] = make_consumer(world.database, "hz_police_app", "hz_gaj")
        yield gateway


@pytest.fixture
def gateway(lake_world: World, tmp_path: Path) -> Iterator[Gateway]:
    """SQLite: for behaviour the backend does not change."""
    yield from _gateway(lake_world, tmp_path)


@pytest.fixture
def any_gateway(world: World, tmp_path: Path) -> Iterator[Gateway]:
    """On each backend in turn, PostgreSQL included."""
    yield from _gateway(world, tmp_path)
