"""The Spark engine: DuckDB SQL, translated, gives DuckDB's rows over the same snapshots.

Every construct the brain writes is run on both engines over snapshots made by real
batches, and the rows and their types must agree. One Spark session serves the file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from shuzhi.core.db import get_database, reset_database
from shuzhi.core.errors import ValidationFailed
from shuzhi.core.settings import load_settings, reset_settings
from shuzhi.lake.engine import DuckDBEngine, open_engine
from shuzhi.lake.service import lake_of
from shuzhi.lake.spark import SparkEngine, to_spark
from shuzhi.lake.storage import Lake
from tests.conftest import need, resource_doc
from tests.lake.data import ARGON2_QUICK, CODE, Template, ingest, publish, write_csv

CASES = "stat_cases"
CASE_FIELDS = [
    {"name": "id", "title": "编号", "type": "string", "primary_key": True},
    {"name": "region", "title": "行政区划代码", "type": "string"},
    {"name": "reported_on", "title": "报告日期", "type": "date"},
    {"name": "updated_at", "title": "更新时间", "type": "datetime"},
    {"name": "cases", "title": "案件数", "type": "integer"},
    {"name": "amount", "title": "金额", "type": "decimal"},
    {"name": "status", "title": "状态", "type": "string"},
]
# a NULL in each column somewhere; region 330102's latest report has no count (arg_max);
# 2024-05-26 is a Sunday, 2024-02-29 a leap day, 23:30 and 23:59:59 near midnight
CASE_ROWS = [
    ["c01", "330102", "2024-01-05", "2024-01-05 23:30:00", "10", "2.5", "在册"],
    ["c02", "330102", "2024-02-29", "2024-02-29 08:00:00", None, "0", "注销"],
    ["c03", "330102", "2024-03-31", "2024-03-31 00:00:00", "7", None, "在册"],
    ["c04", "330102", "2024-04-01", "2024-04-01 12:00:00", None, "3", "在册"],
    ["c05", "330201", "2024-01-01", "2024-01-01 00:00:01", "3", "1", 'it\'s "quoted"'],
    ["c06", "330201", "2023-12-31", None, "3", "4", None],
    ["c07", "330201", None, "2024-06-15 12:00:00", "9", "2", "在册"],
    ["c08", "330302", "2024-05-20", "2024-05-20 09:15:00", "0", "0", "迁出"],
    ["c09", "330302", "2024-05-26", "2024-05-26 18:00:00", "4", "1.25", "在册"],
    ["c10", "330302", "2024-12-31", "2024-12-31 23:59:59", "5", "8000.5", "注销"],
]
# what the brain registers: each region with itself and its ancestors
ANCESTORS = pa.table(
    {
        "code": ["330102", "330102", "330102", "330201", "330201", "330201", "330302"],
        "ancestor": ["330102", "330100", "330000", "330201", "330200", "330000", "330000"],
        "level": pa.array([3, 2, 1, 3, 2, 1, 1], pa.int64()),
        "weight": [1.0, 0.5, 0.25, 1.0, 0.5, 0.25, 0.25],
        "since": pa.array([date(2020, 1, 1)] * 6 + [None], pa.date32()),
        "checked_at": pa.array([datetime(2024, 1, 1, 23, 30)] * 7, pa.timestamp("us")),
    }
)


@pytest.fixture(scope="module")
def lake(lake_template: Template, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """Snapshots of two resources, landed by real batches, shared by the file's tests."""
    folder = tmp_path_factory.mktemp("spark-lake")
    store = folder / "shuzhi.db"
    shutil.copy(lake_template.path, store)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHUZHI_DATA_DIR", str(folder / "data"))
        patch.setenv("SHUZHI_DATABASE__URL", f"sqlite:///{store}")
        for name, value in ARGON2_QUICK.items():
            patch.setenv(name, value)
        reset_settings()
        reset_database()
        try:
            database = get_database()
            publish(database, resource_doc(code=CASES, name="案件统计", fields=CASE_FIELDS))
            names = [item["name"] for item in CASE_FIELDS]
            batch = ingest(
                database, write_csv(folder / "cases.csv", CASE_ROWS, headers=names), code=CASES
            )
            assert batch.rows_loaded == len(CASE_ROWS)
            ingest(database, write_csv(folder / "people.csv"))
            lake = lake_of()
        finally:
            reset_database()
    reset_settings()
    return lake


