"""Templates, the page context every view shares, navigation, and error pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import SQLAlchemyError

from shuzhi.brain import rules as brain_rules
from shuzhi.catalog import rules as catalog_rules
from shuzhi.core import enums
from shuzhi.core.errors import ShuzhiError, Unauthenticated
from shuzhi.core.permissions import ANONYMOUS, Actor, allowed
from shuzhi.gateway import rules as gateway_rules
from shuzhi.lake import rules as lake_rules
from shuzhi.loop import rules as loop_rules
from shuzhi.notify import queries as notify_queries
from shuzhi.regions.rules import Level
from shuzhi.web import flash, i18n
from shuzhi.web.session import LANG_COOKIE, csrf_token, locale_of, set_cookie

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

LABELS: dict[str, type[enums.LabeledEnum]] = {
    "system": enums.System,
    "light": enums.Light,
    "classification": catalog_rules.Classification,
    "format": catalog_rules.Format,
    "update_cycle": catalog_rules.UpdateCycle,
    "sharing": catalog_rules.Sharing,
    "open": catalog_rules.OpenAttribute,
    "grade": catalog_rules.Grade,
    "national_level": catalog_rules.NationalLevel,
    "field_type": catalog_rules.FieldType,
    "pii": catalog_rules.PiiKind,
    "field_format": catalog_rules.FieldFormat,
    "level": Level,
    "rule": lake_rules.Rule,
    "batch_state": lake_rules.BatchState,
    "mode": lake_rules.Mode,
    "mask_mode": gateway_rules.MaskMode,
    "credential_state": gateway_rules.CredentialState,
    "right": gateway_rules.Right,
    "grain": brain_rules.Grain,
    "direction": brain_rules.Direction,
    "measure": brain_rules.MeasureKind,
    "additivity": brain_rules.Additivity,
    "rule_kind": brain_rules.RuleKind,
    "severity": brain_rules.Severity,
    "channel": loop_rules.Channel,
    "problem_severity": loop_rules.ProblemSeverity,
    "batch": loop_rules.Batch,
    "reform_level": loop_rules.ReformLevel,
}


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str
    action: str | tuple[str, ...] | None = None  # shown only to actors allowed an action...
    anywhere: bool = False  # ...in any scope, rather than platform-wide

    def shown_to(self, actor: Actor) -> bool:
        if self.action is None:
            return True
        actions = (self.action,) if isinstance(self.action, str) else self.action
        if self.anywhere:
            return any(actor.scopes_for(action) for action in actions)
        return any(allowed(actor, action) for action in actions)


# Later parts (lake, gateway, brain, loop) add their entries here as they land.
NAV = (
    NavItem("/", "Cockpit"),
    NavItem("/catalog", "Catalog"),
    NavItem("/aggregation", "Aggregation health"),
    NavItem(
        "/gateway/applications",
        "Gateway",
        action=("gateway.apply", "gateway.decide", "gateway.manage_consumers", "gateway.operate"),
        anywhere=True,
    ),
    NavItem("/brain", "Brain"),
    NavItem("/brain/warnings", "Warnings"),
    NavItem("/problems", "Problems"),
    NavItem("/reforms", "Reforms"),
    NavItem("/departments", "Departments"),
    NavItem("/regions", "Regions"),
    NavItem("/users", "Users", action="orgs.manage_users", anywhere=True),
    NavItem("/changes", "Change log", action="audit.read"),
    NavItem("/audit/access-log", "Access log", action="audit.read"),
    NavItem("/inbox", "Inbox"),
    NavItem("/webhooks", "Webhooks", action="notify.webhooks"),
)


def active_entry(nav: list[NavItem], path: str) -> str | None:
    """The entry a page belongs to: the longest that its path starts with, so that
    /brain/warnings/7 is under Warnings, not Brain; / only for the home page."""
    under = [
        item.path
        for item in nav
        if (item.path == "/" and path == "/") or (item.path != "/" and path.startswith(item.path))
    ]
    return max(under, key=len, default=None)


def translator_for(request: Request) -> Callable[[str], str]:
    return i18n.translator(locale_of(request))


def label(locale: str) -> Any:
    def _label(kind: str, value: str | None) -> str:
        if value is None:
            return ""
        enum = LABELS.get(kind)
        return value if enum is None else enum.label_of(value, locale)

    return _label


def inbox_unread(request: Request, actor: Actor) -> int:
    """The inbox badge of the navigation: one indexed count per whole page."""
    if not actor.authenticated or actor.id is None:
        return 0
    try:
        with request.app.state.database.session() as session:
            return notify_queries.unread_count(session, user_id=actor.id)
    except SQLAlchemyError:
        return 0  # an error page still renders when the store cannot answer


def render(
    request: Request, template: str, *, actor: Actor = ANONYMOUS, status: int = 200, **context: Any
) -> HTMLResponse:
    locale = locale_of(request)
    nav = [item for item in NAV if item.shown_to(actor)]
    # a fragment swapped in by htmx has no place for the message; the next page shows it
    whole_page = not Path(template).name.startswith("_")
    response = templates.TemplateResponse(
        request,
        template,
        {
            "_": i18n.translator(locale),
            "say": lambda text: i18n.say(text, locale),
            "locale": locale,
            "label": label(locale),
            "labels": LABELS,
            "actor": actor,
            "display_name": getattr(request.state, "display_name", actor.name),
            "nav": nav,
            "nav_active": active_entry(nav, request.url.path),
            "inbox_unread": inbox_unread(request, actor) if whole_page else 0,
            "path": request.url.path,
            "csrf": csrf_token(request) if actor.authenticated else "",
            "flash": flash.take(request) if whole_page else None,
            **context,
        },
        status_code=status,
    )
    if whole_page:
        flash.forget(request, response)
    if request.query_params.get("lang") in i18n.LOCALES:
        set_cookie(request, response, LANG_COOKIE, locale, max_age=365 * 86400, httponly=False)
    return response


def error_page(request: Request, exc: ShuzhiError, status: int | None = None) -> Response:
    if isinstance(exc, Unauthenticated):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    return render(
        request,
        "error.html",
        status=status or exc.status,
        error=exc,
        actor=getattr(request.state, "actor", ANONYMOUS),
    )


def install(app: FastAPI) -> None:
    from shuzhi.web.views import (
        audit,
        auth,
        brain,
        catalog,
        gateway,
        home,
        lake,
        loop,
        notify,
        orgs,
        reforms,
        regions,
    )

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (auth, home, catalog, lake, gateway, brain, orgs, regions, audit, notify, loop):
        app.include_router(module.router, include_in_schema=False)
    app.include_router(reforms.router, include_in_schema=False)
