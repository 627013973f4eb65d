"""Every connector stages the same logical data, which then loads the same way: the same
counts, the same typed snapshot, the same refused rows with their source row numbers."""

from __future__ import annotations

import codecs
import uuid
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from shuzhi.core.db import Database
from shuzhi.core.errors import ValidationFailed
from shuzhi.core.permissions import SYSTEM
from shuzhi.core.plugins import hookimpl, manager
from shuzhi.lake import connectors as lake_connectors
from shuzhi.lake import queries
from shuzhi.lake.connectors import SourceSpec, choose, detect_encoding
from shuzhi.lake.models import Batch
from shuzhi.lake.rules import BatchState
from tests.conftest import World
from tests.lake.data import (
    CODE,
    COUNTS,
    NAMES,
    REFUSED,
    ROWS,
    RULE_COUNTS,
    SNAPSHOT,
    SNAPSHOT_TYPES,
    TITLES,
    VALID_A,
    VALID_B,
    Counted,
    ingest,
    snapshot_rows,
    snapshot_types,
    write_csv,
    write_json,
    write_jsonl,
    write_parquet,
    write_sqlite,
    write_xlsx,
)
from tests.support.pgcluster import PgCluster

# the same data through every connector --------------------------------------------------

Source = Callable[[Path], tuple[str, dict[str, Any]]]


def csv_utf8(tmp: Path) -> tuple[str, dict[str, Any]]:
    return str(write_csv(tmp / "people.csv")), {}


def csv_utf8_bom(tmp: Path) -> tuple[str, dict[str, Any]]:
    path = write_csv(tmp / "people.csv", encoding="utf-8-sig")
    assert path.read_bytes().startswith(codecs.BOM_UTF8)
    return str(path), {}


def csv_gbk_detected(tmp: Path) -> tuple[str, dict[str, Any]]:
    return str(write_csv(tmp / "人员.csv", headers=TITLES, encoding="gbk")), {}


def csv_gbk_declared(tmp: Path) -> tuple[str, dict[str, Any]]:
    return str(write_csv(tmp / "人员.csv", headers=TITLES, encoding="gbk")), {"encoding": "gbk"}


def xlsx_first_sheet(tmp: Path) -> tuple[str, dict[str, Any]]:
    return str(write_xlsx(tmp / "人员.xlsx")), {}


def xlsx_named_sheet(tmp: Path) -> tuple[str, dict[str, Any]]:
    path = write_xlsx(tmp / "人员.xlsx", sheet="登记表", header_row=3)
    return str(path), {"sheet": "登记表", "header_row": 3}


def json_array(tmp: Path) -> tuple[str, dict[str, Any]]:
    return str(write_json(tmp / "people.json")), {}


def json_lines(tmp: Path) -> tuple[str, dict[str, Any]]:
    return str(write_jsonl(tmp / "people.jsonl")), {}


def parquet(tmp: Path) -> tuple[str, dict[str, Any]]:
    return str(write_parquet(tmp / "people.parquet")), {}


def sqlite_table(tmp: Path) -> tuple[str, dict[str, Any]]:
    return write_sqlite(tmp / "source.sqlite"), {"table": "people"}


def sqlite_query(tmp: Path) -> tuple[str, dict[str, Any]]:
    url = write_sqlite(tmp / "source.sqlite", table="raw_people")
    return url, {"query": "SELECT * FROM raw_people ORDER BY rowid"}


SOURCES: dict[str, tuple[Source, str]] = {
    "csv-utf8": (csv_utf8, "csv"),
    "csv-utf8-bom": (csv_utf8_bom, "csv"),
    "csv-gbk-detected": (csv_gbk_detected, "csv"),
    "csv-gbk-declared": (csv_gbk_declared, "csv"),
    "xlsx-first-sheet": (xlsx_first_sheet, "xlsx"),
    "xlsx-named-sheet-header-row-3": (xlsx_named_sheet, "xlsx"),
    "json-array": (json_array, "json"),
    "json-lines": (json_lines, "jsonl"),
    "parquet": (parquet, "parquet"),
    "sql-table-sqlite": (sqlite_table, "sql"),
    "sql-query-sqlite": (sqlite_query, "sql"),
}


