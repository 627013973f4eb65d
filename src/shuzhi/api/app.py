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
    for module in (
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
        gateway_calls,
    ):
        api.include_router(module.router)
    api.include_router(gateway.audit_router)
    api.include_router(notify.inbox_router)
    return api
