"""The API router tree, mounted by the server under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from shuzhi.api.routers import (
    audit,
    brain,
    catalog,
    cockpit,
    gateway,
    gateway_calls,
    lake,
    loop,
    notify,
    orgs,
    reforms,
    regions,
)


def router() -> APIRouter:
    api = APIRouter()
    # the gateway first: its calls come from machines, many a second, and a request is
    # matched against the routes in order
    for module in (
        gateway_calls,
        regions,
        orgs,
        catalog,
        lake,
        gateway,
        audit,
        brain,
        loop,
        cockpit,
        reforms,
        notify,
    ):
        api.include_router(module.router)
    api.include_router(gateway.audit_router)
    api.include_router(notify.inbox_router)
    return api
