"""The Spark engine: SQL written once for DuckDB, translated by sqlglot, run by Spark over
the same snapshot Parquet files.

One SparkSession is started per process and shared, since a JVM takes seconds to start;
each engine works in a session of its own on top of it (``newSession``), so its views,
pinned to the snapshots it saw, are its own. Spark is the optional ``spark`` extra: an
engine that cannot start fails with one line (``ConfigurationError``) and DuckDB carries on.

Queries keep DuckDB's meaning. Where sqlglot's translation is right in syntax but not in
result, ``to_spark`` rewrites the tree; each rewrite says what differs. Differences left
alone, which SQL meant for both engines avoids:

- dividing by zero: DuckDB answers ``inf``/``NaN``, Spark fails the query (divide by
  ``NULLIF(y, 0)``);
- a fractional number cast to an integer: DuckDB rounds half to even, Spark truncates;
- ``date_diff('month', a, b)``: DuckDB counts month boundaries, Spark whole months;
- a DATE plus an INTERVAL: DuckDB answers a TIMESTAMP, Spark a DATE (cast the result);
- ``quantile_cont(x, q)``, ``week(d)`` and ``extract(epoch ...)`` do not translate (Spark
  fails the query; ``median`` does).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from shuzhi.core.errors import ConfigurationError, ValidationFailed
from shuzhi.lake.storage import Lake

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

JAVA_NEEDED = 17  # Spark 4 runs on Java 17 or later

# only these units truncate the same way in both (weeks start on Monday in both)
TRUNC_UNITS = {
    **dict.fromkeys(("YEAR", "YEARS", "Y", "YR", "YRS"), "YEAR"),
    **dict.fromkeys(("QUARTER", "QUARTERS"), "QUARTER"),
    **dict.fromkeys(("MONTH", "MONTHS", "MON", "MONS"), "MONTH"),
    **dict.fromkeys(("WEEK", "WEEKS", "W"), "WEEK"),
    **dict.fromkeys(("DAY", "DAYS", "D", "DAYOFMONTH"), "DAY"),
    **dict.fromkeys(("HOUR", "HOURS", "H", "HR", "HRS"), "HOUR"),
    **dict.fromkeys(("MINUTE", "MINUTES", "M", "MIN", "MINS"), "MINUTE"),
    **dict.fromkeys(("SECOND", "SECONDS", "S", "SEC", "SECS"), "SECOND"),
}

# Spark's chatter (log profile, shell log level, native-hadoop warning) is not the user's
# business, nor are the failed tasks of a failed query: the query's error says it once
LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = stderr
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.shell.name = org.apache.spark.api.python.PythonGatewayServer
logger.shell.level = error
logger.executor.name = org.apache.spark.executor.Executor
logger.executor.level = off
logger.tasks.name = org.apache.spark.scheduler.TaskSetManager
logger.tasks.level = off
"""
# pyspark logs each failed query's error (as JSON, to stderr) before raising it
PYSPARK_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")

# each engine's session, whatever a cluster's defaults say
SESSION_CONF = {
    # DuckDB's TIMESTAMP is naive: read Parquet's naive timestamps as TIMESTAMP_NTZ, and
    # compute the rest (DATE_TRUNC, casts) in UTC so that no wall-clock time shifts
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    # a bad cast or an overflow fails the query, as in DuckDB, instead of giving NULL
    "spark.sql.ansi.enabled": "true",
    # a query names resources, never files (no parquet.`/etc/...`)
    "spark.sql.runSQLOnFiles": "false",
}

_lock = threading.Lock()
_session: SparkSession | None = None


