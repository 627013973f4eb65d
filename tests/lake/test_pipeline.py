"""The pipeline on its own, in DuckDB, without a metadata store: mapping, the fate of every
row against a model of it, quality figures and the personal-data scan."""

from __future__ import annotations

import csv
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shuzhi.core.errors import ValidationFailed
from shuzhi.lake.connectors import SourceSpec
from shuzhi.lake.pipeline import Counts, Pipeline, parse_map, resolve_mapping
from shuzhi.lake.rules import Mode


def spec(name: str, **extra: Any) -> dict[str, Any]:
    """A field as ``queries.field_specs`` gives it to the pipeline."""
    return {
        "name": name,
        "title": "",
        "type": "string",
        "pii": "none",
        "nullable": True,
        "primary_key": False,
        "format": None,
        "aliases": [],
        "rules": None,
        **extra,
    }


# mapping ----------------------------------------------------------------------------------

FIELDS = [
    spec("id_card", title="公民身份号码", primary_key=True, nullable=False),
    spec("full_name", title="姓名", nullable=False),
    spec("mobile", title="手机号码", aliases=["联系电话", "Tel"]),
    spec("note", title="备注"),
]


def test_headers_map_by_name_title_or_alias_ignoring_case_and_spaces() -> None:
    headers = ["ID_CARD", " 姓名 ", "tel"]
    assert resolve_mapping(headers, FIELDS, {}) == {
        "ID_CARD": "id_card",
        " 姓名 ": "full_name",
        "tel": "mobile",
    }


def test_an_override_maps_or_drops_a_column() -> None:
    headers = ["证件号", "姓名", "内部编号"]
    mapping = resolve_mapping(headers, FIELDS, {"证件号": "id_card", "内部编号": ""})
    assert mapping == {"证件号": "id_card", "姓名": "full_name"}


