"""One JSON error shape for everything: ``{error, message, details?}`` (:class:`api.models.ErrorResponse`).

:class:`ApiError` is what endpoints raise; :func:`install_error_handlers` renders it, validation
errors, Starlette's HTTP errors and unexpected exceptions. :func:`public_message` strips server
paths from anything shown to a client.
"""

from __future__ import annotations

import errno
import logging
import re
import traceback
from pathlib import Path
from typing import Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from api.models import ErrorResponse

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised by endpoints; rendered as :class:`ErrorResponse` JSON with ``status``."""

    def __init__(self, status: int, error: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers


# An absolute POSIX path of two or more parts (e.g. /srv/qa/index/v-1/manifest.json); not the API's own
# routes that messages name ("replace it with PUT /documents/{id}").
_ABS_PATH = re.compile(r"(?<![\w.:/>])/(?!documents/)(?:[^\s/'\"(),;:]+/)+[^\s/'\"(),;:]*")


def public_message(message: str, named: Iterable[tuple[str | Path, str]] = ()) -> str:
    """``message`` without server paths: each (path, label) in ``named`` becomes its label (e.g. the
    index folder -> ``<index>``), any other absolute path becomes ``<path>``."""
    out = message
    pairs = []
    for path, label in named:
        for form in {str(path), str(Path(path).resolve())}:
            if form and form != "/":
                pairs.append((form, label))
    for form, label in sorted(pairs, key=lambda p: -len(p[0])):  # longest first: nested folders
        out = out.replace(form, label)
    return _ABS_PATH.sub("<path>", out)


def server_condition(exc: BaseException) -> ApiError | None:
    """The ApiError of a failure that is the server's state, not a bug, said with what to do: the index folder
    damaged under a running server (503, the IndexLoadError's message), a full disk (507). None: a plain 500."""
    from qa.index_store import IndexLoadError

    if isinstance(exc, IndexLoadError):
        return ApiError(503, "index_unavailable", str(exc))
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ApiError(507, "insufficient_storage", "the server's disk is full (no space left on device): the write "
                        "did not finish (an interrupted write is finished or undone at the next write or start); free "
                        "space on the server and retry")
    return None


_RESTORE_PATH = re.compile(r"^/documents/.+/restore$")


def _leaf_routes(routes):
    """Every route, looking into included routers (the routers here are included without a prefix)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _leaf_routes(inner.routes)
        else:
            yield route


def error_response(status: int, error: str, message: str, details: list | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorResponse(error=error, message=message, details=details)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _not_an_object(content_type: str | None) -> str:
    """Why a body is not the JSON object an endpoint wants, said with what to send. A body sent without a JSON
    Content-Type (what `curl -d` does: application/x-www-form-urlencoded) is not parsed as JSON at all; it used to
    be "Input should be a valid dictionary or object to extract fields from" either way."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        sent = f"as {media}" if media else "without a Content-Type"
        return (f"the body was sent {sent}, so it was not read as JSON: send it with Content-Type: application/json "
                "(curl: -H 'content-type: application/json')")
    return "the body must be a JSON object, e.g. {\"question\": \"...\"}"


def install_error_handlers(app: FastAPI, hide: Iterable[tuple[str | Path, str]] = ()) -> None:
    """Register the handlers; ``hide``: (server path, label) pairs that messages never show."""
    hidden = list(hide)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.error, public_message(exc.message, hidden), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        details = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
            msg = str(err.get("msg", ""))
            if "Expected UploadFile" in msg:  # a multipart part without a filename: say it in the API's words
                msg = "must be a file (a multipart part with a filename), not a plain form field"
            msg = msg.removeprefix("Value error, ")  # pydantic's wording for our own validators' messages
            if err.get("type") == "json_invalid":  # loc is the character position: "13: JSON decode error" said little
                why = str((err.get("ctx") or {}).get("error") or "JSON decode error")
                msg = f"the body is not valid JSON ({why} at character {loc[0] if loc else '?'})"
                loc = []
            elif err.get("type") == "missing" and not loc:  # no body at all
                msg = "the request has no body (send JSON, e.g. {\"question\": \"...\"})"
            elif err.get("type") == "model_attributes_type" and not loc:  # the body is not a JSON object
                msg = _not_an_object(request.headers.get("content-type"))
            details.append({"loc": loc, "msg": msg, "type": str(err.get("type", ""))})
        message = "; ".join(f"{'.'.join(d['loc']) or 'request'}: {d['msg']}" for d in details) or "invalid request"
        return error_response(422, "invalid_request", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        resp = error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))
        if exc.headers:
            resp.headers.update(exc.headers)
        if exc.status_code == 405:  # list the methods of every route on this path, not just one
            allowed = set()
            for route in _leaf_routes(request.app.router.routes):
                methods = getattr(route, "methods", None)
                if methods and route.matches(request.scope)[0] != Match.NONE:
                    allowed |= set(methods)
            if _RESTORE_PATH.match(request.url.path):  # /documents/{id}/restore: POST only (ids end in .txt/.md)
                allowed = {"POST"}
            if "GET" in allowed:  # api.middleware.HeadAsGet
                allowed.add("HEAD")
            if allowed:
                resp.headers["allow"] = ", ".join(sorted(allowed))
        return resp

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: ClientDisconnect):
        # The client hung up while sending its body (PUT reads it itself): nothing was changed and nobody will read
        # an answer. It used to be logged as an unhandled error with a traceback, as a bug would be.
        logger.info("%s %s: the client disconnected before sending its whole body", request.method, request.url.path)
        return error_response(400, "bad_request", "the request body was cut off (the client disconnected); send it again")

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception):
        known = server_condition(exc)
        if known is not None:
            logger.error("%s %s: %s", request.method, request.url.path, exc)
            return error_response(known.status, known.error, public_message(known.message, hidden))
        logger.error("unhandled error on %s %s:\n%s", request.method, request.url.path, traceback.format_exc())
        return error_response(500, "internal_error", "internal error; see the server log")
