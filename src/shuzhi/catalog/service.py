"""Use cases of the catalog; the only place that writes resources."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from shuzhi.catalog import queries
from shuzhi.catalog.models import Resource, ResourceField
from shuzhi.catalog.rules import EDITABLE_STATES, LIFECYCLE
from shuzhi.catalog.schemas import ApplyResult, ResourceBase, ResourceCreate, ResourceUpdate
from shuzhi.core import audit, clock
from shuzhi.core.documents import load_yaml
from shuzhi.core.errors import Conflict, InvalidTransition, Message, ShuzhiError, ValidationFailed
from shuzhi.core.models import WorkflowTransition
from shuzhi.core.permissions import Actor, Scope, require
from shuzhi.orgs import queries as orgs
from shuzhi.regions import queries as regions


def _search_text(data: ResourceBase, code: str) -> str:
    parts = [code, data.name, data.summary, " ".join(data.tags)]
    for field in data.fields:
        parts.extend((field.name, field.title, field.description))
    return " ".join(part for part in parts if part).lower()


def _values(session: Session, data: ResourceBase) -> dict[str, Any]:
    provider = orgs.department(session, data.provider)
    region = regions.get(session, data.region)
    return {
        "name": data.name,
        "summary": data.summary,
        "provider_id": provider.id,
        "classification": data.classification.value,
        "format": data.format.value,
        "update_cycle": data.update_cycle.value,
        "system": data.system.value,
        "sharing": data.sharing.value,
        "sharing_conditions": data.sharing_conditions,
        "open_attribute": data.open.value,
        "grade": data.grade.value,
        "national_level": data.national_level.value,
        "region_code": region.code,
        "tags": list(data.tags),
    }


def _field_rows(data: ResourceBase) -> list[dict[str, Any]]:
    return [
        {**field.model_dump(mode="json"), "position": position}
        for position, field in enumerate(data.fields)
    ]


def _view(resource: Resource) -> dict[str, Any]:
    view = audit.snapshot(resource)
    view.pop("search_text", None)
    view["fields"] = [
        {
            key: value
            for key, value in audit.snapshot(field).items()
            if key not in ("id", "resource_id")
        }
        for field in resource.fields
    ]
    return view


def create(session: Session, *, actor: Actor, data: ResourceCreate) -> Resource:
    values = _values(session, data)
    require(
        actor,
        "catalog.edit",
        Scope(department_id=values["provider_id"], region_code=values["region_code"]),
        what=Message("resources of {provider}", provider=data.provider),
    )
    if session.scalar(select(Resource.id).where(Resource.code == data.code)):
        raise Conflict(
            Message("catalog resource {code} already exists", code=data.code), field="code"
        )
    now = clock.now()
    resource = Resource(
        code=data.code,
        state=LIFECYCLE.initial,
        version=1,
        search_text=_search_text(data, data.code),
        created_at=now,
        updated_at=now,
        fields=[ResourceField(**row) for row in _field_rows(data)],
        **values,
    )
    session.add(resource)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="catalog_resource.create",
        object_type="catalog_resource",
        object_id=resource.code,
        object_repr=resource.name,
        after=_view(resource),
    )
    return resource


def _differs(resource: Resource, values: dict[str, Any], fields: list[dict[str, Any]]) -> bool:
    if any(getattr(resource, key) != value for key, value in values.items()):
        return True
    current = [
        {key: getattr(field, key) for key in fields[0]} if fields else {}
        for field in resource.fields
    ]
    return current != fields


def update(session: Session, *, actor: Actor, code: str, data: ResourceUpdate) -> Resource:
    resource = queries.get(session, actor=actor, code=code)
    require(
        actor,
        "catalog.edit",
        queries.scope_of(resource),
        what=Message("resource {code}", code=code),
    )
    # Lock the row and read it afresh, as transitions do: an edit racing a submit or another
    # edit sees what the other committed (PostgreSQL; SQLite has one writer at a time).
    session.refresh(resource, attribute_names=["state", "version"], with_for_update=True)
    session.refresh(resource)  # the rest as committed, now that the row is ours
    if data.version is not None and data.version != resource.version:
        raise Conflict(
            Message(
                "resource {code} is at version {version} now, not "
                "{version2}: someone changed it since you opened it; reload "
                "and edit again",
                code=code,
                version=resource.version,
                version2=data.version,
            ),
            field="version",
        )
    values = _values(session, data)
    if (
        values["provider_id"] != resource.provider_id
        or values["region_code"] != resource.region_code
    ):
        require(
            actor,
            "catalog.edit",
            Scope(department_id=values["provider_id"], region_code=values["region_code"]),
            what=Message("resources of {provider}", provider=data.provider),
        )
    fields = _field_rows(data)
    if not _differs(resource, values, fields):
        return resource
    if resource.state not in EDITABLE_STATES:
        raise InvalidTransition(
            Message(
                "resource {code} is {state}; only draft or rejected "
                "resources can be edited (withdraw and revise a published "
                "one first)",
                code=code,
                state=resource.state,
                state_label=LIFECYCLE.state_label(resource.state),
            )
        )
    before = _view(resource)
    for key, value in values.items():
        setattr(resource, key, value)
    resource.fields.clear()
    session.flush()
    resource.fields.extend(ResourceField(**row) for row in fields)
    resource.search_text = _search_text(data, code)
    resource.version += 1
    resource.updated_at = clock.now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="catalog_resource.update",
        object_type="catalog_resource",
        object_id=code,
        object_repr=resource.name,
        before=before,
        after=_view(resource),
    )
    return resource


def transition(
    session: Session, *, actor: Actor, code: str, name: str, comment: str | None = None
) -> WorkflowTransition:
    resource = queries.get(session, actor=actor, code=code)
    row = LIFECYCLE.fire(
        session,
        resource,
        name,
        actor=actor,
        scope=queries.scope_of(resource),
        object_id=code,
        comment=comment,
    )
    resource.updated_at = clock.now()
    session.flush()
    return row


def parse_file(text: str, *, source: str) -> list[ResourceCreate]:
    """Every resource of a catalog YAML file, or one error naming the file and resource."""
    document = load_yaml(text, source=source)
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise ValidationFailed(
            Message("{source}: expected a mapping with a 'resources' list", source=source)
        )
    parsed: list[ResourceCreate] = []
    seen: set[str] = set()
    for index, item in enumerate(document["resources"], start=1):
        code = item.get("code") if isinstance(item, dict) else None
        label = code if isinstance(code, str) else f"#{index}"
        try:
            resource = ResourceCreate.model_validate(item)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise ValidationFailed(
                Message(
                    "{source}: resource {label}: {value}{error_item}",
                    source=source,
                    label=label,
                    value=where + ": " if where else "",
                    error_item=error["msg"],
                )
            ) from None
        if resource.code in seen:
            raise ValidationFailed(
                Message(
                    "{source}: resource {code} appears twice", source=source, code=resource.code
                )
            )
        seen.add(resource.code)
        parsed.append(resource)
    return parsed


def apply(session: Session, *, actor: Actor, text: str, source: str) -> ApplyResult:
    """Create or update every resource of a YAML file, idempotently, all or nothing.

    The caller's transaction is rolled back by the interface if any resource fails, and
    the error names the file, the resource and the reason.
    """
    result = ApplyResult(created=[], updated=[], unchanged=[])
    for data in parse_file(text, source=source):
        try:
            existing = session.scalar(select(Resource).where(Resource.code == data.code))
            if existing is None:
                create(session, actor=actor, data=data)
                result.created.append(data.code)
                continue
            version = existing.version
            update(
                session,
                actor=actor,
                code=data.code,
                data=ResourceUpdate(**data.model_dump(exclude={"code"})),
            )
            (result.updated if existing.version != version else result.unchanged).append(data.code)
        except ShuzhiError as exc:
            raise exc.reworded(
                Message(
                    "{source}: resource {code}: {detail}",
                    source=source,
                    code=data.code,
                    detail=exc.detail,
                )
            ) from None
    return result
