"""The ASGI application: the REST API, the cockpit, health, metrics, one middleware stack."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from shuzhi import __version__, web
from shuzhi.api import app as api_app
from shuzhi.api import problems
from shuzhi.core import ids, logs
from shuzhi.core.context import request_id_var
from shuzhi.core.db import Database, get_database
from shuzhi.core.errors import Message, ShuzhiError, TooLarge
from shuzhi.core.settings import Settings, get_settings
from shuzhi.demo.build import logins as demo_logins

log = logging.getLogger("shuzhi.http")

REQUESTS = Counter("shuzhi_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("shuzhi_http_request_seconds", "HTTP request duration", ["method", "route"])

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return (
        path.startswith(("/api/", "/gateway/v1/"))  # the cockpit's gateway pages are HTML
        or path in ("/healthz", "/readyz", "/metrics")
        or "application/json" in request.headers.get("accept", "")
    )


def _unexpected(request: Request) -> Response:
    if _wants_json(request):
        return problems.unexpected()
    return web.error_page(
        request,
        ShuzhiError(f"{problems.UNEXPECTED_DETAIL}: {request_id_var.get()}"),
        status=500,
    )


# room in a request for the form around an uploaded file
ENVELOPE = 2**20


def _over_the_limit(request: Request, settings: Settings) -> TooLarge | None:
    """A body announced larger than any upload may be is refused before it is read: the
    largest request the platform takes is an upload of ``lake.upload_max_mb``."""
    announced = request.headers.get("content-length", "")
    limit = settings.lake.upload_max_mb * 2**20
    if not (announced.isdigit() and int(announced) > limit + ENVELOPE):
        return None
    return TooLarge(
        Message(
            "the request is over the upload limit of {upload_max_mb} MiB",
            upload_max_mb=settings.lake.upload_max_mb,
        )
    )


def create_app(database: Database | None = None, settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    database = database or get_database()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        settings.secret()  # production without a key stops here, not at the first login
        database.check_revision()
        stop_checkpoints = database.checkpoint_in_background(settings.database.checkpoint_seconds)
        try:
            yield
        finally:
            stop_checkpoints()

    app = FastAPI(
        title="shuzhi",
        version=__version__,
        description="Integrated intelligent public data platform (一体化智能化公共数据平台)",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.database = database
    app.state.settings = settings
    demo = demo_logins(settings.data_dir)
    app.state.demo_logins = (
        [{**login, "password": demo["password"]} for login in demo["logins"]] if demo else None
    )

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        incoming = request.headers.get("x-request-id", "")
        rid = incoming if 8 <= len(incoming) <= 64 and incoming.isascii() else ids.request_id()
        token = request_id_var.set(rid)
        started = time.perf_counter()
        try:
            too_large = _over_the_limit(request, settings)
            response = (
                await call_next(request)
                if too_large is None
                else problems.from_error(too_large)
                if _wants_json(request)
                else web.error_page(request, too_large)
            )
        except Exception:
            # everything else is answered by the exception handlers; this is a bug of ours
            log.exception(
                "unexpected error in %s %s",
                request.method,
                request.url.path,
                extra={"request_id": rid},
            )
            response = _unexpected(request)
        finally:
            request_id_var.reset(token)
        elapsed = time.perf_counter() - started
        route = getattr(request.scope.get("route"), "path", "unmatched")
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        LATENCY.labels(request.method, route).observe(elapsed)
        response.headers["X-Request-ID"] = rid
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        log.info(
            "%s %s %s",
            request.method,
            request.url.path,
            response.status_code,
            extra={
                "request_id": rid,
                "status": response.status_code,
                "ms": round(elapsed * 1000, 1),
                "route": route,
            },
        )
        return response

    @app.exception_handler(ShuzhiError)
    async def shuzhi_error(request: Request, exc: ShuzhiError) -> Response:
        if _wants_json(request):
            return problems.from_error(exc)
        return web.error_page(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        if _wants_json(request):
            return problems.from_validation(exc)
        return web.error_page(request, problems.validation_failure(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_json(request):
            return problems.problem(exc.status_code, "http", str(exc.detail), str(exc.detail))
        return web.error_page(request, ShuzhiError(str(exc.detail)), status=exc.status_code)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> Response:
        try:
            database.check_revision()
        except ShuzhiError as exc:
            return problems.from_error(exc)
        return JSONResponse({"status": "ready", "database": database.backend})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(api_app.router())
    web.install(app)
    return app


def serve(*, host: str, port: int, settings: Settings | None = None) -> None:
    import uvicorn

    settings = settings or get_settings()
    logs.configure(settings)
    uvicorn.run(
        create_app(settings=settings), host=host, port=port, log_config=None, access_log=False
    )
