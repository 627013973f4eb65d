"""The demo's synthetic source files: deterministic, realistic, and wrong only where meant."""

from __future__ import annotations

import calendar
import csv
import io
import json
import re
import statistics
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from openpyxl import load_workbook

from shuzhi.catalog.rules import FieldFormat, FieldType
from shuzhi.catalog.schemas import FieldSpec, ResourceCreate
from shuzhi.core.standards import is_citizen_id, is_credit_code, is_mobile
from shuzhi.demo.synthetic import (
    AS_OF,
    DETERIORATING_ITEMS,
    MONITORING_ITEMS,
    MONITORING_PARTS,
    SourceFile,
    demo_resources,
    deteriorating_counties,
    layout,
    write_sources,
)
from shuzhi.regions.service import builtin_csv

SCALE = 0.05
NEW_RESOURCES = (
    "wjw_childcare_institution",
    "zfw_hotline_12345_order",
    "tjj_county_monthly_indicator",
    "dsj_county_monthly_monitoring",
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


MONITORING = "dsj_county_monthly_monitoring"
# a part and the whole it is counted in; the brain's share indicators divide one by the other
PARTS = {
    "online_services_done_online": "online_services",
    "enforcement_cases_on_time": "enforcement_cases_closed",
    "disputes_resolved": "disputes_mediated",
    "grid_events_on_time": "grid_events",
    "hotline_orders_on_time": "hotline_orders",
    "hotline_visited": "hotline_orders",
    "hotline_satisfied": "hotline_visited",
    "hazards_rectified": "hazards_found",
}
# where the share of each part lies, give or take rounding, outside the deteriorating counties
SHARES = {
    "online_services_done_online": (0.80, 0.97),
    "enforcement_cases_on_time": (0.88, 0.99),
    "disputes_resolved": (0.90, 0.98),
    "grid_events_on_time": (0.90, 0.99),
    "hotline_orders_on_time": (0.92, 0.99),
    "hotline_visited": (0.60, 0.80),
    "hotline_satisfied": (0.88, 0.98),
    "hazards_rectified": (0.85, 0.99),
}
MEASURED = {"pm25", "business_opening_days", "digital_core_revenue"}  # not counts
CHILDCARE_TARGET = 4.5  # places per 1,000 residents
Returns = dict[tuple[str, str], dict[str, float]]  # (county, month) -> item -> value


def months_before(day: date, count: int) -> list[str]:
    """The ``count`` months before the month of ``day``, first days, oldest first."""
    index = day.year * 12 + day.month - 1
    return [
        date((index - k) // 12, (index - k) % 12 + 1, 1).isoformat() for k in range(count, 0, -1)
    ]


def county_codes() -> set[str]:
    with builtin_csv().open(encoding="utf-8", newline="") as handle:
        return {row["code"] for row in csv.DictReader(handle) if row["level"] == "county"}


def share(figures: dict[str, float], part: str) -> float | None:
    whole = PARTS[part]
    if part in figures and figures.get(whole):
        return figures[part] / figures[whole]
    return None


def mean(values: list[float | None]) -> float:
    known = [value for value in values if value is not None]
    return sum(known) / len(known)


@pytest.fixture(scope="module")
def monitoring_file(tmp_path_factory: pytest.TempPathFactory) -> SourceFile:
    """The monitoring returns as the demo build writes them: default seed, scale 1.0."""
    [source] = write_sources(tmp_path_factory.mktemp("monitoring"), codes=[MONITORING])
    return source


@pytest.fixture(scope="module")
def monitoring(
    monitoring_file: SourceFile, specs: dict[str, ResourceCreate], regions: set[str]
) -> Returns:
    """The rows that pass validation, by county and month."""
    spec = specs[MONITORING]
    headers, table = read(monitoring_file)
    returns: Returns = {}
    for row in table:
        if not row_problems(spec, headers, row, regions):
            region, month, item, value, _ = row
            assert region and month and item and value
            returns.setdefault((region, month), {})[item] = float(value)
    return returns


def test_the_monitoring_returns_cover_three_years_of_every_county_and_item(
    monitoring_file: SourceFile, specs: dict[str, ResourceCreate], regions: set[str]
) -> None:
    spec = specs[MONITORING]
    fields = {field.name: field for field in spec.fields}
    items = fields["item_code"].rules.values  # type: ignore[union-attr]
    assert items == list(MONITORING_ITEMS)
    assert len(items) == 28
    assert [name for name, field in fields.items() if field.primary_key] == [
        "region_code",
        "month",
        "item_code",
    ]
    assert all(item in fields["item_code"].description for item in items)
    counties = county_codes()
    assert len(counties) == 90

    headers, table = read(monitoring_file)
    assert len(table) == monitoring_file.rows == len(counties) * len(items) * 36
    seen: dict[tuple[str, str], set[str]] = {}
    for row in table:
        if not row_problems(spec, headers, row, regions):
            region, month, item, _, department = row
            assert department == MONITORING_ITEMS[item], (item, department)
            seen.setdefault((region, item), set()).add(month)  # type: ignore[arg-type]
    assert {region for region, _ in seen} == counties
    assert {item for _, item in seen} == set(items)
    assert set().union(*seen.values()) == set(months_before(AS_OF, 36))
    # one row in fifty is spoilt on purpose, so a county's item may miss a month or two
    assert all(len(months) >= 32 for months in seen.values())
    assert sum(len(months) == 36 for months in seen.values()) > len(seen) / 3


def test_counts_are_whole_and_parts_never_exceed_their_whole(monitoring: Returns) -> None:
    assert PARTS == MONITORING_PARTS
    worse = deteriorating_counties()
    compared = 0
    for (region, month), figures in monitoring.items():
        for item, value in figures.items():
            assert item in MEASURED or value.is_integer(), (region, month, item, value)
        for part, whole in PARTS.items():
            if part in figures and whole in figures:
                assert figures[part] <= figures[whole], (region, month, part)
                compared += 1
            fraction = share(figures, part)
            if fraction is not None and region not in worse:
                low, high = SHARES[part]
                assert low - 0.02 <= fraction <= high + 0.02, (region, month, part, fraction)
        if "good_air_days" in figures:
            day = date.fromisoformat(month)
            assert figures["good_air_days"] <= calendar.monthrange(day.year, day.month)[1]
    assert compared > 0.9 * len(monitoring) * len(PARTS)


def test_childcare_places_rise_toward_the_target_and_several_counties_fall_short(
    monitoring: Returns,
) -> None:
    rates = {
        key: 1000 * figures["childcare_places"] / figures["resident_population"]
        for key, figures in monitoring.items()
        if "childcare_places" in figures and "resident_population" in figures
    }
    assert min(rates.values()) >= 3.0 and max(rates.values()) <= 5.3
    months = months_before(AS_OF, 36)
    latest = [rate for (_, month), rate in rates.items() if month == months[-1]]
    red = sum(rate < 0.9 * CHILDCARE_TARGET for rate in latest)
    green = sum(rate >= CHILDCARE_TARGET for rate in latest)
    assert 3 <= red <= len(latest) / 8
    assert green > len(latest) / 3
    yearly = [
        rates[region, months[-13]] - rates[region, months[-25]]
        for region in county_codes()
        if (region, months[-13]) in rates and (region, months[-25]) in rates
    ]
    assert 0.2 <= statistics.median(yearly) <= 0.4


def test_the_figures_are_those_of_real_counties(monitoring: Returns) -> None:
    def values(item: str) -> list[float]:
        return [figures[item] for figures in monitoring.values() if item in figures]

    def ratios(part: str, whole: str, per: float = 1.0) -> list[float]:
        return [
            per * figures[part] / figures[whole]
            for figures in monitoring.values()
            if part in figures and figures.get(whole)
        ]

    assert min(values("resident_population")) >= 180_000
    assert max(values("resident_population")) <= 1_600_000
    assert min(ratios("elderly_population", "resident_population")) >= 0.19
    assert max(ratios("elderly_population", "resident_population")) <= 0.30
    assert min(ratios("elderly_care_beds", "elderly_population", 100)) >= 3.0
    assert max(ratios("elderly_care_beds", "elderly_population", 100)) <= 6.0
    assert 4500 <= statistics.median(values("urban_income")) <= 7500
    assert 1.5 <= statistics.median(ratios("urban_income", "rural_income")) <= 2.1
    assert min(ratios("business_opening_days", "business_openings")) >= 0.5
    assert max(ratios("business_opening_days", "business_openings")) <= 2.5
    crime = ratios("criminal_cases", "resident_population", 10_000)
    assert min(crime) >= 1.5 and max(crime) <= 8.5
    assert 18 <= statistics.median(values("pm25")) <= 40

    # trends and seasons, across the counties
    months = months_before(AS_OF, 36)

    def province(item: str, month: str) -> float:
        return statistics.median(
            figures[item]
            for (_, at), figures in monitoring.items()
            if at == month and item in figures
        )

    january, july = (next(m for m in months if m[5:7] == number) for number in ("01", "07"))
    assert province("pm25", january) > 1.3 * province("pm25", july)
    december, next_december = [m for m in months if m[5:7] == "12"][:2]
    assert province("urban_income", december) > province(
        "urban_income", months[months.index(december) - 1]
    )
    growth = province("urban_income", next_december) / province("urban_income", december) - 1
    assert 0.03 <= growth <= 0.07
    first_year, last_year = months[:12], months[-12:]
    assert province("business_opening_days", last_year[0]) / province(
        "business_openings", last_year[0]
    ) < province("business_opening_days", first_year[0]) / province(
        "business_openings", first_year[0]
    )


def test_the_deteriorating_counties_show_in_their_last_months(monitoring: Returns) -> None:
    worse = deteriorating_counties()
    months = months_before(AS_OF, 36)
    assert 2 <= len(worse) <= 4
    assert all(months[-5] <= first.isoformat() <= months[-3] for first in worse.values())
    assert set(DETERIORATING_ITEMS) == {
        "childcare_places",
        "hotline_orders_on_time",
        "pm25",
        "enforcement_cases_on_time",
    }
    recent, year_before = months[-3:], months[-15:-12]  # every deteriorating county's bad months

    def change(county: str, measure: Callable[[dict[str, float]], float | None]) -> float:
        """The mean of ``measure`` over the recent months less that a year before."""
        now = mean([measure(monitoring.get((county, m), {})) for m in recent])
        then = mean([measure(monitoring.get((county, m), {})) for m in year_before])
        return now - then

    for county in county_codes():
        places = [
            monitoring[county, month]["childcare_places"]
            for month in months
            if "childcare_places" in monitoring.get((county, month), {})
        ]
        pm25 = change(county, lambda f: f.get("pm25")) / mean(
            [monitoring.get((county, m), {}).get("pm25") for m in year_before]
        )
        signals = {
            "hotline": change(county, lambda f: share(f, "hotline_orders_on_time")) < -0.04,
            "enforcement": change(county, lambda f: share(f, "enforcement_cases_on_time")) < -0.04,
            "pm25": pm25 > 0.12,
            "childcare": any(later < earlier for earlier, later in pairwise(places)),
        }
        if county in worse:
            assert all(signals.values()), (county, signals)
        else:
            assert not any(signals.values()), (county, signals)


def test_fewer_counties_report_at_a_small_scale_and_some_still_deteriorate(
    written: list[SourceFile],
) -> None:
    source = next(s for s in written if s.resource_code == MONITORING)
    _, table = read(source)
    rows_by_county = Counter(row[0] for row in table)
    counties = {county for county, rows in rows_by_county.items() if rows > 100}
    assert 3 <= len(counties) < 90
    assert len(table) == len(counties) * len(MONITORING_ITEMS) * 36
    worse = deteriorating_counties(scale=SCALE)
    assert 2 <= len(worse) < len(counties)
    assert set(worse) <= counties


def test_the_same_seed_writes_the_same_monitoring_returns(
    tmp_path: Path, monitoring_file: SourceFile
) -> None:
    [again] = write_sources(tmp_path / "again", codes=[MONITORING])
    [other] = write_sources(tmp_path / "other", seed=1, codes=[MONITORING])
    assert again.path.read_bytes() == monitoring_file.path.read_bytes()
    assert other.path.read_bytes() != monitoring_file.path.read_bytes()
    assert deteriorating_counties() == deteriorating_counties()
    assert deteriorating_counties(seed=1) != deteriorating_counties()


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
