"""Loading region trees. A CSV with one bad row is rejected whole."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from shuzhi.core import audit
from shuzhi.core.errors import Message, ValidationFailed
from shuzhi.core.permissions import Actor, require
from shuzhi.regions.models import Region
from shuzhi.regions.rules import Level, code_problem, name_problem, parent_problem
from shuzhi.regions.schemas import RegionLoadResult

COLUMNS = ("code", "name", "level", "parent")


@dataclass(frozen=True)
class _Row:
    line: int
    code: str
    name: str
    level: Level
    parent: str | None


def builtin_csv(name: str = "zhejiang") -> Path:
    return Path(str(resources.files("shuzhi.regions") / "data" / f"{name}.csv"))


def _parse(text: str, source: str) -> list[_Row]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        return _rows(reader, source)
    except csv.Error as exc:
        # a field over the csv module's size limit, say; the raw reader knows the line
        line = reader.reader.line_num
        raise ValidationFailed(
            Message(
                "{source}:{line}: not valid CSV ({exc})", source=source, line=line, exc=str(exc)
            )
        ) from None


def _rows(reader: csv.DictReader[str], source: str) -> list[_Row]:
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValidationFailed(
            Message("{source}:1: missing column(s) {join}", source=source, join=", ".join(missing))
        )
    rows: list[_Row] = []
    seen: set[str] = set()
    for line, raw in enumerate(reader, start=2):
        code, name = (raw["code"] or "").strip(), (raw["name"] or "").strip()
        where = f"{source}:{line}"
        try:
            level = Level((raw["level"] or "").strip())
        except ValueError:
            raise ValidationFailed(
                Message(
                    "{where}: level {raw_item!r} is not one of {choices}",
                    where=where,
                    raw_item=raw["level"],
                    choices=Level.choices(),
                )
            ) from None
        problem = code_problem(code, level) or name_problem(code, name)
        if problem:
            raise ValidationFailed(Message("{where}: {problem}", where=where, problem=problem))
        if code in seen:
            raise ValidationFailed(
                Message("{where}: region {code} appears twice", where=where, code=code)
            )
        seen.add(code)
        rows.append(_Row(line, code, name, level, (raw["parent"] or "").strip() or None))
    return rows


def load_csv(
    session: Session, *, actor: Actor, text: str, source: str = "regions.csv"
) -> RegionLoadResult:
    """Create or update regions from CSV (code,name,level,parent); idempotent."""
    require(actor, "regions.manage", what=Message("regions"))
    rows = _parse(text, source)
    existing = {r.code: r for r in session.scalars(select(Region))}
    in_file = {row.code: row for row in rows}

    def level_of(code: str) -> Level:
        return in_file[code].level if code in in_file else Level(existing[code].level)

    for row in rows:
        where = f"{source}:{row.line}"
        if row.parent is None:
            if row.level is not Level.province:
                raise ValidationFailed(
                    Message(
                        "{where}: region {code} is a {level} without parent",
                        where=where,
                        code=row.code,
                        level=row.level,
                    )
                )
            continue
        if row.parent not in in_file and row.parent not in existing:
            raise ValidationFailed(
                Message(
                    "{where}: parent {parent} of {code} is unknown",
                    where=where,
                    parent=row.parent,
                    code=row.code,
                )
            )
        if level_of(row.parent).depth >= row.level.depth:
            raise ValidationFailed(
                Message(
                    "{where}: parent {parent} of {code} is not above a {level}",
                    where=where,
                    parent=row.parent,
                    code=row.code,
                    level=row.level,
                )
            )
        nesting = parent_problem(row.code, row.parent, level_of(row.parent))
        if nesting:
            raise ValidationFailed(Message("{where}: {nesting}", where=where, nesting=nesting))
        current = existing.get(row.code)
        if current is not None and current.parent_code != row.parent:
            has_children = session.scalar(
                select(Region.code).where(Region.parent_code == row.code).limit(1)
            )
            if has_children:
                raise ValidationFailed(
                    Message(
                        "{where}: region {code} has children and cannot move under {parent}",
                        where=where,
                        code=row.code,
                        parent=row.parent,
                    )
                )

    paths: dict[str, str] = {code: region.path for code, region in existing.items()}

    def path_of(code: str) -> str:
        if code in in_file:
            parent = in_file[code].parent
            return (path_of(parent) if parent else "/") + code + "/"
        return paths[code]

    created = updated = unchanged = 0
    for row in sorted(rows, key=lambda r: r.level.depth):
        path = path_of(row.code)
        values = {
            "name": row.name,
            "level": row.level.value,
            "parent_code": row.parent,
            "path": path,
        }
        region = existing.get(row.code)
        if region is None:
            region = Region(code=row.code, **values)
            session.add(region)
            session.flush()
            audit.record(
                session,
                actor=actor,
                action="region.create",
                object_type="region",
                object_id=row.code,
                object_repr=row.name,
                after=values,
            )
            created += 1
        elif any(getattr(region, key) != value for key, value in values.items()):
            before = audit.snapshot(region)
            for key, value in values.items():
                setattr(region, key, value)
            session.flush()
            audit.record(
                session,
                actor=actor,
                action="region.update",
                object_type="region",
                object_id=row.code,
                object_repr=row.name,
                before=before,
                after=audit.snapshot(region),
            )
            updated += 1
        else:
            unchanged += 1
    return RegionLoadResult(created=created, updated=updated, unchanged=unchanged)


def load_builtin(session: Session, *, actor: Actor, name: str = "zhejiang") -> RegionLoadResult:
    path = builtin_csv(name)
    if not path.is_file():
        shipped = sorted(p.stem for p in path.parent.glob("*.csv"))
        raise ValidationFailed(
            Message(
                "no shipped region tree {name!r}; shipped: {join}",
                name=name,
                join=", ".join(shipped),
            )
        )
    return load_csv(session, actor=actor, text=path.read_text(encoding="utf-8"), source=path.name)
