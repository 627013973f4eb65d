"""What a consumer can do through the gateway: read records of a granted resource, verify
attributes against it, and see its own grants and applications.

Every value a consumer sends is bound as a parameter; identifiers in the SQL come from
the catalog, never from the request. Filters and sorting are allowed on fields granted in
clear only: a filter on a masked field would tell its values one guess at a time.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import duckdb
from sqlalchemy import select

from shuzhi.core import clock
from shuzhi.core.errors import NotFound, ValidationFailed
from shuzhi.core.settings import Settings
from shuzhi.gateway import masking, queries
from shuzhi.gateway.access import Access, FieldView, GrantView, ResourceView
from shuzhi.gateway.calls import Caller, Outcome, check_limits, json_body, lookup_of
from shuzhi.gateway.models import Application, Grant
from shuzhi.gateway.rules import (
    CursorExpired,
    FieldNotGranted,
    GrantInactive,
    MaskMode,
    NoGrant,
    NotShared,
    Right,
    RightNotGranted,
)
from shuzhi.gateway.service import region_field
from shuzhi.lake.engine import reader
from shuzhi.lake.rules import literal, quote
from shuzhi.lake.storage import Lake

RESERVED = frozenset({"fields", "sort", "limit", "cursor", "format"})
OPERATORS = {"": "=", "eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
IN_LIST_MAX = 200

# -- the grant ---------------------------------------------------------------------------


def shared_resource(access: Access, code: str) -> ResourceView:
    resource = access.resource(code)
    if resource is None or resource.state != "published":
        raise NotFound(f"no published catalog resource {code!r}")
    if resource.sharing == "none":
        raise NotShared(f"resource {code} is 不予共享 (not shared)")
    return resource


def grant_in_force(
    access: Access,
    caller: Caller,
    resource: ResourceView,
    right: Right,
    outcome: Outcome | None = None,
) -> GrantView:
    """The consumer's newest grant on the resource, if it is in force and gives ``right``;
    ``outcome`` learns the grant first, so that a refusal is logged with it."""
    grant = access.grant(caller.consumer_id, resource.id)
    if grant is None:
        raise NoGrant(f"consumer {caller.consumer_code} holds no grant on {resource.code}")
    if outcome is not None:
        outcome.grant = grant
    today = clock.now().date()
    if grant.state != "active":
        raise GrantInactive(f"grant {grant.id} on {resource.code} is {grant.state}")
    if today > grant.valid_until:
        raise GrantInactive(f"grant {grant.id} on {resource.code} expired on {grant.valid_until}")
    if today < grant.valid_from:
        raise GrantInactive(f"grant {grant.id} on {resource.code} starts on {grant.valid_from}")
    if right not in grant.rights:
        raise RightNotGranted(
            f"grant {grant.id} on {resource.code} does not include {right.value} ({right.zh})"
        )
    if right in (Right.read, Right.call) and resource.grade == "L4":
        raise NotShared(f"resource {resource.code} is graded L4 and never leaves the platform")
    modes = masking.in_force(
        grant.fields,
        kinds={item.name: item.pii for item in resource.fields},
        grade=resource.grade,
        approved_clear=grant.approved_clear,
        settings=access.settings.gateway,
    )
    return grant if modes == grant.fields else replace(grant, fields=modes)


def _region_filter(
    access: Access, grant: GrantView, resource: ResourceView
) -> tuple[str, list[Any]]:
    """The condition that keeps rows inside the grant's region subtree (none when the
    grant covers the resource's whole region)."""
    inside = access.region_path(resource.region_code) or ""
    if inside.startswith(access.region_path(grant.region_code) or "\0"):
        return "", []
    column = region_field(resource)
    if column is None:  # the application checks refuse this; a changed catalog could not
        raise GrantInactive(
            f"resource {resource.code} lost its region field; grant {grant.id} cannot be scoped"
        )
    codes = sorted(access.subtree(grant.region_code))
    return f"{quote(column)} IN (SELECT UNNEST(?::VARCHAR[]))", [codes]


def _snapshot(lake: Lake, code: str) -> str:
    snapshot = lake.current(code)
    if snapshot is None:
        raise NotFound(f"resource {code} has no data loaded yet")
    return snapshot


