from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from shuzhi.api import PREFIX
from shuzhi.api.deps import ActorDep, DatabaseDep, IdPath, Offset, SessionDep
from shuzhi.core.errors import Conflict
from shuzhi.lake import queries, service
from shuzhi.lake.pipeline import parse_map
from shuzhi.lake.rules import Mode
from shuzhi.lake.schemas import (
    BatchList,
    BatchPublic,
    DataTab,
    HealthPoint,
    PiiFlagPublic,
    QualityReport,
    QuarantineList,
    QueryResult,
    SourceCreate,
    SourceList,
    SourcePublic,
)
from shuzhi.orgs.schemas import ID_MAX

router = APIRouter(prefix=f"{PREFIX}/lake", tags=["lake"])


@router.post(
    "/resources/{code}/batches",
    response_model=BatchPublic,
    status_code=status.HTTP_201_CREATED,
    responses={413: {"description": "the file is over the upload limit"}},
)
def ingest(
    code: str,
    database: DatabaseDep,
    actor: ActorDep,
    file: Annotated[UploadFile, File(description="CSV, XLSX, JSON, JSONL or Parquet")],
    mode: Annotated[Mode, Form()] = Mode.full,
    format: Annotated[str | None, Form(description="csv, xlsx, json, jsonl, parquet")] = None,
    sheet: Annotated[str | None, Form()] = None,
    header_row: Annotated[int, Form(ge=1, le=1000)] = 1,
    encoding: Annotated[str | None, Form()] = None,
    delimiter: Annotated[str | None, Form(max_length=1)] = None,
    watermark: Annotated[str | None, Form()] = None,
    map: Annotated[list[str] | None, Form(description="'source column=field', repeated")] = None,
) -> BatchPublic:
    """Load an uploaded file into a resource: validate, quarantine, snapshot. A re-sent
    identical file answers the batch recorded as ``unchanged``."""
    batch = service.ingest_upload(
        database,
        actor=actor,
        code=code,
        stream=file.file,
        filename=file.filename or "upload",
        mode=mode,
        overrides=parse_map(map or []),
        watermark=watermark or None,
        source_options={
            "kind": format or None,
            "sheet": sheet or None,
            "header_row": header_row,
            "encoding": encoding or None,
            "delimiter": delimiter or None,
        },
    )
    return queries.batch_public(batch)


@router.get("/resources/{code}/batches", response_model=BatchList)
def list_batches(
    code: str,
    session: SessionDep,
    actor: ActorDep,
    limit: int = Query(50, ge=1, le=500),
    offset: Offset = 0,
) -> BatchList:
    found, total = queries.batches(session, actor=actor, code=code, limit=limit, offset=offset)
    return BatchList(data=[queries.batch_public(item) for item in found], count=total)


@router.get("/batches/{batch_id}", response_model=BatchPublic)
def get_batch(batch_id: IdPath, session: SessionDep, actor: ActorDep) -> BatchPublic:
    return queries.batch_public(queries.batch(session, actor=actor, batch_id=batch_id))


@router.get("/resources/{code}/quarantine", response_model=QuarantineList)
def list_quarantine(
    code: str,
    session: SessionDep,
    actor: ActorDep,
    batch: int | None = Query(
        None, ge=1, le=ID_MAX, description="default: the current snapshot's batch"
    ),
    rule: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: Offset = 0,
) -> QuarantineList:
    rows, total, _ = queries.quarantine(
        session, actor=actor, code=code, batch_id=batch, rule=rule, limit=limit, offset=offset
    )
    return QuarantineList(data=rows, count=total)


@router.get(
    "/resources/{code}/quarantine.csv",
    response_class=FileResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_quarantine(
    code: str,
    session: SessionDep,
    actor: ActorDep,
    batch: int | None = Query(None, ge=1, le=ID_MAX),
) -> FileResponse:
    """The refused rows as CSV (UTF-8 with BOM) under the source's own headers."""
    target = queries.quarantine_csv(session, actor=actor, code=code, batch_id=batch)
    return FileResponse(
        target,
        media_type="text/csv; charset=utf-8",
        filename=f"{code}-quarantine.csv",
        background=BackgroundTask(target.unlink, missing_ok=True),
    )


@router.get("/resources/{code}/data", response_model=DataTab)
def data_tab(code: str, session: SessionDep, actor: ActorDep) -> DataTab:
    """Schema, a sample with personal data masked, batches and the quality trend."""
    return queries.data_tab(session, actor=actor, code=code)


@router.post("/resources/{code}/pii-flags/{field}/review", response_model=PiiFlagPublic)
def review_pii(code: str, field: str, database: DatabaseDep, actor: ActorDep) -> PiiFlagPublic:
    """The provider keeps the field's classification: looked at, not personal data."""
    service.review_pii(database, actor=actor, code=code, field=field)
    with database.session() as session:
        return next(
            flag
            for flag in queries.pii_flags(session)
            if flag.resource == code and flag.field == field
        )


class QueryRequest(BaseModel):
    sql: str = Field(min_length=1, max_length=20_000, description="one SELECT")
    limit: int | None = Field(None, ge=1, le=100_000)


@router.post("/query", response_model=QueryResult)
def query(body: QueryRequest, session: SessionDep, actor: ActorDep) -> QueryResult:
    """Read-only SQL over the current snapshot of every resource, tables named by code."""
    return queries.run_query(session, actor=actor, sql=body.sql, limit=body.limit)


@router.get("/quality", response_model=QualityReport)
def quality(session: SessionDep, actor: ActorDep, provider: str | None = None) -> QualityReport:
    """Lights, freshness and quality per published resource; coverage per provider and
    system."""
    return queries.report(session, actor=actor, provider=provider)


@router.get("/health/trend", response_model=list[HealthPoint])
def health_trend(
    session: SessionDep,
    actor: ActorDep,
    scope: str = Query("all", pattern="^(all|provider|system)$"),
    key: str = "all",
    days: int = Query(90, ge=1, le=3660),
) -> list[HealthPoint]:
    return queries.trend(session, scope=scope, key=key, days=days)


@router.get("/sources", response_model=SourceList)
def list_sources(session: SessionDep, actor: ActorDep, resource: str | None = None) -> SourceList:
    """Scheduled sources with their next and last run."""
    found = [
        queries.source_public(item) for item in queries.sources(session, actor=actor, code=resource)
    ]
    return SourceList(data=found, count=len(found))


@router.post(
    "/resources/{code}/sources", response_model=SourcePublic, status_code=status.HTTP_201_CREATED
)
def register_source(
    code: str, body: SourceCreate, database: DatabaseDep, actor: ActorDep
) -> SourcePublic:
    with database.transaction() as session:
        source = service.register_source(session, actor=actor, code=code, data=body)
        return queries.source_public(source)


@router.delete("/sources/{source_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_source(source_id: IdPath, database: DatabaseDep, actor: ActorDep) -> None:
    with database.transaction() as session:
        service.remove_source(session, actor=actor, source_id=source_id)


@router.post("/sources/{source_id}/run", response_model=BatchPublic)
def run_source(source_id: IdPath, database: DatabaseDep, actor: ActorDep) -> BatchPublic:
    """Pull now, whatever the schedule; 409 while a worker is pulling it."""
    batch = service.run_source(database, source_id=source_id, actor=actor, force=True)
    if batch is None:
        raise Conflict(f"source {source_id} is being pulled by another worker")
    return queries.batch_public(batch)
