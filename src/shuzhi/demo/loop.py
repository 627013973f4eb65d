"""The demo province's closed loop (量化闭环): the ledger of major reforms (一本账) with two
years of milestones and check-ins, about 130 problems from the seven oversight channels
and grassroots in every state (some overdue, some closed late, some sent back), and the
problems the brain's firing warnings raised, a few of them already being rectified.

Everything goes through the loop's services, each step at its own moment (``clock``), so
timelines, on-time rates and the ledger "as of" a past date tell a story. The choices come
from the seed; the dates are placed relative to the day of the build, as the gateway's
call history is, so the cockpit always opens on a live picture. Re-running adds nothing:
the reforms are applied idempotently and their story is told only when they are new, and
the problems only when none of the demo's lists exists yet.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from shuzhi.core import calendar as working
from shuzhi.core import clock
from shuzhi.core.db import Database
from shuzhi.core.enums import System
from shuzhi.core.permissions import SYSTEM, Actor
from shuzhi.core.settings import Settings
from shuzhi.loop import reforms as ledger_service
from shuzhi.loop import service
from shuzhi.loop.models import Milestone, Problem, Reform
from shuzhi.loop.rules import Channel
from shuzhi.loop.schemas import MilestoneAction, ProblemAction, ProblemCreate, ReformSpec
from shuzhi.orgs import queries as orgs_queries
from shuzhi.orgs import service as orgs
from shuzhi.orgs.models import Department, User
from shuzhi.orgs.schemas import GrantCreate, UserCreate
from shuzhi.regions.models import Region

# the reform office keeps the lists, closes items and verifies; the auditor verifies too
REFORM_OFFICE = "reform"
AUDITOR = "auditor"

# username, display name, role, department: the departments' rectification liaisons
# (整改联络员), who accept problems, give evidence, ask for closure and check in on reforms
LOOP_LOGINS = (
    ("dsj_officer", "省大数据局整改联络员", "department_admin", "zj_dsj"),
    ("zfw_officer", "省委政法委整改联络员", "department_admin", "zj_zfw"),
    ("sft_officer", "省司法厅整改联络员", "department_admin", "zj_sft"),
    ("sthjt_officer", "省生态环境厅整改联络员", "department_admin", "zj_sthjt"),
    ("mzt_officer", "省民政厅整改联络员", "department_admin", "zj_mzt"),
    ("yjt_officer", "省应急管理厅整改联络员", "department_admin", "zj_yjt"),
)
# who rectifies for a department and the departments under it (the build's own logins
# among them); a department with nobody here is looked after by its parent's liaison
RECTIFIERS = {
    **{department: username for username, _, _, department in LOOP_LOGINS},
    "zj_wjw": "wjw_admin",
    "zj_gat": "gat_officer",
    "zj_scjgj": "scjgj_officer",
}
# who may check in on a reform: the department administrators (a data officer may not)
CHECKERS = {
    **{department: username for username, _, role, department in LOOP_LOGINS},
    "zj_wjw": "wjw_admin",
}

PREFIX = {
    Channel.inspection: "DC",
    Channel.audit: "SJ",
    Channel.patrol: "XC",
    Channel.safety: "AQ",
    Channel.environment: "HB",
    Channel.petition: "XF",
    Channel.opinion: "YQ",
    Channel.grassroots: "JC",
}


@dataclass(frozen=True)
class Kind:
    """A kind of problem a channel finds: the title after the region's name, the system,
    the province department that answers for it, and the measures it takes."""

    channel: Channel
    title: str
    system: System
    department: str
    measures: str


KINDS = (
    Kind(Channel.inspection, "政务服务事项“一网通办”推进滞后", System.digital_government,
         "zj_dsj", "梳理未上线事项清单，倒排工期完成系统改造，按月通报网办率"),
    Kind(Channel.inspection, "企业开办“一日办结”未落实到位", System.digital_government,
         "zj_scjgj", "压缩审批环节，推行电子营业执照和印章同步发放"),
    Kind(Channel.inspection, "托育机构备案审核超期", System.digital_society, "zj_wjw",
         "清理积压备案申请，明确审核时限并纳入效能监督"),
    Kind(Channel.inspection, "公共数据未按目录全量归集", System.digital_government,
         "zj_dsj", "对照目录逐项补齐数据接口，归集情况纳入月度通报"),
    Kind(Channel.inspection, "综合行政执法事项划转后监管脱节", System.digital_rule_of_law,
         "zj_sft", "厘清划转事项职责边界，建立执法协作和信息共享机制"),
    Kind(Channel.audit, "养老服务补贴资金发放不规范", System.digital_society, "zj_mzt",
         "追回违规发放资金，完善补贴对象动态核查"),
    Kind(Channel.audit, "政务信息化项目重复建设", System.digital_government, "zj_dsj",
         "开展项目清理整合，建立信息化项目统筹审核机制"),
    Kind(Channel.audit, "困难群众救助资金发放滞后", System.digital_society, "zj_mzt",
         "倒查资金拨付环节，限期足额发放，建立按月核对机制"),
    Kind(Channel.audit, "托育建设补助资金拨付滞后", System.digital_society, "zj_wjw",
         "加快资金拨付进度，建立资金使用绩效跟踪"),
    Kind(Channel.audit, "涉企收费清理不彻底", System.digital_economy, "zj_scjgj",
         "全面清理违规涉企收费，退还多收费用，公示收费目录清单"),
    Kind(Channel.patrol, "基层执法“以罚代管”问题", System.digital_rule_of_law, "zj_sft",
         "开展执法案卷评查，推行柔性执法和首违不罚清单"),
    Kind(Channel.patrol, "户籍业务办理不规范", System.digital_rule_of_law, "zj_gat",
         "规范户籍业务流程，开展窗口人员专项培训"),
    Kind(Channel.patrol, "行政执法人员持证上岗不规范", System.digital_rule_of_law, "zj_sft",
         "清理无证执法人员，开展执法资格培训考试，建立执法人员库"),
    Kind(Channel.patrol, "社会救助对象动态管理不到位", System.digital_society, "zj_mzt",
         "开展救助对象数据比对，及时清退和纳入"),
    Kind(Channel.safety, "危化品企业重大隐患整改逾期", System.grassroots, "zj_yjt",
         "挂牌督办，停产整顿直至隐患消除，落实企业主体责任"),
    Kind(Channel.safety, "地下空间防汛隐患排查不到位", System.grassroots, "zj_yjt",
         "开展拉网式复查，落实挡水设施和应急值守，建立隐患销号台账"),
    Kind(Channel.safety, "消防通道占用问题反复出现", System.grassroots, "zj_yjt",
         "落实物业和网格员巡查责任，设置智能监测设备"),
    Kind(Channel.safety, "道路交通安全隐患点未整治", System.grassroots, "zj_gat",
         "完善交通标志标线和防护设施，纳入隐患销号管理"),
    Kind(Channel.environment, "工业园区VOCs排放超标", System.digital_society, "zj_sthjt",
         "督促企业完成治理设施升级改造，安装在线监测"),
    Kind(Channel.environment, "建筑工地扬尘管控不到位", System.digital_society, "zj_sthjt",
         "落实“六个百分百”扬尘管控，视频监控接入监管平台"),
    Kind(Channel.environment, "入河排污口整治滞后", System.digital_society, "zj_sthjt",
         "完成排污口溯源和分类整治，建立长效监管"),
    Kind(Channel.environment, "餐饮油烟扰民投诉集中", System.digital_society, "zj_sthjt",
         "督促商户安装油烟净化设施，开展联合执法"),
    Kind(Channel.petition, "涉法涉诉信访积案化解滞后", System.digital_rule_of_law, "zj_zfw",
         "逐案明确包案领导，依法分类处理，做好息诉罢访工作"),
    Kind(Channel.petition, "户籍迁移办理信访", System.digital_rule_of_law, "zj_gat",
         "复核办理材料，依法依规办理迁移，做好政策解释和答复"),
    Kind(Channel.petition, "物业服务纠纷重复信访", System.grassroots, "zj_zfw",
         "纳入矛调中心联合调处，督促物业企业整改服务问题"),
    Kind(Channel.petition, "低保资格认定异议信访", System.digital_society, "zj_mzt",
         "重新核对家庭经济状况，公开认定结果并答复信访人"),
    Kind(Channel.opinion, "网传食品安全问题舆情", System.digital_economy, "zj_scjgj",
         "开展抽检核查，及时发布权威信息回应关切"),
    Kind(Channel.opinion, "医院挂号难网络舆情", System.digital_society, "zj_wjw",
         "优化号源投放和预约规则，推进检查检验结果互认"),
    Kind(Channel.opinion, "“浙里办”办事卡顿网民留言集中", System.digital_government,
         "zj_dsj", "扩容系统资源，优化高频事项办理流程并回复网民"),
    Kind(Channel.opinion, "预付卡商户跑路舆情", System.digital_economy, "zj_scjgj",
         "约谈涉事企业，推行预付资金存管，依法打击违法行为"),
    Kind(Channel.grassroots, "网格事件超期未办结", System.grassroots, "zj_zfw",
         "建立超期事件督办清单，落实“一事一责任人”"),
    Kind(Channel.grassroots, "12345工单重复投诉未解决", System.grassroots, "zj_zfw",
         "对重复投诉工单开展回访复核，推动诉求实质性解决"),
    Kind(Channel.grassroots, "村社减负事项清单落实不到位", System.grassroots, "zj_mzt",
         "清理村社承担的不合理事项，规范挂牌和证明事项"),
    Kind(Channel.grassroots, "矛盾纠纷调处化解不及时", System.grassroots, "zj_zfw",
         "落实县级矛调中心“一站式”调处，建立疑难纠纷会商机制"),
    Kind(Channel.grassroots, "基层公共法律服务覆盖不足", System.digital_rule_of_law, "zj_sft",
         "推进村（社区）法律顾问全覆盖，开展线上法律服务"),
)  # fmt: skip

PEOPLE = ("王建国", "李明", "张丽华", "陈志强", "刘洋", "赵敏", "周文斌", "吴晓燕",
          "徐海峰", "孙倩", "朱晓东", "胡静", "郭伟", "何丽", "高翔", "林芳")  # fmt: skip

# how many of the demo's own problems end in each state (the warnings add theirs)
STATES = {
    "reported": 8,
    "assigned": 18,
    "rectifying": 38,
    "closure_requested": 14,
    "verified": 8,
    "closed": 44,
}
OVERDUE = {"assigned": 6, "rectifying": 14, "closure_requested": 4}  # deadline passed, open
CLOSED_LATE = 12
SENT_BACK = 5  # of those that asked for closure: sent back once, then asked again
REASSIGNED = 3  # misrouted, then reassigned by the reform office
SEND_BACK_REASONS = (
    "佐证材料不完整，请补充整改前后对比照片",
    "整改措施未落实到位，现场核查仍有问题",
    "缺少长效机制文件，请补充后再申请销号",
)
CHECK_IN_NOTES = (
    "按计划推进，本季度重点任务已完成，下一步抓好迭代推广",
    "总体进展顺利，个别任务受跨部门协同影响有所滞后，已制定赶超措施",
    "牵头部门召开专题推进会，明确责任分工和时间节点",
    "关键结果指标稳步提升，持续跟踪监测",
    "已完成阶段性评估，形成问题清单并落实整改",
)


@dataclass
class Plan:
    """One problem's story: where it ends and when each step happens (days)."""

    kind: Kind
    region: Region
    label: str
    state: str
    reported: date
    deadline: date | None = None
    severity: str = "general"
    person: str = ""
    reassigned: bool = False
    sent_back: bool = False
    steps: list[tuple[date, str]] = field(default_factory=list)


