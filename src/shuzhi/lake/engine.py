"""Compute engines: one small protocol, ``run(sql) -> Arrow table``, over current snapshots.

DuckDB is the embedded default; Spark (``spark.SparkEngine``, the ``spark`` extra) runs the
same DuckDB SQL, translated, over the same Parquet files. Each resource with a current
snapshot is a view named by its code; an engine pins the snapshots it saw when it was
opened (``read``), so a query and its lineage agree even while batches land.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, Self

import duckdb
import pyarrow as pa

from shuzhi.core.errors import ValidationFailed
from shuzhi.core.settings import Settings
from shuzhi.lake.rules import literal, quote
from shuzhi.lake.storage import Lake


class ComputeEngine(Protocol):
    name: str

    def run(self, sql: str) -> pa.Table: ...

    def register(self, name: str, table: pa.Table) -> None:
        """Make an in-memory Arrow table queryable as ``name``, replacing one so named."""
        ...

    @property
    def read(self) -> dict[str, str]:
        """The snapshot of each resource the engine reads, for lineage."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


ENGINES = ("duckdb", "spark")


def open_engine(
    kind: str, lake: Lake, codes: Iterable[str], *, settings: Settings
) -> ComputeEngine:
    """The engine named ``kind`` over the current snapshots of ``codes``."""
    if kind == "duckdb":
        return DuckDBEngine(
            lake, codes, memory_limit=settings.lake.memory_limit, threads=settings.lake.threads
        )
    if kind == "spark":
        # imported here: only Spark's users pay for sqlglot, and pyspark is an extra
        from shuzhi.lake.spark import SparkEngine

        return SparkEngine(
            lake,
            codes,
            master=settings.brain.spark_master,
            driver_memory=settings.brain.spark_driver_memory,
            shuffle_partitions=settings.brain.spark_shuffle_partitions,
        )
    raise ValidationFailed(
        f"unknown engine {kind!r}; choose one of {', '.join(ENGINES)}", field="engine"
    )


def connect(
    *, temp_dir: Path | None, memory_limit: str, threads: int | None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that spills to ``temp_dir`` rather than exceed its memory
    (DuckDB creates the folder when it first spills and removes it when closed, so each
    connection needs one of its own). Without one it would spill to ``.tmp`` in the
    working directory, wherever the process was started."""
    con = duckdb.connect(":memory:")
    # progress is the caller's to show; DuckDB's own bar would write to the terminal
    con.execute("SET enable_progress_bar = false")
    if temp_dir is not None:
        temp_dir.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = {literal(str(temp_dir))}")
    con.execute(f"SET memory_limit = {literal(memory_limit)}")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


_readers: dict[tuple[Path, str, int | None], duckdb.DuckDBPyConnection] = {}
_readers_lock = threading.Lock()


def reader(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A cursor on this process's one DuckDB for short reads of snapshots (a gateway
    page, an indicator's values), for the caller to close. Opening a DuckDB costs about
    25 ms, more than such a read; cursors share one safely across threads."""
    key = (settings.lake_dir, settings.lake.memory_limit, settings.lake.threads)
    with _readers_lock:
        con = _readers.get(key)
        if con is None:
            con = _readers[key] = connect(
                temp_dir=Lake(key[0]).temp_dir / f"reads-{os.getpid()}",
                memory_limit=key[1],
                threads=key[2],
            )
        return con.cursor()


class DuckDBEngine:
    name = "duckdb"

    def __init__(
        self,
        lake: Lake,
        codes: Iterable[str],
        *,
        memory_limit: str = "4GB",
        threads: int | None = None,
        read_only: bool = True,
    ) -> None:
        self.con = connect(
            temp_dir=lake.temp_dir / f"query-{uuid.uuid4().hex}",
            memory_limit=memory_limit,
            threads=threads,
        )
        self._read: dict[str, str] = {}
        for code in codes:
            snapshot = lake.current(code)
            if snapshot is None:
                continue
            path = lake.snapshot_file(code, snapshot)
            self.con.execute(
                f"CREATE VIEW {quote(code)} AS SELECT * FROM read_parquet({literal(str(path))})"
            )
            self._read[code] = snapshot
        if read_only:
            # the views keep working; nothing else on disk can be read or written, and a
            # query cannot switch that back on
            self.con.execute(f"SET allowed_directories = [{literal(str(lake.root))}]")
            self.con.execute("SET enable_external_access = false")
            self.con.execute("SET lock_configuration = true")

    @property
    def read(self) -> dict[str, str]:
        return dict(self._read)

    def tables(self) -> list[str]:
        return sorted(self._read)

    def register(self, name: str, table: pa.Table) -> None:
        # a scan of the caller's own memory: allowed with external access off and the
        # configuration locked
        try:
            self.con.register(name, table)
        except duckdb.Error as exc:
            raise ValidationFailed(f"cannot register {name}: {_first_line(exc)}") from None

    def run(self, sql: str) -> pa.Table:
        try:
            relation = self.con.sql(sql)
            return relation.to_arrow_table() if relation is not None else pa.table({})
        except duckdb.Error as exc:
            raise ValidationFailed(f"query failed: {_first_line(exc)}", field="sql") from None

    def query(self, sql: str, *, limit: int) -> tuple[pa.Table, bool]:
        """A single read-only statement, at most ``limit`` rows; returns (rows, truncated)."""
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise ValidationFailed(
                f"query does not parse: {_first_line(exc)}", field="sql"
            ) from None
        if len(statements) != 1:
            raise ValidationFailed("give exactly one SQL statement", field="sql")
        if statements[0].type != duckdb.StatementType.SELECT:
            raise ValidationFailed("only SELECT queries are allowed over the lake", field="sql")
        inner = statements[0].query.strip().rstrip(";")
        try:
            # the newline ends a trailing "-- comment" before the closing parenthesis
            table = self.con.sql(
                f"SELECT * FROM ({inner}\n) LIMIT {int(limit) + 1}"
            ).to_arrow_table()
        except duckdb.Error as exc:
            raise ValidationFailed(f"query failed: {_first_line(exc)}", field="sql") from None
        return table.slice(0, limit), table.num_rows > limit

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> DuckDBEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
