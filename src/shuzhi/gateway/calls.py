"""One gateway call, from its signature to its access-log entry.

``serve`` authenticates the signature (key, date, nonce, HMAC), lets the operation do its
work in a read-only session, and then, in one transaction, remembers the nonce, charges
the grant's limits, checks the grant again, and appends the access-log entry with the
SHA-256 of the response. Only when that transaction commits does the answer leave; a
refused call gets its own entry, and a call whose entry cannot be written fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from shuzhi.core import clock
from shuzhi.core.db import Database
from shuzhi.core.dialect import Driver
from shuzhi.core.errors import ConfigurationError, RateLimited, ShuzhiError, ValidationFailed
from shuzhi.core.settings import Settings, get_settings
from shuzhi.gateway import ledger, signing
from shuzhi.gateway.access import STAMP_SQL, Access, Changed, Known, forget, known, same
from shuzhi.gateway.rules import (
    BadSignature,
    ReplayedNonce,
    RevokedKey,
    RulesChanging,
    StaleDate,
    UnknownKey,
    Unsigned,
)

NONCE_LENGTH = (16, 64)
END_USER_MAX = 120
PURPOSE_MAX = 200
# the last use of a credential is written at most this often
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes
    request_id: str
    started: float = field(default_factory=time.perf_counter)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "").strip()


@dataclass(frozen=True)
class Caller:
    credential_id: int
    access_key: str
    consumer_id: int
    consumer_code: str
    nonce: str
    end_user: str | None
    purpose: str | None


class Limited(Protocol):
    """What the limits need of a grant (the model or a call's view of it)."""

    id: int
    requests_per_second: int
    rows_per_day: int


@dataclass
class Outcome:
    """What an operation answers, and what the access log records about it. The operation
    fills it in as it goes, so a refusal is logged with the grant and fields it concerned."""

    body: bytes = b""
    media_type: str = "application/json"
    status: int = 200
    grant: Limited | None = None
    fields: list[str] = field(default_factory=list)
    masking: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    lookup: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # set once the operation had an effect that cannot be taken back (a service call)
    final: bool = False


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


Work = Callable[[Access, Caller, Outcome], None]
Refuse = Callable[[ShuzhiError], Reply]


def _date(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise StaleDate(f"{signing.HEADER_DATE} {text[:40]!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise StaleDate(f"{signing.HEADER_DATE} must carry its offset (use Z for UTC)")
    return moment.astimezone(UTC)


def authenticate(access: Access, call: Call, *, settings: Settings) -> Caller:
    key = call.header(signing.HEADER_KEY)
    stamp = call.header(signing.HEADER_DATE)
    nonce = call.header(signing.HEADER_NONCE)
    signature = call.header(signing.HEADER_SIGNATURE)
    missing = [
        name
        for name, value in (
            (signing.HEADER_KEY, key),
            (signing.HEADER_DATE, stamp),
            (signing.HEADER_NONCE, nonce),
            (signing.HEADER_SIGNATURE, signature),
        )
        if not value
    ]
    if missing:
        raise Unsigned(f"the call lacks {', '.join(missing)}; see docs/how-to/gateway.md")
    low, high = NONCE_LENGTH
    if not (
        low <= len(nonce) <= high
        and nonce.isascii()
        and nonce.replace("-", "").replace("_", "").isalnum()
    ):
        raise Unsigned(f"{signing.HEADER_NONCE} must be {low} to {high} letters, digits, - or _")
    credential = access.credential(key[:40])
    if credential is None:
        raise UnknownKey(f"access key {key[:40]!r} is not known")
    now = clock.now()
    state = credential.state(now)
    if state in ("revoked", "expired"):
        raise RevokedKey(f"access key {key} is {state}")
    if not credential.consumer_active:
        raise RevokedKey(f"consumer {credential.consumer_code} is disabled")
    moment = _date(stamp)
    skew = settings.gateway.clock_skew_seconds
    if abs((now - moment).total_seconds()) > skew:
        raise StaleDate(
            f"{signing.HEADER_DATE} {stamp} is more than {skew} s from the server's "
            f"{now:%Y-%m-%dT%H:%M:%SZ}"
        )
    text = signing.canonical(
        method=call.method,
        path=call.path,
        query=call.query,
        key=key,
        date=stamp,
        nonce=nonce,
        body=call.body,
    )
    if not signing.matches(credential.secret, text, signature):
        raise BadSignature(
            "the signature does not match the canonical request; check the secret, the "
            "query order and the body digest"
        )
    # a replayed nonce is refused by the access-log transaction, which remembers it
    # percent-encoded UTF-8 where they are not ASCII (headers carry Latin-1 only)
    end_user = unquote(call.header(signing.HEADER_USER)) or None
    purpose = unquote(call.header(signing.HEADER_PURPOSE)) or None
    if end_user and len(end_user) > END_USER_MAX:
        raise ValidationFailed(f"{signing.HEADER_USER} is longer than {END_USER_MAX} characters")
    if purpose and len(purpose) > PURPOSE_MAX:
        raise ValidationFailed(f"{signing.HEADER_PURPOSE} is longer than {PURPOSE_MAX} characters")
    return Caller(
        credential_id=credential.id,
        access_key=credential.access_key,
        consumer_id=credential.consumer_id,
        consumer_code=credential.consumer_code,
        nonce=nonce,
        end_user=end_user,
        purpose=purpose,
    )


# -- limits ------------------------------------------------------------------------------


def _local(now: datetime) -> datetime:
    """A day of rows is the working day where the platform runs (``gateway.timezone``)."""
    return now.astimezone(ZoneInfo(get_settings().gateway.timezone))


def _windows(now: datetime) -> tuple[str, str]:
    return f"s:{int(now.timestamp()):012d}", f"d:{_local(now).date().isoformat()}"


def _until_tomorrow(now: datetime) -> int:
    local = _local(now)
    tomorrow = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), local.tzinfo)
    return int((tomorrow - local).total_seconds()) + 1


# "window" is a reserved word in PostgreSQL
USED_SQL = (
    'SELECT "window", requests, "rows" FROM gateway_usage '
    'WHERE grant_id = :grant_id AND "window" IN (:second, :day)'
)
CHARGE_SQL = (
    'INSERT INTO gateway_usage (grant_id, "window", requests, "rows") '
    "VALUES (:grant_id, :second, 1, 0), (:grant_id, :day, 1, :rows) "
    'ON CONFLICT (grant_id, "window") DO UPDATE SET requests = gateway_usage.requests + 1, '
    '"rows" = gateway_usage."rows" + excluded."rows" RETURNING "window", requests, "rows"'
)
NONCE_SQL = (
    "INSERT INTO gateway_nonce (access_key, nonce, seen_at) VALUES (:access_key, :nonce, :at) "
    "ON CONFLICT (access_key, nonce) DO NOTHING RETURNING id"
)
# the chain head and the access stamp, read together first in every access-log transaction
OPEN_SQL = f'SELECT ({STAMP_SQL}), seq, "hash" FROM gateway_chain_head WHERE id = 1'
TOUCH_SQL = (
    "UPDATE gateway_credential SET last_used_at = :at "
    "WHERE id = :id AND (last_used_at IS NULL OR last_used_at <= :before)"
)


def check_limits(access: Access, grant: Limited) -> None:
    """Refuse before any work when the grant is already at a limit."""
    now = clock.now()
    second, day = _windows(now)
    with access.db.driver() as driver:
        used = {
            window: (requests, rows)
            for window, requests, rows in driver.execute(
                USED_SQL, {"grant_id": grant.id, "second": second, "day": day}
            ).fetchall()
        }
    if used.get(second, (0, 0))[0] >= grant.requests_per_second:
        raise RateLimited(
            f"grant {grant.id} allows {grant.requests_per_second} requests a second",
            retry_after=1,
        )
    if used.get(day, (0, 0))[1] >= grant.rows_per_day:
        raise RateLimited(
            f"grant {grant.id} allows {grant.rows_per_day} rows a day; that many were read today",
            retry_after=_until_tomorrow(now),
        )


def _charge(driver: Driver, grant: Limited, rows: int) -> None:
    """Count the call and its rows in both windows, in one statement; several workers
    count together."""
    now = clock.now()
    second, day = _windows(now)
    totals = {
        window: (requests, total)
        for window, requests, total in driver.execute(
            CHARGE_SQL, {"grant_id": grant.id, "second": second, "day": day, "rows": rows}
        ).fetchall()
    }
    if totals[second][0] > grant.requests_per_second:
        raise RateLimited(
            f"grant {grant.id} allows {grant.requests_per_second} requests a second",
            retry_after=1,
        )
    if totals[day][1] > grant.rows_per_day:
        raise RateLimited(
            f"grant {grant.id} allows {grant.rows_per_day} rows a day; this page would pass it",
            retry_after=_until_tomorrow(now),
        )


# -- the call ----------------------------------------------------------------------------


# access key → when this process last wrote its last use (monotonic seconds)
_touched: dict[str, float] = {}


def _remember(driver: Driver, caller: Caller) -> None:
    now = clock.now()
    fresh = driver.execute(
        NONCE_SQL,
        {"access_key": caller.access_key, "nonce": caller.nonce, "at": driver.time(now)},
    ).fetchone()
    if fresh is None:
        raise ReplayedNonce(f"nonce {caller.nonce} was already used with this key")
    # the last use of a key, written at most once a minute (by any worker)
    moment = time.monotonic()
    if moment - _touched.get(caller.access_key, -1e9) < TOUCH_EVERY.total_seconds():
        return
    _touched[caller.access_key] = moment
    driver.execute(
        TOUCH_SQL,
        {
            "id": caller.credential_id,
            "at": driver.time(now),
            "before": driver.time(now - TOUCH_EVERY),
        },
    )


def _log(
    driver: Driver,
    head: tuple[int, str],
    call: Call,
    *,
    caller: Caller | None,
    operation: str,
    target: str | None,
    reply: Reply,
    outcome: Outcome,
    slug: str,
) -> None:
    key = caller.access_key if caller else (call.header(signing.HEADER_KEY)[:40] or None)
    ledger.append_entry(
        driver,
        head,
        at=clock.now(),
        request_id=call.request_id,
        consumer_code=caller.consumer_code if caller else None,
        access_key=key,
        end_user=caller.end_user if caller else None,
        purpose=caller.purpose if caller else None,
        operation=operation,
        target=target,
        grant_id=outcome.grant.id if outcome.grant else None,
        method=call.method,
        path=call.path[:500],
        fields=outcome.fields,
        masking=outcome.masking,
        rows=outcome.rows,
        lookup=outcome.lookup,
        status=reply.status,
        outcome=slug,
        latency_ms=int((time.perf_counter() - call.started) * 1000),
        response_sha256=signing.body_digest(reply.body),
    )


ATTEMPTS = 3


def serve(
    db: Database,
    call: Call,
    *,
    operation: str,
    target: str | None,
    work: Work,
    refuse: Refuse,
    settings: Settings,
) -> Reply:
    """Decide the call with what this process knows of the access rules, then write its
    nonce, charges and log entry in one transaction that first checks that those rules
    are unchanged; if they changed, decide again with fresh ones."""
    for _attempt in range(ATTEMPTS):
        try:
            return _attempt_call(db, call, operation, target, work, refuse, settings)
        except Changed as changed:
            forget(changed.args[0])
    exc = RulesChanging("the access rules kept changing while the call ran; try again")
    reply = refuse(exc)
    with db.driver_transaction() as driver:
        _log(driver, _open(driver, None), call, caller=None, operation=operation,
             target=target, reply=reply, outcome=Outcome(), slug=exc.slug)  # fmt: skip
    return reply


def _attempt_call(
    db: Database,
    call: Call,
    operation: str,
    target: str | None,
    work: Work,
    refuse: Refuse,
    settings: Settings,
) -> Reply:
    caller: Caller | None = None
    outcome = Outcome()
    refusal: ShuzhiError | None = None
    with db.session() as session:
        seen = known(session)
        try:
            view = Access(session, db, seen, settings)
            caller = authenticate(view, call, settings=settings)
            work(view, caller, outcome)
        except ShuzhiError as exc:
            refusal = exc
    # an operation whose effect went out (upstream) is logged as it was decided
    check = None if outcome.final else seen
    if refusal is None:
        assert caller is not None
        reply = Reply(outcome.status, outcome.body, outcome.media_type, outcome.headers)
        try:
            with db.driver_transaction() as driver:
                head = _open(driver, check)
                _remember(driver, caller)
                if outcome.grant is not None:
                    _charge(driver, outcome.grant, outcome.rows)
                slug = "ok" if reply.status < 400 else f"upstream-{reply.status}"
                _log(driver, head, call, caller=caller, operation=operation, target=target,
                     reply=reply, outcome=outcome, slug=slug)  # fmt: skip
            return reply
        except ShuzhiError as exc:
            refusal = exc
    # a refused call is logged too; a signed one has still used its nonce
    reply = refuse(refusal)
    with db.driver_transaction() as driver:
        head = _open(driver, check)
        if caller is not None and not isinstance(refusal, ReplayedNonce):
            with contextlib.suppress(ReplayedNonce):
                _remember(driver, caller)
        _log(driver, head, call, caller=caller, operation=operation, target=target, reply=reply,
             outcome=_refused(outcome), slug=refusal.slug)  # fmt: skip
    return reply


def _open(driver: Driver, seen: Known | None) -> tuple[int, str]:
    """Take the chain head (locked on PostgreSQL; SQLite has one writer) and the access
    stamp in one statement. Raise ``Changed`` when the rules moved since ``seen`` was
    read: nothing of this attempt is written (the block rolls back) and the call is
    decided again."""
    row = driver.execute(OPEN_SQL + driver.for_update).fetchone()
    if row is None:
        raise ConfigurationError(ledger.MISSING_HEAD)
    stamp, seq, prev = row
    if seen is not None and not same(stamp, seen):
        raise Changed(seen)
    return seq, prev


def _refused(outcome: Outcome) -> Outcome:
    """What a refused call asked for: its grant and fields, but no rows went out."""
    return Outcome(grant=outcome.grant, fields=outcome.fields, lookup=outcome.lookup)


def lookup_of(secret: bytes, values: list[tuple[str, str]]) -> str | None:
    """A keyed hash of what a call looked for, or None when it looked for nothing."""
    if not values:
        return None
    key = hmac.new(secret, b"gateway-lookup", hashlib.sha256).digest()
    text = json.dumps(sorted(values), ensure_ascii=False)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]


def json_body(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()