def assert_loaded_as_expected(db: Database, batch: Batch, connector: str) -> None:
    """The counts, the snapshot and the quarantine that ROWS must give, whatever the source."""
    assert batch.state == BatchState.succeeded.value, batch.error
    assert batch.connector == connector
    counted = Counted.of(batch)
    assert counted.balanced()
    assert counted == Counted(**COUNTS)
    assert batch.rule_counts == RULE_COUNTS
    assert batch.snapshot_rows == len(SNAPSHOT)
    assert snapshot_types() == SNAPSHOT_TYPES
    assert snapshot_rows() == SNAPSHOT
    with db.session() as session:
        refused, total, chosen = queries.quarantine(session, actor=SYSTEM, code=CODE, limit=100)
    assert chosen is not None and chosen.id == batch.id
    assert total == len(REFUSED)
    assert {item.row: (item.rule, item.field, item.value) for item in refused} == REFUSED
    by_row = {item.row: item for item in refused}
    # the whole refused row is kept as the department sent it, typed cells as text
    assert by_row[12].record["age"] == "200"
    assert by_row[12].record["id_card"] == ROWS[11][0]
    assert by_row[19].failures == ["mobile:mobile", "type:age"]
    assert by_row[5].failures == ["primary_key:id_card"]


@pytest.mark.parametrize("name", list(SOURCES))
def test_every_connector_loads_the_same_data_the_same_way(
    name: str, lake_world: World, tmp_path: Path
) -> None:
    make, connector = SOURCES[name]
    location, options = make(tmp_path)
    batch = ingest(lake_world.database, location, **options)
    assert_loaded_as_expected(lake_world.database, batch, connector)
    if location.endswith((".xlsx", ".csv")) and "人员" in location:
        # Chinese headers map by title, and the mobile column by its alias
        assert batch.mapping["公民身份号码"] == "id_card"
        assert batch.mapping["联系电话"] == "mobile"
    else:
        assert batch.mapping == {name: name for name in NAMES}


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["table", "query"])
def test_a_postgresql_table_or_query_loads_like_a_file(
    how: str, lake_world: World, pg_cluster: PgCluster
) -> None:
    name = f"src_{how}_{uuid.uuid4().hex[:10]}"
    url = pg_cluster.create_database(name)
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            columns = ", ".join(f"{column} text" for column in NAMES)
            connection.execute(text(f"CREATE TABLE people (n serial, {columns})"))
            connection.execute(
                text(
                    f"INSERT INTO people ({', '.join(NAMES)}) "
                    f"VALUES ({', '.join(':' + column for column in NAMES)})"
                ),
                [dict(zip(NAMES, item, strict=True)) for item in ROWS],
            )
            # the view leaves out the serial column, so both read the same columns
            connection.execute(
                text(f"CREATE VIEW people_v AS SELECT {', '.join(NAMES)} FROM people ORDER BY n")
            )
    finally:
        engine.dispose()
    try:
        options = (
            {"table": "public.people_v"}
            if how == "table"
            else {"query": f"SELECT {', '.join(NAMES)} FROM people ORDER BY n"}
        )
        batch = ingest(lake_world.database, url, **options)
        assert_loaded_as_expected(lake_world.database, batch, "sql")
        assert "postgresql" in batch.source
    finally:
        pg_cluster.drop_database(name)


# choosing a connector ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "kind", "expected"),
    [
        ("a.csv", None, "csv"),
        ("A.TSV", None, "csv"),
        ("a.xlsx", None, "xlsx"),
        ("a.json", None, "json"),
        ("a.ndjson", None, "jsonl"),
        ("a.parquet", None, "parquet"),
        ("sqlite:///x.db", None, "sql"),
        ("export.dat", "csv", "csv"),
    ],
)
def test_the_connector_follows_the_format_or_the_suffix(
    location: str, kind: str | None, expected: str
) -> None:
    assert choose(SourceSpec(location=location, kind=kind)).kind == expected


