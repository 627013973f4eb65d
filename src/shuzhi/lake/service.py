"""Lake use cases: ingest a batch, recover from dead batches, decide on personal-data flags.

A batch spans several short transactions around one long DuckDB run: the batch row is
written first (so a killed batch is found and marked failed), the snapshot is staged on
disk, and one transaction records the outcome before the current pointer moves. The
metadata store is the truth about which snapshot is current; the ``CURRENT`` file
follows it, and ``recover`` puts it back in line after a crash.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from shuzhi.catalog import queries as catalog_queries
from shuzhi.catalog.models import Resource
from shuzhi.core import audit, clock, events
from shuzhi.core.db import Database
from shuzhi.core.errors import Conflict, Message, NotFound, ShuzhiError, TooLarge, ValidationFailed
from shuzhi.core.permissions import SYSTEM, Actor, require
from shuzhi.core.plugins import Job, hookimpl
from shuzhi.core.settings import Settings, get_settings
from shuzhi.lake import queries
from shuzhi.lake.connectors import SourceSpec
from shuzhi.lake.engine import connect
from shuzhi.lake.models import Batch, Health, PiiFlag, Quality, Source
from shuzhi.lake.pipeline import PiiFinding, Pipeline
from shuzhi.lake.queries import LOADED, current_batch, field_specs, lake_of
from shuzhi.lake.rules import BatchState, Mode, backoff, next_run
from shuzhi.lake.schemas import QualityReport, SourceCreate
from shuzhi.lake.storage import Lake
from shuzhi.regions.models import Region

log = logging.getLogger(__name__)

SNAPSHOT_LANDED = "lake.snapshot_landed"
INTERRUPTED = "interrupted: the process running the batch ended before it finished"

Phase = Callable[[str, int], None]


def ingest(
    db: Database,
    *,
    actor: Actor,
    code: str,
    source: SourceSpec,
    mode: Mode = Mode.full,
    overrides: dict[str, str] | None = None,
    watermark: str | None = None,
    source_id: int | None = None,
    progress: Phase | None = None,
    settings: Settings | None = None,
) -> Batch:
    """Load one batch into ``code``; returns the batch (succeeded or unchanged).

    Bad input raises a ShuzhiError after the batch is recorded as failed; the previous
    snapshot stays current and nothing of the failed batch remains in the lake.
    """
    settings = settings or get_settings()
    lake = lake_of(settings)
    report = progress or (lambda phase, rows: None)
    with db.session() as session:
        resource = catalog_queries.get(session, actor=actor, code=code)
        require(
            actor,
            "lake.ingest",
            catalog_queries.scope_of(resource),
            what=Message("resource {code}", code=code),
        )
        if resource.state == "withdrawn":
            raise ValidationFailed(
                Message("resource {code} is withdrawn and takes no data", code=code), field="code"
            )
        if not resource.fields:
            raise ValidationFailed(
                Message("resource {code} declares no fields to load", code=code), field="code"
            )
        resource_id = resource.id
        fields = field_specs(resource)
        regions = list(session.scalars(select(Region.code)))
    with lake.locked(code):
        recover(db, lake=lake, code=code, settings=settings)
        with db.transaction() as session:
            batch = Batch(
                resource_id=resource_id,
                source_id=source_id,
                source=source.describe(),
                connector=source.kind or "",
                mode=mode.value,
                state=BatchState.running.value,
                fingerprint="",
                mapping={},
                actor=actor.name,
                runner=worker_id(),
                started_at=clock.now(),
            )
            session.add(batch)
            session.flush()
            batch_id = batch.id
        try:
            return _run(
                db,
                lake=lake,
                settings=settings,
                actor=actor,
                code=code,
                resource_id=resource_id,
                batch_id=batch_id,
                fields=fields,
                regions=regions,
                source=source,
                mode=mode,
                overrides=overrides or {},
                watermark=watermark,
                report=report,
            )
        except BaseException as exc:
            lake.clear_staging(code)
            shutil.rmtree(lake.temp_dir / f"batch-{batch_id}", ignore_errors=True)
            message = str(exc) if isinstance(exc, ShuzhiError) else f"{type(exc).__name__}: {exc}"
            if _fail(db, batch_id, message or type(exc).__name__):
                lake.quarantine_file(code, batch_id).unlink(missing_ok=True)
            raise


def ingest_upload(
    db: Database,
    *,
    actor: Actor,
    code: str,
    stream: BinaryIO,
    filename: str,
    settings: Settings | None = None,
    **options: Any,
) -> Batch:
    """Ingest a file sent over HTTP: kept on disk only for the batch, refused whole past
    the size limit before anything is read into the lake."""
    settings = settings or get_settings()
    path = save_upload(stream, filename=filename, settings=settings)
    try:
        spec = SourceSpec(
            location=str(path), label=f"upload:{path.name}", **options.pop("source_options", {})
        )
        return ingest(db, actor=actor, code=code, source=spec, settings=settings, **options)
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


def save_upload(stream: BinaryIO, *, filename: str, settings: Settings) -> Path:
    limit = settings.lake.upload_max_mb * 2**20
    name = _upload_name(filename)
    folder = lake_of(settings).temp_dir / f"upload-{uuid.uuid4().hex}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    size = 0
    try:
        with open(target, "wb") as out:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(
                        Message(
                            "{name} is over the upload limit of {upload_max_mb} MiB",
                            name=name,
                            upload_max_mb=settings.lake.upload_max_mb,
                        ),
                        field="file",
                    )
                out.write(chunk)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if size == 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise ValidationFailed(Message("{name} is empty", name=name), field="file")
    return target


def _upload_name(filename: str) -> str:
    """The sent name as a plain file name in the upload's own folder: no directory part,
    not ``..``, short enough for the file system, its suffix (which tells the format) kept."""
    name = Path((filename or "").replace("\x00", "")).name
    if name in ("", ".", ".."):
        return "upload"
    if len(name.encode()) > 200:
        suffix = Path(name).suffix if len(Path(name).suffix) <= 16 else ""
        stem = name[: len(name) - len(suffix)].encode()[:150].decode(errors="ignore")
        name = stem + suffix
    return name


def _fail(db: Database, batch_id: int, message: str) -> bool:
    """Mark a running batch failed; False if it had already ended (it stands as it is)."""
    with db.transaction() as session:
        batch = session.get(Batch, batch_id)
        if batch is not None and batch.state == BatchState.running.value:
            batch.state = BatchState.failed.value
            batch.error = message[:2000]
            batch.finished_at = clock.now()
            return True
    return False


def _run(
    db: Database,
    *,
    lake: Lake,
    settings: Settings,
    actor: Actor,
    code: str,
    resource_id: int,
    batch_id: int,
    fields: list[dict[str, Any]],
    regions: list[str],
    source: SourceSpec,
    mode: Mode,
    overrides: dict[str, str],
    watermark: str | None,
    report: Phase,
) -> Batch:
    work = lake.temp_dir / f"batch-{batch_id}"
    source = SourceSpec(**{**source.__dict__, "temp_dir": work})
    con = connect(
        temp_dir=work, memory_limit=settings.lake.memory_limit, threads=settings.lake.threads
    )
    try:
        pipeline = Pipeline(
            con,
            fields=fields,
            mode=mode,
            overrides=overrides,
            watermark=watermark,
            regions=regions,
        )
        staged = [0]

        def rows(count: int) -> None:
            staged[0] += count
            report("reading", staged[0])

        report("reading", 0)
        pipeline.stage(source, rows)
        report("checking", staged[0])
        read = pipeline.validate()
        with db.session() as session:
            previous = current_batch(session, resource_id)
            previous_snapshot = previous.snapshot if previous else None
            previous_rows = previous.snapshot_rows if previous else None
            previous_print = previous.fingerprint if previous else None
            previous_id = previous.id if previous else None
        fingerprint = pipeline.fingerprint(salt=code)
        if previous_print == fingerprint and lake.current(code) == previous_snapshot:
            return _unchanged(db, batch_id, previous_id, fingerprint, pipeline)
        findings = pipeline.scan_pii()
        report("writing", read)
        snapshot = f"{clock.now():%Y%m%dT%H%M%S}-b{batch_id}"
        staging = lake.staging_dir(code, snapshot)
        previous_file = lake.snapshot_file(code, previous_snapshot) if previous_snapshot else None
        counts, quality = pipeline.write(
            snapshot=staging / "data.parquet",
            quarantine=staging / "quarantine.parquet",
            previous=previous_file if mode is Mode.incremental else None,
            previous_rows=previous_rows,
        )
        if not counts.balanced():
            raise RuntimeError(
                f"batch {batch_id} does not add up: read {counts.rows_read}, loaded "
                f"{counts.rows_loaded}, quarantined {counts.rows_quarantined}, duplicates "
                f"{counts.duplicates}"
            )
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)
    quarantine = staging / "quarantine.parquet"
    if quarantine.exists():
        target = lake.quarantine_file(code, batch_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        quarantine.replace(target)
    # the lake describes itself: a reader without the metadata store (Spark on shared
    # storage) still knows where each snapshot came from
    lake.write_lineage(
        code,
        snapshot,
        {
            "resource": code,
            "snapshot": snapshot,
            "batch_id": batch_id,
            "source": source.describe(),
            "connector": pipeline.connector,
            "mode": mode.value,
            "based_on": previous_snapshot if mode is Mode.incremental else None,
            "fingerprint": fingerprint,
            "rows": counts.snapshot_rows,
            "written_at": clock.now().isoformat(),
        },
    )
    # in place but not current: a crash from here on leaves the old snapshot current,
    # and recover() removes this one because no loaded batch names it
    lake.publish_staged(code, snapshot)
    with db.transaction() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        batch.connector = pipeline.connector
        batch.fingerprint = fingerprint
        batch.mapping = pipeline.mapping
        batch.rows_read = counts.rows_read
        batch.rows_loaded = counts.rows_loaded
        batch.rows_quarantined = counts.rows_quarantined
        batch.duplicates = counts.duplicates
        batch.rule_counts = counts.rule_counts
        batch.pii_findings = [finding.__dict__ for finding in findings]
        batch.snapshot = snapshot
        batch.snapshot_rows = counts.snapshot_rows
        batch.state = BatchState.succeeded.value
        batch.finished_at = clock.now()
        session.add(
            Quality(
                resource_id=resource_id,
                batch_id=batch_id,
                measured_at=batch.finished_at,
                rows=quality.rows,
                completeness=quality.completeness,
                field_completeness=quality.field_completeness,
                validity=quality.validity,
                uniqueness=quality.uniqueness,
                volume_change=quality.volume_change,
            )
        )
        _record_findings(session, resource_id, batch_id, findings, fields)
        audit.record(
            session,
            actor=actor,
            action="lake.ingest",
            object_type="lake_batch",
            object_id=batch_id,
            object_repr=f"{code} {snapshot}",
            after=summary(batch),
        )
        events.emit_after_commit(
            session, SNAPSHOT_LANDED, code=code, snapshot=snapshot, batch_id=batch_id
        )
    lake.point(code, snapshot)
    _prune(db, lake, code, resource_id, settings.lake.snapshots_kept)
    _keep_health(db)
    with db.session() as session:
        done = session.get(Batch, batch_id)
        assert done is not None
        return done


def _keep_health(db: Database) -> None:
    """Today's coverage roll-up follows every batch; the batch stands if this fails."""
    try:
        with db.transaction() as session:
            record_health(session, queries.report(session, actor=SYSTEM))
    except Exception:
        log.exception("could not record the aggregation health after a batch")


