"""HTTP API and chat page of the QA service.

``create_app()`` builds the FastAPI app. All state lives on ``app.state.service`` (a
:class:`ServiceState`) and reaches the endpoints through dependencies; there are no module
globals holding state, so several apps (e.g. in tests) can live side by side.

Start-up: the lifespan handler creates the pipeline (unless one is injected) and warms it up
in a worker thread (loads the index -- building it from the corpus on first run -- the
embedder, retriever and reader). If that fails (e.g. a corrupt index), the server still
starts: ``/health`` says it is alive, ``/ready`` answers 503 with the reason, and the
endpoints that need the pipeline answer 503 with the same reason.

Model calls (ask, upload indexing, delete) run off the event loop in worker threads.

(No ``from __future__ import annotations`` here: FastAPI must see the request model built
inside ``create_app`` as a real class, not a string annotation.)
"""

import logging
import threading
import traceback
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.models import (
    DeleteResult,
    DocumentList,
    DocumentOut,
    DocumentText,
    ErrorResponse,
    Health,
    Readiness,
    UploadResult,
    ask_request_model,
)
from qa.config import Settings, get_settings
from qa.pipeline import DocumentError, check_document_content, check_document_name, shown
from qa.types import AskResult

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Upload rules (the per-file byte limit is Settings.max_upload_bytes).
MAX_FILES_PER_UPLOAD = 20
#: Concurrent model calls (ask) in worker threads; more requests wait their turn.
MODEL_CONCURRENCY = 4
#: Request body limit for everything but uploads (a question is at most a few KiB of JSON).
MAX_BODY_BYTES = 256 * 1024

