"""Every error as ``{"error": …, "hint": …}`` with its HTTP status, never a traceback; the body-size limit."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from helios_core.errors import (
    AwsError,
    ClickHouseUnavailable,
    ConfigError,
    Conflict,
    Forbidden,
    HeliosError,
    NotFound,
    QueryError,
    ValidationError,
    error_payload,
)

log = logging.getLogger("helios.api")


class HttpError(HeliosError):
    """An error the API itself raises with a status (authentication, permissions, unprocessable input)."""

    def __init__(self, status: int, message: str, hint: str = "", **extra: Any) -> None:
        super().__init__(message, hint)
        self.status = status
        self.extra = extra


def status_for(exc: HeliosError) -> int:
    if isinstance(exc, HttpError):
        return exc.status
    if isinstance(exc, ValidationError):
        return 400
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, QueryError):
        # A statement that writes, sent down the read-only path: not allowed, rather than malformed.
        return 403 if exc.name == "READONLY" else 400
    if isinstance(exc, ClickHouseUnavailable):
        return 503
    if isinstance(exc, AwsError):
        return 502
    if isinstance(exc, ConfigError):
        return 500
    return 400


def payload_for(exc: HeliosError) -> dict[str, Any]:
    payload = error_payload(exc)
    payload.setdefault("hint", "")
    if isinstance(exc, HttpError):
        payload.update(exc.extra)
    return payload


def error_response(status: int, message: str, hint: str = "", **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, "hint": hint, **extra}, status_code=status,
                        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next((e.get("ctx", {}).get("error", "") for e in errors if e.get("type") == "json_invalid"), "")
        return error_response(400, "The request body is not valid JSON.",
                              f"Send a JSON object with Content-Type: application/json. ({detail})".replace(" ()", ""))
    content_type = request.headers.get("content-type", "")
    if "json" not in content_type and any(tuple(e.get("loc", ())) == ("body",) for e in errors) \
            and request.method in ("POST", "PUT", "PATCH"):
        return error_response(400, "The request body must be JSON.",
                              f"Send it with Content-Type: application/json (this request said "
                              f"{content_type[:60] or 'nothing'!r}).")
    missing = [_field(tuple(e.get("loc", ()))) for e in errors if e.get("type") == "missing"]
    if missing and len(missing) == len(errors):
        return error_response(400, "missing necessary fields", "Give every required field (see /docs).",
                              missing_fields=missing)
    problems = [f"{_field(tuple(e.get('loc', ())))}: {e.get('msg', 'invalid')}" for e in errors]
    return error_response(422, problems[0] if problems else "The request is not valid.",
                          "Check the field types against the API description at /docs.", problems=problems)


async def _helios(request: Request, exc: HeliosError) -> JSONResponse:
    status = status_for(exc)
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(payload_for(exc), status_code=status,
                        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    messages = {404: ("There is no such endpoint.", "The endpoints are listed at /docs."),
                405: (f"{request.method} is not allowed on {request.url.path}.", "See /docs for the methods."),
                413: ("The request body is too large.", "Send smaller batches.")}
    message, hint = messages.get(exc.status_code, (str(exc.detail), ""))
    return error_response(exc.status_code, message, hint)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return error_response(500, f"Helios could not complete the request ({type(exc).__name__}).",
                          "This is a bug; the server log has the details.")


def install_error_handlers(app: FastAPI) -> None:
    # Starlette types every handler as taking Exception, though it calls each with the class it is registered for.
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(HeliosError, _helios)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, whether or not they announce their length."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._too_large(scope, receive, send)
            return
        # Read the body here (bounded by the limit) so that an unannounced large body stops at the limit.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await self._too_large(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        response = error_response(413, f"The request body is larger than the limit of {self.limit:,} bytes.",
                                  "Send smaller batches, or raise HELIOS_API_MAX_BODY on the server.")
        await response(scope, receive, send)
