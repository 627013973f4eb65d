"""The demo's synthetic source files: deterministic, realistic, and wrong only where meant."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from openpyxl import load_workbook

from shuzhi.catalog.rules import FieldFormat, FieldType
from shuzhi.catalog.schemas import FieldSpec, ResourceCreate
from shuzhi.core.standards import is_citizen_id, is_credit_code, is_mobile
from shuzhi.demo.synthetic import SourceFile, demo_resources, layout, write_sources
from shuzhi.regions.service import builtin_csv

SCALE = 0.05
NEW_RESOURCES = (
    "wjw_childcare_institution",
    "zfw_hotline_12345_order",
    "tjj_county_monthly_indicator",
)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
MOMENT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")

Table = tuple[list[str], list[list[str | None]]]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> list[SourceFile]:
    return write_sources(tmp_path_factory.mktemp("sources"), scale=SCALE)


@pytest.fixture(scope="module")
def specs() -> dict[str, ResourceCreate]:
    return {resource.code: resource for resource in demo_resources()}


@pytest.fixture(scope="module")
def regions() -> set[str]:
    with builtin_csv().open(encoding="utf-8", newline="") as handle:
        return {row["code"] for row in csv.DictReader(handle)}


def text(value: Any) -> str | None:
    """A cell as the text ingestion sees."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read(source: SourceFile) -> Table:
    if source.format == "csv":
        content = source.path.read_text(encoding=layout(source.resource_code).encoding)
        rows = list(csv.reader(io.StringIO(content)))
        return rows[0], [[text(cell) for cell in row] for row in rows[1:]]
    if source.format == "xlsx":
        book = load_workbook(source.path, read_only=True)
        try:
            rows = list(book.worksheets[0].iter_rows(values_only=True))
        finally:
            book.close()
        width = len(rows[0])
        # a row ends at its last value: a missing last cell is not written at all
        padded = [[*row, *[None] * (width - len(row))] for row in rows[1:]]
        return [str(cell) for cell in rows[0]], [[text(cell) for cell in row] for row in padded]
    if source.format == "jsonl":
        lines = source.path.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line]
    else:
        records = json.loads(source.path.read_text(encoding="utf-8"))
    headers = list(records[0])
    assert all(list(record) == headers for record in records)
    return headers, [[text(record[key]) for key in headers] for record in records]


def problem(field: FieldSpec, value: str | None, regions: set[str]) -> str | None:
    """What ingestion validation would say about one value, as the catalog declares it."""
    if value is None:
        return None if field.nullable else "required"
    number: float | None = None
    if field.type is FieldType.integer:
        if not re.fullmatch(r"-?\d+", value):
            return "type"
        number = int(value)
    elif field.type is FieldType.decimal:
        try:
            number = float(value)
        except ValueError:
            return "type"
    elif field.type is FieldType.date:
        try:
            assert DAY.fullmatch(value)
            date.fromisoformat(value)
        except (AssertionError, ValueError):
            return "type"
    elif field.type is FieldType.datetime:
        try:
            assert MOMENT.fullmatch(value)
            datetime.fromisoformat(value)
        except (AssertionError, ValueError):
            return "type"
    elif field.type is FieldType.boolean and value not in ("true", "false"):
        return "type"
    checks = {
        FieldFormat.citizen_id: is_citizen_id,
        FieldFormat.credit_code: is_credit_code,
        FieldFormat.mobile: is_mobile,
        FieldFormat.email: lambda text: bool(EMAIL.fullmatch(text)),
        FieldFormat.region_code: lambda text: text in regions,
    }
    if field.format is not None and not checks[field.format](value):
        return field.format.value
    rules = field.rules
    if rules is not None:
        if rules.min is not None and number is not None and number < rules.min:
            return "min"
        if rules.max is not None and number is not None and number > rules.max:
            return "max"
        if rules.values and value not in rules.values:
            return "values"
        if rules.pattern and not re.fullmatch(rules.pattern, value):
            return "pattern"
    return None