def _unchanged(
    db: Database, batch_id: int, previous_id: int | None, fingerprint: str, pipeline: Pipeline
) -> Batch:
    with db.transaction() as session:
        batch = session.get(Batch, batch_id)
        previous = session.get(Batch, previous_id)
        assert batch is not None and previous is not None
        batch.connector = pipeline.connector
        batch.fingerprint = fingerprint
        batch.mapping = pipeline.mapping
        for name in (
            "rows_read",
            "rows_loaded",
            "rows_quarantined",
            "duplicates",
            "rule_counts",
            "snapshot",
            "snapshot_rows",
        ):
            setattr(batch, name, getattr(previous, name))
        batch.state = BatchState.unchanged.value
        batch.finished_at = clock.now()
        session.flush()
    with db.session() as session:
        done = session.get(Batch, batch_id)
        assert done is not None
        return done


def summary(batch: Batch) -> dict[str, Any]:
    return {
        "batch_id": batch.id,
        "state": batch.state,
        "mode": batch.mode,
        "rows_read": batch.rows_read,
        "rows_loaded": batch.rows_loaded,
        "rows_quarantined": batch.rows_quarantined,
        "duplicates": batch.duplicates,
        "rule_counts": dict(batch.rule_counts or {}),
        "snapshot": batch.snapshot,
    }


