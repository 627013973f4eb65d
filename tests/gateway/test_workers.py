"""A grant's limits hold across server workers (issue 4, §6): two OS processes serve
signed calls for the same grants against the same SQLite store, each knowing only what
the store tells it, and together they answer no more than the limits allow."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from shuzhi.core import clock
from shuzhi.gateway.models import Usage
from tests.gateway.data import CODE, Gateway
from tests.gateway.test_ledger import entries, verification

ROWS_PER_DAY = 20  # the health system's grant, read two rows a call
PER_SECOND = 5  # the police system's grant, read one row a call
CALLS = 12  # health calls of each worker; half as many police calls

# A server worker's part of a read, without the HTTP layer: `calls.serve` with the records
# operation, on the store and data directory the environment names. Both workers
# pin their clock to the same second (given by the test), so that every call falls in the
# one window of requests a second and the one day; a signed date is the real time, which
# is within the clock skew of it. They start together when the test says go, each warmed
# up by a call that no limit counts.
WORKER = r"""
import json, secrets, sys
from datetime import datetime

from shuzhi.client import Client
from shuzhi.core import clock
from shuzhi.core.db import get_database
from shuzhi.core.settings import get_settings
from shuzhi.gateway import calls, reads
from shuzhi.lake.queries import lake_of

moment = datetime.fromisoformat(sys.argv[1])
clock.set_clock(lambda: moment)
plan = json.loads(sys.argv[2])
settings, db = get_settings(), get_database()
lake = lake_of(settings)


def refuse(exc):
    problem = {"type": f"/problems/{exc.slug}", "status": exc.status, "detail": exc.detail}
    return calls.Reply(exc.status, calls.json_body(problem), "application/problem+json")


def serve(key, secret, path, query, operation, target, work):
    signed = Client("http://worker", key=key, secret=secret).signed_headers("GET", path, query)
    call = calls.Call(
        method="GET",
        path=path,
        query=query,
        headers={name.lower(): value for name, value in signed.items()},
        body=b"",
        request_id=secrets.token_hex(16),
    )
    return calls.serve(
        db, call, operation=operation, target=target, work=work, refuse=refuse, settings=settings
    )


def read(key, secret, code, limit):
    query = [("limit", str(limit))]

    def work(access, caller, outcome):
        reads.records(
            access, caller, outcome, code=code, params=query, lake=lake, settings=settings
        )

    path = f"/gateway/v1/resources/{code}/records"
    reply = serve(key, secret, path, query, "read", code, work)
    rows = len(json.loads(reply.body)["data"]) if reply.status == 200 else 0
    return [reply.status, rows]


# warm up on a call no limit counts (a consumer's list of its grants)
for key, secret in {tuple(call[:2]) for _, *call in plan}:
    warm = serve(key, secret, "/gateway/v1/grants", [], "grants", None, reads.my_grants)
    assert warm.status == 200, warm.body
print("ready", flush=True)
sys.stdin.readline()
print(json.dumps([[consumer, *read(*call)] for consumer, *call in plan]), flush=True)
"""


def plan(gateway: Gateway) -> list[list[Any]]:
    health, police = gateway.keys["zj_health_app"], gateway.keys["hz_police_app"]
    found: list[list[Any]] = []
    for number in range(CALLS):
        found.append(["zj_health_app", *health, CODE, 2])
        if number % 2:
            found.append(["hz_police_app", *police, CODE, 1])
    return found


def run_workers(gateway: Gateway, count: int) -> list[list[Any]]:
    """Each worker's answers, (consumer, status, rows) in the order it sent them."""
    moment = clock.now().isoformat()
    args = [sys.executable, "-c", WORKER, moment, json.dumps(plan(gateway))]
    workers = [
        subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        answers = []
        for worker in workers:
            out, _ = worker.communicate(timeout=60)
            assert worker.returncode == 0
            answers.append(json.loads(out))
        return answers
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


# two fresh interpreters import the gateway: a few seconds, most of them starting up
@pytest.mark.slow
def test_two_worker_processes_answer_no_more_than_a_grants_limits(gateway: Gateway) -> None:
    health = gateway.grant(
        "zj_health_app", decision={"rows_per_day": ROWS_PER_DAY, "requests_per_second": 1000}
    )
    police = gateway.grant("hz_police_app", decision={"requests_per_second": PER_SECOND})

    answers = run_workers(gateway, 2)

    every = [answer for worker in answers for answer in worker]
    assert Counter((consumer, status) for consumer, status, _ in every) == {
        ("zj_health_app", 200): ROWS_PER_DAY // 2,
        ("zj_health_app", 429): 2 * CALLS - ROWS_PER_DAY // 2,
        ("hz_police_app", 200): PER_SECOND,
        ("hz_police_app", 429): CALLS - PER_SECOND,
    }
    assert sum(rows for consumer, _, rows in every if consumer == "zj_health_app") == ROWS_PER_DAY
    # the store's counters say the same, and every call, answered or refused, is logged
    with gateway.db.session() as session:
        counted = {
            (row.grant_id, row.window[:1]): (row.requests, row.rows)
            for row in session.scalars(select(Usage))
        }
    assert counted[(health, "d")] == (ROWS_PER_DAY // 2, ROWS_PER_DAY)
    assert counted[(police, "s")] == (PER_SECOND, 0)
    logged = Counter(
        (entry["consumer_code"], entry["status"])
        for entry in entries(gateway)
        if entry["operation"] == "read"
    )
    assert logged == Counter((consumer, status) for consumer, status, _ in every)
    assert verification(gateway).intact
