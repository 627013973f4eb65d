"""The monthly brief (月度简报) of a region, for one system or all: lights, new and resolved
warnings, forecasts that miss their targets, and the rankings of the region's children.

Built from the same queries the cockpit uses; rendered as Markdown and as a standalone
HTML page (escaped, no script), so it can be mailed or printed as it is."""

from __future__ import annotations

import html
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from shuzhi.brain import queries
from shuzhi.brain.models import EarlyWarning, Indicator, WarningEvent
from shuzhi.brain.rules import Grain, period_end, period_label
from shuzhi.brain.schemas import Report, ReportIndicator, ReportRanking, ReportWarning
from shuzhi.core import clock
from shuzhi.core.enums import Light, System
from shuzhi.core.errors import Message, NotFound
from shuzhi.core.settings import Settings

LIGHT_MARK = {"green": "🟢 绿", "yellow": "🟡 黄", "red": "🔴 红", "no_data": "⚪ 无数据"}
SEVERITY = {"high": "严重", "medium": "较重", "low": "一般"}
RANKED = 3  # best and worst children shown per indicator


def build(
    session: Session,
    *,
    month: date,
    region: str | None = None,
    system: str | None = None,
    settings: Settings | None = None,
) -> Report:
    names = queries.regions(session)
    if region is None:
        region = next(code for code, item in sorted(names.items()) if item.parent_code is None)
    if region not in names:
        raise NotFound(Message("unknown region {region!r}", region=region), field="region")
    label = System(system).zh if system else "全领域"
    subtree_prefix = names[region].path
    inside = {code for code, item in names.items() if item.path.startswith(subtree_prefix)}
    indicators = queries.search(session, system=system)
    rows: list[ReportIndicator] = []
    rankings: list[ReportRanking] = []
    for indicator in indicators:
        spec = queries.spec_of(indicator)
        if Grain.month not in spec.grains:
            continue
        found = queries.evaluation(
            session, indicator, grain=Grain.month, start=month, end=month, settings=settings
        )
        mine = next((row for row in found.data if row.region_code == region), None)
        rows.append(
            ReportIndicator(
                code=indicator.code,
                name=indicator.name,
                system=indicator.system,
                unit=spec.unit,
                decimals=spec.decimals,
                value=mine.value if mine else None,
                target=mine.target if mine else None,
                light=(mine.light if mine else Light.no_data.value),
                yoy=mine.yoy if mine else None,
                rank=mine.rank if mine else None,
                siblings=mine.siblings if mine else 0,
            )
        )
        children = [row for row in found.data if row.parent == region and row.value is not None]
        if len(children) >= 2 and mine is not None and mine.target is not None:
            ordered = sorted(children, key=lambda row: row.rank or 0)
            pick = min(RANKED, len(ordered) // 2)
            rankings.append(
                ReportRanking(
                    indicator=indicator.code,
                    name=indicator.name,
                    unit=spec.unit,
                    decimals=spec.decimals,
                    best=[(row.region_name, row.value or 0.0) for row in ordered[:pick]],
                    worst=[(row.region_name, row.value or 0.0) for row in ordered[-pick:]],
                )
            )
    lights = {key: 0 for key in ("green", "yellow", "red", "no_data")}
    for row in rows:
        if row.light in lights:
            lights[row.light] += 1
    end = period_end(Grain.month, month)
    new, resolved, misses = _warnings(session, inside, system, month, end, names)
    return Report(
        title=f"{names[region].name}{label}月度简报（{month.year}年{month.month}月）",
        month=period_label(Grain.month, month),
        region_code=region,
        region_name=names[region].name,
        system=system,
        system_label=label,
        generated_at=clock.now(),
        lights=lights,
        indicators=rows,
        new_warnings=new,
        resolved_warnings=resolved,
        forecast_misses=misses,
        rankings=rankings,
    )


def _warnings(
    session: Session,
    inside: set[str],
    system: str | None,
    month: date,
    end: date,
    names: dict,
) -> tuple[list[ReportWarning], list[ReportWarning], list[ReportWarning]]:
    statement = (
        select(WarningEvent, EarlyWarning)
        .join(EarlyWarning, EarlyWarning.id == WarningEvent.warning_id)
        .join(Indicator, Indicator.id == EarlyWarning.indicator_id)
        .where(WarningEvent.period_start >= month, WarningEvent.period_start <= end)
        .order_by(WarningEvent.id)
    )
    if system:
        statement = statement.where(Indicator.system == system)
    new: dict[int, ReportWarning] = {}
    resolved: dict[int, ReportWarning] = {}
    for event, warning in session.execute(statement):
        if warning.region_code not in inside:
            continue
        item = _item(warning, event.message, names)
        if event.to_state == "firing":
            new[warning.id] = item
            resolved.pop(warning.id, None)
        elif event.to_state == "normal" and event.from_state == "recovering":
            resolved[warning.id] = item
    misses = [
        _item(warning, warning.message, names)
        for warning in session.scalars(
            select(EarlyWarning)
            .join(Indicator, Indicator.id == EarlyWarning.indicator_id)
            .where(EarlyWarning.state == "firing")
            .order_by(EarlyWarning.id)
        )
        if warning.rule.kind == "forecast_miss"
        and warning.region_code in inside
        and (system is None or warning.indicator.system == system)
    ]
    order = {"high": 0, "medium": 1, "low": 2}

    def ranked(items: list[ReportWarning]) -> list[ReportWarning]:
        return sorted(items, key=lambda item: (order.get(item.severity, 3), item.id))

    return ranked(list(new.values())), ranked(list(resolved.values())), ranked(misses)


def _item(warning: EarlyWarning, message: str, names: dict) -> ReportWarning:
    region = names.get(warning.region_code)
    return ReportWarning(
        id=warning.id,
        rule_name=warning.rule.name,
        indicator_name=warning.indicator.name,
        region_name=region.name if region else warning.region_code,
        severity=warning.rule.severity,
        state=warning.state,
        message=message,
    )


def _number(value: float | None, decimals: int, unit: str = "") -> str:
    return "—" if value is None else f"{value:,.{decimals}f}{unit}"


INDICATOR_HEADERS = ["指标", "本月值", "目标", "亮灯", "同比", "排名"]
WARNING_HEADERS = ["地区", "指标", "规则", "等级", "说明"]


def _summary(report: Report) -> str:
    lights = report.lights
    return (
        f"共 {len(report.indicators)} 项指标：绿灯 {lights['green']} 项，黄灯 {lights['yellow']} "
        f"项，红灯 {lights['red']} 项，无数据 {lights['no_data']} 项。"
    )


def _indicator_rows(report: Report) -> list[list[str]]:
    return [
        [
            row.name,
            _number(row.value, row.decimals, row.unit),
            _number(row.target, row.decimals, row.unit),
            LIGHT_MARK.get(row.light or "", "—"),
            "—" if row.yoy is None else f"{row.yoy:+.1f}%",
            f"{row.rank}/{row.siblings}" if row.rank and row.siblings > 1 else "—",
        ]
        for row in report.indicators
    ]


def _warning_rows(items: list[ReportWarning]) -> list[list[str]]:
    return [
        [
            item.region_name,
            item.indicator_name,
            item.rule_name,
            SEVERITY.get(item.severity, item.severity),
            item.message,
        ]
        for item in items
    ]


def _sections(report: Report) -> tuple[tuple[str, list[ReportWarning]], ...]:
    return (
        ("二、本月新触发预警", report.new_warnings),
        ("三、本月已解除预警", report.resolved_warnings),
        ("四、预计年底难以达标", report.forecast_misses),
    )


def _ranking_parts(ranking: ReportRanking) -> tuple[str, str]:
    def listed(items: list[tuple[str, float]]) -> str:
        return "、".join(
            f"{name}（{_number(value, ranking.decimals, ranking.unit)}）" for name, value in items
        )

    return listed(ranking.best), listed(ranking.worst)


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    def clean(cell: str) -> str:
        return cell.replace("|", "｜").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(clean(cell) for cell in row) + " |" for row in rows]
    return lines


