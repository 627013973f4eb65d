"""The access log as a hash chain.

Each entry's ``hash`` is the SHA-256 of the previous entry's hash and the entry's own
canonical JSON. Appending locks the one chain-head row, so entries get consecutive
sequence numbers in commit order even with several server workers; ``verify`` walks the
chain and names the first entry that does not match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shuzhi.core.dialect import Driver
from shuzhi.core.errors import ConfigurationError
from shuzhi.gateway.models import AccessLog, ChainHead

GENESIS = "0" * 64

# the columns an entry's hash covers: everything but the hashes themselves
COVERED = (
    "seq",
    "at",
    "request_id",
    "consumer_code",
    "access_key",
    "end_user",
    "purpose",
    "operation",
    "target",
    "grant_id",
    "method",
    "path",
    "fields",
    "masking",
    "rows",
    "lookup",
    "status",
    "outcome",
    "latency_ms",
    "response_sha256",
)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    body = json.dumps(
        {name: _plain(entry[name]) for name in COVERED},
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


MISSING_HEAD = "the access log has no chain head; the database was not migrated by shuzhi"


HEAD_SQL = 'SELECT seq, "hash" FROM gateway_chain_head WHERE id = 1'
MOVE_HEAD_SQL = 'UPDATE gateway_chain_head SET seq = :seq, "hash" = :hash WHERE id = 1'
_NAMES = (*COVERED, "prev_hash", "hash")


@lru_cache(maxsize=128)
def _insert_sql(count: int) -> str:
    """One INSERT of ``count`` entries (one statement, however many calls committed
    together)."""
    rows = ", ".join(
        "(" + ", ".join(f":{name}_{index}" for name in _NAMES) + ")" for index in range(count)
    )
    columns = ", ".join(f'"{name}"' for name in _NAMES)
    return f"INSERT INTO gateway_access_log ({columns}) VALUES {rows}"


# entries per INSERT: SQLite binds at most 32,766 values in one statement
CHUNK = 500


def append_entries(
    driver: Driver, entries: list[dict[str, Any]], head: tuple[int, str] | None = None
) -> tuple[int, str]:
    """Add the next entries, in order, to the driver's transaction; they commit or fail
    with it. ``head`` is the chain head when the caller has read (and locked) it
    already. Returns the new head. Plain statements: this runs on every gateway call."""
    if head is None:
        head = driver.execute(HEAD_SQL + driver.for_update).fetchone()
        if head is None:
            raise ConfigurationError(MISSING_HEAD)
    seq, prev = head
    for start in range(0, len(entries), CHUNK):
        chunk = entries[start : start + CHUNK]
        values: dict[str, Any] = {}
        for index, entry in enumerate(chunk):
            seq += 1
            item = {**entry, "seq": seq}
            digest = entry_hash(prev, item)
            row = {
                **item,
                "at": driver.time(item["at"]),
                "fields": driver.json(item["fields"]),
                "masking": driver.json(item["masking"]),
                "prev_hash": prev,
                "hash": digest,
            }
            values.update({f"{name}_{index}": row[name] for name in _NAMES})
            prev = digest
        driver.execute(_insert_sql(len(chunk)), values)
    if entries:
        driver.execute(MOVE_HEAD_SQL, {"seq": seq, "hash": prev})
    return seq, prev


def _driver(session: Session) -> Driver:
    connection = session.connection()
    return Driver(connection.connection.driver_connection, connection.dialect.name)


def append(session: Session, **entry: Any) -> int:
    """One entry, inside a session's transaction; its sequence number."""
    return append_entries(_driver(session), [entry])[0]


def append_many(session: Session, entries: list[dict[str, Any]]) -> int:
    """Entries in order, inside a session's transaction (history imported or generated
    at once); how many."""
    append_entries(_driver(session), entries)
    return len(entries)


@dataclass(frozen=True)
class Verification:
    intact: bool
    entries: int
    first_bad: int | None = None
    reason: str | None = None


_COLUMNS = [getattr(AccessLog, name) for name in COVERED]


def _rows(session: Session, batch: int) -> Iterator[Any]:
    """Entries in sequence order as plain rows (no ORM objects: a walk reads them all)."""
    last = 0
    while True:
        rows = session.execute(
            select(*_COLUMNS, AccessLog.prev_hash, AccessLog.hash)
            .where(AccessLog.seq > last)
            .order_by(AccessLog.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify(session: Session, *, batch: int = 20_000) -> Verification:
    """Walk the chain from the first entry; the first one that breaks it is named."""
    prev, expected_seq, count = GENESIS, 1, 0
    width = len(COVERED)
    for row in _rows(session, batch):
        if row.seq != expected_seq:
            return Verification(False, count, expected_seq, f"entry {expected_seq} is missing")
        if row.prev_hash != prev:
            return Verification(
                False, count, row.seq, "its link to the previous entry does not match"
            )
        if entry_hash(prev, dict(zip(COVERED, row[:width], strict=True))) != row.hash:
            return Verification(False, count, row.seq, "its content does not match its hash")
        prev, expected_seq, count = row.hash, expected_seq + 1, count + 1
    head = session.execute(select(ChainHead.seq, ChainHead.hash).where(ChainHead.id == 1)).first()
    if head is not None and (head.seq != count or head.hash != prev):
        return Verification(
            False,
            count,
            count + 1 if head.seq > count else head.seq,
            f"the chain head records {head.seq} entries ending in {head.hash[:12]}…, "
            f"the log holds {count}",
        )
    return Verification(True, count)
