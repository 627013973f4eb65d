"""Sending webhook deliveries to a real endpoint on 127.0.0.1: signed as documented,
retried with a doubling wait, given up after the last attempt, never sent twice by two
workers, and never holding a transaction while the endpoint is called."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

from shuzhi.core import plugins
from shuzhi.core.permissions import SYSTEM
from shuzhi.core.settings import load_settings
from shuzhi.notify import queries, service
from shuzhi.notify.models import Webhook
from shuzhi.notify.rules import verify_signature
from tests.conftest import World
from tests.notify.conftest import Frozen
from tests.notify.data import PAYLOAD, add_webhook, deliveries, only_delivery, publish
from tests.notify.receiver import WAIT_S, closed_port, receiving


def test_a_delivery_arrives_signed_as_documented(world: World, frozen: Frozen) -> None:
    with receiving() as endpoint:
        webhook_id, secret = add_webhook(world.database, endpoint.url)
        publish(world.database, "problem.assigned", PAYLOAD)
        run = service.run_due(world.database)
        assert (run.delivered, run.retrying, run.failed) == (1, 0, 0)
        (got,) = endpoint.received
    sent = only_delivery(world.database)
    assert got.path == "/hooks/shuzhi"
    assert got.headers["content-type"] == "application/json; charset=utf-8"
    assert got.headers["x-shuzhi-event"] == "problem.assigned"
    assert got.headers["x-shuzhi-delivery"] == str(sent.id)
    stamp = got.headers["x-shuzhi-timestamp"]
    assert stamp == frozen.moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = got.headers["x-shuzhi-signature"]
    assert verify_signature(secret, stamp, got.body, signature, now=frozen.moment)
    assert not verify_signature("wrong", stamp, got.body, signature, now=frozen.moment)
    assert json.loads(got.body) == {
        "event": "problem.assigned",
        "id": sent.id,
        "created_at": stamp,
        "data": PAYLOAD,
    }
    assert "窨井盖缺失".encode() in got.body  # UTF-8, not \u escapes
    assert (sent.state, sent.attempts, sent.last_status) == ("delivered", 1, 200)
    assert sent.last_error == ""
    assert sent.delivered_at == frozen.moment
    assert service.run_due(world.database).handled == 0  # nothing is sent twice
    assert webhook_id == sent.webhook_id


def test_a_failing_endpoint_is_retried_after_a_doubling_wait(world: World, frozen: Frozen) -> None:
    start = frozen.moment
    with receiving(statuses=[500, 503]) as endpoint:
        _, secret = add_webhook(world.database, endpoint.url)
        publish(world.database)
        assert service.run_due(world.database).retrying == 1
        first = only_delivery(world.database)
        assert (first.state, first.attempts, first.last_status) == ("pending", 1, 500)
        assert first.last_error == "HTTP 500: refused with 500"
        assert first.next_at == start + timedelta(seconds=30)  # webhook_backoff_seconds

        frozen.advance(29)
        assert service.run_due(world.database).handled == 0  # not yet
        frozen.advance(1)
        assert service.run_due(world.database).retrying == 1
        second = only_delivery(world.database)
        assert (second.attempts, second.last_status) == (2, 503)
        assert second.next_at == start + timedelta(seconds=30 + 60)  # doubled

        frozen.advance(60)
        assert service.run_due(world.database).delivered == 1
        assert len(endpoint.received) == 3
    done = only_delivery(world.database)
    assert (done.state, done.attempts, done.last_status) == ("delivered", 3, 200)
    # the same body every time, signed afresh at each attempt
    assert len({item.body for item in endpoint.received}) == 1
    stamps = [item.headers["x-shuzhi-timestamp"] for item in endpoint.received]
    assert len(set(stamps)) == 3
    for item in endpoint.received:
        assert verify_signature(
            secret,
            item.headers["x-shuzhi-timestamp"],
            item.body,
            item.headers["x-shuzhi-signature"],
            tolerance_seconds=None,
        )


def test_a_dead_endpoint_is_given_up_after_the_last_attempt(world: World, frozen: Frozen) -> None:
    settings = load_settings(loop={"webhook_attempts": 3, "webhook_backoff_seconds": 10})
    add_webhook(world.database, f"http://127.0.0.1:{closed_port()}/hook")
    publish(world.database)
    waits = []
    for _ in range(2):
        assert service.run_due(world.database, settings=settings).retrying == 1
        pending = only_delivery(world.database)
        assert pending.state == "pending" and pending.last_status is None
        assert pending.last_error == "connection refused"
        waits.append((pending.next_at - frozen.moment).total_seconds())
        frozen.advance(waits[-1])
    assert waits == [10, 20]
    assert service.run_due(world.database, settings=settings).failed == 1
    given_up = only_delivery(world.database)
    assert (given_up.state, given_up.attempts, given_up.last_error) == (
        "failed",
        3,
        "connection refused",
    )
    frozen.advance(3600)
    assert service.run_due(world.database, settings=settings).handled == 0


def test_a_redirect_is_not_followed(world: World) -> None:
    with receiving(statuses=[302]) as endpoint:
        add_webhook(world.database, endpoint.url)
        publish(world.database)
        assert service.run_due(world.database).retrying == 1
        assert [item.path for item in endpoint.received] == ["/hooks/shuzhi"]
    sent = only_delivery(world.database)
    assert sent.last_status == 302
    assert "redirect" in sent.last_error and "not followed" in sent.last_error


def test_a_slow_endpoint_times_out(world: World) -> None:
    settings = load_settings(loop={"webhook_timeout_seconds": 0.2})
    with receiving(hold=True) as endpoint:
        add_webhook(world.database, endpoint.url)
        publish(world.database)
        assert service.run_due(world.database, settings=settings).retrying == 1
    assert only_delivery(world.database).last_error == "no answer within 0.2 s"


def test_a_delivery_that_cannot_be_sent_is_recorded_not_raised(world: World) -> None:
    with receiving() as endpoint:
        add_webhook(world.database, endpoint.url)
        publish(world.database, "bad\r\nevent")  # no header can carry it
        assert service.run_due(world.database).retrying == 1
        assert endpoint.received == []
    assert only_delivery(world.database).last_error.startswith("ValueError: ")


def test_publishing_never_waits_for_an_endpoint(world: World) -> None:
    """The caller's change commits without any call: a dead endpoint changes nothing."""
    with receiving() as endpoint:
        add_webhook(world.database, f"http://127.0.0.1:{closed_port()}/hook", name="dead")
        add_webhook(world.database, endpoint.url, name="alive")
        assert publish(world.database) == 2
        assert endpoint.received == []  # sent by the job, not by the change
        assert [d.state for d in deliveries(world.database)] == ["pending", "pending"]