@pytest.fixture(scope="module")
def engines(spark_session: Any, lake: Lake) -> Iterator[tuple[DuckDBEngine, SparkEngine]]:
    with (
        DuckDBEngine(lake, [CASES, CODE]) as duck,
        SparkEngine(lake, [CASES, CODE], shuffle_partitions=2) as spark,
    ):
        for engine in (duck, spark):
            engine.register("regions", ANCESTORS)
        yield duck, spark


def same(engines: tuple[DuckDBEngine, SparkEngine], sql: str) -> list[dict[str, Any]]:
    """The rows of ``sql`` on both engines, which must agree in values and types."""
    duck, spark = engines
    expected, got = duck.run(sql), spark.run(sql)
    assert expected.num_rows > 0
    assert got.to_pylist() == expected.to_pylist()
    assert kinds(got) == kinds(expected)
    return expected.to_pylist()


def kinds(table: pa.Table) -> dict[str, pa.DataType]:
    # DuckDB sums integers into HUGEINT, which Arrow shows as decimal(38, 0); same values
    return {
        field.name: pa.int64()
        if pa.types.is_decimal(field.type) and field.type.scale == 0
        else field.type
        for field in table.schema
    }


TRUNC = (
    "SELECT id, CAST(date_trunc('{unit}', CAST(updated_at AS DATE)) AS DATE) AS from_datetime,"
    " CAST(date_trunc('{unit}', reported_on) AS DATE) AS from_date FROM stat_cases ORDER BY id"
)
PARITY = {
    "snapshot": "SELECT * FROM stat_cases ORDER BY id",
    "every_type": f"SELECT * FROM {CODE} ORDER BY id_card",
    "cte": """
        WITH monthly AS (
            SELECT region, CAST(date_trunc('month', reported_on) AS DATE) AS month,
                   sum(cases) AS cases
            FROM stat_cases GROUP BY 1, 2
        ), busy AS (SELECT * FROM monthly WHERE cases > 0)
        SELECT region, month, cases FROM busy ORDER BY region, month""",
    **{f"date_trunc_{unit}": TRUNC.format(unit=unit) for unit in ("month", "quarter", "year")},
    **{f"date_trunc_{unit}": TRUNC.format(unit=unit) for unit in ("week", "day")},
    "date_trunc_without_cast": """
        SELECT id, date_trunc('month', updated_at) AS month, date_trunc('hour', updated_at)
               AS hour, date_trunc('quarter', reported_on) AS quarter
        FROM stat_cases ORDER BY id""",
    "arg_max": """
        SELECT region, arg_max(cases, reported_on) AS latest,
               arg_min(cases, reported_on) AS earliest, max_by(amount, updated_at) AS last_amount,
               arg_max(status, cases) AS busiest
        FROM stat_cases GROUP BY region ORDER BY region""",
    "count_distinct": """
        SELECT region, count(DISTINCT status) AS statuses, count(DISTINCT cases) AS counts,
               count(*) AS reports, count(cases) AS counted
        FROM stat_cases GROUP BY region ORDER BY region""",
    "nullif_division": """
        SELECT id, cases / NULLIF(amount, 0) AS per_amount,
               amount * 100.0 / NULLIF(cases, 0) AS percent, cases / 4 AS quarter,
               sum(cases) OVER (PARTITION BY region) / NULLIF(count(*) OVER (), 0) AS share
        FROM stat_cases ORDER BY id""",
    "sum_case": """
        SELECT region, sum(CASE WHEN status = '在册' THEN 1 ELSE 0 END) AS active,
               sum(CASE WHEN status = '注销' THEN cases END) AS closed_cases,
               sum(CASE WHEN amount > 1 THEN amount ELSE 0 END) AS large
        FROM stat_cases GROUP BY region ORDER BY region""",
    "cast_double": """
        SELECT id, CAST(cases AS DOUBLE) AS cases, CAST(cases AS DOUBLE) / 3 AS third,
               sum(CAST(cases AS DOUBLE)) OVER (PARTITION BY region) AS region_total
        FROM stat_cases ORDER BY id""",
    "lag": """
        SELECT id, lag(cases) OVER (PARTITION BY region ORDER BY reported_on) AS previous,
               lag(cases, 1, 0) OVER (PARTITION BY region ORDER BY reported_on) AS or_zero,
               cases - lag(cases) OVER (PARTITION BY region ORDER BY reported_on) AS change
        FROM stat_cases ORDER BY id""",
    "rank": """
        SELECT id, rank() OVER (PARTITION BY region ORDER BY cases DESC) AS in_region,
               rank() OVER (ORDER BY amount) AS overall,
               row_number() OVER (ORDER BY updated_at, id) AS position
        FROM stat_cases ORDER BY id""",
    "join_registered": """
        SELECT r.ancestor, r.level, count(*) AS reports, sum(c.cases) AS cases,
               sum(c.amount * r.weight) AS weighted, max(r.checked_at) AS checked_at,
               min(r.since) AS since
        FROM stat_cases AS c JOIN regions AS r ON r.code = c.region
        GROUP BY r.ancestor, r.level ORDER BY r.ancestor""",
    "registered": "SELECT * FROM regions ORDER BY code, ancestor",
    "coalesce": """
        SELECT id, COALESCE(status, '未知') AS status, COALESCE(cases, 0) AS cases,
               COALESCE(amount, CAST(cases AS DOUBLE), 0) AS amount,
               COALESCE(reported_on, CAST(updated_at AS DATE)) AS day
        FROM stat_cases ORDER BY id""",
    "literals": """
        SELECT id, '浙江省''s "数据" 100% \\ 完成' AS text, status = 'it''s "quoted"' AS quoted,
               status LIKE '%册' AS registered, '在册' || '/' || COALESCE(status, '') AS joined
        FROM stat_cases ORDER BY id""",
    "in_list": """
        SELECT id FROM stat_cases
        WHERE status IN ('在册', 'it''s "quoted"') AND region NOT IN ('330302')
          AND cases IN (3, 7, 10) ORDER BY id""",
    "timestamps_and_dates": """
        SELECT id, updated_at, reported_on, CAST(updated_at AS DATE) AS updated_on,
               updated_at >= DATE '2024-03-01' AS since_march,
               updated_at < TIMESTAMP '2024-01-05 23:30:00' AS earlier,
               reported_on = CAST(updated_at AS DATE) AS same_day,
               CAST(reported_on AS TIMESTAMP) AS reported_at,
               year(updated_at) AS year, month(reported_on) AS month
        FROM stat_cases ORDER BY id""",
    "brain_like": """
        WITH points AS (
            SELECT region, CAST(date_trunc('quarter', CAST(updated_at AS DATE)) AS DATE) AS t,
                   sum(cases) AS numerator, sum(amount) AS denominator,
                   count(DISTINCT status) AS statuses
            FROM stat_cases WHERE updated_at IS NOT NULL GROUP BY 1, 2
        ), rolled AS (
            SELECT r.ancestor AS region_code, p.t AS period_start,
                   CAST(sum(p.numerator) AS DOUBLE) AS numerator,
                   CAST(sum(p.denominator) AS DOUBLE) AS denominator
            FROM points AS p JOIN regions AS r ON r.code = p.region GROUP BY 1, 2
        )
        SELECT region_code, period_start, numerator / NULLIF(denominator, 0) AS value,
               numerator - lag(numerator) OVER (
                   PARTITION BY region_code ORDER BY period_start) AS change,
               rank() OVER (PARTITION BY period_start ORDER BY numerator DESC) AS position
        FROM rolled ORDER BY region_code, period_start""",
}