def _record_findings(
    session: Session,
    resource_id: int,
    batch_id: int,
    findings: list[PiiFinding],
    fields: list[dict[str, Any]],
) -> None:
    """Flags follow the latest scan; a reviewed flag stays reviewed while the field's kind
    is unchanged, and a field reclassified as personal drops its flag."""
    existing = {
        flag.field: flag
        for flag in session.scalars(select(PiiFlag).where(PiiFlag.resource_id == resource_id))
    }
    declared_none = {item["name"] for item in fields if item.get("pii", "none") == "none"}
    found = {finding.field: finding for finding in findings}
    for name, flag in existing.items():
        if name not in declared_none or (name not in found and not flag.reviewed):
            session.delete(flag)
    for name, finding in found.items():
        flag = existing.get(name)
        if flag is None or flag not in session:
            session.add(
                PiiFlag(
                    resource_id=resource_id,
                    field=name,
                    kind=finding.kind,
                    share=finding.share,
                    example=finding.example,
                    batch_id=batch_id,
                    flagged_at=clock.now(),
                )
            )
        else:
            flag.kind = finding.kind
            flag.share = finding.share
            flag.example = finding.example
            flag.batch_id = batch_id


def _prune(db: Database, lake: Lake, code: str, resource_id: int, kept: int) -> None:
    """Keep the last ``kept`` snapshots, and the quarantines of the batches since the
    oldest of them: refused rows hold personal data, and are kept no longer than the data."""
    with db.session() as session:
        kept_batches = list(
            session.execute(
                select(Batch.id, Batch.snapshot)
                .where(
                    Batch.resource_id == resource_id,
                    Batch.state == BatchState.succeeded.value,
                )
                .order_by(Batch.id.desc())
                .limit(kept)
            )
        )
    lake.prune(code, [name for _, name in kept_batches if name])
    if len(kept_batches) == kept:
        lake.prune_quarantine(code, older_than=min(batch_id for batch_id, _ in kept_batches))


