"""Lake API inputs found in review to answer 500: each is a problem+json now."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shuzhi.core.settings import get_settings
from shuzhi.server import create_app
from tests.api.support import assert_clean_error, assert_problem, auth
from tests.conftest import World
from tests.lake.data import CODE, Template, build_template, world_from, write_csv

LAKE = "/api/v1/lake"
HUGE = str(2**63)


@pytest.fixture(scope="session")
def lake_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(sqlite_template, tmp_path_factory.mktemp("lake-template"))


@pytest.fixture
def loaded(lake_template: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return world_from(lake_template, tmp_path, monkeypatch)


@pytest.fixture
def client(loaded: World) -> Iterator[TestClient]:
    with TestClient(create_app(database=loaded.database), raise_server_exceptions=False) as client:
        yield client


def people(tmp_path: Path) -> bytes:
    return write_csv(tmp_path / "people.csv").read_bytes()


@pytest.mark.parametrize(
    ("form", "filename"),
    [
        ({"delimiter": '"'}, "people.csv"),
        ({"delimiter": "\n"}, "people.csv"),
        ({"encoding": "utf-16"}, "people.csv"),
        ({"encoding": "rot13"}, "people.csv"),
        ({}, ".."),
        ({}, "a" * 300 + ".csv"),
    ],
)
def test_odd_upload_options_are_a_problem_not_a_500(
    client: TestClient, loaded: World, tmp_path: Path, form: dict[str, str], filename: str
) -> None:
    response = client.post(
        f"{LAKE}/resources/{CODE}/batches",
        headers=auth(loaded, "gat_officer"),
        files={"file": (filename, people(tmp_path))},
        data=form,
    )
    assert_clean_error(response)
    if filename.endswith(".csv") and not form:
        assert response.status_code == 201  # a long name is shortened, not refused


@pytest.mark.parametrize("path", ["quarantine", "quarantine.csv"])
def test_a_batch_number_past_any_id_is_a_problem_not_a_500(
    client: TestClient, loaded: World, path: str
) -> None:
    response = client.get(
        f"{LAKE}/resources/{CODE}/{path}",
        params={"batch": HUGE},
        headers=auth(loaded, "gat_officer"),
    )
    assert_problem(response, 422, "validation")


def test_a_source_outside_the_source_directories_is_refused(
    client: TestClient, loaded: World
) -> None:
    inbox = get_settings().inbox_dir
    for location in (
        get_settings().database.url,  # the platform's own store, password hashes and all
        f"{inbox}/\x00people.csv",
    ):
        response = client.post(
            f"{LAKE}/resources/{CODE}/sources",
            headers=auth(loaded, "gat_officer"),
            json={"name": "s", "location": location, "query": "SELECT * FROM user_account"},
        )
        assert_problem(response, 422, "validation")
