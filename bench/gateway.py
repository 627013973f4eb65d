"""Gateway reads under load, side by side with a bare endpoint running the same query.

    .venv/bin/python bench/gateway.py                 # 1M rows, 1/8/32 clients, 10 s each
    .venv/bin/python bench/gateway.py --verify-entries 1000000   # and `audit verify`

The server runs with two uvicorn workers on loopback (bench/gateway_server.py). Clients
are threads with keep-alive connections, each reading 50-row pages of a random county
from a 1-million-row resource:

- **gateway**: `GET /gateway/v1/resources/bench_people/records?region=…&limit=50`, signed
  per request (fresh date and nonce), with the grant check, masking (citizen ID token, name
  and mobile masked), the limits and the hash-chained access log;
- **bare**: `GET /bench/bare?region=…&limit=50`, the same DuckDB query and JSON, nothing
  else: the limit the gateway's checks are measured against.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
CODE = "bench_people"
COUNTIES = [
    "330102", "330105", "330106", "330108", "330109", "330110", "330111", "330112",
    "330122", "330127", "330182", "330203", "330205", "330206", "330211", "330212",
    "330302", "330303", "330304", "330381", "330382", "330402", "330411", "330502",
    "330602", "330702", "330781", "330782", "330802", "330902", "331002", "331102",
]  # fmt: skip


def prepare(work: Path, rows: int) -> dict:
    """The data directory: a published resource of ``rows`` people loaded into the lake,
    a consumer with a key and an unlimited grant. Reused when it exists."""
    state = work / "credential.json"
    os.environ["SHUZHI_DATA_DIR"] = str(work / "data")
    if state.exists():
        # a directory kept from an earlier release: its database takes the new migrations
        from shuzhi.core.db import get_database

        get_database().upgrade("head")
        return json.loads(state.read_text())
    import duckdb

    from shuzhi.catalog import service as catalog
    from shuzhi.catalog.schemas import ResourceCreate
    from shuzhi.core.db import get_database
    from shuzhi.core.permissions import SYSTEM
    from shuzhi.gateway import service as gateway
    from shuzhi.gateway.schemas import ApplicationCreate, ConsumerCreate, Decision
    from shuzhi.lake import service as lake
    from shuzhi.lake.connectors import SourceSpec
    from shuzhi.orgs import service as orgs
    from shuzhi.orgs.schemas import DepartmentCreate
    from shuzhi.regions import service as regions

    parquet = work / "people.parquet"
    counties = "[" + ", ".join(f"'{code}'" for code in COUNTIES) + "]"
    duckdb.connect().execute(
        f"""COPY (
          SELECT lpad(CAST(i AS VARCHAR), 18, '0') AS id_card,
                 ['张', '王', '李', '赵'][1 + i % 4] || ['伟', '芳', '娜', '敏'][1 + (i // 4) % 4]
                   AS full_name,
                 '139' || lpad(CAST(i % 100000000 AS VARCHAR), 8, '0') AS mobile,
                 {counties}[1 + (hash(i) % {len(COUNTIES)})::INT] AS region,
                 CASE WHEN i % 2 = 0 THEN '男' ELSE '女' END AS gender,
                 CAST(18 + i % 70 AS VARCHAR) AS age,
                 strftime(DATE '1950-01-01' + (i % 20000)::INT, '%Y-%m-%d') AS born
          FROM range({rows}) t(i)) TO '{parquet}' (FORMAT parquet)"""
    )
    db = get_database()
    db.upgrade("head")
    with db.transaction() as session:
        regions.load_builtin(session, actor=SYSTEM)
        orgs.sync_builtin_roles(session)
        for code, name in (("zj_gat", "浙江省公安厅"), ("zj_mzt", "浙江省民政厅")):
            orgs.create_department(
                session, actor=SYSTEM, data=DepartmentCreate(code=code, name=name, region="330000")
            )
        fields = [
            ("id_card", "string", "id_card", True, None),
            ("full_name", "string", "name", False, None),
            ("mobile", "string", "phone", False, None),
            ("region", "string", "none", False, "region_code"),
            ("gender", "string", "none", False, None),
            ("age", "integer", "none", False, None),
            ("born", "date", "none", False, None),
        ]
        catalog.create(
            session,
            actor=SYSTEM,
            data=ResourceCreate(
                code=CODE,
                name="基准测试人口库",
                provider="zj_gat",
                system="digital_society",
                sharing="conditional",
                sharing_conditions="仅限基准测试",
                grade="L3",
                region="330000",
                fields=[
                    {"name": n, "type": t, "pii": p, "primary_key": k, "format": f}
                    for n, t, p, k, f in fields
                ],
            ),
        )
        for name in ("submit", "approve"):
            catalog.transition(session, actor=SYSTEM, code=CODE, name=name)
    lake.ingest(db, actor=SYSTEM, code=CODE, source=SourceSpec(location=str(parquet)))
    with db.transaction() as session:
        gateway.create_consumer(
            session,
            actor=SYSTEM,
            data=ConsumerCreate(code="bench_app", name="基准测试系统", department="zj_mzt"),
        )
        credential, secret = gateway.issue_credential(session, actor=SYSTEM, consumer="bench_app")
        application = gateway.apply(
            session,
            actor=SYSTEM,
            data=ApplicationCreate(
                consumer="bench_app",
                resource=CODE,
                fields=[name for name, *_ in fields],
                purpose_code="BENCH-0001",
                purpose="性能基准测试",
                legal_basis="测试",
            ),
        )
        gateway.decide(
            session,
            actor=SYSTEM,
            application_id=application.id,
            approve=True,
            decision=Decision(requests_per_second=10_000, rows_per_day=100_000_000),
        )
        found = {"key": credential.access_key, "secret": secret}
    state.write_text(json.dumps(found))
    return found


def start_server(work: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "SHUZHI_DATA_DIR": str(work / "data"),
        "SHUZHI_LOG__LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.gateway_server:app", "--workers", "2",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--no-access-log"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("the server did not start")


def _cpu_seconds(server: subprocess.Popen | None) -> float:
    """User and system CPU of the server's worker processes so far (Linux /proc)."""
    if server is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    try:
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    except OSError:
        return 0.0
    total = 0
    for pid in [str(server.pid), *children]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def run_load(
    port: int,
    kind: str,
    clients: int,
    seconds: float,
    credential: dict,
    server: subprocess.Popen | None = None,
) -> dict:
    from shuzhi.client import Client

    signer = Client("http://127.0.0.1", key=credential["key"], secret=credential["secret"])
    path = f"/gateway/v1/resources/{CODE}/records" if kind == "gateway" else "/bench/bare"
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        bad = 0
        while time.perf_counter() < stop:
            params = [("region", rng.choice(COUNTIES)), ("limit", "50")]
            headers = signer.signed_headers("GET", path, params) if kind == "gateway" else {}
            started = time.perf_counter()
            connection.request("GET", f"{path}?{urlencode(params)}", headers=headers)
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                bad += 1
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    server_cpu, client_cpu = _cpu_seconds(server), time.process_time()
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    server_cpu, client_cpu = _cpu_seconds(server) - server_cpu, time.process_time() - client_cpu
    latencies.sort()
    return {
        "kind": kind,
        "clients": clients,
        "requests": len(latencies),
        "failed": failures[0],
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
        # CPU per request: what the throughput on two cores comes down to, and less
        # disturbed than the wall clock by whatever else the machine runs
        "server_cpu_ms": round(1000 * server_cpu / max(len(latencies), 1), 2),
        "client_cpu_ms": round(1000 * client_cpu / max(len(latencies), 1), 2),
    }


def verify_bench(work: Path, entries: int) -> dict:
    """`shuzhi audit verify` over ``entries`` generated entries (a database of its own)."""
    folder = work / f"ledger-{entries}"
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SHUZHI_DATA_DIR": str(folder), "PYTHONPATH": str(ROOT)}
    if not (folder / "ready").exists():
        subprocess.run(
            [sys.executable, __file__, "--fill-ledger", str(entries)], check=True, env=env
        )
        (folder / "ready").write_text("ok")
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "shuzhi", "audit", "verify"], env=env, capture_output=True, text=True
    )
    return {
        "entries": entries,
        "seconds": round(time.perf_counter() - started, 2),
        "output": (result.stdout or result.stderr).strip(),
    }


