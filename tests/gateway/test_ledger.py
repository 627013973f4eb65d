"""The access log as a hash chain: it verifies after allowed and refused calls, and a
changed, removed or re-hashed entry is named, by ``ledger.verify`` and by the audit API.

``entries`` is how the other gateway test modules read the log."""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from shuzhi.core import clock
from shuzhi.core.db import Database
from shuzhi.gateway import ledger
from shuzhi.gateway.models import AccessLog, ChainHead
from tests.api.support import auth
from tests.conftest import World
from tests.gateway.data import CODE, Gateway
from tests.gateway.test_signing import send

VERIFY = "/api/v1/audit/access-log/verify"
COLUMNS = [column.name for column in AccessLog.__table__.columns]


def entries(gateway: Gateway) -> list[dict[str, Any]]:
    """Every access-log entry, oldest first, as plain values."""
    with gateway.db.session() as session:
        return [
            {name: getattr(row, name) for name in COLUMNS}
            for row in session.scalars(select(AccessLog).order_by(AccessLog.seq))
        ]


def verification(gateway: Gateway) -> ledger.Verification:
    with gateway.db.session() as session:
        return ledger.verify(session)


def execute(gateway: Gateway, sql: str, **values: Any) -> None:
    with gateway.db.transaction() as session:
        session.execute(text(sql), values)


def mixed_calls(gateway: Gateway) -> list[int]:
    """Allowed and refused calls of every kind; returns their statuses in order."""
    gateway.grant("zj_health_app", fields=["gender", "age"])
    health = gateway.client("zj_health_app", purpose="330000-QT-0001", user="wang.li")
    statuses = []
    statuses.append(send(gateway, "zj_health_app", params=[("limit", "3")]).status_code)
    statuses.append(send(gateway, "zj_health_app", params=[("fields", "full_name")]).status_code)
    statuses.append(send(gateway, "hz_police_app").status_code)  # no grant
    statuses.append(send(gateway, "zj_health_app", secret="wrong").status_code)
    statuses.append(send(gateway, "zj_health_app", key="SZNOSUCHKEY000000000").status_code)
    statuses.append(gateway.http.get(f"/gateway/v1/resources/{CODE}/records").status_code)
    statuses.append(send(gateway, "zj_health_app", "/gateway/v1/grants").status_code)
    assert len(health.records(CODE, gender="女", limit=500)["data"]) == 20
    statuses.append(200)
    return statuses


def test_the_chain_is_intact_after_allowed_and_refused_calls(any_gateway: Gateway) -> None:
    statuses = mixed_calls(any_gateway)
    assert statuses == [200, 403, 403, 401, 401, 401, 200, 200]
    found = entries(any_gateway)
    assert [entry["status"] for entry in found] == statuses
    assert [entry["seq"] for entry in found] == list(range(1, len(statuses) + 1))
    assert verification(any_gateway) == ledger.Verification(True, len(statuses))


def test_a_chain_of_several_entries_links_each_to_the_one_before(any_gateway: Gateway) -> None:
    any_gateway.grant("zj_health_app")
    for limit in range(1, 6):
        assert send(any_gateway, "zj_health_app", params=[("limit", limit)]).status_code == 200
    found = entries(any_gateway)
    assert [entry["rows"] for entry in found] == [1, 2, 3, 4, 5]
    assert found[0]["prev_hash"] == "0" * 64
    for before, after in itertools.pairwise(found):
        assert after["prev_hash"] == before["hash"]
    assert len({entry["hash"] for entry in found}) == 5
    with any_gateway.db.session() as session:
        head = session.get(ChainHead, 1)
        assert head is not None
        assert (head.seq, head.hash) == (5, found[-1]["hash"])
    assert verification(any_gateway).intact