def test_an_unknown_format_or_suffix_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValidationFailed, match=r"unknown source format 'dbf'.*csv"):
        choose(SourceSpec(location="a.dbf", kind="dbf"))
    with pytest.raises(ValidationFailed, match=r"cannot tell the format of a\.dbf"):
        choose(SourceSpec(location="/tmp/a.dbf"))


def test_a_database_url_hides_its_password_when_described() -> None:
    spec = SourceSpec(location="postgresql+psycopg://etl:s3cret@db.example/x", table="people")
    assert "s3cret" not in spec.describe()
    assert spec.describe().endswith("table people")


class FixedWidth:
    """A third party's connector: fixed-width text, two columns of five characters."""

    kind = "fixed"
    suffixes = (".fw",)

    def stage(self, con: Any, source: SourceSpec, table: str, progress: Any) -> None:
        lines = Path(source.location).read_text(encoding="utf-8").splitlines()
        con.execute(f"CREATE TABLE {table} (id_card VARCHAR, full_name VARCHAR)")
        for line in lines:
            con.execute(f"INSERT INTO {table} VALUES (?, ?)", [line[:18], line[18:].strip()])


class FixedWidthPlugin:
    @hookimpl
    def shuzhi_connectors(self) -> list[Any]:
        return [FixedWidth()]


def test_a_plugin_adds_a_connector_through_the_same_hook(lake_world: World, tmp_path: Path) -> None:
    plugins = manager()
    plugin = FixedWidthPlugin()
    plugins.register(plugin, name="fixed-width-test")
    try:
        assert "fixed" in lake_connectors.connectors()
        assert {"csv", "xlsx", "json", "jsonl", "parquet", "sql"} <= set(
            lake_connectors.connectors()
        )
        source = tmp_path / "people.fw"
        source.write_text(f"{VALID_A[0]}张三\n{VALID_B[0]}李四\n", encoding="utf-8")
        batch = ingest(lake_world.database, source)
        assert batch.connector == "fixed"
        assert (batch.rows_read, batch.rows_loaded) == (2, 2)
    finally:
        plugins.unregister(plugin)
    assert "fixed" not in lake_connectors.connectors()


# encodings ---------------------------------------------------------------------------


def test_encoding_detection_tells_utf8_bom_and_gbk_apart(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("姓名\n张三\n".encode())
    assert detect_encoding(path, None) == "utf-8"
    path.write_bytes(codecs.BOM_UTF8 + "姓名\n".encode())
    assert detect_encoding(path, None) == "utf-8-sig"
    path.write_bytes("姓名\n张三\n".encode("gbk"))
    assert detect_encoding(path, None) == "gb18030"
    # GBK and GB2312 are read as their superset
    assert detect_encoding(path, "GBK") == "gb18030"
    assert detect_encoding(path, "gb2312") == "gb18030"
    assert detect_encoding(path, "latin-1") == "iso8859-1"


def test_bytes_that_are_neither_utf8_nor_gb18030_ask_for_an_encoding(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"name\n\xff\xfe\x80\n")
    with pytest.raises(ValidationFailed, match="cannot detect the encoding") as caught:
        detect_encoding(path, None)
    assert caught.value.field == "encoding"
    with pytest.raises(ValidationFailed, match="unknown encoding 'klingon'"):
        detect_encoding(path, "klingon")


# staging details -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        (" 张三 ", " 张三 "),
        (True, "true"),
        (False, "false"),
        (35, "35"),
        (35.0, "35"),
        (1234.5, "1234.5"),
        (Decimal("0010.50"), "10.50"),
        (date(1990, 1, 1), "1990-01-01"),
        (datetime(1990, 1, 1), "1990-01-01"),
        (datetime(2024, 3, 1, 8, 30), "2024-03-01 08:30:00"),
        (time(8, 30), "08:30:00"),
        (b"\x01\xff", "01ff"),
    ],
)
def test_a_cell_becomes_the_text_a_person_would_have_typed(value: Any, shown: str | None) -> None:
    assert lake_connectors.text(value) == shown


