"""The demo's indicators written by hand, the baseline of bench/brain.py: one plain DuckDB
query per indicator, as an analyst would write it, over the current snapshot files.

Each query groups the rows joined to ``_brain_regions`` (each region with itself and every
ancestor) once per grain and stacks the grains with UNION ALL. Ratios are sum / sum (FILTER
picks each part's rows), the parts paired in each county first so that a county reporting
only one of them counts in neither; stocks take the last value of each county in the
period (``arg_max``), then sum the counties; derived indicators join the base results. Nothing
here comes from ``shuzhi.brain.compute``: the indicators are listed below as an analyst
would list them, and the benchmark checks that both give the same values.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb
import pyarrow as pa

GRAINS = ("month", "quarter", "year")
SCHEMA = pa.schema(
    [
        ("indicator", pa.string()),
        ("region_code", pa.string()),
        ("grain", pa.string()),
        ("period_start", pa.date32()),
        ("value", pa.float64()),
        ("numerator", pa.float64()),
        ("denominator", pa.float64()),
        ("last_time", pa.date32()),
    ]
)

MONITORING = "dsj_county_monthly_monitoring"  # region_code, month, item_code, value
STATISTICS = "tjj_county_monthly_indicator"  # region_code, month, indicator_code, value
ENTERPRISES = "scjgj_enterprise_registration"  # region_code, establishment_date, ...
PENALTIES = "sft_administrative_penalty"  # region_code, decision_date, ...
HOTLINE = "zfw_hotline_12345_order"  # region_code, received_at, status, caller_phone


def _stack(selects: list[str]) -> str:
    return "\nUNION ALL\n".join(selects)


def _period(grain: str, column: str) -> str:
    return f"CAST(date_trunc('{grain}', {column}) AS DATE)"


def flow(code: str, file: Path, *, time: str, measure: str, where: str, grains=GRAINS) -> str:
    """A count or a sum: the rows of every county under a region, per period."""
    return _stack(
        [
            f"""SELECT '{code}' AS indicator, r.ancestor AS region_code, '{grain}' AS grain,
       {_period(grain, "f." + time)} AS period_start, {measure} AS value,
       {measure} AS numerator, NULL AS denominator, CAST(max(f.{time}) AS DATE) AS last_time
FROM read_parquet('{file}') f JOIN _brain_regions r ON r.code = f.region_code
WHERE {where}
GROUP BY r.ancestor, {_period(grain, "f." + time)}"""
            for grain in grains
        ]
    )


def ratio(
    code: str,
    file: Path,
    *,
    time: str,
    numerator: str,
    denominator: str,
    parts: str,
    where: str,
    scale: float,
    grains=GRAINS,
) -> str:
    """numerator / denominator * scale. Each county's two parts are paired per period
    first (``parts`` says which rows are the denominator's: a county without any has no
    pair), and only the counties whose numerator is known are summed up the tree."""
    counties = _stack(
        [
            f"""SELECT f.region_code, '{grain}' AS grain,
       {_period(grain, "f." + time)} AS period_start, {numerator} AS n,
       {denominator} AS d, CAST(max(f.{time}) AS DATE) AS last_time
FROM read_parquet('{file}') f
WHERE {where}
GROUP BY f.region_code, {_period(grain, "f." + time)}
HAVING count(*) FILTER (WHERE {parts}) > 0"""
            for grain in grains
        ]
    )
    return f"""WITH county AS ({counties})
SELECT '{code}' AS indicator, r.ancestor AS region_code, c.grain, c.period_start,
       sum(c.n) / NULLIF(sum(c.d) FILTER (WHERE c.n IS NOT NULL), 0) * {scale} AS value,
       sum(c.n) AS numerator, sum(c.d) FILTER (WHERE c.n IS NOT NULL) AS denominator,
       max(c.last_time) AS last_time
