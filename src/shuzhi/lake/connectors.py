"""Built-in connectors: CSV, XLSX, JSON, JSON Lines, Parquet and SQL databases.

A connector stages its source into a DuckDB table of text columns named by the source's
own headers, in source order; validation and typing happen later, in one place, for every
connector alike. Text (never the source's own types) is what is staged, so a value that is
refused can be shown exactly as the department sent it.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from shuzhi.core.errors import Message, ValidationFailed
from shuzhi.core.plugins import hookimpl, manager
from shuzhi.lake.rules import literal, quote

Progress = Callable[[int], None]
CHUNK = 1 << 20
ROWS_PER_BATCH = 50_000
# URL query parameters that may carry a credential
SECRET_PARAMETERS = ("pass", "pwd", "secret", "token", "key", "credential", "odbc_connect")


@dataclass(frozen=True)
class SourceSpec:
    """Where a batch comes from: a file path or an SQLAlchemy URL, with reading options."""

    location: str
    kind: str | None = None
    encoding: str | None = None
    sheet: str | None = None
    header_row: int = 1
    delimiter: str | None = None
    table: str | None = None
    query: str | None = None
    temp_dir: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # what batches record as the source when the location is not worth keeping (an
    # uploaded file's temporary path)
    label: str | None = None

    @property
    def is_url(self) -> bool:
        return "://" in self.location

    def describe(self) -> str:
        if self.label:
            return self.label
        if not self.is_url:
            return self.location
        from sqlalchemy.engine import make_url

        try:
            url = make_url(self.location)
            # drivers also take the password (or a whole connection string) as a query
            # parameter; none of it is shown
            hidden = {
                key: "***"
                for key in url.query
                if any(word in key.lower() for word in SECRET_PARAMETERS)
            }
            shown = url.update_query_dict(hidden).render_as_string(hide_password=True)
        except Exception:
            shown = "(unparseable URL)"
        what = f" table {self.table}" if self.table else " query" if self.query else ""
        return shown + what


class Connector(Protocol):
    kind: str
    suffixes: tuple[str, ...]

    def stage(
        self, con: duckdb.DuckDBPyConnection, source: SourceSpec, table: str, progress: Progress
    ) -> str | None:
        """Either return an SQL relation (a table function) that reads the source as text
        columns, or fill ``table`` with them and return None."""
        ...


def connectors() -> dict[str, Connector]:
    found: dict[str, Connector] = {}
    for batch in manager().hook.shuzhi_connectors():
        for connector in batch:
            found.setdefault(connector.kind, connector)
    return found


def choose(source: SourceSpec) -> Connector:
    """The connector named by ``source.kind``, or the one whose suffix the file has."""
    available = connectors()
    if source.kind:
        if source.kind not in available:
            raise ValidationFailed(
                Message(
                    "unknown source format {kind!r}; known: {join}",
                    kind=source.kind,
                    join=", ".join(sorted(available)),
                ),
                field="format",
            )
        return available[source.kind]
    if source.is_url:
        return available["sql"]
    name = source.location.lower()
    for connector in available.values():
        if any(name.endswith(suffix) for suffix in connector.suffixes):
            return connector
    raise ValidationFailed(
        Message(
            "cannot tell the format of {name}; give --format ({join})",
            name=Path(source.location).name,
            join=", ".join(sorted(available)),
        ),
        field="format",
    )


def _file(source: SourceSpec) -> Path:
    path = Path(source.location)
    if not path.is_file():
        raise ValidationFailed(
            Message("no such file: {location}", location=source.location), field="source"
        )
    return path


def _text_table(con: duckdb.DuckDBPyConnection, table: str, headers: list[str]) -> None:
    _check_headers(headers)
    columns = ", ".join(f"{quote(name)} VARCHAR" for name in headers)
    con.execute(f"CREATE TABLE {table} ({columns})")


def _check_headers(headers: list[str]) -> None:
    if not headers:
        raise ValidationFailed(Message("the source has no header row"), field="source")
    blank = [str(position) for position, name in enumerate(headers, 1) if not name]
    if blank:
        raise ValidationFailed(
            Message(
                "header cell {join} is empty; every column needs a name", join=", ".join(blank)
            ),
            field="source",
        )
    seen: set[str] = set()
    for name in headers:
        if name in seen:
            raise ValidationFailed(
                Message("column {name!r} appears twice in the header", name=name), field="source"
            )
        seen.add(name)


def _insert_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    headers: list[str],
    rows: Iterator[list[str | None]],
    progress: Progress,
) -> None:
    """Append rows of text in Arrow batches (bounded memory, however long the source)."""
    width = len(headers)
    schema = pa.schema([(str(position), pa.string()) for position in range(width)])
    buffer: list[list[str | None]] = []

    def flush() -> None:
        columns = list(zip(*buffer, strict=True)) if buffer else [[] for _ in range(width)]
        chunk = pa.table([pa.array(column, pa.string()) for column in columns], schema=schema)
        con.register("_chunk", chunk)
        con.execute(f"INSERT INTO {table} SELECT * FROM _chunk")
        con.unregister("_chunk")
        progress(len(buffer))
        buffer.clear()

    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise ValidationFailed(
                Message(
                    "data row {number} has {len} cells; the header has {width}",
                    number=number,
                    len=len(row),
                    width=width,
                ),
                field="source",
            )
        buffer.append(row)
        if len(buffer) >= ROWS_PER_BATCH:
            flush()
    if buffer:
        flush()


def text(value: Any) -> str | None:
    """A cell as the text a person would have typed; None stays None, blanks become None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.time() == time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return value.hex()
    shown = str(value)
    return shown if shown.strip() else None


