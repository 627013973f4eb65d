"""Indicator computation: the generated SQL side by side with hand-written DuckDB on the demo
province, and DuckDB side by side with local Spark on a synthetic fact table of up to 50
million rows.

    .venv/bin/python bench/brain.py                   # both parts: the demo, then 1M, 10M, 50M rows
    .venv/bin/python bench/brain.py --part demo --repeat 9 --profile
    .venv/bin/python bench/brain.py --part scale --rows 1000000,10000000,50000000
    .venv/bin/python bench/brain.py --quick           # a smoke run of both parts, about a minute

**demo**: the demo province (seed 2350, scale 1.0) is built in a fresh data directory (about
a minute; ``--work DIR`` keeps it there and reuses it), the indicators' definitions, their
sources and the region tree are read from the database once, and then, alternating, each
``--repeat`` times on a fresh connection:

- **generated**: ``brain.compute.compute()`` of all 32 demo indicators on a ``DuckDBEngine``;
- **hand-written**: one plain DuckDB query per indicator (``bench/brain_handwritten.py``)
  over the same current snapshot files, the same region table registered, the derived
  indicators joining the base results.

Both must give the same rows and values (1e-9 relative, last times equal) or the run fails.
``service.compute`` end to end (metadata reads, previous results, writing and switching
the results snapshot) is timed apart; ``--profile`` times each base indicator alone on
both sides, ``--explain CODE`` prints DuckDB's EXPLAIN ANALYZE of one generated query.

**scale**: for each ``--rows``, a synthetic fact table (a county among Zhejiang's 90, a day
over 2023-2025, one of 20 items, a status, a caller among ``--callers``, a value) written
by DuckDB straight to Parquet and made the current snapshot of a lake resource. Four
indicators over it, with the default grains (month, quarter, year): a sum, a ratio with
filters, a stock (semi-additive) and a distinct count, each computed by ``compute()`` on
DuckDB and on Spark (``local[2]``), and the first three also by hand-written DuckDB (the
distinct count's hand-written query has the generated one's shape). A measurement is
repeated (``--scale-repeat``, median) while one run takes under 30 s. Spark's session
start and each engine's opening are reported apart from the queries, after one untimed
warm-up query per engine. A Spark query still running after ``--spark-limit`` seconds is
cancelled and recorded as over the limit, and not tried at larger sizes. The tables are
deleted after each size unless ``--keep``.

The 1-minute load average is printed at the start and end of each part and noted beside
each figure; with ``--max-load`` exceeded the bench first waits up to ``--wait-load``
seconds for it to fall.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import brain_handwritten as handwritten
import duckdb
import pyarrow as pa

SEED = 2350
CODE = "bench_facts"
OWNER = "bench"
SLOW = 30.0  # a measurement taking longer is not repeated
ITEMS = [f"item_{number:02d}" for number in range(5)]
DAY_ONE = "2023-01-01"
DAYS = 1096  # 2023-01-01 .. 2025-12-31
# option: (usual, --quick)
DEFAULTS: dict[str, tuple[Any, Any]] = {
    "repeat": (7, 2),
    "end_to_end": (3, 1),
    "demo_scale": (1.0, 0.1),
    "rows": ([1_000_000, 10_000_000, 50_000_000], [200_000]),
    "callers": (1_000_000, 20_000),
    "scale_repeat": (3, 1),
    "spark_limit": (120.0, 60.0),
    "wait_load": (120.0, 0.0),
}


# -- load and small helpers ---------------------------------------------------------------------


def load() -> float:
    return os.getloadavg()[0]


def settle(max_load: float, wait: float, label: str) -> float:
    """Wait up to ``wait`` seconds for the 1-minute load to fall to ``max_load``; say so."""
    waited = 0.0
    while load() > max_load and waited < wait:
        time.sleep(5)
        waited += 5
    now = load()
    note = f" (still above {max_load} after waiting {waited:.0f} s)" if now > max_load else ""
    say(f"{label}: load average {now:.2f}{note}")
    return now


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def same_rows(left: pa.Table, right: pa.Table) -> tuple[int, list[tuple]]:
    """Rows compared and those that differ: keyed by (indicator, region, grain, period),
    value, numerator and denominator within 1e-9 relative, last times equal."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register("l", left)
    con.register("r", right)
    for name in ("l", "r"):
        rows, keys = con.execute(
            f"SELECT count(*), count(DISTINCT (indicator, region_code, grain, period_start)) "
            f"FROM {name}"
        ).fetchall()[0]
        if rows != keys:
            return rows, [(f"{rows - keys} duplicate keys in {name}",)]

    def close(column: str) -> str:
        a, b = f"CAST(l.{column} AS DOUBLE)", f"CAST(r.{column} AS DOUBLE)"
        # a NULL against a number compares as NULL: coalesce makes it a difference
        return (
            f"coalesce(({a} IS NULL AND {b} IS NULL) OR abs({a} - {b}) <= "
            f"greatest(1e-9 * greatest(abs({a}), abs({b})), 1e-9), false)"
        )

    differing = con.sql(
        f"""SELECT coalesce(l.indicator, r.indicator), coalesce(l.region_code, r.region_code),
                   coalesce(l.grain, r.grain), coalesce(l.period_start, r.period_start),
                   l.value, r.value, l.last_time, r.last_time
            FROM l FULL JOIN r ON l.indicator = r.indicator AND l.region_code = r.region_code
                 AND l.grain = r.grain AND l.period_start = r.period_start
            WHERE l.indicator IS NULL OR r.indicator IS NULL OR NOT ({close("value")}
                  AND {close("numerator")} AND {close("denominator")}
                  AND l.last_time IS NOT DISTINCT FROM r.last_time)
            ORDER BY 1, 2, 3, 4"""
    ).fetchall()
    compared = con.execute("SELECT count(*) FROM l").fetchall()[0][0]
    con.close()
    return compared, differing