# where sqlglot's translation alone gave other rows: a row's value, the same on both
KNOWN = {
    # Spark's max_by gives the NULL count of 330102's latest report
    "arg_max": (0, "latest", 7),
    # Spark's TRUNC(date, 'DAY') is NULL
    "date_trunc_day": (0, "from_datetime", date(2024, 1, 5)),
    # and weeks start on Monday in both: Sunday 26 May is in the week of 20 May
    "date_trunc_week": (8, "from_date", date(2024, 5, 20)),
    # Spark divides a DECIMAL (amount * 100.0) into a DECIMAL
    "nullif_division": (0, "percent", 25.0),
}


@pytest.mark.spark
@pytest.mark.parametrize(
    ("sql", "known"), [pytest.param(sql, KNOWN.get(name), id=name) for name, sql in PARITY.items()]
)
def test_each_construct_gives_duckdbs_rows_on_spark(
    engines: tuple[DuckDBEngine, SparkEngine], sql: str, known: tuple[int, str, Any] | None
) -> None:
    rows = same(engines, sql)
    if known is not None:
        index, column, value = known
        assert rows[index][column] == value


@pytest.mark.spark
def test_results_come_back_in_duckdbs_types(engines: tuple[DuckDBEngine, SparkEngine]) -> None:
    table = engines[1].run(PARITY["snapshot"])
    assert dict(zip(table.schema.names, table.schema.types, strict=True)) == {
        "id": pa.string(),
        "region": pa.string(),
        "reported_on": pa.date32(),
        "updated_at": pa.timestamp("us"),
        "cases": pa.int64(),
        "amount": pa.float64(),
        "status": pa.string(),
    }


