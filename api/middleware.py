"""Pure ASGI middleware: security headers, request body limits, HEAD answered as GET."""

from __future__ import annotations

from typing import Callable

from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import error_response

_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
#: Swagger UI's page starts itself with an inline script: no script rule there, but no framing either (its
#: "Try it out" buttons can delete documents: another site must not frame it under a decoy, clickjacking).
_DOCS_CSP = "frame-ancestors 'none'; object-src 'none'; base-uri 'none'"
_DOCS_PATHS = ("/docs",)


class SecurityHeaders:
    """nosniff, no framing and no referrer everywhere; a strict CSP on the chat page and static files."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        csp = (_DOCS_CSP if path.startswith(_DOCS_PATHS) else _PAGE_CSP).encode()

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                headers.append((b"x-frame-options", b"DENY"))
                headers.append((b"content-security-policy", csp))
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Caps request bodies; too large -> 413 with the JSON error shape.

    Checks Content-Length up front and counts streamed bytes (chunked bodies). While the app
    reads the body, the overflow surfaces as an HTTPException(413) that the app's handler renders.
    """

    def __init__(self, app, default: int, limit_for: Callable[[str, str], int | None]):
        self.app = app
        self.default = default
        self.limit_for = limit_for

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope.get("method", ""), scope.get("path", "")) or self.default
        message = f"request body larger than {limit} bytes"
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    too_large = int(value) > limit
                except ValueError:
                    too_large = False
                if too_large:  # Connection: close, or the server would go on reading (and dropping) the body
                    response = error_response(413, "too_large", message, headers={"Connection": "close"})
                    return await response(scope, receive, send)
        total = 0

        async def limited_receive():
            nonlocal total
            msg = await receive()
            if msg["type"] == "http.request":
                total += len(msg.get("body", b""))
                if total > limit:
                    raise StarletteHTTPException(413, message)
            return msg

        return await self.app(scope, limited_receive, send)


class HeadAsGet:
    """HEAD is answered as GET would be, without the body (RFC 9110: a server that serves GET serves HEAD). FastAPI's
    routes list only the methods they are declared with, so ``curl -I /health`` (and monitors that probe with HEAD)
    got 405 from every route but the static files and /openapi.json."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "HEAD":
            return await self.app(scope, receive, send)

        async def without_body(message):
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the headers (Content-Length included) are GET's; the body is not sent
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        return await self.app({**scope, "method": "GET"}, receive, without_body)
