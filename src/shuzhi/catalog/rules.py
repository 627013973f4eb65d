"""Catalog enumerations, the lifecycle state machine, and resource validation."""

from __future__ import annotations

import re
from typing import Any

from shuzhi.core.enums import LabeledEnum
from shuzhi.core.errors import Message
from shuzhi.core.workflow import Attempt, Machine, State, Transition

RESOURCE_CODE = re.compile(r"^[a-z][a-z0-9_]{2,63}$")
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class Classification(LabeledEnum):
    basic = ("basic", "基础信息资源", "basic")
    thematic = ("thematic", "主题信息资源", "thematic")
    department = ("department", "部门信息资源", "departmental")


class Format(LabeledEnum):
    table = ("table", "数据库表", "table")
    file = ("file", "文件", "file")
    service = ("service", "接口服务", "service")


class UpdateCycle(LabeledEnum):
    real_time = ("real_time", "实时", "real time")
    daily = ("daily", "每日", "daily")
    weekly = ("weekly", "每周", "weekly")
    monthly = ("monthly", "每月", "monthly")
    quarterly = ("quarterly", "每季度", "quarterly")
    yearly = ("yearly", "每年", "yearly")
    irregular = ("irregular", "不定期", "irregular")


class Sharing(LabeledEnum):
    unconditional = ("unconditional", "无条件共享", "unconditional sharing")
    conditional = ("conditional", "有条件共享", "conditional sharing")
    none = ("none", "不予共享", "not shared")


class OpenAttribute(LabeledEnum):
    unconditional = ("unconditional", "无条件开放", "open")
    restricted = ("restricted", "受限开放", "restricted opening")
    prohibited = ("prohibited", "禁止开放", "not open")


class Grade(LabeledEnum):
    L1 = ("L1", "L1 公开", "L1 public")
    L2 = ("L2", "L2 内部", "L2 internal")
    L3 = ("L3", "L3 敏感", "L3 sensitive")
    L4 = ("L4", "L4 重要敏感", "L4 highly sensitive")


class NationalLevel(LabeledEnum):
    core = ("core", "核心数据", "core data")
    important = ("important", "重要数据", "important data")
    general = ("general", "一般数据", "general data")


class FieldType(LabeledEnum):
    string = ("string", "字符串", "string")
    integer = ("integer", "整数", "integer")
    decimal = ("decimal", "数值", "decimal")
    boolean = ("boolean", "布尔", "boolean")
    date = ("date", "日期", "date")
    datetime = ("datetime", "日期时间", "date and time")


class PiiKind(LabeledEnum):
    none = ("none", "非个人信息", "none")
    id_card = ("id_card", "身份证号", "citizen ID")
    phone = ("phone", "电话号码", "phone")
    name = ("name", "姓名", "name")
    address = ("address", "地址", "address")
    bank_card = ("bank_card", "银行卡号", "bank card")
    email = ("email", "电子邮箱", "email")
    other = ("other", "其他个人信息", "other personal data")


class FieldFormat(LabeledEnum):
    """A national identifier format a field's values must follow, checked at ingestion."""

    citizen_id = ("citizen_id", "公民身份号码", "citizen ID (GB 11643)")
    credit_code = ("credit_code", "统一社会信用代码", "unified social credit code (GB 32100)")
    mobile = ("mobile", "手机号码", "mobile number")
    region_code = ("region_code", "行政区划代码", "region code (GB/T 2260)")
    email = ("email", "电子邮箱", "e-mail address")


def _has_primary_key(resource: Any, _attempt: Attempt) -> str | None:
    if not resource.fields:
        return Message("it has no fields")
    if not any(field.primary_key for field in resource.fields):
        return Message("it declares no primary key field")
    return None


LIFECYCLE = Machine(
    "catalog resource",
    states=[
        State("draft", "草稿", "draft"),
        State("pending_review", "待审核", "pending review"),
        State("published", "已发布", "published"),
        State("rejected", "已驳回", "rejected"),
        State("withdrawn", "已撤回", "withdrawn"),
    ],
    initial="draft",
    transitions=[
        Transition(
            "submit",
            frozenset({"draft", "rejected"}),
            "pending_review",
            "catalog.submit",
            "提交审核",
            "submit",
            guards=(_has_primary_key,),
        ),
        Transition(
            "recall", frozenset({"pending_review"}), "draft", "catalog.submit", "撤回申请", "recall"
        ),
        Transition(
            "approve",
            frozenset({"pending_review"}),
            "published",
            "catalog.review",
            "审核通过",
            "approve",
        ),
        Transition(
            "reject",
            frozenset({"pending_review"}),
            "rejected",
            "catalog.review",
            "驳回",
            "reject",
            needs_comment=True,
        ),
        Transition(
            "withdraw",
            frozenset({"published"}),
            "withdrawn",
            "catalog.withdraw",
            "撤销发布",
            "withdraw",
            needs_comment=True,
        ),
        Transition(
            "revise", frozenset({"withdrawn"}), "draft", "catalog.edit", "重新编辑", "revise"
        ),
    ],
)

EDITABLE_STATES = frozenset({"draft", "rejected"})