def duckdb_connection(settings: Any) -> duckdb.DuckDBPyConnection:
    """A plain DuckDB as the engine configures its own: same memory limit and threads."""
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    con.execute(f"SET memory_limit = '{settings.lake.memory_limit}'")
    if settings.lake.threads:
        con.execute(f"SET threads = {int(settings.lake.threads)}")
    return con


# -- part 1: the demo province ------------------------------------------------------------------


def build_demo(data_dir: Path, scale: float) -> Any:
    from shuzhi.core.db import Database
    from shuzhi.demo.build import build

    database = Database(f"sqlite:///{data_dir / 'shuzhi.db'}")
    marker = data_dir / f"bench-built-{scale}"
    if marker.exists():
        say(f"demo: reusing the province built in {data_dir}")
        return database
    data_dir.mkdir(parents=True, exist_ok=True)
    database.upgrade()
    seconds, summary = timed(lambda: build(database, seed=SEED, data_dir=data_dir, scale=scale))
    say(
        f"demo: built in {seconds:.0f} s ({summary['rows_loaded']:,} rows loaded, "
        f"{summary['brain']['indicators']} indicators)"
    )
    marker.write_text("built\n")
    return database


def demo_part(options: argparse.Namespace, work: Path) -> dict:
    from shuzhi.brain import compute as computing
    from shuzhi.brain import queries, service
    from shuzhi.core.permissions import SYSTEM
    from shuzhi.core.settings import get_settings
    from shuzhi.lake.engine import DuckDBEngine
    from shuzhi.lake.storage import Lake

    data_dir = work / "demo"
    os.environ["SHUZHI_DATA_DIR"] = str(data_dir)
    database = build_demo(data_dir, options.demo_scale)
    settings = get_settings().model_copy(update={"data_dir": data_dir})
    start_load = settle(options.max_load, options.wait_load, "demo: start")
    with database.session() as session:
        specs = queries.specs(session)
        used = {source for spec in specs.values() for source in spec.sources}
        sources = queries.sources(session, used)
        regions = computing.regions_table(queries.region_paths(session))
    lake = Lake(settings.lake_dir)
    files = {code: lake.current_file(code) for code in handwritten.SOURCES}
    written = set(handwritten.base_queries(files)) | set(handwritten.DERIVED)
    if written != set(specs):
        raise SystemExit(
            f"the hand-written queries do not cover the demo's indicators: missing "
            f"{sorted(set(specs) - written)}, extra {sorted(written - set(specs))}"
        )

    def generated() -> tuple[float, float, pa.Table]:
        opened, engine = timed(
            lambda: DuckDBEngine(
                lake,
                sorted(sources),
                memory_limit=settings.lake.memory_limit,
                threads=settings.lake.threads,
            )
        )
        with engine:
            seconds, table = timed(
                lambda: computing.compute(engine, specs, sources=sources, regions=regions)
            )
        return opened, seconds, table

    def by_hand() -> tuple[float, float, pa.Table]:
        opened, con = timed(lambda: duckdb_connection(settings))
        seconds, table = timed(lambda: handwritten.run(con, files, regions))
        con.close()
        return opened, seconds, table

    runs: dict[str, list[float]] = {"generated": [], "handwritten": []}
    opens: dict[str, list[float]] = {"generated": [], "handwritten": []}
    results: dict[str, pa.Table] = {}
    sides = {"generated": generated, "handwritten": by_hand}
    loads = [load()]
    for rep in range(options.repeat):
        order = ["generated", "handwritten"] if rep % 2 == 0 else ["handwritten", "generated"]
        for side in order:
            opened, seconds, table = sides[side]()
            opens[side].append(opened)
            runs[side].append(seconds)
            results[side] = table
        loads.append(load())
    compared, differing = same_rows(results["generated"], results["handwritten"])
    if differing:
        for row in differing[:10]:
            say(f"demo: differs {row}")
        raise SystemExit(f"demo: {len(differing)} of {compared} rows differ; no figures")
    say(f"demo: {compared:,} values the same on both sides")

    end_to_end = []
    for _ in range(options.end_to_end):
        seconds, run = timed(
            lambda: service.compute(database, actor=SYSTEM, engine="duckdb", settings=settings)
        )
        end_to_end.append(seconds)
    loads.append(load())

    profile = demo_profile(options, specs, sources, regions, lake, files, settings)
    if options.explain:
        with DuckDBEngine(lake, sorted(sources)) as engine:
            engine.register(computing.REGIONS_TABLE, regions)
            sql = computing.indicator_sql(specs[options.explain], sources)
            print(sql)
            print(engine.con.sql("EXPLAIN ANALYZE " + sql).fetchall()[0][1])
    end_load = load()
    say(f"demo: end: load average {end_load:.2f}")
    return {
        "indicators": len(specs),
        "values": compared,
        "rows_in_sources": {
            code: duckdb.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0]
            for code, path in files.items()
        },
        "repeat": options.repeat,
        "generated_s": runs["generated"],
        "handwritten_s": runs["handwritten"],
        "open_s": {side: median(values) for side, values in opens.items()},
        "ratio": median(runs["generated"]) / median(runs["handwritten"]),
        "end_to_end_s": end_to_end,
        "end_to_end_rows": run.rows if options.end_to_end else None,
        "profile": profile,
        "load": {"start": start_load, "during": loads, "end": end_load},
    }