def test_an_entry_hash_is_sha256_of_the_previous_hash_and_the_canonical_entry(
    gateway: Gateway,
) -> None:
    gateway.grant("zj_health_app")
    send(gateway, "zj_health_app", params=[("limit", "2")])
    send(gateway, "zj_health_app", params=[("limit", "0")])
    for entry in entries(gateway):
        covered = {
            name: value.isoformat() if hasattr(value, "isoformat") else value
            for name, value in entry.items()
            if name not in ("prev_hash", "hash")
        }
        document = json.dumps(covered, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        expected = hashlib.sha256(f"{entry['prev_hash']}\n{document}".encode()).hexdigest()
        assert entry["hash"] == expected


def test_changing_one_entry_is_found(any_gateway: Gateway) -> None:
    mixed_calls(any_gateway)
    total = len(entries(any_gateway))
    execute(any_gateway, "UPDATE gateway_access_log SET rows = 999 WHERE seq = 3")
    result = verification(any_gateway)
    assert not result.intact
    assert result.first_bad == 3
    assert result.entries == 2
    assert result.reason and "content" in result.reason
    assert total == 8


def test_deleting_the_last_entry_is_found(any_gateway: Gateway) -> None:
    mixed_calls(any_gateway)
    last = entries(any_gateway)[-1]["seq"]
    execute(any_gateway, "DELETE FROM gateway_access_log WHERE seq = :seq", seq=last)
    result = verification(any_gateway)
    assert not result.intact
    assert result.first_bad == last
    assert result.entries == last - 1


def test_deleting_an_entry_in_the_middle_is_found(gateway: Gateway) -> None:
    mixed_calls(gateway)
    execute(gateway, "DELETE FROM gateway_access_log WHERE seq = 4")
    result = verification(gateway)
    assert (result.intact, result.first_bad, result.entries) == (False, 4, 3)


def test_re_hashing_a_changed_entry_breaks_the_link_to_the_next(gateway: Gateway) -> None:
    mixed_calls(gateway)
    found = entries(gateway)
    forged = {**found[2], "outcome": "ok", "status": 200}
    forged_hash = ledger.entry_hash(forged["prev_hash"], forged)
    execute(
        gateway,
        "UPDATE gateway_access_log SET outcome = 'ok', status = 200, hash = :hash WHERE seq = 3",
        hash=forged_hash,
    )
    result = verification(gateway)
    assert (result.intact, result.first_bad) == (False, 4)
    assert result.reason and "link" in result.reason


# a value each column can take that differs from what the calls wrote
CHANGES = {
    "at": ("at", "2001-01-01 00:00:00.000000"),
    "request_id": ("request_id", "forged"),
    "consumer_code": ("consumer_code", "hz_police_app"),
    "access_key": ("access_key", "SZFORGED"),
    "end_user": ("end_user", "someone.else"),
    "purpose": ("purpose", "another purpose"),
    "operation": ("operation", "verify"),
    "target": ("target", "another"),
    "grant_id": ("grant_id", 77),
    "method": ("method", "POST"),
    "path": ("path", "/elsewhere"),
    "fields": ("fields", '["id_card"]'),
    "masking": ("masking", '{"id_card": "clear"}'),
    "rows": ("rows", 39),
    "lookup": ("lookup", "f" * 32),
    "status": ("status", 500),
    "outcome": ("outcome", "no-grant"),
    "latency_ms": ("latency_ms", 123456),
    "response_sha256": ("response_sha256", "f" * 64),
}


def test_every_column_but_the_hashes_is_covered() -> None:
    assert set(CHANGES) | {"seq", "prev_hash", "hash"} == set(COLUMNS)


@pytest.mark.parametrize("column", sorted(CHANGES))
def test_changing_any_column_is_found(gateway: Gateway, column: str) -> None:
    gateway.grant("zj_health_app")
    for limit in (1, 2, 3):
        send(gateway, "zj_health_app", params=[("limit", limit)], purpose="p", user="u")
    name, value = CHANGES[column]
    execute(gateway, f"UPDATE gateway_access_log SET {name} = :value WHERE seq = 2", value=value)
    result = verification(gateway)
    assert (result.intact, result.first_bad) == (False, 2)


def test_changing_a_sequence_number_is_found(gateway: Gateway) -> None:
    mixed_calls(gateway)
    execute(gateway, "UPDATE gateway_access_log SET seq = 100 WHERE seq = 8")
    result = verification(gateway)
    assert (result.intact, result.first_bad) == (False, 8)


def test_an_empty_log_is_intact(gateway: Gateway) -> None:
    assert verification(gateway) == ledger.Verification(True, 0)


def test_the_audit_api_reports_the_chain(any_gateway: Gateway) -> None:
    world = any_gateway.world
    mixed_calls(any_gateway)
    answer = any_gateway.http.get(VERIFY, headers=auth(world, "auditor"))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"intact": True, "entries": 8, "first_bad": None, "reason": None}

    execute(any_gateway, "UPDATE gateway_access_log SET rows = 0 WHERE seq = 1")
    answer = any_gateway.http.get(VERIFY, headers=auth(world, "auditor"))
    report = answer.json()
    assert (report["intact"], report["first_bad"], report["entries"]) == (False, 1, 0)
    assert report == {
        "intact": False,
        "entries": 0,
        "first_bad": 1,
        "reason": verification(any_gateway).reason,
    }


def test_the_audit_api_reports_a_removed_last_entry(gateway: Gateway) -> None:
    mixed_calls(gateway)
    execute(gateway, "DELETE FROM gateway_access_log WHERE seq = 8")
    report = gateway.http.get(VERIFY, headers=auth(gateway.world, "auditor")).json()
    assert (report["intact"], report["first_bad"], report["entries"]) == (False, 8, 7)


