"""The FastAPI application: ``create_app()`` builds it; the lifespan loads models and the index once.

Run it with ``trialsift serve`` (or ``uvicorn --factory service.app:create_app``). Every setting comes from
:class:`~service.settings.Settings` (``TRIALSIFT_*`` environment variables).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.inputs import describe_errors
from service.settings import Settings

log = logging.getLogger("trialsift.service")
access_log = logging.getLogger("trialsift.access")

API_VERSION = "1"
_PID = os.getpid()


def create_app(settings: Settings | None = None, engine: Any = None) -> FastAPI:
    """The API application.

    Args:
        settings: default: read from the environment.
        engine: an already opened :class:`~service.engine.Engine` (tests share one); default: opened in
            the lifespan from ``settings`` and closed at shutdown.
    """
    settings = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import anyio.to_thread
        from starlette.concurrency import run_in_threadpool

        # Sync routes run in anyio's thread pool; its size is how many run at once in this worker.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.concurrency
        owned = engine is None
        if owned:
            from service.engine import Engine, configure_threads

            configure_threads(settings.threads)
            app.state.engine = await run_in_threadpool(Engine.open, settings)
            # The index's entries are millions of long-lived objects: out of the collector's way, a full
            # collection no longer walks them (one used to land in a request now and then, at the p99).
            gc.freeze()
        else:
            app.state.engine = engine
        log.info("ready: %s", json.dumps(app.state.engine.counts()))
        try:
            yield
        finally:
            if owned:
                await run_in_threadpool(app.state.engine.close)

    from service.routes import router

    app = FastAPI(
        title="trialsift",
        version=API_VERSION,
        summary="Structured data from clinical-trial registry records and protocols, and search over it.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.include_router(router)
    _install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # Outermost: it sees every request, refuses oversized bodies before anything reads them, and logs.
    app.add_middleware(RequestMiddleware, max_body=settings.max_body_bytes, log_requests=settings.access_log)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": describe_errors(exc.errors())})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI's "There was an error parsing the body" (a JSON body that is not UTF-8, say): say what
            # was wrong, with the status every other unreadable body gets.
            return JSONResponse(
                status_code=422, content={"detail": f"body could not be read: {exc.__cause__}"}
            )
        return JSONResponse(
            status_code=exc.status_code, content={"detail": str(exc.detail)}, headers=exc.headers
        )


class RequestMiddleware:
    """Request id, body size limit and one JSON access-log line per request (pure ASGI: cheap)."""

    def __init__(self, app: ASGIApp, max_body: int, log_requests: bool = True) -> None:
        self.app, self.max_body, self.log_requests = app, max_body, log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid
        status = 0
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        length = headers.get(b"content-length")
        try:
            if length is not None and length.isdigit() and int(length) > self.max_body:
                await self._send_json(send_wrapper, 413, self._too_large(int(length)))
                return
            received = 0

            async def receive_limited() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body:
                        # An HTTPException passes through FastAPI's body parsing (anything else would
                        # become its generic 400) to the app's handler, which answers 413.
                        raise StarletteHTTPException(413, self._too_large(None))
                return message

            await self.app(scope, receive_limited, send_wrapper)
        except Exception:
            # Here rather than in an app exception handler: Starlette runs those outside this middleware,
            # so the 500 would carry no request id and be logged with no status.
            log.exception(
                "unhandled error in %s %s (request %s)", scope.get("method"), scope.get("path"), rid
            )
            if response_started:  # pragma: no cover - the client sees a cut response; nothing else to do
                raise
            await self._send_json(send_wrapper, 500, f"internal error (request id {rid})")
        finally:
            if self.log_requests:
                access_log.info(
                    json.dumps(
                        {
                            "ts": round(time.time(), 3),
                            "request_id": rid,
                            "method": scope.get("method"),
                            "path": scope.get("path"),
                            "query": scope.get("query_string", b"").decode("latin-1"),
                            "status": status,
                            "ms": round((time.perf_counter() - started) * 1000, 2),
                            "client": (scope.get("client") or ["-"])[0],
                            "worker": _PID,
                        }
                    )
                )

    def _too_large(self, length: int | None) -> str:
        size = f"{length:,} bytes" if length is not None else "over the limit"
        return f"request body is {size}; the limit is {self.max_body:,} bytes (TRIALSIFT_MAX_BODY_BYTES)"

    @staticmethod
    async def _send_json(send: Send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