def demo_profile(
    options: argparse.Namespace,
    specs: dict,
    sources: dict,
    regions: pa.Table,
    lake: Any,
    files: dict,
    settings: Any,
) -> list[dict]:
    """Each base indicator alone on both sides, the median of ``--repeat`` runs."""
    if not options.profile:
        return []
    from shuzhi.brain import compute as computing
    from shuzhi.lake.engine import DuckDBEngine

    queries = handwritten.base_queries(files)
    found = []
    with DuckDBEngine(lake, sorted(sources)) as engine:
        engine.register(computing.REGIONS_TABLE, regions)
        con = duckdb_connection(settings)
        con.register("_brain_regions", regions)
        for code in sorted(queries):
            sql = computing.indicator_sql(specs[code], sources)
            mine, theirs = [], []
            for _ in range(options.repeat):
                mine.append(timed(lambda sql=sql: engine.run(sql))[0])
                theirs.append(timed(lambda code=code: con.sql(queries[code]).to_arrow_table())[0])
            found.append(
                {"indicator": code, "generated_ms": 1000 * median(mine),
                 "handwritten_ms": 1000 * median(theirs)}
            )  # fmt: skip
        con.close()
    return found


# -- part 2: scale, DuckDB and Spark ------------------------------------------------------------


def counties() -> list[str]:
    from shuzhi.regions.service import builtin_csv

    with builtin_csv().open(encoding="utf-8") as handle:
        return [row["code"] for row in csv.DictReader(handle) if row["level"] == "county"]