class SparkEngine:
    name = "spark"

    def __init__(
        self,
        lake: Lake,
        codes: Iterable[str],
        *,
        master: str = "local[2]",
        driver_memory: str = "2g",
        shuffle_partitions: int = 4,
    ) -> None:
        shared = shared_session(master=master, driver_memory=driver_memory)
        self._read: dict[str, str] = {}
        self._views: set[str] = set()
        try:
            self.spark = shared.newSession()
            for key, value in {
                **SESSION_CONF,
                "spark.sql.shuffle.partitions": str(int(shuffle_partitions)),
            }.items():
                self.spark.conf.set(key, value)
            for code in codes:
                snapshot = lake.current(code)
                if snapshot is None:
                    continue
                path = lake.snapshot_file(code, snapshot)
                self.spark.read.parquet(str(path)).createOrReplaceTempView(code)
                self._views.add(code)
                self._read[code] = snapshot
        except _spark_errors() as exc:
            raise ConfigurationError(f"Spark cannot read the lake: {_first_line(exc)}") from None

    @property
    def read(self) -> dict[str, str]:
        return dict(self._read)

    def tables(self) -> list[str]:
        return sorted(self._read)

    def run(self, sql: str) -> pa.Table:
        """One query in DuckDB's dialect, run by Spark; the rows typed as DuckDB types them."""
        translated = to_spark(sql)
        try:
            return _as_duckdb_types(self.spark.sql(translated).toArrow())
        except _spark_errors() as exc:
            raise ValidationFailed(f"query failed: {_first_line(exc)}", field="sql") from None

    def register(self, name: str, table: pa.Table) -> None:
        """Make an in-memory Arrow table queryable as ``name`` (replacing one so named)."""
        from pyspark.sql.pandas.types import from_arrow_schema

        try:
            # a naive timestamp stays naive (TIMESTAMP_NTZ), as it is in DuckDB
            schema = from_arrow_schema(table.schema, prefer_timestamp_ntz=True)
            self.spark.createDataFrame(table, schema=schema).createOrReplaceTempView(name)
            self._views.add(name)
        except _spark_errors() as exc:
            raise ValidationFailed(f"cannot register {name}: {_first_line(exc)}") from None

    def close(self) -> None:
        """Drop this engine's views; the shared session stays up for the next engine."""
        with contextlib.suppress(*_spark_errors()):
            for view in self._views:
                self.spark.catalog.dropTempView(view)
        self._views.clear()

    def __enter__(self) -> SparkEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------- translation


def to_spark(sql: str) -> str:
    """One DuckDB query as Spark SQL with the same result; anything else is refused."""
    try:
        trees = [tree for tree in sqlglot.parse(sql, read="duckdb") if tree is not None]
    except SqlglotError as exc:
        raise ValidationFailed(f"query does not parse: {_first_line(exc)}", field="sql") from None
    if len(trees) != 1:
        raise ValidationFailed("give exactly one SQL statement", field="sql")
    if not isinstance(trees[0], exp.Query):
        raise ValidationFailed("only SELECT queries run on Spark", field="sql")
    tree = trees[0].transform(_duckdb_meaning)
    try:
        return tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise ValidationFailed(
            f"query cannot run on Spark: {_first_line(exc)}", field="sql"
        ) from None


def _duckdb_meaning(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.DateTrunc | exp.TimestampTrunc):
        return _date_trunc(node)
    if isinstance(node, exp.ArgMax | exp.ArgMin):
        # DuckDB's arg_max(x, t) skips rows whose x is NULL; Spark's max_by(x, t) returns
        # the NULL of the row with the greatest t. Hiding t where x is NULL makes Spark
        # skip those rows too (max_by ignores rows whose ordering is NULL).
        value = node.this
        node.set(
            "expression",
            exp.case().when(
                exp.not_(exp.Is(this=value.copy(), expression=exp.null())), node.expression
            ),
        )
    elif isinstance(node, exp.Div) and not _is_double(node.this):
        # DuckDB's "/" always answers DOUBLE; Spark divides DECIMALs (x * 100.0 / y) into
        # a DECIMAL, so the numerator is made DOUBLE and Spark follows with the rest
        node.set("this", exp.cast(node.this, exp.DataType.Type.DOUBLE))
    return node


def _date_trunc(node: exp.DateTrunc | exp.TimestampTrunc) -> exp.Expression:
    """DuckDB's date_trunc answers a TIMESTAMP for a DATE and for a TIMESTAMP. sqlglot
    writes Spark's TRUNC for a DATE, which answers a DATE and knows no 'DAY' (it returns
    NULL), and DATE_TRUNC for a TIMESTAMP, which answers a TIMESTAMP with time zone.
    Spark's DATE_TRUNC made naive (the session is in UTC) gives DuckDB's answer for both."""
    unit = node.text("unit").upper()
    if unit not in TRUNC_UNITS:
        raise ValidationFailed(
            f"date_trunc('{unit.lower()}', ...) cannot run on Spark", field="sql"
        )
    inner = node.this.transform(_duckdb_meaning)  # a replaced node's children are not visited
    truncated = exp.TimestampTrunc(this=inner, unit=exp.var(TRUNC_UNITS[unit]))
    return exp.cast(truncated, exp.DataType.Type.TIMESTAMPNTZ)


