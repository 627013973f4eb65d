"""A small province for the brain's tests: numbers chosen so that every expectation can be
worked out by hand (see the comments), and so that averaging ratios or summing stocks
over time would give a different, wrong answer."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from shuzhi.brain import service
from shuzhi.core.db import Database
from shuzhi.core.permissions import SYSTEM
from tests.conftest import resource_doc
from tests.lake.data import ingest, publish

MONTHLY = "test_county_monthly"
EVENTS = "test_events"
NEVER = "test_never_loaded"

MONTHLY_DOC = resource_doc(
    code=MONTHLY,
    name="县级月度测试指标",
    update_cycle="monthly",
    fields=[
        {"name": "region_code", "title": "区划", "type": "string", "primary_key": True,
         "format": "region_code"},
        {"name": "month", "title": "月份", "type": "date", "primary_key": True},
        {"name": "item", "title": "项目", "type": "string", "primary_key": True},
        {"name": "value", "title": "数值", "type": "decimal", "nullable": False},
    ],
)  # fmt: skip
EVENTS_DOC = resource_doc(
    code=EVENTS,
    name="测试事件记录",
    fields=[
        {"name": "event_id", "title": "编号", "type": "string", "primary_key": True},
        {"name": "at", "title": "时间", "type": "datetime", "nullable": False},
        {"name": "region_code", "title": "区划", "type": "string", "format": "region_code"},
        {"name": "person", "title": "人员", "type": "string"},
        {"name": "status", "title": "状态", "type": "string"},
    ],
)  # fmt: skip
NEVER_DOC = resource_doc(
    code=NEVER,
    name="从未归集的测试资源",
    fields=[
        {"name": "region_code", "title": "区划", "type": "string", "primary_key": True},
        {"name": "day", "title": "日期", "type": "date", "primary_key": True},
        {"name": "value", "title": "数值", "type": "decimal"},
    ],
)  # fmt: skip

# 330102 上城区 and 330105 拱墅区 are in 330100 杭州市; 330203 海曙区 in 330200 宁波市
SHANGCHENG, GONGSHU, HAISHU = "330102", "330105", "330203"
HANGZHOU, NINGBO, PROVINCE = "330100", "330200", "330000"
MONTHS = ("2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01")
SERIES: dict[str, dict[str, list[float | None]]] = {
    SHANGCHENG: {
        "cases": [10, 20, 30, 40],
        "on_time": [9, 18, 27, 40],
        "population": [1000, 1000, 1100, 1100],
        "places": [4, 5, 5, 6],
    },
    GONGSHU: {
        "cases": [5, 5, 5, 5],
        "on_time": [5, 4, 5, 0],
        "population": [2000, 2000, 2000, 2000],
        "places": [10, 10, 10, 10],
    },
    HAISHU: {
        "cases": [0, 0, 0, 2],  # no case until April: a rate of 0 / 0 has no value
        "on_time": [0, 0, 0, None],  # April's not reported: no value, not 0%
        "population": [500, 500, 500, None],  # April not reported yet
        "places": [1, 1, 1, 1],
    },
}
# event id, time, region, person, status
EVENT_ROWS = [
    ("e1", "2025-01-05 09:00:00", SHANGCHENG, "甲", "已办结"),
    ("e2", "2025-01-06 10:00:00", SHANGCHENG, "甲", "办理中"),
    ("e3", "2025-01-20 11:00:00", SHANGCHENG, "乙", "已办结"),
    ("e4", "2025-01-21 12:00:00", GONGSHU, "甲", "已办结"),
    ("e5", "2025-02-02 08:00:00", HAISHU, "丙", "办理中"),
]


def monthly_rows() -> list[list[Any]]:
    rows = []
    for region, items in SERIES.items():
        for item, values in items.items():
            for month, value in zip(MONTHS, values, strict=True):
                if value is not None:
                    rows.append([region, month, item, value])
    return rows


def write(path: Path, header: list[str], rows: list[Any]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def load(db: Database, folder: Path) -> None:
    """Publish the three resources and load two of them."""
    for doc in (MONTHLY_DOC, EVENTS_DOC, NEVER_DOC):
        publish(db, doc)
    ingest(
        db,
        write(folder / "monthly.csv", ["region_code", "month", "item", "value"], monthly_rows()),
        code=MONTHLY,
    )
    ingest(
        db,
        write(folder / "events.csv", ["event_id", "at", "region_code", "person", "status"],
              EVENT_ROWS),
        code=EVENTS,
    )  # fmt: skip


def monthly(code: str, item: str, **extra: Any) -> dict[str, Any]:
    """An indicator summing one item of the monthly resource."""
    return {
        "code": code,
        "name": f"测试指标{code}",
        "system": "digital_society",
        "owner": "zj_wjw",
        "source": MONTHLY,
        "time": "month",
        "measure": {"kind": "sum", "field": "value", "where": {"item": item}},
        **extra,
    }


def rate(code: str, numerator: str, denominator: str, **extra: Any) -> dict[str, Any]:
    measure = {
        "kind": "ratio",
        "numerator": {"agg": "sum", "field": "value", "where": {"item": numerator}},
        "denominator": {"agg": "sum", "field": "value", "where": {"item": denominator}},
        "scale": extra.pop("scale", 100),
    }
    return {**monthly(code, numerator), "measure": measure, **extra}


def derived(code: str, expression: str) -> dict[str, Any]:
    return {"code": code, "name": f"派生{code}", "system": "grassroots", "owner": "zj_gat",
            "measure": {"kind": "derived", "expression": expression}}  # fmt: skip


INDICATORS = [
    monthly("cases", "cases"),
    rate("on_time_rate", "on_time", "cases"),
    monthly("population", "population", additivity="semi_additive"),
    rate("places_per_1000", "places", "population", scale=1000, additivity="semi_additive"),
    {
        "code": "cases_per_1000",
        "name": "每千人案件数",
        "system": "digital_society",
        "owner": "zj_wjw",
        "measure": {"kind": "derived", "expression": "cases / population * 1000"},
    },
    {
        **monthly("average_cases", "cases"),
        "measure": {"kind": "average", "field": "value", "where": {"item": "cases"}},
    },
    {
        "code": "events",
        "name": "事件数",
        "system": "grassroots",
        "owner": "zj_gat",
        "source": EVENTS,
        "time": "at",
        "grains": ["day", "week", "month"],
        "measure": {"kind": "count"},
    },
    {
        "code": "people",
        "name": "来访人数（去重）",
        "system": "grassroots",
        "owner": "zj_gat",
        "source": EVENTS,
        "time": "at",
        "measure": {"kind": "count_distinct", "field": "person"},
    },
    {
        "code": "closed_share",
        "name": "办结率",
        "system": "grassroots",
        "owner": "zj_gat",
        "source": EVENTS,
        "time": "at",
        "measure": {
            "kind": "ratio",
            "numerator": {"agg": "count", "where": {"status": "已办结"}},
            "denominator": {"agg": "count"},
            "scale": 100,
        },
    },
    {
        "code": "never",
        "name": "无数据指标",
        "system": "grassroots",
        "owner": "zj_gat",
        "source": NEVER,
        "time": "day",
        "measure": {"kind": "sum", "field": "value"},
    },
]


def define(
    db: Database, indicators: list[dict[str, Any]] | None = None, *, source: str = "test.yaml"
) -> service.ApplyResult:
    """Apply an indicator file (the test indicators unless given), as `brain apply` does."""
    import yaml

    text = yaml.safe_dump({"indicators": indicators or INDICATORS}, allow_unicode=True)
    with db.transaction() as session:
        return service.apply(session, actor=SYSTEM, text=text, source=source)