def _moment(day: date, rng: random.Random) -> datetime:
    """An office-hour moment of ``day`` (09:00–16:59 in Zhejiang, UTC+8)."""
    return datetime.combine(day, time(rng.randint(1, 8), rng.randint(0, 59)), tzinfo=UTC)


def _working(day: date) -> date:
    """``day``, or the next working day when it is not one."""
    return working.default().add(day - timedelta(days=1), 1)


# -- people -----------------------------------------------------------------------------


def _users(session: Session, password: str) -> list[dict[str, Any]]:
    for username, display_name, role, department in LOOP_LOGINS:
        if session.scalar(select(User.id).where(User.username == username)) is None:
            orgs.create_user(
                session,
                actor=SYSTEM,
                data=UserCreate(
                    username=username,
                    display_name=display_name,
                    password=password,
                    department=department,
                ),
            )
        orgs.grant_role(
            session,
            actor=SYSTEM,
            username=username,
            data=GrantCreate(role=role, department=department),
        )
    # the reform office keeps the province's lists, not only its own department's
    orgs.grant_role(
        session, actor=SYSTEM, username=REFORM_OFFICE, data=GrantCreate(role="reform_office")
    )
    return [
        {"username": username, "display_name": name, "role": role, "department": department}
        for username, name, role, department in LOOP_LOGINS
    ]