FROM county c JOIN _brain_regions r ON r.code = c.region_code
GROUP BY r.ancestor, c.grain, c.period_start"""


def item_sum(code: str, file: Path, *, column: str, item: str) -> str:
    return flow(code, file, time="month", measure="sum(f.value)", where=f"f.{column} = '{item}'")


def item_ratio(code: str, file: Path, *, numerator: str, denominator: str, scale: float) -> str:
    return ratio(
        code,
        file,
        time="month",
        numerator=f"sum(f.value) FILTER (WHERE f.item_code = '{numerator}')",
        denominator=f"sum(f.value) FILTER (WHERE f.item_code = '{denominator}')",
        parts=f"f.item_code = '{denominator}'",
        where=f"f.item_code IN ('{numerator}', '{denominator}')",
        scale=scale,
    )


def item_average(code: str, file: Path, *, column: str, item: str) -> str:
    return ratio(
        code,
        file,
        time="month",
        numerator="sum(f.value)",
        denominator="count(f.value)",
        parts="f.value IS NOT NULL",
        where=f"f.{column} = '{item}'",
        scale=1,
    )


def stock(code: str, file: Path, *, item: str) -> str:
    """The last value of each county in the period, summed over the region's counties."""
    counties = _stack(
        [
            f"""SELECT region_code, '{grain}' AS grain, {_period(grain, "month")} AS period_start,
       arg_max(value, month) AS value, max(month) AS last_time
FROM read_parquet('{file}') WHERE item_code = '{item}'
GROUP BY region_code, {_period(grain, "month")}"""
            for grain in GRAINS
        ]
    )
    return f"""WITH county AS ({counties})
SELECT '{code}' AS indicator, r.ancestor AS region_code, c.grain, c.period_start,
       sum(c.value) AS value, sum(c.value) AS numerator, NULL AS denominator,
       max(c.last_time) AS last_time
FROM county c JOIN _brain_regions r ON r.code = c.region_code
GROUP BY r.ancestor, c.grain, c.period_start"""


def daily_stock(code: str, file: Path, *, item: str, time: str) -> str:
    """A stock reported in several rows a day: each county's day summed first, then the
    county's last day of the period, then the counties summed."""
    counties = _stack(
        [
            f"""SELECT region_code, '{grain}' AS grain, {_period(grain, time)} AS period_start,
       arg_max(total, {time}) AS value, max({time}) AS last_time
FROM daily GROUP BY region_code, {_period(grain, time)}"""
            for grain in GRAINS
        ]
    )
    return f"""WITH daily AS (
  SELECT region_code, {time}, sum(value) AS total FROM read_parquet('{file}')
  WHERE item_code = '{item}' GROUP BY region_code, {time}
), county AS ({counties})
SELECT '{code}' AS indicator, r.ancestor AS region_code, c.grain, c.period_start,
       sum(c.value) AS value, sum(c.value) AS numerator, NULL AS denominator,
       max(c.last_time) AS last_time
FROM county c JOIN _brain_regions r ON r.code = c.region_code
GROUP BY r.ancestor, c.grain, c.period_start"""


def stock_ratio(code: str, file: Path, *, numerator: str, denominator: str, scale: float) -> str:
    """Per county the last numerator and the last denominator of the period, paired;
    summed over the region's counties whose numerator is known, then divided."""
    counties = _stack(
        [
            f"""SELECT region_code, '{grain}' AS grain, {_period(grain, "month")} AS period_start,
       arg_max(value, month) FILTER (WHERE item_code = '{numerator}') AS n,
       arg_max(value, month) FILTER (WHERE item_code = '{denominator}') AS d,
       max(month) AS last_time
FROM read_parquet('{file}') WHERE item_code IN ('{numerator}', '{denominator}')
GROUP BY region_code, {_period(grain, "month")}
HAVING count(*) FILTER (WHERE item_code = '{denominator}') > 0"""
            for grain in GRAINS
        ]
    )
    return f"""WITH county AS ({counties})
SELECT '{code}' AS indicator, r.ancestor AS region_code, c.grain, c.period_start,
       sum(c.n) / NULLIF(sum(c.d) FILTER (WHERE c.n IS NOT NULL), 0) * {scale} AS value,
       sum(c.n) AS numerator, sum(c.d) FILTER (WHERE c.n IS NOT NULL) AS denominator,
       max(c.last_time) AS last_time
FROM county c JOIN _brain_regions r ON r.code = c.region_code
GROUP BY r.ancestor, c.grain, c.period_start"""


def distinct(code: str, file: Path, *, time: str, field: str, grains=GRAINS) -> str:
    return flow(
        code, file, time=time, measure=f"count(DISTINCT f.{field})", where="TRUE", grains=grains
    )


def derived(code: str, left: str, right: str, scale: float = 1) -> str:
    """left / right * scale at each region and period where both have a value row."""
    return f"""SELECT '{code}' AS indicator, a.region_code, a.grain, a.period_start,
       a.value / NULLIF(b.value, 0) * {scale} AS value, NULL AS numerator, NULL AS denominator,
       greatest(a.last_time, b.last_time) AS last_time
FROM base a JOIN base b USING (region_code, grain, period_start)
WHERE a.indicator = '{left}' AND b.indicator = '{right}'"""


