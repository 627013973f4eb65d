"""One gateway call, from its signature to its access-log entry.

``serve`` authenticates the signature (key, date, nonce, HMAC), lets the operation do its
work in a read-only session, and then, in one transaction, remembers the nonce, charges
the grant's limits, checks the grant again, and appends the access-log entry with the
SHA-256 of the response. Only when that transaction commits does the answer leave; a
refused call gets its own entry, and a call whose entry cannot be written fails.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from shuzhi.core import clock
from shuzhi.core.db import Database
from shuzhi.core.dialect import Driver
from shuzhi.core.errors import ConfigurationError, RateLimited, ShuzhiError, ValidationFailed
from shuzhi.core.settings import Settings, get_settings
from shuzhi.gateway import ledger, signing
from shuzhi.gateway.access import STAMP_SQL, Access, Changed, Known, forget, same
from shuzhi.gateway.queries import credential_state
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
    state = credential_state(credential)
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


@lru_cache(maxsize=128)
def _charge_sql(count: int) -> str:
    """Add to ``count`` counters in one statement and return their totals; several
    workers count together."""
    rows = ", ".join(f"(:grant_{n}, :window_{n}, :requests_{n}, :rows_{n})" for n in range(count))
    return (
        f'INSERT INTO gateway_usage (grant_id, "window", requests, "rows") VALUES {rows} '
        'ON CONFLICT (grant_id, "window") DO UPDATE SET '
        "requests = gateway_usage.requests + excluded.requests, "
        '"rows" = gateway_usage."rows" + excluded."rows" '
        'RETURNING grant_id, "window", requests, "rows"'
    )


@lru_cache(maxsize=128)
def _nonce_sql(count: int) -> str:
    """Remember ``count`` nonces; returns those that were new."""
    rows = ", ".join(f"(:key_{n}, :nonce_{n}, :at)" for n in range(count))
    return (
        f"INSERT INTO gateway_nonce (access_key, nonce, seen_at) VALUES {rows} "
        "ON CONFLICT (access_key, nonce) DO NOTHING RETURNING access_key, nonce"
    )


# the chain head and the access stamp, read together first in every access-log transaction
OPEN_SQL = f'SELECT ({STAMP_SQL}), seq, "hash" FROM gateway_chain_head WHERE id = 1'
TOUCH_SQL = (
    "UPDATE gateway_credential SET last_used_at = :at "
    "WHERE access_key = :key AND (last_used_at IS NULL OR last_used_at <= :before)"
)


def check_limits(access: Access, grant: Limited, *, exact: bool = False) -> None:
    """Refuse before any work when the grant is already at a limit. The access-log
    transaction counts every call and refuses the one that passes a limit; this only
    spares the work. It reads the counters as this process last saw them when a call
    commits, or, ``exact``, from the store (before a call goes upstream)."""
    now = clock.now()
    second, day = _windows(now)
    if exact:
        with access.db.driver() as driver:
            used = {
                window: (requests, rows)
                for window, requests, rows in driver.execute(
                    USED_SQL, {"grant_id": grant.id, "second": second, "day": day}
                ).fetchall()
            }
    else:
        last = access.known.usage.get(grant.id)
        used = {last[0]: (last[1], 0), last[2]: (0, last[3])} if last else {}
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


# -- the call ----------------------------------------------------------------------------

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
    return _committer(db).commit(
        Pending(call, None, Outcome(), None, exc, None, operation, target, refuse)
    )


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
    with Access(db, settings) as view:
        seen = view.known
        try:
            caller = authenticate(view, call, settings=settings)
            work(view, caller, outcome)
        except ShuzhiError as exc:
            refusal = exc
    reply = (
        None
        if refusal is not None
        else Reply(outcome.status, outcome.body, outcome.media_type, outcome.headers)
    )
    # an operation whose effect went out (upstream) is logged as it was decided
    check = None if outcome.final else seen
    return _committer(db).commit(
        Pending(call, caller, outcome, reply, refusal, check, operation, target, refuse)
    )


@dataclass(eq=False)
class Pending:
    """A decided call waiting for its access-log transaction."""

    call: Call
    caller: Caller | None
    outcome: Outcome
    reply: Reply | None  # the answer, when the call was not refused
    refusal: ShuzhiError | None
    check: Known | None  # the rules it was decided on, unless it is logged as decided
    operation: str
    target: str | None
    refuse: Refuse
    done: threading.Event = field(default_factory=threading.Event)
    result: Reply | BaseException | None = None


class _Committer:
    """Group commit. Every call ends in one write: its nonce, its charges and its log
    entry, after a check that its rules still stand. Calls that reach that point
    together are written in one transaction of five statements by whichever of them
    takes the writer's turn first; the others find their answer ready. Fewer, larger
    transactions keep SQLite's one writer, and a worker's threads, from queuing behind
    each other. A call refused at this point (a replayed nonce, a limit reached) is logged
    as refused in the same transaction; one whose rules changed writes nothing
    (``Changed``, decided again)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._mutex = threading.Lock()
        self._turn = threading.Lock()
        self._waiting: list[Pending] = []

    def commit(self, pending: Pending) -> Reply:
        with self._mutex:
            self._waiting.append(pending)
        with self._turn:
            if not pending.done.is_set():
                with self._mutex:
                    batch, self._waiting = self._waiting, []
                self._write(batch)
        result = pending.result
        if isinstance(result, BaseException):
            raise result
        assert result is not None
        return result

    def _write(self, batch: list[Pending]) -> None:
        answers: dict[Pending, Reply | BaseException] = {}
        try:
            with self.db.driver_transaction() as driver:
                row = driver.execute(OPEN_SQL + driver.for_update).fetchone()
                if row is None:
                    raise ConfigurationError(ledger.MISSING_HEAD)
                stamp, seq, prev = row
                live: list[Pending] = []
                for pending in batch:
                    if pending.check is not None and not same(stamp, pending.check):
                        answers[pending] = Changed(pending.check)
                    else:
                        live.append(pending)
                touched = _remember(driver, live)
                counted = _charge(driver, live)
                entries = []
                for pending in live:
                    reply, entry = _entry(pending)
                    answers[pending] = reply
                    entries.append(entry)
                ledger.append_entries(driver, entries, (seq, prev))
            # the process learns from the transaction only once it is kept: counters of a
            # rolled-back call would refuse the calls after it, and a last use rolled back
            # would not be written again for a minute
            _kept(touched, counted)
        except BaseException as exc:
            answers = {pending: exc for pending in batch}
        finally:
            for pending in batch:
                pending.result = answers.get(pending)
                pending.done.set()