@pytest.mark.parametrize(
    ("headers", "overrides", "message"),
    [
        (["id_card", "姓名", "籍贯"], {}, "column '籍贯' matches no field"),
        (["id_card", "姓名"], {"姓名": "nickname"}, "the resource has no field 'nickname'"),
        (["id_card", "姓名"], {"籍贯": "note"}, "the source has no column '籍贯'"),
        (["id_card", "姓名", "备注"], {"备注": "full_name"}, "full_name is fed by more than one"),
        (["id_card", "备注"], {}, "no column for required field full_name (姓名)"),
        (["id_card", "姓名"], {"姓名": ""}, "no column for required field full_name"),
    ],
)
def test_a_mapping_that_loses_or_doubles_data_is_refused(
    headers: list[str], overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        resolve_mapping(headers, FIELDS, overrides)
    assert message in caught.value.detail
    assert caught.value.field == "map"


def test_parse_map_reads_column_equals_field() -> None:
    assert parse_map(["证件号 = id_card", "内部编号="]) == {"证件号": "id_card", "内部编号": ""}
    with pytest.raises(ValidationFailed, match="write it as 'column=field'"):
        parse_map(["证件号"])


def test_incremental_needs_a_key_and_a_watermark_must_be_a_field() -> None:
    with duckdb.connect() as con, pytest.raises(ValidationFailed, match="primary key"):
        Pipeline(con, fields=[spec("a")], mode=Mode.incremental)
    with duckdb.connect() as con, pytest.raises(ValidationFailed, match="watermark 'b'"):
        Pipeline(con, fields=[spec("a", primary_key=True)], mode=Mode.full, watermark="b")


# every row's fate, against a model -------------------------------------------------------

MODEL_FIELDS = [
    spec("k", type="integer", primary_key=True, nullable=False),
    spec("v", nullable=False, rules={"values": ["a", "b"]}),
]


def run_pipeline(
    folder: Path, rows: list[tuple[str, str]], fields: list[dict[str, Any]] = MODEL_FIELDS
) -> tuple[Counts, Any, list[tuple[Any, ...]], list[int]]:
    source = folder / "rows.csv"
    with open(source, "w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow([item["name"] for item in fields])
        out.writerows(rows)
    with duckdb.connect() as con:
        pipeline = Pipeline(con, fields=fields, mode=Mode.full)
        pipeline.stage(SourceSpec(location=str(source), temp_dir=folder), lambda count: None)
        read = pipeline.validate()
        counts, quality = pipeline.write(
            snapshot=folder / "snapshot.parquet",
            quarantine=folder / "quarantine.parquet",
            previous=None,
            previous_rows=None,
        )
        assert read == counts.rows_read
        kept = con.execute(
            f"SELECT * FROM read_parquet('{folder / 'snapshot.parquet'}') ORDER BY k"
        ).fetchall()
        refused = (
            [
                row[0]
                for row in con.execute(
                    f"SELECT _row FROM read_parquet('{folder / 'quarantine.parquet'}')"
                ).fetchall()
            ]
            if counts.rows_quarantined
            else []
        )
    return counts, quality, kept, refused


def model(rows: list[tuple[str, str]]) -> tuple[dict[str, int], set[tuple[int, str]], list[int]]:
    """What must become of each row: counts, the rows kept, the row numbers refused."""
    refused: list[int] = []
    by_key: dict[int, list[tuple[int, tuple[int, str]]]] = defaultdict(list)
    for number, (key, value) in enumerate(rows, start=1):
        if not key.lstrip("-").isdigit() or value not in ("a", "b"):
            refused.append(number)
        else:
            by_key[int(key)].append((number, (int(key), value)))
    kept: set[tuple[int, str]] = set()
    duplicates = 0
    for group in by_key.values():
        if len({item for _, item in group}) > 1:
            refused.extend(number for number, _ in group)
        else:
            kept.add(group[0][1])
            duplicates += len(group) - 1
    counts = {
        "rows_read": len(rows),
        "rows_loaded": len(kept),
        "rows_quarantined": len(refused),
        "duplicates": duplicates,
    }
    return counts, kept, sorted(refused)


row_strategy = st.tuples(
    st.sampled_from(["1", "2", "3", "4", "-5", "x", ""]), st.sampled_from(["a", "b", "c", ""])
)


@settings(max_examples=40, deadline=None)
@given(st.lists(row_strategy, max_size=25))
def test_every_row_is_loaded_quarantined_or_a_duplicate_exactly_once(
    rows: list[tuple[str, str]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        counts, _quality, kept, refused = run_pipeline(Path(folder), rows)
    expected, expected_kept, expected_refused = model(rows)
    assert counts.balanced()
    assert {name: getattr(counts, name) for name in expected} == expected
    assert set(kept) == expected_kept and len(kept) == len(expected_kept)
    assert counts.snapshot_rows == counts.rows_loaded
    assert refused == expected_refused


def test_quality_figures(tmp_path: Path) -> None:
    fields = [*MODEL_FIELDS, spec("note")]
    rows = [("1", "a", "x"), ("2", "b", ""), ("2", "b", ""), ("3", "c", "y")]
    counts, quality, _kept, _refused = run_pipeline(tmp_path, rows, fields)
    assert (counts.rows_read, counts.rows_loaded, counts.duplicates) == (4, 2, 1)
    assert counts.rule_counts == {"values": 1}
    assert quality.rows == 2
    assert quality.field_completeness == {"k": 1.0, "v": 1.0, "note": 0.5}
    assert quality.completeness == pytest.approx(2.5 / 3)
    assert quality.validity == pytest.approx(2 / 3)  # duplicates are not held against it
    assert quality.uniqueness == pytest.approx(3 / 4)
    assert quality.volume_change is None


# personal data -----------------------------------------------------------------------------


def scan(tmp_path: Path, fields: list[dict[str, Any]], rows: list[tuple[str, ...]]) -> list[Any]:
    source = tmp_path / "rows.csv"
    with open(source, "w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow([item["name"] for item in fields])
        out.writerows(rows)
    with duckdb.connect() as con:
        pipeline = Pipeline(con, fields=fields, mode=Mode.full)
        pipeline.stage(SourceSpec(location=str(source), temp_dir=tmp_path), lambda count: None)
        pipeline.validate()
        return pipeline.scan_pii()


def test_fields_declared_not_personal_are_flagged_by_what_they_hold(tmp_path: Path) -> None:
    fields = [
        spec("n", type="integer", primary_key=True),
        spec("contact"),
        spec("mail"),
        spec("owner"),
        spec("card"),
        spec("known", pii="phone"),
        spec("code"),
    ]
    rows = [
        (
            str(number),
            f"1390000{number:04d}" if number < 3 else "办公室",
            f"user{number}@example.cn",
            "11010519491231002X" if number == 0 else "张三",
            "6222020200112233445",
            "13900001111",
            "330100",
        )
        for number in range(10)
    ]
    findings = {finding.field: finding for finding in scan(tmp_path, fields, rows)}
    # 3 of 10 mobiles is above the 20% threshold; one ID of ten is below it
    assert set(findings) == {"contact", "mail", "card"}
    assert (findings["contact"].kind, findings["contact"].share) == ("phone", 0.3)
    assert findings["contact"].example == "139****0000"
    assert findings["mail"].kind == "email"
    assert findings["mail"].example == "u***@example.cn"
    assert findings["card"].kind == "bank_card"
    assert "0200112233" not in findings["card"].example


# the fingerprint ---------------------------------------------------------------------------


def fingerprint(source: Path, *, change: bool = False, **reading: Any) -> str:
    with duckdb.connect() as con:
        pipeline = Pipeline(con, fields=MODEL_FIELDS, mode=Mode.full)
        pipeline.stage(
            SourceSpec(location=str(source), temp_dir=source.parent, **reading),
            lambda count: None,
        )
        if change:
            source.write_bytes(source.read_bytes())  # the same bytes again, written anew
            os.utime(source, ns=(1, 1))
        pipeline.validate()
        return pipeline.fingerprint(salt="people")


def test_the_fingerprint_is_the_bytes_read_and_how_they_are_read(tmp_path: Path) -> None:
    first, copy, other = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    first.write_text("k,v\n1,a\n2,b\n", encoding="utf-8")
    copy.write_bytes(first.read_bytes())
    other.write_text("k,v\n1,a\n2,a\n", encoding="utf-8")
    print_ = fingerprint(first)
    assert fingerprint(copy) == print_  # where the file is does not matter
    assert fingerprint(other) != print_
    # the same bytes read otherwise may be other rows: how they are read is part of it
    assert fingerprint(first, encoding="gb18030") != print_
    # a file that changed while the batch read it: the print is that of the rows read,
    # not of whatever the bytes are by the end, so a re-run of the final file loads again
    assert fingerprint(copy, change=True) != print_
