"""Writes off the request path: one writer thread, and jobs for uploads too large to wait for.

Every write (upload, replace, delete, restore) runs on a single worker thread, so writes are
serialised, never block the event loop and never take the model slots that ``/ask`` uses. A
large upload answers ``202 Accepted`` with a job id at once; ``GET /jobs/{id}`` says how it went.
With a :class:`api.job_store.JobStore`, an upload job and its files are on disk before the 202, its outcome
after it ran: a server that is killed or restarted runs the unfinished ones again at its next start
(:meth:`Writes.resume`; a write a crash cut off is first finished or undone by the write journal, qa.writes),
and job ids answer after a restart. In memory: the newest :data:`KEEP` finished jobs and every one still queued
or running; at most :data:`MAX_PENDING` wait at once, each holding its files' bytes (a further large upload
answers 503 ``busy``).
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
from api.job_store import JobStore

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
    def __init__(self, hide: list | None = None, store: JobStore | None = None) -> None:
        #: (server path, label) pairs a failed job's message never shows (as api.errors' handlers)
        self.hide = list(hide or [])
        self.store = store
        self._durable: set[str] = set()  # ids of the jobs written to the store
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-write", initializer=_lower_priority)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self.closed = False

    async def run(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the writer thread and wait for it (the request stays open)."""
        return await asyncio.wrap_future(self.executor.submit(fn))

    def submit(self, kind: str, fn: Callable[[], Any], batch: list[tuple[str, bytes]] | None = None) -> Job:
        """Run ``fn`` on the writer thread as a job; returns at once. ApiError 503 ``busy`` when
        :data:`MAX_PENDING` jobs are still queued or running. ``batch``: the files ``fn`` writes, saved with
        the job in the store (when there is one) before this returns, so the job survives the server."""
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
        if self.store is not None and batch is not None:
            try:
                self.store.save_pending(vars(job), batch)
            except BaseException as e:
                with self._lock:
                    self._jobs.pop(job.id, None)
                if isinstance(e, OSError):
                    raise server_condition(e) or ApiError(
                        503, "index_unavailable", f"cannot save the upload job in {self.store.folder} "
                        f"({e.strerror or e}): make that folder writable for the server, then retry") from None
                raise
            self._durable.add(job.id)
        self._start(job, fn)
        return job

    def resume(self, make: Callable[[str, list[tuple[str, bytes]]], Callable[[], Any]]) -> int:
        """Queue again every job of the store that never finished and that no live process is running (a server
        killed with jobs queued or running). ``make(kind, batch)`` gives the function that does the job's write;
        it must accept that a write a crash cut off may have been finished by the journal. Returns how many."""
        if self.store is None:
            return 0
        n = 0
        for record in self.store.unfinished():
            job_id = record["id"]
            with self._lock:
                if job_id in self._jobs:
                    continue
            if not self.store.claim(job_id):  # another replica on this index folder is running it
                continue
            job = Job(id=job_id, kind=record["kind"], created_at=str(record.get("created_at") or _now()))
            batch = self.store.batch(job_id)
            with self._lock:
                self._jobs[job_id] = job
            self._durable.add(job_id)
            if batch is None:
                logger.error("job %s cannot run again: its files in %s are missing or damaged", job_id,
                             self.store.folder / job_id)
                fn: Callable[[], Any] = _lost
            else:
                logger.warning("job %s (%s, %d files) did not finish before the server stopped: running it again",
                               job_id, job.kind, len(batch))
                fn = make(job.kind, batch)
            self._start(job, fn)
            n += 1
        return n

    def _start(self, job: Job, fn: Callable[[], Any]) -> None:
        kind = job.kind

        def work() -> None:
            job.status = "running"
            if job.id in self._durable:
                self.store.save_started(vars(job))
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
                if job.id in self._durable:
                    self._durable.discard(job.id)
                    self.store.save_finished(vars(job))

        self.executor.submit(work)

    def get(self, job_id: str) -> Job | None:
        """A job this process knows, else one in the store (a job from before a restart, or another replica's)."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None and self.store is not None:
            record = self.store.get(job_id)
            job = None if record is None else Job(**record)
        return job

    def shutdown(self) -> None:
        """Let the running and queued writes finish (graceful shutdown)."""
        self.closed = True
        queued = sum(1 for j in self._jobs.values() if j.status == "queued")
        if queued:
            logger.warning("finishing the running write and %d queued upload(s) before exiting; Ctrl-C again to "
                           "finish only the running write (the queued ones then run at the next start)", queued)
        self.executor.shutdown(wait=True)

    def drop_queued(self) -> int:
        """A forced exit (a second Ctrl-C) during :meth:`shutdown`: the running write still finishes, the writes not
        started yet do not run now (as after a ``kill -9``): jobs saved in the store run at the next start, others
        are lost. Returns how many jobs were put off."""
        with self._lock:
            dropped = [j for j in self._jobs.values() if j.status == "queued"]
        self.executor.shutdown(wait=False, cancel_futures=True)
        if dropped:
            kept = sum(j.id in self._durable for j in dropped)
            logger.warning("forced exit: %d queued upload(s) not run now; %d of them are saved and run at the next "
                           "start%s", len(dropped), kept, "" if kept == len(dropped) else " (upload the others again)")
        return len(dropped)


def _lost() -> Any:
    raise ApiError(500, "job_lost", "the server stopped before this job ran, and its saved files are missing or "
                   "damaged: upload the files again")
