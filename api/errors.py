"""Errors as HTTP answers: one table, one shape, no server paths, 5xx for the server's faults.

Every error answer is ``{"error": <kind>, "detail": <what, and how to fix it>}``; a malformed
request adds ``problems``, one per field. The caller's mistakes are 4xx; anything the server
got wrong (a missing output file, a broken terrain model, a bug) is a 5xx whose detail holds a
reference to the log line with the full story, never a path or a traceback.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.auth import ForbiddenError, UnauthorizedError
from floodwarn.errors import (
    FloodwarnError,
    InputError,
    NotFoundError,
    ServiceUnavailableError,
)
from floodwarn.logs import get_logger

log = get_logger(__name__)


class BadRequestError(InputError):
    """A query parameter a standard says is answered 400 (OGC API - Features) is invalid."""


class PayloadTooLargeError(InputError):
    """An upload is larger than the configured limit (413)."""


class Problem(BaseModel):
    """One field of a malformed request and why it was refused."""

    loc: str
    msg: str


class ErrorBody(BaseModel):
    """Every error answer of the API."""

    error: str
    detail: str
    problems: list[Problem] | None = None


#: The caller's mistakes, most specific first; every other exception is the server's (500),
#: except ServiceUnavailableError (503).
CLIENT_ERRORS: dict[type[Exception], int] = {
    UnauthorizedError: 401, ForbiddenError: 403, NotFoundError: 404,
    PayloadTooLargeError: 413, BadRequestError: 400, InputError: 422,
}

#: Routes that answer malformed query parameters 400, as a standard they follow asks.
BAD_REQUEST: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A query parameter is invalid or unknown"}}

#: Documented on every route: the statuses any request may get.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in (
        (401, "No valid API key (X-API-Key)"),
        (403, "The key's role may not do this"),
        (404, "No such resource"),
        (422, "The request is malformed or its content is refused, with the reason"),
        (500, "A fault of the service; the detail holds a log reference"),
        (503, "The service cannot do this now (storage read-only or full, store down)"),
    )
}

#: Absolute POSIX paths (two or more components) inside an error text.
_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.@+~-]+/)+([\w.@+\[\]*?~ -]*)")


def scrub_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last component: callers learn which file,
    never where the server keeps it."""
    return _PATH.sub(lambda m: m.group(1) or "…", text)


def _answer(status: int, error: str, detail: str,
            problems: list[dict[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": error, "detail": scrub_paths(detail)}
    if problems is not None:
        body["problems"] = [{"loc": p["loc"], "msg": scrub_paths(p["msg"])} for p in problems]
    return JSONResponse(body, status_code=status)


async def _client_error(_request: Request, exc: Exception) -> JSONResponse:
    status = next(code for kind, code in CLIENT_ERRORS.items() if isinstance(exc, kind))
    # Imports of tables name every bad row (floodwarn.sites: RowProblem).
    rows = getattr(exc, "problems", None)
    problems = None if rows is None else [
        {"loc": f"row {p.row}" + (f".{p.column}" if p.column else ""),
         "msg": p.message + (f" (site {p.site_id})" if p.site_id else "")} for p in rows]
    return _answer(status, type(exc).__name__, str(exc), problems)


async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    log.error("service unavailable", extra={"error": str(exc)})
    return _answer(503, "ServiceUnavailable", str(exc))


async def _server_fault(request: Request, exc: Exception) -> JSONResponse:
    reference = secrets.token_hex(6)
    log.error("request failed", exc_info=exc,
              extra={"reference": reference, "path": request.url.path,
                     "error_type": type(exc).__name__})
    return _answer(500, "ServerError", f"the service failed to answer this request; tell the "
                   f"operators reference {reference} (it is in the service log).")


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    """Malformed requests: each problem's place ('query.level', 'body.secret') and reason."""
    assert isinstance(exc, RequestValidationError)
    problems = [{"loc": ".".join(str(part) for part in e["loc"]),
                 "msg": str(e["msg"]).removeprefix("Value error, ")} for e in exc.errors()]
    return _answer(422, "InvalidRequest", "; ".join(f"{p['loc']}: {p['msg']}" for p in problems),
                   problems)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own answers (unknown route, wrong method, unparsable body) in our shape."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # an unparsable body: malformed like any other (422)
        return _answer(422, "InvalidRequest", f"body: {exc.detail} (not valid JSON in UTF-8?)",
                       [{"loc": "body", "msg": str(exc.detail)}])
    kinds = {404: "NotFoundError", 405: "MethodNotAllowed"}
    response = _answer(exc.status_code, kinds.get(exc.status_code, "HTTPError"), str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    if exc.status_code == 405:  # every method of the path, not only the first route's
        response.headers["Allow"] = ", ".join(sorted(_methods_of(request)))
    return response


def _methods_of(request: Request) -> set[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE and isinstance(route, APIRoute):
            methods |= set(route.methods or ())
    return methods


def install_error_handlers(app: FastAPI) -> None:
    """Every exception the app can raise, answered in the one shape."""
    for kind in CLIENT_ERRORS:
        app.add_exception_handler(kind, _client_error)
    app.add_exception_handler(ServiceUnavailableError, _unavailable)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # FloodwarnError that is not the caller's (DataFileError of a server file, a terrain model
    # error) and everything else: the server's fault.
    app.add_exception_handler(FloodwarnError, _server_fault)
    app.add_exception_handler(Exception, _server_fault)
