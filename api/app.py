"""HTTP API and chat page of the QA service: ``create_app()`` wires the pieces together.

* :mod:`api.deps` -- the service state and the dependencies endpoints share;
* :mod:`api.errors` -- the one JSON error shape and its handlers (no server paths in messages);
* :mod:`api.security` -- API keys, read-only mode, the Host allow-list, the Origin check, the write gate;
* :mod:`api.jobs` -- the writer thread and background jobs;
* :mod:`api.middleware` -- security headers, body limits;
* :mod:`api.routers` -- the routes (service, ask, documents, jobs/trash).

Lifecycle: the server listens at once. The pipeline is created (unless injected) and warmed up
in a background thread (replaying the write journal, loading -- or on first run building -- the
index, reconciling it with the corpus folder, loading the models): meanwhile ``/health`` answers
200 and ``/ready`` 503 ``starting``. If warm-up fails (e.g. a corrupt index), ``/ready`` and the
endpoints that need the pipeline answer 503 with the reason. Every ``reload_interval_s`` the
server looks at the index folder: a new version committed by another process (``qa index``,
``qa restore``) is swapped in without a restart, and after a failed start a new version is
retried. On shutdown, the running write and the queued ones finish first (graceful; after a second Ctrl-C, the
running one only; a ``kill -9`` is covered by the journal instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from api.deps import MAX_BODY_BYTES, MAX_FILES_PER_UPLOAD, ServiceState
from api.errors import ApiError, install_error_handlers, public_message
from api.job_store import JobStore
from api.jobs import Writes
from api.middleware import BodyLimit, HeadAsGet, SecurityHeaders
from api.routers import ask, documents, jobs, service as service_routes
from api.routers.service import STATIC_DIR
from api.security import HostCheck, WriteGate, access_policy, allowed_hosts
from qa.config import PROJECT_ROOT, Settings, get_settings

__all__ = ["ApiError", "MAX_FILES_PER_UPLOAD", "ServiceState", "create_app"]

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    pipeline: Any = None,
    *,
    on_ready: Callable[[ServiceState], None] | None = None,
    background_warm_up: bool = True,
) -> FastAPI:
    """Build the app. ``pipeline`` defaults to ``qa.pipeline.QAPipeline(settings)``; it is warmed
    up in a background thread (``background_warm_up=False``: before the server accepts requests,
    as tests want). ``warm_up()`` must be idempotent. ``on_ready`` is called once warm-up has
    finished (ready or failed)."""
    if settings is None:
        settings = getattr(pipeline, "settings", None) or get_settings()
    service = ServiceState(settings=settings, pipeline=pipeline)
    service.access = access_policy(settings)
    hidden = [(settings.index_dir, "<index>"), (settings.corpus_dir, "<corpus>"), (PROJECT_ROOT, "<project>")]
    jobs_folder = Path(settings.index_dir) / "jobs"
    service.writes = Writes(hidden, JobStore(jobs_folder))

    def resume_jobs() -> None:
        """Run again the upload jobs a previous server accepted (202) and did not finish."""
        corpus = Path(settings.corpus_dir).resolve()

        def make(kind: str, batch: list[tuple[str, bytes]]) -> Callable[[], Any]:
            if kind != "upload":
                raise ValueError(f"unknown job kind {kind!r}")
            return documents.upload_writer(service, service.pipeline, corpus, batch, resumed=True)

        try:
            service.writes.resume(make)
        except Exception:  # noqa: BLE001 - serve anyway; the jobs stay on disk for the next start
            logger.exception("could not run again the unfinished upload jobs in %s", jobs_folder)

    def warm_up() -> None:
        from qa.index_store import active_version_name

        service.status, service.reason = "starting", "warming up: loading the index and models"
        try:
            if service.pipeline is None:
                from qa.pipeline import QAPipeline

                service.pipeline = QAPipeline(settings)
            service.pipeline.warm_up()
        except Exception as e:  # noqa: BLE001 - any start-up failure becomes a /ready reason
            service.failed_version = active_version_name(settings.index_dir)
            reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            logger.error("start-up failed, /ready will answer 503: %s", reason)
            logger.debug("start-up failure", exc_info=True)
            service.status, service.reason = "failed", public_message(reason, hidden)
        else:
            service.status, service.reason = "ready", None
            resume_jobs()
        if on_ready is not None:
            on_ready(service)

    def reload_once() -> None:
        from qa.index_store import active_version_name

        if service.status == "ready":
            reload = getattr(service.pipeline, "reload_if_changed", None)
            if reload is not None:
                reload()
        elif service.status == "failed":
            active = active_version_name(settings.index_dir)
            if active is not None and active != service.failed_version:
                logger.warning("a new index version appeared (%s): starting again", active)
                warm_up()

    async def reload_loop() -> None:
        while True:
            await asyncio.sleep(settings.reload_interval_s)
            try:
                await anyio.to_thread.run_sync(reload_once)
            except Exception:  # noqa: BLE001 - keep serving the version we have
                logger.exception("reloading the index failed; still serving the previous version")

    async def finish_writes() -> None:
        """Let the running write and every queued one finish; after a forced exit (a second Ctrl-C), only the running
        one (it used to go on through every queued upload, ignoring any further Ctrl-C: only kill -9 stopped it)."""
        done = asyncio.ensure_future(asyncio.to_thread(service.writes.shutdown))
        dropped = False
        while not done.done():
            if not dropped and service.force_exit():
                service.writes.drop_queued()
                dropped = True
            await asyncio.wait({done}, timeout=0.2)
        await done

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if service.writes.closed:  # the app is started again (e.g. a second TestClient)
            service.writes = Writes(hidden, JobStore(jobs_folder))
        if background_warm_up:
            threading.Thread(target=warm_up, name="qa-warm-up", daemon=True).start()
        else:
            await anyio.to_thread.run_sync(warm_up)
        poller = asyncio.create_task(reload_loop()) if settings.reload_interval_s > 0 else None
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            await finish_writes()

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
        docs_url=None,  # served by api.routers.service from the swagger-ui-bundle package: no CDN
        redoc_url=None,  # ReDoc has no offline bundle on PyPI; /docs and /openapi.json cover it
    )
    app.state.service = service
    upload_body_limit = MAX_FILES_PER_UPLOAD * settings.max_upload_bytes + 1024 * 1024
    app.add_middleware(WriteGate, service=service)  # innermost: who may write is judged before any body is read
    app.add_middleware(HeadAsGet)  # routes and key checks see a HEAD as the GET it asks about
    app.add_middleware(
        BodyLimit,
        default=MAX_BODY_BYTES,
        limit_for=lambda method, path: (
            upload_body_limit if (method, path) == ("POST", "/documents")
            else settings.max_upload_bytes + 1 if method == "PUT" and path.startswith("/documents/")
            else None
        ),
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(HostCheck, allowed=allowed_hosts(settings))  # outermost: refuse unknown Hosts first
    install_error_handlers(app, hide=hidden)

    app.include_router(service_routes.router)
    app.include_router(ask.build_router(settings))
    app.include_router(documents.build_router(settings))
    app.include_router(jobs.router)

    def openapi() -> dict:
        # Keys are optional: without keys configured (or for reads, unless QA_REQUIRE_KEY_FOR_READS)
        # a request without Authorization is fine. `{}` in `security` says so.
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            for path in schema.get("paths", {}).values():
                for op in path.values():
                    if isinstance(op, dict) and op.get("security") and {} not in op["security"]:
                        op["security"] = [{}, *op["security"]]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount("/static/swagger-ui", StaticFiles(directory=swagger_ui_path), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
