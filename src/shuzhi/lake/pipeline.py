"""One batch inside DuckDB: stage, map, fingerprint, validate, write the snapshot and the
quarantine, measure quality and scan for personal data.

The pipeline knows nothing of the metadata store: ``service.ingest`` records what it
reports. Every step is SQL over whole columns; Python only assembles the statements.
Each staged row ends in exactly one of: the snapshot (loaded), the quarantine, or the
duplicates dropped, which the counts prove on every batch.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from shuzhi.core.errors import Message, ValidationFailed
from shuzhi.core.masking import mask
from shuzhi.lake.connectors import Progress, SourceSpec, choose
from shuzhi.lake.rules import (
    BANK_CARD,
    EMAIL,
    MOBILE,
    SQL_TYPES,
    Check,
    Mode,
    Rule,
    field_checks,
    literal,
    quote,
    typed,
)

STAGED = "staged"
CHECKED = "checked"
REGIONS = "regions"
# a field declared not personal is flagged when this share of its values looks personal
PII_SHARE = 0.2
PII_SAMPLE_ROWS = 100_000
CITIZEN_ID_SHAPE = r"[1-9][0-9]{5}(19|20)[0-9]{2}(0[1-9]|1[0-2])[0-9]{5}[0-9Xx]"


@dataclass
class Counts:
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    duplicates: int = 0
    rule_counts: dict[str, int] = field(default_factory=dict)
    snapshot_rows: int = 0

    def balanced(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined + self.duplicates


@dataclass
class QualityFigures:
    rows: int
    completeness: float
    field_completeness: dict[str, float]
    validity: float
    uniqueness: float
    volume_change: float | None


@dataclass
class PiiFinding:
    field: str
    kind: str
    share: float
    example: str


def parse_map(pairs: list[str]) -> dict[str, str]:
    """``'source column=field'`` pairs; an empty field drops the column on purpose."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValidationFailed(
                Message("mapping {pair!r}: write it as 'column=field'", pair=pair), field="map"
            )
        column, _, target = pair.partition("=")
        mapping[column.strip()] = target.strip()
    return mapping


def resolve_mapping(
    headers: list[str], fields: list[dict[str, Any]], overrides: dict[str, str]
) -> dict[str, str]:
    """Source header → field name. Every header must land somewhere (or be dropped on
    purpose with ``--map 'header='``), and every required field must be fed."""
    names = {item["name"] for item in fields}
    by_label: dict[str, str] = {}
    for item in fields:
        for label in (item["name"], item.get("title") or "", *(item.get("aliases") or [])):
            if label:
                by_label.setdefault(label.strip().lower(), item["name"])
    for header, target in overrides.items():
        if target and target not in names:
            raise ValidationFailed(
                Message(
                    "mapping {header}={target}: the resource has no field {target!r}",
                    header=header,
                    target=target,
                ),
                field="map",
            )
        if header not in headers:
            raise ValidationFailed(
                Message(
                    "mapping {header}={target}: the source has no column {header!r}",
                    header=header,
                    target=target,
                ),
                field="map",
            )
    mapping: dict[str, str] = {}
    unmatched = []
    for header in headers:
        if header in overrides:
            target = overrides[header]
        else:
            target = by_label.get(header.strip().lower(), "")
            if not target:
                unmatched.append(header)
                continue
        if target:
            mapping[header] = target
    if unmatched:
        raise ValidationFailed(
            Message(
                "column {join} matches no field (fields: {join2}); map it as "
                "'column=field', drop it as 'column=', or add an alias to "
                "the field",
                join=", ".join(repr(name) for name in unmatched),
                join2=", ".join(sorted(names)),
            ),
            field="map",
        )
    fed = Counter(mapping.values())
    twice = sorted(name for name, count in fed.items() if count > 1)
    if twice:
        raise ValidationFailed(
            Message("field {join} is fed by more than one column", join=", ".join(twice)),
            field="map",
        )
    missing = [
        f"{item['name']} ({item['title']})" if item.get("title") else item["name"]
        for item in fields
        if not item["nullable"] and item["name"] not in fed
    ]
    if missing:
        raise ValidationFailed(
            Message("the source has no column for required field {join}", join=", ".join(missing)),
            field="map",
        )
    return mapping


