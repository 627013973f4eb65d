"""The catalog lifecycle through the API on every backend, PostgreSQL included.

The other API tests run on SQLite only; this one proves the same requests work on the
production store (sessions, transactions and the change log through the HTTP stack).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from fastapi.testclient import TestClient

from shuzhi.server import create_app
from tests.api.support import assert_problem, auth
from tests.conftest import World, resource_doc

RESOURCES = "/api/v1/catalog/resources"


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(database=world.database)) as client:
        yield client


def test_readyz_names_the_backend(client: TestClient, world: World) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["database"] == world.database.backend


def test_lifecycle_through_the_api(client: TestClient, world: World) -> None:
    officer, admin, viewer = (auth(world, user) for user in ("gat_officer", "admin", "viewer"))

    created = client.post(RESOURCES, json=resource_doc(), headers=officer)
    assert created.status_code == 201, created.text
    assert (created.json()["state"], created.json()["version"]) == ("draft", 1)
    assert client.get(f"{RESOURCES}/gat_population", headers=viewer).status_code == 404

    submitted = client.post(f"{RESOURCES}/gat_population/transitions/submit", headers=officer)
    assert submitted.json()["state"] == "pending_review"
    refused = client.post(f"{RESOURCES}/gat_population/transitions/approve", headers=officer)
    assert refused.status_code == 403
    approved = client.post(f"{RESOURCES}/gat_population/transitions/approve", headers=admin)
    assert approved.json()["state"] == "published"

    found = client.get(RESOURCES, params={"q": "常住人口 户籍"}, headers=viewer).json()
    assert (found["count"], [r["code"] for r in found["data"]]) == (1, ["gat_population"])

    history = client.get(f"{RESOURCES}/gat_population/history", headers=viewer).json()
    assert [(h["transition"], h["actor"]) for h in history] == [
        ("submit", "gat_officer"),
        ("approve", "admin"),
    ]

    withdrawn = client.post(
        f"{RESOURCES}/gat_population/transitions/withdraw",
        json={"comment": "口径调整"},
        headers=officer,
    )
    assert withdrawn.json()["state"] == "withdrawn"
    revised = client.post(f"{RESOURCES}/gat_population/transitions/revise", headers=officer)
    assert revised.json()["state"] == "draft"

    changes = client.get(
        "/api/v1/changes",
        params={"object_type": "catalog_resource", "object_id": "gat_population"},
        headers=auth(world, "auditor"),
    ).json()
    assert [(c["action"], c["actor"]) for c in reversed(changes["data"])] == [
        ("catalog_resource.create", "gat_officer"),
        ("catalog_resource.submit", "gat_officer"),
        ("catalog_resource.approve", "admin"),
        ("catalog_resource.withdraw", "gat_officer"),
        ("catalog_resource.revise", "gat_officer"),
    ]


def test_a_failed_apply_rolls_back_through_the_api(client: TestClient, world: World) -> None:
    officer = auth(world, "gat_officer")
    text = yaml.safe_dump(
        {"resources": [resource_doc(), resource_doc(code="gat_household", provider="zj_none")]},
        allow_unicode=True,
    )
    response = client.post(
        "/api/v1/catalog/apply",
        content=text.encode(),
        headers={**officer, "Content-Type": "application/yaml"},
    )
    assert response.status_code == 404
    assert "gat_household" in response.json()["detail"]
    assert client.get(RESOURCES, headers=officer).json()["count"] == 0
    changes = client.get(
        "/api/v1/changes",
        params={"object_type": "catalog_resource"},
        headers=auth(world, "auditor"),
    ).json()
    assert changes["count"] == 0


def test_a_transition_comment_holding_nul_is_a_422_not_a_500(
    client: TestClient, world: World
) -> None:
    """The comment is also written into the change log's JSON column. The NUL guard looks
    at parameters as bound, and a JSON value reaches PostgreSQL as ``\\u0000``, which JSONB
    refuses with a driver error: the request ends in a 500 on PostgreSQL (422 on SQLite)."""
    created = client.post(RESOURCES, json=resource_doc(), headers=auth(world, "gat_officer"))
    assert created.status_code == 201
    response = client.post(
        f"{RESOURCES}/gat_population/transitions/submit",
        json={"comment": "a\x00b"},
        headers=auth(world, "gat_officer"),
    )
    assert_problem(response, 422, "validation")