def _runner_gone(batch: Batch, timeout: timedelta) -> bool:
    host, _, _pid = (batch.runner or "").rpartition(":")
    if not host or host == socket.gethostname():
        return True
    return batch.started_at < clock.now() - timeout


def recover(db: Database, *, lake: Lake, code: str, settings: Settings | None = None) -> int:
    """With the resource's batch lock held: fail batches whose process died, put the
    current pointer back on the last loaded snapshot, clear what dead batches left."""
    with db.transaction() as session:
        resource_id = session.scalar(select(Resource.id).where(Resource.code == code))
        if resource_id is None:
            raise NotFound(Message("no catalog resource {code!r}", code=code), field="code")
        dead = list(
            session.scalars(
                select(Batch).where(
                    Batch.resource_id == resource_id,
                    Batch.state == BatchState.running.value,
                )
            )
        )
        # with the resource's lock held, a batch run on this host is dead; one run on
        # another host is taken for dead only after the batch timeout
        timeout = timedelta(hours=(settings or get_settings()).lake.batch_timeout_hours)
        dead = [batch for batch in dead if _runner_gone(batch, timeout)]
        for batch in dead:
            batch.state = BatchState.failed.value
            batch.error = INTERRUPTED
            batch.finished_at = clock.now()
        loaded = current_batch(session, resource_id)
        snapshot = loaded.snapshot if loaded else None
        named = set(
            session.scalars(
                select(Batch.snapshot).where(
                    Batch.resource_id == resource_id,
                    Batch.state == BatchState.succeeded.value,
                )
            )
        )
    if snapshot is not None and not lake.snapshot_file(code, snapshot).exists():
        snapshot = None  # the files were removed by hand; say so rather than point at nothing
    if lake.current(code) != snapshot:
        lake.point(code, snapshot)
    orphans = [name for name in lake.snapshots(code) if name not in named]
    for name in orphans:
        shutil.rmtree(lake.snapshot_dir(code, name), ignore_errors=True)
    lake.clear_staging(code)
    for batch in dead:
        shutil.rmtree(lake.temp_dir / f"batch-{batch.id}", ignore_errors=True)
        lake.quarantine_file(code, batch.id).unlink(missing_ok=True)
    return len(dead)