def row_problems(
    spec: ResourceCreate, headers: list[str], row: list[str | None], regions: set[str]
) -> list[str]:
    by_header = {field.title: field for field in spec.fields} | {
        field.name: field for field in spec.fields
    }
    found = []
    for header, value in zip(headers, row, strict=True):
        reason = problem(by_header[header], value, regions)
        if reason:
            found.append(reason)
    return found


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    first = write_sources(tmp_path / "a", seed=11, scale=SCALE)
    second = write_sources(tmp_path / "b", seed=11, scale=SCALE)
    other = write_sources(tmp_path / "c", seed=12, scale=SCALE)

    assert [(s.resource_code, s.format, s.rows) for s in first] == [
        (s.resource_code, s.format, s.rows) for s in second
    ]
    for mine, again, theirs in zip(first, second, other, strict=True):
        assert mine.path.read_bytes() == again.path.read_bytes(), mine.resource_code
        assert mine.path.read_bytes() != theirs.path.read_bytes(), mine.resource_code


def test_a_file_does_not_depend_on_which_others_are_written(
    tmp_path: Path, written: list[SourceFile]
) -> None:
    codes = ["zfw_hotline_12345_order", "sft_administrative_penalty"]
    alone = write_sources(tmp_path, scale=SCALE, codes=codes)

    assert [source.resource_code for source in alone] == codes
    everything = {source.resource_code: source for source in written}
    for source in alone:
        assert source.path.read_bytes() == everything[source.resource_code].path.read_bytes()


def test_unknown_codes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no_such_resource"):
        write_sources(tmp_path, codes=["no_such_resource"])


def test_every_demo_resource_with_fields_gets_a_file(
    written: list[SourceFile], specs: dict[str, ResourceCreate]
) -> None:
    assert [source.resource_code for source in written] == [
        code for code, spec in specs.items() if spec.fields
    ]
    assert all(source.rows > 0 for source in written)
    assert all(source.path.name == f"{source.resource_code}.{source.format}" for source in written)


def test_files_come_in_the_formats_departments_use(written: list[SourceFile]) -> None:
    by_code = {source.resource_code: source for source in written}
    formats = Counter(source.format for source in written)
    assert formats["csv"] > len(written) / 2
    assert formats["xlsx"] == formats["jsonl"] == formats["json"] == 1

    population = by_code["gat_resident_population"].path.read_bytes()
    assert population.decode("gbk").startswith("公民身份号码,")
    with pytest.raises(UnicodeDecodeError):
        population.decode("utf-8")

    with_bom = [
        s for s in written if s.format == "csv" and layout(s.resource_code).encoding == "utf-8-sig"
    ]
    assert with_bom
    for source in written:
        if source.format == "csv" and source not in with_bom:
            assert not source.path.read_bytes().startswith(b"\xef\xbb\xbf"), source.resource_code
    for source in with_bom:
        assert source.path.read_bytes().startswith(b"\xef\xbb\xbf")

    enterprises = by_code["scjgj_enterprise_registration"]
    assert enterprises.format == "xlsx"
    assert read(enterprises)[0][0] == "统一社会信用代码"
    assert by_code["zfw_hotline_12345_order"].format == "jsonl"


def test_headers_are_the_field_titles_or_names(
    written: list[SourceFile], specs: dict[str, ResourceCreate]
) -> None:
    styles: Counter[str] = Counter()
    for source in written:
        fields = specs[source.resource_code].fields
        headers, _ = read(source)
        if headers == [field.title for field in fields]:
            style = "title"
        else:
            assert headers == [field.name for field in fields], source.resource_code
            style = "name"
        assert style == layout(source.resource_code).headers
        styles[style] += 1
    assert styles["title"] > styles["name"] > 0


def test_identifiers_are_valid_but_for_the_deliberate_defects(
    written: list[SourceFile], specs: dict[str, ResourceCreate]
) -> None:
    checks = {FieldFormat.citizen_id: is_citizen_id, FieldFormat.credit_code: is_credit_code}
    outcomes: dict[FieldFormat, Counter[bool]] = {kind: Counter() for kind in checks}
    for source in written:
        fields = specs[source.resource_code].fields
        _, rows = read(source)
        for index, field in enumerate(fields):
            if field.format in checks:
                for row in rows:
                    if row[index] is not None:
                        outcomes[field.format][checks[field.format](row[index])] += 1
    for kind, seen in outcomes.items():
        valid = seen[True] / (seen[True] + seen[False])
        assert 0.95 <= valid < 1.0, (kind, seen)


