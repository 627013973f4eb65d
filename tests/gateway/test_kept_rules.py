"""The access rules a server process keeps between calls (``gateway.access``): every
change to them replaces the access stamp, and a call decided on rules that changed
before its access-log entry committed is decided again, never answered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, update

from shuzhi.catalog.models import Resource, ResourceField
from shuzhi.core import stamps
from shuzhi.core.db import Database
from shuzhi.core.permissions import SYSTEM
from shuzhi.gateway import calls, reads, service
from shuzhi.gateway.models import Grant
from shuzhi.orgs.models import Department
from shuzhi.regions.models import Region
from tests.api.support import assert_problem
from tests.gateway.data import CODE, Gateway
from tests.gateway.test_ledger import entries, verification
from tests.gateway.test_signing import RECORDS, send


def stamp(db: Database) -> int:
    with db.session() as session:
        return stamps.read(session, stamps.ACCESS)


def changed_by(db: Database, change: Callable[[Any], Any]) -> bool:
    before = stamp(db)
    with db.transaction() as session:
        change(session)
    return stamp(db) != before


def test_every_kind_of_access_rule_replaces_the_stamp(gateway: Gateway) -> None:
    db = gateway.db
    grant_id = gateway.grant("zj_health_app")
    key = gateway.keys["zj_health_app"][0]

    def suspend(session: Any) -> None:
        service.change_grant(
            session, actor=SYSTEM, grant_id=grant_id, name="suspend", comment="核查中"
        )

    def retitle(session: Any) -> None:
        field = session.scalars(
            select(ResourceField)
            .join(Resource)
            .where(Resource.code == CODE, ResourceField.name == "age")
        ).one()
        field.title = "年龄(周岁)"

    def new_region(session: Any) -> None:
        session.add(
            Region(
                code="330199",
                name="测试区",
                level="county",
                parent_code="330100",
                path="/330000/330100/330199/",
            )
        )

    assert changed_by(db, suspend)
    assert changed_by(db, lambda s: service.revoke_credential(s, actor=SYSTEM, access_key=key))
    assert changed_by(db, retitle)
    assert changed_by(db, new_region)
    # an UPDATE statement through the ORM, not only objects flushed
    assert changed_by(db, lambda s: s.execute(update(Grant).values(rows_per_day=5)))
    # what decides nobody's access leaves it alone
    assert not changed_by(
        db, lambda s: s.execute(update(Department).values(name=Department.name + ""))
    )


def test_a_rolled_back_change_keeps_the_stamp(gateway: Gateway) -> None:
    grant_id = gateway.grant("zj_health_app")
    before = stamp(gateway.db)
    with pytest.raises(RuntimeError), gateway.db.transaction() as session:
        service.change_grant(
            session, actor=SYSTEM, grant_id=grant_id, name="suspend", comment="核查中"
        )
        raise RuntimeError("changed my mind")
    assert stamp(gateway.db) == before


def test_a_call_decided_before_its_grant_was_suspended_is_decided_again(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider suspends the grant while a read runs: the rows it read never leave;
    the call is decided again on the new rules and refused, and only that is logged."""
    grant_id = gateway.grant("zj_health_app")
    assert send(gateway, "zj_health_app").status_code == 200  # the rules are now kept
    real = reads.records
    attempts: list[int] = []

    def suspended_meanwhile(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        attempts.append(1)
        if len(attempts) == 1:
            with gateway.db.transaction() as session:
                service.change_grant(
                    session, actor=SYSTEM, grant_id=grant_id, name="suspend", comment="核查中"
                )

    monkeypatch.setattr(reads, "records", suspended_meanwhile)
    before = len(entries(gateway))
    response = send(gateway, "zj_health_app")
    assert_problem(response, 403, "grant-inactive")
    assert len(attempts) == 1  # the second decision stops at the grant, before any read
    logged = entries(gateway)[before:]
    assert [(entry["status"], entry["outcome"], entry["rows"]) for entry in logged] == [
        (403, "grant-inactive", 0)
    ]
    assert verification(gateway).intact


def test_a_call_whose_rules_keep_changing_is_refused_and_logged(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway.grant("zj_health_app")
    monkeypatch.setattr(calls, "same", lambda _stamp, _seen: False)
    before = len(entries(gateway))
    response = send(gateway, "zj_health_app")
    assert_problem(response, 503, "rules-changing")
    logged = entries(gateway)[before:]
    assert [(entry["status"], entry["outcome"], entry["path"]) for entry in logged] == [
        (503, "rules-changing", RECORDS)
    ]
    assert verification(gateway).intact
    monkeypatch.undo()
    # nothing of the refused attempts was kept: the same nonce-free call works now
    assert send(gateway, "zj_health_app").status_code == 200


def test_a_process_that_kept_the_rules_sees_a_change_made_by_another(
    gateway: Gateway,
) -> None:
    """Another process (here: another engine on the same file) narrows the grant's
    fields; this process's next call answers with the new fields only."""
    grant_id = gateway.grant("zj_health_app")
    first = send(gateway, "zj_health_app").json()
    assert "full_name" in first["fields"]
    other = Database(gateway.db.url)
    try:
        with other.transaction() as session:
            grant = session.get(Grant, grant_id)
            assert grant is not None
            grant.fields = {"age": "clear", "gender": "clear"}
    finally:
        other.dispose()
    assert send(gateway, "zj_health_app").json()["fields"] == ["gender", "age"]
    assert_problem(
        send(gateway, "zj_health_app", params=[("fields", "full_name")]), 403, "field-not-granted"
    )


@pytest.mark.parametrize("threads", [1, 3])
def test_a_worker_works_on_as_many_gateway_calls_at_once_as_it_has_threads_for_them(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    """``gateway.threads``: the other calls wait their turn on the event loop."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    gateway.grant("zj_health_app")
    state = gateway.http.app.state
    state.settings = state.settings.model_copy(
        update={"gateway": state.settings.gateway.model_copy(update={"threads": threads})}
    )
    real = reads.records
    lock = threading.Lock()
    running, most = [0], [0]

    def slow(*args: Any, **kwargs: Any) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.3)
            real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(reads, "records", slow)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: send(gateway, "zj_health_app"), range(4)))
    assert [answer.status_code for answer in answers] == [200] * 4
    assert most[0] == threads