def test_no_transaction_is_held_while_an_endpoint_answers(world: World) -> None:
    """While the worker waits on an endpoint, another writer commits: were the worker
    holding the store's write lock, that writer would wait for the endpoint."""
    with receiving(hold=True) as endpoint:
        add_webhook(world.database, endpoint.url)
        publish(world.database)
        worker = threading.Thread(target=service.run_due, args=(world.database,))
        worker.start()
        assert endpoint.arrived.wait(WAIT_S)
        wrote = threading.Event()

        def write() -> None:
            publish(world.database, "problem.closed")
            wrote.set()

        writer = threading.Thread(target=write)
        writer.start()
        committed = wrote.wait(WAIT_S)
        endpoint.release.set()  # only now may the endpoint answer
        worker.join(WAIT_S)
        writer.join(WAIT_S)
        assert committed
    first, second = deliveries(world.database)
    assert (first.state, second.state) == ("delivered", "pending")


def test_two_workers_never_send_a_delivery_twice(world: World) -> None:
    with receiving() as endpoint:
        add_webhook(world.database, endpoint.url)
        for index in range(12):
            publish(world.database, "problem.assigned", {"n": index})
        start = threading.Barrier(2)
        runs = []

        def work() -> None:
            start.wait(WAIT_S)
            runs.append(service.run_due(world.database))

        workers = [threading.Thread(target=work) for _ in range(2)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(WAIT_S)
        sent = endpoint.deliveries()
    ids = [str(item.id) for item in deliveries(world.database)]
    assert sorted(sent, key=int) == ids  # each once
    assert sum(run.delivered for run in runs) == 12
    assert all(item.state == "delivered" for item in deliveries(world.database))


def test_a_lapsed_claim_is_taken_over_and_its_first_holder_records_nothing(
    world: World, frozen: Frozen
) -> None:
    add_webhook(world.database, "http://127.0.0.1:9/hook")
    publish(world.database)
    delivery_id = only_delivery(world.database).id
    lease = timedelta(seconds=60)
    first = service._claim(world.database, delivery_id, lease)
    assert first is not None
    assert service._claim(world.database, delivery_id, lease) is None  # held
    assert only_delivery(world.database).state == "sending"
    frozen.advance(61)  # the first worker died, say
    second = service._claim(world.database, delivery_id, lease)
    assert second is not None
    settings = load_settings()
    assert service._record(world.database, first, 200, "", settings) is None
    assert service._record(world.database, second, 200, "", settings) == "delivered"
    assert only_delivery(world.database).attempts == 1


def test_the_test_event_is_sent_at_once(world: World) -> None:
    with receiving() as endpoint:
        webhook_id, secret = add_webhook(world.database, endpoint.url, events=["problem.closed"])
        delivery = service.send_test(world.database, actor=SYSTEM, webhook_id=webhook_id)
        (got,) = endpoint.received
    assert delivery.state == "delivered" and delivery.event == "notify.test"
    assert got.headers["x-shuzhi-event"] == "notify.test"
    assert verify_signature(
        secret, got.headers["x-shuzhi-timestamp"], got.body, got.headers["x-shuzhi-signature"]
    )


def test_the_worker_runs_the_delivery_job(world: World) -> None:
    jobs = {job.name: job.run for job in plugins.jobs()}
    with receiving() as endpoint:
        add_webhook(world.database, endpoint.url)
        publish(world.database)
        assert jobs["notify.deliver"](world.database, "host:1") == 1
        assert len(endpoint.received) == 1


def test_a_rotated_secret_signs_beside_the_new_one_until_the_overlap_ends(
    world: World, frozen: Frozen
) -> None:
    def delivered_with(webhook_id: int) -> tuple[str, str, bytes]:
        publish(world.database, "problem.assigned", PAYLOAD)
        assert service.run_due(world.database).delivered == 1
        got = endpoint.received[-1]
        return got.headers["x-shuzhi-signature"], got.headers["x-shuzhi-timestamp"], got.body

    def rotate(webhook_id: int, hours: int) -> str:
        with world.database.transaction() as session:
            return service.rotate_secret(
                session,
                actor=SYSTEM,
                webhook_id=webhook_id,
                settings=load_settings(loop={"webhook_overlap_hours": hours}),
            )[1]

    with receiving() as endpoint:
        webhook_id, old = add_webhook(world.database, endpoint.url)
        new = rotate(webhook_id, 24)
        header, stamp, body = delivered_with(webhook_id)
        assert header.count("sha256=") == 2
        for secret in (new, old):  # a receiver on either secret accepts it
            assert verify_signature(secret, stamp, body, header, now=frozen.moment)
        assert not verify_signature("wrong", stamp, body, header, now=frozen.moment)
        assert verify_signature(new, stamp, body, header.split(",")[0], now=frozen.moment)

        with world.database.session() as session:
            hook = session.get(Webhook, webhook_id)
            assert queries.old_secret_until(hook) == frozen.moment + timedelta(hours=24)
        frozen.advance(24 * 3600 + 1)  # the overlap is over: the new secret alone
        with world.database.session() as session:
            assert queries.old_secret_until(session.get(Webhook, webhook_id)) is None
        header, stamp, body = delivered_with(webhook_id)
        assert header.count("sha256=") == 1
        assert verify_signature(new, stamp, body, header, now=frozen.moment)
        assert not verify_signature(old, stamp, body, header, now=frozen.moment)

        newest = rotate(webhook_id, 0)  # no overlap: the old secret stops at once
        header, stamp, body = delivered_with(webhook_id)
        assert header.count("sha256=") == 1
        assert verify_signature(newest, stamp, body, header, now=frozen.moment)
        assert not verify_signature(new, stamp, body, header, now=frozen.moment)
