"""One forward pass for the reader windows of several concurrent questions.

    batcher = ForwardBatcher(reader._forward_rows, wait_ms=2, max_rows=64)
    logits = batcher.run(rows)          # from any thread; blocks until this caller's rows are done

No background thread: the first caller to find the model idle becomes the *leader*. It waits up to ``wait_ms``
for other callers' rows (less when ``max_rows`` are already pending), takes the pending requests in arrival
order, runs the forward once for all of their rows, hands each caller its own rows' results, and lets the next
leader in. Callers that arrive while a forward runs queue up and go together in the next one, so under load
the batches grow on their own, and a lone caller pays at most ``wait_ms``. A request is never split across
forwards; one larger than ``max_rows`` runs alone. An exception in the forward reaches every caller of that
batch.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence


@dataclass(eq=False)
class _Request:
    rows: Sequence[Any]
    result: list | None = None
    error: BaseException | None = None
    done: bool = False
    batch_requests: int = 0  # how many requests shared its forward (for tests and benches)


class ForwardBatcher:
    def __init__(self, forward: Callable[[list], list], wait_ms: float = 2.0, max_rows: int = 64) -> None:
        if wait_ms < 0:
            raise ValueError(f"wait_ms must be >= 0, not {wait_ms}")
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, not {max_rows}")
        self.forward = forward  # list of rows -> list of results, one per row, same order
        self.wait_s = wait_ms / 1000.0
        self.max_rows = max_rows
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._busy = False  # a leader is collecting or running a forward
        self.forwards = 0  # forward passes run
        self.batched_requests = 0  # requests served by those passes

    def run(self, rows: Sequence[Any]) -> list:
        """The forward's result for each of ``rows`` (in order), computed together with concurrent callers'."""
        if not rows:
            return []
        req = _Request(rows)
        with self._cond:
            self._pending.append(req)
            self._cond.notify_all()  # a collecting leader may want these rows
            while True:
                if req.done:
                    return self._outcome(req)
                if not self._busy:
                    self._busy = True  # this caller leads the next batch
                    break
                self._cond.wait()
        try:
            while not req.done:
                self._lead()
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
        return self._outcome(req)

    @staticmethod
    def _outcome(req: _Request) -> list:
        if req.error is not None:
            raise req.error
        return req.result  # type: ignore[return-value]

    def _lead(self) -> None:
        deadline = time.monotonic() + self.wait_s
        with self._cond:
            while self._pending_rows() < self.max_rows:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch, n = [], 0
            while self._pending and (not batch or n + len(self._pending[0].rows) <= self.max_rows):
                r = self._pending.pop(0)
                batch.append(r)
                n += len(r.rows)
        rows = [row for r in batch for row in r.rows]
        try:
            results = self.forward(rows)
            if len(results) != len(rows):
                raise RuntimeError(f"forward returned {len(results)} results for {len(rows)} rows")
            error = None
        except BaseException as e:  # handed to every caller of the batch
            results, error = None, e
        with self._cond:
            self.forwards += 1
            self.batched_requests += len(batch)
            at = 0
            for r in batch:
                if error is None:
                    r.result = results[at : at + len(r.rows)]
                r.error = error
                r.batch_requests = len(batch)
                r.done = True
                at += len(r.rows)
            self._cond.notify_all()

    def _pending_rows(self) -> int:
        return sum(len(r.rows) for r in self._pending)
