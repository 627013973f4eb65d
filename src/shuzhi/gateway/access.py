"""What a gateway call needs to decide access, read once per process and kept while the
access stamp (``core.stamps.ACCESS``) is unchanged.

Credentials, consumers, grants, catalog resources with their fields and regions all raise
the stamp when they change. A call decides with what this process knows at stamp *n*,
and its access-log transaction reads the stamp again under the writer lock: if anything
changed since *n*, nothing is written or answered, the process forgets what it knew, and
the call is decided again. So a revoked key, a narrowed grant or a moved region takes
effect for the next call to commit, on every worker, exactly as if nothing were kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shuzhi.catalog.models import Resource, ResourceField
from shuzhi.core import stamps
from shuzhi.core.db import Database
from shuzhi.core.dialect import Driver
from shuzhi.core.errors import NotFound
from shuzhi.core.settings import Settings
from shuzhi.gateway.models import Application, Consumer, Credential, Grant
from shuzhi.gateway.service import derive_secret
from shuzhi.regions.models import Region

STAMP_SQL = f"SELECT value FROM stamp WHERE name = '{stamps.ACCESS}'"


@dataclass(frozen=True)
class CredentialView:
    id: int
    access_key: str
    consumer_id: int
    consumer_code: str
    consumer_active: bool
    expires_at: datetime | None
    revoked_at: datetime | None
    secret: str


@dataclass(frozen=True)
class FieldView:
    name: str
    title: str
    type: str
    pii: str
    primary_key: bool
    format: str | None


@dataclass(frozen=True)
class ResourceView:
    id: int
    code: str
    state: str
    sharing: str
    grade: str
    region_code: str
    fields: tuple[FieldView, ...]


@dataclass(frozen=True)
class GrantView:
    id: int
    fields: dict[str, str]
    rights: list[str]
    region_code: str
    valid_from: date
    valid_until: date
    state: str
    requests_per_second: int
    rows_per_day: int
    # personal fields the provider approved in clear (the application's, as decided)
    approved_clear: frozenset[str] = frozenset()


@dataclass
class Known:
    """One process's reading of the access metadata at one stamp."""

    stamp: int
    where: str
    credentials: dict[str, CredentialView | None] = field(default_factory=dict)
    resources: dict[str, ResourceView | None] = field(default_factory=dict)
    grants: dict[tuple[int, int], GrantView | None] = field(default_factory=dict)
    paths: dict[str, str | None] = field(default_factory=dict)
    subtrees: dict[str, frozenset[str]] = field(default_factory=dict)
    keys: dict[Any, bytes] = field(default_factory=dict)
    # grant id → its counters as the last call this process committed saw them:
    # (second window, requests in it, day window, rows in it)
    usage: dict[int, tuple[str, int, str, int]] = field(default_factory=dict)


def _cleared(modes: dict[str, str]) -> frozenset[str]:
    """The fields a grant gives in clear: an approval in clear that the decision took back
    is no approval."""
    return frozenset(name for name, mode in modes.items() if mode == "clear")


# per database (tests and tools open several in one process)
_known: dict[str, Known] = {}
_lock = threading.Lock()
# a process forgets everything when it knows this many credentials or resources
MOST = 10_000


def known(db: Database, session: Callable[[], Session]) -> Known:
    """What this process knows of ``db``, or a fresh start at the stamp read now through
    ``session`` (first, so that everything read into it afterwards through the same
    session is at least as new as the stamp)."""
    current = _known.get(db.url)
    if current is not None:
        return current
    with _lock:
        if db.url not in _known:
            _known[db.url] = Known(stamps.read(session(), stamps.ACCESS), db.url)
        return _known[db.url]


def forget(stale: Known) -> None:
    with _lock:
        if _known.get(stale.where) is stale:
            del _known[stale.where]


class Changed(Exception):
    """The access stamp moved since what a call decided with (the argument) was read."""


def same(stamp: int | None, seen: Known) -> bool:
    """Whether a stamp read now is the one ``seen`` was read at."""
    return (stamp or 0) == seen.stamp


def unchanged(driver: Driver, seen: Known) -> bool:
    row = driver.execute(STAMP_SQL).fetchone()
    return same(row[0] if row else None, seen)