def region_paths() -> list[str]:
    """The shipped Zhejiang tree as slash-ended paths (what the database would hold)."""
    from shuzhi.regions.service import builtin_csv

    with builtin_csv().open(encoding="utf-8") as handle:
        parents = {row["code"]: row["parent"] or None for row in csv.DictReader(handle)}

    def path(code: str) -> str:
        parent = parents[code]
        return (path(parent) if parent else "/") + code + "/"

    return [path(code) for code in parents]


def generate(path: Path, rows: int, callers: int, settings: Any) -> float:
    """The synthetic fact table, written by DuckDB straight to Parquet; seconds taken."""
    codes = counties()
    listed = "[" + ", ".join(f"'{code}'" for code in codes) + "]"
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb_connection(settings)
    con.execute(f"SET temp_directory = '{path.parent / '.tmp'}'")
    seconds, _ = timed(
        lambda: con.execute(
            f"""COPY (
              SELECT {listed}[1 + (hash(i) % {len(codes)})::INTEGER] AS region_code,
                     DATE '{DAY_ONE}' + (hash(i + 1) % {DAYS})::INTEGER AS day,
                     'item_' || lpad(CAST(hash(i + 2) % 20 AS VARCHAR), 2, '0') AS item_code,
                     ['closed', 'closed', 'open', 'cancelled'][1 + (hash(i + 3) % 4)::INTEGER]
                       AS status,
                     '139' || lpad(CAST(hash(i + 4) % {callers} AS VARCHAR), 8, '0') AS caller,
                     round((hash(i + 5) % 1000000) / 100.0, 2) AS value
              FROM range({rows}) t(i)
            ) TO '{path}' (FORMAT parquet)"""
        )
    )
    con.close()
    return seconds


def scale_specs() -> tuple[dict, dict]:
    from shuzhi.brain import compute as computing
    from shuzhi.brain.schemas import IndicatorSpec

    common: dict[str, Any] = {
        "system": "digital_government", "owner": OWNER, "sources": [CODE], "time": "day"
    }  # fmt: skip
    specs = [
        IndicatorSpec(
            code="bench_amount", name="办件金额合计", measure={"kind": "sum", "field": "value"},
            **common,
        ),
        IndicatorSpec(
            code="bench_closed_share",
            name="办结金额占比",
            measure={
                "kind": "ratio",
                "numerator": {
                    "agg": "sum", "field": "value",
                    "where": {"item_code": ITEMS, "status": "closed"},
                },
                "denominator": {"agg": "sum", "field": "value", "where": {"item_code": ITEMS}},
                "scale": 100,
            },
            **common,
        ),
        IndicatorSpec(
            code="bench_stock",
            name="期末库存",
            measure={"kind": "sum", "field": "value", "where": {"item_code": "item_07"}},
            additivity="semi_additive",
            **common,
        ),
        IndicatorSpec(
            code="bench_callers",
            name="来电人数（去重）",
            measure={"kind": "count_distinct", "field": "caller"},
            **common,
        ),
    ]  # fmt: skip
    fields = {
        "region_code": "string", "day": "date", "item_code": "string", "status": "string",
        "caller": "string", "value": "decimal",
    }  # fmt: skip
    sources = {CODE: computing.SourceInfo(CODE, fields)}
    by_code = {spec.code: spec for spec in specs}
    computing.validate(by_code, sources=sources, departments=[OWNER])
    return by_code, sources