_COMMITTERS: weakref.WeakKeyDictionary[Database, _Committer] = weakref.WeakKeyDictionary()
_COMMITTERS_LOCK = threading.Lock()


def _committer(db: Database) -> _Committer:
    found = _COMMITTERS.get(db)
    if found is None:
        with _COMMITTERS_LOCK:
            found = _COMMITTERS.setdefault(db, _Committer(db))
    return found


# access key → when this process last wrote its last use (monotonic seconds)
_touched: dict[str, float] = {}

# a grant's counters as a committed call saw them, for ``check_limits``: where to keep
# them, the grant, and (second window, requests in it, day window, rows in it)
Counted = tuple[Known, int, tuple[str, int, str, int]]


def _kept(touched: list[str], counted: list[Counted]) -> None:
    moment = time.monotonic()
    for key in touched:
        _touched[key] = moment
    for known, grant_id, counters in counted:
        known.usage[grant_id] = counters


def _remember(driver: Driver, batch: list[Pending]) -> list[str]:
    """Every signed call uses up its nonce, refused or not; a call that was not refused
    but whose nonce was used before (or earlier in the batch) is refused as a replay.
    Returns the access keys whose last use it wrote."""
    wanted: list[tuple[Pending, tuple[str, str]]] = []
    taken: set[tuple[str, str]] = set()
    for pending in batch:
        caller = pending.caller
        if caller is None or isinstance(pending.refusal, ReplayedNonce):
            continue
        pair = (caller.access_key, caller.nonce)
        if pair in taken:
            pending.refusal = pending.refusal or _replayed(caller)
            continue
        taken.add(pair)
        wanted.append((pending, pair))
    if not wanted:
        return []
    now = clock.now()
    values: dict[str, Any] = {"at": driver.time(now)}
    for index, (_, (key, nonce)) in enumerate(wanted):
        values[f"key_{index}"], values[f"nonce_{index}"] = key, nonce
    fresh = {tuple(row) for row in driver.execute(_nonce_sql(len(wanted)), values).fetchall()}
    for pending, pair in wanted:
        if pair not in fresh:
            pending.refusal = pending.refusal or _replayed(pending.caller)  # type: ignore[arg-type]
    # the last use of a key, written at most once a minute (by any worker)
    moment = time.monotonic()
    touched = []
    for key in {pair[0] for _, pair in wanted}:
        if moment - _touched.get(key, -1e9) < TOUCH_EVERY.total_seconds():
            continue
        touched.append(key)
        driver.execute(
            TOUCH_SQL,
            {"key": key, "at": driver.time(now), "before": driver.time(now - TOUCH_EVERY)},
        )
    return touched