class People:
    """Actors by username, and who acts for a department, looked up once."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._actors: dict[str, Actor] = {}
        self._departments = {row.id: row for row in session.scalars(select(Department))}

    def actor(self, username: str) -> Actor:
        if username not in self._actors:
            account = orgs_queries.user(self.session, username)
            self._actors[username] = orgs_queries.actor_for(self.session, account)
        return self._actors[username]

    def for_department(self, department_id: int | None, table: dict[str, str]) -> str | None:
        """The user of ``table`` for the department or the nearest one above it."""
        seen: set[int] = set()
        while department_id is not None and department_id not in seen:
            seen.add(department_id)
            department = self._departments.get(department_id)
            if department is None:
                return None
            if department.code in table:
                return table[department.code]
            department_id = department.parent_id
        return None


# -- the ledger of major reforms --------------------------------------------------------


def reform_specs() -> list[ReformSpec]:
    """The demo's ledger of major reforms as ``data/reforms.yaml`` gives it today."""
    text = (resources.files("shuzhi.demo") / "data" / "reforms.yaml").read_text("utf-8")
    return ledger_service.parse_yaml(text, source="reforms.yaml")


def _as_in(spec: ReformSpec, year: int, *, linked: bool) -> ReformSpec:
    """The spec as the ledger held it in ``year``: that year's batch and earlier years'
    history, with its key results once they are ``linked`` to the brain's indicators."""
    batch = spec.batches.get(year, spec.batch)
    earlier = {when: value for when, value in spec.batches.items() if when < year}
    update: dict[str, Any] = {"batch": batch, "batches": earlier}
    if not linked:
        update["key_results"] = []
    return spec.model_copy(update=update)