# ---------------------------------------------------------------------------- CSV


def detect_encoding(path: Path, declared: str | None) -> str:
    """UTF-8 (with or without BOM) or GB18030 (a superset of GBK), or the declared one."""
    with open(path, "rb") as handle:
        head = handle.read(CHUNK)
    if declared:
        try:
            found = codecs.lookup(declared)
        except LookupError:
            raise ValidationFailed(
                Message("unknown encoding {declared!r}", declared=declared), field="encoding"
            ) from None
        # rot13, hex, base64 …: codecs that do not turn bytes into text
        if not getattr(found, "_is_text_encoding", True):
            raise ValidationFailed(
                Message("{declared!r} is not a text encoding", declared=declared), field="encoding"
            )
        name = found.name
        return "gb18030" if name in ("gbk", "gb2312") else name
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for candidate in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(candidate)(errors="strict").decode(head, final=False)
        except UnicodeDecodeError:
            continue
        return candidate
    raise ValidationFailed(
        Message(
            "cannot detect the encoding of {name} (not UTF-8 nor GBK/GB18030); give --encoding",
            name=path.name,
        ),
        field="encoding",
    )


def transcode(path: Path, encoding: str, target: Path, progress: Progress) -> None:
    """Re-encode to UTF-8 in chunks; the first byte that does not decode stops the batch."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    with open(path, "rb") as source, open(target, "w", encoding="utf-8", newline="") as out:
        while True:
            chunk = source.read(CHUNK)
            try:
                out.write(decoder.decode(chunk, final=not chunk))
            except UnicodeError as exc:  # a UTF-16 or UTF-32 stream without its BOM, too
                where = (
                    Message(" at byte {offset}", offset=offset + exc.start)
                    if hasattr(exc, "start")
                    else ""
                )
                raise ValidationFailed(
                    Message(
                        "{name} is not valid {encoding}{where}; give the right --encoding",
                        name=path.name,
                        encoding=encoding,
                        where=where,
                    ),
                    field="encoding",
                ) from None
            if not chunk:
                return
            offset += len(chunk)
            progress(0)


class CsvConnector:
    kind = "csv"
    suffixes = (".csv", ".txt", ".tsv")

    def stage(
        self, con: duckdb.DuckDBPyConnection, source: SourceSpec, table: str, progress: Progress
    ) -> str:
        path = _file(source)
        encoding = detect_encoding(path, source.encoding)
        if encoding not in ("utf-8", "utf-8-sig"):
            assert source.temp_dir is not None
            source.temp_dir.mkdir(parents=True, exist_ok=True)
            utf8 = source.temp_dir / f"{table}.utf8.csv"
            transcode(path, encoding, utf8, progress)
            path = utf8
        with open(path, encoding="utf-8-sig", newline="") as handle:
            try:
                first = handle.readline()
                # a quoted header may span lines; keep reading until csv has a whole row
                while first.count('"') % 2 and (more := handle.readline()):
                    first += more
            except UnicodeDecodeError:
                raise ValidationFailed(
                    Message(
                        "{name} is not valid UTF-8; give --encoding",
                        name=Path(source.location).name,
                    ),
                    field="encoding",
                ) from None
        delimiter = source.delimiter or _delimiter(first)
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise ValidationFailed(
                Message(
                    "delimiter {delimiter!r} is not usable: give one character "
                    "other than a quote or a line break",
                    delimiter=delimiter,
                ),
                field="delimiter",
            )
        headers = next(csv.reader(io.StringIO(first), delimiter=delimiter), [])
        headers = [name.strip() for name in headers]
        _check_headers(headers)
        columns = "{" + ", ".join(f"{literal(name)}: 'VARCHAR'" for name in headers) + "}"
        # no sniffing: a sniffer that guesses wrong can skip rows without a word; with the
        # dialect fixed, a malformed row is an error naming its line
        return (
            f"read_csv({literal(str(path))}, header = true, auto_detect = false, "
            f"columns = {columns}, delim = {literal(delimiter)}, quote = '\"', escape = '\"', "
            f"strict_mode = true, null_padding = false)"
        )


def _delimiter(header_line: str) -> str:
    counts = {candidate: header_line.count(candidate) for candidate in (",", "\t", ";", "|")}
    best = max(counts, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


# ---------------------------------------------------------------------------- XLSX


class XlsxConnector:
    kind = "xlsx"
    suffixes = (".xlsx", ".xlsm")

    def stage(
        self, con: duckdb.DuckDBPyConnection, source: SourceSpec, table: str, progress: Progress
    ) -> None:
        import zipfile

        from openpyxl import load_workbook

        path = _file(source)
        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise ValidationFailed(
                Message(
                    "{name} is not a readable XLSX workbook: {exc}", name=path.name, exc=str(exc)
                ),
                field="source",
            ) from None
        try:
            if source.sheet:
                if source.sheet not in book.sheetnames:
                    raise ValidationFailed(
                        Message(
                            "{name} has no sheet {sheet!r}; it has {join}",
                            name=path.name,
                            sheet=source.sheet,
                            join=", ".join(book.sheetnames),
                        ),
                        field="sheet",
                    )
                sheet = book[source.sheet]
            else:
                sheet = book.worksheets[0]
            rows = sheet.iter_rows(min_row=source.header_row, values_only=True)
            header = next(rows, None)
            if header is None:
                raise ValidationFailed(Message("{name} is empty", name=path.name), field="source")
            headers = [text(cell) or "" for cell in header]
            while headers and not headers[-1]:
                headers.pop()
            width = len(headers)
            _text_table(con, table, headers)

            def cells() -> Iterator[list[str | None]]:
                for row in rows:
                    values = [text(cell) for cell in row]
                    if any(values[width:]):
                        raise ValidationFailed(
                            Message(
                                "{name}: a row has values right of the last header column",
                                name=path.name,
                            ),
                            field="source",
                        )
                    values = (values + [None] * width)[:width]
                    if any(value is not None for value in values):
                        yield values

            _insert_rows(con, table, headers, cells(), progress)
        finally:
            book.close()


# ---------------------------------------------------------------------------- JSON, Parquet


def _as_text(con: duckdb.DuckDBPyConnection, table: str, relation_sql: str, name: str) -> None:
    try:
        columns = con.execute(f"DESCRIBE SELECT * FROM {relation_sql}").fetchall()
        headers = [column[0] for column in columns]
        _check_headers(headers)
        # a column of mixed JSON types is JSON: its strings are unwrapped (no quotes)
        casts = ", ".join(
            f"json_extract_string({quote(name)}, '$') AS {quote(name)}"
            if kind == "JSON"
            else f"to_json({quote(name)})::VARCHAR AS {quote(name)}"
            if kind.startswith(("STRUCT", "MAP")) or kind.endswith("]")
            else f"CAST({quote(name)} AS VARCHAR) AS {quote(name)}"
            for name, kind in ((column[0], column[1]) for column in columns)
        )
        con.execute(f"CREATE TABLE {table} AS SELECT {casts} FROM {relation_sql}")
    except duckdb.Error as exc:
        raise ValidationFailed(
            Message(
                "{name} does not parse: {value}", name=name, value=str(exc).strip().splitlines()[0]
            ),
            field="source",
        ) from None


class JsonConnector:
    kind = "json"
    suffixes = (".json",)
    layout = "array"

    def stage(
        self, con: duckdb.DuckDBPyConnection, source: SourceSpec, table: str, progress: Progress
    ) -> None:
        path = _file(source)
        # numbers and dates stay text as written: no sniffing that could turn 007 into 7
        relation = (
            f"read_json({literal(str(path))}, format = {literal(self.layout)}, "
            "records = true, maximum_object_size = 134217728, sample_size = -1, "
            "convert_strings_to_integers = false, dateformat = 'none', timestampformat = 'none')"
        )
        _as_text(con, table, relation, path.name)


class JsonLinesConnector(JsonConnector):
    kind = "jsonl"
    suffixes = (".jsonl", ".ndjson")
    layout = "newline_delimited"


class ParquetConnector:
    kind = "parquet"
    suffixes = (".parquet",)

    def stage(
        self, con: duckdb.DuckDBPyConnection, source: SourceSpec, table: str, progress: Progress
    ) -> None:
        path = _file(source)
        _as_text(con, table, f"read_parquet({literal(str(path))})", path.name)


# ---------------------------------------------------------------------------- SQL


class SqlConnector:
    kind = "sql"
    suffixes = ()

    def stage(
        self, con: duckdb.DuckDBPyConnection, source: SourceSpec, table: str, progress: Progress
    ) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy import text as sql_text
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

        if bool(source.table) == bool(source.query):
            raise ValidationFailed(
                Message("a database source needs either --table or --query"), field="table"
            )
        if source.table:
            parts = source.table.split(".")
            statement = "SELECT * FROM " + ".".join(quote(part) for part in parts)
        else:
            statement = source.query or ""
        try:
            engine = create_engine(source.location)
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            raise ValidationFailed(
                Message("not a usable database URL: {exc}", exc=str(exc)), field="source"
            ) from None
        try:
            _check_database_file(engine.url)
            with engine.connect() as connection:
                _read_only(connection)
                result = connection.execution_options(stream_results=True).execute(
                    sql_text(statement)
                )
                headers = list(result.keys())
                _text_table(con, table, headers)

                def rows() -> Iterator[list[str | None]]:
                    while chunk := result.fetchmany(ROWS_PER_BATCH):
                        for row in chunk:
                            yield [text(value) for value in row]

                _insert_rows(con, table, headers, rows(), progress)
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise ValidationFailed(
                Message(
                    "cannot read {describe}: {reason}", describe=source.describe(), reason=reason
                ),
                field="source",
            ) from None
        finally:
            engine.dispose()


def _check_database_file(url: Any) -> None:
    """A file database is read where it lies: one that is not there is missing, and its
    driver must not create an empty one in its place (SQLite and DuckDB would)."""
    if url.get_backend_name() not in ("sqlite", "duckdb"):
        return
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    if not Path(database).is_file():
        raise ValidationFailed(
            Message("no such file: {location}", location=database), field="source"
        )


def _read_only(connection: Any) -> None:
    """A source is read, never written: the statement of a registered source runs in a
    read-only session where the database offers one."""
    backend = connection.dialect.name
    if backend == "sqlite":
        connection.exec_driver_sql("PRAGMA query_only = ON")
    elif backend == "postgresql":
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")


@hookimpl
def shuzhi_connectors() -> list[Connector]:
    return [
        CsvConnector(),
        XlsxConnector(),
        JsonConnector(),
        JsonLinesConnector(),
        ParquetConnector(),
        SqlConnector(),
    ]
