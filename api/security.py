"""Who may do what: API keys with scopes, read-only mode, the Host allow-list, the Origin check.

Policy (docs/security.md):

* No keys configured and bound to a loopback address: everything is open (a laptop), except for
  requests that came through a proxy (``Forwarded``, ``X-Forwarded-For``... headers): they may
  come from anywhere, so they are read-only.
* No keys configured and bound to any other address: **read-only**; writes answer 403
  ``read_only`` until a write key exists (``qa keys add NAME --scope write``).
* Keys configured: writes need ``Authorization: Bearer <write key>`` (401 without a valid key,
  403 with a read-only one); reads need a read or write key only with
  ``QA_REQUIRE_KEY_FOR_READS=true``.
* Writes from a browser page of another origin are refused (403 ``cross_origin``): the
  ``Origin`` header (or ``Sec-Fetch-Site``) must name this server or ``QA_ALLOWED_ORIGINS``.
* Every request's ``Host`` must be in the allow-list (DNS rebinding): Starlette's
  TrustedHostMiddleware, answering in the JSON error shape.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.trustedhost import TrustedHostMiddleware

from api.deps import ServiceState, get_service
from api.errors import ApiError, error_response
from qa.config import Settings
from qa.keys import KeyRecord, KeyStore

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
#: Headers a reverse proxy adds: a request carrying one may come from another machine even on a loopback address.
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")

bearer = HTTPBearer(auto_error=False, description="an API key from `qa keys add NAME --scope read|write`")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def proxied(request: Request | None) -> bool:
    """True when ``request`` came through a (reverse) proxy, i.e. names a client other than its peer."""
    return request is not None and any(h in request.headers for h in FORWARDING_HEADERS)


def without_port(name: str) -> str:
    """A Host name as the allow-list compares it: lower case, without a port ("qa.example.org:8000" ->
    "qa.example.org", "[::1]:8000" -> "[::1]")."""
    name = name.strip().lower()
    if name.startswith("["):
        return name.split("]")[0] + "]" if "]" in name else name
    host, sep, port = name.rpartition(":")
    return host if sep and port.isdigit() and ":" not in host else name


def allowed_hosts(settings: Settings) -> list[str]:
    """QA_ALLOWED_HOSTS (a port given there is dropped: Host headers are compared without theirs), or the loopback
    names plus the address the server is bound to (and the machine's host name when bound to every interface)."""
    configured = [without_port(h) for h in settings.host_allow_list()]
    if configured:
        return configured
    hosts = list(LOOPBACK_NAMES)
    bound = settings.host
    if bound in WILDCARD_HOSTS:
        hosts.append(socket.gethostname().lower())
    elif bound not in hosts:
        hosts.append(f"[{bound}]" if ":" in bound else bound)
    return hosts


class HostCheck:
    """TrustedHostMiddleware's matching, with the refusal in the JSON error shape."""

    def __init__(self, app, allowed: list[str]):
        self.app = app
        self.allowed = allowed
        self._check = TrustedHostMiddleware(self._passed, allowed_hosts=allowed, www_redirect=False)

    @staticmethod
    async def _passed(scope, receive, send):
        scope["qa.host_ok"] = True

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)

        async def swallow(message):  # TrustedHostMiddleware's own plain-text 400
            pass

        await self._check(scope, receive, swallow)
        if scope.pop("qa.host_ok", False):
            return await self.app(scope, receive, send)
        host = without_port(dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1"))[:100]
        response = error_response(
            400, "host_not_allowed",
            f"Host {host!r} is not served here; the operator can allow it with QA_ALLOWED_HOSTS (a name, no port)",
        )
        return await response(scope, receive, send)


@dataclass
class AccessPolicy:
    settings: Settings
    keys: KeyStore

    @property
    def loopback(self) -> bool:
        return is_loopback(self.settings.host)

    def read_only(self, request: Request | None = None) -> bool:
        """No keys, and the client may be another machine: the server listens beyond this one, or
        ``request`` came through a proxy (a proxy on this machine makes every client look local)."""
        return (not self.loopback or proxied(request)) and not self.keys.configured()

    def describe(self) -> str:
        if self.keys.configured():
            problem = self.keys.problem()
            if problem:
                return f"API keys required, but every key is refused: {problem}"
            reads = "reads need a key too" if self.settings.require_key_for_reads else "reads are open"
            return f"API keys required for writes; {reads}"
        if self.read_only():
            return ("READ-ONLY: no API keys and not bound to loopback, so uploads and deletes are refused; "
                    "add a write key with `qa keys add NAME --scope write`")
        return ("no API keys: open to this machine only (loopback); requests through a proxy (X-Forwarded-For, "
                "Forwarded) are read-only")


def access_policy(settings: Settings) -> AccessPolicy:
    return AccessPolicy(settings, KeyStore(settings.resolved_keys_file()))


def _policy(service: ServiceState) -> AccessPolicy:
    return service.access  # type: ignore[attr-defined]


def _key_record(policy: AccessPolicy, creds: HTTPAuthorizationCredentials | None, needed: str) -> KeyRecord:
    if creds is None:
        raise ApiError(401, "auth_required", f"this needs an API key with {needed} access: send "
                       "Authorization: Bearer <key> (keys come from `qa keys add`)",
                       headers={"WWW-Authenticate": "Bearer"})
    record = policy.keys.verify(creds.credentials)
    if record is None:
        raise ApiError(401, "invalid_key", "the API key is not valid (unknown or revoked)",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if not record.allows(needed):
        raise ApiError(403, "forbidden", f"the key {record.name!r} is {record.scope}-only; this needs a {needed} key")
    return record


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normal_origin(origin: str) -> str:
    """``scheme://host[:port]`` as browsers send it: lower case, no default port, no trailing slash (so
    QA_ALLOWED_ORIGINS=https://Portal.example.org:443/ allows what a browser sends as https://portal.example.org)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return origin
    host = parts.hostname or ""
    if not parts.scheme or not host:
        return origin.strip().lower()
    scheme = parts.scheme.lower()
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != _DEFAULT_PORTS.get(scheme) else "")


def check_origin(request: Request, settings: Settings) -> None:
    """Refuse a write sent by a browser page of another origin (CSRF)."""
    origin = request.headers.get("origin")
    site = request.headers.get("sec-fetch-site")
    if origin is None:
        if site in ("cross-site", "same-site"):
            raise ApiError(403, "cross_origin", "writes from pages of other sites are refused")
        return  # not a browser (curl, scripts) or a same-origin navigation
    own = (request.headers.get("host") or "").lower()
    try:
        netloc = urlsplit(origin).netloc.lower()
    except ValueError:
        netloc = ""
    allowed = {normal_origin(o) for o in settings.origin_allow_list()}
    if origin != "null" and (netloc == own or normal_origin(origin) in allowed):
        return
    raise ApiError(403, "cross_origin", f"writes from origin {origin[:100]!r} are refused; the operator can "
                   "allow an origin with QA_ALLOWED_ORIGINS")


def require_read(
    service: ServiceState = Depends(get_service),
    creds: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> None:
    policy = _policy(service)
    if policy.settings.require_key_for_reads:
        _key_record(policy, creds, "read")


def check_write(request: Request, policy: AccessPolicy, creds: HTTPAuthorizationCredentials | None) -> None:
    """ApiError unless this request may write (its Origin, then its key or the read-only mode)."""
    check_origin(request, policy.settings)
    if policy.keys.configured():
        _key_record(policy, creds, "write")
    elif policy.read_only(request):
        where = "it listens beyond this machine" if not policy.loopback else "this request came through a proxy"
        raise ApiError(403, "read_only", f"this server is read-only: {where} and it has no API keys; the operator "
                       "can add a write key with `qa keys add NAME --scope write`")


def require_write(
    request: Request,
    service: ServiceState = Depends(get_service),
    creds: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> None:
    check_write(request, _policy(service), creds)


WRITE_METHODS = ("POST", "PUT", "DELETE")


def is_write(method: str, path: str) -> bool:
    """Every write route: POST /documents, PUT and DELETE /documents/{id}, POST /documents/{id}/restore."""
    return method in WRITE_METHODS and (path == "/documents" or path.startswith("/documents/"))


class WriteGate:
    """Refuses a write its client may not make before anything reads its body. FastAPI reads and parses a
    route's body (an upload's multipart: up to 20 files, spooled to disk) before it runs the route's
    dependencies, so ``require_write`` alone let anyone make the server take in tens of MB per request."""

    def __init__(self, app, service: ServiceState):
        self.app = app
        self.service = service

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not is_write(scope.get("method", ""), scope.get("path", "")):
            return await self.app(scope, receive, send)
        request = Request(scope)
        try:
            creds = await bearer(request)
            await anyio.to_thread.run_sync(check_write, request, _policy(self.service), creds)
        except ApiError as e:
            # Connection: close, or the server would go on reading (and dropping) the body for as long as it comes
            headers = {**(e.headers or {}), "Connection": "close"}
            return await error_response(e.status, e.error, e.message, headers=headers)(scope, receive, send)
        return await self.app(scope, receive, send)
