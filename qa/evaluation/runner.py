"""Run the full pipeline over an evaluation set and score every question."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from qa.evaluation.dataset import EvalItem
from qa.evaluation.metrics import ItemResult, failed_item, score_item


class _DocumentCache:
    def __init__(self, fetch: Callable[[str], str]) -> None:
        self._fetch = fetch
        self._texts: dict[str, str] = {}

    def __call__(self, doc_id: str) -> str:
        if doc_id not in self._texts:
            self._texts[doc_id] = self._fetch(doc_id)
        return self._texts[doc_id]


def run_pipeline(
    pipeline: Any,
    items: Sequence[EvalItem],
    top_k: int | None = None,
    max_answers: int | None = None,
    progress: bool = True,
    on_error: str = "record",
) -> list[ItemResult]:
    """Ask ``pipeline`` (``.ask(question, top_k=, max_answers=)`` -> AskResult, and
    ``.document_text(doc_id)``) every question and score the answers.

    ``on_error="record"`` scores a question whose ``ask`` raised as an abstention with the error
    kept in :attr:`ItemResult.error`; ``"raise"`` re-raises.
    """
    document_text = _DocumentCache(pipeline.document_text)
    results: list[ItemResult] = []
    iterator: Any = items
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(items, desc="qa eval", unit="q", leave=False)
        iterator = bar
    try:
        for item in iterator:
            t0 = time.perf_counter()
            try:
                result = pipeline.ask(item.question, top_k=top_k, max_answers=max_answers)
            except Exception as exc:
                if on_error == "raise":
                    raise
                latency = (time.perf_counter() - t0) * 1000.0
                err = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                results.append(failed_item(item, err, latency))
                continue
            latency = (time.perf_counter() - t0) * 1000.0
            results.append(score_item(item, result, document_text, latency))
    finally:
        if bar is not None:
            bar.close()
    return results