def _is_double(node: exp.Expression) -> bool:
    return isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.DOUBLE)


# ---------------------------------------------------------------------------- results


def _as_duckdb_types(table: pa.Table) -> pa.Table:
    """Spark's Arrow types brought to DuckDB's: DuckDB answers BIGINT where Spark answers
    INT (rank, row_number, length, year, extract, datediff); strings are plain strings;
    nullability, which DuckDB never declares, is dropped."""
    fields = []
    for field in table.schema:
        kind = field.type
        if pa.types.is_integer(kind) and kind.bit_width < 64:
            kind = pa.int64()
        elif pa.types.is_large_string(kind):
            kind = pa.string()
        elif pa.types.is_large_binary(kind):
            kind = pa.binary()
        fields.append(pa.field(field.name, kind))
    schema = pa.schema(fields)
    return table if schema.equals(table.schema) else table.cast(schema)


# ---------------------------------------------------------------------------- the session


def shared_session(*, master: str, driver_memory: str) -> SparkSession:
    """The process's SparkSession, started on first use. Its JVM settings (master, driver
    memory) are those of the first call: a JVM holds one SparkContext."""
    global _session
    with _lock:
        if _session is None or _session.sparkContext._jsc is None:  # stopped
            _session = _start(master=master, driver_memory=driver_memory)
        return _session


def _start(*, master: str, driver_memory: str) -> SparkSession:
    try:
        from pyspark.logger import PySparkLogger
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigurationError(
            "Spark cannot start: pyspark is not installed (install the 'spark' extra)"
        ) from None
    for name in PYSPARK_LOGGERS:
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
    problem = java_problem()
    if problem:
        raise ConfigurationError(f"Spark cannot start: {problem}")
    local = master.startswith("local")
    with tempfile.TemporaryDirectory(prefix="shuzhi-spark-") as folder:
        log_config = Path(folder) / "log4j2.properties"
        log_config.write_text(LOG4J2)
        builder = (
            SparkSession.builder.master(master)
            .appName("shuzhi")
            .config("spark.driver.memory", driver_memory)
            .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={log_config}")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")
        )
        if local:
            # one machine: nothing listens beyond it (a cluster's executors must reach it)
            builder = builder.config("spark.driver.host", "127.0.0.1").config(
                "spark.driver.bindAddress", "127.0.0.1"
            )
        try:
            with _environment(SPARK_LOCAL_IP="127.0.0.1" if local else None):
                return builder.getOrCreate()
        except Exception as exc:  # the JVM's failures reach Python in many shapes
            raise ConfigurationError(f"Spark cannot start: {_first_line(exc)}") from None


def java_problem() -> str | None:
    """Why no Java can run Spark, looking where Spark's launcher looks; None if one can."""
    home = os.environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        if not os.access(java, os.X_OK):
            return f"JAVA_HOME={home} has no bin/java (point it at a Java {JAVA_NEEDED}+ runtime)"
        command = str(java)
    else:
        found = shutil.which("java")
        if found is None:
            return "no Java runtime found (set JAVA_HOME)"
        command = found
    version = _java_version(command)
    if version is not None and version < JAVA_NEEDED:
        return f"Java {version} at {command} is too old; Spark needs Java {JAVA_NEEDED} or later"
    return None


def _java_version(java: str) -> int | None:
    try:
        shown = subprocess.run(
            [java, "-XshowSettings:properties", "-version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    for line in shown.splitlines():
        name, _, value = line.strip().partition(" = ")
        if name == "java.specification.version":
            major = value.removeprefix("1.").split(".")[0]
            return int(major) if major.isdigit() else None
    return None


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    """Variables for the JVM being launched, unless already set; put back afterwards."""
    added = [name for name, value in values.items() if value and name not in os.environ]
    for name in added:
        os.environ[name] = values[name] or ""
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _spark_errors() -> tuple[type[BaseException], ...]:
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    return (PySparkException, Py4JError)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # a Java exception pyspark does not translate reads "An error occurred while calling
    # o42.sql." first; the Java exception's own message says what went wrong
    java = getattr(exc, "java_exception", None)
    if java is not None:
        with contextlib.suppress(Exception):
            text = str(java.toString()).strip()
    return text.splitlines()[0] if text else type(exc).__name__