@dataclass(order=True)
class Event:
    at: datetime
    order: int
    run: Callable[[], None] = field(compare=False)


class Timeline:
    """Steps to take at their own moments, taken in the order of those moments."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.events: list[Event] = []

    def on(self, day: date, run: Callable[[], None]) -> None:
        self.events.append(Event(_moment(day, self.rng), len(self.events), run))

    def play(self) -> None:
        try:
            for event in sorted(self.events):
                clock.set_clock(lambda at=event.at: at)
                event.run()
        finally:
            clock.set_clock(None)


def _milestone_steps(
    spec: ReformSpec, *, entered: date, today: date, rng: random.Random
) -> list[tuple[date, str, str, str | None]]:
    """(day, milestone, step, reason) for the milestones of ``spec`` due since the ledger
    held it: most done, some submitted and waiting for verification, some sent back
    once, some missed (left open past their due date, 红)."""
    steps: list[tuple[date, str, str, str | None]] = []
    for item in spec.milestones:
        if item.due <= entered + timedelta(days=20):
            continue  # due before the ledger held it: nothing to show
        overdue_by = (today - item.due).days
        roll = rng.random()
        if overdue_by > 0:
            # long past: nearly always done; recently due: more often still open
            done = roll < (0.9 if overdue_by > 120 else 0.55)
            waiting = not done and roll < (0.95 if overdue_by > 120 else 0.75)
        elif overdue_by > -25:
            done, waiting = False, roll < 0.35  # submitted ahead of its due date
        else:
            continue
        if not (done or waiting):
            continue
        lateness = rng.choice((-12, -8, -5, -3, -1, 2, 6))
        submitted = min(item.due + timedelta(days=lateness), today - timedelta(days=2))
        submitted = max(submitted, entered + timedelta(days=10))
        if submitted >= today:
            continue  # entered too recently to have been submitted yet
        steps.append((submitted, item.name, "submit", None))
        decided = submitted + timedelta(days=rng.randint(2, 7))
        if waiting or decided >= today:
            continue
        if rng.random() < 0.08:
            steps.append((decided, item.name, "send_back", rng.choice(SEND_BACK_REASONS)))
            again = decided + timedelta(days=rng.randint(3, 8))
            if again >= today - timedelta(days=1):
                continue
            steps.append((again, item.name, "submit", None))
            decided = again + timedelta(days=rng.randint(2, 5))
            if decided >= today:
                continue
        steps.append((decided, item.name, "verify", None))
    return steps


# when lead departments check in (动态更新): (years back, month, day)
QUARTER_ENDS = ((-1, 12, 31), (0, 6, 30), (0, 9, 30))
CHECK_IN_SHARE = 0.35


def _reform_story(
    database: Database, rng: random.Random, *, today: date, settings: Settings
) -> dict[str, int]:
    """Apply the ledger as it stood at the start of last year, let its milestones be
    submitted, verified, sent back or missed and its departments check in, apply this
    year's ledger (batches move on, new reforms join), link the key results to the brain's
    indicators at the mid-year update, and carry on until today. (Each version of a reform
    with key results reads the brain's results: linking them mid-year keeps the build
    quick and the earlier versions free of values measured later.)"""
    specs = reform_specs()
    this_year = today.year
    with database.session() as session:
        known = session.scalar(select(Reform.id).where(Reform.code.in_([s.code for s in specs])))
    if known is not None:
        # told before: only what the file changed since is applied, as it stands today
        with database.transaction() as session:
            report = ledger_service.apply_specs(
                session, actor=SYSTEM, specs=specs, source="reforms.yaml"
            )
        return {"reforms": len(specs), "created": report.created, "updated": report.updated}

    counts = {"created": len(specs), "submit": 0, "verify": 0, "send_back": 0, "check_ins": 0}
    yesterday = today - timedelta(days=1)
    last_entered = _working(date(this_year - 1, 1, 6))
    # never after yesterday, nor before new year's day (a build in the first days of January)
    this_entered = max(date(this_year, 1, 1), min(_working(date(this_year, 1, 5)), yesterday))
    linked_on = max(this_entered, min(_working(date(this_year, 7, 1)), yesterday))
    timeline = Timeline(rng)
    with database.transaction() as session:
        people = People(session)
        office = people.actor(REFORM_OFFICE)

        def apply(group: list[ReformSpec]) -> Callable[[], None]:
            return lambda: _apply(session, office, group)

        def milestone_step(
            spec: ReformSpec, name: str, step: str, reason: str | None, by: str
        ) -> Callable[[], None]:
            def run() -> None:
                _milestone_step(session, people.actor(by), spec, name, step, reason, settings)
                counts[step] += 1

            return run

        def check_in(spec: ReformSpec, checker: str, note: str) -> Callable[[], None]:
            def run() -> None:
                ledger_service.check_in(
                    session, actor=people.actor(checker), code=spec.code, note=note
                )
                counts["check_ins"] += 1

            return run

        # last year's ledger entered in its first working week, this year's in this one
        earlier = [s for s in specs if s.starts_on.year < this_year]
        # key results join at the mid-year update, when the brain's indicators came in
        timeline.on(last_entered, apply([_as_in(s, this_year - 1, linked=False) for s in earlier]))
        if this_entered < linked_on:
            timeline.on(this_entered, apply([_as_in(s, this_year, linked=False) for s in specs]))
        timeline.on(linked_on, apply([_as_in(s, this_year, linked=True) for s in specs]))
        for spec in specs:
            entered = last_entered if spec.starts_on.year < this_year else this_entered
            checker = CHECKERS.get(spec.lead, REFORM_OFFICE)
            # the verifier is never the one who submitted
            verifier = AUDITOR if checker == REFORM_OFFICE else REFORM_OFFICE
            for day, name, step, reason in _milestone_steps(
                spec, entered=entered, today=today, rng=rng
            ):
                by = checker if step == "submit" else verifier
                timeline.on(day, milestone_step(spec, name, step, reason, by))
            # quarterly check-ins (动态更新) since the ledger held the reform
            for offset, month, day in QUARTER_ENDS:
                when = date(this_year + offset, month, day) - timedelta(days=rng.randint(0, 6))
                when = _working(when)
                if when <= entered or when >= today or rng.random() > CHECK_IN_SHARE:
                    continue
                timeline.on(when, check_in(spec, checker, rng.choice(CHECK_IN_NOTES)))
        timeline.play()
    return counts


def _apply(session: Session, actor: Actor, specs: list[ReformSpec]) -> None:
    ledger_service.apply_specs(session, actor=actor, specs=specs, source="reforms.yaml")


def _milestone_step(
    session: Session,
    actor: Actor,
    spec: ReformSpec,
    name: str,
    step: str,
    reason: str | None,
    settings: Settings,
) -> None:
    found = session.scalars(
        select(Milestone)
        .join(Reform, Reform.id == Milestone.reform_id)
        .where(Reform.code == spec.code, Milestone.name == name)
    ).one()
    attachments = []
    if step == "submit":
        # the file goes in with the submission, which writes the reform's version
        reform = session.get(Reform, found.reform_id)
        assert reform is not None
        evidence = service.add_evidence(
            session,
            actor=actor,
            target=found,
            object_type="milestone",
            action="loop.check_in",
            scope=ledger_service.lead_scope(reform),
            filename=f"{name[:40]}-完成情况报告.pdf",
            content=_pdf(f"{spec.name}\n{name}\n完成情况报告"),
            content_type="application/pdf",
            settings=settings,
        )
        attachments.append(evidence.id)
    comment = reason if step == "send_back" else "材料齐全，核验通过" if step == "verify" else None
    ledger_service.milestone_act(
        session,
        actor=actor,
        code=spec.code,
        milestone_id=found.id,
        action=MilestoneAction(transition=step, comment=comment, attachments=attachments),
    )


def _pdf(text: str) -> bytes:
    """A small PDF-like file: enough to be stored, hashed and downloaded as evidence."""
    body = text.encode("utf-8")
    return b"%PDF-1.4\n% shuzhi demo evidence\n" + body + b"\n%%EOF\n"


# -- problems ---------------------------------------------------------------------------


def _regions(session: Session) -> tuple[list[Region], list[Region], dict[str, Region]]:
    rows = list(session.scalars(select(Region).where(Region.level.in_(("city", "county")))))
    by_code = {row.code: row for row in rows}
    cities = sorted((row for row in rows if row.level == "city"), key=lambda r: r.code)
    counties = sorted((row for row in rows if row.level == "county"), key=lambda r: r.code)
    return cities, counties, by_code


def _label(region: Region, by_code: dict[str, Region]) -> str:
    parent = by_code.get(region.parent_code or "")
    if region.level == "county" and parent is not None and parent.level == "city":
        return f"{parent.name}{region.name}"
    return region.name


def _plans(rng: random.Random, *, today: date, province: Region, session: Session) -> list[Plan]:
    cities, counties, by_code = _regions(session)
    states = [state for state, count in STATES.items() for _ in range(count)]
    rng.shuffle(states)
    channels = sorted({kind.channel for kind in KINDS}, key=list(Channel).index)
    by_channel = {c: [kind for kind in KINDS if kind.channel is c] for c in channels}
    plans = []
    for index, state in enumerate(states):
        kind = rng.choice(by_channel[channels[index % len(channels)]])
        place = rng.random()
        if place < 0.1:
            region = province
        elif place < 0.4:
            region = rng.choice(cities)
        else:
            region = rng.choice(counties)
        label = "全省" if region is province else _label(region, by_code)
        plans.append(
            Plan(
                kind=kind,
                region=region,
                label=label,
                state=state,
                reported=today,
                severity=rng.choices(("general", "serious", "major"), (6, 3, 1))[0],
                person=rng.choice(PEOPLE),
            )
        )
    overdue = dict(OVERDUE)
    late = CLOSED_LATE
    sent_back = SENT_BACK
    reassigned = REASSIGNED
    for plan in plans:
        days = _days(plan, rng, today=today, overdue=overdue, late=late)
        if plan.state == "closed" and days.get("late"):
            late -= 1
        if plan.state in overdue and days.get("overdue"):
            overdue[plan.state] -= 1
        # room between accepting and asking for closure for a first request sent back
        room = (days["requested"] - days["accepted"]).days if "requested" in days else 0
        if sent_back and room > 16:
            plan.sent_back, sent_back = True, sent_back - 1
        if reassigned and plan.state in ("assigned", "rectifying"):
            plan.reassigned, reassigned = True, reassigned - 1
        plan.steps = _steps(plan, days, rng)
    return sorted(plans, key=lambda plan: (plan.reported, plan.kind.title))


def _days(
    plan: Plan, rng: random.Random, *, today: date, overdue: dict[str, int], late: int
) -> dict[str, Any]:
    """The days of a problem's steps, chosen so that it ends in its state as planned."""
    state = plan.state
    yesterday = today - timedelta(days=1)
    if state == "reported":
        plan.reported = today - timedelta(days=rng.randint(1, 12))
        return {}
    is_overdue = overdue.get(state, 0) > 0
    if state == "closed":
        reported = today - timedelta(days=rng.randint(45, 330))
        deadline = _working(reported + timedelta(days=rng.randint(25, 80)))
        is_late = late > 0 and (today - deadline).days > 10
        accepted = reported + timedelta(days=rng.randint(1, 3))
        if is_late:
            closed = deadline + timedelta(days=rng.randint(2, min(40, (today - deadline).days - 1)))
        else:
            earliest = accepted + timedelta(days=12)
            closed = earliest + timedelta(days=rng.randint(0, max(0, (deadline - earliest).days)))
        closed = min(closed, yesterday)
        verified = closed - timedelta(days=rng.randint(0, 1))
        requested = verified - timedelta(days=rng.randint(2, 5))
        plan.reported, plan.deadline = reported, deadline
        return {
            "accepted": accepted,
            "requested": requested,
            "verified": verified,
            "closed": closed,
            "late": is_late,
        }
    if is_overdue:
        deadline = today - timedelta(days=rng.randint(9, 45))
        reported = deadline - timedelta(days=rng.randint(20, 60))
    else:
        deadline = today + timedelta(days=rng.randint(4, 60))
        reported = today - timedelta(
            days=rng.randint(15, 90) if state != "assigned" else rng.randint(2, 20)
        )
    plan.reported, plan.deadline = reported, _working(deadline)
    accepted = reported + timedelta(days=rng.randint(1, 3))
    days: dict[str, Any] = {"accepted": accepted, "overdue": is_overdue}
    if state in ("closure_requested", "verified"):
        days["requested"] = min(
            max(accepted + timedelta(days=rng.randint(8, 40)), today - timedelta(days=10)),
            yesterday - timedelta(days=2),
        )
        days["verified"] = days["requested"] + timedelta(days=rng.randint(1, 2))
    return days


