"""The validation rules as DuckDB SQL agree with the Python standards; freshness and lights."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shuzhi.core.enums import Light
from shuzhi.core.standards import (
    CREDIT_CODE_CHARS,
    citizen_id_check,
    credit_code_check,
    is_citizen_id,
    is_credit_code,
)
from shuzhi.lake.rules import (
    PROVINCE_PREFIXES,
    Rule,
    citizen_id_ok,
    credit_code_ok,
    due_after,
    field_checks,
    freshness,
    literal,
    quote,
    resource_light,
    typed,
)

# evaluating SQL over a small table ------------------------------------------------------

_CON = duckdb.connect()


def sql_verdicts(expression: str, values: list[str | None]) -> list[bool | None]:
    """``expression`` (over the column ``v``) for each value, in order, in one query."""
    con = _CON.cursor()
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE probe (n INTEGER, v VARCHAR)")
        con.executemany("INSERT INTO probe VALUES (?, ?)", list(enumerate(values)))
        return [
            row[0] for row in con.execute(f"SELECT {expression} FROM probe ORDER BY n").fetchall()
        ]
    finally:
        con.close()


def citizen_ids_ok(values: list[str]) -> list[bool]:
    return [bool(item) for item in sql_verdicts(f"coalesce({citizen_id_ok('v')}, false)", values)]


def credit_codes_ok(values: list[str]) -> list[bool]:
    return [bool(item) for item in sql_verdicts(f"coalesce({credit_code_ok('v')}, false)", values)]


# citizen IDs ----------------------------------------------------------------------------

TODAY = date.today()


@st.composite
def valid_citizen_ids(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(PROVINCE_PREFIXES))
    area = draw(st.from_regex(r"[0-9]{4}", fullmatch=True))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=TODAY))
    sequence = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    first17 = f"{prefix}{area}{born:%Y%m%d}{sequence}"
    return first17 + citizen_id_check(first17)


def mutate(value: str, position: int, alphabet: str, pick: int) -> str:
    """``value`` with the character at ``position`` replaced by another from ``alphabet``."""
    others = [char for char in alphabet if char != value[position]]
    return value[:position] + others[pick % len(others)] + value[position + 1 :]


@settings(max_examples=60, deadline=None)
@given(st.lists(valid_citizen_ids(), min_size=1, max_size=20))
def test_sql_accepts_every_valid_citizen_id_python_accepts(codes: list[str]) -> None:
    assert all(is_citizen_id(code) for code in codes)
    assert citizen_ids_ok(codes) == [True] * len(codes)
    # the check character may be written in lower case
    lower = [code.lower() for code in codes]
    assert citizen_ids_ok(lower) == [is_citizen_id(code) for code in lower]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(valid_citizen_ids(), st.integers(0, 17), st.integers(0, 10), st.booleans()),
        min_size=1,
        max_size=20,
    )
)
def test_one_changed_character_makes_a_citizen_id_invalid_in_sql_and_python(
    cases: list[tuple[str, int, int, bool]],
) -> None:
    mutated = [
        mutate(code, position, "0123456789X" if digits_only else "0123456789Xx-A ", pick)
        for code, position, pick, digits_only in cases
    ]
    python = [is_citizen_id(code) for code in mutated]
    # one digit changed moves the MOD 11-2 sum: no single change leaves a valid ID
    assert python == [False] * len(mutated)
    assert citizen_ids_ok(mutated) == python


@settings(max_examples=80, deadline=None)
@given(st.lists(st.from_regex(r"[0-9]{17}[0-9Xx]", fullmatch=True), min_size=1, max_size=20))
def test_sql_is_python_plus_the_province_and_the_birth_date_range(codes: list[str]) -> None:
    """Arbitrary 18-character strings: the SQL is the Python check narrowed to mainland
    province prefixes and births from 1900 to today."""

    def expected(code: str) -> bool:
        if not is_citizen_id(code) or code[:2] not in PROVINCE_PREFIXES:
            return False
        return (
            date(1900, 1, 1) <= date(int(code[6:10]), int(code[10:12]), int(code[12:14])) <= TODAY
        )

    assert citizen_ids_ok(codes) == [expected(code) for code in codes]


def citizen_id(first17: str) -> str:
    return first17 + citizen_id_check(first17)


def test_known_citizen_ids() -> None:
    valid = [
        "11010519491231002X",
        "11010519491231002x",
        citizen_id("44052419800101001"),
        citizen_id("33010220000229001"),  # 2000 is a leap year
        citizen_id("33010220040229001"),
    ]
    # each wrong in one way only: the check character is right unless it is the defect
    invalid = {
        "wrong check character": "110105194912310021",
        "30 February 1990": citizen_id("11010519900230001"),
        "no province 99": citizen_id("99010519491231002"),
        "born in 2100": citizen_id("11010521000101001"),
        "born before 1900": citizen_id("11010518991231001"),
        "17 characters": "11010519491231002",
        "19 characters": "11010519491231002XX",
        "a full-width digit": "1101051949123100２X",
        "a letter": "A1010519491231002X",
        "empty": "",
        # the SQL reads the characters as one number: text that parses as a number all
        # the same must still be refused
        "29 February 1900": citizen_id("33010219000229001"),
        "29 February 1999": citizen_id("33010219990229001"),
        "an exponent": "11010519491231e+03",
        "a short exponent": "110105194912310e03",
        "hexadecimal": "0x0186CC6ACD4B0000",
        "a leading space": " " + citizen_id("11010519491231002")[1:],
        "a leading plus": "+" + citizen_id("11010519491231002")[1:],
        "a trailing space": citizen_id("11010519491231002") + " ",
        "a digit separator": "1_0105194912310021",
        "a decimal point": "11010519491231002.",
        "a minus sign": "-" + citizen_id("11010519491231002")[1:],
        "X inside": "1101051949123100X2",
    }
    verdicts = citizen_ids_ok([*valid, *invalid.values()])
    assert verdicts[: len(valid)] == [True] * len(valid)
    assert dict(zip(invalid, verdicts[len(valid) :], strict=True)) == dict.fromkeys(invalid, False)
    # NULL is not judged here; the required rule decides on missing values
    assert sql_verdicts(citizen_id_ok("v"), [None]) == [None]


def test_the_sql_is_stricter_than_the_python_check_on_province_and_birth_date() -> None:
    """core.standards.is_citizen_id checks shape, date and check character only."""
    for code in (citizen_id("99010519491231002"), citizen_id("11010521000101001")):
        assert is_citizen_id(code)
        assert citizen_ids_ok([code]) == [False]


# unified social credit codes -------------------------------------------------------------

credit_bodies = st.text(alphabet=CREDIT_CODE_CHARS, min_size=17, max_size=17)


@settings(max_examples=60, deadline=None)
@given(st.lists(credit_bodies, min_size=1, max_size=20))
def test_sql_accepts_every_valid_credit_code(bodies: list[str]) -> None:
    codes = [body + credit_code_check(body) for body in bodies]
    assert all(is_credit_code(code) for code in codes)
    assert credit_codes_ok(codes) == [True] * len(codes)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(credit_bodies, st.integers(0, 17), st.integers(0, 40)), min_size=1, max_size=20
    )
)
def test_one_changed_character_makes_a_credit_code_invalid_in_sql_and_python(
    cases: list[tuple[str, int, int]],
) -> None:
    codes = [body + credit_code_check(body) for body, _, _ in cases]
    alphabet = CREDIT_CODE_CHARS + "IOSVZa-"
    mutated = [
        mutate(code, position, alphabet, pick)
        for code, (_, position, pick) in zip(codes, cases, strict=True)
    ]
    python = [is_credit_code(code) for code in mutated]
    assert python == [False] * len(mutated)
    assert credit_codes_ok(mutated) == python


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.text(alphabet=CREDIT_CODE_CHARS + "IOio", min_size=16, max_size=19),
        min_size=1,
        max_size=20,
    )
)
def test_sql_and_python_agree_on_any_credit_code_like_text(codes: list[str]) -> None:
    assert credit_codes_ok(codes) == [is_credit_code(code) for code in codes]


def test_known_credit_codes() -> None:
    valid = ["91350100M000100Y43", "91330000MA27U0X01X"]
    valid = [code[:17] + credit_code_check(code[:17]) for code in valid]
    assert valid[0] == "91350100M000100Y43"
    wrong_check = valid[0][:17] + ("0" if valid[0][17] != "0" else "1")
    invalid = [wrong_check, valid[0].lower(), valid[0][:17], "91350100M000100I43", ""]
    assert credit_codes_ok(valid + invalid) == [True, True] + [False] * len(invalid)


# the checks of a field ---------------------------------------------------------------------


def failing_rules(field: dict[str, Any], values: list[str | None]) -> list[set[str]]:
    """For each value, the rules it breaks."""
    checks = field_checks(field, "v", regions_table="regions")
    _CON.execute("CREATE OR REPLACE TABLE regions (code VARCHAR)")
    _CON.execute("INSERT INTO regions VALUES ('330000'), ('330106')")
    columns = ", ".join(f"coalesce({check.failing}, false)" for check in checks)
    helpers = "".join(
        f", {expression} AS {name}" for check in checks for name, expression in check.helpers
    )
    verdicts = sql_verdicts(f"(SELECT [{columns}] FROM (SELECT v{helpers}))", values)
    return [
        {check.rule.value for check, failed in zip(checks, row, strict=True) if failed}
        for row in verdicts  # type: ignore[union-attr]
    ]


def field(**spec: Any) -> dict[str, Any]:
    return {"name": "f", "type": "string", "nullable": True, "format": None, "rules": None, **spec}


def test_a_required_field_fails_only_when_missing() -> None:
    assert failing_rules(field(nullable=False), [None, "x"]) == [{"required"}, set()]
    assert failing_rules(field(), [None]) == [set()]


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        # a whole number only: DuckDB alone would round 4.5 to 5 and read 0x10 as 16
        ("integer", ["42", "-7", " 8 ", "+3", "35.00"], ["4.5", "0x10", "1e3", "1_000", "abc"]),
        ("decimal", ["4.5", "-0.25", "1e3"], ["4,5", "abc"]),
        ("boolean", ["true", "false", "1", "0", "t", "F", "yes"], ["maybe", "2", "on"]),
        ("date", ["2024-02-29", "2024/03/01", "20240301"], ["2023-02-29", "01/03/2024", "x"]),
        ("datetime", ["2024-03-01 08:30:00", "2024-03-01T08:30:00", "2024/03/01 08:30:00"],
         ["2024-03-01 25:00:00", "yesterday"]),
    ],
)  # fmt: skip
def test_the_type_rule_follows_what_the_type_can_parse(
    kind: str, good: list[str], bad: list[str]
) -> None:
    found = failing_rules(field(type=kind), good + bad)
    assert found == [set()] * len(good) + [{"type"}] * len(bad)


def test_typed_reads_the_usual_date_spellings() -> None:
    assert (
        sql_verdicts(typed("v", "date"), ["2024/03/01", "20240301", "2024-03-01"])
        == [date(2024, 3, 1)] * 3
    )
    assert sql_verdicts(typed("v", "datetime"), ["2024/03/01 08:30:00"]) == [
        datetime(2024, 3, 1, 8, 30)
    ]


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("mobile", ["13800138000", "19912345678"], ["12345678901", "1380013800", "+8613800138000"]),
        ("email", ["a.b+c@gov.example.cn"], ["a@b", "a b@example.cn", "@example.cn"]),
        ("region_code", ["330106"], ["999999", "33010"]),
        ("citizen_id", ["11010519491231002X"], ["110105194912310021"]),
        ("credit_code", ["91350100M000100Y43"], ["91350100M000100Y44"]),
    ],
)
def test_format_checks(fmt: str, good: list[str], bad: list[str]) -> None:
    found = failing_rules(field(format=fmt), [*good, *bad, None])
    assert found == [set()] * len(good) + [{fmt}] * len(bad) + [set()]


def test_min_max_values_and_pattern() -> None:
    number = field(type="decimal", rules={"min": 0, "max": 1.5})
    assert failing_rules(number, ["-0.1", "0", "1.5", "1.51", None, "x"]) == [
        {"min"},
        set(),
        set(),
        {"max"},
        set(),
        {"type"},
    ]
    allowed = field(rules={"values": ["在册", "it's"]})
    assert failing_rules(allowed, ["在册", "it's", "注销", None]) == [
        set(),
        set(),
        {"values"},
        set(),
    ]
    # a pattern must match the whole value, and may hold quotes
    pattern = field(rules={"pattern": "[A-Z]'[0-9]+"})
    assert failing_rules(pattern, ["A'12", "A'12x", "xA'12", None]) == [
        set(),
        {"pattern"},
        {"pattern"},
        set(),
    ]


def test_identifiers_and_literals_are_quoted() -> None:
    assert quote('a"b') == '"a""b"'
    assert literal("it's") == "'it''s'"
    assert sql_verdicts(f"{literal('it' + chr(39) + 's')} = v", ["it's"]) == [True]


def test_every_rule_has_a_chinese_and_english_label() -> None:
    for rule in Rule:
        assert rule.zh and rule.en


# freshness and lights ----------------------------------------------------------------------

LOADED = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cycle", "age", "light"),
    [
        ("daily", timedelta(hours=47), Light.green),
        ("daily", timedelta(days=2, hours=1), Light.yellow),
        ("daily", timedelta(days=3), Light.yellow),
        ("daily", timedelta(days=3, minutes=1), Light.red),
        ("weekly", timedelta(days=8), Light.green),
        ("weekly", timedelta(days=10), Light.yellow),
        ("monthly", timedelta(days=70), Light.red),
        ("irregular", timedelta(days=4000), Light.green),
    ],
)
def test_freshness_is_green_within_a_cycle_yellow_up_to_two_then_red(
    cycle: str, age: timedelta, light: Light
) -> None:
    assert freshness(cycle, LOADED, LOADED + age) is light


def test_freshness_without_a_load_is_no_data() -> None:
    assert freshness("daily", None, LOADED) is Light.no_data
    assert due_after("irregular") is None
    assert due_after("weekly") == timedelta(days=7)


def _lights() -> Iterator[tuple[Light, float | None, bool, Light]]:
    yield Light.green, 1.0, False, Light.green
    yield Light.green, None, False, Light.green
    yield Light.green, 0.97, False, Light.yellow
    yield Light.green, 0.79, False, Light.red
    yield Light.green, 1.0, True, Light.yellow
    yield Light.yellow, 1.0, False, Light.yellow
    yield Light.red, 1.0, True, Light.red
    yield Light.no_data, 0.1, True, Light.no_data


@pytest.mark.parametrize(("fresh", "validity", "failed", "light"), list(_lights()))
def test_a_resource_light_is_the_worse_of_freshness_and_validity(
    fresh: Light, validity: float | None, failed: bool, light: Light
) -> None:
    assert resource_light(fresh=fresh, validity=validity, failed_last=failed) is light
