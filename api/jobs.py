"""Writes off the request path: one writer thread, and jobs for uploads too large to wait for.

Every write (upload, replace, delete, restore) runs on a single worker thread, so writes are
serialised, never block the event loop and never take the model slots that ``/ask`` uses. A
large upload answers ``202 Accepted`` with a job id at once; ``GET /jobs/{id}`` says how it went.
Jobs live in memory (the newest :data:`KEEP` of them); a job cut off by a crash is finished or
undone by the write journal at the next start (qa.writes), not resumed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from api.errors import ApiError, public_message, server_condition

logger = logging.getLogger(__name__)

KEEP = 500


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class Job:
    id: str
    kind: str
    status: str = "queued"  # queued | running | done | failed
    created_at: str = field(default_factory=_now)
    finished_at: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


#: Niceness of the writer thread (Linux: per thread, inherited by the threads it starts, e.g. the
#: embedder's OpenMP team), so indexing yields the CPU to /ask.
WRITER_NICENESS = 10


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WRITER_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        pass


class Writes:
    def __init__(self, hide: list | None = None) -> None:
        #: (server path, label) pairs a failed job's message never shows (as api.errors' handlers)
        self.hide = list(hide or [])
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-write", initializer=_lower_priority)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self.closed = False

    async def run(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the writer thread and wait for it (the request stays open)."""
        return await asyncio.wrap_future(self.executor.submit(fn))

    def submit(self, kind: str, fn: Callable[[], Any]) -> Job:
        """Run ``fn`` on the writer thread as a job; returns at once."""
        job = Job(id=uuid.uuid4().hex, kind=kind)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP:
                self._jobs.popitem(last=False)

        def work() -> None:
            job.status = "running"
            try:
                out = fn()
                job.result = out.model_dump() if hasattr(out, "model_dump") else out
                job.status = "done"
            except ApiError as e:
                job.error = {"status": e.status, "error": e.error, "message": public_message(e.message, self.hide)}
                job.status = "failed"
            except Exception as e:  # noqa: BLE001 - recorded on the job; details only in the log
                known = server_condition(e)
                if known is not None:  # a full disk, a damaged index folder: said as the endpoints say it
                    logger.error("job %s (%s) failed: %s", job.id, kind, e)
                    job.error = {"status": known.status, "error": known.error,
                                 "message": public_message(known.message, self.hide)}
                else:
                    logger.exception("job %s (%s) failed", job.id, kind)
                    job.error = {"status": 500, "error": "internal_error", "message": "internal error; see the server log"}
                job.status = "failed"
            finally:
                job.finished_at = _now()

        self.executor.submit(work)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def shutdown(self) -> None:
        """Let the running and queued writes finish (graceful shutdown)."""
        self.closed = True
        self.executor.shutdown(wait=True)