def scale_handwritten(file: Path) -> dict[str, str]:
    """The first three scale indicators as plain DuckDB, shaped as the demo's are."""
    items = ", ".join(f"'{item}'" for item in ITEMS)
    return {
        "bench_amount": handwritten.flow(
            "bench_amount", file, time="day", measure="sum(f.value)", where="TRUE"
        ),
        "bench_closed_share": handwritten.ratio(
            "bench_closed_share",
            file,
            time="day",
            numerator="sum(f.value) FILTER (WHERE f.status = 'closed')",
            denominator="sum(f.value)",
            parts="TRUE",
            where=f"f.item_code IN ({items})",
            scale=100,
        ),
        "bench_stock": handwritten.daily_stock("bench_stock", file, item="item_07", time="day"),
    }


@contextlib.contextmanager
def limited(seconds: float | None, cancel: Callable[[], None]) -> Iterator[dict]:
    """Cancel the work in hand once it has run ``seconds``, again every second until it
    stops (a query of several jobs starts the next after one is cancelled);
    ``state["cancelled"]`` says whether it was."""
    state = {"cancelled": False}
    done = threading.Event()

    def watch() -> None:
        if done.wait(seconds):
            return
        state["cancelled"] = True
        while not done.is_set():
            cancel()
            done.wait(1.0)

    watcher = threading.Thread(target=watch, daemon=True) if seconds else None
    if watcher:
        watcher.start()
    try:
        yield state
    finally:
        done.set()
        if watcher:
            watcher.join()


def scale_part(options: argparse.Namespace, work: Path) -> dict:
    from shuzhi.brain import compute as computing
    from shuzhi.core.settings import get_settings
    from shuzhi.lake.engine import DuckDBEngine
    from shuzhi.lake.storage import Lake

    settings = get_settings()
    start_load = settle(options.max_load, options.wait_load, "scale: start")
    specs, sources = scale_specs()
    regions = computing.regions_table(region_paths())
    lake = Lake(work / "scale" / "lake")
    spark_start = None
    engines = ["duckdb", "handwritten"] + (["spark"] if options.spark else [])
    if options.spark:
        from shuzhi.lake.spark import SparkEngine, shared_session

        master = options.spark_master or settings.brain.spark_master
        memory = options.spark_driver_memory or settings.brain.spark_driver_memory
        spark_start, _ = timed(lambda: shared_session(master=master, driver_memory=memory))
        say(f"scale: Spark session ({master}, driver {memory}) started in {spark_start:.1f} s")

    def open_engine(kind: str) -> Any:
        if kind == "duckdb":
            return DuckDBEngine(
                lake, [CODE], memory_limit=settings.lake.memory_limit,
                threads=settings.lake.threads,
            )  # fmt: skip
        if kind == "spark":
            return SparkEngine(
                lake,
                [CODE],
                master=master,
                driver_memory=memory,
                shuffle_partitions=settings.brain.spark_shuffle_partitions,
            )
        con = duckdb_connection(settings)
        con.register("_brain_regions", regions)
        return con

    def run(kind: str, engine: Any, code: str, file: Path) -> pa.Table:
        if kind == "handwritten":
            return engine.sql(scale_handwritten(file)[code]).to_arrow_table()
        return computing.compute(engine, specs, sources=sources, regions=regions, wanted=[code])

    sizes = []
    over: set[tuple[str, str]] = set()  # (engine, indicator) over the limit at a smaller size
    for index, rows in enumerate(options.rows):
        free = shutil.disk_usage(work).free
        if free < 60 * rows:
            say(f"scale: {rows:,} rows skipped: {free / 2**30:.1f} GiB free on disk")
            continue
        size_load = settle(options.max_load, options.wait_load, f"scale: {rows:,} rows")
        snapshot = f"20260101T000000-b{index + 1}"
        file = lake.snapshot_file(CODE, snapshot)
        generated_s = generate(file, rows, options.callers, settings)
        lake.point(CODE, snapshot)
        megabytes = file.stat().st_size / 2**20
        say(f"scale: {rows:,} rows generated in {generated_s:.1f} s ({megabytes:.0f} MiB)")
        opened: dict[str, float] = {}
        open_engines: dict[str, Any] = {}
        for kind in engines:
            opened[kind], open_engines[kind] = timed(lambda kind=kind: open_engine(kind))
        if index == 0:  # JIT and codegen warm-up, not timed
            for kind in engines:
                run(kind, open_engines[kind], "bench_amount", file)
        figures: dict[str, dict[str, Any]] = {}
        tables: dict[tuple[str, str], pa.Table] = {}
        for code in specs:
            kinds = [k for k in engines if not (k == "handwritten" and code == "bench_callers")]
            times: dict[str, list[float]] = {kind: [] for kind in kinds}
            loads = [load()]
            for rep in range(options.scale_repeat):
                for kind in kinds[rep % len(kinds) :] + kinds[: rep % len(kinds)]:
                    if (kind, code) in over or (times[kind] and times[kind][-1] > SLOW):
                        continue
                    engine = open_engines[kind]
                    limit = options.spark_limit if kind == "spark" else None
                    with limited(limit, lambda engine=engine: cancel_all(engine)) as state:
                        try:
                            seconds, table = timed(
                                lambda kind=kind, engine=engine, code=code, file=file: run(
                                    kind, engine, code, file
                                )
                            )
                        except Exception:  # a cancelled query fails in whatever shape
                            if not state["cancelled"]:
                                raise
                    if state["cancelled"]:
                        over.add((kind, code))
                        say(f"scale: {rows:,} {code} {kind}: over {limit:.0f} s, cancelled")
                        continue
                    times[kind].append(seconds)
                    tables[(kind, code)] = table
                    say(f"scale: {rows:,} {code} {kind}: {seconds:.2f} s (load {load():.2f})")
            loads.append(load())
            figures[code] = {
                kind: {
                    "s": median(values) if values else None,
                    "runs": len(values),
                    "over_limit": (kind, code) in over,
                    "same": None,
                }
                for kind, values in times.items()
            }
            figures[code]["load"] = loads
            reference = tables.get(("duckdb", code))
            for kind in kinds[1:]:
                other = tables.get((kind, code))
                if reference is not None and other is not None:
                    _, differing = same_rows(
                        computing.conform(reference), handwritten_conform(other)
                    )
                    figures[code][kind]["same"] = not differing
                    if differing:
                        say(f"scale: {code} {kind} differs from DuckDB in {len(differing)} rows")
        for engine in open_engines.values():
            engine.close()
        sizes.append(
            {
                "rows": rows,
                "parquet_mib": megabytes,
                "generate_s": generated_s,
                "open_s": opened,
                "indicators": figures,
                "load": {"start": size_load, "end": load()},
            }
        )
        if not options.keep:
            shutil.rmtree(lake.snapshot_dir(CODE, snapshot))
    if options.spark:
        from shuzhi.lake.spark import shared_session

        shared_session(master=master, driver_memory=memory).stop()
    return {
        "spark_start_s": spark_start,
        "callers": options.callers,
        "sizes": sizes,
        "load": {"start": start_load, "end": load()},
    }


