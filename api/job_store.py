"""Background upload jobs on disk, so that a ``202 Accepted`` survives the server.

An upload answered 202 used to live only in memory: a crash or ``kill -9`` before it ran lost it (the client had
been told it was accepted), and after any restart its id answered 404. Now, before the 202, the job and its files
are written to ``<index>/jobs/<id>/`` (``job.json`` and ``files/0``, ``files/1``, ...; the folder appears whole,
renamed from a temporary name, after an fsync). A finished job keeps only its ``job.json`` (the outcome); the
newest :data:`KEEP` finished ones are kept. At start-up a server runs again every job that had not finished.

Several FAISS replicas may share one index folder: a job is *claimed* by the process that runs it (an exclusive
``flock`` on ``<id>/lock``, released by the kernel when that process dies), so a replica that starts resumes only
jobs whose process is gone, never one another replica is still running; any of them answers ``GET /jobs/{id}``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from qa.writes import _fsync_dir, _write_durable, _write_json_atomic

logger = logging.getLogger(__name__)

#: Finished jobs kept on disk (their outcome only); as many as the memory list keeps.
KEEP = 500
_FIELDS = ("id", "kind", "status", "created_at", "finished_at", "result", "error")


def _locked(path: Path) -> int:
    """An fd of ``path`` (created if need be) holding its exclusive ``flock``; OSError when another process holds
    it (or the file cannot be opened)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd


def _plain(job_id: str) -> bool:
    """A job id as :func:`uuid.uuid4` ``.hex`` makes them: nothing a path could be built from."""
    return len(job_id) == 32 and all(c in "0123456789abcdef" for c in job_id)


class JobStore:
    """Jobs under ``folder`` (``<index>/jobs``). Every method is safe to call from any thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._claims: dict[str, int] = {}  # job id -> fd holding its lock
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ writing
    def save_pending(self, job: dict[str, Any], batch: list[tuple[str, bytes]]) -> None:
        """Write a queued job and its files, durably and claimed by this process (the lock is taken before the
        folder appears under its name). Raises OSError (e.g. a full disk) with nothing left behind."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".tmp-{job['id']}"
        fd = None
        try:
            (tmp / "files").mkdir(parents=True)
            fd = _locked(tmp / "lock")  # a fresh file: nobody else can hold it
            for i, (_, data) in enumerate(batch):
                _write_durable(tmp / "files" / str(i), data)
            record = {k: job.get(k) for k in _FIELDS} | {"names": [name for name, _ in batch]}
            _write_json_atomic(tmp / "job.json", record)
            os.replace(tmp, self.folder / job["id"])  # the lock goes with its file
            _fsync_dir(self.folder)
        except BaseException:
            if fd is not None:
                os.close(fd)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        with self._lock:
            self._claims[job["id"]] = fd

    def save_started(self, job: dict[str, Any]) -> None:
        """Record that the job runs (for other replicas' ``GET /jobs/{id}``); best effort."""
        try:
            self._update(job)
        except OSError as e:
            logger.warning("could not record on disk that job %s runs: %s", job["id"], e)

    def save_finished(self, job: dict[str, Any]) -> None:
        """Record a job's outcome, drop its files, release it, and forget the oldest finished jobs past KEEP."""
        try:
            self._update(job)
            shutil.rmtree(self.folder / job["id"] / "files", ignore_errors=True)
        except OSError as e:  # the outcome stays in memory; at the next start the job runs again
            logger.error("could not record the outcome of job %s on disk: %s", job["id"], e)
        finally:
            self.release(job["id"])
        self._prune()

    def _update(self, job: dict[str, Any]) -> None:
        folder = self.folder / job["id"]
        record = self._read(folder) or {}
        record.update({k: job.get(k) for k in _FIELDS})
        _write_json_atomic(folder / "job.json", record)

    def _prune(self) -> None:
        finished = [(r.get("finished_at") or "", r["id"]) for r in self._records() if r.get("finished_at")]
        finished.sort()
        for _, job_id in finished[:max(0, len(finished) - KEEP)]:
            shutil.rmtree(self.folder / job_id, ignore_errors=True)

    # ------------------------------------------------------------------ claims
    def claim(self, job_id: str) -> bool:
        """Hold the job's lock for this process; False when another live process holds it."""
        try:
            fd = _locked(self.folder / job_id / "lock")
        except OSError:
            return False
        with self._lock:
            self._claims[job_id] = fd
        return True

    def release(self, job_id: str) -> None:
        with self._lock:
            fd = self._claims.pop(job_id, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    # ------------------------------------------------------------------ reading
    def get(self, job_id: str) -> dict[str, Any] | None:
        """A job's record (the JobOut fields), or None: unknown, or an id that is not one."""
        if not _plain(job_id):
            return None
        record = self._read(self.folder / job_id)
        return None if record is None else {k: record.get(k) for k in _FIELDS}

    def batch(self, job_id: str) -> list[tuple[str, bytes]] | None:
        """The files of an unfinished job, in upload order; None when they are gone or damaged."""
        folder = self.folder / job_id
        record = self._read(folder)
        names = record.get("names") if record else None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return None
        try:
            return [(name, (folder / "files" / str(i)).read_bytes()) for i, name in enumerate(names)]
        except OSError:
            return None

    def unfinished(self) -> list[dict[str, Any]]:
        """Records of jobs that never recorded an outcome, oldest first."""
        out = [r for r in self._records() if not r.get("finished_at")]
        out.sort(key=lambda r: str(r.get("created_at") or ""))
        return out

    def _records(self) -> list[dict[str, Any]]:
        if not self.folder.is_dir():
            return []
        out = []
        for folder in self.folder.iterdir():
            if _plain(folder.name):
                record = self._read(folder)
                if record is not None:
                    out.append(record)
        return out

    @staticmethod
    def _read(folder: Path) -> dict[str, Any] | None:
        try:
            record = json.loads((folder / "job.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("id") != folder.name or not isinstance(record.get("kind"), str):
            return None
        return record


def new_job_id() -> str:
    return uuid.uuid4().hex