def recover_all(db: Database, *, settings: Settings | None = None) -> int:
    """At start-up: recover every resource that has a batch marked running, or a current
    pointer behind its last loaded batch (a process that died after recording the batch),
    and no live process holding its lock."""
    lake = lake_of(settings)
    with db.session() as session:
        running = set(
            session.scalars(
                select(Resource.code)
                .join(Batch, Batch.resource_id == Resource.id)
                .where(Batch.state == BatchState.running.value)
                .distinct()
            )
        )
        newest = (
            select(func.max(Batch.id)).where(Batch.state.in_(LOADED)).group_by(Batch.resource_id)
        )
        behind = {
            code
            for code, snapshot in session.execute(
                select(Resource.code, Batch.snapshot)
                .join(Batch, Batch.resource_id == Resource.id)
                .where(Batch.id.in_(newest))
            )
            if lake.current(code) != snapshot
        }
    codes = sorted(running | behind)
    recovered = 0
    for code in codes:
        if lake.is_locked(code):
            continue
        try:
            with lake.locked(code):
                recovered += recover(db, lake=lake, code=code, settings=settings)
        except ShuzhiError:
            continue
    return recovered


def review_pii(db: Database, *, actor: Actor, code: str, field: str) -> PiiFlag:
    """The provider looked at a flagged field and keeps its classification."""
    with db.transaction() as session:
        resource = catalog_queries.get(session, actor=actor, code=code)
        require(
            actor,
            "lake.ingest",
            catalog_queries.scope_of(resource),
            what=Message("resource {code}", code=code),
        )
        flag = session.scalar(
            select(PiiFlag).where(PiiFlag.resource_id == resource.id, PiiFlag.field == field)
        )
        if flag is None:
            raise NotFound(
                Message("field {field} of {code} is not flagged", field=field, code=code),
                field="field",
            )
        before = audit.snapshot(flag)
        flag.reviewed = True
        flag.reviewed_by = actor.name
        audit.record(
            session,
            actor=actor,
            action="lake.review_pii",
            object_type="lake_pii_flag",
            object_id=flag.id,
            object_repr=f"{code}.{field}",
            before=before,
            after=audit.snapshot(flag),
        )
        session.flush()
        return flag


def record_health(session: Session, found: QualityReport) -> int:
    """Keep today's roll-ups (overall, per provider, per system) for the coverage trend;
    a later report on the same day replaces the earlier one."""
    day = found.generated_at.date().isoformat()
    scopes = [("all", found.overall)]
    scopes += [("provider", item) for item in found.by_provider]
    scopes += [("system", item) for item in found.by_system]
    existing = {
        (row.scope, row.key): row
        for row in session.scalars(select(Health).where(Health.day == day))
    }
    for scope, item in scopes:
        key = "all" if scope == "all" else item.key
        row = existing.get((scope, key))
        if row is None:
            session.add(
                Health(
                    day=day,
                    scope=scope,
                    key=key,
                    published=item.published,
                    current=item.current,
                    lights=item.lights,
                )
            )
        else:
            row.published = item.published
            row.current = item.current
            row.lights = item.lights
    session.flush()
    return len(scopes)


# ---------------------------------------------------------------------- scheduled pulls


FILE_DATABASES = ("sqlite", "duckdb")


def _check_location(location: str, settings: Settings) -> None:
    """A file source must sit under the inbox or a configured source root: registering a
    source must not become a way to read any file the server can."""
    if "://" in location:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(location)
        except ArgumentError:
            raise ValidationFailed(
                Message("{location!r} is not a database URL", location=location), field="location"
            ) from None
        # a file-based database is a file like any other: the same roots apply
        if url.get_backend_name() not in FILE_DATABASES or url.database in (None, "", ":memory:"):
            return
        location = url.database
    try:
        path = Path(location).resolve()
    except (ValueError, OSError) as exc:
        raise ValidationFailed(
            Message("{location!r} is not a usable path: {exc}", location=location, exc=str(exc)),
            field="location",
        ) from None
    roots = [settings.inbox_dir, *(Path(root).resolve() for root in settings.lake.source_roots)]
    if not any(path.is_relative_to(root) for root in roots):
        raise ValidationFailed(
            Message(
                "{location} is outside the source directories ({join})",
                location=location,
                join=", ".join(map(str, roots)),
            ),
            field="location",
        )