class Pipeline:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        fields: list[dict[str, Any]],
        mode: Mode,
        overrides: dict[str, str] | None = None,
        watermark: str | None = None,
        regions: list[str] | None = None,
    ) -> None:
        self.con = con
        self.fields = fields
        self.mode = mode
        self.overrides = overrides or {}
        self.watermark = watermark
        self.mapping: dict[str, str] = {}
        self.connector = ""
        self.reading: list[Any] = []
        self._file_digest: tuple[Path, tuple[int, int], Future[str]] | None = None
        names = [item["name"] for item in fields]
        if watermark is not None and watermark not in names:
            raise ValidationFailed(
                Message("watermark {watermark!r} is not a field", watermark=watermark),
                field="watermark",
            )
        keys = [item["name"] for item in fields if item["primary_key"]]
        if mode is Mode.incremental and not keys:
            raise ValidationFailed(
                Message("an incremental load needs a primary key to upsert by"), field="mode"
            )
        # without a declared key, a row is its own key: only exact repeats are dropped
        self.keys = keys or names
        con.execute(
            f"CREATE TABLE {REGIONS} AS SELECT unnest(?::VARCHAR[]) AS code", [regions or []]
        )

    # ------------------------------------------------------------------ stage and map

    def stage(self, source: SourceSpec, progress: Progress) -> None:
        """Open the source (a connector may stream it into a table first) and map it."""
        path = Path(source.location)
        if not source.is_url and path.is_file():
            # hashlib lets go of the interpreter while it hashes, so the file is hashed on
            # the side while the batch opens, reads and checks it
            hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake-digest")
            self._file_digest = (path, _file_state(path), hashing.submit(_sha256, path))
            hashing.shutdown(wait=False)
        connector = choose(source)
        self.connector = connector.kind
        self.source_name = path.name if not source.is_url else "the source"
        self.reading = [connector.kind, *_reading_options(source)]
        self.relation = connector.stage(self.con, source, STAGED, progress) or STAGED
        headers = [
            row[0] for row in self.con.execute(f"DESCRIBE SELECT * FROM {self.relation}").fetchall()
        ]
        self.mapping = resolve_mapping(headers, self.fields, self.overrides)

    def checks(self) -> list[Check]:
        """Every field's checks, reading the typed value from its ``_typed_`` column."""
        found: list[Check] = []
        for item in self.fields:
            found.extend(
                field_checks(
                    item,
                    quote(item["name"]),
                    regions_table=REGIONS,
                    converted=quote("_typed_" + item["name"]),
                )
            )
        return found

    def validate(self) -> int:
        """One pass over the source: every field as text, the failures of each row, and
        (from the table's insertion order) the source row number. Returns rows read."""
        fed = {target: header for header, target in self.mapping.items()}
        columns = ", ".join(
            f"{quote(fed[item['name']])} AS {quote(item['name'])}"
            if item["name"] in fed
            else f"NULL::VARCHAR AS {quote(item['name'])}"
            for item in self.fields
        )
        checks = self.checks()
        # each check once, as a column (NULL counts as passed): a cheap OR over them finds
        # the bad rows, and only for those is the list of failures spelt out as text (a
        # string per row for every row costs seconds)
        verdicts = "".join(
            f", {check.failing} AS _check_{position}" for position, check in enumerate(checks)
        )
        failures = ", ".join(
            f"CASE WHEN _check_{position} THEN {literal(check.rule.value + ':' + check.field)} END"
            for position, check in enumerate(checks)
        )
        bad = " OR ".join(f"_check_{position}" for position in range(len(checks)))
        failures_sql = (
            f"CASE WHEN {bad} THEN concat_ws(',', {failures}) END" if failures else "NULL"
        )
        all_fields = ", ".join(quote(item["name"]) for item in self.fields)
        helpers = "".join(
            f", {expression} AS {name}" for check in checks for name, expression in check.helpers
        )
        typed_values = ", ".join(
            f"CAST({typed(quote(item['name']), item['type'])} AS {SQL_TYPES[item['type']]}) "
            f"AS {quote('_typed_' + item['name'])}"
            for item in self.fields
        )
        kept = ", ".join(
            f"{quote('_typed_' + item['name'])} AS {quote(item['name'])}" for item in self.fields
        )
        kept_typed = ", ".join(quote("_typed_" + item["name"]) for item in self.fields)
        keys = ", ".join(quote(name) for name in self.keys)
        typed_keys = ", ".join(quote("_typed_" + name) for name in self.keys)
        # the table keeps typed values, ready to write; a refused row also keeps the text
        # it came with, so the quarantine shows exactly what was sent. The 64-bit hash of
        # the key is taken in the same pass, while the values are at hand
        try:
            self.con.execute(
                f"CREATE TABLE {CHECKED} AS SELECT {kept}, _failures, "
                f"CASE WHEN _failures IS NOT NULL THEN [{all_fields}] END AS _raw, "
                f"hash({typed_keys}) AS _key FROM ("
                f"SELECT {all_fields}, {kept_typed}, {failures_sql} AS _failures FROM ("
                f"SELECT *{verdicts} FROM ("
                f"SELECT *, {typed_values}{helpers} FROM (SELECT {columns} FROM {self.relation}))))"
            )
        except duckdb.Error as exc:
            raise ValidationFailed(
                Message(
                    "{source_name} does not parse: {parse_error}",
                    source_name=self.source_name,
                    parse_error=parse_error(exc),
                ),
                field="source",
            ) from None
        if self.relation == STAGED:
            self.con.execute(f"DROP TABLE {STAGED}")
        # keys that occur more than once among valid rows: the same row again is a
        # duplicate; different rows under one key are a conflict nobody can settle here.
        # Found in steps: grouping the 64-bit hashes of the key is much cheaper than
        # grouping the key's text, and finds every repeated key (and, rarely, a colliding
        # one, which the exact grouping of the few candidates then sets aside).
        # NOT DISTINCT: without a declared key every field is the key, empty cells included
        join = " AND ".join(
            f"c.{quote(name)} IS NOT DISTINCT FROM r.{quote(name)}" for name in self.keys
        )
        # a hash equal to the one before it in hash order is a repeat: sorting 64-bit
        # integers is cheaper than a hash table with one entry per row. A candidate keeps
        # its whole row, so that a conflicting one goes to the quarantine from here rather
        # than from a second pass over every row held
        self.con.execute(
            f"CREATE TABLE candidates AS SELECT rowid AS _rowid, {all_fields}, _failures, "
            f"_raw, _key, hash({all_fields}) AS _row_hash FROM {CHECKED} "
            f"WHERE _failures IS NULL AND _key IN ("
            f"SELECT _key FROM (SELECT _key, lag(_key) OVER (ORDER BY _key) AS _before "
            f"FROM {CHECKED} WHERE _failures IS NULL) WHERE _key = _before)"
        )
        self.con.execute(
            f"CREATE TABLE repeated AS SELECT {keys}, count(*) AS _n, min(_row_hash) AS _lo, "
            f"max(_row_hash) AS _hi, min(_rowid) AS _first FROM candidates "
            f"GROUP BY {keys} HAVING count(*) > 1"
        )
        # every valid row that is not kept: all rows of a conflicting key, and each
        # repeat of a duplicated row but its first
        self.con.execute(
            f"CREATE TABLE dropped AS SELECT c._rowid, "
            f"CASE WHEN r._lo <> r._hi THEN 'conflict' ELSE 'duplicate' END AS _fate "
            f"FROM candidates c JOIN repeated r ON {join} "
            f"WHERE r._lo <> r._hi OR c._rowid <> r._first"
        )
        self.con.execute(
            f"CREATE VIEW refused AS SELECT c.rowid + 1 AS _row, c.*, 'invalid' AS _fate "
            f"FROM {CHECKED} c WHERE c._failures IS NOT NULL UNION ALL "
            f"SELECT c._rowid + 1 AS _row, {all_fields}, _failures, _raw, _key, "
            f"'conflict' AS _fate FROM candidates c "
            f"SEMI JOIN (SELECT _rowid FROM dropped WHERE _fate = 'conflict') d "
            f"ON c._rowid = d._rowid"
        )
        anyone_dropped = self.con.execute("SELECT count(*) FROM dropped").fetchone()[0]
        self.con.execute(
            f"CREATE VIEW accepted AS SELECT * FROM {CHECKED} c "
            + ("ANTI JOIN dropped d ON c.rowid = d._rowid " if anyone_dropped else "")
            + "WHERE c._failures IS NULL"
        )
        return self.con.execute(f"SELECT count(*) FROM {CHECKED}").fetchone()[0]

    def fingerprint(self, *, salt: str) -> str:
        """Content, reading options, mapping, mode and field definitions: equal inputs give
        equal prints. A file's content is its bytes, hashed on the side since staging;
        otherwise (or if the file changed while it was read) it is the rows read."""
        content: Any = None
        if self._file_digest is not None:
            path, state, digest = self._file_digest
            try:
                if _file_state(path) == state:
                    content = [state[0], digest.result()]
            except OSError:
                content = None
        if content is None:
            columns = ", ".join(quote(item["name"]) for item in self.fields)
            content = self.con.execute(
                f"SELECT count(*), coalesce(bit_xor(hash(rowid, {columns}, _raw)), 0) "
                f"FROM {CHECKED}"
            ).fetchone()
        material = json.dumps(
            [
                content,
                self.reading,
                self.mapping,
                self.mode.value,
                self.watermark,
                self.fields,
                salt,
            ],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(material.encode()).hexdigest()

    # ------------------------------------------------------------------ write

    def write(
        self,
        *,
        snapshot: Path,
        quarantine: Path,
        previous: Path | None,
        previous_rows: int | None,
    ) -> tuple[Counts, QualityFigures]:
        counts = Counts()
        names = ", ".join(quote(item["name"]) for item in self.fields)
        fresh = f"SELECT {names} FROM accepted"
        stale_rows = 0
        if self.mode is Mode.incremental and previous is not None:
            old = f"({self._previous(previous)})"
            if self.watermark:
                mark = quote(self.watermark)
                self.con.execute(f"CREATE TABLE incoming AS {fresh}")
                high = self.con.execute(f"SELECT max({mark}) FROM {old}").fetchone()[0]
                if high is not None:
                    stale_rows = self.con.execute(
                        f"SELECT count(*) FROM incoming WHERE {mark} <= ?", [high]
                    ).fetchone()[0]
                    self.con.execute(f"DELETE FROM incoming WHERE {mark} <= ?", [high])
                fresh = "SELECT * FROM incoming"
            join = " AND ".join(f"o.{quote(name)} = f.{quote(name)}" for name in self.keys)
            body = (
                f"WITH fresh AS ({fresh}) SELECT o.* FROM {old} o "
                f"ANTI JOIN fresh f ON {join} UNION ALL SELECT * FROM fresh"
            )
        else:
            body = fresh
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        # a snapshot has no row order to keep: without it, DuckDB writes from every thread
        self.con.execute("SET preserve_insertion_order = false")
        try:
            self.con.execute(f"COPY ({body}) TO {literal(str(snapshot))} (FORMAT parquet)")
        finally:
            self.con.execute("RESET preserve_insertion_order")
        total, invalid = self.con.execute(
            f"SELECT count(*), count(_failures) FROM {CHECKED}"
        ).fetchone()
        conflicts, repeats = self.con.execute(
            "SELECT coalesce(sum(_n) FILTER (WHERE _lo <> _hi), 0), "
            "coalesce(sum(_n - 1) FILTER (WHERE _lo = _hi), 0) FROM repeated"
        ).fetchone()
        counts.rows_read = total
        counts.rows_quarantined = invalid + conflicts
        counts.duplicates = repeats + stale_rows
        counts.rows_loaded = total - counts.rows_quarantined - counts.duplicates
        if counts.rows_quarantined:
            self._write_quarantine(quarantine)
            counts.rule_counts = self._rule_counts(conflicts)
        counts.snapshot_rows = self.con.execute(
            f"SELECT sum(num_rows) FROM parquet_file_metadata({literal(str(snapshot))})"
        ).fetchone()[0]
        return counts, self._quality(snapshot, counts, previous_rows)

    def _previous(self, previous: Path) -> str:
        """The previous snapshot under today's fields, matched by name (not position): a
        field added since reads as empty; one whose type changed cannot be upserted into."""
        relation = f"read_parquet({literal(str(previous))})"
        kinds = {
            row[0]: row[1]
            for row in self.con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        }
        columns = []
        for item in self.fields:
            name, kind = item["name"], SQL_TYPES[item["type"]]
            if kinds.get(name, kind) != kind or (name not in kinds and name in self.keys):
                raise ValidationFailed(
                    Message(
                        "field {name} changed since the current snapshot was "
                        "written; load the resource in full mode once, then "
                        "incrementally again",
                        name=name,
                    ),
                    field="mode",
                )
            columns.append(quote(name) if name in kinds else f"NULL::{kind} AS {quote(name)}")
        return f"SELECT {', '.join(columns)} FROM {relation}"

    def _write_quarantine(self, target: Path) -> None:
        # as sent: the text of each field, not the typed value (NULL where it did not parse)
        names = ", ".join(
            f"coalesce(_raw[{position}], CAST({quote(item['name'])} AS VARCHAR)) "
            f"AS {quote(item['name'])}"
            for position, item in enumerate(self.fields, start=1)
        )
        first = "string_split(_reasons, ',')[1]"
        target.parent.mkdir(parents=True, exist_ok=True)
        self.con.execute(
            f"COPY (SELECT _row, split_part({first}, ':', 1) AS _rule, "
            f"split_part({first}, ':', 2) AS _field, _reasons AS _failures, {names} FROM ("
            f"SELECT *, CASE WHEN _fate = 'conflict' THEN "
            f"{literal(Rule.primary_key.value + ':' + ','.join(self.keys))} "
            f"ELSE _failures END AS _reasons FROM refused) ORDER BY _row) "
            f"TO {literal(str(target))} (FORMAT parquet, COMPRESSION zstd)"
        )

    def _rule_counts(self, conflicts: int) -> dict[str, int]:
        rows = self.con.execute(
            "SELECT split_part(failure, ':', 1) AS rule, count(*) FROM ("
            f"SELECT unnest(string_split(_failures, ',')) AS failure FROM {CHECKED} "
            "WHERE _failures IS NOT NULL) GROUP BY rule"
        ).fetchall()
        found = {rule: count for rule, count in rows}
        if conflicts:
            found[Rule.primary_key.value] = conflicts
        return dict(sorted(found.items()))

    def _quality(self, snapshot: Path, counts: Counts, previous_rows: int | None) -> QualityFigures:
        # null counts from the Parquet footer's statistics: no second pass over the data
        nulls = dict(
            self.con.execute(
                "SELECT path_in_schema, sum(stats_null_count) FROM "
                f"parquet_metadata({literal(str(snapshot))}) GROUP BY path_in_schema"
            ).fetchall()
        )
        total = counts.snapshot_rows
        shares = {
            item["name"]: ((total - (nulls.get(item["name"]) or 0)) / total if total else 0.0)
            for item in self.fields
        }
        considered = counts.rows_read - counts.duplicates
        return QualityFigures(
            rows=total,
            completeness=sum(shares.values()) / len(shares) if shares else 0.0,
            field_completeness=shares,
            validity=(counts.rows_loaded / considered) if considered else 1.0,
            uniqueness=(1 - counts.duplicates / counts.rows_read) if counts.rows_read else 1.0,
            volume_change=((total - previous_rows) / previous_rows if previous_rows else None),
        )

    # ------------------------------------------------------------------ personal data

    def scan_pii(self) -> list[PiiFinding]:
        """Fields declared not personal whose values look like IDs, mobiles, cards, e-mails."""
        candidates = [
            item
            for item in self.fields
            if item.get("pii", "none") == "none" and item["type"] == "string"
        ]
        if not candidates:
            return []
        patterns = {
            # the shape is enough to say "looks like"; validation is the strict check
            "id_card": lambda column: f"regexp_full_match({column}, '{CITIZEN_ID_SHAPE}')",
            "phone": lambda column: f"regexp_full_match({column}, '{MOBILE}')",
            "bank_card": lambda column: f"regexp_full_match({column}, '{BANK_CARD}')",
            "email": lambda column: f"regexp_full_match({column}, '{EMAIL}')",
        }
        parts = []
        for item in candidates:
            column = quote(item["name"])
            parts.append(f"count({column})")
            for test in patterns.values():
                parts.append(f"count(*) FILTER (WHERE {test(column)})")
                parts.append(f"min({column}) FILTER (WHERE {test(column)})")
        total = self.con.execute(f"SELECT count(*) FROM {CHECKED}").fetchone()[0]
        # every n-th row: spread over the whole batch, and no shuffle of it
        step = max(1, total // PII_SAMPLE_ROWS)
        row = self.con.execute(
            f"SELECT {', '.join(parts)} FROM {CHECKED} WHERE rowid % {step} = 0"
        ).fetchone()
        findings = []
        position = 0
        for item in candidates:
            present = row[position]
            position += 1
            best: PiiFinding | None = None
            for kind in patterns:
                matched, example = row[position], row[position + 1]
                position += 2
                share = matched / present if present else 0.0
                if share >= PII_SHARE and (best is None or share > best.share):
                    best = PiiFinding(item["name"], kind, round(share, 4), mask(example, kind))
            if best is not None:
                findings.append(best)
        return findings


def _reading_options(source: SourceSpec) -> list[Any]:
    """How a source is read, apart from where it is: the same bytes read otherwise are
    other rows."""
    return [
        source.kind,
        source.encoding,
        source.sheet,
        source.header_row,
        source.delimiter,
        source.table,
        source.query,
        source.options,
    ]


def _file_state(path: Path) -> tuple[int, int]:
    state = path.stat()
    return state.st_size, state.st_mtime_ns


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def parse_error(exc: Exception) -> str:
    """DuckDB's reader error in one line: where, and why."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    where = next((line for line in lines if line.startswith("CSV Error on Line")), "")
    why = next(
        (
            line
            for line in lines
            if line.startswith(("Expected Number", "Invalid unicode", "Value with unterminated"))
        ),
        lines[0] if lines else type(exc).__name__,
    )
    where = where.replace("CSV Error on Line:", "line").strip()
    return f"{where}: {why}" if where else why
