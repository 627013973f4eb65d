"""Problem lists (问题清单) and the reform ledger (一本账) as XLSX, in the layout a government
office keeps them: row 1 holds the Chinese headers, one row per item, dates as dates.

Export streams any filtered list into a write-only workbook, a chunk at a time. Import
checks every row before it writes anything and names each bad one (its Excel row, its
column, the reason); a file with a bad row imports nothing unless only the good rows are
asked for. A row whose number (编号) is already on the list updates that item instead of
adding one, so a file exported and imported again changes nothing.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from shuzhi.brain.models import Indicator
from shuzhi.core import clock
from shuzhi.core.enums import LabeledEnum, Light, System
from shuzhi.core.errors import (
    Message,
    PermissionDenied,
    ShuzhiError,
    Unauthenticated,
    ValidationFailed,
)
from shuzhi.core.permissions import Actor, Scope, allowed
from shuzhi.core.settings import get_settings
from shuzhi.loop import ledger, queries, reforms, service
from shuzhi.loop.models import Milestone, Problem, Reform
from shuzhi.loop.rules import MILESTONE, PROBLEM, Batch, Channel, ProblemSeverity, ReformLevel
from shuzhi.loop.schemas import (
    ImportReport,
    KeyResultSpec,
    MilestoneSpec,
    ProblemCreate,
    ProblemUpdate,
    ReformSpec,
    RowError,
)
from shuzhi.orgs.models import Department
from shuzhi.regions.models import Region

E = TypeVar("E", bound=LabeledEnum)
T = TypeVar("T")

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PROBLEMS_SHEET = "问题清单"
REFORMS_SHEET = "改革一本账"
MILESTONES_SHEET = "里程碑"
DATE_FORMAT = "yyyy-mm-dd"
TIME_FORMAT = "yyyy-mm-dd hh:mm"
PERCENT_FORMAT = "0.0%"
# rows fetched per query while exporting: a list of 100,000 never sits in memory whole
CHUNK = 2000
# what separates department codes in one cell: 、 as an office writes it, or commas
_LIST_SPLIT = re.compile(r"[、,，;；\s]+")
_DATES = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日$"),
)


@dataclass(frozen=True)
class Column:
    """A column of a sheet: its header, what it holds, how wide it is shown."""

    header: str
    field: str
    width: float
    kind: str = "text"  # text, date, datetime, percent, number
    export_only: bool = False


PROBLEM_COLUMNS = (
    Column("序号", "number", 6, "number", export_only=True),
    Column("问题编号", "code", 16),
    Column("问题标题", "title", 36),
    Column("问题描述", "description", 48),
    Column("问题来源", "channel", 10),
    Column("所属系统", "system", 18),
    Column("行政区划代码", "region", 13),
    Column("行政区划", "region_name", 12),
    Column("严重程度", "severity", 9),
    Column("责任单位", "department", 12),
    Column("责任单位名称", "department_name", 26),
    Column("责任人", "responsible_person", 10),
    Column("配合单位", "co_departments", 20),
    Column("整改措施", "measures", 40),
    Column("整改期限", "deadline", 12, "date"),
    Column("状态", "state", 9, export_only=True),
    Column("亮灯", "light", 6, export_only=True),
    Column("关联指标", "indicator", 18),
    Column("上报时间", "reported_at", 17, "datetime", export_only=True),
    Column("销号时间", "closed_at", 17, "datetime", export_only=True),
)
PROBLEM_HEADERS = {column.field: column.header for column in PROBLEM_COLUMNS}
# a problem sheet must have these; the region by its code or by its name
PROBLEM_REQUIRED = (("title",), ("channel",), ("system",), ("region", "region_name"))


# -- cells ------------------------------------------------------------------------------


class _Bad(Exception):
    """A cell that cannot be read, with the one-line reason."""


def _text(value: Any) -> str:
    """A cell as text: numbers typed into a code column (330100) read as their digits."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else str(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def parse_date(value: Any) -> date | None:
    """An Excel date, or text written ``2026-03-31``, ``2026/3/31`` or ``2026年3月31日``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    if not text:
        return None
    for pattern in _DATES:
        found = pattern.match(text)
        if found:
            year, month, day = (int(part) for part in found.groups())
            try:
                return date(year, month, day)
            except ValueError:
                raise _Bad(f"{text!r} is not a day of the calendar") from None
    raise _Bad(f"{text!r} is not a date: write 2026-03-31, 2026/3/31 or 2026年3月31日")


def parse_choice(enum: type[E], value: Any, what: str) -> E | None:
    """A member of ``enum`` by its Chinese label or its English code."""
    text = _text(value)
    if not text:
        return None
    for member in enum:
        if text in (member.zh, member.value) or text.lower() == member.en.lower():
            return member
    labels = "、".join(member.zh for member in enum)
    raise _Bad(f"unknown {what} {text!r}: one of {labels}")


def _label(enum: type[LabeledEnum], value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return enum(value).zh
    except ValueError:
        return value


def _clean(value: str) -> str | None:
    """Text as a cell holds it: empty is no value; characters XML cannot carry are dropped."""
    return ILLEGAL_CHARACTERS_RE.sub("", value) or None if value else None


def _same(stored: Any, read: Any) -> bool:
    """Whether a value read from a cell is the one stored, as far as a cell can carry it:
    XML turns CR LF into LF and cannot hold control characters."""
    if isinstance(stored, str) and isinstance(read, str):
        plain = ILLEGAL_CHARACTERS_RE.sub("", stored.replace("\r\n", "\n").replace("\r", "\n"))
        return plain.strip() == read.strip()
    return bool(stored == read)


# -- writing ----------------------------------------------------------------------------


class _Writer:
    """One write-only sheet: a bold, frozen header row, column widths, typed cells."""

    def __init__(self, book: Workbook, title: str, columns: Sequence[Column]) -> None:
        self.sheet = book.create_sheet(title)
        self.columns = columns
        self.rows = 1
        self.sheet.freeze_panes = "A2"
        for index, column in enumerate(columns, start=1):
            self.sheet.column_dimensions[get_column_letter(index)].width = column.width
        header = []
        for column in columns:
            cell = WriteOnlyCell(self.sheet, value=column.header)
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor="DDEBF7")
            cell.alignment = Alignment(horizontal="center", vertical="center")
            header.append(cell)
        self.sheet.append(header)

    def append(self, values: dict[str, Any]) -> None:
        self.sheet.append([self._cell(column, values.get(column.field)) for column in self.columns])
        self.rows += 1

    def _cell(self, column: Column, value: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            text = _clean(value)
            cell = WriteOnlyCell(self.sheet, value=text)
            # text is never a formula, whatever it starts with
            cell.data_type = "s"
            return cell
        cell = WriteOnlyCell(self.sheet, value=value)
        if column.kind == "date":
            cell.number_format = DATE_FORMAT
        elif column.kind == "datetime":
            cell.number_format = TIME_FORMAT
        elif column.kind == "percent":
            cell.number_format = PERCENT_FORMAT
        return cell

    def close(self) -> None:
        last = get_column_letter(len(self.columns))
        self.sheet.auto_filter.ref = f"A1:{last}{self.rows}"


def _save(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A stored UTC time as the wall-clock time of the office (Excel has no time zones)."""
    if moment is None:
        return None
    return moment.astimezone(zone).replace(tzinfo=None, microsecond=0)


