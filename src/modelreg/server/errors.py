"""The one place that turns errors into HTTP responses: ``{"error": {code, message, details}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from modelreg import errors
from modelreg.server.responses import ok

log = logging.getLogger("modelreg.server")

# Errors raised by the HTTP layer itself (routing, body parsing), by status.
_HTTP_ERRORS: dict[int, type[errors.ModelregError]] = {
    400: errors.InvalidArgument,
    401: errors.Unauthenticated,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    409: errors.Conflict,
    411: errors.InvalidArgument,
    413: errors.PayloadTooLarge,
    416: errors.InvalidArgument,
    422: errors.InvalidArgument,
}


def error_response(error: errors.ModelregError, status: int | None = None) -> Response:
    """The JSON error shape with the error's own status (or ``status``)."""
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, errors.Unauthenticated) else None
    response = ok({"error": error.to_dict()}, status or error.status)
    if headers:
        response.headers.update(headers)
    return response


async def _registry_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ModelregError)
    if exc.status >= 500:
        log.error("%s: %s", exc.code, exc.message)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    cls = _HTTP_ERRORS.get(exc.status_code, errors.InvalidArgument)
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not supported on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(cls(message), exc.status_code)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for item in exc.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "body"
        if item.get("type") == "json_invalid":
            problems.append(f"malformed JSON body: {item.get('ctx', {}).get('error', '')}")
        else:
            problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return error_response(errors.InvalidArgument("; ".join(problems) or "invalid request"))


async def _unexpected(_request: Request, exc: Exception) -> Response:
    # A bug, not a client mistake: log the traceback, answer without leaking internals.
    log.exception("unhandled error", exc_info=exc)
    return error_response(errors.ModelregError("internal server error"), 500)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(errors.ModelregError, _registry_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
