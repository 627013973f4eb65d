"""The closed loop's vocabulary and its state machines, declared as data.

A problem moves reported → assigned → rectifying → closure_requested → verified → closed
(销号); verification can send it back, and a misrouted one can be reassigned. Guards say
which rule forbids a transition: closure needs evidence, the verifier may not be the one
who asked for closure, and a problem raised by a warning cannot be verified or closed
while its warning has not recovered (整改不完成，预警不变色).
"""

from __future__ import annotations

from typing import Any

from shuzhi.brain.rules import WARNING
from shuzhi.core.enums import LabeledEnum
from shuzhi.core.errors import Message
from shuzhi.core.workflow import Attempt, Machine, State, Transition

# the warning states in which the indicator has not (yet) recovered
UNRECOVERED = frozenset({"pending", "firing", "recovering"})


class Channel(LabeledEnum):
    """Where a problem came from: the seven oversight channels, warnings and grassroots."""

    inspection = ("inspection", "督查", "inspection")
    audit = ("audit", "审计", "audit")
    patrol = ("patrol", "巡察", "discipline patrol")
    safety = ("safety", "安全", "work safety")
    environment = ("environment", "环保", "environmental protection")
    petition = ("petition", "信访", "letters and visits")
    opinion = ("opinion", "网络舆情", "online public opinion")
    warning = ("warning", "预警", "early warning")
    grassroots = ("grassroots", "基层", "grassroots")


class ProblemSeverity(LabeledEnum):
    general = ("general", "一般", "general")
    serious = ("serious", "较重", "serious")
    major = ("major", "重大", "major")


class Batch(LabeledEnum):
    """The three batches of the ledger of major reforms."""

    upgrading = ("upgrading", "迭代升级", "upgrading")
    implementing = ("implementing", "启动实施", "implementing")
    planning = ("planning", "谋划推进", "planning")


class ReformLevel(LabeledEnum):
    province = ("province", "省级", "province")
    city = ("city", "市级", "city")
    county = ("county", "县级", "county")


def _evidence_attached(problem: Any, attempt: Attempt) -> str | None:
    if attempt.attachments or problem.evidence_count:
        return None
    return Message("closure needs evidence: attach at least one file")


def _not_the_rectifier(item: Any, attempt: Attempt) -> str | None:
    if attempt.actor.id is not None and attempt.actor.id == item.rectifier_id:
        return Message("the verifier may not be the one who rectified it and asked for closure")
    return None


def _warning_recovered(problem: Any, _attempt: Attempt) -> str | None:
    warning = problem.warning
    if warning is not None and warning.state in UNRECOVERED:
        return Message(
            "its warning {id} is still {state}: the problem closes only once the indicator "
            "has recovered",
            id=warning.id,
            state=warning.state,
            state_label=WARNING.state_label(warning.state),
        )
    return None


PROBLEM = Machine(
    "problem",
    states=[
        State("reported", "已上报", "reported"),
        State("assigned", "已交办", "assigned"),
        State("rectifying", "整改中", "rectifying"),
        State("closure_requested", "申请销号", "closure requested"),
        State("verified", "已核验", "verified"),
        State("closed", "已销号", "closed", final=True),
    ],
    initial="reported",
    transitions=[
        Transition("assign", frozenset({"reported"}), "assigned", "loop.assign", "交办", "assign"),
        Transition(
            "reassign",
            frozenset({"assigned", "rectifying"}),
            "assigned",
            "loop.assign",
            "改派",
            "reassign",
            needs_comment=True,
        ),
        Transition(
            "accept", frozenset({"assigned"}), "rectifying", "loop.rectify", "签收整改", "accept"
        ),
        Transition(
            "request_closure",
            frozenset({"rectifying"}),
            "closure_requested",
            "loop.rectify",
            "申请销号",
            "request closure",
            guards=(_evidence_attached,),
        ),
        Transition(
            "send_back",
            frozenset({"closure_requested", "verified"}),
            "rectifying",
            "loop.verify",
            "退回整改",
            "send back",
            needs_comment=True,
        ),
        Transition(
            "verify",
            frozenset({"closure_requested"}),
            "verified",
            "loop.verify",
            "核验通过",
            "verify",
            guards=(_not_the_rectifier, _warning_recovered),
        ),
        Transition(
            "close",
            frozenset({"verified"}),
            "closed",
            "loop.assign",
            "销号",
            "close",
            guards=(_warning_recovered,),
        ),
    ],
)

OPEN_STATES = frozenset(code for code, state in PROBLEM.states.items() if not state.final)
DONE_STATES = frozenset({"verified", "closed"})

MILESTONE = Machine(
    "milestone",
    states=[
        State("planned", "推进中", "planned"),
        State("submitted", "待核验", "submitted"),
        State("verified", "已完成", "verified", final=True),
    ],
    initial="planned",
    transitions=[
        Transition(
            "submit",
            frozenset({"planned"}),
            "submitted",
            "loop.check_in",
            "提交完成",
            "submit",
            guards=(_evidence_attached,),
        ),
        Transition(
            "send_back",
            frozenset({"submitted"}),
            "planned",
            "loop.verify",
            "退回",
            "send back",
            needs_comment=True,
        ),
        Transition(
            "verify",
            frozenset({"submitted"}),
            "verified",
            "loop.verify",
            "核验通过",
            "verify",
            guards=(_not_the_rectifier,),
        ),
    ],
)