@pytest.mark.parametrize("delimiter", ["\t", ";", "|"])
def test_the_csv_delimiter_is_detected_from_the_header(
    delimiter: str, lake_world: World, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    lines = [delimiter.join(NAMES)] + [
        delimiter.join("" if value is None else value for value in item)
        for item in (VALID_A, VALID_B)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    batch = ingest(lake_world.database, path)
    assert (batch.rows_read, batch.rows_loaded) == (2, 2)


def test_a_quoted_csv_cell_keeps_its_commas_quotes_and_line_breaks(
    lake_world: World, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(f'id_card,full_name\n{VALID_A[0]},"张, ""三""\n第二行"\n', encoding="utf-8")
    ingest(lake_world.database, path)
    [(_id, name)] = [(item[0], item[1]) for item in snapshot_rows()]
    assert name == '张, "三"\n第二行'


def test_a_json_column_of_mixed_types_is_staged_without_json_quotes(
    lake_world: World, tmp_path: Path
) -> None:
    # a department's export writes some mobiles as numbers and some as strings
    path = tmp_path / "people.json"
    path.write_text(
        f'[{{"id_card": "{VALID_A[0]}", "full_name": "张三", "mobile": 13900001111, "age": 74}},'
        f' {{"id_card": "{VALID_B[0]}", "full_name": "李四", "mobile": "18612345678",'
        f' "age": "34"}}]',
        encoding="utf-8",
    )
    batch = ingest(lake_world.database, path)
    assert (batch.rows_loaded, batch.rows_quarantined) == (2, 0), batch.rule_counts
    assert [(item[3], item[6]) for item in snapshot_rows()] == [
        ("13900001111", 74),
        ("18612345678", 34),
    ]


def test_a_typed_parquet_file_is_staged_as_text_then_typed_by_the_catalog(
    lake_world: World, tmp_path: Path
) -> None:
    path = tmp_path / "people.parquet"
    pq.write_table(
        pa.table(
            {
                "id_card": [VALID_A[0], VALID_B[0]],
                "full_name": ["张三", "李四"],
                "age": pa.array([74, 34], pa.int32()),
                "born": [date(1949, 12, 31), date(1990, 1, 1)],
                "active": [True, False],
                "income": [1234.5, 0.0],
                "updated_at": [datetime(2024, 1, 2, 9), datetime(2024, 2, 3, 10, 11, 12)],
            }
        ),
        path,
    )
    batch = ingest(lake_world.database, path)
    assert (batch.rows_loaded, batch.rows_quarantined) == (2, 0), batch.rule_counts
    first = dict(zip(SNAPSHOT_TYPES, snapshot_rows()[0], strict=True))
    assert first["age"] == 74
    assert first["born"] == date(1949, 12, 31)
    assert first["active"] is True
    assert first["income"] == 1234.5
    assert first["updated_at"] == datetime(2024, 1, 2, 9)


def test_xlsx_blank_rows_are_skipped_and_trailing_blank_headers_ignored(
    lake_world: World, tmp_path: Path
) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["公民身份号码", "姓名", None, None])
    sheet.append([VALID_A[0], "张三"])
    sheet.append([None, None])
    sheet.append([VALID_B[0], "李四"])
    book.save(tmp_path / "people.xlsx")
    batch = ingest(lake_world.database, tmp_path / "people.xlsx")
    assert (batch.rows_read, batch.rows_loaded) == (2, 2)


def test_xlsx_values_right_of_the_header_are_refused(lake_world: World, tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["公民身份号码", "姓名"])
    sheet.append([VALID_A[0], "张三", "多出来的"])
    book.save(tmp_path / "people.xlsx")
    with pytest.raises(ValidationFailed, match="right of the last header column"):
        ingest(lake_world.database, tmp_path / "people.xlsx")


def test_a_database_source_needs_a_table_or_a_query() -> None:
    with duckdb.connect() as con, pytest.raises(ValidationFailed, match="--table or --query"):
        lake_connectors.SqlConnector().stage(
            con, SourceSpec(location="sqlite://", table="a", query="SELECT 1"), "t", lambda n: None
        )