def cancel_all(engine: Any) -> None:
    engine.spark.sparkContext.cancelAllJobs()


def handwritten_conform(table: pa.Table) -> pa.Table:
    return table.cast(handwritten.SCHEMA) if table.schema != handwritten.SCHEMA else table


# -- output -------------------------------------------------------------------------------------


def demo_table(found: dict) -> None:
    generated, by_hand = found["generated_s"], found["handwritten_s"]
    during = found["load"]["during"]
    print(
        f"\n### Demo province: {found['indicators']} indicators, {found['values']:,} values "
        f"({sum(found['rows_in_sources'].values()):,} source rows), median of "
        f"{found['repeat']} runs\n"
    )
    print("| side | median s | min s | max s |")
    print("|---|---|---|---|")
    print(f"| generated `compute()`, DuckDBEngine | {median(generated):.3f} | "
          f"{min(generated):.3f} | {max(generated):.3f} |")  # fmt: skip
    print(f"| hand-written DuckDB, one query per indicator | {median(by_hand):.3f} | "
          f"{min(by_hand):.3f} | {max(by_hand):.3f} |")  # fmt: skip
    if found["end_to_end_s"]:
        e2e = found["end_to_end_s"]
        print(f"| `service.compute` end to end ({len(e2e)} run{'s' * (len(e2e) != 1)}, "
              f"{found['end_to_end_rows']:,} "
              f"rows written) | {median(e2e):.3f} | {min(e2e):.3f} | {max(e2e):.3f} |")  # fmt: skip
    print(
        f"\n**generated / hand-written: {found['ratio']:.2f}×** (target ≤ 1.5×); opening an "
        f"engine {1000 * found['open_s']['generated']:.0f} ms / a connection "
        f"{1000 * found['open_s']['handwritten']:.0f} ms, not counted. Load average "
        f"{found['load']['start']:.2f} at the start, {min(during):.2f}–{max(during):.2f} "
        f"during, {found['load']['end']:.2f} at the end."
    )
    if found["profile"]:
        print("\n| indicator | generated ms | hand-written ms | ratio |")
        print("|---|---|---|---|")
        for row in sorted(found["profile"], key=lambda r: -r["generated_ms"]):
            print(
                f"| {row['indicator']} | {row['generated_ms']:.1f} | "
                f"{row['handwritten_ms']:.1f} | "
                f"{row['generated_ms'] / row['handwritten_ms']:.2f} |"
            )


