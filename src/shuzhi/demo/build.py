"""Build the demo province: Zhejiang's regions, about forty departments, a user for every
role, and 30+ catalog resources across the six systems and grassroots governance, moved
through their lifecycle, with the departments' synthetic data loaded into the lake.
Deterministic from the seed; re-running adds nothing twice."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from shuzhi.catalog import service as catalog
from shuzhi.catalog.models import Resource
from shuzhi.core.db import Database
from shuzhi.core.permissions import SYSTEM
from shuzhi.core.settings import get_settings
from shuzhi.core.standards import CREDIT_CODE_CHARS, credit_code_check
from shuzhi.demo import brain as demo_brain
from shuzhi.demo import gateway as demo_gateway
from shuzhi.demo import loop as demo_loop
from shuzhi.demo.synthetic import write_sources
from shuzhi.lake import service as lake
from shuzhi.lake.connectors import SourceSpec
from shuzhi.lake.models import Batch
from shuzhi.lake.schemas import SourceCreate
from shuzhi.orgs import queries as orgs_queries
from shuzhi.orgs import service as orgs
from shuzhi.orgs.models import User
from shuzhi.orgs.schemas import DepartmentCreate, GrantCreate, UserCreate
from shuzhi.regions import service as regions

DEMO_PASSWORD = "Shuzhi@2026"
DEFAULT_SEED = 2350


@dataclass(frozen=True)
class DemoLogin:
    username: str
    display_name: str
    role: str
    department: str | None


# username, display name, role, department the role is granted for (None: platform-wide)
LOGINS = (
    DemoLogin("admin", "平台管理员", "platform_admin", None),
    DemoLogin("gat_officer", "省公安厅数据专员", "data_officer", "zj_gat"),
    DemoLogin("scjgj_officer", "省市场监管局数据专员", "data_officer", "zj_scjgj"),
    DemoLogin("wjw_admin", "省卫生健康委部门管理员", "department_admin", "zj_wjw"),
    DemoLogin("hz_officer", "杭州市数据资源管理局数据专员", "data_officer", "hz_sjj"),
    DemoLogin("mzt_app", "省民政厅社会救助系统负责人", "app_owner", "zj_mzt"),
    DemoLogin("analyst", "省统计局分析员", "analyst", "zj_tjj"),
    DemoLogin("reform", "省委改革办", "reform_office", None),
    DemoLogin("auditor", "审计监督员", "auditor", None),
    DemoLogin("viewer", "查看者", "viewer", None),
)
HOME_DEPARTMENT = {
    "admin": "zj_dsj",
    "auditor": "zj_dsj",
    "viewer": "zj_dsj",
    "reform": "zj_ggb",
}


def _data(name: str) -> dict:
    return yaml.safe_load((resources.files("shuzhi.demo") / "data" / name).read_text("utf-8"))


def _credit_code(rng: random.Random, region: str) -> str:
    # 1 = organ of the state (机构编制), 1 = government body; region; organisation code
    body = "11" + region + "".join(rng.choice(CREDIT_CODE_CHARS[:10]) for _ in range(9))
    return body + credit_code_check(body)


def _departments(session: Session, rng: random.Random) -> int:
    count = 0
    for item in _data("departments.yaml")["departments"]:
        orgs.apply_department(
            session,
            actor=SYSTEM,
            data=DepartmentCreate(
                code=item["code"],
                name=item["name"],
                region=item["region"],
                parent=item.get("parent"),
                systems=item.get("systems", []),
                credit_code=_credit_code(rng, item["region"]),
            ),
        )
        count += 1
    return count


def _users(session: Session) -> None:
    for login in LOGINS:
        if session.scalar(select(User.id).where(User.username == login.username)):
            continue
        department = login.department or HOME_DEPARTMENT.get(login.username)
        orgs.create_user(
            session,
            actor=SYSTEM,
            data=UserCreate(
                username=login.username,
                display_name=login.display_name,
                password=DEMO_PASSWORD,
                department=department,
            ),
        )
        orgs.grant_role(
            session,
            actor=SYSTEM,
            username=login.username,
            data=GrantCreate(role=login.role, department=login.department),
        )


# always published and loaded: the brain and the gateway will work on these
ANCHORS = frozenset(
    {
        "gat_resident_population",
        "scjgj_enterprise_registration",
        "zfw_hotline_12345_order",
        "wjw_childcare_institution",
        "tjj_county_monthly_indicator",
        "sft_administrative_penalty",
        "dsj_county_monthly_monitoring",
    }
)
# always published, never loaded: the aggregation page shows what "no data" looks like
NEVER_LOADED = frozenset({"wwj_protected_cultural_relic", "nb_video_surveillance_point"})
# pulled on a schedule by `shuzhi worker`: code -> (name, schedule, mode, watermark)
SCHEDULED = {
    "zfw_hotline_12345_order": ("12345 热线每日推送", "cycle", "incremental", "received_at"),
    "tjj_county_monthly_indicator": ("统计月报库", "0 3 2 * *", "full", None),
}


def _lifecycle(session: Session, created: list[str], rng: random.Random) -> None:
    """Publish most new resources; leave some awaiting review, some drafts, one rejected."""
    admin = orgs_queries.actor_for(session, orgs_queries.user(session, "admin"))
    always = ANCHORS | NEVER_LOADED  # published whatever the shuffle gives
    codes = sorted(code for code in created if code not in always)
    rng.shuffle(codes)
    plan = {code: "published" for code in [*codes, *(always & set(created))]}
    for code in codes[:4]:
        plan[code] = "pending_review"
    for code in codes[4:7]:
        plan[code] = "draft"
    for code in codes[7:8]:
        plan[code] = "rejected"
    for code in sorted(plan):
        target = plan[code]
        if target == "draft":
            continue
        catalog.transition(session, actor=admin, code=code, name="submit")
        if target == "published":
            catalog.transition(session, actor=admin, code=code, name="approve")
        elif target == "rejected":
            catalog.transition(
                session,
                actor=admin,
                code=code,
                name="reject",
                comment="信息项说明不完整，请补充字段口径后重新提交",
            )


def _lake(database: Database, *, seed: int, scale: float, data_dir: Path) -> dict[str, int]:
    """Each published resource's department sends its file (CSV in UTF-8 or GBK, XLSX,
    JSON Lines…), and it is loaded as any batch would be; a resource that already has a
    snapshot is left as it is, so a second build loads nothing twice."""
    settings = get_settings().model_copy(update={"data_dir": data_dir})
    with database.session() as session:
        admin = orgs_queries.actor_for(session, orgs_queries.user(session, "admin"))
        published = set(session.scalars(select(Resource.code).where(Resource.state == "published")))
        loaded = set(
            session.scalars(
                select(Resource.code).join(Batch, Batch.resource_id == Resource.id).distinct()
            )
        )
    wanted = sorted(published - loaded - NEVER_LOADED)
    inbox = settings.inbox_dir / "demo"
    files = write_sources(inbox, seed=seed, scale=scale, codes=wanted) if wanted else []
    totals = {"batches": 0, "rows_loaded": 0, "rows_quarantined": 0}
    for item in files:
        batch = lake.ingest(
            database,
            actor=admin,
            code=item.resource_code,
            source=SourceSpec(location=str(item.path)),
            settings=settings,
        )
        totals["batches"] += 1
        totals["rows_loaded"] += batch.rows_loaded
        totals["rows_quarantined"] += batch.rows_quarantined
    by_code = {item.resource_code: item for item in files}
    with database.transaction() as session:
        for code, (name, schedule, mode, watermark) in SCHEDULED.items():
            if code not in by_code:
                continue
            lake.register_source(
                session,
                actor=admin,
                code=code,
                data=SourceCreate(
                    name=name,
                    location=str(by_code[code].path),
                    schedule=schedule,
                    mode=mode,
                    watermark=watermark,
                ),
                settings=settings,
            )
    return totals


def build(
    database: Database, *, seed: int = DEFAULT_SEED, data_dir: Path, scale: float = 1.0
) -> dict:
    """Build (or complete) the demo province in ``database``; returns what was done.

    ``scale`` sizes the departments' data (1.0: about 150,000 rows across the resources;
    0 loads nothing into the lake)."""
    rng = random.Random(seed)
    database.upgrade()
    with database.transaction() as session:
        orgs.sync_builtin_roles(session)
        loaded = regions.load_builtin(session, actor=SYSTEM)
        departments = _departments(session, rng)
        _users(session)
        text = (resources.files("shuzhi.demo") / "data" / "resources.yaml").read_text("utf-8")
        applied = catalog.apply(session, actor=SYSTEM, text=text, source="resources.yaml")
        _lifecycle(session, applied.created, rng)
        total = len(list(session.scalars(select(Resource.code))))
    lake_totals = (
        _lake(database, seed=seed, scale=scale, data_dir=data_dir)
        if scale > 0
        else {"batches": 0, "rows_loaded": 0, "rows_quarantined": 0}
    )
    settings = get_settings().model_copy(update={"data_dir": data_dir})
    gateway = demo_gateway.build(database, seed=seed, settings=settings)
    brain = demo_brain.build(database, settings=settings) if scale > 0 else None
    # the closed loop links reforms and problems to the brain's indicators and warnings
    loop = (
        demo_loop.build(database, seed=seed, settings=settings, password=DEMO_PASSWORD)
        if scale > 0
        else None
    )
    summary = {
        "seed": seed,
        "regions_created": loaded.created,
        "departments": departments,
        "resources": total,
        "resources_created": len(applied.created),
        **lake_totals,
        "gateway": gateway,
        "brain": brain,
        "loop": {key: value for key, value in loop.items() if key != "logins"} if loop else None,
        "password": DEMO_PASSWORD,
        "logins": [asdict(login) for login in LOGINS] + (loop["logins"] if loop else []),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "demo.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return summary


def logins(data_dir: Path) -> dict | None:
    """What a previous build wrote about its logins, if this data directory holds a demo."""
    path = data_dir / "demo.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = ["DEMO_PASSWORD", "build", "logins"]