def _steps(plan: Plan, days: dict[str, Any], rng: random.Random) -> list[tuple[date, str]]:
    state = plan.state
    steps = [(plan.reported, "report")]
    if state == "reported":
        return steps
    if plan.reassigned:
        steps.append((plan.reported + timedelta(days=1), "reassign"))
    if state == "assigned":
        return steps
    steps.append((days["accepted"] + timedelta(days=1 if plan.reassigned else 0), "accept"))
    if state == "rectifying":
        return steps
    requested = days["requested"]
    if plan.sent_back:
        first = requested - timedelta(days=rng.randint(10, 14))
        steps += [(first, "request_closure"), (first + timedelta(days=2), "send_back")]
    steps.append((requested, "request_closure"))
    if state == "closure_requested":
        return steps
    steps.append((days["verified"], "verify"))
    if state == "closed":
        steps.append((days["closed"], "close"))
    return steps


def _problem_story(
    database: Database, rng: random.Random, *, today: date, settings: Settings
) -> dict[str, int]:
    with database.session() as session:
        done = session.scalar(
            select(Problem.id).where(
                or_(*(Problem.code.like(f"{prefix}-%") for prefix in PREFIX.values()))
            )
        )
    if done is not None:
        return {"problems": 0}
    counts: dict[str, int] = {"problems": 0, "evidence": 0}
    with database.transaction() as session:
        people = People(session)
        province = session.scalars(select(Region).where(Region.parent_code.is_(None))).first()
        assert province is not None, "the region tree is loaded before the demo's loop"
        numbers: dict[tuple[str, int], int] = {}
        try:
            for plan in _plans(rng, today=today, province=province, session=session):
                _tell_story(session, plan, people, rng, numbers, counts, settings)
        finally:
            clock.set_clock(None)
    return counts


