"""HTTP API and chat page of the QA service: ``create_app()`` wires the pieces together.

* :mod:`api.deps` -- the service state and the dependencies endpoints share;
* :mod:`api.errors` -- the one JSON error shape and its handlers;
* :mod:`api.middleware` -- security headers, body limits;
* :mod:`api.routers` -- the routes (service, ask, documents).

Start-up: the lifespan handler creates the pipeline (unless one is injected) and warms it up
in a worker thread (loads the index -- building it from the corpus on first run -- the
embedder, retriever and reader). If that fails (e.g. a corrupt index), the server still
starts: ``/health`` says it is alive, ``/ready`` answers 503 with the reason, and the
endpoints that need the pipeline answer 503 with the same reason.

Model calls (ask, upload indexing, delete) run off the event loop in worker threads.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Any, Callable

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from api.deps import MAX_BODY_BYTES, MAX_FILES_PER_UPLOAD, ServiceState
from api.errors import ApiError, install_error_handlers
from api.middleware import BodyLimit, SecurityHeaders
from api.routers import ask, documents, service as service_routes
from api.routers.service import STATIC_DIR
from qa.config import Settings, get_settings

__all__ = ["ApiError", "MAX_FILES_PER_UPLOAD", "ServiceState", "create_app"]

logger = logging.getLogger(__name__)


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
            "Extractive question answering over a folder of .txt/.md documents. Every answer cites "
            "its document and Python code-point offsets: `document_text[start:end] == text`, where "
            "document_text is what `GET /documents/{id}` returns. Errors are JSON "
            "`{error, message, details?}`."
        ),
        lifespan=lifespan,
        docs_url=None,  # served by api.routers.service from the swagger-ui-bundle package: no CDN
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
    install_error_handlers(app)

    app.include_router(service_routes.router)
    app.include_router(ask.build_router(settings))
    app.include_router(documents.build_router(settings))

    app.mount("/static/swagger-ui", StaticFiles(directory=swagger_ui_path), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
