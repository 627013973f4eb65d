"""The API router tree, mounted by the server under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from shuzhi.api.routers import audit, brain, catalog, gateway, gateway_calls, lake, orgs, regions


def router() -> APIRouter:
    api = APIRouter()
    for module in (regions, orgs, catalog, lake, gateway, audit, brain, gateway_calls):
        api.include_router(module.router)
    api.include_router(gateway.audit_router)
    return api
