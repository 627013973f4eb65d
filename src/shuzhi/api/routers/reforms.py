"""The ledger of major reforms (重大改革"一本账"): the ledger now or at a past date, a
reform's page, applying YAML, check-ins, milestone steps and their evidence."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, File, Form, Query, UploadFile, status

from shuzhi.api import PREFIX
from shuzhi.api.deps import ActorDep, DatabaseDep, IdPath, SessionDep
from shuzhi.core.errors import ValidationFailed
from shuzhi.core.settings import get_settings
from shuzhi.loop import ledger, reforms
from shuzhi.loop.schemas import (
    ApplyReport,
    BatchSummary,
    CheckIn,
    EvidencePublic,
    MilestoneAction,
    MilestonePublic,
    ReformList,
    ReformPage,
    ReformPublic,
    ReformSpec,
    VersionPublic,
)

router = APIRouter(prefix=f"{PREFIX}/reforms", tags=["reforms"])


@router.get("", response_model=ReformList)
def list_reforms(
    session: SessionDep,
    actor: ActorDep,
    batch: str | None = Query(None, max_length=20, description="upgrading, implementing, planning"),
    system: str | None = Query(None, max_length=30),
    region: str | None = Query(None, max_length=12, description="this region and those under it"),
    q: str | None = Query(None, max_length=100, description="part of a code or name"),
    as_of: date | None = Query(None, description="the ledger as it stood at the end of this day"),
) -> ReformList:
    """The ledger by batch with each reform's progress and light, computed now; with
    ``as_of``, each reform as it stood at the end of that day (reforms created later are
    absent)."""
    return ledger.ledger(session, batch=batch, system=system, region=region, q=q, as_of=as_of)


@router.post("/apply", response_model=ApplyReport)
def apply_yaml(
    database: DatabaseDep,
    actor: ActorDep,
    document: Annotated[
        str, Body(media_type="application/yaml", description="a reforms YAML file")
    ],
    source: str = Query("request", max_length=200, description="a name for the document"),
) -> ApplyReport:
    """Create or update every reform of a YAML document (a ``reforms:`` list); all or
    nothing, and an unchanged reform gets no new version."""
    with database.transaction() as session:
        return reforms.apply_yaml(session, actor=actor, text=document, source=source)


@router.get("/batches", response_model=list[BatchSummary])
def batches(session: SessionDep, actor: ActorDep) -> list[BatchSummary]:
    """Each batch with its reforms' count, lights and mean progress (the cockpit home)."""
    return ledger.by_batch(session)


@router.get("/{code}", response_model=ReformPage)
def reform_page(code: str, session: SessionDep, actor: ActorDep) -> ReformPage:
    """A reform with its milestones and their evidence, key results against their targets,
    versions, and the problems on its key results' indicators in their regions."""
    return ledger.reform_page(session, code)


@router.put("/{code}", response_model=ReformPublic)
def put_reform(code: str, body: ReformSpec, database: DatabaseDep, actor: ActorDep) -> ReformPublic:
    """Create or update one reform from its spec."""
    if body.code != code:
        raise ValidationFailed(f"the body defines {body.code}, not {code}", field="code")
    with database.transaction() as session:
        reforms.apply_specs(session, actor=actor, specs=[body], source="request")
        return ledger.reform_page(session, code).reform


@router.post("/{code}/check-ins", response_model=VersionPublic, status_code=status.HTTP_201_CREATED)
def check_in(code: str, body: CheckIn, database: DatabaseDep, actor: ActorDep) -> VersionPublic:
    """A periodic update (动态更新) by the lead department: a version with the note."""
    with database.transaction() as session:
        return ledger.version_public(
            reforms.check_in(session, actor=actor, code=code, note=body.note)
        )


@router.post("/{code}/milestones/{milestone_id}/transitions", response_model=MilestonePublic)
def milestone_transition(
    code: str,
    milestone_id: IdPath,
    body: MilestoneAction,
    database: DatabaseDep,
    actor: ActorDep,
) -> MilestonePublic:
    """Submit a milestone (with evidence), verify it (someone other than the submitter), or
    send it back (with a comment)."""
    with database.transaction() as session:
        reforms.milestone_act(
            session, actor=actor, code=code, milestone_id=milestone_id, action=body
        )
        page = ledger.reform_page(session, code)
    return next(item for item in page.milestones if item.id == milestone_id)


@router.post(
    "/{code}/milestones/{milestone_id}/evidence",
    response_model=EvidencePublic,
    status_code=status.HTTP_201_CREATED,
)
def milestone_evidence(
    code: str,
    milestone_id: IdPath,
    database: DatabaseDep,
    actor: ActorDep,
    file: Annotated[UploadFile, File(description="the evidence file")],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> EvidencePublic:
    """Attach an evidence file to a milestone; it is kept under the data directory by its
    SHA-256 and downloaded from ``GET /api/v1/evidence/{id}``."""
    limit = get_settings().loop.evidence_max_mb * 1_000_000
    data = file.file.read(limit + 1)
    with database.transaction() as session:
        evidence = reforms.add_milestone_evidence(
            session,
            actor=actor,
            code=code,
            milestone_id=milestone_id,
            filename=file.filename or "evidence",
            content=data,
            content_type=file.content_type or "application/octet-stream",
            note=note,
        )
        return EvidencePublic.model_validate(evidence, from_attributes=True)
