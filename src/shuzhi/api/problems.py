"""Errors as problem+json (RFC 9457)."""

from __future__ import annotations

from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shuzhi.core.context import current_request_id
from shuzhi.core.errors import ShuzhiError, ValidationFailed

MEDIA_TYPE = "application/problem+json"
UNEXPECTED_DETAIL = "an unexpected error occurred; quote the request id when reporting it"


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
    response = problem(exc.status, exc.slug, exc.title, exc.detail, **extra)
    response.headers.update(exc.headers)
    return response


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(str(part) for part in error["loc"] if part != "body"),
            "message": error["msg"],
        }
        for error in exc.errors()
    ]


def validation_failure(exc: RequestValidationError) -> ValidationFailed:
    """The first complaint, as the error a cockpit page shows."""
    errors = validation_errors(exc)
    first = errors[0] if errors else {"field": "", "message": "invalid request"}
    return ValidationFailed(f"{first['field']}: {first['message']}", field=first["field"])


def from_validation(exc: RequestValidationError) -> JSONResponse:
    failure = validation_failure(exc)
    return problem(
        422,
        "validation",
        "Invalid input",
        failure.detail,
        field=failure.field or "",
        errors=validation_errors(exc),
    )


def unexpected() -> JSONResponse:
    """A failure of ours, not the caller's: no details, only the id to quote to support."""
    return problem(500, "internal", "Internal error", UNEXPECTED_DETAIL)
