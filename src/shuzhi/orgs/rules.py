"""Built-in roles, the actions they grant, and the code and password rules."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shuzhi.core.permissions import ALL

DEPARTMENT_CODE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{2,39}$")


@dataclass(frozen=True)
class RoleSpec:
    code: str
    zh: str
    en: str
    actions: tuple[str, ...]


# Every action a role may grant. Packages above add theirs in later releases.
ACTIONS = {
    "regions.manage": "load and change the region tree",
    "orgs.manage_departments": "create and change departments",
    "orgs.manage_users": "create users and grant roles within the scope",
    "catalog.read_draft": "read resources that are not published",
    "catalog.edit": "create and change draft resources",
    "catalog.submit": "submit resources for review",
    "catalog.review": "approve or reject submitted resources",
    "catalog.withdraw": "withdraw published resources",
    "audit.read": "read the change log",
    "lake.ingest": "load data into resources and register their sources",
    "lake.read": "read loaded data, batches and the quarantine of resources",
    "lake.query": "run read-only SQL over every resource in the lake",
    "gateway.manage_consumers": "register application systems and issue their credentials",
    "gateway.apply": "apply for resources on behalf of the department's application systems",
    "gateway.decide": "approve or reject applications for the department's resources, "
    "and suspend or revoke their grants",
    "gateway.services": "register the department's services behind the gateway",
    "gateway.operate": "run the gateway: escalated applications and every grant",
    "brain.define": "define the department's indicators and their targets",
    "brain.compute": "compute indicators, forecasts and warnings",
    "loop.report": "report problems into the problem lists",
    "loop.assign": "assign, reassign and close (销号) problems",
    "loop.rectify": "rectify the department's problems, give evidence and ask for closure",
    "loop.verify": "verify closures of problems and milestones, or send them back",
    "loop.ledger": "keep the ledger of major reforms: reforms, milestones, key results",
    "loop.check_in": "check in on the department's reforms and submit milestones",
    "notify.webhooks": "register outgoing webhooks for other systems",
}

BUILTIN_ROLES = (
    RoleSpec("platform_admin", "平台管理员", "Platform administrator", (ALL,)),
    RoleSpec(
        "department_admin",
        "部门管理员",
        "Department administrator",
        (
            "orgs.manage_users",
            "catalog.read_draft",
            "catalog.edit",
            "catalog.submit",
            "catalog.withdraw",
            "lake.ingest",
            "lake.read",
            "gateway.manage_consumers",
            "gateway.apply",
            "gateway.decide",
            "gateway.services",
            "brain.define",
            "loop.report",
            "loop.rectify",
            "loop.check_in",
        ),
    ),
    RoleSpec(
        "data_officer",
        "数据专员",
        "Data officer",
        (
            "catalog.read_draft",
            "catalog.edit",
            "catalog.submit",
            "catalog.withdraw",
            "lake.ingest",
            "lake.read",
            "gateway.apply",
            "gateway.decide",
            "gateway.services",
            "loop.report",
            "loop.rectify",
        ),
    ),
    RoleSpec(
        "app_owner",
        "应用负责人",
        "Application owner",
        ("gateway.manage_consumers", "gateway.apply"),
    ),
    RoleSpec("analyst", "数据分析师", "Analyst", ("brain.define", "brain.compute")),
    RoleSpec(
        "reform_office",
        "改革办",
        "Reform office",
        (
            "loop.report",
            "loop.assign",
            "loop.verify",
            "loop.ledger",
            "loop.check_in",
            "notify.webhooks",
        ),
    ),
    RoleSpec(
        "auditor",
        "审计监督员",
        "Auditor",
        ("audit.read", "catalog.read_draft", "lake.read", "loop.report", "loop.verify"),
    ),
    RoleSpec("viewer", "查看者", "Viewer", ()),
)


def password_problem(password: str, *, min_length: int) -> str | None:
    if len(password) < min_length:
        return f"password must have at least {min_length} characters"
    kinds = sum(
        bool(re.search(pattern, password)) for pattern in (r"[a-z]", r"[A-Z]", r"\d", r"[^\w]")
    )
    if kinds < 3:
        return "password must mix at least three of: lower case, upper case, digits, symbols"
    return None
