"""Writes off the request path: one writer thread, and jobs for uploads too large to wait for.

Every write (upload, replace, delete, restore) runs on a single worker thread, so writes are
serialised, never block the event loop and never take the model slots that ``/ask`` uses. A
large upload answers ``202 Accepted`` with a job id at once; ``GET /jobs/{id}`` says how it went.
Jobs live in memory (the newest :data:`KEEP` finished ones, and every one still queued or running);
at most :data:`MAX_PENDING` wait at once, each holding its files' bytes (a further large upload answers
503 ``busy``). A job cut off by a crash is finished or undone by the write journal at the next start
(qa.writes), not resumed.
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
#: Upload jobs queued or running at once. Each holds its files' bytes (up to 20 x the file limit) in memory
#: until it has run, so without a bound a client could queue uploads until the server ran out of memory
#: (2026-12-08 audit: 12 uploads of 10 x 1.9 MB, all 202, grew the server by 450 MB); a graceful shutdown
#: also runs every queued job before it exits.
MAX_PENDING = 16


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
        """Run ``fn`` on the writer thread as a job; returns at once. ApiError 503 ``busy`` when
        :data:`MAX_PENDING` jobs are still queued or running."""
        job = Job(id=uuid.uuid4().hex, kind=kind)
        with self._lock:
            pending = sum(1 for j in self._jobs.values() if j.finished_at is None)
            if pending >= MAX_PENDING:
                raise ApiError(503, "busy", f"{pending} uploads are waiting to be indexed; try again in a minute",
                               headers={"Retry-After": "60"})
            self._jobs[job.id] = job
            # Forget the oldest finished jobs only: one still queued or running stays findable (it used to be
            # dropped too, and GET /jobs/{id} answered 404 for an upload that was then indexed).
            finished = [i for i, j in self._jobs.items() if j.finished_at is not None]
            for old in finished[:max(0, len(self._jobs) - KEEP)]:
                del self._jobs[old]

        def work() -> None:
            job.status = "running"
            status, result, error = "failed", None, None
            try:
                out = fn()
                result = out.model_dump() if hasattr(out, "model_dump") else out
                status = "done"
            except ApiError as e:
                error = {"status": e.status, "error": e.error, "message": public_message(e.message, self.hide)}
            except Exception as e:  # noqa: BLE001 - recorded on the job; details only in the log
                known = server_condition(e)
                if known is not None:  # a full disk, a damaged index folder: said as the endpoints say it
                    logger.error("job %s (%s) failed: %s", job.id, kind, e)
                    error = {"status": known.status, "error": known.error,
                             "message": public_message(known.message, self.hide)}
                else:
                    logger.exception("job %s (%s) failed", job.id, kind)
                    error = {"status": 500, "error": "internal_error", "message": "internal error; see the server log"}
            finally:
                # the outcome and finished_at first, the status last: a poll never sees done/failed with
                # finished_at null (or without its result) -- it used to, between two assignments
                job.result, job.error = result, error
                job.finished_at = _now()
                job.status = status

        self.executor.submit(work)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def shutdown(self) -> None:
        """Let the running and queued writes finish (graceful shutdown)."""
        self.closed = True
        queued = sum(1 for j in self._jobs.values() if j.status == "queued")
        if queued:
            logger.warning("finishing the running write and %d queued upload(s) before exiting; Ctrl-C again to "
                           "finish only the running write", queued)
        self.executor.shutdown(wait=True)

    def drop_queued(self) -> int:
        """A forced exit (a second Ctrl-C) during :meth:`shutdown`: the running write still finishes, the writes not
        started yet never run (as after a ``kill -9``; their uploads are not stored). Returns how many jobs."""
        with self._lock:
            dropped = [j for j in self._jobs.values() if j.status == "queued"]
        self.executor.shutdown(wait=False, cancel_futures=True)
        if dropped:
            logger.warning("forced exit: %d queued upload(s) dropped (not stored; upload them again)", len(dropped))
        return len(dropped)