# -- parameters --------------------------------------------------------------------------


def convert(field: FieldView, text: str) -> Any:
    """A request value as the field's type, or a 422 naming the field."""
    try:
        if field.type == "integer":
            return int(text)
        if field.type == "decimal":
            number = Decimal(text)
            if not number.is_finite():
                raise ValueError
            return float(number)
        if field.type == "boolean":
            lowered = text.lower()
            if lowered in ("true", "1", "是"):
                return True
            if lowered in ("false", "0", "否"):
                return False
            raise ValueError
        if field.type == "date":
            return date.fromisoformat(text)
        if field.type == "datetime":
            return datetime.fromisoformat(text)
    except (ValueError, InvalidOperation):
        raise ValidationFailed(
            f"{text[:40]!r} is not a {field.type} value for {field.name}", field=field.name
        ) from None
    return text


def _clear_field(grant: GrantView, known: dict[str, FieldView], name: str, use: str) -> FieldView:
    if name not in known:
        raise ValidationFailed(f"unknown parameter or field {name!r}", field=name)
    mode = grant.fields.get(name)
    if mode is None or mode == MaskMode.hidden:
        raise FieldNotGranted(f"field {name} is not in grant {grant.id}", field=name)
    if mode != MaskMode.clear:
        raise FieldNotGranted(
            f"field {name} is granted {mode}; {use} is allowed on fields granted in clear "
            "only (use verification to check a value)",
            field=name,
        )
    return known[name]


def _filters(
    grant: GrantView, known: dict[str, FieldView], params: list[tuple[str, str]]
) -> tuple[list[str], list[Any]]:
    conditions: list[str] = []
    values: list[Any] = []
    seen: set[str] = set()
    for name, text in params:
        if name in RESERVED:
            continue
        column, _, op = name.partition("__")
        if name in seen:
            raise ValidationFailed(
                f"give {name} once (use {column}__in for several values)", field=name
            )
        seen.add(name)
        if op != "in" and op not in OPERATORS:
            raise ValidationFailed(
                f"unknown operator {op!r} in {name}; use eq, ne, gt, gte, lt, lte or in", field=name
            )
        item = _clear_field(grant, known, column, "filtering")
        if op == "in":
            parts = [part for part in text.split(",")]
            if not 1 <= len(parts) <= IN_LIST_MAX:
                raise ValidationFailed(f"{name} takes 1 to {IN_LIST_MAX} values", field=name)
            conditions.append(f"{quote(column)} IN ({', '.join('?' for _ in parts)})")
            values.extend(convert(item, part) for part in parts)
        else:
            conditions.append(f"{quote(column)} {OPERATORS[op]} ?")
            values.append(convert(item, text))
    return conditions, values


def _one(params: list[tuple[str, str]], name: str) -> str | None:
    found = [value for key, value in params if key == name]
    if len(found) > 1:
        raise ValidationFailed(f"give {name} once", field=name)
    return found[0] if found else None


# -- cursors -----------------------------------------------------------------------------


def _cursor_key(settings: Settings) -> bytes:
    return hmac.new(settings.secret(), b"gateway-cursor", hashlib.sha256).digest()


def _query_id(params: list[tuple[str, str]]) -> str:
    kept = sorted((k, v) for k, v in params if k not in ("cursor", "format"))
    return hashlib.sha256(json.dumps(kept).encode()).hexdigest()[:16]


def make_cursor(settings: Settings, *, snapshot: str, offset: int, query_id: str) -> str:
    body = (
        base64.urlsafe_b64encode(json.dumps([snapshot, offset, query_id]).encode())
        .decode()
        .rstrip("=")
    )
    mac = hmac.new(_cursor_key(settings), body.encode(), hashlib.sha256).hexdigest()[:24]
    return f"{body}.{mac}"


