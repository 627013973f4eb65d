"""The demo province's gateway: application systems of provincial and city departments,
applications in every state, grants (回流 grants of provincial resources to cities and a
county among them), one credential printed for trying the gateway by hand, and three weeks
of call history with a few patterns for the auditor's page to flag."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shuzhi.core import clock
from shuzhi.core.db import Database
from shuzhi.core.permissions import SYSTEM, Actor
from shuzhi.core.settings import Settings
from shuzhi.gateway import ledger, queries, service
from shuzhi.gateway.models import Consumer, Grant
from shuzhi.gateway.schemas import ApplicationCreate, ConsumerCreate, Decision
from shuzhi.orgs import queries as orgs_queries

# code, name, owning department
CONSUMERS = (
    ("zj_mzt_assist", "浙江省社会救助信息系统", "zj_mzt"),
    ("hz_gaj_floating", "杭州市流动人口服务管理系统", "hz_gaj"),
    ("hz_sjj_citybrain", "杭州城市大脑数据中台", "hz_sjj"),
    ("nb_wjw_childcare", "宁波市托育服务监管平台", "nb_wjw"),
    ("wz_mzj_verify", "温州市低保家庭经济状况核对系统", "wz_mzj"),
    ("zj_jxt_enterprise", "浙江省企业服务综合平台", "zj_jxt"),
    ("xh_mzj_assist", "西湖区社会救助“一件事”联办系统", "hz_xh_mzj"),
)
# the credential `shuzhi demo build` prints
SHOWN = "zj_mzt_assist"


@dataclass(frozen=True)
class Plan:
    consumer: str
    resource: str
    fields: tuple[str, ...]
    outcome: str  # approved, pending, rejected, withdrawn, escalated, suspended, expired
    region: str | None = None
    clear: tuple[str, ...] = ()
    rights: tuple[str, ...] = ("read",)
    matter: str = "330000-QT-0001"
    purpose: str = ""
    basis: str = ""


PEOPLE = ("id_card", "full_name", "gender", "birth_date", "household_address", "region_code")
PLANS = (
    Plan("zj_mzt_assist", "gat_resident_population", PEOPLE, "approved", clear=("full_name",),
         rights=("read", "verify"), matter="330000-ZC-0012", purpose="最低生活保障资格认定",
         basis="《社会救助暂行办法》第十一条"),
    Plan("hz_gaj_floating", "gat_resident_population", PEOPLE, "approved", region="330100",
         matter="330100-QT-0031", purpose="流动人口居住登记与服务管理",
         basis="《居住证暂行条例》第五条"),
    Plan("hz_sjj_citybrain", "wjw_childcare_institution", (), "approved", region="330100",
         matter="330100-QT-0102", purpose="城市大脑“一老一小”场景托育资源分析",
         basis="《浙江省公共数据条例》第二十七条"),
    Plan("nb_wjw_childcare", "wjw_childcare_institution", (), "approved", region="330200",
         matter="330200-JD-0007", purpose="托育机构属地监管",
         basis="《托育机构管理规范（试行）》"),
    Plan("xh_mzj_assist", "gat_resident_population", PEOPLE, "approved", region="330106",
         rights=("read", "verify"), matter="330106-ZC-0005", purpose="困难群众救助“一件事”联办",
         basis="《社会救助暂行办法》第十一条"),
    Plan("zj_jxt_enterprise", "scjgj_enterprise_registration", (), "approved",
         matter="330000-QT-0088", purpose="惠企政策“免申即享”企业匹配",
         basis="《浙江省公共数据条例》第二十七条"),
    Plan("wz_mzj_verify", "gat_resident_population", ("id_card", "full_name"), "pending",
         region="330300", rights=("verify",), matter="330300-ZC-0003",
         purpose="低保申请人身份核验", basis="《社会救助暂行办法》第十一条"),
    Plan("hz_gaj_floating", "sft_administrative_penalty", (), "rejected", region="330100",
         matter="330100-QT-0032", purpose="流动人口信用评价", basis="内部管理需要"),
    Plan("nb_wjw_childcare", "zfw_hotline_12345_order", (), "withdrawn", region="330200",
         matter="330200-QT-0011", purpose="托育投诉工单分析",
         basis="《浙江省公共数据条例》第二十七条"),
    Plan("wz_mzj_verify", "sft_administrative_penalty", (), "escalated", region="330300",
         matter="330300-ZC-0004", purpose="低保对象失信核查",
         basis="《社会救助暂行办法》第十一条"),
    Plan("zj_mzt_assist", "zfw_hotline_12345_order", (), "suspended",
         matter="330000-ZC-0020", purpose="救助类诉求工单跟踪",
         basis="《浙江省公共数据条例》第二十七条"),
    Plan("hz_sjj_citybrain", "scjgj_enterprise_registration", (), "expired", region="330100",
         matter="330100-QT-0103", purpose="城市大脑营商环境指数测算（2026年一季度）",
         basis="《浙江省公共数据条例》第二十七条"),
)  # fmt: skip
END_USERS = ("wang.li", "chen.jing", "zhao.min", "liu.yang", "xu.hui", "sun.qian")


def _fields(session: Session, code: str, wanted: tuple[str, ...]) -> list[str]:
    from shuzhi.catalog.models import Resource

    resource = session.scalar(select(Resource).where(Resource.code == code))
    names = [field.name for field in resource.fields] if resource else []
    return [name for name in wanted if name in names] or names


def _actor(session: Session, username: str) -> Actor:
    return orgs_queries.actor_for(session, orgs_queries.user(session, username))


# the demo logins who decide for their department's resources, and apply for their systems
DECIDERS = {"zj_gat": "gat_officer", "zj_wjw": "wjw_admin", "zj_scjgj": "scjgj_officer"}
APPLICANTS = {"hz_sjj_citybrain": "hz_officer"}


def _as(session: Session, username: str | None) -> Actor:
    return _actor(session, username) if username else SYSTEM


def _apply(session: Session, plan: Plan, valid_until: date | None) -> int:
    data = ApplicationCreate(
        consumer=plan.consumer,
        resource=plan.resource,
        fields=_fields(session, plan.resource, plan.fields),
        clear_fields=list(plan.clear),
        rights=list(plan.rights),
        purpose_code=plan.matter,
        purpose=plan.purpose,
        legal_basis=plan.basis,
        region=plan.region,
        valid_until=valid_until,
    )
    actor = _as(session, APPLICANTS.get(plan.consumer))
    return service.apply(session, actor=actor, data=data).id


def _settle(session: Session, plan: Plan, application_id: int) -> None:
    application = queries.application(session, actor=SYSTEM, application_id=application_id)
    if application.state != "pending":
        return  # unconditional: granted at once
    decider = _as(session, DECIDERS.get(application.resource.provider.code))
    if plan.outcome in ("approved", "suspended", "expired"):
        service.decide(
            session,
            actor=decider,
            application_id=application_id,
            approve=True,
            decision=Decision(clear_fields=list(plan.clear), comment="同意，按最小必要原则使用"),
        )
    elif plan.outcome == "rejected":
        service.decide(
            session,
            actor=decider,
            application_id=application_id,
            approve=False,
            decision=Decision(comment="申请用途与事项不符，行政处罚信息不用于信用评价"),
        )
    elif plan.outcome == "withdrawn":
        service.withdraw(
            session,
            actor=_as(session, APPLICANTS.get(plan.consumer)),
            application_id=application_id,
        )


def build(database: Database, *, seed: int, settings: Settings) -> dict:
    """Consumers, applications, grants and call history; nothing when consumers exist."""
    with database.session() as session:
        if session.scalar(select(Consumer.id).limit(1)) is not None:
            return {"consumers": 0}
    rng = random.Random(seed)
    now = clock.now()
    shown: dict[str, str] = {}
    with database.transaction() as session:
        for code, name, department in CONSUMERS:
            service.create_consumer(
                session,
                actor=SYSTEM,
                data=ConsumerCreate(code=code, name=name, department=department),
            )
            credential, secret = service.issue_credential(
                session, actor=SYSTEM, consumer=code, settings=settings
            )
            if code == SHOWN:
                shown = {"consumer": code, "access_key": credential.access_key, "secret": secret}
    for plan in PLANS:
        # overdue and expired items were applied for in the past
        back = {"escalated": timedelta(days=12), "expired": timedelta(days=120)}.get(plan.outcome)
        if back:
            clock.set_clock(lambda back=back: now - back)
        try:
            with database.transaction() as session:
                ended = (now - timedelta(days=30)).date() if plan.outcome == "expired" else None
                _settle(session, plan, _apply(session, plan, ended))
        finally:
            clock.set_clock(None)
    with database.transaction() as session:
        for grant in session.scalars(select(Grant).where(Grant.state == "active")):
            if grant.consumer.code == "zj_mzt_assist" and grant.resource.code == (
                "zfw_hotline_12345_order"
            ):
                service.change_grant(
                    session,
                    actor=SYSTEM,
                    grant_id=grant.id,
                    name="suspend",
                    comment="调用量异常，暂停核查",
                )
    service.escalate_overdue(database)
    service.expire_grants(database)
    calls = _history(database, rng, now)
    return {"consumers": len(CONSUMERS), "applications": len(PLANS), "calls": calls, **shown}


def _history(database: Database, rng: random.Random, now: datetime) -> int:
    """Three weeks of calls on the working grants, in office hours with purposes, plus a
    script of one system that harvests at night without purposes."""
    with database.session() as session:
        grants = [
            (grant.id, grant.consumer.code, grant.resource.code, dict(grant.fields))
            for grant in session.scalars(select(Grant).where(Grant.state == "active"))
        ]
    entries: list[dict] = []
    start = (now - timedelta(days=21)).replace(hour=0, minute=0, second=0, microsecond=0)
    for day in range(21):
        date = start + timedelta(days=day)
        if date.weekday() >= 5:
            continue
        for grant_id, consumer, target, modes in grants:
            for _ in range(rng.randint(8, 30)):
                # 09:00–17:30 Beijing time is 01:00–09:30 UTC
                at = date + timedelta(seconds=rng.randint(3600, 34_200))
                refused = rng.random() < 0.04
                case = f"{consumer[:2].upper()}{date:%Y%m%d}{rng.randint(1, 999):03d}"
                entries.append(
                    _entry(
                        at,
                        consumer=consumer,
                        target=target,
                        grant_id=grant_id,
                        modes=modes,
                        rows=0 if refused else rng.choice((1, 1, 1, 5, 20, 50)),
                        status=403 if refused else 200,
                        outcome="field-not-granted" if refused else "ok",
                        purpose=case,
                        end_user=rng.choice(END_USERS),
                        lookup=hashlib.sha256(f"{case}{at}".encode()).hexdigest()[:32],
                    )
                )
    # a harvesting script: every ten minutes through two nights, no purpose, no user
    harvester = next((item for item in grants if item[1] == "hz_gaj_floating"), None)
    if harvester is not None:
        grant_id, consumer, target, modes = harvester
        night = (now - timedelta(days=3)).replace(hour=15, minute=0, second=0, microsecond=0)
        for step in range(2 * 36):
            at = night + timedelta(minutes=10 * (step % 36), days=step // 36)
            entries.append(
                _entry(at, consumer=consumer, target=target, grant_id=grant_id, modes=modes,
                       rows=500, status=200, outcome="ok", purpose=None, end_user=None,
                       lookup=None)
            )  # fmt: skip
    # a system verifying its way through hundreds of citizen IDs in one afternoon
    walker = next((item for item in grants if item[1] == "zj_mzt_assist"), None)
    if walker is not None:
        grant_id, consumer, target, modes = walker
        afternoon = (now - timedelta(days=2)).replace(hour=6, minute=0, second=0, microsecond=0)
        for _ in range(260):
            at = afternoon + timedelta(seconds=rng.randint(0, 10_800))
            entry = _entry(
                at,
                consumer=consumer,
                target=target,
                grant_id=grant_id,
                modes={},
                rows=0,
                status=200,
                outcome="ok",
                purpose="330000-ZC-0012",
                end_user="xu.hui",
                lookup=f"{rng.getrandbits(128):032x}",
            )
            entries.append({**entry, "operation": "verify", "method": "POST",
                            "path": f"/gateway/v1/resources/{target}/verify",
                            "fields": ["id_card", "full_name"]})  # fmt: skip
    entries.sort(key=lambda item: item["at"])
    with database.transaction() as session:
        return ledger.append_many(session, entries)


def _entry(
    at: datetime,
    *,
    consumer: str,
    target: str,
    grant_id: int,
    modes: dict[str, str],
    rows: int,
    status: int,
    outcome: str,
    purpose: str | None,
    end_user: str | None,
    lookup: str | None,
) -> dict:
    body = f"{consumer}{target}{at.isoformat()}{rows}".encode()
    shown = {name: mode for name, mode in modes.items() if mode != "hidden"}
    return {
        "at": at,
        "request_id": hashlib.md5(body, usedforsecurity=False).hexdigest(),
        "consumer_code": consumer,
        "access_key": None,
        "end_user": end_user,
        "purpose": purpose,
        "operation": "read",
        "target": target,
        "grant_id": grant_id,
        "method": "GET",
        "path": f"/gateway/v1/resources/{target}/records",
        "fields": list(shown),
        "masking": shown if status == 200 else {},
        "rows": rows,
        "lookup": lookup,
        "status": status,
        "outcome": outcome,
        "latency_ms": 4 + rows // 20,
        "response_sha256": hashlib.sha256(body).hexdigest(),
    }
