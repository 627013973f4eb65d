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

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from shuzhi.core import clock
from shuzhi.core.db import Database
from shuzhi.core.dialect import add_to_counter, insert_new
from shuzhi.core.errors import RateLimited, ShuzhiError, ValidationFailed
from shuzhi.core.settings import Settings, get_settings
from shuzhi.gateway import ledger, signing
from shuzhi.gateway.models import Consumer, Credential, Grant, Nonce, Usage
from shuzhi.gateway.queries import credential_state, in_force
from shuzhi.gateway.rules import (
    BadSignature,
    GrantInactive,
    ReplayedNonce,
    RevokedKey,
    StaleDate,
    UnknownKey,
    Unsigned,
)
from shuzhi.gateway.service import derive_secret

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
    touch: bool


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


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


Work = Callable[[Session, Caller, Outcome], None]
Refuse = Callable[[ShuzhiError], Reply]


def _date(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise StaleDate(f"{signing.HEADER_DATE} {text[:40]!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise StaleDate(f"{signing.HEADER_DATE} must carry its offset (use Z for UTC)")
    return moment.astimezone(UTC)


def authenticate(session: Session, call: Call, *, settings: Settings) -> Caller:
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
    credential = session.execute(
        select(
            Credential.id,
            Credential.access_key,
            Credential.salt,
            Credential.consumer_id,
            Credential.expires_at,
            Credential.revoked_at,
            Credential.last_used_at,
            Consumer.code.label("consumer_code"),
            Consumer.active.label("consumer_active"),
        )
        .join(Consumer, Consumer.id == Credential.consumer_id)
        .where(Credential.access_key == key[:40])
    ).first()
    if credential is None:
        raise UnknownKey(f"access key {key[:40]!r} is not known")
    state = credential_state(credential)
    if state in ("revoked", "expired"):
        raise RevokedKey(f"access key {key} is {state}")
    if not credential.consumer_active:
        raise RevokedKey(f"consumer {credential.consumer_code} is disabled")
    moment = _date(stamp)
    now = clock.now()
    skew = settings.gateway.clock_skew_seconds
    if abs((now - moment).total_seconds()) > skew:
        raise StaleDate(
            f"{signing.HEADER_DATE} {stamp} is more than {skew} s from the server's "
            f"{now:%Y-%m-%dT%H:%M:%SZ}"
        )
    secret = derive_secret(
        settings.secret(), access_key=credential.access_key, salt=credential.salt
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
    if not signing.matches(secret, text, signature):
        raise BadSignature(
            "the signature does not match the canonical request; check the secret, the "
            "query order and the body digest"
        )
    seen = session.scalar(
        select(exists().where(Nonce.access_key == credential.access_key, Nonce.nonce == nonce))
    )
    if seen:
        raise ReplayedNonce(f"nonce {nonce} was already used with this key")
    # percent-encoded UTF-8 where they are not ASCII (headers carry Latin-1 only)
    end_user = unquote(call.header(signing.HEADER_USER)) or None
    purpose = unquote(call.header(signing.HEADER_PURPOSE)) or None
    if end_user and len(end_user) > END_USER_MAX:
        raise ValidationFailed(f"{signing.HEADER_USER} is longer than {END_USER_MAX} characters")
    if purpose and len(purpose) > PURPOSE_MAX:
        raise ValidationFailed(f"{signing.HEADER_PURPOSE} is longer than {PURPOSE_MAX} characters")
    last = credential.last_used_at
    return Caller(
        credential_id=credential.id,
        access_key=credential.access_key,
        consumer_id=credential.consumer_id,
        consumer_code=credential.consumer_code,
        nonce=nonce,
        end_user=end_user,
        purpose=purpose,
        touch=last is None or now - last >= TOUCH_EVERY,
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


def check_limits(session: Session, grant: Limited) -> None:
    """Refuse before any work when the grant is already at a limit."""
    now = clock.now()
    second, day = _windows(now)
    used = dict(
        session.execute(
            select(Usage.window, Usage.requests).where(
                Usage.grant_id == grant.id, Usage.window == second
            )
        ).all()
    )
    if used.get(second, 0) >= grant.requests_per_second:
        raise RateLimited(
            f"grant {grant.id} allows {grant.requests_per_second} requests a second",
            retry_after=1,
        )
    rows = session.scalar(select(Usage.rows).where(Usage.grant_id == grant.id, Usage.window == day))
    if (rows or 0) >= grant.rows_per_day:
        raise RateLimited(
            f"grant {grant.id} allows {grant.rows_per_day} rows a day; that many were read today",
            retry_after=_until_tomorrow(now),
        )


def _charge(session: Session, grant: Limited, rows: int) -> None:
    now = clock.now()
    second, day = _windows(now)
    table = Usage.__table__
    (requests,) = add_to_counter(
        session, table, keys={"grant_id": grant.id, "window": second}, amounts={"requests": 1}
    )
    if requests > grant.requests_per_second:
        raise RateLimited(
            f"grant {grant.id} allows {grant.requests_per_second} requests a second",
            retry_after=1,
        )
    _, total = add_to_counter(
        session,
        table,
        keys={"grant_id": grant.id, "window": day},
        amounts={"requests": 1, "rows": rows},
    )
    if total > grant.rows_per_day:
        raise RateLimited(
            f"grant {grant.id} allows {grant.rows_per_day} rows a day; this page would pass it",
            retry_after=_until_tomorrow(now),
        )


def _still_in_force(session: Session, grant: Limited) -> None:
    now = session.execute(
        select(Grant.state, Grant.valid_from, Grant.valid_until).where(Grant.id == grant.id)
    ).one()
    if not in_force(now, clock.now().date()):
        raise GrantInactive(f"grant {grant.id} is {now.state}")


# -- the call ----------------------------------------------------------------------------


def _remember(session: Session, caller: Caller) -> None:
    fresh = insert_new(
        session,
        Nonce.__table__,
        {"access_key": caller.access_key, "nonce": caller.nonce, "seen_at": clock.now()},
        unique=("access_key", "nonce"),
    )
    if not fresh:
        raise ReplayedNonce(f"nonce {caller.nonce} was already used with this key")
    if caller.touch:
        session.execute(
            update(Credential)
            .where(Credential.id == caller.credential_id)
            .values(last_used_at=clock.now())
        )


def _log(
    session: Session,
    call: Call,
    *,
    caller: Caller | None,
    operation: str,
    target: str | None,
    reply: Reply,
    outcome: Outcome | None,
    slug: str,
) -> None:
    key = caller.access_key if caller else (call.header(signing.HEADER_KEY)[:40] or None)
    ledger.append(
        session,
        at=clock.now(),
        request_id=call.request_id,
        consumer_code=caller.consumer_code if caller else None,
        access_key=key,
        end_user=caller.end_user if caller else None,
        purpose=caller.purpose if caller else None,
        operation=operation,
        target=target,
        grant_id=outcome.grant.id if outcome and outcome.grant else None,
        method=call.method,
        path=call.path[:500],
        fields=outcome.fields if outcome else [],
        masking=outcome.masking if outcome else {},
        rows=outcome.rows if outcome else 0,
        lookup=outcome.lookup if outcome else None,
        status=reply.status,
        outcome=slug,
        latency_ms=int((time.perf_counter() - call.started) * 1000),
        response_sha256=signing.body_digest(reply.body),
    )


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
    caller: Caller | None = None
    outcome = Outcome()
    try:
        with db.session() as session:
            caller = authenticate(session, call, settings=settings)
            work(session, caller, outcome)
        reply = Reply(outcome.status, outcome.body, outcome.media_type, outcome.headers)
        with db.transaction() as session:
            _remember(session, caller)
            if outcome.grant is not None:
                _still_in_force(session, outcome.grant)
                _charge(session, outcome.grant, outcome.rows)
            _log(
                session,
                call,
                caller=caller,
                operation=operation,
                target=target,
                reply=reply,
                outcome=outcome,
                slug="ok" if reply.status < 400 else f"upstream-{reply.status}",
            )
        return reply
    except ShuzhiError as exc:
        reply = refuse(exc)
        with db.transaction() as session:
            if caller is not None and not isinstance(exc, ReplayedNonce):
                # a signed call that was refused has still used its nonce
                with contextlib.suppress(ReplayedNonce):
                    _remember(session, caller)
            _log(
                session,
                call,
                caller=caller,
                operation=operation,
                target=target,
                reply=reply,
                outcome=_refused(outcome),
                slug=exc.slug,
            )
        return reply


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
