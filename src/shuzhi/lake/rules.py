"""Lake enumerations, the validation rules as DuckDB SQL, and freshness and light rules.

Every check is an SQL expression over the staged text columns, so a batch is validated in
one vectorised pass inside DuckDB; nothing here loops over rows in Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from shuzhi.catalog.rules import UpdateCycle
from shuzhi.core.enums import LabeledEnum, Light
from shuzhi.core.errors import Message
from shuzhi.core.standards import (
    CITIZEN_ID_WEIGHTS,
    CREDIT_CODE_CHARS,
    CREDIT_CODE_WEIGHTS,
)


class Mode(LabeledEnum):
    full = ("full", "全量", "full")
    incremental = ("incremental", "增量", "incremental")


class BatchState(LabeledEnum):
    running = ("running", "进行中", "running")
    succeeded = ("succeeded", "成功", "succeeded")
    failed = ("failed", "失败", "failed")
    # the same input as the current snapshot's batch: recorded, nothing rewritten
    unchanged = ("unchanged", "未变化", "unchanged")


class Rule(LabeledEnum):
    """Why a row went to the quarantine."""

    type = ("type", "类型不符", "wrong type")
    required = ("required", "必填为空", "required value missing")
    citizen_id = ("citizen_id", "身份证号无效", "invalid citizen ID")
    credit_code = ("credit_code", "统一社会信用代码无效", "invalid credit code")
    mobile = ("mobile", "手机号码无效", "invalid mobile number")
    region_code = ("region_code", "行政区划代码无效", "unknown region code")
    email = ("email", "电子邮箱无效", "invalid e-mail")
    min = ("min", "小于下限", "below minimum")
    max = ("max", "大于上限", "above maximum")
    values = ("values", "不在取值范围", "not an allowed value")
    pattern = ("pattern", "格式不符", "does not match the pattern")
    primary_key = ("primary_key", "主键冲突", "primary key conflict")


# the catalog's field types as DuckDB types; decimals as DOUBLE so that every engine
# (DuckDB, Spark) sums them the same way
SQL_TYPES = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "decimal": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "datetime": "TIMESTAMP",
}

# mainland province-level prefixes of GB/T 2260, the first two digits of a citizen ID
PROVINCE_PREFIXES = [
    "11",
    "12",
    "13",
    "14",
    "15",
    "21",
    "22",
    "23",
    "31",
    "32",
    "33",
    "34",
    "35",
    "36",
    "37",
    "41",
    "42",
    "43",
    "44",
    "45",
    "46",
    "50",
    "51",
    "52",
    "53",
    "54",
    "61",
    "62",
    "63",
    "64",
    "65",
    "71",
    "81",
    "82",
]

EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"
MOBILE = r"1[3-9][0-9]{9}"
# a bank card: 16 to 19 digits starting with a known issuer digit
BANK_CARD = r"[3-69][0-9]{15,18}"


def quote(name: str) -> str:
    """An SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """An SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def typed(column: str, field_type: str) -> str:
    """The expression that turns a staged text column into its catalog type, or NULL."""
    if field_type == "date":
        return (
            f"COALESCE(TRY_CAST({column} AS DATE), "
            f"TRY_CAST(TRY_STRPTIME({column}, '%Y/%m/%d') AS DATE), "
            f"TRY_CAST(TRY_STRPTIME({column}, '%Y%m%d') AS DATE))"
        )
    if field_type == "datetime":
        return (
            f"COALESCE(TRY_CAST({column} AS TIMESTAMP), "
            f"TRY_STRPTIME({column}, '%Y/%m/%d %H:%M:%S'))"
        )
    if field_type == "string":
        return column
    if field_type == "integer":
        # DuckDB's cast would round "4.5" to 5 and read "0x10" as 16; "35.00" is fine
        return (
            f"CASE WHEN regexp_full_match({column}, '\\s*[+-]?[0-9]+(\\.0*)?\\s*') "
            f"THEN TRY_CAST({column} AS BIGINT) END"
        )
    if field_type == "decimal":
        # "nan" and "inf" parse as doubles but are not amounts anyone sent on purpose
        number = f"TRY_CAST({column} AS DOUBLE)"
        return f"CASE WHEN isfinite({number}) THEN {number} END"
    return f"TRY_CAST({column} AS {SQL_TYPES[field_type]})"


# the weights of all 18 characters (the check character weighs 1): a valid ID's weighted
# sum, an X counting 10, leaves 1 modulo 11 (ISO 7064 MOD 11-2)
_ID_WEIGHTS = (*CITIZEN_ID_WEIGHTS, 1)
_ID_SUM_REMAINDER = 1


def _weighed_blocks(weights: tuple[int, ...]) -> str:
    """An SQL list: for each block of three digits (0 to 999), its digits times ``weights``."""
    sums = (
        sum(int(digit) * weight for digit, weight in zip(f"{block:03d}", weights, strict=True))
        for block in range(1000)
    )
    return "[" + ", ".join(map(str, sums)) + "]"


def _days_of_month() -> str:
    """An SQL list: for MMDD from 0 to 1231, whether such a day exists (29 February does;
    the year decides)."""
    last = {2: 29, 4: 30, 6: 30, 9: 30, 11: 30}
    return (
        "["
        + ", ".join(
            "true" if 1 <= mmdd // 100 <= 12 and 1 <= mmdd % 100 <= last.get(mmdd // 100, 31)
            else "false"
            for mmdd in range(1232)
        )
        + "]"
    )  # fmt: skip


_ID_BLOCKS = [_weighed_blocks(_ID_WEIGHTS[start : start + 3]) for start in range(0, 18, 3)]
_DAYS_OF_MONTH = _days_of_month()
# for each two-digit prefix, whether it is a province's: a list, where IN (...) would
# become a join
_PROVINCES = (
    "["
    + ", ".join("true" if f"{n:02d}" in PROVINCE_PREFIXES else "false" for n in range(100))
    + "]"
)


def citizen_id_number(column: str) -> str:
    """A citizen ID's 18 characters as one integer, for ``citizen_id_ok``: the number, or
    for a final X the negated number of the 17 digits and a 0 (no other text parses so)."""
    return (
        f"coalesce(TRY_CAST({column} AS BIGINT), -10 * TRY_CAST(substr({column}, 1, 17) AS BIGINT))"
    )


def citizen_id_ok(column: str, number: str | None = None) -> str:
    """GB 11643 in SQL: shape, province prefix, birth date, ISO 7064 MOD 11-2 check.

    Everything but the shape is arithmetic over ``number``, a column holding
    ``citizen_id_number(column)`` computed once: integer arithmetic over a column is
    several times faster than substrings, a regular expression or a date parse per row,
    and this check runs over every row of the largest registers (see docs/performance.md).
    """
    number = number or f"({citizen_id_number(column)})"
    digits = f"abs({number})"
    high, low = f"({digits} // 1000000000)", f"({digits} % 1000000000)"
    blocks = [
        f"{high} // 1000000",
        f"({high} // 1000) % 1000",
        f"{high} % 1000",
        f"{low} // 1000000",
        f"({low} // 1000) % 1000",
        f"{low} % 1000",
    ]
    total = " + ".join(
        f"{table}[{block} + 1]" for table, block in zip(_ID_BLOCKS, blocks, strict=True)
    )
    birth = f"(({digits} // 10000) % 100000000)"
    month_day = f"({birth} % 10000)"
    year = f"({birth} // 10000)"
    today = "(year(current_date) * 10000 + month(current_date) * 100 + day(current_date))"
    return (
        # the digits read back as the text: no sign, space, exponent or leading zero
        f"(CASE WHEN {number} >= 0 THEN CAST({number} AS VARCHAR) = {column} "
        f"ELSE regexp_full_match({column}, '[0-9]{{17}}[Xx]') END "
        f"AND {_PROVINCES}[{digits} // 10000000000000000 + 1] "
        f"AND {birth} BETWEEN 19000101 AND {today} "
        f"AND CASE WHEN {month_day} = 229 "
        f"THEN {year} % 4 = 0 AND ({year} % 100 <> 0 OR {year} % 400 = 0) "
        f"ELSE {_DAYS_OF_MONTH}[{month_day} + 1] END "
        f"AND ({total} + CASE WHEN {number} < 0 THEN 10 ELSE 0 END) % 11 = {_ID_SUM_REMAINDER})"
    )


def credit_code_ok(column: str) -> str:
    """GB 32100 in SQL: 18 characters of the code set, and the check character."""
    chars = literal(CREDIT_CODE_CHARS)
    total = " + ".join(
        f"{weight} * (strpos({chars}, substr({column}, {position}, 1)) - 1)"
        for position, weight in enumerate(CREDIT_CODE_WEIGHTS, start=1)
    )
    return (
        f"(regexp_full_match({column}, '[0-9A-HJ-NPQRTUWXY]{{18}}') "
        f"AND substr({chars}, ((31 - ({total}) % 31) % 31) + 1, 1) = substr({column}, 18, 1))"
    )


@dataclass(frozen=True)
class Check:
    """One rule on one field: ``failing`` is true for a value that breaks it. ``helpers``
    are columns (name → expression over the fields) that ``failing`` reads."""

    rule: Rule
    field: str
    failing: str
    helpers: tuple[tuple[str, str], ...] = ()


def field_checks(
    field: dict, column: str, *, regions_table: str, converted: str | None = None
) -> list[Check]:
    """The checks for one catalog field (as stored: name, type, nullable, format, rules).

    ``converted`` names a column already holding ``typed(column)``, so that a value is
    converted once, not once per rule that reads it."""
    name = field["name"]
    value = column
    present = f"{value} IS NOT NULL"
    number = converted or typed(value, field["type"])
    checks: list[Check] = []
    if not field["nullable"]:
        checks.append(Check(Rule.required, name, f"{value} IS NULL"))
    if field["type"] != "string":
        checks.append(Check(Rule.type, name, f"{present} AND {number} IS NULL"))
    digits = quote(f"_digits_{name}")
    # a region is looked up once per value, however many expressions read the verdict
    region = quote(f"_region_{name}")
    known = {
        "citizen_id": (Rule.citizen_id, citizen_id_ok(value, digits)),
        "credit_code": (Rule.credit_code, credit_code_ok(value)),
        "mobile": (Rule.mobile, f"regexp_full_match({value}, '{MOBILE}')"),
        "email": (Rule.email, f"regexp_full_match({value}, '{EMAIL}')"),
        "region_code": (Rule.region_code, region),
    }
    helpers = {
        "citizen_id": ((digits, citizen_id_number(value)),),
        "region_code": ((region, f"{value} IN (SELECT code FROM {regions_table})"),),
    }
    if field.get("format") in known:
        rule, ok = known[field["format"]]
        checks.append(
            Check(
                rule,
                name,
                f"{present} AND NOT coalesce({ok}, false)",
                helpers.get(field["format"], ()),
            )
        )
    rules = field.get("rules") or {}
    if rules.get("min") is not None:
        checks.append(Check(Rule.min, name, f"{number} < {float(rules['min'])!r}"))
    if rules.get("max") is not None:
        checks.append(Check(Rule.max, name, f"{number} > {float(rules['max'])!r}"))
    if rules.get("values"):
        allowed = ", ".join(literal(str(item)) for item in rules["values"])
        checks.append(Check(Rule.values, name, f"{present} AND {value} NOT IN ({allowed})"))
    if rules.get("pattern"):
        checks.append(
            Check(
                Rule.pattern,
                name,
                f"{present} AND NOT regexp_full_match({value}, {literal(rules['pattern'])})",
            )
        )
    return checks


# how long after the last load a resource is late (yellow) and then missing (red)
_CYCLE_DAYS = {
    "real_time": 1,
    "daily": 1,
    "weekly": 7,
    "monthly": 31,
    "quarterly": 92,
    "yearly": 366,
}


def due_after(update_cycle: str) -> timedelta | None:
    """How long a load stays current; None for irregular resources, which never go stale."""
    days = _CYCLE_DAYS.get(update_cycle)
    return None if days is None else timedelta(days=days)


def freshness(update_cycle: str, loaded_at: datetime | None, now: datetime) -> Light:
    """Green within one cycle (plus a day's grace), yellow up to two, red beyond."""
    if loaded_at is None:
        return Light.no_data
    cycle = due_after(update_cycle)
    if cycle is None:
        return Light.green
    age = now - loaded_at
    if age <= cycle + timedelta(days=1):
        return Light.green
    if age <= 2 * cycle + timedelta(days=1):
        return Light.yellow
    return Light.red


# validity (share of rows that passed) below which a resource is degraded, then broken
VALIDITY_YELLOW = 0.98
VALIDITY_RED = 0.80


def resource_light(*, fresh: Light, validity: float | None, failed_last: bool) -> Light:
    """One light per resource: the worse of freshness and validity."""
    if fresh is Light.no_data:
        return Light.no_data
    order = [Light.green, Light.yellow, Light.red]
    worst = order.index(fresh)
    if validity is not None:
        if validity < VALIDITY_RED:
            worst = max(worst, 2)
        elif validity < VALIDITY_YELLOW:
            worst = max(worst, 1)
    if failed_last:
        worst = max(worst, 1)
    return order[worst]


SNAPSHOT_NAME = re.compile(r"^[0-9]{8}T[0-9]{6}-b[0-9]+$")


# the cron a source follows when it says "cycle": its resource's update cycle, at night
CYCLE_CRON = {
    "real_time": "*/15 * * * *",
    "daily": "0 2 * * *",
    "weekly": "0 2 * * 1",
    "monthly": "0 2 1 * *",
    "quarterly": "0 2 1 1,4,7,10 *",
    "yearly": "0 2 1 1 *",
}
CYCLE = "cycle"


def cron_of(schedule: str, update_cycle: str) -> str:
    """The cron expression of a schedule: itself, or the update cycle's for ``cycle``."""
    if schedule.strip() == CYCLE:
        if update_cycle not in CYCLE_CRON:
            raise ValueError(
                Message(
                    "the resource's update cycle ({update_cycle}) has no schedule; give a cron "
                    "expression such as '0 2 * * *'",
                    update_cycle=update_cycle,
                    update_cycle_label=UpdateCycle.label_of(update_cycle),
                )
            )
        return CYCLE_CRON[update_cycle]
    return schedule.strip()


def next_run(schedule: str, update_cycle: str, after: datetime, timezone: str) -> datetime:
    """The first time the schedule fires strictly after ``after`` (returned in UTC)."""
    from zoneinfo import ZoneInfo

    from cronsim import CronSim, CronSimError

    expression = cron_of(schedule, update_cycle)
    local = after.astimezone(ZoneInfo(timezone))
    try:
        fire = next(CronSim(expression, local))
    except (CronSimError, StopIteration) as exc:
        raise ValueError(
            Message(
                "schedule {expression!r} is not a usable cron expression: {detail}",
                expression=expression,
                detail=str(exc),
            )
        ) from None
    return fire.astimezone(ZoneInfo("UTC"))


def backoff(attempts: int) -> timedelta:
    """Wait before retry ``attempts`` of a failed pull: 1, 2, 4 … minutes, at most an hour."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 60))