def _zone() -> ZoneInfo:
    return ZoneInfo(get_settings().calendar.timezone)


def export_problems(session: Session, filters: queries.Filters, *, sort: str = "reported") -> bytes:
    """Every problem matching ``filters`` (all of them, not a page) as a 问题清单 workbook."""
    book = Workbook(write_only=True)
    sheet = _Writer(book, PROBLEMS_SHEET, PROBLEM_COLUMNS)
    names = queries.Names(session)
    today = clock.now().date()
    zone = _zone()
    # a light is a function of the deadline and the state (today fixed), and a list has
    # far fewer of those than rows: working days are counted once per pair
    lights: dict[tuple[date | None, str], str] = {}
    written = 0
    while True:
        rows, _ = queries.search(session, filters, limit=CHUNK, offset=written, sort=sort)
        for problem in rows:
            written += 1
            key = (problem.deadline, problem.state)
            if key not in lights:
                lights[key] = queries.light_of(problem, today)
            sheet.append(_problem_values(problem, written, names, lights[key], zone))
        if len(rows) < CHUNK:
            break
    sheet.close()
    return _save(book)


def _problem_values(
    problem: Problem, number: int, names: queries.Names, light: str, zone: ZoneInfo
) -> dict[str, Any]:
    department = names.department(problem.department_id)
    co = [ref.code for i in problem.co_departments if (ref := names.department(i))]
    state = PROBLEM.states.get(problem.state)
    return {
        "number": number,
        "code": problem.code,
        "title": problem.title,
        "description": problem.description,
        "channel": _label(Channel, problem.channel),
        "system": _label(System, problem.system),
        "region": problem.region_code,
        "region_name": names.region(problem.region_code).name,
        "severity": _label(ProblemSeverity, problem.severity),
        "department": department.code if department else None,
        "department_name": department.name if department else None,
        "responsible_person": problem.responsible_person,
        "co_departments": "、".join(co),
        "measures": problem.measures,
        "deadline": problem.deadline,
        "state": state.label("zh-CN") if state else problem.state,
        "light": _label(Light, light),
        "indicator": problem.indicator.code if problem.indicator is not None else None,
        "reported_at": _local(problem.reported_at, zone),
        "closed_at": _local(problem.closed_at, zone),
    }


# -- reading ----------------------------------------------------------------------------


def _open(data: bytes, *, source: str) -> Any:
    try:
        return load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        raise ValidationFailed(Message("{source}: not an XLSX workbook", source=source)) from None


def _worksheet(book: Any, name: str, *, source: str) -> Any:
    """The sheet called ``name``; a workbook of one sheet may call it anything."""
    if name in book.sheetnames:
        return book[name]
    if len(book.sheetnames) == 1:
        return book.worksheets[0]
    raise ValidationFailed(
        Message("{source}: the workbook has no sheet named {name}", source=source, name=name)
    )


