"""What an indicator may say, and the small expression language of derived indicators."""

from __future__ import annotations

import ast
from collections.abc import Callable
from datetime import date, timedelta

from shuzhi.core.enums import LabeledEnum
from shuzhi.core.errors import Message, ValidationFailed
from shuzhi.core.workflow import Machine, State, Transition


class Direction(LabeledEnum):
    higher = ("higher", "越高越好", "higher is better")
    lower = ("lower", "越低越好", "lower is better")


class Grain(LabeledEnum):
    """A reporting period; ``date_trunc`` of each gives the period's first day."""

    day = ("day", "日", "day")
    week = ("week", "周", "week")
    month = ("month", "月", "month")
    quarter = ("quarter", "季", "quarter")
    year = ("year", "年", "year")


GRAIN_ORDER = tuple(Grain)


class Aggregate(LabeledEnum):
    count = ("count", "计数", "count")
    count_distinct = ("count_distinct", "去重计数", "count distinct")
    sum = ("sum", "求和", "sum")


class MeasureKind(LabeledEnum):
    count = ("count", "计数", "count")
    count_distinct = ("count_distinct", "去重计数", "count distinct")
    sum = ("sum", "求和", "sum")
    average = ("average", "平均", "average")
    ratio = ("ratio", "比率", "ratio")
    derived = ("derived", "派生", "derived")


class Additivity(LabeledEnum):
    """How values combine over regions and time.

    additive: summed over both (a count of cases); semi_additive: a stock, summed over
    regions but over time the last value in the period (population); ratio: numerator and
    denominator are summed and divided again at every level, never averaged; distinct:
    counted again from the rows at every level (people served).
    """

    additive = ("additive", "可加", "additive")
    semi_additive = ("semi_additive", "半可加（期末值）", "semi-additive (last value)")
    ratio = ("ratio", "比率", "ratio")
    distinct = ("distinct", "不可加（去重）", "non-additive (distinct)")


# the additivity each measure may declare; the first is the default
ADDITIVITY_OF = {
    MeasureKind.count: (Additivity.additive, Additivity.semi_additive),
    MeasureKind.sum: (Additivity.additive, Additivity.semi_additive),
    MeasureKind.count_distinct: (Additivity.distinct,),
    MeasureKind.average: (Additivity.ratio,),
    MeasureKind.ratio: (Additivity.ratio, Additivity.semi_additive),
    MeasureKind.derived: (Additivity.ratio,),
}

FILTER_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "null")
EXPRESSION_MAX = 500


def period_end(grain: Grain, start: date) -> date:
    """The last day of the period that begins on ``start``."""
    if grain is Grain.day:
        return start
    if grain is Grain.week:
        return start + timedelta(days=6)
    months = {Grain.month: 1, Grain.quarter: 3, Grain.year: 12}[grain]
    year, month = divmod(start.month - 1 + months, 12)
    return date(start.year + year, month + 1, 1) - timedelta(days=1)


def period_label(grain: Grain | str, start: date) -> str:
    """How people write a period: 2026-10, 2026-Q3, 2026, 2026-W05, 2026-10-05."""
    grain = Grain(grain)
    if grain is Grain.year:
        return f"{start.year}"
    if grain is Grain.quarter:
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    if grain is Grain.month:
        return f"{start:%Y-%m}"
    if grain is Grain.week:
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return start.isoformat()


def parse_period(grain: Grain | str, text: str) -> date:
    """The first day of a period written as ``period_label`` writes it."""
    grain = Grain(grain)
    text = str(text).strip()
    try:
        if grain is Grain.year:
            return date(int(text), 1, 1)
        if grain is Grain.quarter:
            year, quarter = text.split("-Q")
            if not 1 <= int(quarter) <= 4:
                raise ValueError
            return date(int(year), 3 * int(quarter) - 2, 1)
        if grain is Grain.month:
            year, month = text.split("-")
            return date(int(year), int(month), 1)
        if grain is Grain.week:
            year, week = text.split("-W")
            return date.fromisocalendar(int(year), int(week), 1)
        return date.fromisoformat(text)
    except ValueError:
        example = period_label(grain, date(2026, 7, 1))
        raise ValidationFailed(
            Message(
                "period {text!r} is not a {value} (write it like {example})",
                text=text,
                value=grain.value,
                example=example,
                grain_label=grain.zh,
            ),
            field="period",
        ) from None


# -- derived indicators: + - * / over other indicators' codes and numbers -------------------

_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def parse_expression(text: str) -> ast.expr:
    """The expression's tree, refusing anything but arithmetic over names and numbers."""
    if len(text) > EXPRESSION_MAX:
        raise ValidationFailed(
            Message(
                "expression is longer than {EXPRESSION_MAX} characters",
                EXPRESSION_MAX=EXPRESSION_MAX,
            )
        )
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ValidationFailed(Message("expression {text!r} does not parse", text=text)) from None
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            continue
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            continue
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            continue
        if isinstance(node, ast.Name | ast.operator | ast.unaryop | ast.Load):
            continue
        raise ValidationFailed(
            Message(
                "expression {text!r}: only + - * / ( ) over indicator codes "
                "and numbers are allowed",
                text=text,
            )
        )
    return tree