def base_queries(files: Mapping[str, Path]) -> dict[str, str]:
    """The demo's base indicators, one query each, over ``files`` (code -> Parquet)."""
    monitoring, statistics = files[MONITORING], files[STATISTICS]
    hotline = files[HOTLINE]
    queries = {
        code: item_sum(code, monitoring, column="item_code", item=item)
        for code, item in [
            ("party_member_training", "party_members_trained"),
            ("digital_core_revenue", "digital_core_revenue"),
            ("cultural_visits", "cultural_visits"),
            ("criminal_cases", "criminal_cases"),
        ]
    }
    queries.update(
        (code, item_sum(code, statistics, column="indicator_code", item=code))
        for code in ("gdp", "retail_sales", "fiscal_revenue")
    )
    queries.update(
        (code, item_ratio(code, monitoring, numerator=n, denominator=d, scale=scale))
        for code, n, d, scale in [
            ("online_service_rate", "online_services_done_online", "online_services", 100),
            ("enforcement_on_time_rate", "enforcement_cases_on_time", "enforcement_cases_closed",
             100),
            ("business_opening_days", "business_opening_days", "business_openings", 1),
            ("dispute_mediation_success_rate", "disputes_resolved", "disputes_mediated", 100),
            ("grid_events_on_time_rate", "grid_events_on_time", "grid_events", 100),
            ("hotline_on_time_rate", "hotline_orders_on_time", "hotline_orders", 100),
            ("hotline_satisfaction_rate", "hotline_satisfied", "hotline_visited", 100),
            ("hazard_rectification_rate", "hazards_rectified", "hazards_found", 100),
        ]
    )  # fmt: skip
    queries["registered_unemployment_rate"] = item_average(
        "registered_unemployment_rate",
        statistics,
        column="indicator_code",
        item="registered_unemployment",
    )
    queries.update(
        (code, item_average(code, monitoring, column="item_code", item=code))
        for code in ("urban_income", "rural_income", "pm25", "good_air_days")
    )
    queries["resident_population"] = stock(
        "resident_population", monitoring, item="resident_population"
    )
    queries["childcare_places_per_1000"] = stock_ratio(
        "childcare_places_per_1000",
        monitoring,
        numerator="childcare_places",
        denominator="resident_population",
        scale=1000,
    )
    queries["elderly_care_beds_per_100"] = stock_ratio(
        "elderly_care_beds_per_100",
        monitoring,
        numerator="elderly_care_beds",
        denominator="elderly_population",
        scale=100,
    )
    queries["new_enterprises"] = flow(
        "new_enterprises",
        files[ENTERPRISES],
        time="establishment_date",
        measure="count(*)",
        where="TRUE",
    )
    queries["administrative_penalties"] = flow(
        "administrative_penalties",
        files[PENALTIES],
        time="decision_date",
        measure="count(*)",
        where="TRUE",
    )
    queries["hotline_orders_received"] = flow(
        "hotline_orders_received",
        hotline,
        time="received_at",
        measure="count(*)",
        where="TRUE",
        grains=("week", "month", "quarter"),
    )
    queries["hotline_orders_closed_share"] = ratio(
        "hotline_orders_closed_share",
        hotline,
        time="received_at",
        numerator="count(*) FILTER (WHERE f.status IN ('已办结', '已回访'))",
        denominator="count(*)",
        parts="TRUE",
        where="TRUE",
        scale=100,
    )
    queries["hotline_callers"] = distinct(
        "hotline_callers",
        hotline,
        time="received_at",
        field="caller_phone",
        grains=("month", "quarter"),
    )
    return queries


DERIVED = {
    "digital_core_to_gdp": derived("digital_core_to_gdp", "digital_core_revenue", "gdp", 100),
    "urban_rural_income_ratio": derived("urban_rural_income_ratio", "urban_income", "rural_income"),
    "cultural_visits_per_capita": derived(
        "cultural_visits_per_capita", "cultural_visits", "resident_population"
    ),
    "criminal_cases_per_10k": derived(
        "criminal_cases_per_10k", "criminal_cases", "resident_population", 10000
    ),
}

SOURCES = (MONITORING, STATISTICS, ENTERPRISES, PENALTIES, HOTLINE)


def run(
    con: duckdb.DuckDBPyConnection,
    files: Mapping[str, Path],
    regions: pa.Table,
    *,
    only: str | None = None,
) -> pa.Table:
    """Every demo indicator (or ``only`` one base indicator), as one table of SCHEMA."""
    con.register("_brain_regions", regions)
    base = [
        con.sql(sql).to_arrow_table().cast(SCHEMA)
        for code, sql in base_queries(files).items()
        if only is None or code == only
    ]
    if only is not None:
        return pa.concat_tables(base)
    con.register("base", pa.concat_tables(base))
    derived = [con.sql(sql).to_arrow_table().cast(SCHEMA) for sql in DERIVED.values()]
    return pa.concat_tables(base + derived)
