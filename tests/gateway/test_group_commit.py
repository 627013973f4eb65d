"""Calls whose access-log transactions are written together (``calls._Committer``):
each still gets its own answer, its own entry in the chain, its own nonce and its own
charge, and the limits hold as if the calls had been counted one by one."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from shuzhi.core.db import Database
from shuzhi.gateway import calls
from shuzhi.gateway.models import Usage
from tests.gateway.data import Gateway
from tests.gateway.test_attacks import move_clock  # noqa: F401 - a fixture
from tests.gateway.test_ledger import entries, verification
from tests.gateway.test_signing import send


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch written; the first write waits a moment inside its
    transaction so that the calls behind it queue up and are written together."""
    sizes: list[int] = []
    real_write = calls._Committer._write
    real_transaction = Database.driver_transaction

    def write(self: Any, batch: list[Any]) -> None:
        sizes.append(len(batch))
        real_write(self, batch)

    @contextmanager
    def slow_first(self: Database) -> Iterator[Any]:
        with real_transaction(self) as driver:
            if len(sizes) == 1:
                time.sleep(0.3)
            yield driver

    monkeypatch.setattr(calls._Committer, "_write", write)
    monkeypatch.setattr(Database, "driver_transaction", slow_first)
    return sizes


def together(count: int, call: Callable[[int], Any]) -> list[Any]:
    """``count`` calls started at once from as many threads; their answers in order."""
    answers: list[Any] = [None] * count
    start = threading.Barrier(count)

    def run(index: int) -> None:
        start.wait()
        answers[index] = call(index)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def usage(gateway: Gateway, grant_id: int) -> dict[str, tuple[int, int]]:
    with gateway.db.session() as session:
        return {
            row.window[:1]: (row.requests, row.rows)
            for row in session.scalars(select(Usage).where(Usage.grant_id == grant_id))
        }


def test_calls_written_together_each_get_their_answer_entry_and_nonce(
    any_gateway: Gateway, batches: list[int]
) -> None:
    gateway = any_gateway
    grant_id = gateway.grant("zj_health_app", decision={"requests_per_second": 1000})
    replayed = secrets.token_hex(16)
    before = len(entries(gateway))

    def call(index: int) -> Any:
        # calls 0 and 1 carry the same nonce: one of them is a replay
        nonce = replayed if index < 2 else None
        return send(gateway, "zj_health_app", params=[("limit", str(1 + index))], nonce=nonce)

    answers = together(12, call)
    assert max(batches) > 1  # some were written together
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 11 + [401]
    refused = next(answer for answer in answers if answer.status_code == 401)
    assert refused.json()["type"] == "/problems/replayed-nonce"
    for index, answer in enumerate(answers):
        if answer.status_code == 200:
            assert len(answer.json()["data"]) == 1 + index
    logged = entries(gateway)[before:]
    assert len(logged) == 12
    assert sorted(entry["status"] for entry in logged) == statuses
    ok_rows = sum(len(answer.json()["data"]) for answer in answers if answer.status_code == 200)
    assert sum(entry["rows"] for entry in logged) == ok_rows
    assert verification(gateway).intact
    # the replay is neither counted nor charged
    assert usage(gateway, grant_id)["d"] == (11, ok_rows)


def test_limits_hold_inside_a_batch(
    any_gateway: Gateway,
    batches: list[int],
    move_clock: Callable[[timedelta], datetime],  # noqa: F811 - the fixture
) -> None:
    gateway = any_gateway
    grant_id = gateway.grant("zj_health_app", decision={"requests_per_second": 5})
    move_clock(timedelta(0))
    answers = together(9, lambda _index: send(gateway, "zj_health_app", params=[("limit", "2")]))
    assert max(batches) > 1
    assert sorted(answer.status_code for answer in answers) == [200] * 5 + [429] * 4
    # the refused calls were counted in the batch's statement and taken back
    assert usage(gateway, grant_id) == {"s": (5, 0), "d": (5, 10)}
    assert verification(gateway).intact


def test_a_call_with_a_nul_in_its_request_fails_nobody_else_in_its_batch(
    gateway: Gateway, batches: list[int]
) -> None:
    """No store keeps NUL in text: the log keeps U+FFFD instead, so one caller's odd
    request cannot fail the transaction it shares with the others."""
    gateway.grant("zj_health_app", decision={"requests_per_second": 1000})
    before = len(entries(gateway))

    def call(index: int) -> Any:
        fields = "full\x00name" if index == 0 else "full_name"
        return send(gateway, "zj_health_app", params=[("fields", fields), ("limit", "1")])

    answers = together(6, call)
    assert max(batches) > 1
    assert answers[0].status_code == 422
    assert [answer.status_code for answer in answers[1:]] == [200] * 5
    logged = entries(gateway)[before:]
    assert len(logged) == 6
    assert ["full\ufffdname"] in [entry["fields"] for entry in logged]
    assert verification(gateway).intact
