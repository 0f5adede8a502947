"""State and dependencies shared by the routers.

All state lives on ``app.state.service`` (a :class:`ServiceState`) and reaches the endpoints
through these dependencies; there are no module globals holding state, so several apps (e.g. in
tests) can live side by side.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import anyio
import anyio.to_thread
from fastapi import Depends, Request

from api.errors import ApiError
from api.models import DocumentOut, ErrorResponse
from qa.config import Settings

#: Upload rules (the per-file byte limit is Settings.max_upload_bytes).
MAX_FILES_PER_UPLOAD = 20
#: Request body limit for everything but uploads (a question is at most a few KiB of JSON).
MAX_BODY_BYTES = 256 * 1024


@dataclass
class ServiceState:
    settings: Settings
    pipeline: Any = None  # qa.pipeline.QAPipeline or anything honoring its interface
    status: str = "starting"  # starting | ready | failed
    reason: str | None = "warming up: loading the index and models"
    model_limiter: anyio.CapacityLimiter | None = None  # QA_ASK_CONCURRENCY model calls at once (__post_init__)
    write_lock: threading.Lock = field(default_factory=threading.Lock)  # serializes uploads/deletes
    access: Any = None  # api.security.AccessPolicy
    writes: Any = None  # api.jobs.Writes: the writer thread and jobs
    failed_version: str | None = None  # the index version that failed to load (reload retries on a new one)
    force_exit: Callable[[], bool] = lambda: False  # qa serve: a second Ctrl-C came (api.app's shutdown)

    def __post_init__(self) -> None:
        if self.model_limiter is None:
            # QA_ASK_CONCURRENCY model calls (ask) at once in worker threads; more requests wait their turn
            self.model_limiter = anyio.CapacityLimiter(self.settings.resolved_ask_concurrency())


def get_service(request: Request) -> ServiceState:
    return request.app.state.service


def ready_pipeline(service: ServiceState = Depends(get_service)) -> Any:
    if service.status != "ready" or service.pipeline is None:
        raise ApiError(503, "not_ready", f"service not ready: {service.reason or service.status}")
    return service.pipeline


async def in_thread(service: ServiceState, fn: Callable, *args: Any) -> Any:
    """Run a model call in a worker thread, at most QA_ASK_CONCURRENCY at once."""
    return await anyio.to_thread.run_sync(partial(fn, *args), limiter=service.model_limiter)


def doc_out(info: Any) -> DocumentOut:
    if isinstance(info, dict):
        return DocumentOut.model_validate(info)
    return DocumentOut.model_validate(info, from_attributes=True)


_ERRORS = {
    400: {"model": ErrorResponse, "description": "Bad request (e.g. a body that cannot be parsed, a bad file)"},
    401: {"model": ErrorResponse, "description": "An API key is needed (Authorization: Bearer <key>) or is not valid"},
    403: {"model": ErrorResponse, "description": "Refused: a read-only key, a read-only server, or a write "
                                                 "from another site's page"},
    404: {"model": ErrorResponse, "description": "Unknown document"},
    409: {"model": ErrorResponse, "description": "A document with that name exists; its file in the corpus folder "
                                                 "cannot be read on the server; (Milvus) it was replaced through "
                                                 "other replicas while being deleted"},
    412: {"model": ErrorResponse, "description": "If-Match does not match the document's current sha256"},
    413: {"model": ErrorResponse, "description": "Request body or uploaded file too large"},
    422: {"model": ErrorResponse, "description": "Invalid request"},
    428: {"model": ErrorResponse, "description": "If-Match header missing"},
    503: {"model": ErrorResponse, "description": "Not ready (index or models not loaded), or (a large upload) too "
                                                 "many upload jobs waiting; message says why"},
}


def responses(*codes: int) -> dict:
    """OpenAPI ``responses`` for these error codes."""
    return {c: _ERRORS[c] for c in codes}
