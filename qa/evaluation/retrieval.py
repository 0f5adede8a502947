"""Retrieval-only evaluation: recall@k and MRR of a retriever on an evaluation set, no reader needed.

    qa eval --retrieval-only --mode bm25 -k 5
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from qa.evaluation.dataset import EvalItem
from qa.evaluation.metrics import first_hit_rank, mean_reciprocal_rank, percentile, recall_at_k, recall_ks


def load_index(settings: Any) -> tuple[Any, Any]:
    """(index store, embedder) as ``qa search`` and the pipeline load them: the active index in
    ``settings.index_dir``, built from ``settings.corpus_dir`` when there is none yet."""
    import sys

    from qa.embedding import Embedder
    from qa.index_store import load_or_build

    embedder = Embedder.from_settings(settings).warm_up()
    store = load_or_build(settings, embedder, announce=lambda m: print(f"qa: {m}", file=sys.stderr))
    return store, embedder


def retrieval_hits(retriever: Any, items: Sequence[EvalItem], k: int,
                   progress: bool = False) -> list[dict[str, Any]]:
    """For every answerable item: the rank of the first retrieved chunk overlapping its evidence."""
    rows: list[dict[str, Any]] = []
    answerable = [i for i in items if i.answerable]
    iterator: Any = answerable
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(answerable, desc="retrieval", unit="q", leave=False)
    for item in iterator:
        t0 = time.perf_counter()
        passages = retriever.run(item.question, k)
        ms = (time.perf_counter() - t0) * 1000.0
        rows.append({"id": item.id, "type": item.type, "question": item.question,
                     "hit_rank": first_hit_rank(passages, item.evidence), "latency_ms": ms})
    return rows


def summarize_hits(rows: Sequence[dict[str, Any]], k: int) -> dict[str, Any]:
    ranks = [r["hit_rank"] for r in rows]
    out: dict[str, Any] = {"count": len(rows)}
    for kk in recall_ks(k):
        out[f"recall@{kk}"] = recall_at_k(ranks, kk)
    out["mrr"] = mean_reciprocal_rank(ranks)
    out["latency_p50_ms"] = percentile([r["latency_ms"] for r in rows], 50)
    return out


def retrieval_report(retriever: Any, items: Sequence[EvalItem], k: int, progress: bool = False) -> dict[str, Any]:
    rows = retrieval_hits(retriever, items, k, progress)
    by_type = {t: summarize_hits([r for r in rows if r["type"] == t], k) for t in sorted({r["type"] for r in rows})}
    misses = [r for r in rows if r["hit_rank"] is None]
    return {"overall": summarize_hits(rows, k), "by_type": by_type, "misses": misses, "items": rows}