@pytest.mark.spark
@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT nope FROM stat_cases", "query failed: .*nope"),
        ("SELECT * FROM never_loaded", "query failed: .*never_loaded"),
        ("SELECT CAST(status AS INTEGER) FROM stat_cases", "query failed"),
        ("SELECT * FROM read_parquet('/etc/passwd')", "query"),
        ("SELECT * FROM read_csv('/etc/passwd')", "query"),
        # DuckDB answers inf; SQL meant for both divides by NULLIF(y, 0)
        ("SELECT cases / 0 AS x FROM stat_cases", "query failed: .*DIVIDE_BY_ZERO"),
        ("DROP VIEW stat_cases", "only SELECT"),
    ],
)
def test_a_failing_query_is_one_line_of_invalid_input(
    engines: tuple[DuckDBEngine, SparkEngine], sql: str, message: str
) -> None:
    spark = engines[1]
    with pytest.raises(ValidationFailed, match=message) as caught:
        spark.run(sql)
    assert caught.value.field == "sql"
    assert "\n" not in str(caught.value)
    assert spark.run("SELECT count(*) AS n FROM stat_cases").to_pylist() == [{"n": 10}]


@pytest.mark.spark
def test_registering_a_name_again_replaces_the_table(
    engines: tuple[DuckDBEngine, SparkEngine],
) -> None:
    for engine in engines:
        engine.register("scratch", pa.table({"n": [1, 2]}))
        engine.register("scratch", pa.table({"n": [3]}))
        assert engine.run("SELECT n FROM scratch").to_pylist() == [{"n": 3}]


OLD = "20240301T080000-b1"
NEW = "20240302T080000-b2"


def land(lake: Lake, code: str, snapshot: str, sql: str) -> None:
    path = lake.snapshot_file(code, snapshot)
    path.parent.mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
    lake.point(code, snapshot)


@pytest.mark.spark
def test_an_engine_keeps_reading_the_snapshots_it_opened_with(
    spark_session: Any, tmp_path: Path
) -> None:
    lake = Lake(tmp_path / "lake")
    land(lake, "people", OLD, "SELECT range AS n FROM range(5)")
    with SparkEngine(lake, ["people", "never_loaded"]) as old:
        assert old.read == {"people": OLD}
        assert old.tables() == ["people"]
        land(lake, "people", NEW, "SELECT 99 AS n")
        # a second engine at once sees the new snapshot; the first keeps its own
        with open_engine("spark", lake, ["people"], settings=load_settings()) as new:
            assert new.read == {"people": NEW}
            assert new.run("SELECT n FROM people").to_pylist() == [{"n": 99}]
        assert old.run("SELECT count(*) AS c FROM people").to_pylist() == [{"c": 5}]