class Access:
    """A call's window on what is known, reading what is not yet through a session
    opened when first needed. ``session`` is also there for what an operation reads that
    is not kept (a consumer's own applications, a service)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        # what is read afresh on every call (the limits' counters) is read through it
        self.db = db
        self.settings = settings
        self._session: Session | None = None
        self.known = known(db, lambda: self.session)

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self.db.session()
        return self._session

    def __enter__(self) -> Access:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._session is not None:
            self._session.close()

    def confirm(self) -> None:
        """Before an effect that cannot be taken back (a service call going upstream):
        raise ``Changed`` if the rules moved since they were read."""
        with self.db.driver() as driver:
            if not unchanged(driver, self.known):
                raise Changed(self.known)

    def _full(self) -> None:
        if len(self.known.credentials) + len(self.known.resources) > MOST:
            forget(self.known)

    def credential(self, access_key: str) -> CredentialView | None:
        found = self.known.credentials.get(access_key, ...)
        if found is not ...:
            return found
        row = self.session.execute(
            select(
                Credential.id,
                Credential.access_key,
                Credential.salt,
                Credential.consumer_id,
                Credential.expires_at,
                Credential.revoked_at,
                Consumer.code,
                Consumer.active,
            )
            .join(Consumer, Consumer.id == Credential.consumer_id)
            .where(Credential.access_key == access_key)
        ).first()
        view = (
            None
            if row is None
            else CredentialView(
                id=row.id,
                access_key=row.access_key,
                consumer_id=row.consumer_id,
                consumer_code=row.code,
                consumer_active=row.active,
                expires_at=row.expires_at,
                revoked_at=row.revoked_at,
                secret=derive_secret(
                    self.settings.secret(), access_key=row.access_key, salt=row.salt
                ),
            )
        )
        self._full()
        self.known.credentials[access_key] = view
        return view

    def resource(self, code: str) -> ResourceView | None:
        found = self.known.resources.get(code, ...)
        if found is not ...:
            return found
        row = self.session.execute(
            select(
                Resource.id,
                Resource.state,
                Resource.sharing,
                Resource.grade,
                Resource.region_code,
            ).where(Resource.code == code)
        ).first()
        view = None
        if row is not None:
            fields = tuple(
                FieldView(*item)
                for item in self.session.execute(
                    select(
                        ResourceField.name,
                        ResourceField.title,
                        ResourceField.type,
                        ResourceField.pii,
                        ResourceField.primary_key,
                        ResourceField.format,
                    )
                    .where(ResourceField.resource_id == row.id)
                    .order_by(ResourceField.position)
                )
            )
            view = ResourceView(
                row.id, code, row.state, row.sharing, row.grade, row.region_code, fields
            )
        self._full()
        self.known.resources[code] = view
        return view

    def grant(self, consumer_id: int, resource_id: int) -> GrantView | None:
        """The consumer's newest grant on the resource, in whatever state."""
        key = (consumer_id, resource_id)
        found = self.known.grants.get(key, ...)
        if found is not ...:
            return found
        row = self.session.execute(
            select(
                Grant.id,
                Grant.fields,
                Grant.rights,
                Grant.region_code,
                Grant.valid_from,
                Grant.valid_until,
                Grant.state,
                Grant.requests_per_second,
                Grant.rows_per_day,
                Application.clear_fields,
            )
            .join(Application, Application.id == Grant.application_id)
            .where(Grant.consumer_id == consumer_id, Grant.resource_id == resource_id)
            .order_by(Grant.id.desc())
            .limit(1)
        ).first()
        view = (
            None
            if row is None
            else GrantView(*row[:-1], approved_clear=frozenset(row[-1] or ()) & _cleared(row[1]))
        )
        self.known.grants[key] = view
        return view

    def region_path(self, code: str) -> str | None:
        found = self.known.paths.get(code, ...)
        if found is ...:
            found = self.session.scalar(select(Region.path).where(Region.code == code))
            self.known.paths[code] = found
        return found

    def subtree(self, code: str) -> frozenset[str]:
        """The codes of a region and every region below it."""
        found = self.known.subtrees.get(code)
        if found is None:
            path = self.region_path(code)
            if path is None:
                raise NotFound(f"no region {code}")
            found = frozenset(
                self.session.scalars(select(Region.code).where(Region.path.startswith(path)))
            )
            self.known.subtrees[code] = found
        return found

    def key(self, name: Any, make: Any) -> bytes:
        """A key derived from the platform secret, made once per process."""
        found = self.known.keys.get(name)
        if found is None:
            found = self.known.keys[name] = make()
        return found
