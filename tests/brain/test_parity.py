"""Parity: every demo indicator computed on DuckDB and on Spark gives the same values, for
every region, grain and period (the same SQL, translated by sqlglot for Spark)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from shuzhi.brain import queries, service
from shuzhi.core.db import Database
from shuzhi.core.permissions import SYSTEM
from shuzhi.demo.build import build

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def values(snapshot: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    lake = queries.results_lake()
    table = pq.read_table(lake.snapshot_file(queries.RESULTS, snapshot))
    return {
        (row["indicator"], row["region_code"], row["grain"], row["period_start"]): (
            row["value"], row["numerator"], row["denominator"], row["last_time"],
        )
        for row in table.to_pylist()
    }  # fmt: skip


def same(left: float | None, right: float | None) -> bool:
    if left is None or right is None:
        return left is right
    return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9)


def test_every_demo_indicator_is_the_same_on_duckdb_and_spark(
    sqlite_db: Database, tmp_path: Path, spark_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHUZHI_DATA_DIR", str(tmp_path))
    from shuzhi.core.settings import reset_settings

    reset_settings()
    summary = build(sqlite_db, seed=2350, data_dir=tmp_path, scale=0.1)
    assert summary["brain"]["indicators"] >= 25
    duck = service.compute(sqlite_db, actor=SYSTEM, engine="duckdb")
    spark = service.compute(sqlite_db, actor=SYSTEM, engine="spark")
    assert spark.engine == "spark" and spark.read == duck.read
    left, right = values(duck.snapshot), values(spark.snapshot)
    assert len(left) > 10_000
    assert left.keys() == right.keys()
    differing = [
        key
        for key, row in left.items()
        if not all(same(a, b) if not hasattr(a, "year") else a == b
                   for a, b in zip(row, right[key], strict=True))
    ]  # fmt: skip
    assert differing == [], differing[:5]
    computed = {key[0] for key in left}
    assert computed >= {"childcare_places_per_1000", "hotline_callers", "urban_rural_income_ratio"}