def read_cursor(settings: Settings, cursor: str, *, query_id: str) -> tuple[str, int]:
    forged = ValidationFailed("the cursor is not one this gateway gave", field="cursor")
    if not cursor.isascii():  # compare_digest takes ASCII text only
        raise forged
    body, _, mac = cursor.partition(".")
    expected = hmac.new(_cursor_key(settings), body.encode(), hashlib.sha256).hexdigest()[:24]
    if not hmac.compare_digest(mac, expected):
        raise forged
    try:
        snapshot, offset, made_for = json.loads(
            base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        )
    except ValueError:
        raise forged from None
    if made_for != query_id:
        raise ValidationFailed(
            "the cursor belongs to another query; keep the same filters, fields and sort",
            field="cursor",
        )
    return str(snapshot), int(offset)


# -- reads -------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def records(
    access: Access,
    caller: Caller,
    outcome: Outcome,
    *,
    code: str,
    params: list[tuple[str, str]],
    lake: Lake,
    settings: Settings,
) -> None:
    resource = shared_resource(access, code)
    grant = grant_in_force(access, caller, resource, Right.read, outcome)
    known = {item.name: item for item in resource.fields}
    # in the resource's order: the grant's JSON keeps no order on every database
    visible = [
        item.name
        for item in resource.fields
        if grant.fields.get(item.name, MaskMode.hidden) != MaskMode.hidden
    ]
    asked = _one(params, "fields")
    fields = (
        list(dict.fromkeys(name.strip() for name in asked.split(",") if name.strip()))
        if asked
        else visible
    )
    outcome.fields = fields
    if asked is not None and not fields:
        raise ValidationFailed("name at least one field, or leave fields out", field="fields")
    for name in fields:
        if name not in known:
            raise ValidationFailed(f"resource {code} has no field {name!r}", field="fields")
        if name not in visible:
            raise FieldNotGranted(f"field {name} is not in grant {grant.id}", field=name)
    limit_text = _one(params, "limit")
    limit = settings.gateway.page_size_default
    if limit_text is not None:
        if (
            not (limit_text.isascii() and limit_text.isdigit())
            or len(limit_text) > 9
            or int(limit_text) < 1
        ):
            raise ValidationFailed("limit is a whole number of rows, at least 1", field="limit")
        limit = int(limit_text)
        if limit > settings.gateway.page_size_max:
            raise ValidationFailed(
                f"limit {limit} is over the most a page may hold, {settings.gateway.page_size_max}",
                field="limit",
            )
    form = _one(params, "format") or "json"
    if form not in ("json", "csv"):
        raise ValidationFailed("format is json or csv", field="format")
    conditions, values = _filters(grant, known, params)
    secret = access.key("secret", settings.secret)
    outcome.lookup = lookup_of(
        secret, [(name, text) for name, text in params if name not in RESERVED]
    )
    order: list[str] = []
    for part in (_one(params, "sort") or "").split(","):
        name = part.strip()
        if not name:
            continue
        descending = name.startswith("-")
        column = name.lstrip("-+")
        _clear_field(grant, known, column, "sorting")
        order.append(f"{quote(column)} {'DESC' if descending else 'ASC'}")
    order += [f"{quote(item.name)} ASC" for item in resource.fields if item.primary_key]
    region_sql, region_values = _region_filter(access, grant, resource)
    if region_sql:
        conditions.insert(0, region_sql)
        values = region_values + values
    query_id = _query_id(params)
    cursor = _one(params, "cursor")
    if cursor:
        snapshot, offset = read_cursor(settings, cursor, query_id=query_id)
        if snapshot not in lake.snapshots(code):
            raise CursorExpired(
                f"snapshot {snapshot} of {code} was replaced and removed; start from the first page"
            )
    else:
        snapshot, offset = _snapshot(lake, code), 0
    check_limits(access, grant)
    path = lake.snapshot_file(code, snapshot)
    sql = (
        f"SELECT {', '.join(quote(name) for name in fields)} "
        f"FROM read_parquet({literal(str(path))})"
        + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
        + f" ORDER BY {', '.join(order)} LIMIT {limit + 1} OFFSET {offset}"
    )
    con = reader(settings)
    try:
        rows = con.execute(sql, values).fetchall()
    except duckdb.Error as exc:
        raise ValidationFailed(f"the filter does not apply: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    more = len(rows) > limit
    rows = rows[:limit]
    modes = {name: grant.fields[name] for name in fields}
    shown = masking.apply(
        rows,
        masking.maskers(
            modes,
            {item.name: item.pii for item in resource.fields},
            key=access.key(
                ("token", caller.consumer_code),
                lambda: masking.token_key(secret, caller.consumer_code),
            ),
        ),
    )
    outcome.masking = modes
    outcome.rows = len(shown)
    next_cursor = (
        make_cursor(settings, snapshot=snapshot, offset=offset + limit, query_id=query_id)
        if more
        else None
    )
    if form == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(fields)
        writer.writerows([[_plain(value) for value in row] for row in shown])
        outcome.body = buffer.getvalue().encode()
        outcome.media_type = "text/csv; charset=utf-8"
        outcome.headers = {"X-Shuzhi-Next-Cursor": next_cursor} if next_cursor else {}
        return
    outcome.body = json_body(
        {
            "resource": code,
            "snapshot": snapshot,
            "fields": fields,
            "masking": modes,
            "data": [
                {name: _plain(value) for name, value in zip(fields, row, strict=True)}
                for row in shown
            ],
            "next_cursor": next_cursor,
        }
    )


def parse_attributes(body: bytes) -> dict[str, Any]:
    """The attributes of a verification request, or a 422 saying what is wrong."""
    try:
        document = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("the body is not JSON", field="attributes") from None
    attributes = document.get("attributes") if isinstance(document, dict) else None
    if not isinstance(attributes, dict) or not 1 <= len(attributes) <= 50:
        raise ValidationFailed(
            'give {"attributes": {"field": "value", ...}} with 1 to 50 fields', field="attributes"
        )
    for name, value in attributes.items():
        if not isinstance(value, str | int | float | bool) or (
            isinstance(value, str) and len(value) > 1000
        ):
            raise ValidationFailed(
                f"{name}: give a single value of at most 1000 characters", field=name
            )
    return attributes


def verify(
    access: Access,
    caller: Caller,
    outcome: Outcome,
    *,
    code: str,
    attributes: dict[str, Any],
    lake: Lake,
    settings: Settings,
) -> None:
    """数据核验: whether one record has all the given values; nothing else is answered."""
    resource = shared_resource(access, code)
    grant = grant_in_force(access, caller, resource, Right.verify, outcome)
    outcome.fields = list(attributes)
    outcome.lookup = lookup_of(
        settings.secret(), [(name, str(value)) for name, value in attributes.items()]
    )
    known = {item.name: item for item in resource.fields}
    conditions: list[str] = []
    values: list[Any] = []
    for name, value in attributes.items():
        if name not in known:
            raise ValidationFailed(f"resource {code} has no field {name!r}", field=name)
        if name not in grant.fields:
            raise FieldNotGranted(f"field {name} is not in grant {grant.id}", field=name)
        conditions.append(f"{quote(name)} = ?")
        values.append(convert(known[name], str(value)))
    region_sql, region_values = _region_filter(access, grant, resource)
    if region_sql:
        conditions.insert(0, region_sql)
        values = region_values + values
    check_limits(access, grant)
    path = lake.snapshot_file(code, _snapshot(lake, code))
    con = reader(settings)
    try:
        where = " AND ".join(conditions)
        found = con.execute(
            f"SELECT 1 FROM read_parquet({literal(str(path))}) WHERE {where} LIMIT 1", values
        ).fetchone()
    finally:
        con.close()
    outcome.body = json_body({"match": found is not None})


def my_grants(access: Access, caller: Caller, outcome: Outcome) -> None:
    found = access.session.scalars(
        select(Grant).where(Grant.consumer_id == caller.consumer_id).order_by(Grant.id.desc())
    )
    outcome.body = json_body(
        {"data": [queries.grant_public(item).model_dump(mode="json") for item in found]}
    )


def my_application(
    access: Access, caller: Caller, outcome: Outcome, *, application_id: int
) -> None:
    session = access.session
    found = session.get(Application, application_id)
    if found is None or found.consumer_id != caller.consumer_id:
        raise NotFound(f"no application {application_id} of consumer {caller.consumer_code}")
    outcome.body = json_body(queries.application_public(session, found).model_dump(mode="json"))
