"""Problem lists and the reform ledger through Excel: the layout, round trips that change
nothing, and every kind of bad row named by its row and column."""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import delete, func, select

from shuzhi.core import calendar as working
from shuzhi.core import clock
from shuzhi.core.db import Database
from shuzhi.core.errors import PermissionDenied, ValidationFailed
from shuzhi.core.models import ChangeLog
from shuzhi.core.permissions import Actor
from shuzhi.loop import excel, ledger, queries, reforms, service
from shuzhi.loop.models import Problem, Reform
from shuzhi.loop.schemas import (
    ImportReport,
    MilestoneAction,
    ProblemAction,
    ProblemCreate,
    ReformSpec,
)
from tests.conftest import World

HEADERS = [column.header for column in excel.PROBLEM_COLUMNS]


def report(database: Database, actor: Actor, **fields: Any) -> int:
    values: dict[str, Any] = {"channel": "inspection", "system": "digital_society",
                              "region": "330100", **fields}  # fmt: skip
    with database.transaction() as session:
        return service.report(session, actor=actor, data=ProblemCreate(**values)).id


def act(database: Database, actor: Actor, problem_id: int, name: str, **extra: Any) -> None:
    with database.transaction() as session:
        service.act(
            session,
            actor=actor,
            problem_id=problem_id,
            action=ProblemAction(transition=name, **extra),
        )


def several(world: World) -> list[int]:
    """Problems from several channels, departments and states, one of them closed."""
    reform = world.actors["reform"]
    database = world.database
    ids = [
        report(database, reform, title="=1+1 医保报销材料重复提交", channel="inspection",
               description="群众反映\r\n需多次提交", department="hz_wjw",
               co_departments=["zj_dsj", "zj_gat"], deadline=date(2030, 6, 30),
               severity="major", responsible_person="王某", measures="推行一次提交",
               indicator="on_time_rate"),
        report(database, reform, title="审计发现专项资金闲置", channel="audit",
               system="digital_government", region="330000", department="zj_wjw"),
        report(database, reform, title="信访件办理超期", channel="petition", region="330102",
               department="sc_wjw", deadline=date(2020, 1, 10), co_departments=["hz_wjw"]),
        report(database, reform, title="基层网格员反映问题", channel="grassroots",
               system="grassroots", region="330102"),
        report(database, reform, title="巡察反馈整改", channel="patrol", department="hz_wjw",
               deadline=date(2031, 1, 5)),
    ]  # fmt: skip
    closed = ids[4]
    officer = world.actors["hz_wjw_officer"]
    act(database, officer, closed, "accept")
    with database.transaction() as session:
        service.add_problem_evidence(
            session, actor=officer, problem_id=closed, filename="整改报告.pdf", content=b"%PDF"
        )
    act(database, officer, closed, "request_closure")
    act(database, world.actors["supervisor"], closed, "verify")
    act(database, reform, closed, "close")
    return ids


def payloads(database: Database) -> list[dict[str, Any]]:
    with database.session() as session:
        rows, _ = queries.page_of(session, queries.Filters(), limit=1000, sort="code")
    return [row.model_dump() for row in rows]


def count(database: Database, what: Any = Problem.id, *where: Any) -> int:
    with database.session() as session:
        return session.scalar(select(func.count(what)).where(*where)) or 0


def updates(database: Database) -> int:
    return count(database, ChangeLog.id, ChangeLog.action == "problem.update")


def export(database: Database, filters: queries.Filters | None = None, **kw: Any) -> bytes:
    with database.session() as session:
        return excel.export_problems(session, filters or queries.Filters(), **kw)


def import_(database: Database, actor: Actor, data: bytes, **kw: Any) -> ImportReport:
    with database.transaction() as session:
        return excel.import_problems(session, actor=actor, data=data, source="清单.xlsx", **kw)


def values(data: bytes, sheet: str = excel.PROBLEMS_SHEET) -> list[tuple[Any, ...]]:
    book = load_workbook(io.BytesIO(data))
    return [tuple(row) for row in book[sheet].iter_rows(values_only=True)]


