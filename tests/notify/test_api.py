"""/api/v1/inbox and /api/v1/webhooks: thin routes, problem+json for every refusal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from shuzhi.notify import service
from shuzhi.notify.rules import verify_signature
from shuzhi.server import create_app
from tests.api.support import assert_problem, auth
from tests.conftest import World
from tests.notify.data import publish
from tests.notify.receiver import closed_port, receiving

INBOX = "/api/v1/inbox"
WEBHOOKS = "/api/v1/webhooks"


@pytest.fixture
def client(sqlite_world: World) -> Iterator[TestClient]:
    with TestClient(create_app(database=sqlite_world.database)) as test_client:
        yield test_client


def _tell(world: World, user: str, *keys: str) -> None:
    with world.database.transaction() as session:
        for key in keys:
            service.notify(session, user_ids=[world.actors[user].id], key=key, kind="k", title=key)


def test_the_inbox_is_the_callers_own(client: TestClient, sqlite_world: World) -> None:
    _tell(sqlite_world, "viewer", "a", "b", "c")
    _tell(sqlite_world, "auditor", "x")
    viewer = auth(sqlite_world, "viewer")
    listed = client.get(INBOX, headers=viewer).json()
    assert (listed["count"], listed["unread"]) == (3, 3)
    assert [item["title"] for item in listed["data"]] == ["c", "b", "a"]
    page = client.get(INBOX, params={"limit": 1, "offset": 1}, headers=viewer).json()
    assert [item["title"] for item in page["data"]] == ["b"] and page["count"] == 3

    read = client.post(f"{INBOX}/{listed['data'][0]['id']}/read", headers=viewer)
    assert read.status_code == 200 and read.json()["read"] is True
    unread = client.get(INBOX, params={"unread": "true"}, headers=viewer).json()
    assert (unread["count"], unread["unread"]) == (2, 2)
    assert client.post(f"{INBOX}/read-all", headers=viewer).json() == {"marked": 2, "unread": 0}

    theirs = client.get(INBOX, headers=auth(sqlite_world, "auditor")).json()["data"][0]["id"]
    assert_problem(client.post(f"{INBOX}/{theirs}/read", headers=viewer), 404, "not-found")
    assert client.get(INBOX, headers=auth(sqlite_world, "auditor")).json()["unread"] == 1
    assert_problem(client.get(INBOX), 401, "unauthenticated")
    assert_problem(client.post(f"{INBOX}/0/read", headers=viewer), 422, "validation")
    assert_problem(client.get(INBOX, params={"limit": 0}, headers=viewer), 422, "validation")


def test_webhooks_over_the_api(client: TestClient, sqlite_world: World) -> None:
    admin = auth(sqlite_world, "admin")
    with receiving() as endpoint:
        made = client.post(
            WEBHOOKS,
            json={"name": "dudu", "url": endpoint.url, "events": ["problem.assigned"]},
            headers=admin,
        )
        assert made.status_code == 201, made.text
        issued = made.json()
        secret = issued["secret"]
        listed = client.get(WEBHOOKS, headers=admin).json()
        assert listed["count"] == 1 and secret not in str(listed)
        one = client.get(f"{WEBHOOKS}/{issued['id']}", headers=admin).json()
        assert "secret" not in one and one["events"] == ["problem.assigned"]
        assert one["old_secret_until"] is None  # never rotated

        tested = client.post(f"{WEBHOOKS}/{issued['id']}/test", headers=admin).json()
        assert tested["state"] == "delivered" and tested["next_at"] is None
        (got,) = endpoint.received
        assert verify_signature(
            secret, got.headers["x-shuzhi-timestamp"], got.body, got.headers["x-shuzhi-signature"]
        )

        rotated = client.post(f"{WEBHOOKS}/{issued['id']}/rotate", headers=admin).json()
        assert rotated["secret"] != secret
        until = datetime.fromisoformat(rotated["old_secret_until"])
        assert timedelta(hours=23) < until - datetime.now(UTC) <= timedelta(hours=24)
        shown_one = client.get(f"{WEBHOOKS}/{issued['id']}", headers=admin).json()
        assert shown_one["old_secret_until"] == rotated["old_secret_until"]
        publish(sqlite_world.database)
        service.run_due(sqlite_world.database)
        newest = endpoint.received[-1]
        for either in (rotated["secret"], secret):  # the old one signs too, for a while
            assert verify_signature(
                either,
                newest.headers["x-shuzhi-timestamp"],
                newest.body,
                newest.headers["x-shuzhi-signature"],
            )
    shown = client.get(f"{WEBHOOKS}/{issued['id']}/deliveries", headers=admin).json()
    assert [item["event"] for item in shown["data"]] == ["problem.assigned", "notify.test"]
    assert shown["data"][0]["payload"]["code"] == "WT-2026-0007"
    delivered = client.get(
        f"{WEBHOOKS}/{issued['id']}/deliveries", params={"state": "failed"}, headers=admin
    ).json()
    assert delivered == {"data": [], "count": 0}
    assert_problem(
        client.get(f"{WEBHOOKS}/{issued['id']}/deliveries?state=lost", headers=admin),
        422,
        "validation",
    )
    off = client.post(f"{WEBHOOKS}/{issued['id']}/disable", headers=admin).json()
    assert off["active"] is False
    assert_problem(client.post(f"{WEBHOOKS}/{issued['id']}/test", headers=admin), 409, "conflict")
    assert client.post(f"{WEBHOOKS}/{issued['id']}/enable", headers=admin).json()["active"]
    assert client.delete(f"{WEBHOOKS}/{issued['id']}", headers=admin).status_code == 204
    assert_problem(client.get(f"{WEBHOOKS}/{issued['id']}", headers=admin), 404, "not-found")


def test_a_failed_test_event_says_why(client: TestClient, sqlite_world: World) -> None:
    admin = auth(sqlite_world, "admin")
    dead = f"http://127.0.0.1:{closed_port()}/hook"
    made = client.post(WEBHOOKS, json={"name": "dead", "url": dead}, headers=admin).json()
    tested = client.post(f"{WEBHOOKS}/{made['id']}/test", headers=admin).json()
    assert (tested["state"], tested["attempts"], tested["last_error"]) == (
        "pending",
        1,
        "connection refused",
    )
    assert tested["next_at"] is not None


def test_bad_webhooks_are_problems(client: TestClient, sqlite_world: World) -> None:
    admin = auth(sqlite_world, "admin")
    body = assert_problem(
        client.post(WEBHOOKS, json={"name": "dudu", "url": "ftp://x.example.org/"}, headers=admin),
        422,
        "validation",
    )
    assert body["field"] == "url"
    body = assert_problem(
        client.post(
            WEBHOOKS,
            json={"name": "dudu", "url": "https://x.example.org/", "events": "problem.closed"},
            headers=admin,
        ),
        422,
        "validation",
    )
    assert body["field"] == "events"
    bad_name = {"name": "Bad Name", "url": "https://x.example.org/"}
    assert_problem(client.post(WEBHOOKS, json=bad_name, headers=admin), 422, "validation")
    good = {"name": "dudu", "url": "https://x.example.org/"}
    assert client.post(WEBHOOKS, json=good, headers=admin).status_code == 201
    assert_problem(client.post(WEBHOOKS, json=good, headers=admin), 409, "conflict")


def test_webhooks_need_notify_webhooks(client: TestClient, sqlite_world: World) -> None:
    officer = auth(sqlite_world, "gat_officer")
    good = {"name": "dudu", "url": "https://x.example.org/"}
    assert_problem(client.post(WEBHOOKS, json=good, headers=officer), 403, "forbidden")
    assert_problem(client.get(WEBHOOKS, headers=officer), 403, "forbidden")
    made = client.post(WEBHOOKS, json=good, headers=auth(sqlite_world, "admin")).json()
    for method, path in (
        ("post", f"{WEBHOOKS}/{made['id']}/rotate"),
        ("post", f"{WEBHOOKS}/{made['id']}/test"),
        ("delete", f"{WEBHOOKS}/{made['id']}"),
        ("get", f"{WEBHOOKS}/{made['id']}/deliveries"),
    ):
        assert_problem(getattr(client, method)(path, headers=officer), 403, "forbidden")
    assert_problem(client.get(WEBHOOKS), 401, "unauthenticated")
