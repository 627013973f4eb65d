"""The cockpit's inbox and webhooks pages, driven over HTTP as a browser without
JavaScript does: each renders the payload of its API twin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape

import pytest
from fastapi.testclient import TestClient

from shuzhi.notify import queries, service
from shuzhi.server import create_app
from tests.api.support import auth
from tests.conftest import World
from tests.notify.data import publish
from tests.notify.receiver import closed_port, receiving
from tests.web.support import csrf_of, flashed, login


@pytest.fixture
def client(sqlite_world: World) -> Iterator[TestClient]:
    with TestClient(create_app(database=sqlite_world.database)) as test_client:
        yield test_client


def _tell(world: World, user: str, key: str, link: str = "/problems/7") -> None:
    with world.database.transaction() as session:
        service.notify(
            session,
            user_ids=[world.actors[user].id],
            key=key,
            kind="problem.assigned",
            title=f"问题 {key} 已交办",
            body="请在期限内整改",
            link=link,
        )


def _text_of(html: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}"[^>]*>([^<]*)<', html)
    assert match, f"no {testid} on the page"
    return unescape(match.group(1))


def test_the_inbox_page_lists_unread_first_and_marks_read(
    client: TestClient, sqlite_world: World
) -> None:
    _tell(sqlite_world, "viewer", "a")
    _tell(sqlite_world, "viewer", "b", link="https://elsewhere.example.org/")
    _tell(sqlite_world, "auditor", "c")
    login(client, "viewer")
    page = client.get("/inbox")
    assert page.status_code == 200
    assert _text_of(page.text, "nav-unread") == "2"  # the badge in the navigation
    api = client.get("/api/v1/inbox", headers=auth(sqlite_world, "viewer")).json()
    ids = [item["id"] for item in api["data"]]
    assert [int(found) for found in re.findall(r'data-message="(\d+)"', page.text)] == ids
    assert f'href="/problems/7" data-testid="open-{ids[1]}"' in page.text
    assert f'data-testid="open-{ids[0]}"' not in page.text  # only links within the site
    assert "问题 c 已交办" not in page.text  # someone else's

    marked = client.post(
        f"/inbox/{ids[1]}/read", data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert marked.status_code == 303 and marked.headers["location"] == "/inbox"
    after = client.get("/inbox")
    assert flashed(after.text) == "已标为已读。"
    assert _text_of(after.text, "nav-unread") == "1"
    assert [int(found) for found in re.findall(r'data-message="(\d+)"', after.text)] == [
        ids[0],
        ids[1],
    ]
    with sqlite_world.database.session() as session:
        theirs = queries.inbox(session, actor=sqlite_world.actors["auditor"])[0][0].id
    refused = client.post(f"/inbox/{theirs}/read", data={"csrf": csrf_of(after.text)})
    assert refused.status_code == 404
    client.post("/inbox/read-all", data={"csrf": csrf_of(after.text)})
    done = client.get("/inbox?unread=1")
    assert 'data-testid="nav-unread"' not in done.text
    assert 'data-testid="no-messages"' in done.text
    assert client.get("/inbox?lang=en").status_code == 200


def test_the_webhooks_page_shows_the_secret_once(client: TestClient, sqlite_world: World) -> None:
    login(client, "admin")
    page = client.get("/webhooks")
    assert page.status_code == 200 and 'data-testid="no-webhooks"' in page.text
    assert 'href="/webhooks"' in page.text  # in the navigation of those allowed
    with receiving() as endpoint:
        made = client.post(
            "/webhooks",
            data={
                "csrf": csrf_of(page.text),
                "name": "dudu",
                "url": endpoint.url,
                "events": "problem.assigned, problem.closed",
            },
        )
        assert made.status_code == 200
        assert made.headers["cache-control"] == "no-store"
        secret = _text_of(made.text, "issued-secret")
        assert len(secret) >= 40
        listed = client.get("/webhooks")
        assert secret not in listed.text and "dudu" in listed.text
        api = client.get("/api/v1/webhooks", headers=auth(sqlite_world, "admin")).json()
        webhook_id = api["data"][0]["id"]
        assert api["data"][0]["events"] == ["problem.assigned", "problem.closed"]

        detail = client.get(f"/webhooks/{webhook_id}")
        assert 'data-testid="old-secret-until"' not in detail.text  # never rotated
        csrf = csrf_of(detail.text)
        tested = client.post(f"/webhooks/{webhook_id}/test", data={"csrf": csrf})
        assert flashed(tested.text) == "测试事件已送达。"
        assert len(endpoint.received) == 1

        rotated = client.post(f"/webhooks/{webhook_id}/rotate", data={"csrf": csrf})
        assert rotated.headers["cache-control"] == "no-store"
        assert _text_of(rotated.text, "issued-secret") not in (secret, "")
        after = client.get(f"/webhooks/{webhook_id}").text
        assert secret not in after
        assert 'data-testid="old-secret-until"' in after and "旧密钥签名截至" in after


def test_a_refused_webhook_comes_back_with_the_reason(
    client: TestClient, sqlite_world: World
) -> None:
    login(client, "admin")
    csrf = csrf_of(client.get("/webhooks").text)
    refused = client.post(
        "/webhooks", data={"csrf": csrf, "name": "dudu", "url": "ftp://x.example.org/"}
    )
    assert refused.status_code == 422
    assert "http" in _text_of(refused.text, "form-error")
    assert 'value="ftp://x.example.org/"' in refused.text  # the form keeps what was typed
    assert 'data-testid="issued"' not in refused.text
    bad = client.post("/webhooks", data={"csrf": csrf, "name": "Bad Name", "url": "https://x/"})
    assert bad.status_code == 422 and "name" in _text_of(bad.text, "form-error")


def test_a_webhooks_deliveries_show_state_attempts_and_error(
    client: TestClient, sqlite_world: World
) -> None:
    admin = auth(sqlite_world, "admin")
    dead = f"http://127.0.0.1:{closed_port()}/hook"
    made = client.post("/api/v1/webhooks", json={"name": "dead", "url": dead}, headers=admin).json()
    publish(sqlite_world.database)
    service.run_due(sqlite_world.database)
    login(client, "admin")
    page = client.get(f"/webhooks/{made['id']}")
    api = client.get(f"/api/v1/webhooks/{made['id']}/deliveries", headers=admin).json()
    (one,) = api["data"]
    assert _text_of(page.text, f"delivery-state-{one['id']}") == "待发送"
    assert _text_of(page.text, f"attempts-{one['id']}") == "1"
    assert _text_of(page.text, f"error-{one['id']}") == "connection refused"
    failed_tab = client.get(f"/webhooks/{made['id']}?state=failed")
    assert 'data-testid="no-deliveries"' in failed_tab.text
    tested = client.post(
        f"/webhooks/{made['id']}/test", data={"csrf": csrf_of(page.text)}, follow_redirects=True
    )
    assert flashed(tested.text) == "测试事件未送达：connection refused"
    off = client.post(
        f"/webhooks/{made['id']}/disable", data={"csrf": csrf_of(page.text)}, follow_redirects=True
    )
    assert flashed(off.text) == "操作成功。"
    assert _text_of(off.text, "webhook-state") == "已停用"
    gone = client.post(
        f"/webhooks/{made['id']}/delete", data={"csrf": csrf_of(page.text)}, follow_redirects=True
    )
    assert 'data-testid="no-webhooks"' in gone.text
    assert client.get(f"/webhooks/{made['id']}").status_code == 404


def test_the_webhooks_page_needs_notify_webhooks(client: TestClient) -> None:
    login(client, "gat_officer")
    home = client.get("/inbox")
    assert 'href="/webhooks"' not in home.text and 'href="/inbox"' in home.text
    assert client.get("/webhooks").status_code == 403
    refused = client.post("/webhooks", data={"csrf": csrf_of(home.text), "name": "x", "url": "y"})
    assert refused.status_code == 403
