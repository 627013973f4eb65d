"""Computation of indicators on DuckDB, against values worked out by hand in ``data``."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from shuzhi.brain import queries, service
from shuzhi.core.db import Database
from shuzhi.core.errors import ValidationFailed
from shuzhi.core.permissions import SYSTEM
from tests.brain.data import (
    EVENTS,
    GONGSHU,
    HAISHU,
    HANGZHOU,
    MONTHLY,
    NEVER,
    NINGBO,
    PROVINCE,
    SHANGCHENG,
    define,
    derived,
    monthly,
    monthly_rows,
    write,
)
from tests.lake.data import ingest

JAN, FEB, APR = date(2025, 1, 1), date(2025, 2, 1), date(2025, 4, 1)
Q1, Q2, Y2025 = date(2025, 1, 1), date(2025, 4, 1), date(2025, 1, 1)


def value(indicator: str, region: str, grain: str, start: date) -> float | None:
    rows = queries.value_rows(
        indicator=indicator, region=region, grain=grain, start=start, end=start
    )
    assert len(rows) == 1, f"{indicator} {region} {grain} {start}: {len(rows)} rows"
    return rows[0]["value"]


def absent(indicator: str, region: str, grain: str, start: date) -> bool:
    rows = queries.value_rows(
        indicator=indicator, region=region, grain=grain, start=start, end=start
    )
    return rows == []


@pytest.fixture
def computed(brain_db: Database) -> Database:
    service.compute(brain_db, actor=SYSTEM)
    return brain_db


def test_additive_sums_over_time_and_regions(computed: Database) -> None:
    assert value("cases", SHANGCHENG, "month", JAN) == 10
    assert value("cases", HANGZHOU, "month", JAN) == 15
    assert value("cases", SHANGCHENG, "quarter", Q1) == 60
    assert value("cases", HANGZHOU, "quarter", Q1) == 75
    assert value("cases", NINGBO, "quarter", Q1) == 0
    assert value("cases", PROVINCE, "year", Y2025) == 122


def test_ratio_is_recomputed_from_sums_never_averaged(computed: Database) -> None:
    assert value("on_time_rate", SHANGCHENG, "quarter", Q1) == pytest.approx(90.0)
    assert value("on_time_rate", GONGSHU, "quarter", Q1) == pytest.approx(1400 / 15)
    # 68 of 75: averaging the two counties' rates would give 91.67
    assert value("on_time_rate", HANGZHOU, "quarter", Q1) == pytest.approx(6800 / 75)
    assert value("on_time_rate", PROVINCE, "quarter", Q1) == pytest.approx(6800 / 75)


def test_unreported_numerator_and_zero_denominator_give_no_value(
    computed: Database,
) -> None:
    assert value("on_time_rate", GONGSHU, "month", APR) == 0.0  # reported: none on time
    # 海曙 reported April's cases but not how many were on time: unknown, not 0%
    assert value("on_time_rate", HAISHU, "month", APR) is None
    assert value("on_time_rate", NINGBO, "month", APR) is None
    # the province pairs each county's parts: 海曙's cases without an on-time count are in
    # neither sum, so April is 40 of 45, not 40 of 47
    assert value("on_time_rate", PROVINCE, "month", APR) == pytest.approx(4000 / 45)
    assert value("on_time_rate", HAISHU, "month", JAN) is None
    assert value("on_time_rate", NINGBO, "quarter", Q1) is None


def test_stock_takes_the_last_value_in_the_period_and_sums_over_regions(
    computed: Database,
) -> None:
    assert value("population", SHANGCHENG, "quarter", Q1) == 1100  # March, not 3100
    assert value("population", HANGZHOU, "quarter", Q1) == 3100
    assert value("population", PROVINCE, "quarter", Q1) == 3600
    assert value("population", PROVINCE, "month", APR) == 3100  # 海曙 not reported yet
    # each county's last report in the year: 海曙's is March's
    assert value("population", PROVINCE, "year", Y2025) == 3600
    assert absent("population", HAISHU, "quarter", Q2)


def test_ratio_of_stocks(computed: Database) -> None:
    assert value("places_per_1000", SHANGCHENG, "quarter", Q1) == pytest.approx(5 / 1100 * 1000)
    assert value("places_per_1000", HANGZHOU, "quarter", Q1) == pytest.approx(15 / 3100 * 1000)
    assert value("places_per_1000", PROVINCE, "quarter", Q1) == pytest.approx(16 / 3600 * 1000)
    # a numerator without a denominator is no value at all, and no part of its parents'
    assert absent("places_per_1000", NINGBO, "quarter", Q2)
    assert value("places_per_1000", PROVINCE, "month", APR) == pytest.approx(16 / 3100 * 1000)


def test_derived_indicator_combines_values_of_the_same_region_and_period(
    computed: Database,
) -> None:
    assert value("cases_per_1000", SHANGCHENG, "month", JAN) == pytest.approx(10.0)
    assert value("cases_per_1000", PROVINCE, "quarter", Q1) == pytest.approx(75 / 3600 * 1000)
    # a county with no cases and a population: 0, not no data
    assert value("cases_per_1000", HAISHU, "month", JAN) == 0.0


def test_average_divides_sums_by_counts_at_every_level(computed: Database) -> None:
    assert value("average_cases", SHANGCHENG, "quarter", Q1) == pytest.approx(20.0)
    assert value("average_cases", HANGZHOU, "quarter", Q1) == pytest.approx(12.5)
    assert value("average_cases", PROVINCE, "quarter", Q1) == pytest.approx(75 / 9)


def test_counts_over_days_weeks_and_months(computed: Database) -> None:
    assert value("events", SHANGCHENG, "month", JAN) == 3
    assert value("events", HANGZHOU, "month", JAN) == 4
    assert value("events", PROVINCE, "month", FEB) == 1
    assert value("events", SHANGCHENG, "day", date(2025, 1, 5)) == 1
    # weeks start on Monday: Sunday 5 January 2025 belongs to the week of 30 December 2024
    assert value("events", SHANGCHENG, "week", date(2024, 12, 30)) == 1
    assert value("events", PROVINCE, "week", date(2025, 1, 20)) == 2


def test_distinct_count_is_counted_again_at_each_level(computed: Database) -> None:
    assert value("people", SHANGCHENG, "month", JAN) == 2
    assert value("people", GONGSHU, "month", JAN) == 1
    assert value("people", HANGZHOU, "month", JAN) == 2  # 甲 is in both counties
    assert value("people", PROVINCE, "quarter", Q1) == 3


def test_ratio_of_filtered_counts(computed: Database) -> None:
    assert value("closed_share", SHANGCHENG, "month", JAN) == pytest.approx(200 / 3)
    assert value("closed_share", PROVINCE, "quarter", Q1) == pytest.approx(60.0)
    assert value("closed_share", HAISHU, "month", FEB) == 0.0


def test_a_source_never_loaded_is_no_data_not_zero(computed: Database) -> None:
    assert queries.value_rows(indicator="never") == []


def test_run_records_lineage(computed: Database) -> None:
    with computed.session() as session:
        run = queries.last_run(session)
        assert run is not None
        assert run.state == "succeeded"
        assert set(run.read) == {MONTHLY, EVENTS}
        assert NEVER not in run.read
        snapshot = run.snapshot
        assert run.rows == len(queries.value_rows())
    lake = queries.results_lake()
    lineage = json.loads(
        (lake.snapshot_dir(queries.RESULTS, snapshot) / "lineage.json").read_text()
    )
    assert lineage["read"][MONTHLY] == lake.current(MONTHLY)
    assert lake.current(queries.RESULTS) == snapshot


def test_recomputing_one_indicator_keeps_the_others_and_its_dependents_follow(
    computed: Database,
) -> None:
    before = queries.value_rows(indicator="people")
    run = service.compute(computed, actor=SYSTEM, indicators=["cases"])
    assert run.indicators == ["cases", "cases_per_1000"]
    assert queries.value_rows(indicator="people") == before
    assert value("cases_per_1000", PROVINCE, "quarter", Q1) == pytest.approx(75 / 3600 * 1000)


def test_new_snapshot_makes_its_indicators_stale_and_the_job_recomputes_them(
    computed: Database, tmp_path: Path
) -> None:
    assert service.stale_indicators(computed) == []
    rows = [row for row in monthly_rows() if row[0] != SHANGCHENG or row[2] != "cases"]
    rows += [[SHANGCHENG, month, "cases", 1] for month in ("2025-01-01", "2025-02-01")]
    ingest(computed, write(tmp_path / "again.csv", ["region_code", "month", "item", "value"], rows),
           code=MONTHLY)  # fmt: skip
    stale = service.stale_indicators(computed)
    assert "cases" in stale and "people" not in stale
    # and the derived indicator that reads one of them
    assert service.recompute_stale(computed, "test") == len(stale) + 1
    assert value("cases", SHANGCHENG, "quarter", Q1) == 2
    assert service.stale_indicators(computed) == []


def test_unknown_engine_is_refused(brain_db: Database) -> None:
    with pytest.raises(ValidationFailed, match="unknown engine 'oracle'"):
        service.compute(brain_db, actor=SYSTEM, engine="oracle")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "no_such_resource"}, "unknown resource no_such_resource"),
        ({"time": "moment"}, f"resource {MONTHLY} has no field moment"),
        ({"time": "item"}, "the time column test_county_monthly.item is string"),
        ({"measure": {"kind": "sum", "field": "item"}}, "the sum field test_county_monthly.item"),
        ({"measure": {"kind": "sum", "field": "value", "where": {"colour": "red"}}},
         "has no field colour"),
        ({"measure": {"kind": "sum", "field": "value", "where": {"value": "many"}}},
         "'many' is not a number"),
        ({"owner": "zj_nobody"}, "unknown owner department zj_nobody"),
    ],
)  # fmt: skip
def test_validation_names_what_is_wrong(brain_db: Database, change: dict, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        define(brain_db, [{**monthly("broken", "cases"), **change}])


def test_unknown_indicator_and_cycles_are_refused(brain_db: Database) -> None:
    with pytest.raises(ValidationFailed, match="unknown indicator ghost in the expression"):
        define(brain_db, [derived("d1", "cases / ghost")])
    with pytest.raises(ValidationFailed, match=r"cycle: (d1 → d2 → d1|d2 → d1 → d2)"):
        define(brain_db, [derived("d1", "d2 + 1"), derived("d2", "d1 * 2")])
    with pytest.raises(ValidationFailed, match="only \\+ - \\* /"):
        define(brain_db, [derived("d3", "__import__('os')")])


def test_a_derived_indicator_may_name_one_further_down_the_file(brain_db: Database) -> None:
    file = [derived("d_top", "d_mid * 2"), derived("d_mid", "cases + 1")]
    result = define(brain_db, file, source="forward.yaml")
    assert result.created == ["d_top", "d_mid"]  # as the file lists them
    service.compute(brain_db, actor=SYSTEM)
    assert value("d_mid", SHANGCHENG, "month", JAN) == 11
    assert value("d_top", SHANGCHENG, "month", JAN) == 22


def test_a_file_may_reroute_a_chain_through_a_stored_indicator(brain_db: Database) -> None:
    # stored: d_s reads d_b, which reads d_a
    define(brain_db, [derived("d_a", "cases + 1"), derived("d_b", "d_a * 2"),
                      derived("d_s", "d_b + 1")])  # fmt: skip
    # the file turns the chain round: d_a reads d_s, d_b no longer reads d_a; saving d_a
    # before d_b (file order) would meet the stored d_b and a cycle d_a → d_s → d_b → d_a
    file = [derived("d_a", "d_s * 10"), derived("d_b", "cases * 2")]
    result = define(brain_db, file, source="reroute.yaml")
    assert result.updated == ["d_a", "d_b"]  # as the file lists them
    service.compute(brain_db, actor=SYSTEM)
    assert value("d_b", SHANGCHENG, "month", JAN) == 20
    assert value("d_s", SHANGCHENG, "month", JAN) == 21
    assert value("d_a", SHANGCHENG, "month", JAN) == 210


def test_a_cycle_through_a_stored_indicator_is_refused_and_nothing_saved(
    brain_db: Database,
) -> None:
    define(brain_db, [derived("d_a", "cases + 1"), derived("d_s", "d_a * 2")])
    with brain_db.session() as session:
        before = queries.specs(session)
    file = [derived("d_new", "cases * 3"), derived("d_a", "d_s + 1")]
    cycle = r"^cycle\.yaml: derived indicators form a cycle: (d_a → d_s → d_a|d_s → d_a → d_s)$"
    with pytest.raises(ValidationFailed, match=cycle):
        define(brain_db, file, source="cycle.yaml")
    with brain_db.session() as session:
        assert queries.specs(session) == before


def test_applying_the_same_file_twice_changes_nothing(brain_db: Database) -> None:
    from tests.brain.data import INDICATORS

    result = define(brain_db, source="again.yaml")
    assert result.created == [] and result.updated == []
    assert len(result.unchanged) == len(INDICATORS)


def test_a_failed_run_leaves_the_previous_results_current(
    computed: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shuzhi.brain import compute as computing

    current = queries.results_lake().current(queries.RESULTS)

    def broken(*args: object, **kwargs: object) -> str:
        return "SELECT no_such_column FROM test_county_monthly"

    monkeypatch.setattr(computing, "indicator_sql", broken)
    with pytest.raises(ValidationFailed, match="query failed"):
        service.compute(computed, actor=SYSTEM)
    assert queries.results_lake().current(queries.RESULTS) == current
    with computed.session() as session:
        assert queries.runs(session, limit=1)[0].state == "failed"