def workbook(rows: list[list[Any]], *, title: str = "Sheet1") -> bytes:
    """A workbook as someone in an office types it."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def errors_of(result: ImportReport) -> set[tuple[int, str]]:
    return {(error.row, error.column) for error in result.errors}


# -- export -----------------------------------------------------------------------------


def test_export_is_laid_out_as_an_office_keeps_a_list(loop_world: World) -> None:
    ids = several(loop_world)
    data = export(loop_world.database)
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == [excel.PROBLEMS_SHEET]
    sheet = book[excel.PROBLEMS_SHEET]
    assert [cell.value for cell in sheet[1]] == HEADERS
    assert all(cell.font.bold for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["C"].width == 36
    rows = {row[1]: dict(zip(HEADERS, row, strict=True)) for row in values(data)[1:]}
    assert len(rows) == len(ids)
    with loop_world.database.session() as session:
        first = session.get(Problem, ids[0])
        closed = session.get(Problem, ids[4])
        assert first is not None and closed is not None
        first_code, closed_code = first.code, closed.code
    row = rows[first_code]
    assert row["问题标题"] == "=1+1 医保报销材料重复提交"
    assert row["问题来源"] == "督查"
    assert row["所属系统"] == "数字社会"
    assert row["行政区划代码"] == "330100" and row["行政区划"] == "杭州市"
    assert row["严重程度"] == "重大"
    assert row["责任单位"] == "hz_wjw" and row["责任单位名称"] == "杭州市卫生健康委员会"
    assert row["配合单位"] == "zj_dsj、zj_gat"
    assert row["整改期限"] == datetime(2030, 6, 30)
    assert row["状态"] == "已交办" and row["亮灯"] == "黄"
    assert row["关联指标"] == "on_time_rate"
    assert isinstance(row["上报时间"], datetime) and row["销号时间"] is None
    assert rows[closed_code]["状态"] == "已销号" and rows[closed_code]["亮灯"] == "绿"
    assert isinstance(rows[closed_code]["销号时间"], datetime)
    late = next(r for r in rows.values() if r["问题标题"] == "信访件办理超期")
    assert late["亮灯"] == "红" and late["配合单位"] == "hz_wjw"
    unassigned = next(r for r in rows.values() if r["问题标题"] == "基层网格员反映问题")
    assert unassigned["责任单位"] is None and unassigned["整改期限"] is None
    # dates are dates, and text that looks like a formula stays text
    deadline_column = HEADERS.index("整改期限") + 1
    title_column = HEADERS.index("问题标题") + 1
    for line in range(2, sheet.max_row + 1):
        deadline = sheet.cell(line, deadline_column)
        if deadline.value is not None:
            assert deadline.is_date and deadline.number_format == excel.DATE_FORMAT
        assert sheet.cell(line, title_column).data_type == "s"
    assert [row[0] for row in values(data)[1:]] == list(range(1, len(ids) + 1))


def test_export_takes_any_filtered_list_whole_in_chunks(
    loop_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    reform = loop_world.actors["reform"]
    for n in range(7):
        report(loop_world.database, reform, title=f"问题{n}",
               department="hz_wjw" if n % 2 else "zj_wjw")  # fmt: skip
    monkeypatch.setattr(excel, "CHUNK", 2)
    everything = values(export(loop_world.database, sort="code"))[1:]
    assert [row[2] for row in everything] == [f"问题{n}" for n in range(7)]
    assert [row[0] for row in everything] == list(range(1, 8))
    hz = values(export(loop_world.database, queries.Filters(department="hz_wjw")))[1:]
    assert sorted(row[2] for row in hz) == ["问题1", "问题3", "问题5"]
    assert values(export(loop_world.database, queries.Filters(q="没有")))[1:] == []


# -- round trip -------------------------------------------------------------------------


def test_a_list_exported_and_imported_again_is_unchanged(loop_world: World) -> None:
    several(loop_world)
    database = loop_world.database
    before, problems, logged = payloads(database), count(database), updates(database)
    changes = count(database, ChangeLog.id)
    first = export(database)
    result = import_(database, loop_world.actors["reform"], first)
    assert result.errors == []
    assert (result.rows, result.imported, result.created, result.updated) == (5, 5, 0, 0)
    assert payloads(database) == before
    assert count(database) == problems
    assert updates(database) == logged
    assert count(database, ChangeLog.id) == changes
    assert values(export(database)) == values(first)


def test_an_edited_export_updates_its_problems(loop_world: World) -> None:
    ids = several(loop_world)
    database = loop_world.database
    book = load_workbook(io.BytesIO(export(database, sort="code")))
    sheet = book[excel.PROBLEMS_SHEET]
    column = {header: index + 1 for index, header in enumerate(HEADERS)}
    sheet.cell(2, column["整改措施"], "建立台账，每周调度")
    sheet.cell(2, column["整改期限"], "2030年7月1日")
    sheet.cell(2, column["配合单位"], "zj_dsj")
    sheet.cell(3, column["严重程度"], "较重")
    out = io.BytesIO()
    book.save(out)
    result = import_(database, loop_world.actors["reform"], out.getvalue())
    assert result.errors == []
    assert (result.created, result.updated, result.imported) == (0, 2, 5)
    with database.session() as session:
        first = session.get(Problem, ids[0])
        second = session.get(Problem, ids[1])
        assert first is not None and second is not None
        assert first.measures == "建立台账，每周调度"
        assert first.deadline == date(2030, 7, 1)
        assert [d for d in first.co_departments] == [service.department_of(session, "zj_dsj").id]
        assert second.severity == "serious"
    assert updates(database) == 2


def test_an_import_may_assign_a_reported_problem_but_never_move_one(loop_world: World) -> None:
    ids = several(loop_world)
    database = loop_world.database
    book = load_workbook(io.BytesIO(export(database, sort="code")))
    sheet = book[excel.PROBLEMS_SHEET]
    column = {header: index + 1 for index, header in enumerate(HEADERS)}
    sheet.cell(2, column["责任单位"], "zj_wjw")  # ids[0], with hz_wjw
    sheet.cell(3, column["问题来源"], "审计")  # ids[1] came from 审计 already: unchanged
    sheet.cell(4, column["所属系统"], "数字法治")  # ids[2] is 数字社会
    sheet.cell(5, column["责任单位"], "sc_wjw")  # ids[3] was never assigned
    sheet.cell(5, column["整改期限"], date(2030, 3, 2))
    sheet.cell(6, column["整改措施"], "补充")  # ids[4] is closed
    out = io.BytesIO()
    book.save(out)
    result = import_(database, loop_world.actors["reform"], out.getvalue())
    assert errors_of(result) == {(2, "责任单位"), (4, "所属系统"), (6, "问题编号")}
    assert "改派" in result.errors[0].reason
    assert "closed" in result.errors[2].reason
    assert result.imported == 0
    result = import_(database, loop_world.actors["reform"], out.getvalue(), good_only=True)
    assert (result.created, result.updated, result.imported) == (0, 1, 2)
    with database.session() as session:
        assigned = session.get(Problem, ids[3])
        assert assigned is not None
        assert assigned.state == "assigned" and assigned.department is not None
        assert assigned.department.code == "sc_wjw"
        assert assigned.deadline == date(2030, 3, 2)


# -- a workbook written by hand ---------------------------------------------------------


def test_a_workbook_typed_by_hand_imports(loop_world: World) -> None:
    data = workbook([
        ["问题标题", "问题来源", "所属系统", "行政区划", "责任单位名称", "配合单位",
         "整改期限", "严重程度", "问题编号"],
        ["窗口排队时间长", "督查", "数字政府", "上城区", "上城区卫生健康局",
         "hz_wjw, zj_dsj", "2030/5/6", "重大", "DC-2030-001"],
        ["舆情反映停车难", "opinion", "digital_society", "杭州市", None, None, None, None, None],
        ["环保督察反馈", "环保", "数字社会", "330000", "zj_wjw", "杭州市卫生健康委员会",
         datetime(2030, 12, 31), "serious", None],
        [None, None, None, None, None, None, None, None, None],
        ["安全生产检查", "安全", "基层治理", "330102", "hz_wjw", "", "2030年1月2日", "", ""],
    ])  # fmt: skip
    result = import_(loop_world.database, loop_world.actors["reform"], data)
    assert result.errors == []
    assert (result.rows, result.created, result.updated) == (4, 4, 0)
    with loop_world.database.session() as session:
        found = {p.title: p for p in session.scalars(select(Problem).order_by(Problem.id)).unique()}
        window = found["窗口排队时间长"]
        assert window.code == "DC-2030-001"
        assert window.channel == "inspection" and window.system == "digital_government"
        assert window.region_code == "330102" and window.severity == "major"
        assert window.department is not None and window.department.code == "sc_wjw"
        assert window.state == "assigned" and window.deadline == date(2030, 5, 6)
        assert len(window.co_departments) == 2
        parking = found["舆情反映停车难"]
        assert parking.state == "reported" and parking.department_id is None
        assert parking.region_code == "330100" and parking.code.startswith("WT-")
        environment = found["环保督察反馈"]
        assert environment.region_code == "330000"
        assert environment.deadline == date(2030, 12, 31)
        assert environment.co_departments == [service.department_of(session, "hz_wjw").id]
        assert found["安全生产检查"].deadline == date(2030, 1, 2)
        assert found["安全生产检查"].severity == "general"


def test_generated_numbers_step_around_the_ones_a_file_claims(loop_world: World) -> None:
    reform = loop_world.actors["reform"]
    report(loop_world.database, reform, title="已有问题")
    with loop_world.database.session() as session:
        taken = service.next_code(session, clock.now().year)
    data = workbook([
        ["问题标题", "问题来源", "所属系统", "行政区划代码", "问题编号"],
        ["没有编号", "督查", "数字社会", "330100", None],
        ["自带编号", "督查", "数字社会", "330100", taken],
    ])  # fmt: skip
    result = import_(loop_world.database, reform, data)
    assert result.errors == [] and result.created == 2
    with loop_world.database.session() as session:
        codes = dict(session.execute(select(Problem.title, Problem.code)).all())
    assert codes["自带编号"] == taken
    assert codes["没有编号"] not in (taken, codes["已有问题"])


# -- bad rows ---------------------------------------------------------------------------

BAD_ROWS = [
    ["问题编号", "问题标题", "问题来源", "所属系统", "行政区划代码", "严重程度", "责任单位",
     "配合单位", "整改期限", "关联指标"],
    ["OK-1", "好的一行", "督查", "数字社会", "330100", "一般", "hz_wjw", "zj_dsj",
     "2030-01-31", "on_time_rate"],
    ["BAD-2", "未知责任单位", "督查", "数字社会", "330100", None, "no_such", None, None, None],
    ["BAD-3", "未知区划", "督查", "数字社会", "339999", None, None, None, None, None],
    ["BAD-4", "错误日期", "督查", "数字社会", "330100", None, None, None, "2030-02-30", None],
    ["BAD-5", "未知来源", "报纸", "数字社会", "330100", None, None, None, None, None],
    ["BAD-6", "未知系统", "督查", "数字宇宙", "330100", None, None, None, None, None],
    ["BAD-7", "未知严重程度", "督查", "数字社会", "330100", "特别重大", None, None, None, None],
    ["BAD-8", None, "督查", "数字社会", "330100", None, None, None, None, None],
    ["BAD-9", "未知指标", "督查", "数字社会", "330100", None, None, None, None, "nope"],
    ["OK-1", "重复编号", "督查", "数字社会", "330100", None, None, None, None, None],
    ["BAD-11", "未知配合单位", "督查", "数字社会", "330100", None, None, "zj_dsj、ghost", None,
     None],
    ["BAD-12", "不是日期", "督查", "数字社会", "330100", None, None, None, "下周", None],
    ["BAD-13", "缺少来源", None, "数字社会", "330100", None, None, None, None, None],
    ["OK-14", "另一好行", "审计", "数字政府", "330102", "较重", None, None,
     datetime(2030, 3, 1), None],
]  # fmt: skip
EXPECTED = {
    (3, "责任单位"), (4, "行政区划代码"), (5, "整改期限"), (6, "问题来源"), (7, "所属系统"),
    (8, "严重程度"), (9, "问题标题"), (10, "关联指标"), (11, "问题编号"), (12, "配合单位"),
    (13, "整改期限"), (14, "问题来源"),
}  # fmt: skip


def test_every_bad_row_is_named_and_nothing_is_imported(loop_world: World) -> None:
    database = loop_world.database
    before = count(database)
    result = import_(database, loop_world.actors["reform"], workbook(BAD_ROWS))
    assert errors_of(result) == EXPECTED
    assert [error.row for error in result.errors] == sorted(error.row for error in result.errors)
    assert all("\n" not in error.reason and error.reason for error in result.errors)
    reasons = {(error.row, error.column): error.reason for error in result.errors}
    assert "no_such" in reasons[(3, "责任单位")]
    assert "339999" in reasons[(4, "行政区划代码")]
    assert "督查" in reasons[(6, "问题来源")]
    assert "row 2" in reasons[(11, "问题编号")]
    assert "ghost" in reasons[(12, "配合单位")]
    assert (result.rows, result.imported, result.created) == (14, 0, 0)
    assert count(database) == before


def test_good_only_imports_the_good_rows_and_still_names_the_bad(loop_world: World) -> None:
    database = loop_world.database
    before = count(database)
    result = import_(database, loop_world.actors["reform"], workbook(BAD_ROWS), good_only=True)
    assert errors_of(result) == EXPECTED
    assert (result.imported, result.created) == (2, 2)
    assert count(database) == before + 2
    with database.session() as session:
        codes = set(session.scalars(select(Problem.code)))
    assert {"OK-1", "OK-14"} <= codes and not any(code.startswith("BAD") for code in codes)


def test_a_dry_run_checks_and_counts_but_writes_nothing(loop_world: World) -> None:
    several(loop_world)
    database = loop_world.database
    before = payloads(database)
    data = workbook([
        ["问题标题", "问题来源", "所属系统", "行政区划代码"],
        ["一", "督查", "数字社会", "330100"],
        ["二", "审计", "数字社会", "330100"],
    ])  # fmt: skip
    result = import_(database, loop_world.actors["reform"], data, dry_run=True)
    assert result.dry_run and result.errors == []
    assert (result.imported, result.created) == (2, 2)
    assert payloads(database) == before
    bad = import_(database, loop_world.actors["reform"], workbook(BAD_ROWS), dry_run=True)
    assert errors_of(bad) == EXPECTED and bad.imported == 0


def test_a_wrong_or_missing_header_names_the_column(loop_world: World) -> None:
    data = workbook([
        ["问题编号", "问题来源", "所属系统", "行政区划代码", "整改时限", "责任单位", "责任单位"],
        ["X-1", "督查", "数字社会", "330100", "2030-01-01", "hz_wjw", "hz_wjw"],
    ])  # fmt: skip
    result = import_(loop_world.database, loop_world.actors["reform"], data, good_only=True)
    assert errors_of(result) == {(1, "整改时限"), (1, "问题标题"), (1, "责任单位")}
    assert "整改期限" in result.errors[0].reason or "整改期限" in result.errors[1].reason
    assert result.imported == 0 and count(loop_world.database) == 0
    # starred and padded headers, as offices write them, are the same columns
    data = workbook([["*问题标题", "问题来源 ", "所属系统", "行政区划代码"],
                     ["标题", "督查", "数字社会", 330100]])  # fmt: skip
    result = import_(loop_world.database, loop_world.actors["reform"], data)
    assert result.errors == [] and result.created == 1


def test_what_is_not_a_problem_workbook_is_refused_in_one_line(loop_world: World) -> None:
    actor = loop_world.actors["reform"]
    with pytest.raises(ValidationFailed) as caught:
        import_(loop_world.database, actor, b"title,channel\nx,y\n")
    assert str(caught.value) == "清单.xlsx: not an XLSX workbook"
    book = Workbook()
    book.create_sheet("其他")
    out = io.BytesIO()
    book.save(out)
    with pytest.raises(ValidationFailed) as caught:
        import_(loop_world.database, actor, out.getvalue())
    assert "\n" not in str(caught.value) and excel.PROBLEMS_SHEET in str(caught.value)


def test_who_may_not_report_imports_nothing(loop_world: World) -> None:
    data = workbook([["问题标题", "问题来源", "所属系统", "行政区划代码"],
                     ["一", "督查", "数字社会", "330100"]])  # fmt: skip
    with pytest.raises(PermissionDenied):
        import_(loop_world.database, loop_world.actors["viewer"], data)
    assert count(loop_world.database) == 0


def test_dates_are_read_in_every_way_an_office_writes_them() -> None:
    assert excel.parse_date("2026-03-31") == date(2026, 3, 31)
    assert excel.parse_date("2026/3/1") == date(2026, 3, 1)
    assert excel.parse_date("2026年3月31日") == date(2026, 3, 31)
    assert excel.parse_date(datetime(2026, 3, 31)) == date(2026, 3, 31)
    assert excel.parse_date(None) is None and excel.parse_date("  ") is None
    for bad in ("2026-02-30", "31/03/2026", "明天", 46000):
        with pytest.raises(excel._Bad):
            excel.parse_date(bad)


# -- the reform ledger ------------------------------------------------------------------

REFORM_HEADERS = [column.header for column in excel.REFORM_COLUMNS]
MILESTONE_HEADERS = [column.header for column in excel.MILESTONE_COLUMNS]


def ledger_specs() -> list[dict[str, Any]]:
    year = working.today().year
    return [
        {"code": "RF-01", "name": "大综合一体化行政执法", "system": "digital_rule_of_law",
         "batch": "upgrading", "batches": {year - 1: "implementing"}, "level": "province",
         "lead": "zj_wjw", "participants": ["zj_dsj", "zj_gat"], "region": "330000",
         "starts_on": "2024-01-01", "ends_on": "2030-12-31",
         "description": "执法事项统一目录\r\n一支队伍管执法",
         "milestones": [
             {"name": "方案印发", "due": "2024-03-31", "weight": 1},
             {"name": "系统上线", "due": "2030-06-30", "weight": 2.5},
         ],
         "key_results": [
             {"indicator": "on_time_rate", "region": "330100", "baseline_on": "2024-12-31",
              "baseline": 90, "target": 100, "target_on": "2030-06-30", "weight": 3},
             {"indicator": "places_per_1000", "region": "330100", "baseline_on": "2025-01-31",
              "target": 6.0, "target_on": "2030-12-31"},
         ]},
        {"code": "RF-02", "name": "浙有善育", "system": "digital_society", "batch": "implementing",
         "level": "city", "lead": "hz_wjw", "region": "330100", "starts_on": "2025-01-01",
         "ends_on": "2027-12-31"},
        {"code": "RF-03", "name": "国土空间治理", "system": "digital_government",
         "batch": "planning", "level": "county", "lead": "sc_wjw", "participants": ["hz_wjw"],
         "region": "330102", "starts_on": "2025-03-01", "ends_on": "2026-02-28",
         "milestones": [{"name": "完成调研", "due": "2030-01-15"}]},
    ]  # fmt: skip


def apply(world: World, specs: list[dict[str, Any]]) -> None:
    with world.database.transaction() as session:
        reforms.apply_specs(
            session,
            actor=world.actors["reform"],
            specs=[ReformSpec.model_validate(item) for item in specs],
            source="reforms.yaml",
        )


def the_ledger(database: Database) -> list[dict[str, Any]]:
    """Every reform as its page shows it: the row, milestones, key results, versions."""
    with database.session() as session:
        codes = [row.code for row in ledger.ledger(session).data]
        return [ledger.reform_page(session, code).model_dump() for code in codes]


def export_ledger(database: Database, **filters: Any) -> bytes:
    with database.session() as session:
        return excel.export_reforms(session, **filters)


def import_ledger(database: Database, actor: Actor, data: bytes, **kw: Any) -> ImportReport:
    with database.transaction() as session:
        return excel.import_reforms(session, actor=actor, data=data, source="一本账.xlsx", **kw)


def ledger_book(reform_rows: list[list[Any]], milestone_rows: list[list[Any]] | None) -> bytes:
    book = Workbook()
    first = book.active
    assert first is not None
    first.title = excel.REFORMS_SHEET
    for row in reform_rows:
        first.append(row)
    if milestone_rows is not None:
        second = book.create_sheet(excel.MILESTONES_SHEET)
        for row in milestone_rows:
            second.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_the_ledger_is_exported_with_its_milestones(loop_world: World) -> None:
    apply(loop_world, ledger_specs())
    data = export_ledger(loop_world.database)
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == [excel.REFORMS_SHEET, excel.MILESTONES_SHEET]
    sheet = book[excel.REFORMS_SHEET]
    assert [cell.value for cell in sheet[1]] == REFORM_HEADERS
    assert sheet.freeze_panes == "A2" and all(cell.font.bold for cell in sheet[1])
    rows = [
        dict(zip(REFORM_HEADERS, row, strict=True)) for row in values(data, excel.REFORMS_SHEET)[1:]
    ]
    # by batch (迭代升级, 启动实施, 谋划推进), then code
    assert [row["改革编号"] for row in rows] == ["RF-01", "RF-02", "RF-03"]
    first = rows[0]
    assert (first["所属系统"], first["批次"], first["层级"]) == ("数字法治", "迭代升级", "省级")
    assert (first["牵头单位"], first["牵头单位名称"]) == ("zj_wjw", "浙江省卫生健康委员会")
    assert first["参与单位"] == "zj_dsj、zj_gat"
    assert first["开始日期"] == datetime(2024, 1, 1) and first["结束日期"] == datetime(2030, 12, 31)
    assert first["亮灯"] == "红"  # 方案印发 was due in 2024 and is not done
    assert first["进度"] == pytest.approx(0.0)
    progress = sheet.cell(2, REFORM_HEADERS.index("进度") + 1)
    assert progress.number_format == excel.PERCENT_FORMAT
    assert sheet.cell(2, REFORM_HEADERS.index("开始日期") + 1).number_format == excel.DATE_FORMAT
    milestones = values(data, excel.MILESTONES_SHEET)
    assert list(milestones[0]) == MILESTONE_HEADERS
    assert milestones[1:] == [
        ("RF-01", "方案印发", datetime(2024, 3, 31), 1, "推进中"),
        ("RF-01", "系统上线", datetime(2030, 6, 30), 2.5, "推进中"),
        ("RF-03", "完成调研", datetime(2030, 1, 15), 1, "推进中"),
    ]
    only = values(export_ledger(loop_world.database, batch="planning"), excel.REFORMS_SHEET)
    assert [row[1] for row in only[1:]] == ["RF-03"]


def test_the_ledger_exported_and_imported_again_is_unchanged(loop_world: World) -> None:
    apply(loop_world, ledger_specs())
    database, office = loop_world.database, loop_world.actors["reform"]
    with database.transaction() as session:
        milestone = ledger.get(session, "RF-03").milestones[0].id
        reforms.add_milestone_evidence(
            session, actor=office, code="RF-03", milestone_id=milestone,
            filename="调研报告.pdf", content=b"%PDF",
        )  # fmt: skip
        reforms.milestone_act(
            session, actor=office, code="RF-03", milestone_id=milestone,
            action=MilestoneAction(transition="submit"),
        )  # fmt: skip
    before = the_ledger(database)
    changes = count(database, ChangeLog.id, ChangeLog.action.like("reform.%"))
    first = export_ledger(database)
    result = import_ledger(database, loop_world.actors["reform"], first)
    assert result.errors == []
    assert (result.rows, result.imported, result.created, result.updated) == (3, 3, 0, 0)
    assert the_ledger(database) == before
    assert count(database, ChangeLog.id, ChangeLog.action.like("reform.%")) == changes
    again = export_ledger(database)
    assert values(again, excel.REFORMS_SHEET) == values(first, excel.REFORMS_SHEET)
    assert values(again, excel.MILESTONES_SHEET) == values(first, excel.MILESTONES_SHEET)
    assert ("RF-03", "完成调研", datetime(2030, 1, 15), 1, "待核验") in values(
        first, excel.MILESTONES_SHEET
    )


def test_a_ledger_typed_by_hand_imports_with_its_milestones(loop_world: World) -> None:
    data = ledger_book(
        [
            ["改革编号", "改革名称", "所属系统", "批次", "牵头单位名称", "参与单位", "开始日期",
             "结束日期", "改革内容"],
            ["GG-1", "公权力大数据监督", "数字法治", "启动实施", "杭州市卫生健康委员会",
             "zj_dsj，zj_gat", "2025/1/1", datetime(2026, 12, 31), "监督模型"],
            ["GG-2", "浙里办", "digital_government", "planning", "zj_dsj", None,
             "2025年3月1日", "2025-12-31", None],
        ],
        [
            ["改革编号", "里程碑", "计划完成日期", "权重"],
            ["GG-1", "模型建成", "2025-06-30", 2],
            ["GG-1", "全面应用", "2026年6月30日", None],
        ],
    )  # fmt: skip
    result = import_ledger(loop_world.database, loop_world.actors["reform"], data)
    assert result.errors == []
    assert (result.rows, result.imported, result.created, result.updated) == (2, 2, 2, 0)
    with loop_world.database.session() as session:
        first = ledger.reform_page(session, "GG-1")
        second = ledger.reform_page(session, "GG-2")
    reform = first.reform
    assert (reform.system, reform.batch, reform.lead.code) == (
        "digital_rule_of_law", "implementing", "hz_wjw",
    )  # fmt: skip
    # no region given: the lead department's, and the level follows it
    assert (reform.region.code, reform.level) == ("330100", "city")
    assert [p.code for p in reform.participants] == ["zj_dsj", "zj_gat"]
    assert (reform.starts_on, reform.ends_on) == (date(2025, 1, 1), date(2026, 12, 31))
    assert [(m.name, m.due, m.weight) for m in first.milestones] == [
        ("模型建成", date(2025, 6, 30), 2.0),
        ("全面应用", date(2026, 6, 30), 1.0),
    ]
    assert (second.reform.region.code, second.reform.level) == ("330000", "province")
    assert second.milestones == []


LEDGER_BAD = [
    ["改革编号", "改革名称", "所属系统", "批次", "牵头单位", "参与单位", "行政区划代码",
     "开始日期", "结束日期"],
    ["OK-1", "好的改革", "数字社会", "启动实施", "hz_wjw", None, "330100", "2025-01-01",
     "2025-12-31"],
    ["BAD-2", "未知牵头单位", "数字社会", "启动实施", "nobody", None, None, "2025-01-01",
     "2025-12-31"],
    ["BAD-3", "未知批次", "数字社会", "第四批", "hz_wjw", None, None, "2025-01-01", "2025-12-31"],
    ["BAD-4", "错误日期", "数字社会", "启动实施", "hz_wjw", None, None, "2025-13-01",
     "2025-12-31"],
    ["BAD-5", "结束早于开始", "数字社会", "启动实施", "hz_wjw", None, None, "2025-06-01",
     "2025-01-01"],
    ["BAD-6", None, "数字社会", "启动实施", "hz_wjw", None, None, "2025-01-01", "2025-12-31"],
    ["OK-1", "重复编号", "数字社会", "启动实施", "hz_wjw", None, None, "2025-01-01",
     "2025-12-31"],
    ["BAD-8", "未知参与单位", "数字社会", "启动实施", "hz_wjw", "ghost", None, "2025-01-01",
     "2025-12-31"],
    ["BAD-9", "未知区划", "数字社会", "启动实施", "hz_wjw", None, "339999", "2025-01-01",
     "2025-12-31"],
    ["OK-10", "里程碑有错", "数字社会", "启动实施", "hz_wjw", None, None, "2025-01-01",
     "2025-12-31"],
    ["OK-11", "另一好改革", "数字经济", "谋划推进", "zj_dsj", None, None, "2025-01-01",
     "2025-12-31"],
]  # fmt: skip
LEDGER_BAD_MILESTONES = [
    ["改革编号", "里程碑", "计划完成日期", "权重"],
    ["OK-1", "第一步", "2025-03-31", 1],
    ["NOPE", "无主里程碑", "2025-03-31", 1],
    ["OK-10", "日期错", "三月底", 1],
    ["OK-10", "权重错", "2025-03-31", "很多"],
    ["OK-1", "第一步", "2025-04-30", 1],
    ["OK-11", "第一步", "2025-04-30", 1],
]  # fmt: skip
LEDGER_EXPECTED = {
    (3, "牵头单位"), (4, "批次"), (5, "开始日期"), (6, "结束日期"), (7, "改革名称"),
    (8, "改革编号"), (9, "参与单位"), (10, "行政区划代码"),
    (3, "里程碑!改革编号"), (4, "里程碑!计划完成日期"), (5, "里程碑!权重"), (6, "里程碑!里程碑"),
}  # fmt: skip


def reform_codes(database: Database) -> set[str]:
    with database.session() as session:
        return {row.code for row in ledger.ledger(session).data}


def test_every_bad_ledger_row_is_named_on_its_sheet(loop_world: World) -> None:
    data = ledger_book(LEDGER_BAD, LEDGER_BAD_MILESTONES)
    result = import_ledger(loop_world.database, loop_world.actors["reform"], data)
    assert {(error.row, error.column) for error in result.errors} == LEDGER_EXPECTED
    # the ledger sheet first, then the milestones sheet, each by row
    sheets = [error.column.startswith("里程碑!") for error in result.errors]
    assert sheets == sorted(sheets)
    assert all(error.reason and "\n" not in error.reason for error in result.errors)
    assert (result.rows, result.imported) == (11, 0)
    assert reform_codes(loop_world.database) == set()
    dry = import_ledger(loop_world.database, loop_world.actors["reform"], data, dry_run=True)
    assert dry.errors == result.errors and reform_codes(loop_world.database) == set()


def test_good_only_applies_the_good_reforms_and_leaves_one_with_a_bad_milestone(
    loop_world: World,
) -> None:
    data = ledger_book(LEDGER_BAD, LEDGER_BAD_MILESTONES)
    result = import_ledger(loop_world.database, loop_world.actors["reform"], data, good_only=True)
    assert {(error.row, error.column) for error in result.errors} == LEDGER_EXPECTED
    # OK-1 has a doubled milestone and OK-10 two bad ones: only OK-11 is whole
    assert (result.imported, result.created) == (1, 1)
    assert reform_codes(loop_world.database) == {"OK-11"}


def test_a_ledger_dry_run_counts_exactly_and_writes_nothing(loop_world: World) -> None:
    apply(loop_world, ledger_specs())
    database = loop_world.database
    before = the_ledger(database)
    book = load_workbook(io.BytesIO(export_ledger(database)))
    book[excel.REFORMS_SHEET].cell(3, REFORM_HEADERS.index("改革名称") + 1, "浙有善育（升级版）")
    book[excel.MILESTONES_SHEET].append(["RF-02", "新增里程碑", "2030-01-01", 1])
    added = [None, "RF-09", "新改革", "数字经济", "谋划推进", None, "zj_dsj", None, None, None,
             "2025-01-01", "2025-12-31"]  # fmt: skip
    book[excel.REFORMS_SHEET].append(added)
    out = io.BytesIO()
    book.save(out)
    dry = import_ledger(database, loop_world.actors["reform"], out.getvalue(), dry_run=True)
    assert dry.errors == [] and dry.dry_run
    assert (dry.imported, dry.created, dry.updated) == (4, 1, 1)
    assert the_ledger(database) == before
    done = import_ledger(database, loop_world.actors["reform"], out.getvalue())
    assert (done.imported, done.created, done.updated) == (4, 1, 1)
    with database.session() as session:
        page = ledger.reform_page(session, "RF-02")
    assert page.reform.name == "浙有善育（升级版）"
    assert [m.name for m in page.milestones] == ["新增里程碑"]


def test_without_a_milestones_sheet_milestones_stay_as_they_are(loop_world: World) -> None:
    apply(loop_world, ledger_specs())
    database = loop_world.database
    before = the_ledger(database)
    rows = [list(row) for row in values(export_ledger(database), excel.REFORMS_SHEET)]
    result = import_ledger(database, loop_world.actors["reform"], ledger_book(rows, None))
    assert result.errors == [] and (result.created, result.updated) == (0, 0)
    assert the_ledger(database) == before


def test_who_may_not_keep_the_ledger_imports_nothing(loop_world: World) -> None:
    data = ledger_book(LEDGER_BAD[:2], None)
    with pytest.raises(PermissionDenied):
        import_ledger(loop_world.database, loop_world.actors["hz_wjw_officer"], data)
    with pytest.raises(ValidationFailed, match="not an XLSX workbook"):
        import_ledger(loop_world.database, loop_world.actors["reform"], b"PK\x03\x04broken")
    assert reform_codes(loop_world.database) == set()


def test_a_row_the_service_still_refuses_is_named_and_undoes_the_rest(
    loop_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What only the write finds (a change made meanwhile) is a row error too."""
    real = service.report

    def refusing(session: Any, *, actor: Actor, data: ProblemCreate, **kw: Any) -> Any:
        if data.title == "被拒绝":
            raise ValidationFailed("unknown indicator 'gone'", field="indicator")
        return real(session, actor=actor, data=data, **kw)

    monkeypatch.setattr(service, "report", refusing)
    data = workbook([
        ["问题标题", "问题来源", "所属系统", "行政区划代码"],
        ["先写入", "督查", "数字社会", "330100"],
        ["被拒绝", "督查", "数字社会", "330100"],
    ])  # fmt: skip
    database, office = loop_world.database, loop_world.actors["reform"]
    result = import_(database, office, data)
    assert [(e.row, e.column, e.reason) for e in result.errors] == [
        (3, "关联指标", "unknown indicator 'gone'")
    ]
    assert result.imported == 0 and count(database) == 0
    result = import_(database, office, data, good_only=True)
    assert (result.imported, result.created, len(result.errors)) == (1, 1, 1)
    assert count(database) == 1


def test_a_reform_apply_specs_refuses_is_named_on_its_row(
    loop_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = reforms.apply_specs

    def refusing(session: Any, *, actor: Actor, specs: list[ReformSpec], source: str) -> Any:
        if specs[0].code == "RF-02":
            raise ValidationFailed(
                f"{source}: reform RF-02: participants[0]: unknown department 'x'",
                field="participants[0]",
            )
        return real(session, actor=actor, specs=specs, source=source)

    apply(loop_world, ledger_specs())
    data = export_ledger(loop_world.database)
    with loop_world.database.transaction() as session:
        session.execute(delete(Reform))
    monkeypatch.setattr(reforms, "apply_specs", refusing)
    result = import_ledger(loop_world.database, loop_world.actors["reform"], data)
    assert [(e.row, e.column) for e in result.errors] == [(3, "参与单位")]
    assert result.imported == 0 and reform_codes(loop_world.database) == set()
    result = import_ledger(loop_world.database, loop_world.actors["reform"], data, good_only=True)
    assert (result.imported, result.created) == (2, 2)
    assert reform_codes(loop_world.database) == {"RF-01", "RF-03"}
