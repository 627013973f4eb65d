"""The brain (大脑) in the cockpit: the indicator catalogue, an indicator's page in one
region (its history against the target, the forecast band, the drill-down into the child
regions, the region's warnings), the early warnings, and one warning's story.

Every page renders the payload of its API twin and computes no number of its own:

- ``/brain`` ↔ ``GET /api/v1/brain/indicators?system=&q=&region=``
- ``/brain/indicators/{code}`` ↔ ``GET /api/v1/brain/indicators/{code}/overview?region=&grain=``
- ``/brain/warnings`` ↔ ``GET /api/v1/brain/warnings?state=&severity=&system=&rule=&region=``
- ``/brain/warnings/{id}`` ↔ ``GET /api/v1/brain/warnings/{id}``

Every signed-in user gets these pages, as every API caller gets their twins.

The warnings list shows, unless ``?state=`` says otherwise, the open warnings: firing,
pending and recovering, those someone has to look at. ``?state=`` may be repeated;
``?state=all`` shows every state. The counts by state (``by_state``) are the query's,
among the warnings the other filters match. The list is the query's first 500 (its
default limit; the page says when it is reached), 50 a page. A select's value that is not one of its
choices (hand-edited) is ignored, as on /aggregation; an unknown region or indicator is a
404, because an empty answer would read as "nothing to report there".
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from shuzhi.brain import queries
from shuzhi.brain.rules import WARNING, Grain, Severity
from shuzhi.brain.schemas import IndicatorSpec
from shuzhi.core.enums import System
from shuzhi.core.errors import NotFound, ValidationFailed
from shuzhi.orgs.schemas import ID_MAX
from shuzhi.regions.models import Region
from shuzhi.web.app import render
from shuzhi.web.views.deps import PageActor, PageNumber, SessionDep

router = APIRouter()
WarningId = Annotated[int, Path(ge=1, le=ID_MAX)]  # a larger id names no row and overflows
Code = Annotated[str | None, Query(max_length=12)]

PROVINCE = "330000"  # whose values the catalogue shows unless told, as its API twin
OPEN_STATES = ("firing", "pending", "recovering")
EVERY_STATE = "all"
WARNINGS_SHOWN = 500  # the query's default limit; the page says when it is reached
WARNINGS_PAGE = 50
CHOOSABLE_LEVELS = ("province", "city", "county")  # towns would make the selects too long


def _choosable(names: dict[str, Region]) -> list[Region]:
    return sorted(
        (region for region in names.values() if region.level in CHOOSABLE_LEVELS),
        key=lambda region: region.code,
    )


def _known_region(names: dict[str, Region], code: str | None) -> str | None:
    if code and code not in names:
        raise NotFound(f"unknown region {code!r}", field="region")
    return code or None


def _one_of(value: str | None, choices: set[str]) -> str | None:
    return value if value in choices else None


@router.get("/brain")
def catalogue_page(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    system: str | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    region: Code = None,
) -> Response:
    """Same payload as GET /api/v1/brain/indicators: each indicator with its newest value
    and light in the region (the province by default), shown by system."""
    names = queries.regions(session)
    system = _one_of(system, {item.value for item in System})
    chosen = _known_region(names, region) or PROVINCE
    rows = queries.catalogue(session, system=system, q=q or None, region=chosen)
    return render(
        request,
        "brain/catalogue.html",
        actor=actor,
        indicators=rows,
        count=len(rows),
        system=system or "",
        q=q or "",
        region=chosen,
        region_name=names[chosen].name if chosen in names else chosen,
        regions=_choosable(names),
        province=PROVINCE,
        default_decimals=IndicatorSpec.model_fields["decimals"].default,
    )


def _grain(session: Session, code: str, grain: str | None) -> str | None:
    """``?grain=`` as a grain the indicator is reported by; the query refuses a real grain
    the indicator lacks, this refuses what is not a grain at all."""
    if not grain:
        return None
    if grain not in {item.value for item in Grain}:
        spec = queries.spec_of(queries.get(session, code))
        raise ValidationFailed(
            f"{code} is reported by {', '.join(g.value for g in spec.grains)}; choose one of those",
            field="grain",
        )
    return grain


@router.get("/brain/indicators/{code}")
def indicator_page(
    code: str,
    request: Request,
    session: SessionDep,
    actor: PageActor,
    region: Code = None,
    grain: Annotated[str | None, Query(max_length=12)] = None,
) -> Response:
    """Same payload as GET /api/v1/brain/indicators/{code}/overview?region=&grain=."""
    indicator = queries.get(session, code)
    page = queries.indicator_page(
        session, indicator, region=region or None, grain=_grain(session, code, grain)
    )
    return render(
        request,
        "brain/indicator.html",
        actor=actor,
        page=page,
        spec=queries.spec_of(indicator),
        states=WARNING.states,
    )


@router.get("/brain/warnings")
def warnings_page(
    request: Request,
    session: SessionDep,
    actor: PageActor,
    page: PageNumber,
    state: list[str] = Query(default_factory=list),
    severity: str | None = None,
    system: str | None = None,
    rule: Annotated[str | None, Query(max_length=63)] = None,
    region: Code = None,
    indicator: Annotated[str | None, Query(max_length=63)] = None,
) -> Response:
    """Same payload as GET /api/v1/brain/warnings with the same filters; the open states
    (firing, pending, recovering) unless ``state`` is given, every state with ``all``."""
    names = queries.regions(session)
    rules = queries.rules(session)
    if EVERY_STATE in state:
        states: list[str] = []
    else:
        states = [code for code in dict.fromkeys(state) if code in WARNING.states]
        states = states or list(OPEN_STATES)
    severity = _one_of(severity, {item.value for item in Severity})
    system = _one_of(system, {item.value for item in System})
    rule = _one_of(rule, {item.code for item in rules})
    chosen = _known_region(names, region)
    if indicator:
        queries.get(session, indicator)
    found = queries.warnings(
        session,
        states=states,
        rule=rule,
        indicator=indicator or None,
        region=chosen,
        system=system,
        severity=severity,
        limit=WARNINGS_SHOWN,
    )
    first = (page - 1) * WARNINGS_PAGE
    return render(
        request,
        "brain/warnings.html",
        actor=actor,
        found=found,
        rows=found.data[first : first + WARNINGS_PAGE],
        first=first,
        page=page,
        pages=max(1, -(-found.count // WARNINGS_PAGE)),
        states=WARNING.states,
        chosen_states=states,
        state_query=urlencode([("state", code) for code in states or [EVERY_STATE]]),
        open_states=OPEN_STATES,
        severity=severity or "",
        system=system or "",
        rule=rule or "",
        region=chosen or "",
        indicator=indicator or "",
        rules=rules,
        regions=_choosable(names),
        limit=WARNINGS_SHOWN,
    )


@router.get("/brain/warnings/{warning_id}")
def warning_page(
    warning_id: WarningId, request: Request, session: SessionDep, actor: PageActor
) -> Response:
    """Same payload as GET /api/v1/brain/warnings/{id}: the warning with every change of
    its state and the values behind it."""
    warning = queries.warning_public(
        session,
        queries.get_warning(session, warning_id),
        names=queries.regions(session),
        with_events=True,
    )
    return render(
        request, "brain/warning.html", actor=actor, warning=warning, states=WARNING.states
    )