def _tell_story(
    session: Session,
    plan: Plan,
    people: People,
    rng: random.Random,
    numbers: dict[tuple[str, int], int],
    counts: dict[str, int],
    settings: Settings,
) -> None:
    kind = plan.kind
    prefix = PREFIX[kind.channel]
    key = (prefix, plan.reported.year)
    numbers[key] = numbers.get(key, 0) + 1
    owner = orgs_queries.department(session, kind.department)
    department = service.counterpart(session, owner, plan.region.code)
    reporter = AUDITOR if kind.channel is Channel.audit else REFORM_OFFICE
    rectifier = people.for_department(department.id, RECTIFIERS) or REFORM_OFFICE
    # the verifier is never the one who asked for closure
    verifier = AUDITOR if rectifier == REFORM_OFFICE else rng.choice((REFORM_OFFICE, AUDITOR))
    # a misrouted problem goes first to a department of the same system that is not its own
    first = department
    if plan.reassigned:
        others = sorted(code for code in RECTIFIERS if code != owner.code)
        first = orgs_queries.department(session, rng.choice(others))
    problem: Problem | None = None
    for day, step in plan.steps:
        moment = _moment(day, rng)
        clock.set_clock(lambda at=moment: at)
        if step == "report":
            problem = service.report(
                session,
                actor=people.actor(reporter),
                data=ProblemCreate(
                    code=f"{prefix}-{key[1]}-{numbers[key]:04d}",
                    title=f"{plan.label}{kind.title}",
                    description=(
                        f"{kind.channel.zh}发现：{plan.label}{kind.title}，"
                        "请责任单位限期整改并报送佐证材料。"
                    ),
                    channel=kind.channel,
                    system=kind.system,
                    region=plan.region.code,
                    severity=plan.severity,
                    # the auditor reports; the reform office assigns
                    department=None
                    if plan.state == "reported" or reporter == AUDITOR
                    else first.code,
                    responsible_person=plan.person if plan.state != "reported" else "",
                    measures=kind.measures,
                    deadline=plan.deadline,
                ),
                settings=settings,
            )
            counts["problems"] += 1
            if reporter == AUDITOR and plan.state != "reported":
                clock.set_clock(lambda at=moment + timedelta(hours=1): at)
                service.act(
                    session,
                    actor=people.actor(REFORM_OFFICE),
                    problem_id=problem.id,
                    action=ProblemAction(
                        transition="assign", department=first.code, deadline=plan.deadline
                    ),
                    settings=settings,
                )
            continue
        assert problem is not None
        if step == "reassign":
            service.act(
                session,
                actor=people.actor(REFORM_OFFICE),
                problem_id=problem.id,
                action=ProblemAction(
                    transition="reassign",
                    department=department.code,
                    deadline=plan.deadline,
                    comment=f"不属于{first.name}职责，改派{department.name}",
                ),
                settings=settings,
            )
        elif step == "accept":
            service.act(
                session,
                actor=people.actor(rectifier),
                problem_id=problem.id,
                action=ProblemAction(transition="accept", comment="已签收，制定整改方案"),
                settings=settings,
            )
        elif step == "request_closure":
            evidence = _evidence(session, problem, people.actor(rectifier), settings, rng)
            counts["evidence"] += 1
            service.act(
                session,
                actor=people.actor(rectifier),
                problem_id=problem.id,
                action=ProblemAction(
                    transition="request_closure",
                    comment="整改已完成，申请销号",
                    attachments=[evidence],
                ),
                settings=settings,
            )
        elif step == "send_back":
            service.act(
                session,
                actor=people.actor(verifier),
                problem_id=problem.id,
                action=ProblemAction(transition="send_back", comment=rng.choice(SEND_BACK_REASONS)),
                settings=settings,
            )
        elif step == "verify":
            service.act(
                session,
                actor=people.actor(verifier),
                problem_id=problem.id,
                action=ProblemAction(transition="verify", comment="经现场核查，整改到位"),
                settings=settings,
            )
        elif step == "close":
            service.act(
                session,
                actor=people.actor(REFORM_OFFICE),
                problem_id=problem.id,
                action=ProblemAction(transition="close", comment="同意销号"),
                settings=settings,
            )


