"""Per-stage timers for benchmarks: a no-op unless a collector is active in the calling context.

    with timing.collect() as stages:      # bench/bench_ask.py
        pipeline.ask(question)
    stages  # {"embed_query": 0.004, "bm25": 0.001, ..., "reader_forward": 0.09} (seconds, summed per stage)

Inside the service code, ``with timing.stage("bm25"): ...``. Without an active collector a stage costs one
context-variable lookup, so serving is unchanged. The collector lives in a context variable: it belongs to
the thread (or asyncio task) that opened it, so concurrent questions never mix their figures.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

_active: ContextVar[dict[str, float] | None] = ContextVar("qa_timing", default=None)

#: The stages of a warm ``ask``, in order (bench/bench_ask.py prints them in this order).
STAGES = (
    "check_question",  # strip, length check, cache key
    "embed_query",  # dense: the query embedding (its tokenisation included)
    "dense_search",  # dense: FAISS search
    "bm25",  # BM25: question tokenisation (stemming) and scoring
    "fusion",  # hybrid: reciprocal rank fusion
    "reader_tokenise",  # the question and passages cut into reader windows
    "reader_forward",  # the span model's forward pass (waiting for a shared batch included)
    "decode",  # n-best span decoding
    "aggregate",  # spans grouped into answers with their citations and verifier features (verifier included)
    "verifier",  # the answer verifier's scores (inside "aggregate")
    "result",  # the AskResult built (passages, pages)
)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Add the time spent in the block to stage ``name`` of the active collector (if any)."""
    stages = _active.get()
    if stages is None:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        stages[name] = stages.get(name, 0.0) + time.perf_counter() - t0


@contextmanager
def collect() -> Iterator[dict[str, float]]:
    """Collect the stages timed in this context (seconds per stage name) into the yielded dict."""
    stages: dict[str, float] = {}
    token = _active.set(stages)
    try:
        yield stages
    finally:
        _active.reset(token)


def enabled() -> bool:
    return _active.get() is not None
