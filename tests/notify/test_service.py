"""Inbox messages (once per key, read only by their owner) and webhook registration (the
URL checked, the secret shown once), on each backend."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from shuzhi.core import audit
from shuzhi.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from shuzhi.core.models import ChangeLog
from shuzhi.core.permissions import SYSTEM
from shuzhi.core.settings import load_settings
from shuzhi.notify import queries, service
from shuzhi.notify.models import Webhook
from shuzhi.notify.rules import derive_secret
from shuzhi.notify.schemas import WebhookCreate
from tests.conftest import World
from tests.notify.conftest import Frozen
from tests.notify.data import add_webhook, deliveries, publish
from tests.support.race import race

# -- the inbox ----------------------------------------------------------------------------


def _tell(world: World, users: list[str], key: str, title: str = "问题已交办") -> int:
    with world.database.transaction() as session:
        return service.notify(
            session,
            user_ids=[world.actors[name].id for name in users],
            key=key,
            kind="problem.assigned",
            title=title,
            link="/problems/7",
            object_type="problem",
            object_id="7",
        )


def test_a_message_is_sent_once_per_key_and_user(world: World) -> None:
    assert _tell(world, ["viewer", "auditor"], "problem:7:assigned") == 2
    assert _tell(world, ["viewer", "auditor", "admin"], "problem:7:assigned") == 1
    assert _tell(world, ["viewer"], "problem:7:assigned") == 0
    assert _tell(world, [], "problem:7:assigned") == 0
    assert _tell(world, ["viewer"], "problem:7:closed") == 1
    with world.database.session() as session:
        found, total = queries.inbox(session, actor=world.actors["viewer"])
    assert total == 2
    assert {item.key for item in found} == {"problem:7:assigned", "problem:7:closed"}


@pytest.mark.postgres
def test_a_concurrent_twin_of_a_message_adds_nothing(postgres_world: World) -> None:
    world = postgres_world
    user_id = world.actors["viewer"].id

    def tell(session: object) -> None:
        service.notify(session, user_ids=[user_id], key="k", kind="x", title="t")  # type: ignore[arg-type]

    assert race(world.database, tell, tell) == "done"
    with world.database.session() as session:
        assert queries.unread_count(session, user_id=user_id) == 1


def test_the_inbox_shows_unread_first_then_newest_and_pages(world: World, frozen: Frozen) -> None:
    for index in range(5):
        _tell(world, ["viewer"], f"k{index}", title=f"message {index}")
        frozen.advance(60)
    viewer = world.actors["viewer"]
    with world.database.transaction() as session:
        first = queries.inbox(session, actor=viewer)[0]
        service.mark_read(session, actor=viewer, notification_id=first[0].id)  # newest: k4
    with world.database.session() as session:
        found, total = queries.inbox(session, actor=viewer)
        assert [item.title for item in found] == [f"message {i}" for i in (3, 2, 1, 0, 4)]
        page, total = queries.inbox(session, actor=viewer, limit=2, offset=2)
        assert [item.title for item in page] == ["message 1", "message 0"] and total == 5
        unread, total = queries.inbox(session, actor=viewer, unread=True)
        assert total == 4 and all(item.read_at is None for item in unread)
        assert queries.unread_count(session, user_id=viewer.id) == 4
        public = queries.notification_public(found[-1])
        assert public.read and public.read_at == frozen.moment


def test_only_the_owner_marks_a_message_read(world: World) -> None:
    _tell(world, ["viewer", "auditor"], "k")
    viewer, auditor = world.actors["viewer"], world.actors["auditor"]
    with world.database.session() as session:
        (theirs,) = queries.inbox(session, actor=auditor)[0]
    with world.database.transaction() as session, pytest.raises(NotFound):
        service.mark_read(session, actor=viewer, notification_id=theirs.id)
    with world.database.transaction() as session, pytest.raises(NotFound):
        service.mark_read(session, actor=viewer, notification_id=2**31 - 1)
    with world.database.transaction() as session:
        assert service.mark_all_read(session, actor=viewer) == 1
        assert service.mark_all_read(session, actor=viewer) == 0
    with world.database.session() as session:
        assert queries.unread_count(session, user_id=auditor.id) == 1  # untouched
    with world.database.transaction() as session:
        mine = service.mark_read(session, actor=auditor, notification_id=theirs.id)
        first = mine.read_at
    with world.database.transaction() as session:  # again: nothing changes
        assert service.mark_read(session, actor=auditor, notification_id=theirs.id).read_at == first


def test_the_operator_has_no_inbox(world: World) -> None:
    with world.database.session() as session, pytest.raises(ValidationFailed, match="no inbox"):
        queries.inbox(session, actor=SYSTEM)


# -- webhooks: registration ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.org/x", "http"),
        ("hooks.example.org/x", "http"),
        ("https://", "http"),
        ("https://user:secret@hooks.example.org/x", "credentials"),
        ("https://hooks.example.org/x#part", "fragment"),
        ("https://hooks.example.org:99999/x", "port"),
        ("https://hooks.example.org/a b", "spaces"),
    ],
)
def test_a_bad_url_is_refused(world: World, url: str, reason: str) -> None:
    with pytest.raises(ValidationFailed, match=reason) as refused:
        add_webhook(world.database, url)
    assert refused.value.field == "url"


def test_the_host_must_be_on_the_allow_list_when_there_is_one(world: World) -> None:
    settings = load_settings(loop={"webhook_hosts": ["hooks.example.org", "127.0.0.1:8443"]})

    def register(name: str, url: str) -> None:
        add_webhook(world.database, url, name=name, settings=settings)

    register("one", "https://hooks.example.org/shuzhi?source=zj")
    register("two", "http://127.0.0.1:8443/")
    for url in ("https://evil.example.com/x", "http://127.0.0.1:9000/", "http://127.0.0.1/"):
        with pytest.raises(ValidationFailed, match="SHUZHI_LOOP__WEBHOOK_HOSTS"):
            register("three", url)
    # without a list, any host is allowed
    add_webhook(world.database, "https://evil.example.com/x", name="four")


def test_event_names_are_checked_for_shape_only(world: World) -> None:
    webhook_id, _ = add_webhook(
        world.database, "https://h.example.org/", events=["problem.assigned", "made.up_event"]
    )
    with world.database.session() as session:
        assert session.get(Webhook, webhook_id).events == ["problem.assigned", "made.up_event"]
    assert WebhookCreate(name="ab", url="x", events=["a.b", "*"]).events == ["*"]
    for events in ([], ["Problem Assigned"], ["problem..assigned"], ["x" * 61]):
        with pytest.raises(ValidationError):
            WebhookCreate(name="ab", url="https://h.example.org/", events=events)
    with pytest.raises(ValidationError, match="webhook name"):
        WebhookCreate(name="9lives", url="https://h.example.org/")


def test_a_name_is_taken_once(world: World) -> None:
    add_webhook(world.database, "https://h.example.org/")
    with pytest.raises(Conflict) as refused:
        add_webhook(world.database, "https://other.example.org/")
    assert refused.value.field == "name"


def test_the_secret_is_shown_once_and_never_stored(world: World) -> None:
    webhook_id, secret = add_webhook(world.database, "https://h.example.org/")
    assert len(secret) >= 40
    with world.database.session() as session:
        row = session.get(Webhook, webhook_id)
        assert secret not in str([getattr(row, c.key) for c in Webhook.__table__.columns])
        public = queries.webhooks_public(session, [row])[0].model_dump_json()
        assert secret not in public and row.salt not in public
        assert "salt" not in audit.snapshot(row)
        logged = session.scalars(select(ChangeLog).where(ChangeLog.object_type == "notify_webhook"))
        assert all(row.salt not in str(entry.after) for entry in logged)
        # the server recomputes it from the platform key, and nothing else can
        assert derive_secret(load_settings().secret(), salt=row.salt) == secret
        assert derive_secret(b"another platform key", salt=row.salt) != secret
    with world.database.transaction() as session:
        _, rotated = service.rotate_secret(session, actor=SYSTEM, webhook_id=webhook_id)
    assert rotated != secret


def test_webhooks_need_notify_webhooks(world: World) -> None:
    officer = world.actors["gat_officer"]
    with pytest.raises(PermissionDenied, match=r"notify\.webhooks"):
        add_webhook(world.database, "https://h.example.org/", actor=officer)
    webhook_id, _ = add_webhook(world.database, "https://h.example.org/")
    with world.database.transaction() as session:
        for act in (
            lambda: queries.webhooks(session, actor=officer),
            lambda: service.rotate_secret(session, actor=officer, webhook_id=webhook_id),
            lambda: service.delete_webhook(session, actor=officer, webhook_id=webhook_id),
        ):
            with pytest.raises(PermissionDenied):
                act()
    with pytest.raises(PermissionDenied):
        service.run_due(world.database, actor=officer)


def test_a_webhook_is_found_by_id_or_name(world: World) -> None:
    webhook_id, _ = add_webhook(world.database, "https://h.example.org/")
    with world.database.session() as session:
        assert queries.webhook(session, actor=SYSTEM, ref="dudu").id == webhook_id
        assert queries.webhook(session, actor=SYSTEM, ref=str(webhook_id)).name == "dudu"
        for ref in ("nobody", "99999999999", 0):
            with pytest.raises(NotFound):
                queries.webhook(session, actor=SYSTEM, ref=ref)


# -- webhooks: publishing --------------------------------------------------------------------


def test_an_event_is_queued_for_the_webhooks_that_listen(world: World) -> None:
    every, _ = add_webhook(world.database, "https://a.example.org/", name="every")
    closed, _ = add_webhook(
        world.database, "https://b.example.org/", name="closed", events=["problem.closed"]
    )
    off, _ = add_webhook(world.database, "https://c.example.org/", name="off")
    with world.database.transaction() as session:
        service.set_webhook_active(session, actor=SYSTEM, webhook_id=off, active=False)
    assert publish(world.database, "problem.assigned", {"on": date(2026, 12, 10)}) == 1
    assert publish(world.database, "problem.closed") == 2
    assert [(d.webhook_id, d.event) for d in deliveries(world.database)] == [
        (every, "problem.assigned"),
        (every, "problem.closed"),
        (closed, "problem.closed"),
    ]
    # a date in the payload is the text it is sent as
    assert deliveries(world.database)[0].payload == {"on": "2026-12-10"}


def test_switching_a_webhook_off_gives_up_what_waits_and_removing_it_its_deliveries(
    world: World,
) -> None:
    webhook_id, _ = add_webhook(world.database, "https://a.example.org/")
    publish(world.database)
    with world.database.transaction() as session:
        service.set_webhook_active(session, actor=SYSTEM, webhook_id=webhook_id, active=False)
    (given_up,) = deliveries(world.database)
    assert (given_up.state, given_up.last_error) == ("failed", "webhook switched off")
    with world.database.transaction() as session:
        service.set_webhook_active(session, actor=SYSTEM, webhook_id=webhook_id, active=True)
        service.delete_webhook(session, actor=SYSTEM, webhook_id=webhook_id)
    assert deliveries(world.database) == []
    with world.database.session() as session:
        actions = list(
            session.scalars(
                select(ChangeLog.action)
                .where(ChangeLog.object_type == "notify_webhook")
                .order_by(ChangeLog.id)
            )
        )
    assert actions == [
        "notify_webhook.create",
        "notify_webhook.disable",
        "notify_webhook.enable",
        "notify_webhook.delete",
    ]