def _evidence(
    session: Session, problem: Problem, actor: Actor, settings: Settings, rng: random.Random
) -> int:
    if rng.random() < 0.5:
        name, content, kind = (
            f"整改报告-{problem.code}.pdf",
            _pdf(f"{problem.title}\n整改措施：{problem.measures}"),
            "application/pdf",
        )
    else:
        text = (
            f"问题编号：{problem.code}\n问题：{problem.title}\n整改措施：{problem.measures}\n"
            f"整改情况：已按期完成整改，建立长效机制。\n报送时间：{clock.now():%Y-%m-%d}\n"
        )
        name, content, kind = (
            f"整改情况说明-{problem.code}.txt",
            text.encode("utf-8"),
            "text/plain; charset=utf-8",
        )
    return service.add_problem_evidence(
        session,
        actor=actor,
        problem_id=problem.id,
        filename=name,
        content=content,
        content_type=kind,
        note="整改佐证材料",
        settings=settings,
    ).id


# -- warnings that became problems -------------------------------------------------------


def _warning_story(database: Database, rng: random.Random, *, settings: Settings) -> dict[str, int]:
    """The departments start on a few of the problems the warnings raised: they accept
    them, and some give evidence and ask for closure, which waits until the indicator
    recovers (整改不完成，预警不变色)."""
    counts = {"accepted": 0, "closure_requested": 0}
    with database.transaction() as session:
        people = People(session)
        fresh = list(
            session.scalars(
                select(Problem)
                .where(Problem.channel == Channel.warning.value, Problem.state == "assigned")
                .order_by(Problem.id)
            )
        )
        if not fresh or session.scalar(
            select(Problem.id).where(
                Problem.channel == Channel.warning.value, Problem.state != "assigned"
            )
        ):
            return counts  # none raised, or already started on by an earlier build
        chosen = rng.sample(fresh, k=min(len(fresh), max(2, len(fresh) // 7)))
        for index, problem in enumerate(sorted(chosen, key=lambda p: p.id)):
            rectifier = people.for_department(problem.department_id, RECTIFIERS)
            if rectifier is None:
                continue
            actor = people.actor(rectifier)
            service.act(
                session,
                actor=actor,
                problem_id=problem.id,
                action=ProblemAction(transition="accept", comment="已签收，开展原因分析"),
                settings=settings,
            )
            counts["accepted"] += 1
            if index % 2:
                continue
            evidence = _evidence(session, problem, actor, settings, rng)
            service.act(
                session,
                actor=actor,
                problem_id=problem.id,
                action=ProblemAction(
                    transition="request_closure",
                    comment="整改措施已落实，待指标回升后核验",
                    attachments=[evidence],
                ),
                settings=settings,
            )
            counts["closure_requested"] += 1
    return counts


def build(database: Database, *, seed: int, settings: Settings, password: str) -> dict[str, Any]:
    """The closed loop of the demo province; returns what was done and the logins it made."""
    rng = random.Random(f"{seed}:loop")
    today = working.today()
    with database.transaction() as session:
        logins = _users(session, password)
    reforms = _reform_story(
        database, random.Random(f"{seed}:reforms"), today=today, settings=settings
    )
    problems = _problem_story(database, rng, today=today, settings=settings)
    raised = service.raise_from_warnings(database, settings=settings)
    warned = _warning_story(database, random.Random(f"{seed}:warnings"), settings=settings)
    reminders = service.remind(database, settings=settings)
    recomputed = ledger_service.recompute(database, settings=settings)
    with database.session() as session:
        warning_problems = len(
            list(
                session.scalars(select(Problem.id).where(Problem.channel == Channel.warning.value))
            )
        )
    return {
        "reforms": reforms,
        "problems": problems,
        "warning_problems": warning_problems,
        "raised_now": raised,
        "warning_story": warned,
        "reminders": reminders,
        "recomputed": recomputed,
        "logins": logins,
    }


__all__ = ["LOOP_LOGINS", "build", "reform_specs"]
