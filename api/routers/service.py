"""Liveness, readiness, the chat page and the offline API docs."""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response

from api.deps import ServiceState, get_service
from api.errors import public_message
from api.models import Health, Readiness

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter()


@router.get("/health", response_model=Health, tags=["service"], summary="Liveness")
async def health() -> Health:
    return Health()


@router.get(
    "/ready",
    response_model=Readiness,
    tags=["service"],
    summary="Readiness: index and models loaded",
    responses={503: {"model": Readiness, "description": "Not ready; `reason` says why"}},
)
async def ready(request: Request, service: ServiceState = Depends(get_service)):
    if service.status == "ready" and service.pipeline is not None:
        try:
            n = len(await anyio.to_thread.run_sync(service.pipeline.documents))
        except Exception as e:  # noqa: BLE001
            body = Readiness(ready=False, status="failed", reason=public_message(f"{type(e).__name__}: {e}"))
            return JSONResponse(body.model_dump(), status_code=503)
        reader = getattr(service.pipeline, "reader", None)
        runtime = getattr(reader, "runtime", None) or None
        probe = getattr(reader, "token_probe", None)
        token_keep = probe.keep if probe is not None else (1.0 if runtime else None)
        access = service.access
        writes = (None if access is None else "key" if access.keys.configured()
                  else "read_only" if access.read_only(request) else "open")
        query_runtime = getattr(getattr(service.pipeline, "embedder", None), "query_runtime", None)
        return Readiness(ready=True, status="ready", documents=n, reader_runtime=runtime,
                         query_runtime=query_runtime if isinstance(query_runtime, str) else None,
                         reader_token_keep=token_keep, writes=writes,
                         busy_first_passages=service.settings.busy_first_passages)
    body = Readiness(ready=False, status=service.status, reason=service.reason or service.status)
    return JSONResponse(body.model_dump(), status_code=503)


@router.get("/", include_in_schema=False)
async def index_page() -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")


@router.get("/docs", include_in_schema=False)
async def swagger_docs(request: Request) -> Response:
    """Swagger UI from the swagger-ui-bundle package (no CDN: works offline)."""
    app = request.app
    return get_swagger_ui_html(
        openapi_url=app.openapi_url, title=f"{app.title} - API docs",
        swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url="/static/swagger-ui/swagger-ui.css",
        swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
    )