def _header_text(value: Any) -> str:
    # offices star the columns they require and pad headers with full-width spaces
    return re.sub(r"\s+", "", _text(value)).strip("*＊")


@dataclass
class _Table:
    """A sheet as read: where each known column is, and its non-blank data rows."""

    where: dict[str, int]
    rows: list[tuple[int, tuple[Any, ...]]]
    errors: list[RowError]


def _read_table(
    sheet: Any,
    columns: Sequence[Column],
    required: Sequence[Sequence[str]],
    *,
    prefix: str = "",
) -> _Table:
    """Read the header (row 1) and the data rows; every unknown, doubled or missing column
    is an error of row 1."""
    by_header = {column.header: column for column in columns}
    headers = {column.field: column.header for column in columns}
    lines = sheet.iter_rows(values_only=True)
    header = [_header_text(cell) for cell in next(lines, ())]
    where: dict[str, int] = {}
    errors: list[RowError] = []
    for index, text in enumerate(header):
        if not text:
            continue
        column = by_header.get(text)
        if column is None:
            known = "、".join(by_header)
            errors.append(
                RowError(
                    row=1, column=prefix + text, reason=f"unknown column: the columns are {known}"
                )
            )
        elif column.field in where:
            errors.append(RowError(row=1, column=prefix + text, reason="the column appears twice"))
        else:
            where[column.field] = index
    for alternatives in required:
        if not any(name in where for name in alternatives):
            wanted = " or ".join(headers[name] for name in alternatives)
            errors.append(
                RowError(
                    row=1,
                    column=prefix + headers[alternatives[0]],
                    reason=f"missing column {wanted}",
                )
            )
    rows = []
    for number, cells in enumerate(lines, start=2):
        if any(cell is not None and _text(cell) != "" for cell in cells):
            rows.append((number, tuple(cells)))
    return _Table(where=where, rows=rows, errors=errors)


@dataclass
class _Row:
    """One data row while it is checked: its cells by field, and what is wrong with it."""

    number: int
    cells: tuple[Any, ...]
    where: dict[str, int]
    headers: dict[str, str]
    prefix: str = ""
    errors: list[RowError] = field(default_factory=list)

    def has(self, name: str) -> bool:
        return name in self.where

    def raw(self, name: str) -> Any:
        index = self.where.get(name)
        return self.cells[index] if index is not None and index < len(self.cells) else None

    def text(self, name: str) -> str:
        return _text(self.raw(name))

    def fail(self, name: str, reason: str) -> None:
        self.errors.append(
            RowError(
                row=self.number, column=self.prefix + self.headers.get(name, name), reason=reason
            )
        )

    def read(self, name: str, parse: Callable[[Any], T]) -> T | None:
        try:
            return parse(self.raw(name))
        except _Bad as exc:
            self.fail(name, str(exc))
            return None


class _Lookups:
    """Departments, regions and indicators of the whole store, fetched once per import,
    by code and by name."""

    def __init__(self, session: Session) -> None:
        self.departments = {d.code: d for d in session.scalars(select(Department))}
        self.department_names: dict[str, list[Department]] = {}
        for department in self.departments.values():
            self.department_names.setdefault(department.name, []).append(department)
        self.regions: dict[str, str] = {}
        self.region_levels: dict[str, str] = {}
        self.region_names: dict[str, list[str]] = {}
        for code, name, level in session.execute(select(Region.code, Region.name, Region.level)):
            self.regions[code] = name
            self.region_levels[code] = level
            self.region_names.setdefault(name, []).append(code)
        self.indicators = dict(session.execute(select(Indicator.code, Indicator.id)).all())
        self.indicator_names: dict[str, list[str]] = {}
        for code, name in session.execute(select(Indicator.code, Indicator.name)):
            self.indicator_names.setdefault(name, []).append(code)

    def department(self, text: str) -> Department:
        found = self.departments.get(text)
        if found is not None:
            return found
        named = self.department_names.get(text, [])
        if len(named) == 1:
            return named[0]
        if named:
            raise _Bad(f"{len(named)} departments are called {text!r}: give the code")
        raise _Bad(f"unknown department {text!r}")

    def region(self, text: str) -> str:
        if text in self.regions:
            return text
        named = self.region_names.get(text, [])
        if len(named) == 1:
            return named[0]
        if named:
            raise _Bad(f"{len(named)} regions are called {text!r}: give the code")
        raise _Bad(f"unknown region {text!r}")

    def indicator(self, text: str) -> str:
        if text in self.indicators:
            return text
        named = self.indicator_names.get(text, [])
        if len(named) == 1:
            return named[0]
        raise _Bad(f"unknown indicator {text!r}")


def _field_errors(row: _Row, exc: ValidationError, fields: dict[str, str]) -> None:
    """A schema's refusal, each on the column it came from."""
    for error in exc.errors():
        location = str(error["loc"][0]) if error["loc"] else ""
        name = fields.get(location, location)
        row.fail(name, str(error["msg"]).removeprefix("Value error, "))


def _check_actor(actor: Actor, actions: Iterable[str]) -> None:
    if not actor.authenticated:
        raise Unauthenticated(Message("log in or present an API token"))
    wanted = list(actions)
    if not any(actor.scopes_for(action) for action in wanted):
        raise PermissionDenied(
            Message("{name} may not {join}", name=actor.name, join=" or ".join(wanted))
        )


