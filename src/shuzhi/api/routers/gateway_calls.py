"""The gateway itself: signed calls from consumers' systems under /gateway/v1.

Every parameter is read from the raw request and checked by the gateway, not by FastAPI,
so that a malformed call is refused through the same path as every other refusal and
lands in the access log.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import APIRouter, Request, Response

from shuzhi.api import problems
from shuzhi.core.context import current_request_id
from shuzhi.core.errors import ShuzhiError, TooLarge, ValidationFailed
from shuzhi.gateway import calls, proxy, reads, signing
from shuzhi.gateway.access import Access
from shuzhi.gateway.rules import HTTP_METHODS
from shuzhi.lake.queries import lake_of

router = APIRouter(prefix="/gateway/v1", tags=["gateway calls"])

BODY_MAX = 64 * 1024

SIGNED = {
    "parameters": [
        {"name": name, "in": "header", "required": required, "schema": {"type": "string"}}
        for name, required in (
            (signing.HEADER_KEY, True),
            (signing.HEADER_DATE, True),
            (signing.HEADER_NONCE, True),
            (signing.HEADER_SIGNATURE, True),
            (signing.HEADER_PURPOSE, False),
            (signing.HEADER_USER, False),
        )
    ]
}

RECORD_PARAMETERS = {
    "parameters": [
        *SIGNED["parameters"],
        *(
            {"name": name, "in": "query", "required": False, "description": text}
            for name, text in (
                ("fields", "comma-separated granted fields; all visible ones if absent"),
                ("sort", "comma-separated clear fields, '-' before one for descending"),
                ("limit", "rows in the page (gateway.page_size_max at most)"),
                ("cursor", "next_cursor of the previous page"),
                ("format", "json (default) or csv"),
                ("<field>[__op]", "filter on a clear field: eq, ne, gt, gte, lt, lte, in"),
            )
        ),
    ]
}


def _refuse(exc: ShuzhiError) -> calls.Reply:
    answer = problems.from_error(exc)
    return calls.Reply(exc.status, bytes(answer.body), problems.MEDIA_TYPE, dict(exc.headers))


async def _body(request: Request) -> bytes:
    """The body, read only when the request has one (HTTP/1.1: a length or a transfer
    coding says so); reading through the middleware stack costs a GET as much as its
    checks."""
    headers = request.headers
    if "content-length" not in headers and "transfer-encoding" not in headers:
        return b""
    return await request.body()


# event loop → the turns of its gateway calls (a limiter belongs to one loop)
_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def _turns(threads: int) -> CapacityLimiter:
    """How many gateway calls this worker runs at once (``gateway.threads``): the rest
    wait on the event loop rather than crowd the interpreter and the writer's turn."""
    loop = asyncio.get_running_loop()
    found = _TURNS.get(loop)
    if found is None or found.total_tokens != threads:
        found = _TURNS[loop] = CapacityLimiter(threads)
    return found


async def _serve(
    request: Request,
    *,
    operation: str,
    target: str | None,
    work: Callable[..., None],
    upstream: bool = False,
) -> Response:
    database = request.app.state.database
    settings = request.app.state.settings
    body = await _body(request)
    call = calls.Call(
        method=request.method,
        # the path exactly as sent (percent-encoding and all) is what the caller signed
        path=request.scope.get("raw_path", b"").decode("latin-1") or request.url.path,
        query=signing.query_pairs(request.url.query),
        headers={name.lower(): value for name, value in request.headers.items()},
        body=body,
        request_id=current_request_id() or "",
    )

    def checked(access: Access, caller: calls.Caller, outcome: calls.Outcome) -> None:
        if len(body) > BODY_MAX:
            raise TooLarge(f"a gateway call's body is at most {BODY_MAX // 1024} KiB")
        work(access, caller, outcome, settings=settings)

    reply = await anyio.to_thread.run_sync(
        functools.partial(
            calls.serve,
            database,
            call,
            operation=operation,
            target=target,
            work=checked,
            refuse=_refuse,
            settings=settings,
        ),
        # a service call mostly waits for its upstream: it takes a thread of the
        # shared pool, not one of the gateway's turns
        limiter=None if upstream else _turns(settings.gateway.threads),
    )
    return Response(
        content=reply.body,
        status_code=reply.status,
        media_type=reply.media_type,
        headers=reply.headers,
    )


@router.get("/resources/{code}/records", openapi_extra=RECORD_PARAMETERS)
async def records(code: str, request: Request) -> Response:
    """Rows of a granted resource: granted fields, masked as granted, inside the grant's
    region, filtered, sorted and paged."""
    params = signing.query_pairs(request.url.query)

    def work(
        access: Access, caller: calls.Caller, outcome: calls.Outcome, *, settings: Any
    ) -> None:
        reads.records(
            access,
            caller,
            outcome,
            code=code,
            params=params,
            lake=lake_of(settings),
            settings=settings,
        )

    return await _serve(request, operation="read", target=code[:64], work=work)


@router.post("/resources/{code}/verify", openapi_extra=SIGNED)
async def verify(code: str, request: Request) -> Response:
    """数据核验: ``{"attributes": {field: value}}`` → ``{"match": true|false}``."""
    raw = await _body(request)

    def work(
        access: Access, caller: calls.Caller, outcome: calls.Outcome, *, settings: Any
    ) -> None:
        reads.verify(
            access,
            caller,
            outcome,
            code=code,
            attributes=reads.parse_attributes(raw),
            lake=lake_of(settings),
            settings=settings,
        )

    return await _serve(request, operation="verify", target=code[:64], work=work)


@router.get("/grants", openapi_extra=SIGNED)
async def my_grants(request: Request) -> Response:
    """The calling consumer's grants."""

    def work(
        access: Access, caller: calls.Caller, outcome: calls.Outcome, *, settings: Any
    ) -> None:
        reads.my_grants(access, caller, outcome)

    return await _serve(request, operation="grants", target=None, work=work)


@router.get("/applications/{application_id}", openapi_extra=SIGNED)
async def my_application(application_id: str, request: Request) -> Response:
    """One of the calling consumer's applications."""

    def work(
        access: Access, caller: calls.Caller, outcome: calls.Outcome, *, settings: Any
    ) -> None:
        if not (application_id.isascii() and application_id.isdigit()) or len(application_id) > 9:
            raise ValidationFailed("an application id is a positive whole number", field="id")
        reads.my_application(access, caller, outcome, application_id=int(application_id))

    return await _serve(request, operation="application", target=None, work=work)


async def call_service(code: str, path: str, request: Request) -> Response:
    """业务协同: the call goes on to the department's service, if the grant allows it."""
    raw = await _body(request)
    query = signing.query_pairs(request.url.query)
    headers = {name.lower(): value for name, value in request.headers.items()}

    def work(
        access: Access, caller: calls.Caller, outcome: calls.Outcome, *, settings: Any
    ) -> None:
        proxy.call(
            access,
            caller,
            outcome,
            code=code,
            path=path,
            method=request.method,
            query=query,
            body=raw,
            headers=headers,
            settings=settings,
        )

    return await _serve(request, operation="call", target=code[:64], work=work, upstream=True)


# one route per method, so that each has its own operation in the OpenAPI document
for _method in HTTP_METHODS:
    router.add_api_route(
        "/services/{code}/{path:path}",
        call_service,
        methods=[_method],
        operation_id=f"call_service_{_method.lower()}",
        openapi_extra=SIGNED,
    )
