"""A call whose access-log entry cannot be written fails (issue 4, §8): the store refuses
the insert, the caller gets a 500 problem with none of the resource's data, and nothing
of that transaction is kept, neither in the store nor in what the process remembers of it.
Once the store accepts entries again, the next call is served and the chain verifies."""

from __future__ import annotations

import json
import secrets
from typing import Any

from sqlalchemy import text

from tests.api.support import assert_problem
from tests.cli.test_cli import cli
from tests.gateway.data import PEOPLE, Gateway
from tests.gateway.test_ledger import entries, verification
from tests.gateway.test_signing import send

# a day's worth of rows in one page: had the failed call's charge been kept anywhere, the
# next call would be refused for the rest of the day
PAGE = 5
REFUSE_ENTRIES = (
    "CREATE TRIGGER refuse_entries BEFORE INSERT ON gateway_access_log "
    "BEGIN SELECT RAISE(ABORT, 'disk full: the access log takes no more entries'); END"
)


def execute(gateway: Gateway, sql: str) -> None:
    with gateway.db.transaction() as session:
        session.execute(text(sql))


def kept(gateway: Gateway, access_key: str) -> dict[str, Any]:
    """Everything an access-log transaction writes."""
    with gateway.db.session() as session:

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in session.execute(text(sql), {"key": access_key})]

        return {
            "nonces": rows("SELECT nonce FROM gateway_nonce WHERE access_key = :key"),
            "usage": rows('SELECT grant_id, "window", requests, "rows" FROM gateway_usage'),
            "entries": rows("SELECT seq, hash FROM gateway_access_log"),
            "head": rows('SELECT seq, "hash" FROM gateway_chain_head'),
            "last_used": rows(
                "SELECT last_used_at FROM gateway_credential WHERE access_key = :key"
            ),
        }


def resource_data(body: bytes) -> list[str]:
    """Values of the resource's rows found in an answer (those no problem text could hold
    by chance)."""
    found = body.decode(errors="replace")
    names = ("id_card", "full_name", "mobile", "address", "born")
    return [person[name] for person in PEOPLE for name in names if person[name] in found]


def assert_failed(answer: Any) -> None:
    problem = assert_problem(answer, 500, "internal")
    assert set(problem) == {"type", "title", "status", "detail", "request_id"}
    assert problem["request_id"] == answer.headers["x-request-id"]
    assert resource_data(answer.content) == []
    assert "disk full" not in answer.text  # the store's message is for the server's log


def test_a_call_whose_entry_cannot_be_written_fails_and_keeps_nothing(gateway: Gateway) -> None:
    grant_id = gateway.grant(
        "zj_health_app", decision={"rows_per_day": PAGE, "requests_per_second": 1000}
    )
    key = gateway.keys["zj_health_app"][0]
    # one call refused (no grant) and logged, so that the chain has a head to keep
    assert send(gateway, "hz_police_app").status_code == 403
    before = kept(gateway, key)
    assert before["last_used"] == [(None,)] and len(before["entries"]) == 1

    execute(gateway, REFUSE_ENTRIES)
    nonce = secrets.token_hex(16)
    assert_failed(send(gateway, "zj_health_app", params=[("limit", PAGE)], nonce=nonce))
    # a refusal that cannot be logged fails the same way, rather than answering unlogged
    assert_failed(send(gateway, "hz_police_app"))
    assert kept(gateway, key) == before

    execute(gateway, "DROP TRIGGER refuse_entries")
    # the same signed call again: its nonce was not used up, nor the day's rows
    answer = send(gateway, "zj_health_app", params=[("limit", PAGE)], nonce=nonce)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["data"]) == PAGE
    after = kept(gateway, key)
    assert after["nonces"] == [(nonce,)]
    assert sorted((window[:1], requests, rows) for _, window, requests, rows in after["usage"]) == [
        ("d", 1, PAGE),
        ("s", 1, 0),
    ]
    assert {grant for grant, *_ in after["usage"]} == {grant_id}
    assert after["last_used"] != [(None,)]  # the successful call is the key's last use
    logged = entries(gateway)
    assert [(entry["seq"], entry["status"]) for entry in logged] == [(1, 403), (2, 200)]
    assert logged[1]["request_id"] == answer.headers["x-request-id"]
    # the day's rows are used up now, by the call that was answered
    assert send(gateway, "zj_health_app", params=[("limit", 1)]).status_code == 429

    assert verification(gateway).intact
    verified = json.loads(cli("audit", "verify", "--json").stdout)
    assert verified == {"intact": True, "entries": 3, "first_bad": None, "reason": None}