@pytest.mark.parametrize("user", ["viewer", "gat_officer", "wjw_officer"])
def test_the_audit_api_needs_audit_read(gateway: Gateway, user: str) -> None:
    mixed_calls(gateway)
    answer = gateway.http.get(VERIFY, headers=auth(gateway.world, user))
    assert answer.status_code == 403, answer.text
    assert "intact" not in answer.text
    listing = gateway.http.get("/api/v1/audit/access-log", headers=auth(gateway.world, user))
    assert listing.status_code == 403
    assert gateway.http.get(VERIFY).status_code == 401


def test_the_audit_api_lists_the_entries(gateway: Gateway) -> None:
    mixed_calls(gateway)
    found = entries(gateway)
    answer = gateway.http.get(
        "/api/v1/audit/access-log", headers=auth(gateway.world, "auditor")
    ).json()
    assert answer["count"] == len(found)
    assert [item["seq"] for item in answer["data"]] == [entry["seq"] for entry in found][::-1]
    assert [item["hash"] for item in answer["data"]] == [entry["hash"] for entry in found][::-1]
    refused = gateway.http.get(
        "/api/v1/audit/access-log?outcome=no-grant", headers=auth(gateway.world, "auditor")
    ).json()
    assert refused["count"] == 1
    assert refused["data"][0]["status"] == 403


def test_entries_keep_the_server_time(gateway: Gateway) -> None:
    gateway.grant("zj_health_app")
    send(gateway, "zj_health_app")
    [entry] = entries(gateway)
    assert abs(clock.now() - entry["at"]) < timedelta(minutes=1)


def test_concurrent_calls_make_one_unbroken_chain(any_gateway: Gateway) -> None:
    any_gateway.grant("zj_health_app", decision={"requests_per_second": 10_000})
    any_gateway.grant("hz_police_app", decision={"requests_per_second": 10_000})

    def calls(consumer: str) -> list[int]:
        return [
            send(any_gateway, consumer, params=[("limit", limit)]).status_code
            for limit in (1, 2, 3, 4, 5)
        ]

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(calls, ["zj_health_app", "hz_police_app"] * 2))
    assert statuses == [[200] * 5] * 4
    found = entries(any_gateway)
    assert [entry["seq"] for entry in found] == list(range(1, 21))
    assert sorted(entry["rows"] for entry in found) == sorted([1, 2, 3, 4, 5] * 4)
    assert verification(any_gateway) == ledger.Verification(True, 20)


def plain_entry(request_id: str) -> dict[str, Any]:
    """An entry as a call would append it."""
    return {
        "at": clock.now(),
        "request_id": request_id,
        "consumer_code": "zj_health_app",
        "access_key": "SZTEST",
        "end_user": None,
        "purpose": None,
        "operation": "read",
        "target": CODE,
        "grant_id": None,
        "method": "GET",
        "path": f"/gateway/v1/resources/{CODE}/records",
        "fields": [],
        "masking": {},
        "rows": 0,
        "lookup": None,
        "status": 200,
        "outcome": "ok",
        "latency_ms": 1,
        "response_sha256": "0" * 64,
    }


def wait_for_a_blocked_writer(db: Database, *, seconds: float = 10) -> None:
    """Until another PostgreSQL session of this database waits on a lock (or time runs out:
    a writer that does not block at all is fine too)."""
    ends = time.monotonic() + seconds
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while time.monotonic() < ends:
        with db.engine.connect() as connection:
            if connection.execute(query).scalar():
                return
        time.sleep(0.01)


@pytest.mark.postgres
def test_the_first_entries_written_at_once_are_both_kept(postgres_world: World) -> None:
    """The first appends of a new log must queue on the chain head, not race to create it."""
    db = postgres_world.database

    def append_alone(request_id: str) -> int:
        with db.transaction() as session:
            ledger.append(session, **plain_entry(request_id))
        return 0

    pool = ThreadPoolExecutor(max_workers=1)
    try:
        with db.transaction() as session:
            ledger.append(session, **plain_entry("first"))
            second = pool.submit(append_alone, "second")
            wait_for_a_blocked_writer(db)
        second.result(timeout=60)
    finally:
        pool.shutdown(wait=True)
    with db.session() as session:
        assert ledger.verify(session) == ledger.Verification(True, 2)
        found = session.execute(select(AccessLog.seq, AccessLog.request_id).order_by(AccessLog.seq))
        assert [tuple(row) for row in found] == [(1, "first"), (2, "second")]