def to_markdown(report: Report) -> str:
    out = [
        f"# {report.title}",
        "",
        f"统计月份：{report.month}　生成时间：{report.generated_at:%Y-%m-%d %H:%M} UTC",
        "",
        "## 一、总体亮灯情况",
        "",
        _summary(report),
        "",
        *_table(INDICATOR_HEADERS, _indicator_rows(report)),
        "",
    ]
    for heading, items in _sections(report):
        out += [f"## {heading}", ""]
        out += [*_table(WARNING_HEADERS, _warning_rows(items)), ""] if items else ["无。", ""]
    out += ["## 五、比学赶超", ""]
    if not report.rankings:
        out += ["无下级地区排名。", ""]
    for ranking in report.rankings:
        best, worst = _ranking_parts(ranking)
        out.append(f"- **{ranking.name}**：前列 {best}；靠后 {worst}")
    out.append("")
    return "\n".join(out)


def to_html(report: Report) -> str:
    """A standalone page: the Markdown's content as HTML tables, every value escaped."""
    e = html.escape

    def table(headers: list[str], rows: list[list[str]], classes: list[str]) -> str:
        head = "".join(f"<th>{e(h)}</th>" for h in headers)
        body = "".join(
            f'<tr class="{e(kind)}">' + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>"
            for kind, row in zip(classes, rows, strict=True)
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    parts = [
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>{e(report.title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}"
        "th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left}"
        ".green td:nth-child(4){color:#1e7d32}.yellow td:nth-child(4){color:#b7791f}"
        ".red td:nth-child(4){color:#c0392b}</style></head><body>",
        f"<h1>{e(report.title)}</h1>",
        f"<p>统计月份：{e(report.month)}　生成时间："
        f"{e(f'{report.generated_at:%Y-%m-%d %H:%M}')} UTC</p>",
        "<h2>一、总体亮灯情况</h2>",
        f"<p>{e(_summary(report))}</p>",
        table(
            INDICATOR_HEADERS,
            _indicator_rows(report),
            [row.light or "" for row in report.indicators],
        ),
    ]
    for heading, items in _sections(report):
        parts.append(f"<h2>{e(heading)}</h2>")
        rows = _warning_rows(items)
        parts.append(table(WARNING_HEADERS, rows, [""] * len(rows)) if items else "<p>无。</p>")
    parts.append("<h2>五、比学赶超</h2><ul>")
    for ranking in report.rankings:
        best, worst = _ranking_parts(ranking)
        parts.append(
            f"<li><strong>{e(ranking.name)}</strong>：前列 {e(best)}；靠后 {e(worst)}</li>"
        )
    parts.append("</ul></body></html>")
    return "".join(parts)
