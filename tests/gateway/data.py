"""The gateway's test province: a published population resource of 40 people across
Hangzhou's districts and Ningbo, loaded into the lake; consumer systems of a provincial
and a city department with credentials; and helpers to apply, decide and call."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from shuzhi.client import Client
from shuzhi.core.db import Database
from shuzhi.core.permissions import SYSTEM, Actor
from shuzhi.gateway import ledger, service
from shuzhi.gateway.schemas import ApplicationCreate, ConsumerCreate, Decision
from tests.conftest import World, resource_doc
from tests.lake.data import citizen_id, ingest, write_csv

CODE = "gat_people"
SURNAMES = "赵钱孙李周吴郑王冯陈"
# (region, how many people); 330100 is the city itself, 330200 Ningbo
SPREAD = (("330102", 8), ("330105", 8), ("330106", 10), ("330100", 4), ("330200", 10))

FIELDS: list[dict[str, Any]] = [
    {
        "name": "id_card",
        "title": "公民身份号码",
        "type": "string",
        "pii": "id_card",
        "primary_key": True,
    },
    {"name": "full_name", "title": "姓名", "type": "string", "pii": "name", "nullable": False},
    {"name": "mobile", "title": "手机号码", "type": "string", "pii": "phone"},
    {"name": "address", "title": "住址", "type": "string", "pii": "address"},
    {"name": "region", "title": "行政区划代码", "type": "string", "format": "region_code"},
    {"name": "gender", "title": "性别", "type": "string"},
    {"name": "age", "title": "年龄", "type": "integer"},
    {"name": "born", "title": "出生日期", "type": "date"},
]
NAMES = [item["name"] for item in FIELDS]


def people() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    number = 0
    for region, count in SPREAD:
        for _ in range(count):
            number += 1
            year = 1950 + number
            born = date(year, 1 + number % 12, 1 + number % 28)
            found.append(
                {
                    "id_card": citizen_id(f"{region}{born:%Y%m%d}{number:03d}"),
                    "full_name": SURNAMES[number % 10] + "小" + "一二三四五六七八九十"[number % 10],
                    "mobile": f"139{number:08d}",
                    "address": f"浙江省杭州市西湖区文三路{number}号",
                    "region": region,
                    "gender": "男" if number % 2 else "女",
                    "age": str(2024 - year),
                    "born": born.isoformat(),
                }
            )
    return found


PEOPLE = people()


def people_doc(**overrides: Any) -> dict[str, Any]:
    base = {"code": CODE, "name": "浙江省人口基础信息", "fields": [dict(item) for item in FIELDS]}
    return resource_doc(**{**base, **overrides})


def load_people(db: Database, tmp_path: Path, code: str = CODE) -> None:
    rows = [[person[name] for name in NAMES] for person in PEOPLE]
    ingest(db, write_csv(tmp_path / f"{code}.csv", rows, headers=NAMES), code=code)


@dataclass
class Gateway:
    """The world, a client of the app, and the consumers' credentials."""

    world: World
    http: TestClient
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def db(self) -> Database:
        return self.world.database

    def client(self, consumer: str, **options: Any) -> Client:
        key, secret = self.keys[consumer]
        return Client("http://testserver", key=key, secret=secret, session=self.http, **options)

    def apply(self, consumer: str, actor: Actor = SYSTEM, **overrides: Any) -> int:
        body: dict[str, Any] = {
            "consumer": consumer,
            "resource": CODE,
            "fields": NAMES,
            "purpose_code": "330000-QT-0001",
            "purpose": "办理社会救助资格认定",
            "legal_basis": "《社会救助暂行办法》第十一条",
            **overrides,
        }
        with self.db.transaction() as session:
            return service.apply(session, actor=actor, data=ApplicationCreate(**body)).id

    def approve(self, application_id: int, actor: Actor = SYSTEM, **decision: Any) -> int:
        with self.db.transaction() as session:
            service.decide(
                session,
                actor=actor,
                application_id=application_id,
                approve=True,
                decision=Decision(**decision),
            )
        with self.db.session() as session:
            from shuzhi.gateway import queries

            made = queries.grant_of_application(session, application_id)
            assert made is not None
            return made.id

    def grant(self, consumer: str, **overrides: Any) -> int:
        """Apply and approve in one go; returns the grant id."""
        decision = overrides.pop("decision", {})
        return self.approve(self.apply(consumer, **overrides), **decision)


def make_consumer(db: Database, code: str, department: str) -> tuple[str, str]:
    with db.transaction() as session:
        service.create_consumer(
            session,
            actor=SYSTEM,
            data=ConsumerCreate(code=code, name=f"{code} 应用系统", department=department),
        )
        credential, secret = service.issue_credential(session, actor=SYSTEM, consumer=code)
        return credential.access_key, secret


def log_call(
    session: Any,
    at: Any,
    consumer: str = "zj_health_app",
    target: str = CODE,
    **extra: Any,
) -> None:
    """One access-log entry as the gateway writes it for a read of ``target``."""
    entry = {
        "at": at,
        "request_id": "r" * 32,
        "consumer_code": consumer,
        "access_key": "SZTEST",
        "end_user": None,
        "purpose": None,
        "operation": "read",
        "target": target,
        "grant_id": None,
        "method": "GET",
        "path": f"/gateway/v1/resources/{target}/records",
        "fields": [],
        "masking": {},
        "rows": 5,
        "lookup": None,
        "status": 200,
        "outcome": "ok",
        "latency_ms": 3,
        "response_sha256": "0" * 64,
    }
    ledger.append(session, **(entry | extra))
