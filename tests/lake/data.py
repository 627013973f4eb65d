"""One resource with a field of every type and format, and one logical batch of data that
every connector is fed: valid rows, rows breaking each rule, an exact duplicate and a
primary-key conflict. Used by the lake tests and the lake CLI tests."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from shuzhi.catalog import service as catalog
from shuzhi.catalog.models import Resource
from shuzhi.catalog.schemas import ResourceCreate, ResourceUpdate
from shuzhi.core.db import Database, get_database, reset_database
from shuzhi.core.permissions import SYSTEM, Actor
from shuzhi.core.settings import reset_settings
from shuzhi.core.standards import citizen_id_check, credit_code_check
from shuzhi.lake import service
from shuzhi.lake.connectors import SourceSpec
from shuzhi.lake.models import Batch
from shuzhi.lake.rules import Mode
from shuzhi.lake.service import lake_of
from tests.conftest import World, build_world, resource_doc

CODE = "gat_register"


def citizen_id(first17: str) -> str:
    return first17 + citizen_id_check(first17)


def credit_code(first17: str) -> str:
    return first17 + credit_code_check(first17)


FIELDS: list[dict[str, Any]] = [
    {
        "name": "id_card",
        "title": "公民身份号码",
        "type": "string",
        "pii": "id_card",  # implies format citizen_id
        "primary_key": True,
    },
    {"name": "full_name", "title": "姓名", "type": "string", "pii": "name", "nullable": False},
    {"name": "company", "title": "统一社会信用代码", "type": "string", "format": "credit_code"},
    {
        "name": "mobile",
        "title": "手机号码",
        "type": "string",
        "pii": "phone",
        "format": "mobile",
        "aliases": ["联系电话"],
    },
    {"name": "region", "title": "行政区划代码", "type": "string", "format": "region_code"},
    {"name": "email", "title": "电子邮箱", "type": "string", "pii": "email", "format": "email"},
    {"name": "age", "title": "年龄", "type": "integer", "rules": {"min": 0, "max": 150}},
    {"name": "status", "title": "状态", "type": "string", "rules": {"values": ["在册", "注销"]}},
    {
        "name": "plate",
        "title": "车牌号",
        "type": "string",
        "rules": {"pattern": "浙[A-Z][0-9A-Z]{5}"},
    },
    {"name": "born", "title": "出生日期", "type": "date"},
    {"name": "updated_at", "title": "更新时间", "type": "datetime"},
    {"name": "active", "title": "是否有效", "type": "boolean"},
    {"name": "income", "title": "月收入", "type": "decimal"},
]
NAMES = [item["name"] for item in FIELDS]
# the Chinese headers a department's spreadsheet has; the mobile column goes by its alias
TITLES = [item["title"] for item in FIELDS]
TITLES[NAMES.index("mobile")] = "联系电话"

ID_A = citizen_id("11010519491231002")  # 11010519491231002X, the standard's own example
ID_B = citizen_id("33010219900101123")
ID_C = citizen_id("33010619851120004")
ID_D = citizen_id("33010519700315221")
ID_E = citizen_id("33010819880808001")
CO_A = credit_code("91330100MA27Y0000")
CO_B = credit_code("12330000470000123")
CO_C = credit_code("91330106MA2B00001")


def wrong_check(code: str, chars: str) -> str:
    return code[:17] + next(char for char in chars if char != code[17])


BAD_CITIZEN_ID = wrong_check(ID_E, "0123456789X")
BAD_CREDIT_CODE = wrong_check(CO_A, "0123456789ABCDEFGHJKLMNPQRTUWXY")


def row(
    id_card: str | None = ID_E,
    full_name: str | None = "赵六",
    company: str | None = CO_A,
    mobile: str | None = "13800138000",
    region: str | None = "330106",
    email: str | None = "zhao@example.cn",
    age: str | None = "40",
    status: str | None = "在册",
    plate: str | None = "浙A12345",
    born: str | None = "1984-05-06",
    updated_at: str | None = "2024-03-01 08:30:00",
    active: str | None = "true",
    income: str | None = "8000.5",
) -> list[str | None]:
    """One source row, as text in field order."""
    return [
        id_card,
        full_name,
        company,
        mobile,
        region,
        email,
        age,
        status,
        plate,
        born,
        updated_at,
        active,
        income,
    ]


VALID_A = row(ID_A, "张三", CO_A, "13900001111", "330102", "zhang@example.cn", "74", "在册",
              "浙A0B1C2", "1949-12-31", "2024-01-02 09:00:00", "true", "1234.5")  # fmt: skip
VALID_B = row(ID_B, "李四", CO_B, "18612345678", "330100", "li.si@gov.example.cn", "34", "注销",
              "浙B99999", "1990-01-01", "2024-02-03 10:11:12", "false", "0")  # fmt: skip
VALID_C = row(ID_C, "王五", None, None, None, None, None, None, None, None, None, None, None)

# source rows in order; row numbers are 1-based data rows (the header is not counted)
ROWS: list[list[str | None]] = [
    VALID_A,  # 1
    VALID_B,  # 2
    VALID_C,  # 3 only the required fields
    VALID_A,  # 4 exact duplicate of 1
    row(ID_D, full_name="孙七"),  # 5 primary-key conflict with 6
    row(ID_D, full_name="周八"),  # 6
    row(BAD_CITIZEN_ID),  # 7
    row(company=BAD_CREDIT_CODE),  # 8
    row(mobile="12345678901"),  # 9
    row(region="999999"),  # 10
    row(email="not-an-email"),  # 11
    row(age="200"),  # 12
    row(age="-1"),  # 13
    row(status="迁出"),  # 14
    row(plate="沪A12345"),  # 15
    row(born="1990-02-30"),  # 16
    row(full_name=None),  # 17
    row(active="maybe"),  # 18
    row(mobile="110", age="abc"),  # 19 two failures: the first field's rule is shown
]

# row → (rule, field, value shown)
REFUSED: dict[int, tuple[str, str, str | None]] = {
    5: ("primary_key", "id_card", ID_D),
    6: ("primary_key", "id_card", ID_D),
    7: ("citizen_id", "id_card", BAD_CITIZEN_ID),
    8: ("credit_code", "company", BAD_CREDIT_CODE),
    9: ("mobile", "mobile", "12345678901"),
    10: ("region_code", "region", "999999"),
    11: ("email", "email", "not-an-email"),
    12: ("max", "age", "200"),
    13: ("min", "age", "-1"),
    14: ("values", "status", "迁出"),
    15: ("pattern", "plate", "沪A12345"),
    16: ("type", "born", "1990-02-30"),
    17: ("required", "full_name", None),
    18: ("type", "active", "maybe"),
    19: ("mobile", "mobile", "110"),
}
RULE_COUNTS = {
    "citizen_id": 1,
    "credit_code": 1,
    "email": 1,
    "max": 1,
    "min": 1,
    "mobile": 2,
    "pattern": 1,
    "primary_key": 2,
    "region_code": 1,
    "required": 1,
    "type": 3,  # born, active, and the age of row 19
    "values": 1,
}
COUNTS = {"rows_read": 19, "rows_loaded": 3, "rows_quarantined": 15, "duplicates": 1}

# the snapshot: the valid rows in their catalog types
SNAPSHOT = sorted(
    [
        (ID_A, "张三", CO_A, "13900001111", "330102", "zhang@example.cn", 74, "在册",
         "浙A0B1C2", date(1949, 12, 31), datetime(2024, 1, 2, 9), True, 1234.5),
        (ID_B, "李四", CO_B, "18612345678", "330100", "li.si@gov.example.cn", 34, "注销",
         "浙B99999", date(1990, 1, 1), datetime(2024, 2, 3, 10, 11, 12), False, 0.0),
        (ID_C, "王五", None, None, None, None, None, None, None, None, None, None, None),
    ]
)  # fmt: skip
SNAPSHOT_TYPES = {
    "id_card": "VARCHAR",
    "full_name": "VARCHAR",
    "company": "VARCHAR",
    "mobile": "VARCHAR",
    "region": "VARCHAR",
    "email": "VARCHAR",
    "age": "BIGINT",
    "status": "VARCHAR",
    "plate": "VARCHAR",
    "born": "DATE",
    "updated_at": "TIMESTAMP",
    "active": "BOOLEAN",
    "income": "DOUBLE",
}


# ---------------------------------------------------------------------------- resources


def all_types_doc(**overrides: Any) -> dict[str, Any]:
    base = {"code": CODE, "name": "浙江省人员登记信息", "fields": [dict(item) for item in FIELDS]}
    return resource_doc(**{**base, **overrides})


def create_draft(db: Database, doc: dict[str, Any], actor: Actor = SYSTEM) -> None:
    with db.transaction() as session:
        catalog.create(session, actor=actor, data=ResourceCreate(**doc))


def publish(db: Database, doc: dict[str, Any], actor: Actor = SYSTEM) -> None:
    """Create a resource and take it through review to published."""
    create_draft(db, doc, actor)
    for name in ("submit", "approve"):
        with db.transaction() as session:
            catalog.transition(session, actor=SYSTEM, code=doc["code"], name=name)


def withdraw(db: Database, code: str) -> None:
    with db.transaction() as session:
        catalog.transition(session, actor=SYSTEM, code=code, name="withdraw", comment="停用")


def republish(db: Database, doc: dict[str, Any]) -> None:
    """Withdraw, revise, edit and publish again: how a published resource changes."""
    withdraw(db, doc["code"])
    with db.transaction() as session:
        catalog.transition(session, actor=SYSTEM, code=doc["code"], name="revise")
    body = {key: value for key, value in doc.items() if key != "code"}
    with db.transaction() as session:
        catalog.update(session, actor=SYSTEM, code=doc["code"], data=ResourceUpdate(**body))
    for name in ("submit", "approve"):
        with db.transaction() as session:
            catalog.transition(session, actor=SYSTEM, code=doc["code"], name=name)


# ---------------------------------------------------------------------------- sources


def write_csv(
    path: Path,
    rows: list[list[str | None]] = ROWS,
    *,
    headers: list[str] = NAMES,
    encoding: str = "utf-8",
) -> Path:
    with open(path, "w", encoding=encoding, newline="") as handle:
        out = csv.writer(handle)
        out.writerow(headers)
        out.writerows([["" if value is None else value for value in item] for item in rows])
    return path


def _typed_cell(name: str, value: str | None) -> Any:
    """What a spreadsheet holds: numbers, dates and booleans as such where they parse."""
    if value is None:
        return None
    try:
        if name == "age":
            return int(value)
        if name == "income":
            return float(value)
        if name == "born":
            return date.fromisoformat(value)
        if name == "updated_at":
            return datetime.fromisoformat(value)
        if name == "active" and value in ("true", "false"):
            return value == "true"
    except ValueError:
        pass
    return value


def write_xlsx(
    path: Path,
    rows: list[list[str | None]] = ROWS,
    *,
    headers: list[str] = TITLES,
    sheet: str | None = None,
    header_row: int = 1,
) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    first = book.active
    assert first is not None
    if sheet is None:
        target = first
        first.title = "人员"
    else:
        first.title = "说明"
        first.append(["本表由浙江省公安厅报送"])
        target = book.create_sheet(sheet)
    for _ in range(header_row - 1):
        target.append(["浙江省人员登记表（2024年）"])
    target.append(headers)
    for item in rows:
        target.append([_typed_cell(name, value) for name, value in zip(NAMES, item, strict=True)])
    book.save(path)
    return path


def _json_value(name: str, value: str | None) -> Any:
    typed = _typed_cell(name, value)
    return typed.isoformat() if isinstance(typed, date) else typed


def records(rows: list[list[str | None]] = ROWS) -> list[dict[str, Any]]:
    return [
        {name: _json_value(name, value) for name, value in zip(NAMES, item, strict=True)}
        for item in rows
    ]


def write_json(path: Path, rows: list[list[str | None]] = ROWS) -> Path:
    path.write_text(json.dumps(records(rows), ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[list[str | None]] = ROWS) -> Path:
    path.write_text(
        "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in records(rows)),
        encoding="utf-8",
    )
    return path


def write_parquet(path: Path, rows: list[list[str | None]] = ROWS) -> Path:
    columns = list(zip(*rows, strict=True))
    table = pa.table(
        {name: pa.array(column, pa.string()) for name, column in zip(NAMES, columns, strict=True)}
    )
    pq.write_table(table, path)
    return path


def write_sqlite(path: Path, rows: list[list[str | None]] = ROWS, table: str = "people") -> str:
    """A SQLite file holding the rows; returns its SQLAlchemy URL."""
    with sqlite3.connect(path) as con:
        con.execute(f"CREATE TABLE {table} ({', '.join(f'{name} TEXT' for name in NAMES)})")
        con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in NAMES)})", rows)
    con.close()
    return f"sqlite:///{path}"


# ---------------------------------------------------------------------------- reading back


def ingest(
    db: Database,
    location: str | Path,
    *,
    code: str = CODE,
    actor: Actor = SYSTEM,
    mode: Mode = Mode.full,
    overrides: dict[str, str] | None = None,
    watermark: str | None = None,
    **options: Any,
) -> Batch:
    return service.ingest(
        db,
        actor=actor,
        code=code,
        source=SourceSpec(location=str(location), **options),
        mode=mode,
        overrides=overrides,
        watermark=watermark,
    )


def snapshot_rows(code: str = CODE, order: str = "id_card") -> list[tuple[Any, ...]]:
    path = lake_of().current_file(code)
    assert path is not None, f"{code} has no current snapshot"
    with duckdb.connect() as con:
        return con.execute(f"SELECT * FROM read_parquet('{path}') ORDER BY {order}").fetchall()


def snapshot_types(code: str = CODE) -> dict[str, str]:
    path = lake_of().current_file(code)
    assert path is not None
    with duckdb.connect() as con:
        return {
            name: kind
            for name, kind, *_ in con.execute(
                f"DESCRIBE SELECT * FROM read_parquet('{path}')"
            ).fetchall()
        }


def batches_of(db: Database, code: str = CODE) -> list[Batch]:
    with db.session() as session:
        resource_id = session.scalar(select(Resource.id).where(Resource.code == code))
        return list(
            session.scalars(
                select(Batch).where(Batch.resource_id == resource_id).order_by(Batch.id)
            )
        )


def files_under(path: Path) -> set[str]:
    """Every file below ``path`` (the lake), relative, lock files aside."""
    if not path.exists():
        return set()
    return {
        str(item.relative_to(path))
        for item in path.rglob("*")
        if item.is_file() and item.name != ".lock"
    }


@dataclass(frozen=True)
class Counted:
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    duplicates: int

    @classmethod
    def of(cls, batch: Batch) -> Counted:
        return cls(batch.rows_read, batch.rows_loaded, batch.rows_quarantined, batch.duplicates)

    def balanced(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined + self.duplicates


# ---------------------------------------------------------------------------- a store to copy


@dataclass(frozen=True)
class Template:
    """A migrated SQLite store with the test world and the all-types resource published,
    built once per session and copied for each test (as conftest does for migrations)."""

    path: Path
    actors: dict[str, Actor]
    tokens: dict[str, str]


def build_template(migrated: Path, folder: Path) -> Template:
    path = folder / "lake.db"
    shutil.copy(migrated, path)
    with pytest.MonkeyPatch.context() as patch:
        # what isolated_settings gives each test, for the session-wide build
        patch.setenv("SHUZHI_DATA_DIR", str(folder / "data"))
        patch.setenv("SHUZHI_DATABASE__URL", f"sqlite:///{path}")
        for name, value in ARGON2_QUICK.items():
            patch.setenv(name, value)
        reset_settings()
        reset_database()
        database = get_database()
        try:
            world = build_world(database)
            publish(database, all_types_doc())
            with database.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            reset_database()
    reset_settings()
    return Template(path, dict(world.actors), dict(world.tokens))


ARGON2_QUICK = {
    "SHUZHI_SECURITY__ARGON2_TIME_COST": "1",
    "SHUZHI_SECURITY__ARGON2_MEMORY_KIB": "1024",
    "SHUZHI_SECURITY__ARGON2_PARALLELISM": "1",
}


def world_from(template: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """A copy of the template as this test's store (the settings point at it)."""
    path = tmp_path / "shuzhi.db"
    shutil.copy(template.path, path)
    monkeypatch.setenv("SHUZHI_DATABASE__URL", f"sqlite:///{path}")
    reset_settings()
    reset_database()
    return World(get_database(), dict(template.actors), dict(template.tokens))