def fill_ledger(entries: int) -> None:
    from datetime import UTC, datetime, timedelta

    from shuzhi.core.db import get_database
    from shuzhi.gateway import ledger

    db = get_database()
    db.upgrade("head")
    start = datetime(2026, 11, 1, tzinfo=UTC)
    batch = 50_000
    for first in range(0, entries, batch):
        with db.transaction() as session:
            ledger.append_many(
                session,
                [
                    {
                        "at": start + timedelta(seconds=number),
                        "request_id": f"{number:032x}",
                        "consumer_code": "bench_app",
                        "access_key": "SZBENCH",
                        "end_user": "wang.li",
                        "purpose": "BENCH-0001",
                        "operation": "read",
                        "target": CODE,
                        "grant_id": 1,
                        "method": "GET",
                        "path": f"/gateway/v1/resources/{CODE}/records",
                        "fields": ["id_card", "full_name", "region"],
                        "masking": {"id_card": "token", "full_name": "masked", "region": "clear"},
                        "rows": 50,
                        "lookup": None,
                        "status": 200,
                        "outcome": "ok",
                        "latency_ms": 12,
                        "response_sha256": f"{number:064x}",
                    }
                    for number in range(first, min(first + batch, entries))
                ],
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--port", type=int, default=18_765)
    parser.add_argument("--verify-entries", type=int, default=0)
    parser.add_argument("--fill-ledger", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "shuzhi-bench" / "gateway"
    )
    options = parser.parse_args()
    if options.fill_ledger:
        fill_ledger(options.fill_ledger)
        return
    work = options.work / f"rows-{options.rows}"
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    credential = prepare(work, options.rows)
    print(f"prepared in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    server = start_server(work, options.port)
    results = []
    try:
        for clients in (int(item) for item in options.clients.split(",")):
            for kind in ("bare", "gateway"):
                run_load(options.port, kind, clients, 2.0, credential)  # warm up
                outcome = run_load(options.port, kind, clients, options.seconds, credential, server)
                results.append(outcome)
                print(json.dumps(outcome), file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print("| clients | bare req/s | gateway req/s | ratio | bare p50 / p99 (ms) "
          "| gateway p50 / p99 (ms) | p99 added (ms) "
          "| server CPU ms/req bare / gateway |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for bare, gateway in zip(results[::2], results[1::2], strict=True):
        print(
            f"| {bare['clients']} | {bare['per_second']} | {gateway['per_second']} | "
            f"{gateway['per_second'] / bare['per_second']:.2f} | "
            f"{bare['p50_ms']} / {bare['p99_ms']} | {gateway['p50_ms']} / {gateway['p99_ms']} | "
            f"{gateway['p99_ms'] - bare['p99_ms']:.1f} | "
            f"{bare['server_cpu_ms']} / {gateway['server_cpu_ms']} |"
        )
    if options.verify_entries:
        print(json.dumps(verify_bench(options.work, options.verify_entries)))


if __name__ == "__main__":
    main()