def source_options(data: SourceCreate) -> dict[str, Any]:
    """How to read the source: what differs from the defaults, nothing more."""
    options = data.model_dump(exclude={"name", "location", "schedule", "mode"})
    defaults = SourceCreate.model_construct().model_dump(
        exclude={"name", "location", "schedule", "mode"}
    )
    return {key: value for key, value in options.items() if value != defaults.get(key)}


def register_source(
    session: Session,
    *,
    actor: Actor,
    code: str,
    data: SourceCreate,
    settings: Settings | None = None,
) -> Source:
    settings = settings or get_settings()
    resource = catalog_queries.get(session, actor=actor, code=code)
    require(
        actor,
        "lake.ingest",
        catalog_queries.scope_of(resource),
        what=Message("resource {code}", code=code),
    )
    _check_location(data.location, settings)
    now = clock.now()
    try:
        upcoming = next_run(
            data.schedule, resource.update_cycle, now, settings.lake.schedule_timezone
        )
    except ValueError as exc:  # the rule's Message, said in the reader's language
        raise ValidationFailed(exc.args[0], field="schedule") from None
    source = Source(
        resource_id=resource.id,
        name=data.name,
        location=data.location,
        options=source_options(data),
        mode=data.mode,
        schedule=data.schedule,
        enabled=True,
        next_run_at=upcoming,
        created_by=actor.name,
        created_at=now,
    )
    session.add(source)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="lake.source.create",
        object_type="lake_source",
        object_id=source.id,
        object_repr=f"{code} {data.name}",
        after=_source_view(source),
    )
    return source


def _source_view(source: Source) -> dict[str, Any]:
    view = audit.snapshot(source)
    # a database URL may hold a password; the change log never does
    view["location"] = SourceSpec(location=source.location).describe()
    return view


def _own_source(session: Session, *, actor: Actor, source_id: int) -> Source:
    source = session.get(Source, source_id)
    if source is None:
        raise NotFound(Message("no source {source_id}", source_id=source_id), field="source")
    resource = catalog_queries.get(session, actor=actor, code=source.resource.code)
    require(
        actor,
        "lake.ingest",
        catalog_queries.scope_of(resource),
        what=Message("source {source_id}", source_id=source_id),
    )
    return source


def remove_source(session: Session, *, actor: Actor, source_id: int) -> None:
    source = _own_source(session, actor=actor, source_id=source_id)
    audit.record(
        session,
        actor=actor,
        action="lake.source.delete",
        object_type="lake_source",
        object_id=source.id,
        object_repr=f"{source.resource.code} {source.name}",
        before=_source_view(source),
    )
    session.delete(source)