def expression_names(tree: ast.expr) -> list[str]:
    return sorted({node.id for node in ast.walk(tree) if isinstance(node, ast.Name)})


def render_expression(tree: ast.expr, column: Callable[[str], str]) -> str:
    """SQL for the expression; a division by zero gives NULL (no value), never infinity."""
    if isinstance(tree, ast.Name):
        return column(tree.id)
    if isinstance(tree, ast.Constant):
        return f"CAST({tree.value!r} AS DOUBLE)"
    if isinstance(tree, ast.UnaryOp):
        sign = "-" if isinstance(tree.op, ast.USub) else "+"
        return f"({sign}{render_expression(tree.operand, column)})"
    assert isinstance(tree, ast.BinOp)
    left = render_expression(tree.left, column)
    right = render_expression(tree.right, column)
    if isinstance(tree.op, ast.Div):
        return f"({left} / NULLIF({right}, 0))"
    return f"({left} {_OPERATORS[type(tree.op)]} {right})"


# -- early warnings -------------------------------------------------------------------------


class RuleKind(LabeledEnum):
    threshold = ("threshold", "阈值", "threshold")
    consecutive = ("consecutive", "连续未达标", "consecutive bad periods")
    change = ("change", "同比环比异动", "change beyond a limit")
    anomaly = ("anomaly", "超出预测区间", "outside the forecast interval")
    forecast_miss = ("forecast_miss", "预测难以达标", "forecast misses the target")
    stale = ("stale", "数据未报送", "stale or missing data")


class Severity(LabeledEnum):
    low = ("low", "一般", "low")
    medium = ("medium", "较重", "medium")
    high = ("high", "严重", "high")


class Signal(LabeledEnum):
    """What one evaluation of a rule says; ``hover`` is inside the hysteresis band: no
    longer bad, not yet clear."""

    bad = ("bad", "异常", "bad")
    hover = ("hover", "临界", "hovering")
    clear = ("clear", "正常", "clear")
    no_data = ("no_data", "无数据", "no data")
    error = ("error", "出错", "error")


WARNING = Machine(
    "warning",
    states=(
        State("normal", "正常", "Normal"),
        State("pending", "待确认", "Pending"),
        State("firing", "预警中", "Firing"),
        State("recovering", "恢复中", "Recovering"),
        State("no_data", "无数据", "No data"),
        State("error", "出错", "Error"),
    ),
    initial="normal",
    transitions=(
        Transition("pend", frozenset({"normal", "no_data", "error"}), "pending",
                   "brain.compute", "待确认", "pend"),
        Transition("fire", frozenset({"pending", "recovering"}), "firing",
                   "brain.compute", "触发预警", "fire"),
        Transition("recover", frozenset({"firing"}), "recovering",
                   "brain.compute", "开始恢复", "recover"),
        Transition("clear", frozenset({"pending", "recovering", "no_data", "error"}), "normal",
                   "brain.compute", "恢复正常", "clear"),
        Transition("lose_data", frozenset({"normal", "pending", "firing", "recovering", "error"}),
                   "no_data", "brain.compute", "无数据", "no data"),
        Transition("fail", frozenset({"normal", "pending", "firing", "recovering", "no_data"}),
                   "error", "brain.compute", "评估出错", "error"),
    ),
)  # fmt: skip


def step(
    state: str, bad: int, good: int, signal: Signal, *, pending_for: int, recover_for: int
) -> tuple[list[str], int, int]:
    """One evaluation of a warning: the transitions to fire, and the new counts of bad and
    clear evaluations in a row. A warning fires after ``pending_for`` bad evaluations and
    returns to normal after ``recover_for`` clear ones; inside the hysteresis band (hover)
    a firing warning stays firing, so a value hovering at the line does not flap."""
    if signal is Signal.error:
        return ([] if state == "error" else ["fail"]), 0, 0
    if signal is Signal.no_data:
        return ([] if state == "no_data" else ["lose_data"]), 0, 0
    if signal is Signal.bad:
        if state in ("normal", "no_data", "error"):
            return ["pend", *(["fire"] if pending_for <= 1 else [])], 1, 0
        if state == "pending":
            return (["fire"] if bad + 1 >= pending_for else []), bad + 1, 0
        if state == "recovering":
            return ["fire"], bad + 1, 0
        return [], bad + 1, 0
    if state == "firing":
        if signal is Signal.hover:
            return [], 0, 0
        return ["recover", *(["clear"] if recover_for <= 1 else [])], 0, 1
    if state == "recovering":
        if signal is Signal.hover:
            return [], 0, good
        return (["clear"] if good + 1 >= recover_for else []), 0, good + 1
    if state in ("pending", "no_data", "error"):
        return ["clear"], 0, 0
    return [], 0, 0