def seconds_cell(figure: dict | None, limit: float) -> str:
    if figure is None:
        return "–"
    if figure["over_limit"] and figure["s"] is None:
        return f"> {limit:.0f}"
    if figure["s"] is None:
        return "skipped"
    runs = f" ({figure['runs']}×)" if figure["runs"] > 1 else ""
    same = "" if figure["same"] in (None, True) else " **differs**"
    return f"{figure['s']:.2f}{runs}{same}"


def scale_table(found: dict, limit: float) -> None:
    start = found["spark_start_s"]
    print(
        f"\n### Scale: synthetic fact table, {found['callers']:,} callers; Spark session start "
        + (f"{start:.1f} s (not counted)" if start is not None else "not run")
        + "\n"
    )
    print("| rows | Parquet MiB | indicator | DuckDB s | hand-written DuckDB s | Spark s "
          "| Spark / DuckDB | ns/row DuckDB | ns/row Spark | load |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in found["sizes"]:
        rows = size["rows"]
        for code, figures in size["indicators"].items():
            duck, spark = figures.get("duckdb"), figures.get("spark")
            ratio = (
                f"{spark['s'] / duck['s']:.1f}"
                if duck and spark and duck["s"] and spark["s"] is not None
                else "–"
            )
            loads = figures["load"]
            print(
                f"| {rows:,} | {size['parquet_mib']:.0f} | {code} | {seconds_cell(duck, limit)} | "
                f"{seconds_cell(figures.get('handwritten'), limit)} | "
                f"{seconds_cell(spark, limit)} | {ratio} | "
                f"{per_row(duck, rows)} | {per_row(spark, rows)} | "
                f"{min(loads):.1f}–{max(loads):.1f} |"
            )
        opened = ", ".join(f"{kind} {seconds:.2f} s" for kind, seconds in size["open_s"].items())
        print(
            f"| {rows:,} | | *generated in {size['generate_s']:.1f} s; engines opened: "
            f"{opened}* | | | | | | | |"
        )
    trend(found)


def per_row(figure: dict | None, rows: int) -> str:
    if not figure or figure["s"] is None:
        return "–"
    return f"{1e9 * figure['s'] / rows:.0f}"


def trend(found: dict) -> None:
    """Fixed cost and cost per row of each engine between sizes, over the indicators that
    both engines finished at every size; and where Spark would catch DuckDB up."""
    sizes = found["sizes"]
    if len(sizes) < 2 or found["spark_start_s"] is None:
        return
    common = [
        code
        for code in sizes[0]["indicators"]
        if all(
            size["indicators"][code].get(kind, {}).get("s") is not None
            for size in sizes
            for kind in ("duckdb", "spark")
        )
    ]
    if not common:
        return
    totals = {
        kind: [sum(size["indicators"][code][kind]["s"] for code in common) for size in sizes]
        for kind in ("duckdb", "spark")
    }
    print(f"\nTrend over {', '.join(common)} (their total per size):\n")
    print("| from → to rows | DuckDB ns/row (marginal) | Spark ns/row (marginal) "
          "| Spark fixed s | DuckDB fixed s | Spark pays from |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    negative = False
    for first, second in zip(range(len(sizes)), range(1, len(sizes)), strict=False):
        r1, r2 = sizes[first]["rows"], sizes[second]["rows"]
        slopes, fixed = {}, {}
        for kind in ("duckdb", "spark"):
            t1, t2 = totals[kind][first], totals[kind][second]
            slopes[kind] = (t2 - t1) / (r2 - r1)
            fixed[kind] = t1 - slopes[kind] * r1
        if slopes["spark"] < slopes["duckdb"]:
            crossing = (fixed["spark"] - fixed["duckdb"]) / (slopes["duckdb"] - slopes["spark"])
            pays = f"~{crossing:,.0f} rows"
        else:
            pays = "never (costs more per row)"
        print(
            f"| {r1:,} → {r2:,} | {1e9 * slopes['duckdb']:.0f} | {1e9 * slopes['spark']:.0f} | "
            f"{fixed['spark']:.1f} | {fixed['duckdb']:.1f} | {pays} |"
        )
        negative = negative or min(fixed.values()) < 0
    if negative:
        print(
            "\nA negative fixed cost means the larger size ran slower per row than a straight "
            "line allows: load that rose during the run, or memory pressure."
        )


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["demo", "scale", "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    parser.add_argument("--repeat", type=int, help="demo: runs of each side (7; quick 2)")
    parser.add_argument("--end-to-end", type=int, help="demo: service.compute runs (3; quick 1)")
    parser.add_argument("--demo-scale", type=float, help="demo: size of its data (1; quick 0.1)")
    parser.add_argument("--profile", action="store_true", help="demo: each indicator alone")
    parser.add_argument("--explain", metavar="CODE", help="demo: EXPLAIN ANALYZE one indicator")
    parser.add_argument(
        "--rows",
        type=lambda text: [int(item) for item in text.split(",")],
        help="scale: table sizes, comma-separated (1000000,10000000,50000000; quick 200000)",
    )
    parser.add_argument("--callers", type=int, help="scale: distinct callers (1M; quick 20,000)")
    parser.add_argument("--scale-repeat", type=int, help="scale: most runs a figure (3; quick 1)")
    parser.add_argument("--no-spark", dest="spark", action="store_false", help="scale: DuckDB only")
    parser.add_argument("--spark-master", help="default: the brain.spark_master setting")
    parser.add_argument("--spark-driver-memory", help="default: brain.spark_driver_memory")
    parser.add_argument(
        "--spark-limit", type=float, help="scale: seconds a Spark query may run (120; quick 60)"
    )
    parser.add_argument("--max-load", type=float, default=1.5, help="load average to wait for")
    parser.add_argument("--wait-load", type=float, help="seconds to wait for it (120; quick 0)")
    parser.add_argument("--work", type=Path, help="kept, its demo reused (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated tables")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args()
    for name, (usual, quick) in DEFAULTS.items():
        if getattr(options, name) is None:
            setattr(options, name, quick if options.quick else usual)
    if options.json:
        options.json = options.json.resolve()
    work = (options.work or Path(tempfile.mkdtemp(prefix="shuzhi-bench-brain-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    # DuckDB spills to ./.tmp of the process: keep it in the work directory
    os.chdir(work)
    # a terminated run still deletes what it generated (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    say(f"work directory {work}; load average {load():.2f}; {os.cpu_count()} cores")
    found: dict[str, Any] = {"cores": os.cpu_count(), "load_start": load()}
    try:
        if options.part in ("demo", "all"):
            found["demo"] = demo_part(options, work)
            demo_table(found["demo"])
        if options.part in ("scale", "all"):
            found["scale"] = scale_part(options, work)
            scale_table(found["scale"], options.spark_limit)
    finally:
        found["load_end"] = load()
        print(f"\nLoad average {found['load_start']:.2f} at the start, "
              f"{found['load_end']:.2f} at the end; {os.cpu_count()} cores.")  # fmt: skip
        if options.json:
            options.json.write_text(json.dumps(found, indent=2, default=str))
        if options.work is None and not options.keep:
            os.chdir(tempfile.gettempdir())
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