class ApiError(Exception):
    """Raised by endpoints; rendered as :class:`ErrorResponse` JSON with ``status``."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


@dataclass
class ServiceState:
    settings: Settings
    pipeline: Any = None  # qa.pipeline.QAPipeline or anything honoring its interface
    status: str = "starting"  # starting | ready | failed
    reason: str | None = "warming up: loading the index and models"
    model_limiter: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(MODEL_CONCURRENCY))
    write_lock: threading.Lock = field(default_factory=threading.Lock)  # serializes uploads/deletes


# --------------------------------------------------------------------------- dependencies


def get_service(request: Request) -> ServiceState:
    return request.app.state.service


def ready_pipeline(service: ServiceState = Depends(get_service)) -> Any:
    if service.status != "ready" or service.pipeline is None:
        raise ApiError(503, "not_ready", f"service not ready: {service.reason or service.status}")
    return service.pipeline


async def in_thread(service: ServiceState, fn: Callable, *args: Any) -> Any:
    return await anyio.to_thread.run_sync(partial(fn, *args), limiter=service.model_limiter)


# --------------------------------------------------------------------------- helpers


def _error(status: int, error: str, message: str, details: list | None = None) -> JSONResponse:
    body = ErrorResponse(error=error, message=message, details=details)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status)


_MEDIA_TYPES = {".pdf": "application/pdf", ".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
                ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                ".md": "text/markdown; charset=utf-8", ".txt": "text/plain; charset=utf-8"}


def original_media_type(name: str) -> str:
    return _MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def _doc_out(info: Any) -> DocumentOut:
    if isinstance(info, dict):
        return DocumentOut.model_validate(info)
    return DocumentOut.model_validate(info, from_attributes=True)


# --------------------------------------------------------------------------- security headers


_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_NO_CSP_PATHS = ("/docs",)  # Swagger UI's page starts itself with an inline script


class SecurityHeaders:
    """Pure ASGI middleware: nosniff everywhere, a strict CSP on the chat page and static files."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        csp = not path.startswith(_NO_CSP_PATHS)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                if csp:
                    headers.append((b"content-security-policy", _PAGE_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Pure ASGI middleware capping request bodies; too large -> 413 with the JSON error shape.

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
                if too_large:
                    response = _error(413, "too_large", message)
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


# --------------------------------------------------------------------------- the app


_ERRORS = {
    400: {"model": ErrorResponse, "description": "Bad request (e.g. a body that cannot be parsed, a bad file)"},
    404: {"model": ErrorResponse, "description": "Unknown document"},
    409: {"model": ErrorResponse, "description": "A document with that name exists"},
    413: {"model": ErrorResponse, "description": "Request body or uploaded file too large"},
    422: {"model": ErrorResponse, "description": "Invalid request"},
    503: {"model": ErrorResponse, "description": "Not ready (index or models not loaded); message says why"},
}


def _responses(*codes: int) -> dict:
    return {c: _ERRORS[c] for c in codes}


def create_app(
    settings: Settings | None = None,
    pipeline: Any = None,
    *,
    on_ready: Callable[[ServiceState], None] | None = None,
) -> FastAPI:
    """Build the app. ``pipeline`` defaults to ``qa.pipeline.QAPipeline(settings)``, created and
    warmed up in the lifespan; an injected pipeline is warmed up there too (``warm_up()`` must be
    idempotent). ``on_ready`` is called once start-up has finished (ready or failed)."""
    if settings is None:
        settings = getattr(pipeline, "settings", None) or get_settings()
    service = ServiceState(settings=settings, pipeline=pipeline)
    AskRequest = ask_request_model(settings.max_question_chars)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.status, service.reason = "starting", "warming up: loading the index and models"
        try:
            if service.pipeline is None:
                from qa.pipeline import QAPipeline

                service.pipeline = QAPipeline(settings)
            await anyio.to_thread.run_sync(service.pipeline.warm_up)
        except Exception as e:  # noqa: BLE001 - any start-up failure becomes a /ready reason
            service.status = "failed"
            service.reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            logger.error("start-up failed, /ready will answer 503: %s", service.reason)
            logger.debug("start-up failure", exc_info=True)
        else:
            service.status, service.reason = "ready", None
        if on_ready is not None:
            on_ready(service)
        yield

    app = FastAPI(
        title="Document QA",
        version="0.1.0",
        description=(
            "Extractive question answering over a folder of documents (.txt, .md, .pdf, .docx, .html). "
            "Every answer cites its document and Python code-point offsets: `document_text[start:end] == "
            "text`, where document_text is what `GET /documents/{id}` returns (for PDF, DOCX and HTML: "
            "the extracted text); PDF citations also carry their 1-based `page`. Errors are JSON "
            "`{error, message, details?}`."
        ),
        lifespan=lifespan,
        docs_url=None,  # served below from the swagger-ui-bundle package: no CDN, works offline
        redoc_url=None,  # ReDoc has no offline bundle on PyPI; /docs and /openapi.json cover it
    )
    app.state.service = service
    upload_body_limit = MAX_FILES_PER_UPLOAD * settings.max_upload_bytes + 1024 * 1024
    app.add_middleware(
        BodyLimit,
        default=MAX_BODY_BYTES,
        limit_for=lambda method, path: upload_body_limit if (method, path) == ("POST", "/documents") else None,
    )
    app.add_middleware(SecurityHeaders)

    # ---- error rendering: one JSON shape for everything
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return _error(exc.status, exc.error, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        details = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
            details.append({"loc": loc, "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))})
        message = "; ".join(f"{'.'.join(d['loc']) or 'request'}: {d['msg']}" for d in details) or "invalid request"
        return _error(422, "invalid_request", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        resp = _error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))
        if exc.headers:
            resp.headers.update(exc.headers)
        if exc.status_code == 405:  # list the methods of every route on this path, not just one
            allowed = set()
            for route in request.app.router.routes:
                methods = getattr(route, "methods", None)
                if methods and route.matches(request.scope)[0] != Match.NONE:
                    allowed |= set(methods)
            if allowed:
                resp.headers["allow"] = ", ".join(sorted(allowed))
        return resp

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception):
        logger.error("unhandled error on %s %s:\n%s", request.method, request.url.path, traceback.format_exc())
        return _error(500, "internal_error", f"internal error ({type(exc).__name__}); see the server log")

    # ---- liveness / readiness
    @app.get("/health", response_model=Health, tags=["service"], summary="Liveness")
    async def health() -> Health:
        return Health()

    @app.get(
        "/ready",
        response_model=Readiness,
        tags=["service"],
        summary="Readiness: index and models loaded",
        responses={503: {"model": Readiness, "description": "Not ready; `reason` says why"}},
    )
    async def ready(service: ServiceState = Depends(get_service)):
        if service.status == "ready" and service.pipeline is not None:
            try:
                n = len(await anyio.to_thread.run_sync(service.pipeline.documents))
            except Exception as e:  # noqa: BLE001
                body = Readiness(ready=False, status="failed", reason=f"{type(e).__name__}: {e}")
                return JSONResponse(body.model_dump(), status_code=503)
            runtime = getattr(getattr(service.pipeline, "reader", None), "runtime", None) or None
            return Readiness(ready=True, status="ready", documents=n, reader_runtime=runtime)
        body = Readiness(ready=False, status=service.status, reason=service.reason or service.status)
        return JSONResponse(body.model_dump(), status_code=503)

    # ---- ask
    @app.post(
        "/ask",
        response_model=AskResult,
        tags=["qa"],
        summary="Answer a question from the documents, with citations",
        responses=_responses(400, 413, 422, 503),
    )
    async def ask(
        body: AskRequest,
        pipeline: Any = Depends(ready_pipeline),
        service: ServiceState = Depends(get_service),
    ):
        try:
            return await in_thread(service, pipeline.ask, body.question, body.top_k, body.max_answers)
        except ValueError as e:
            raise ApiError(422, "invalid_request", str(e) or "invalid question") from None

    # ---- documents
    @app.get("/documents", response_model=DocumentList, tags=["documents"], summary="Indexed documents",
             responses=_responses(503))
    async def list_documents(pipeline: Any = Depends(ready_pipeline)) -> DocumentList:
        infos = await anyio.to_thread.run_sync(pipeline.documents)
        return DocumentList(documents=[_doc_out(d) for d in infos])

    @app.get(
        "/documents/{doc_id:path}",
        response_model=DocumentText,
        tags=["documents"],
        summary="A document's text, exactly as answer offsets index it",
        description=(
            "JSON `{id, text, length, page_starts}` by default; with `?raw=true` the bare text as "
            "`text/plain; charset=utf-8`; with `?original=true` the original file as uploaded (e.g. "
            "the PDF), as a download. Offsets are Python code points (not UTF-16 units); for a PDF, "
            "`page_starts[i]` is where page i+1 begins in `text`."
        ),
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}},
                              **{t.split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
                                 for t in _MEDIA_TYPES.values() if not t.startswith("text/plain")}}},
            **_responses(404, 422, 503),
        },
    )
    async def get_document(
        doc_id: str,
        raw: bool = Query(False, description="return text/plain instead of JSON"),
        original: bool = Query(False, description="download the original file (PDF, DOCX, HTML, ...)"),
        pipeline: Any = Depends(ready_pipeline),
    ):
        try:
            if original:
                path = await anyio.to_thread.run_sync(pipeline.document_original, doc_id)
                # always a download (never rendered here: an uploaded .html must not run on this origin)
                return FileResponse(path, media_type=original_media_type(path.name), filename=path.name,
                                    content_disposition_type="attachment")
            text = await anyio.to_thread.run_sync(pipeline.document_text, doc_id)
            page_starts = getattr(pipeline, "page_starts", None)
            pages = list(await anyio.to_thread.run_sync(page_starts, doc_id)) if page_starts else []
        except KeyError:
            raise ApiError(404, "not_found", f"unknown document {shown(doc_id)}") from None
        if raw:
            return PlainTextResponse(text, media_type="text/plain; charset=utf-8")
        return DocumentText(id=doc_id, text=text, length=len(text), page_starts=pages or None)

    @app.post(
        "/documents",
        response_model=UploadResult,
        status_code=201,
        tags=["documents"],
        summary="Upload .txt/.md/.pdf/.docx/.html files: stored in the corpus folder and indexed",
        description=(
            f"Multipart field `files`, one or more (at most {MAX_FILES_PER_UPLOAD}). Each must be at "
            f"most Settings.max_upload_bytes ({settings.max_upload_bytes}) bytes, with a plain "
            ".txt/.md/.pdf/.docx/.html/.htm name (no path separators, '..', leading dot or control "
            "characters) that is not taken yet, and must yield text: .txt/.md UTF-8 text (`not_utf8`, "
            "`not_text`, `empty_file`); a PDF with a text layer (`pdf_corrupt`, `pdf_encrypted`, "
            "`pdf_no_text`); a DOCX (`docx_corrupt`, `docx_zip_bomb`, `docx_no_text`); HTML with a "
            "readable body (`html_no_text`). All or nothing: if any file is rejected, nothing is "
            "stored or indexed."
        ),
        responses=_responses(400, 409, 413, 422, 503),
    )
    async def upload_documents(
        files: list[UploadFile] = File(..., description="the .txt/.md/.pdf/.docx/.html files"),
        pipeline: Any = Depends(ready_pipeline),
        service: ServiceState = Depends(get_service),
    ) -> UploadResult:
        if not files:
            raise ApiError(400, "no_files", "no files uploaded (multipart field 'files')")
        if len(files) > MAX_FILES_PER_UPLOAD:
            raise ApiError(400, "too_many_files", f"at most {MAX_FILES_PER_UPLOAD} files per upload")
        corpus = Path(settings.corpus_dir).resolve()
        limit = settings.max_upload_bytes
        batch: list[tuple[str, bytes]] = []
        seen: set[str] = set()
        for f in files:
            try:
                name = check_document_name(f.filename)
                if name in seen:
                    raise DocumentError(f"file {shown(name)} is given twice", "duplicate_file")
                seen.add(name)
                data = await f.read(limit + 1)
                # off the event loop: converting a PDF/DOCX/HTML takes a moment
                await anyio.to_thread.run_sync(check_document_content, name, data, limit)
            except DocumentError as e:
                raise ApiError(e.status, e.code, str(e)) from None
            batch.append((name, data))

        def store() -> tuple[list[str], dict[str, DocumentOut]]:
            # Check and add under one lock, so two uploads of the same name cannot both pass.
            with service.write_lock:
                existing = {_doc_out(d).id for d in pipeline.documents()}
                for name, _ in batch:
                    if name in existing or (corpus / name).exists():
                        raise ApiError(409, "already_exists",
                                       f"a document named {shown(name)} already exists; delete it first to replace it")
                try:
                    added = list(pipeline.add_documents(batch))
                except DocumentError as e:
                    raise ApiError(e.status, e.code, str(e)) from None
                except ValueError as e:  # any other refusal from the indexing layer
                    raise ApiError(400, "invalid_document", str(e) or "invalid document") from None
                return added, {_doc_out(d).id: _doc_out(d) for d in pipeline.documents()}

        added, infos = await in_thread(service, store)
        return UploadResult(added=added, documents=[infos[i] for i in added if i in infos])

    @app.delete(
        "/documents/{doc_id:path}",
        response_model=DeleteResult,
        tags=["documents"],
        summary="Remove a document from the corpus folder and the index",
        responses=_responses(404, 503),
    )
    async def delete_document(
        doc_id: str,
        pipeline: Any = Depends(ready_pipeline),
        service: ServiceState = Depends(get_service),
    ) -> DeleteResult:
        def remove() -> None:
            with service.write_lock:
                if doc_id not in {_doc_out(d).id for d in pipeline.documents()}:
                    raise ApiError(404, "not_found", f"unknown document {shown(doc_id)}")
                try:
                    pipeline.remove_document(doc_id)
                except KeyError:
                    raise ApiError(404, "not_found", f"unknown document {shown(doc_id)}") from None

        await in_thread(service, remove)
        return DeleteResult(id=doc_id)

    # ---- chat page
    @app.get("/", include_in_schema=False)
    async def index_page() -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")

    # ---- API docs (Swagger UI assets from the swagger-ui-bundle package, not a CDN)
    @app.get("/docs", include_in_schema=False)
    async def swagger_docs() -> Response:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title} - API docs",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )

    app.mount("/static/swagger-ui", StaticFiles(directory=swagger_ui_path), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
