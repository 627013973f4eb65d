"""The API router tree, mounted by the server under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from shuzhi.api.routers import audit, catalog, lake, orgs, regions


def router() -> APIRouter:
    api = APIRouter()
    for module in (regions, orgs, catalog, lake, audit):
        api.include_router(module.router)
    return api
