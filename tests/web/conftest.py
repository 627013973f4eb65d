from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from shuzhi.server import create_app
from tests.conftest import World


@pytest.fixture
def client(sqlite_world: World) -> Iterator[TestClient]:
    with TestClient(create_app(database=sqlite_world.database)) as test_client:
        yield test_client