def spec_of(source: Source) -> tuple[SourceSpec, dict[str, str], str | None]:
    options = dict(source.options or {})
    overrides = options.pop("map", {}) or {}
    watermark = options.pop("watermark", None)
    kind = options.pop("format", None)
    return SourceSpec(location=source.location, kind=kind, **options), overrides, watermark


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claim(db: Database, source_id: int, worker: str, now: datetime, lease: timedelta) -> bool:
    """Take a due source for this worker in one UPDATE, so two workers never both run it."""
    with db.transaction() as session:
        claimed = session.execute(
            update(Source)
            .where(
                Source.id == source_id,
                Source.enabled.is_(True),
                Source.next_run_at <= now,
                or_(Source.claimed_by.is_(None), Source.claimed_at < now - lease),
            )
            .values(claimed_by=worker, claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        return claimed.rowcount == 1


def release_dead_claims(db: Database) -> int:
    """At start-up: claims of worker processes on this host that no longer exist."""
    host = socket.gethostname()
    released = 0
    with db.transaction() as session:
        for source in session.scalars(select(Source).where(Source.claimed_by.is_not(None))):
            owner_host, _, pid = (source.claimed_by or "").rpartition(":")
            if owner_host == host and pid.isdigit() and not _alive(int(pid)):
                source.claimed_by = None
                source.claimed_at = None
                released += 1
    return released


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_source(
    db: Database,
    *,
    source_id: int,
    actor: Actor = SYSTEM,
    worker: str | None = None,
    force: bool = False,
    settings: Settings | None = None,
) -> Batch | None:
    """Run one pull now (``force``) or if due; a batch like any other, retried with backoff
    when it fails. Returns the batch, or None if another worker has it."""
    settings = settings or get_settings()
    worker = worker or worker_id()
    now = clock.now()
    lease = timedelta(minutes=settings.lake.pull_lease_minutes)
    with db.session() as session:
        source = _own_source(session, actor=actor, source_id=source_id)
        code = source.resource.code
        update_cycle = source.resource.update_cycle
        spec, overrides, watermark = spec_of(source)
        mode = Mode(source.mode)
        schedule = source.schedule
    if force:
        with db.transaction() as session:
            held = session.get(Source, source_id)
            if (
                held is not None
                and held.claimed_by
                and held.claimed_at
                and held.claimed_at > now - lease
            ):
                raise Conflict(
                    Message(
                        "source {source_id} is running on {claimed_by}",
                        source_id=source_id,
                        claimed_by=held.claimed_by,
                    )
                )
            if held is not None:
                held.next_run_at = min(held.next_run_at or now, now)
    if not _claim(db, source_id, worker, now, lease):
        return None
    batch: Batch | None = None
    error: str | None = None
    busy: Conflict | None = None
    try:
        # again at each pull: a file in the inbox may have become a link to one elsewhere
        _check_location(spec.location, settings)
        batch = ingest(
            db,
            actor=actor,
            code=code,
            source=spec,
            mode=mode,
            overrides=overrides,
            watermark=watermark,
            source_id=source_id,
            settings=settings,
        )
    except Conflict as exc:
        busy = exc  # another batch of the resource is running: not a failure of the pull
    except ShuzhiError as exc:
        error = exc.detail
    except Exception as exc:  # a pull must not take the worker down; it is logged and retried
        log.exception("pull of source %s failed", source_id)
        error = f"{type(exc).__name__}: {exc}"
    finished = clock.now()
    with db.transaction() as session:
        source = session.get(Source, source_id)
        # removed meanwhile, or its claim lapsed and another worker holds it now
        if source is not None and source.claimed_by == worker:
            source.claimed_by = None
            source.claimed_at = None
            if busy is None:
                _record_pull(source, batch, error, finished, schedule, update_cycle, settings)
    if busy is not None:
        if force:
            raise busy
        return None
    if error is not None and force:
        raise ValidationFailed(error, field="source")
    return batch


def _record_pull(
    source: Source,
    batch: Batch | None,
    error: str | None,
    finished: datetime,
    schedule: str,
    update_cycle: str,
    settings: Settings,
) -> None:
    """The outcome of a pull on its source: the next run, or a retry after a backoff."""
    source.last_run_at = finished
    if error is None:
        source.attempts = 0
        source.last_batch_id = batch.id if batch else None
        source.next_run_at, source.last_error = _upcoming(
            schedule, update_cycle, finished, settings
        )
    else:
        source.attempts += 1
        source.last_error = error[:2000]
        if source.attempts > settings.lake.pull_retries:
            source.attempts = 0
            source.next_run_at, unscheduled = _upcoming(schedule, update_cycle, finished, settings)
            source.last_error = unscheduled or source.last_error
        else:
            source.next_run_at = finished + backoff(source.attempts)


def _upcoming(
    schedule: str, update_cycle: str, after: datetime, settings: Settings
) -> tuple[datetime | None, str | None]:
    """The next run, or none and why: the resource's update cycle may have changed since
    the source was registered to follow it, and the claim must be released all the same."""
    try:
        return next_run(schedule, update_cycle, after, settings.lake.schedule_timezone), None
    except ValueError as exc:
        return None, str(exc)


def run_due_pulls(db: Database, worker: str) -> int:
    """The worker's job: every due source, one at a time; returns how many ran."""
    now = clock.now()
    with db.session() as session:
        due = list(
            session.scalars(
                select(Source.id)
                .where(Source.enabled.is_(True), Source.next_run_at <= now)
                .order_by(Source.next_run_at)
            )
        )
    ran = 0
    for source_id in due:
        try:
            if run_source(db, source_id=source_id, worker=worker) is not None:
                ran += 1
        except ShuzhiError as exc:
            log.warning("pull of source %s skipped: %s", source_id, exc.detail)
    return ran


@hookimpl
def shuzhi_jobs() -> list[Job]:
    return [Job("lake.pulls", run_due_pulls)]
