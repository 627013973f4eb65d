"""The DuckDB engine over current snapshots: one read-only SELECT, nothing outside the lake;
Arrow tables registered beside the views; engines opened by name."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from shuzhi.core.errors import ValidationFailed
from shuzhi.core.settings import load_settings
from shuzhi.lake.engine import DuckDBEngine, open_engine
from shuzhi.lake.storage import Lake

OLD = "20240301T080000-b1"
NEW = "20240302T080000-b2"


def land(lake: Lake, code: str, snapshot: str, sql: str) -> None:
    path = lake.snapshot_file(code, snapshot)
    path.parent.mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
    lake.point(code, snapshot)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "lake")
    land(lake, "people", OLD, "SELECT range AS n, 'p' || range AS name FROM range(5)")
    land(lake, "firms", OLD, "SELECT range AS n FROM range(3)")
    return lake


def test_each_resource_with_a_snapshot_is_a_view_named_by_its_code(lake: Lake) -> None:
    with DuckDBEngine(lake, ["people", "firms", "never_loaded"]) as engine:
        assert engine.tables() == ["firms", "people"]
        assert engine.read == {"people": OLD, "firms": OLD}
        table, truncated = engine.query(
            "SELECT count(*) AS n FROM people JOIN firms USING (n)", limit=10
        )
        assert table.to_pylist() == [{"n": 3}]
        assert not truncated
        with pytest.raises(ValidationFailed, match="never_loaded"):
            engine.query("SELECT * FROM never_loaded", limit=10)


def test_an_engine_keeps_reading_the_snapshots_it_opened_with(lake: Lake) -> None:
    with DuckDBEngine(lake, ["people"]) as engine:
        land(lake, "people", NEW, "SELECT 99 AS n, 'new' AS name")
        table, _ = engine.query("SELECT count(*) AS c FROM people", limit=10)
        assert table.to_pylist() == [{"c": 5}]
        assert engine.read == {"people": OLD}
    with DuckDBEngine(lake, ["people"]) as engine:
        assert engine.query("SELECT name FROM people", limit=10)[0].to_pylist() == [{"name": "new"}]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT name FROM people ORDER BY n",
        "SELECT name FROM people ORDER BY n;",
        "  select name from people order by n  ;  ",
        "WITH p AS (SELECT * FROM people) SELECT name FROM p ORDER BY n",
        "FROM people SELECT name ORDER BY n",
        "SELECT name FROM people ORDER BY n -- the first five",
        "SELECT name /* all of them */ FROM people ORDER BY n",
    ],
)
def test_one_select_in_any_of_its_spellings_is_allowed(lake: Lake, sql: str) -> None:
    with DuckDBEngine(lake, ["people"]) as engine:
        table, truncated = engine.query(sql, limit=10)
    assert table.column("name").to_pylist() == ["p0", "p1", "p2", "p3", "p4"]
    assert not truncated


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("CREATE TABLE t AS SELECT * FROM people", "only SELECT"),
        ("DROP VIEW people", "only SELECT"),
        ("INSERT INTO people VALUES (9, 'x')", "only SELECT"),
        ("COPY people TO '/tmp/stolen.csv'", "only SELECT"),
        ("ATTACH '/tmp/other.duckdb'", "only SELECT"),
        ("SET enable_external_access = true", "only SELECT"),
        ("PRAGMA database_list", "only SELECT"),
        ("INSTALL httpfs", "only SELECT"),
        ("EXPLAIN SELECT * FROM people", "only SELECT"),
        ("SELECT 1; SELECT 2", "exactly one SQL statement"),
        ("SELECT 1; DROP VIEW people", "exactly one SQL statement"),
        ("SELEC name FROM people", "does not parse"),
        ("SELECT nope FROM people", "query failed"),
    ],
)
def test_anything_but_one_select_is_refused(lake: Lake, sql: str, message: str) -> None:
    with DuckDBEngine(lake, ["people"]) as engine:
        with pytest.raises(ValidationFailed, match=message) as caught:
            engine.query(sql, limit=10)
        assert caught.value.field == "sql"
        # and the lake is as it was
        assert engine.query("SELECT count(*) AS c FROM people", limit=1)[0].to_pylist() == [
            {"c": 5}
        ]
    assert not Path("/tmp/stolen.csv").exists()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM glob('/etc/*')",
    ],
)
def test_a_select_cannot_read_files_outside_the_lake(lake: Lake, sql: str) -> None:
    with (
        DuckDBEngine(lake, ["people"]) as engine,
        pytest.raises(ValidationFailed, match="query failed"),
    ):
        engine.query(sql, limit=10)


def test_a_select_cannot_switch_file_access_back_on(lake: Lake) -> None:
    with DuckDBEngine(lake, ["people"]) as engine:
        with pytest.raises(ValidationFailed):
            engine.run("SET enable_external_access = true")
        with pytest.raises(ValidationFailed, match="query failed"):
            engine.query("SELECT * FROM read_csv('/etc/passwd')", limit=10)


def test_results_stop_at_the_limit_and_say_so(lake: Lake) -> None:
    with DuckDBEngine(lake, ["people"]) as engine:
        table, truncated = engine.query("SELECT * FROM people", limit=4)
        assert (table.num_rows, truncated) == (4, True)
        table, truncated = engine.query("SELECT * FROM people", limit=5)
        assert (table.num_rows, truncated) == (5, False)


def test_an_engine_that_is_not_read_only_runs_any_statement(lake: Lake) -> None:
    with DuckDBEngine(lake, ["people"], read_only=False) as engine:
        engine.run("CREATE TABLE t AS SELECT * FROM people")
        assert engine.run("SELECT count(*) AS c FROM t").to_pylist() == [{"c": 5}]


def test_a_registered_arrow_table_joins_the_views_of_a_locked_engine(lake: Lake) -> None:
    ancestors = pa.table({"n": [0, 1, 1], "ancestor": ["杭州", "杭州", "浙江"]})
    with DuckDBEngine(lake, ["people"]) as engine:
        engine.register("ancestors", ancestors)
        sql = (
            "SELECT a.ancestor, count(*) AS c FROM people JOIN ancestors AS a USING (n) "
            "GROUP BY 1 ORDER BY 1"
        )
        assert engine.run(sql).to_pylist() == [
            {"ancestor": "杭州", "c": 2},
            {"ancestor": "浙江", "c": 1},
        ]
        engine.register("ancestors", ancestors.slice(0, 1))
        assert engine.run("SELECT count(*) AS c FROM ancestors").to_pylist() == [{"c": 1}]
        # registering did not open the files outside the lake
        with pytest.raises(ValidationFailed, match="query failed"):
            engine.query("SELECT * FROM read_csv('/etc/passwd')", limit=10)


def test_an_engine_is_opened_by_its_name(lake: Lake) -> None:
    settings = load_settings(lake={"memory_limit": "1GB", "threads": 1})
    with open_engine("duckdb", lake, ["people"], settings=settings) as engine:
        assert engine.name == "duckdb"
        assert engine.read == {"people": OLD}
        assert engine.run("SELECT current_setting('threads') AS t").to_pylist() == [{"t": 1}]
    with pytest.raises(ValidationFailed, match="unknown engine 'oracle'") as caught:
        open_engine("oracle", lake, ["people"], settings=settings)
    assert caught.value.field == "engine"


# a sort of 1.5 million strings: more than 64 MB holds
SPILLING = (
    "SELECT max(m) AS m FROM (SELECT m FROM (SELECT md5(range::VARCHAR) AS m "
    "FROM range(2000000)) ORDER BY m LIMIT 1500000)"
)


def test_a_query_too_large_for_memory_spills_inside_the_lake_not_where_it_started(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    seen: list[list[str]] = []
    with DuckDBEngine(lake, ["people"], memory_limit="64MB", threads=1) as engine:
        folder = Path(
            engine.con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
        )
        assert folder.parent == lake.temp_dir
        assert engine.run(SPILLING).num_rows == 1
        seen.append(sorted(path.name for path in folder.iterdir()))
    assert seen[0], "the sort did not spill: the test proves nothing"
    assert not folder.exists()  # DuckDB removes its folder when the engine closes
    assert not (elsewhere / ".tmp").exists()


def test_the_shared_reader_spills_inside_the_lake(tmp_path: Path) -> None:
    import os

    from shuzhi.lake.engine import reader

    settings = load_settings(data_dir=tmp_path / "data", lake={"memory_limit": "64MB"})
    cursor = reader(settings)
    try:
        folder = Path(cursor.execute("SELECT current_setting('temp_directory')").fetchall()[0][0])
        assert folder == settings.lake_dir / ".tmp" / f"reads-{os.getpid()}"
        assert cursor.execute(SPILLING).fetchall()[0][0] is not None
        assert any(folder.iterdir())
    finally:
        cursor.close()