# ---------------------------------------------------------------------------- translation


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SET threads = 1", "only SELECT"),
        ("CREATE TABLE t AS SELECT 1", "only SELECT"),
        ("INSERT INTO people VALUES (1)", "only SELECT"),
        ("SELECT 1; SELECT 2", "exactly one SQL statement"),
        ("", "exactly one SQL statement"),
        ("SELECT (1", "does not parse"),
        ("SELECT date_trunc('decade', d) FROM t", r"date_trunc\('decade', \.\.\.\) cannot run"),
    ],
)
def test_only_one_query_translates(sql: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message) as caught:
        to_spark(sql)
    assert caught.value.field == "sql"


def test_the_translation_keeps_duckdbs_meaning() -> None:
    assert to_spark("SELECT arg_max(x, t) FROM r;") == (
        "SELECT MAX_BY(x, CASE WHEN NOT x IS NULL THEN t END) FROM r"
    )
    assert to_spark("SELECT date_trunc('day', CAST(t AS DATE)) FROM r") == (
        "SELECT CAST(DATE_TRUNC('DAY', CAST(t AS DATE)) AS TIMESTAMP_NTZ) FROM r"
    )
    assert to_spark("SELECT date_trunc('mons', date_trunc('y', t) + INTERVAL 1 DAY) FROM r") == (
        "SELECT CAST(DATE_TRUNC('MONTH', CAST(DATE_TRUNC('YEAR', t) AS TIMESTAMP_NTZ)"
        " + INTERVAL '1' DAY) AS TIMESTAMP_NTZ) FROM r"
    )
    assert to_spark("SELECT x * 100.0 / NULLIF(y, 0), CAST(x AS DOUBLE) / y FROM r") == (
        "SELECT CAST(x * 100.0 AS DOUBLE) / NULLIF(y, 0), CAST(x AS DOUBLE) / y FROM r"
    )
    assert to_spark("SELECT 'it''s 浙江' FROM r WHERE t = TIMESTAMP '2024-01-01'") == (
        "SELECT 'it\\'s 浙江' FROM r WHERE t = CAST('2024-01-01' AS TIMESTAMP_NTZ)"
    )


# ---------------------------------------------------------------------------- no Java

NO_JAVA = """
import json, os, sys
from shuzhi.core.errors import ShuzhiError
from shuzhi.core.settings import load_settings
from shuzhi.lake.engine import open_engine
from shuzhi.lake.storage import Lake

lake = Lake(sys.argv[1])
answers = []
for java_home in (sys.argv[2], None):
    if java_home is None:
        os.environ.pop("JAVA_HOME", None)
    else:
        os.environ["JAVA_HOME"] = java_home
    try:
        open_engine("spark", lake, ["people"], settings=load_settings())
    except ShuzhiError as exc:
        answers.append(str(exc))
with open_engine("duckdb", lake, ["people"], settings=load_settings()) as engine:
    answers.append(engine.run("SELECT count(*) AS c FROM people").to_pylist())
print(json.dumps(answers, ensure_ascii=False))
"""


@pytest.mark.spark
def test_without_java_spark_fails_in_one_line_and_duckdb_works(tmp_path: Path) -> None:
    need(importlib.util.find_spec("pyspark") is not None, "pyspark is not installed")
    lake = Lake(tmp_path / "lake")
    land(lake, "people", OLD, "SELECT range AS n FROM range(5)")
    empty = tmp_path / "jdk"
    empty.mkdir()
    # a PATH with no java on it (the interpreter is called by its full path)
    bare = tmp_path / "bin"
    bare.mkdir()
    environment = {**os.environ, "PATH": str(bare), "JAVA_HOME": str(empty)}
    done = subprocess.run(
        [sys.executable, "-c", NO_JAVA, str(lake.root), str(empty)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        f"Spark cannot start: JAVA_HOME={empty} has no bin/java (point it at a Java 17+ runtime)",
        "Spark cannot start: no Java runtime found (set JAVA_HOME)",
        [{"c": 5}],
    ]
    assert "Traceback" not in done.stderr
    assert "py4j" not in done.stderr.lower()