def test_about_two_percent_of_rows_break_a_declared_rule(
    written: list[SourceFile], specs: dict[str, ResourceCreate], regions: set[str]
) -> None:
    rows = broken = 0
    reasons: Counter[str] = Counter()
    for source in written:
        spec = specs[source.resource_code]
        headers, table = read(source)
        assert len(table) == source.rows
        for row in table:
            found = row_problems(spec, headers, row, regions)
            rows += 1
            broken += bool(found)
            reasons.update(found)
    assert 0.01 <= broken / rows <= 0.04, (broken, rows)
    # the defects are of many kinds, each caught by a different check
    assert len(reasons) >= 6, reasons


def test_primary_keys_repeat_only_in_exact_duplicate_rows(
    written: list[SourceFile], specs: dict[str, ResourceCreate], regions: set[str]
) -> None:
    duplicated = set()
    for source in written:
        spec = specs[source.resource_code]
        keys = [i for i, field in enumerate(spec.fields) if field.primary_key]
        headers, table = read(source)
        seen: dict[tuple, list[str | None]] = {}
        for row in table:
            if row_problems(spec, headers, row, regions):
                continue
            key = tuple(row[i] for i in keys)
            if key in seen:
                assert seen[key] == row, (source.resource_code, key)
                duplicated.add(source.resource_code)
            seen[key] = row
    assert "gat_resident_population" in duplicated


def test_the_population_register_is_consistent(written: list[SourceFile]) -> None:
    source = next(s for s in written if s.resource_code == "gat_resident_population")
    headers, table = read(source)
    column = {header: index for index, header in enumerate(headers)}
    assert len(table) == pytest.approx(20000 * SCALE, abs=5)
    for row in table:
        id_card, gender = row[column["公民身份号码"]], row[column["性别"]]
        birth = row[column["出生日期"]]
        if not (id_card and is_citizen_id(id_card)) or gender not in ("男", "女"):
            continue
        assert int(id_card[16]) % 2 == (1 if gender == "男" else 0)
        if birth and problem(FieldSpec(name="birth", type=FieldType.date), birth, set()) is None:
            assert id_card[6:14] == birth.replace("-", "")


def test_people_and_enterprises_reappear_in_other_departments_files(
    written: list[SourceFile],
) -> None:
    by_code = {source.resource_code: source for source in written}
    people = {row[0] for row in read(by_code["gat_resident_population"])[1]}
    enterprises = {row[0] for row in read(by_code["scjgj_enterprise_registration"])[1]}

    insured = [row[0] for row in read(by_code["rlsbt_social_insurance_enrollment"])[1]]
    assert sum(id_card in people for id_card in insured) > 0.9 * len(insured)
    penalties = read(by_code["sft_administrative_penalty"])
    parties = [row[2] for row in penalties[1] if row[2]]
    assert parties
    assert sum(code in enterprises for code in parties) > 0.9 * len(parties)


def test_the_county_series_cover_two_years_and_more_for_every_indicator(
    written: list[SourceFile], specs: dict[str, ResourceCreate], regions: set[str]
) -> None:
    source = next(s for s in written if s.resource_code == "tjj_county_monthly_indicator")
    headers, table = read(source)
    months: dict[tuple, set[str | None]] = {}
    for row in table:
        if not row_problems(specs[source.resource_code], headers, row, regions):
            region, month, indicator, _ = row
            months.setdefault((region, indicator), set()).add(month)
    indicators = {indicator for _, indicator in months}
    assert indicators == {"gdp", "retail_sales", "fiscal_revenue", "registered_unemployment"}
    assert len({region for region, _ in months}) >= 3
    assert all(len(seen) >= 24 for seen in months.values())


def test_the_catalog_file_validates_and_declares_formats() -> None:
    text = (resources.files("shuzhi.demo") / "data" / "resources.yaml").read_text("utf-8")
    documents = yaml.safe_load(text)["resources"]
    parsed = [ResourceCreate.model_validate(document) for document in documents]
    by_code = {resource.code: resource for resource in parsed}

    assert len(by_code) == len(parsed)
    for code in NEW_RESOURCES:
        assert any(field.primary_key for field in by_code[code].fields), code
    for resource in parsed:
        for field in resource.fields:
            if field.name == "region_code":
                assert field.format is FieldFormat.region_code, resource.code
            if "credit_code" in field.name:
                assert field.format is FieldFormat.credit_code, (resource.code, field.name)
            if field.pii.value == "phone":
                assert field.format is FieldFormat.mobile, (resource.code, field.name)
    penalty = {field.name: field for field in by_code["sft_administrative_penalty"].fields}
    assert {"decision_date", "region_code", "credit_code", "party_id_card"} <= set(penalty)