# -- importing problems -----------------------------------------------------------------


@dataclass
class _ProblemRow:
    """A good row and what it will do: create a problem, or change an existing one."""

    number: int
    data: ProblemCreate
    existing: Problem | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    assign_to: Department | None = None

    @property
    def writes(self) -> bool:
        return self.existing is None or bool(self.changes) or self.assign_to is not None


def import_problems(
    session: Session,
    *,
    actor: Actor,
    data: bytes,
    source: str,
    good_only: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    """Put the rows of a 问题清单 workbook on the problem list, or update the problems whose
    问题编号 they carry. Every row is checked first; with any bad row nothing is imported
    unless ``good_only``. Runs in the caller's transaction."""
    _check_actor(actor, ("loop.report", "loop.assign", "loop.rectify"))
    book = _open(data, source=source)
    try:
        table = _read_table(
            _worksheet(book, PROBLEMS_SHEET, source=source), PROBLEM_COLUMNS, PROBLEM_REQUIRED
        )
    finally:
        book.close()
    if table.errors:
        return ImportReport(rows=len(table.rows), imported=0, errors=table.errors, dry_run=dry_run)
    lookups = _Lookups(session)
    existing = _existing_problems(session, table)
    seen: dict[str, int] = {}
    good: list[_ProblemRow] = []
    errors: list[RowError] = []
    for number, cells in table.rows:
        row = _Row(number, cells, table.where, PROBLEM_HEADERS)
        planned = _check_problem_row(
            row, actor=actor, lookups=lookups, existing=existing, seen=seen
        )
        errors.extend(row.errors)
        if planned is not None and not row.errors:
            good.append(planned)
    report = ImportReport(rows=len(table.rows), imported=0, errors=errors, dry_run=dry_run)
    if errors and not good_only:
        return report
    if dry_run:
        return _counted(report, good)
    return _write_problems(session, actor=actor, rows=good, report=report, good_only=good_only)


def _existing_problems(session: Session, table: _Table) -> dict[str, Problem]:
    index = table.where.get("code")
    if index is None:
        return {}
    codes = sorted({_text(cells[index]) for _, cells in table.rows if index < len(cells)} - {""})
    found: dict[str, Problem] = {}
    for start in range(0, len(codes), 500):
        chunk = codes[start : start + 500]
        for problem in session.scalars(select(Problem).where(Problem.code.in_(chunk))).unique():
            found[problem.code] = problem
    return found


def _check_problem_row(
    row: _Row,
    *,
    actor: Actor,
    lookups: _Lookups,
    existing: dict[str, Problem],
    seen: dict[str, int],
) -> _ProblemRow | None:
    code = row.text("code")
    if code:
        if code in seen:
            row.fail("code", f"问题编号 {code} is also on row {seen[code]}")
        else:
            seen[code] = row.number
    title = row.text("title")
    if not title:
        row.fail("title", "a problem needs a title")
    channel = row.read("channel", lambda v: parse_choice(Channel, v, "channel"))
    if channel is None and not row.text("channel"):
        row.fail("channel", "the channel (问题来源) is required")
    system = row.read("system", lambda v: parse_choice(System, v, "system"))
    if system is None and not row.text("system"):
        row.fail("system", "the system (所属系统) is required")
    region = _region_of(row, lookups)
    severity = row.read("severity", lambda v: parse_choice(ProblemSeverity, v, "severity"))
    department = None
    if row.text("department"):
        department = row.read("department", lambda v: lookups.department(_text(v)))
    elif row.text("department_name"):
        department = row.read("department_name", lambda v: lookups.department(_text(v)))
    co_departments = []
    for part in _LIST_SPLIT.split(row.text("co_departments")):
        if part:
            found = row.read("co_departments", lambda _v, part=part: lookups.department(part))
            if found is not None:
                co_departments.append(found)
    deadline = row.read("deadline", parse_date)
    indicator = None
    if row.text("indicator"):
        indicator = row.read("indicator", lambda v: lookups.indicator(_text(v)))
    if row.errors or channel is None or system is None or region is None:
        return None
    try:
        data = ProblemCreate(
            code=code or None,
            title=title,
            description=row.text("description"),
            channel=channel,
            system=system,
            region=region,
            severity=severity or ProblemSeverity.general,
            department=department.code if department else None,
            responsible_person=row.text("responsible_person"),
            co_departments=[d.code for d in co_departments],
            measures=row.text("measures"),
            deadline=deadline,
            indicator=indicator,
        )
    except ValidationError as exc:
        _field_errors(row, exc, {})
        return None
    problem = existing.get(code) if code else None
    if problem is None:
        return _new_problem(row, actor=actor, data=data)
    return _changed_problem(
        row, actor=actor, problem=problem, data=data, department=department,
        co_ids=[d.id for d in co_departments],
    )  # fmt: skip


def _region_of(row: _Row, lookups: _Lookups) -> str | None:
    """The region by its code or its name, from either column (the code column first)."""
    for name in ("region", "region_name"):
        if row.text(name):
            return row.read(name, lambda v: lookups.region(_text(v)))
    row.fail(_given(row, "region", "region_name"), "the region is required")
    return None


def _given(row: _Row, code: str, name: str) -> str:
    """The column a value was read from: the code column, unless only the name was given."""
    return name if row.has(name) and not row.text(code) and row.text(name) else code


def _new_problem(row: _Row, *, actor: Actor, data: ProblemCreate) -> _ProblemRow | None:
    scope = Scope(region_code=data.region)
    if not allowed(actor, "loop.report", scope):
        row.fail(
            _given(row, "region", "region_name"),
            f"{actor.name} may not report problems in region {data.region}",
        )
    elif data.department and not allowed(actor, "loop.assign", scope):
        row.fail(
            _given(row, "department", "department_name"),
            f"{actor.name} may not assign problems in region {data.region}",
        )
    return None if row.errors else _ProblemRow(number=row.number, data=data)


def _changed_problem(
    row: _Row,
    *,
    actor: Actor,
    problem: Problem,
    data: ProblemCreate,
    department: Department | None,
    co_ids: list[int],
) -> _ProblemRow | None:
    """What an import may change in a problem already on the list: its details. Where it
    came from, its region and its indicator stay; a department moves by reassignment (改派)
    in the workflow, and a blank 整改期限 or 责任单位 leaves the problem's as it is."""
    fixed = {
        "channel": (problem.channel, data.channel.value),
        "system": (problem.system, data.system.value),
        "region": (problem.region_code, data.region),
    }
    if data.indicator is not None:
        fixed["indicator"] = (problem.indicator.code if problem.indicator else None, data.indicator)
    for name, (before, after) in fixed.items():
        if before != after:
            column = _given(row, "region", "region_name") if name == "region" else name
            row.fail(
                column, f"problem {problem.code} has {before or 'none'}; an import cannot change it"
            )
    planned = _ProblemRow(number=row.number, data=data, existing=problem)
    if department is not None and department.id != problem.department_id:
        if problem.department_id is None and problem.state == PROBLEM.initial:
            planned.assign_to = department
        else:
            holder = problem.department.code if problem.department else "nobody"
            row.fail(
                _given(row, "department", "department_name"),
                f"problem {problem.code} is with {holder}: move it by reassignment (改派)",
            )
    # a column the sheet does not have leaves the problem's value as it is
    wanted: dict[str, Any] = {"title": data.title}
    for name in ("description", "responsible_person", "measures"):
        if row.has(name):
            wanted[name] = getattr(data, name)
    if row.has("severity"):
        wanted["severity"] = data.severity.value
    if row.has("co_departments"):
        wanted["co_departments"] = co_ids
    if data.deadline is not None and planned.assign_to is None:
        wanted["deadline"] = data.deadline
    for name, value in wanted.items():
        if not _same(getattr(problem, name), value):
            # the service takes departments by their codes
            planned.changes[name] = data.co_departments if name == "co_departments" else value
    if (planned.changes or planned.assign_to) and problem.state == "closed":
        row.fail("code", f"problem {problem.code} is closed (销号): it cannot be changed")
    if planned.changes:
        action = "loop.assign"
        if set(planned.changes) <= {"measures", "responsible_person"} and not allowed(
            actor, "loop.assign", service.scope_of(problem)
        ):
            action = "loop.rectify"
        if not allowed(actor, action, service.scope_of(problem)):
            row.fail("code", f"{actor.name} may not change problem {problem.code} ({action})")
    if planned.assign_to is not None and not allowed(
        actor, "loop.assign", service.scope_of(problem)
    ):
        row.fail(
            _given(row, "department", "department_name"),
            f"{actor.name} may not assign problem {problem.code}",
        )
    return None if row.errors else planned


def _counted(report: ImportReport, rows: Sequence[_ProblemRow]) -> ImportReport:
    created = sum(1 for row in rows if row.existing is None)
    updated = sum(1 for row in rows if row.existing is not None and row.writes)
    return report.model_copy(update={"imported": len(rows), "created": created, "updated": updated})


def _next_free_code(session: Session, reserved: set[str]) -> str:
    """The next generated number that no row of the file claims for itself."""
    code = service.next_code(session, clock.now().year)
    while code in reserved:
        prefix, _, number = code.rpartition("-")
        code = f"{prefix}-{int(number) + 1:05d}"
    return code


def _write_problems(
    session: Session,
    *,
    actor: Actor,
    rows: Sequence[_ProblemRow],
    report: ImportReport,
    good_only: bool,
) -> ImportReport:
    """Write the checked rows, each in a savepoint: a row the services still refuse (a
    change made meanwhile) becomes a row error, and all of them are undone unless
    ``good_only``."""
    reserved = {row.data.code for row in rows if row.data.code}
    errors = list(report.errors)
    written: list[_ProblemRow] = []
    everything = session.begin_nested()
    for row in rows:
        if not row.writes:
            written.append(row)
            continue
        try:
            with session.begin_nested():
                _write_problem(session, actor=actor, row=row, reserved=reserved)
        except ShuzhiError as exc:
            column = PROBLEM_HEADERS.get(exc.field or "", PROBLEM_HEADERS["code"])
            errors.append(RowError(row=row.number, column=column, reason=exc.detail))
            continue
        written.append(row)
    errors.sort(key=lambda error: error.row)
    report = report.model_copy(update={"errors": errors})
    if errors and not good_only:
        everything.rollback()
        return report
    everything.commit()
    return _counted(report, written)


def _write_problem(session: Session, *, actor: Actor, row: _ProblemRow, reserved: set[str]) -> None:
    if row.existing is None:
        data = row.data
        if data.code is None:
            data = data.model_copy(update={"code": _next_free_code(session, reserved)})
        service.report(session, actor=actor, data=data)
        return
    problem = row.existing
    if row.changes:
        service.update(
            session, actor=actor, problem_id=problem.id, data=ProblemUpdate(**row.changes)
        )
    if row.assign_to is not None:
        service.assign(
            session, problem, actor=actor, department=row.assign_to, deadline=row.data.deadline
        )


# -- the reform ledger ------------------------------------------------------------------

REFORM_COLUMNS = (
    Column("序号", "number", 6, "number", export_only=True),
    Column("改革编号", "code", 14),
    Column("改革名称", "name", 36),
    Column("所属系统", "system", 18),
    Column("批次", "batch", 10),
    Column("层级", "level", 8),
    Column("牵头单位", "lead", 12),
    Column("牵头单位名称", "lead_name", 26),
    Column("参与单位", "participants", 24),
    Column("行政区划代码", "region", 13),
    Column("开始日期", "starts_on", 12, "date"),
    Column("结束日期", "ends_on", 12, "date"),
    Column("改革内容", "description", 48),
    Column("进度", "progress", 8, "percent", export_only=True),
    Column("亮灯", "light", 8, export_only=True),
)
REFORM_HEADERS = {column.field: column.header for column in REFORM_COLUMNS}
REFORM_REQUIRED = (
    ("code",), ("name",), ("system",), ("batch",), ("lead", "lead_name"), ("starts_on",),
    ("ends_on",),
)  # fmt: skip
MILESTONE_COLUMNS = (
    Column("改革编号", "reform", 14),
    Column("里程碑", "name", 40),
    Column("计划完成日期", "due", 14, "date"),
    Column("权重", "weight", 8, "number"),
    Column("状态", "state", 10, export_only=True),
)
MILESTONE_HEADERS = {column.field: column.header for column in MILESTONE_COLUMNS}
MILESTONE_REQUIRED = (("reform",), ("name",), ("due",))
# a bad cell of the milestones sheet is named as Excel names a cell of another sheet
MILESTONE_PREFIX = f"{MILESTONES_SHEET}!"
# a region's level is the level a reform there is kept at, unless the sheet says
LEVEL_OF_REGION = {"province": "province", "city": "city", "county": "county", "town": "county"}


def export_reforms(
    session: Session,
    *,
    batch: str | None = None,
    system: str | None = None,
    region: str | None = None,
    q: str | None = None,
) -> bytes:
    """The ledger as it stands, filtered as ``ledger.ledger`` filters it: sheet 改革一本账
    (a row per reform, its computed progress and light) and sheet 里程碑 (a row per
    milestone), in the ledger's order."""
    found = ledger.ledger(session, batch=batch, system=system, region=region, q=q)
    book = Workbook(write_only=True)
    reforms_sheet = _Writer(book, REFORMS_SHEET, REFORM_COLUMNS)
    milestones_sheet = _Writer(book, MILESTONES_SHEET, MILESTONE_COLUMNS)
    milestones = _milestones_of(session, [row.id for row in found.data])
    for number, reform in enumerate(found.data, start=1):
        reforms_sheet.append(
            {
                "number": number,
                "code": reform.code,
                "name": reform.name,
                "system": _label(System, reform.system),
                "batch": _label(Batch, reform.batch),
                "level": _label(ReformLevel, reform.level),
                "lead": reform.lead.code,
                "lead_name": reform.lead.name,
                "participants": "、".join(ref.code for ref in reform.participants),
                "region": reform.region.code,
                "starts_on": reform.starts_on,
                "ends_on": reform.ends_on,
                "description": reform.description,
                "progress": reform.progress,
                "light": _label(Light, reform.light),
            }
        )
        for item in milestones.get(reform.id, []):
            state = MILESTONE.states.get(item.state)
            milestones_sheet.append(
                {
                    "reform": reform.code,
                    "name": item.name,
                    "due": item.due,
                    "weight": item.weight,
                    "state": state.label("zh-CN") if state else item.state,
                }
            )
    reforms_sheet.close()
    milestones_sheet.close()
    return _save(book)


def _milestones_of(session: Session, reform_ids: Sequence[int]) -> dict[int, list[Milestone]]:
    found: dict[int, list[Milestone]] = {}
    for start in range(0, len(reform_ids), 500):
        chunk = list(reform_ids[start : start + 500])
        for item in session.scalars(
            select(Milestone)
            .where(Milestone.reform_id.in_(chunk))
            .order_by(Milestone.reform_id, Milestone.due, Milestone.id)
        ):
            found.setdefault(item.reform_id, []).append(item)
    return found


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = _text(value)
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise _Bad(f"{text!r} is not a number") from None


@dataclass
class _ReformRow:
    number: int
    fields: dict[str, Any]


def import_reforms(
    session: Session,
    *,
    actor: Actor,
    data: bytes,
    source: str,
    good_only: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    """Apply the reforms of a 改革一本账 workbook through ``reforms.apply_specs``, with
    their milestones from sheet 里程碑. Every row of both sheets is checked first; with any
    bad row nothing is imported unless ``good_only`` (a reform with a bad milestone row is
    left out whole). Runs in the caller's transaction; ``rows`` counts reform rows."""
    _check_actor(actor, ("loop.ledger",))
    book = _open(data, source=source)
    try:
        ledger_sheet = _worksheet(book, REFORMS_SHEET, source=source)
        main = _read_table(ledger_sheet, REFORM_COLUMNS, REFORM_REQUIRED)
        steps = None
        if MILESTONES_SHEET in book.sheetnames and book[MILESTONES_SHEET] is not ledger_sheet:
            steps = _read_table(
                book[MILESTONES_SHEET], MILESTONE_COLUMNS, MILESTONE_REQUIRED,
                prefix=MILESTONE_PREFIX,
            )  # fmt: skip
    finally:
        book.close()
    header_errors = main.errors + (steps.errors if steps is not None else [])
    if header_errors:
        return ImportReport(rows=len(main.rows), imported=0, errors=header_errors, dry_run=dry_run)
    lookups = _Lookups(session)
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    planned: dict[str, _ReformRow] = {}
    for number, cells in main.rows:
        row = _Row(number, cells, main.where, REFORM_HEADERS)
        fields = _check_reform_row(row, actor=actor, lookups=lookups, seen=seen)
        errors.extend(row.errors)
        if fields is not None and not row.errors:
            planned[fields["code"]] = _ReformRow(number, fields)
    milestones: dict[str, list[MilestoneSpec]] | None = None
    if steps is not None:
        milestones, bad = _check_milestones(steps, errors=errors, codes=set(seen))
        for code in bad:
            planned.pop(code, None)
    existing = _existing_reforms(session, list(planned))
    good: list[tuple[int, ReformSpec]] = []
    for code, item in planned.items():
        spec = _reform_spec(item, existing.get(code), milestones, errors)
        if spec is not None:
            good.append((item.number, spec))
    errors.sort(key=lambda error: (error.column.startswith(MILESTONE_PREFIX), error.row))
    report = ImportReport(rows=len(main.rows), imported=0, errors=errors, dry_run=dry_run)
    if errors and not good_only:
        return report
    return _apply_reforms(
        session, actor=actor, specs=good, source=source, report=report,
        good_only=good_only, dry_run=dry_run,
    )  # fmt: skip


def _check_reform_row(
    row: _Row, *, actor: Actor, lookups: _Lookups, seen: dict[str, int]
) -> dict[str, Any] | None:
    code = row.text("code")
    if not code:
        row.fail("code", "a reform needs its 改革编号")
    elif code in seen:
        row.fail("code", f"改革编号 {code} is also on row {seen[code]}")
    else:
        seen[code] = row.number
    name = row.text("name")
    if not name:
        row.fail("name", "a reform needs a name")
    system = row.read("system", lambda v: parse_choice(System, v, "system"))
    if system is None and not row.text("system"):
        row.fail("system", "the system (所属系统) is required")
    batch = row.read("batch", lambda v: parse_choice(Batch, v, "batch"))
    if batch is None and not row.text("batch"):
        row.fail("batch", "the batch (批次) is required")
    level = row.read("level", lambda v: parse_choice(ReformLevel, v, "level"))
    lead = None
    for name_ in ("lead", "lead_name"):
        if row.text(name_):
            lead = row.read(name_, lambda v: lookups.department(_text(v)))
            break
    else:
        row.fail("lead" if row.has("lead") else "lead_name", "the lead department is required")
    participants = []
    for part in _LIST_SPLIT.split(row.text("participants")):
        if part:
            found = row.read("participants", lambda _v, part=part: lookups.department(part))
            if found is not None:
                participants.append(found.code)
    region = None
    if row.text("region"):
        region = row.read("region", lambda v: lookups.region(_text(v)))
    elif lead is not None:
        region = lead.region_code
    starts_on = row.read("starts_on", parse_date)
    ends_on = row.read("ends_on", parse_date)
    for name_, value in (("starts_on", starts_on), ("ends_on", ends_on)):
        if value is None and not row.text(name_):
            row.fail(name_, "the date is required")
    if row.errors or region is None or lead is None:
        return None
    if not allowed(actor, "loop.ledger", Scope(region_code=region)):
        row.fail("region", f"{actor.name} may not keep the ledger of region {region}")
        return None
    fields = {
        "code": code,
        "name": name,
        "system": system,
        "batch": batch,
        "level": level or LEVEL_OF_REGION.get(lookups.region_levels.get(region, ""), "province"),
        "lead": lead.code,
        "participants": participants,
        "region": region,
        "starts_on": starts_on,
        "ends_on": ends_on,
        "description": row.text("description"),
    }
    try:
        ReformSpec(**fields)
    except ValidationError as exc:
        _field_errors(row, exc, {"": "ends_on"})
        return None
    return fields


def _check_milestones(
    table: _Table, *, errors: list[RowError], codes: set[str]
) -> tuple[dict[str, list[MilestoneSpec]], set[str]]:
    """The milestones of each reform, and the reforms with a bad milestone row."""
    found: dict[str, list[MilestoneSpec]] = {}
    bad: set[str] = set()
    seen: dict[tuple[str, str], int] = {}
    for number, cells in table.rows:
        row = _Row(number, cells, table.where, MILESTONE_HEADERS, prefix=MILESTONE_PREFIX)
        code = row.text("reform")
        if not code:
            row.fail("reform", "which reform: the 改革编号 is required")
        elif code not in codes:
            row.fail("reform", f"no reform {code} on sheet {REFORMS_SHEET}")
        name = row.text("name")
        if not name:
            row.fail("name", "a milestone needs a name")
        elif (code, name) in seen:
            row.fail("name", f"milestone {name!r} of {code} is also on row {seen[code, name]}")
        else:
            seen[code, name] = number
        due = row.read("due", parse_date)
        if due is None and not row.text("due"):
            row.fail("due", "the date is required")
        weight = row.read("weight", _number)
        if not row.errors:
            try:
                item = MilestoneSpec(name=name, due=due, weight=1.0 if weight is None else weight)
            except ValidationError as exc:
                _field_errors(row, exc, {})
            else:
                found.setdefault(code, []).append(item)
        if row.errors:
            errors.extend(row.errors)
            bad.add(code)
    return found, bad


def _existing_reforms(session: Session, codes: Sequence[str]) -> dict[str, Reform]:
    found: dict[str, Reform] = {}
    for start in range(0, len(codes), 500):
        chunk = list(codes[start : start + 500])
        for reform in session.scalars(select(Reform).where(Reform.code.in_(chunk))).unique():
            found[reform.code] = reform
    return found


def _reform_spec(
    item: _ReformRow,
    reform: Reform | None,
    milestones: dict[str, list[MilestoneSpec]] | None,
    errors: list[RowError],
) -> ReformSpec | None:
    """The whole spec of a row. What the workbook does not carry stays as the ledger has
    it: key results always, and the milestones when there is no sheet 里程碑."""
    fields = dict(item.fields)
    code = fields["code"]
    key_results: list[KeyResultSpec] = []
    if reform is not None:
        for name in ("name", "description"):
            if _same(getattr(reform, name), fields[name]):
                fields[name] = getattr(reform, name)
        key_results = [
            KeyResultSpec(
                indicator=kr.indicator.code, region=kr.region_code, baseline_on=kr.baseline_on,
                baseline=kr.baseline, target=kr.target, target_on=kr.target_on, weight=kr.weight,
            )
            for kr in sorted(reform.key_results, key=lambda kr: kr.position)
        ]  # fmt: skip
    if milestones is not None:
        steps = milestones.get(code, [])
    elif reform is not None:
        steps = [MilestoneSpec(name=m.name, due=m.due, weight=m.weight) for m in reform.milestones]
    else:
        steps = []
    try:
        return ReformSpec(**fields, milestones=steps, key_results=key_results)
    except ValidationError as exc:
        reason = "; ".join(str(error["msg"]) for error in exc.errors())
        errors.append(RowError(row=item.number, column=REFORM_HEADERS["code"], reason=reason))
        return None


def _reform_column(name: str | None) -> str:
    """The column of a field ``apply_specs`` names (``participants[1]``, ``milestones[0]
    .due``)."""
    head = re.split(r"[\[.]", name or "", maxsplit=1)[0]
    if head == "milestones":
        return MILESTONE_PREFIX + MILESTONE_HEADERS["name"]
    if head == "batches":
        return REFORM_HEADERS["batch"]
    return REFORM_HEADERS.get(head, REFORM_HEADERS["code"])


def _apply_reforms(
    session: Session,
    *,
    actor: Actor,
    specs: Sequence[tuple[int, ReformSpec]],
    source: str,
    report: ImportReport,
    good_only: bool,
    dry_run: bool,
) -> ImportReport:
    """Apply each spec in its own savepoint, so that what ``apply_specs`` still refuses
    is named on its row; a dry run applies and rolls back, counting exactly."""
    errors = list(report.errors)
    created = updated = unchanged = 0
    everything = session.begin_nested()
    for number, spec in specs:
        try:
            with session.begin_nested():
                applied = reforms.apply_specs(session, actor=actor, specs=[spec], source=source)
        except ShuzhiError as exc:
            errors.append(RowError(row=number, column=_reform_column(exc.field), reason=exc.detail))
            continue
        created += applied.created
        updated += applied.updated
        unchanged += applied.unchanged
    failed = len(errors) > len(report.errors)
    errors.sort(key=lambda error: (error.column.startswith(MILESTONE_PREFIX), error.row))
    report = report.model_copy(update={"errors": errors})
    if failed and not good_only:
        everything.rollback()
        return report
    if dry_run:
        everything.rollback()
    else:
        everything.commit()
    return report.model_copy(
        update={"imported": created + updated + unchanged, "created": created, "updated": updated}
    )
