"""Reads over the region tree."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from shuzhi.core.errors import Message, NotFound
from shuzhi.regions.models import Region
from shuzhi.regions.schemas import RegionNode


def get(session: Session, code: str) -> Region:
    region = session.get(Region, code)
    if region is None:
        raise NotFound(Message("unknown region code {code!r}", code=code), field="region")
    return region


def ancestors(session: Session, code: str) -> list[Region]:
    """From the root down to, and not including, the region itself."""
    region = get(session, code)
    codes = region.path.strip("/").split("/")[:-1]
    found = {r.code: r for r in session.scalars(select(Region).where(Region.code.in_(codes)))}
    return [found[c] for c in codes]


def subtree(session: Session, code: str) -> list[Region]:
    """The region and every region under it, ordered by path."""
    region = get(session, code)
    return list(
        session.scalars(
            select(Region).where(Region.path.startswith(region.path)).order_by(Region.path)
        )
    )


def subtree_codes(session: Session, code: str) -> frozenset[str]:
    region = get(session, code)
    return frozenset(
        session.scalars(select(Region.code).where(Region.path.startswith(region.path)))
    )


def roots(session: Session) -> list[Region]:
    return list(session.scalars(select(Region).where(Region.parent_code.is_(None))))


def _matching(
    stmt: Select[Any], *, level: str | None, parent: str | None, q: str | None
) -> Select[Any]:
    if level:
        stmt = stmt.where(Region.level == level)
    if parent:
        stmt = stmt.where(Region.parent_code == parent)
    if q:
        # autoescape: % and _ in a search are the characters themselves, not wildcards
        stmt = stmt.where(
            Region.name.contains(q, autoescape=True) | Region.code.startswith(q, autoescape=True)
        )
    return stmt


def count(
    session: Session,
    *,
    level: str | None = None,
    parent: str | None = None,
    q: str | None = None,
) -> int:
    """How many regions match (all of them, without filters)."""
    stmt = _matching(select(func.count()).select_from(Region), level=level, parent=parent, q=q)
    return session.scalar(stmt) or 0


def tree(session: Session, root: str | None = None) -> list[RegionNode]:
    """The nested tree under ``root`` (or every root)."""
    tops = [get(session, root)] if root else roots(session)
    result: list[RegionNode] = []
    for top in tops:
        nodes = subtree(session, top.code)
        by_code = {node.code: RegionNode.model_validate(node) for node in nodes}
        for node in nodes:
            if node.code != top.code and node.parent_code in by_code:
                by_code[node.parent_code].children.append(by_code[node.code])
        result.append(by_code[top.code])
    return result


def search(
    session: Session,
    *,
    level: str | None = None,
    parent: str | None = None,
    q: str | None = None,
    limit: int = 500,
    offset: int = 0,
) -> tuple[list[Region], int]:
    """A page of the matching regions in tree order, and how many match in all."""
    stmt = _matching(select(Region), level=level, parent=parent, q=q)
    found = list(session.scalars(stmt.order_by(Region.path).limit(limit).offset(offset)))
    return found, count(session, level=level, parent=parent, q=q)
