"""Errors as problem+json (RFC 9457)."""

from __future__ import annotations

from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shuzhi.core.context import current_request_id
from shuzhi.core.errors import ShuzhiError

MEDIA_TYPE = "application/problem+json"


def problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": f"/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": current_request_id(),
        **extra,
    }
    return JSONResponse(jsonable_encoder(body), status_code=status, media_type=MEDIA_TYPE)


def from_error(exc: ShuzhiError) -> JSONResponse:
    extra = {"field": exc.field} if exc.field else {}
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    response = problem(exc.status, exc.slug, exc.title, exc.detail, **extra)
    if headers:
        response.headers.update(headers)
    return response


def from_validation(exc: RequestValidationError) -> JSONResponse:
    errors = [
        {
            "field": ".".join(str(part) for part in error["loc"] if part != "body"),
            "message": error["msg"],
        }
        for error in exc.errors()
    ]
    first = errors[0] if errors else {"field": "", "message": "invalid request"}
    return problem(
        422,
        "validation",
        "Invalid input",
        f"{first['field']}: {first['message']}",
        field=first["field"],
        errors=errors,
    )
