"""Problem lists (问题清单): list, board, statistics, a problem's page, its transitions,
evidence, and Excel import and export."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile, status
from fastapi.responses import FileResponse, Response

from shuzhi.api import PREFIX
from shuzhi.api.deps import ActorDep, DatabaseDep, IdPath, Offset, SessionDep
from shuzhi.core.errors import TooLarge
from shuzhi.core.settings import get_settings
from shuzhi.loop import excel, queries, service
from shuzhi.loop.schemas import (
    Board,
    EvidencePublic,
    ImportReport,
    ProblemAction,
    ProblemCreate,
    ProblemList,
    ProblemPage,
    ProblemPublic,
    ProblemStats,
    ProblemUpdate,
)

router = APIRouter(prefix=PREFIX, tags=["problems"])
IMPORT_MAX_BYTES = 20_000_000


def _workbook(file: UploadFile) -> tuple[str, bytes]:
    name = file.filename or "upload.xlsx"
    data = file.file.read(IMPORT_MAX_BYTES + 1)
    if len(data) > IMPORT_MAX_BYTES:
        raise TooLarge(f"{name}: a workbook is at most {IMPORT_MAX_BYTES // 1_000_000} MB")
    return name, data


def filters(
    state: list[str] = Query(default_factory=list, description="one or more states"),
    channel: str | None = Query(None, max_length=20),
    system: str | None = Query(None, max_length=30),
    region: str | None = Query(None, max_length=12, description="a region and all below it"),
    department: str | None = Query(None, max_length=32, description="responsible department"),
    severity: str | None = Query(None, max_length=10),
    light: str | None = Query(None, max_length=10, description="green, yellow or red"),
    q: str | None = Query(None, max_length=100, description="part of the title or number"),
    warning: bool | None = Query(None, description="raised by a warning (or not)"),
    indicator: str | None = Query(None, max_length=63),
    deadline_before: date | None = Query(None),
    deadline_after: date | None = Query(None),
) -> queries.Filters:
    return queries.Filters(
        states=tuple(state),
        channel=channel,
        system=system,
        region=region,
        department=department,
        severity=severity,
        light=light,
        q=q,
        warning=warning,
        indicator=indicator,
        deadline_before=deadline_before,
        deadline_after=deadline_after,
    )


FiltersDep = Annotated[queries.Filters, Depends(filters)]


@router.get("/problems", response_model=ProblemList)
def list_problems(
    session: SessionDep,
    actor: ActorDep,
    where: FiltersDep,
    sort: str = Query("-reported", description=", ".join(queries.SORTS)),
    limit: int = Query(50, ge=1, le=500),
    offset: Offset = 0,
) -> ProblemList:
    """A page of the problem list; ``count`` is how many match in all."""
    rows, count = queries.page_of(session, where, limit=limit, offset=offset, sort=sort)
    return ProblemList(data=rows, count=count, limit=limit, offset=offset)


@router.post("/problems", response_model=ProblemPublic, status_code=status.HTTP_201_CREATED)
def report_problem(body: ProblemCreate, database: DatabaseDep, actor: ActorDep) -> ProblemPublic:
    """Put a problem on the list; with a department it is assigned at once."""
    with database.transaction() as session:
        problem = service.report(session, actor=actor, data=body)
        return queries.public(problem, queries.Names(session))


@router.get("/problems/stats", response_model=ProblemStats)
def problem_stats(
    session: SessionDep,
    actor: ActorDep,
    where: FiltersDep,
    by: str = Query("department", description=", ".join(queries.DIMENSIONS)),
) -> ProblemStats:
    """Counts, closure rate, on-time rate and mean days to 销号, grouped."""
    return queries.stats(session, by=by, filters=where)


@router.get("/problems/board", response_model=Board)
def problem_board(
    session: SessionDep,
    actor: ActorDep,
    where: FiltersDep,
    per_state: int = Query(20, ge=1, le=200),
) -> Board:
    """The list as a kanban: a column per state, the cards nearest their deadline first."""
    return queries.board(session, where, per_state=per_state)


@router.get("/problems/export.xlsx", response_class=Response)
def export_problems(session: SessionDep, actor: ActorDep, where: FiltersDep) -> Response:
    """Every problem matching the filters as an XLSX workbook with Chinese headers."""
    return Response(
        excel.export_problems(session, where),
        media_type=excel.XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="problems.xlsx"'},
    )


@router.post("/problems/import", response_model=ImportReport)
def import_problems(
    database: DatabaseDep,
    actor: ActorDep,
    file: Annotated[UploadFile, File(description="an XLSX workbook with a 问题清单 sheet")],
    good_only: bool = Query(False, description="import the good rows of a file with errors"),
    dry_run: bool = Query(False, description="only validate"),
) -> ImportReport:
    """Import a problem list; a file with a bad row imports nothing unless ``good_only``.
    Rows whose 问题编号 exists update that problem."""
    name, data = _workbook(file)
    with database.transaction() as session:
        return excel.import_problems(
            session, actor=actor, data=data, source=name, good_only=good_only, dry_run=dry_run
        )


@router.get("/reforms/export.xlsx", response_class=Response)
def export_reforms(
    session: SessionDep,
    actor: ActorDep,
    batch: str | None = Query(None, max_length=20),
    system: str | None = Query(None, max_length=30),
    region: str | None = Query(None, max_length=12),
) -> Response:
    """The ledger and its milestones as an XLSX workbook with Chinese headers (registered
    here, before ``/reforms/{code}``)."""
    return Response(
        excel.export_reforms(session, batch=batch, system=system, region=region),
        media_type=excel.XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="reforms.xlsx"'},
    )


@router.post("/reforms/import", response_model=ImportReport)
def import_reforms(
    database: DatabaseDep,
    actor: ActorDep,
    file: Annotated[UploadFile, File(description="an XLSX workbook with a 改革一本账 sheet")],
    good_only: bool = Query(False, description="import the good rows of a file with errors"),
    dry_run: bool = Query(False, description="only validate"),
) -> ImportReport:
    """Import the ledger; a file with a bad row imports nothing unless ``good_only``."""
    name, data = _workbook(file)
    with database.transaction() as session:
        return excel.import_reforms(
            session, actor=actor, data=data, source=name, good_only=good_only, dry_run=dry_run
        )


@router.get("/problems/{problem_id}", response_model=ProblemPage)
def get_problem(problem_id: IdPath, session: SessionDep, actor: ActorDep) -> ProblemPage:
    """A problem with its timeline, evidence and the transitions the caller may fire."""
    return queries.page(session, service.get(session, problem_id), actor=actor)


@router.patch("/problems/{problem_id}", response_model=ProblemPage)
def update_problem(
    problem_id: IdPath, body: ProblemUpdate, database: DatabaseDep, actor: ActorDep
) -> ProblemPage:
    with database.transaction() as session:
        problem = service.update(session, actor=actor, problem_id=problem_id, data=body)
        return queries.page(session, problem, actor=actor)


@router.post("/problems/{problem_id}/transitions", response_model=ProblemPage)
def problem_transition(
    problem_id: IdPath, body: ProblemAction, database: DatabaseDep, actor: ActorDep
) -> ProblemPage:
    """Fire a transition: assign, reassign, accept, request_closure, send_back, verify or
    close. A refused one is 409 naming the rule that forbids it."""
    with database.transaction() as session:
        problem = service.act(session, actor=actor, problem_id=problem_id, action=body)
        return queries.page(session, problem, actor=actor)


@router.post(
    "/problems/{problem_id}/evidence",
    response_model=EvidencePublic,
    status_code=status.HTTP_201_CREATED,
)
def upload_evidence(
    problem_id: IdPath,
    database: DatabaseDep,
    actor: ActorDep,
    file: Annotated[UploadFile, File(description="the evidence file")],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> EvidencePublic:
    """Attach an evidence file; it is kept under the data directory by its SHA-256."""
    limit = get_settings().loop.evidence_max_mb * 1_000_000
    data = file.file.read(limit + 1)
    with database.transaction() as session:
        evidence = service.add_problem_evidence(
            session,
            actor=actor,
            problem_id=problem_id,
            filename=file.filename or "evidence",
            content=data,
            content_type=file.content_type or "application/octet-stream",
            note=note,
        )
        return EvidencePublic.model_validate(evidence, from_attributes=True)


@router.get("/brain/warnings/{warning_id}/problems", response_model=ProblemList)
def warning_problems(warning_id: IdPath, session: SessionDep, actor: ActorDep) -> ProblemList:
    """The problems a warning raised, newest first (one per firing episode)."""
    rows = queries.for_warning(session, warning_id)
    return ProblemList(data=rows, count=len(rows), limit=len(rows), offset=0)


@router.get("/evidence/{evidence_id}", response_class=FileResponse)
def download_evidence(evidence_id: IdPath, session: SessionDep, actor: ActorDep) -> FileResponse:
    evidence, path = service.evidence_file(session, evidence_id)
    return FileResponse(path, media_type=evidence.content_type, filename=evidence.filename)