def _replayed(caller: Caller) -> ReplayedNonce:
    return ReplayedNonce(f"nonce {caller.nonce} was already used with this key")


def _charge(driver: Driver, batch: list[Pending]) -> list[Counted]:
    """Count each call that is not refused, and its rows, against its grant's second
    and day in one statement; a call that would pass a limit is refused as if the calls
    before it in the batch had been counted one by one, and is not counted. Returns the
    counters as each counted call saw them."""
    charged = [item for item in batch if item.refusal is None and item.outcome.grant is not None]
    if not charged:
        return []
    now = clock.now()
    second, day = _windows(now)
    added: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for pending in charged:
        grant = pending.outcome.grant
        assert grant is not None
        added[(grant.id, second)][0] += 1
        added[(grant.id, day)][0] += 1
        added[(grant.id, day)][1] += pending.outcome.rows
    totals = _add_counts(driver, added)
    running = {
        key: [totals[key][0] - more[0], totals[key][1] - more[1]] for key, more in added.items()
    }
    taken_back: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    counted: list[Counted] = []
    for pending in charged:
        grant = pending.outcome.grant
        assert grant is not None
        rows = pending.outcome.rows
        this_second, today = running[(grant.id, second)], running[(grant.id, day)]
        if this_second[0] + 1 > grant.requests_per_second:
            pending.refusal = RateLimited(
                f"grant {grant.id} allows {grant.requests_per_second} requests a second",
                retry_after=1,
            )
        elif today[1] + rows > grant.rows_per_day:
            pending.refusal = RateLimited(
                f"grant {grant.id} allows {grant.rows_per_day} rows a day; this page would pass it",
                retry_after=_until_tomorrow(now),
            )
        else:
            this_second[0] += 1
            today[0] += 1
            today[1] += rows
            if pending.check is not None:  # what check_limits reads next
                counted.append((pending.check, grant.id, (second, this_second[0], day, today[1])))
            continue
        taken_back[(grant.id, second)][0] -= 1
        taken_back[(grant.id, day)][0] -= 1
        taken_back[(grant.id, day)][1] -= rows
    if taken_back:
        _add_counts(driver, taken_back)
    return counted


def _add_counts(
    driver: Driver, amounts: dict[tuple[int, str], list[int]]
) -> dict[tuple[int, str], tuple[int, int]]:
    values: dict[str, Any] = {}
    for index, ((grant_id, window), (requests, rows)) in enumerate(amounts.items()):
        values.update(
            {
                f"grant_{index}": grant_id,
                f"window_{index}": window,
                f"requests_{index}": requests,
                f"rows_{index}": rows,
            }
        )
    found = driver.execute(_charge_sql(len(amounts)), values).fetchall()
    return {(grant_id, window): (requests, rows) for grant_id, window, requests, rows in found}


def _entry(pending: Pending) -> tuple[Reply, dict[str, Any]]:
    """The answer a call gets and the log entry that records it."""
    if pending.refusal is None:
        assert pending.reply is not None
        reply, outcome = pending.reply, pending.outcome
        slug = "ok" if reply.status < 400 else f"upstream-{reply.status}"
    else:
        reply, outcome = pending.refuse(pending.refusal), _refused(pending.outcome)
        slug = pending.refusal.slug
    call, caller = pending.call, pending.caller
    key = caller.access_key if caller else (call.header(signing.HEADER_KEY)[:40] or None)
    return reply, _storable(
        {
            "at": clock.now(),
            "request_id": call.request_id,
            "consumer_code": caller.consumer_code if caller else None,
            "access_key": key,
            "end_user": caller.end_user if caller else None,
            "purpose": caller.purpose if caller else None,
            "operation": pending.operation,
            "target": pending.target,
            "grant_id": outcome.grant.id if outcome.grant else None,
            "method": call.method,
            "path": call.path[:500],
            "fields": outcome.fields,
            "masking": outcome.masking,
            "rows": outcome.rows,
            "lookup": outcome.lookup,
            "status": reply.status,
            "outcome": slug,
            "latency_ms": int((time.perf_counter() - call.started) * 1000),
            "response_sha256": signing.body_digest(reply.body),
        }
    )


def _storable(value: Any) -> Any:
    """What a caller sent, as the log can keep it: a NUL (which no store keeps in text)
    becomes U+FFFD, so that no call's request can fail the transaction it shares with
    others."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(name): _storable(item) for name, item in value.items()}
    return value


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
