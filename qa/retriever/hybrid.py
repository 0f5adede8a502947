"""Hybrid retrieval: reciprocal rank fusion (RRF) of the dense and the BM25 rankings.

RRF (Cormack et al., 2009) scores a chunk ``sum over rankings of 1 / (rrf_k + rank)``; it needs
no score calibration between retrievers, and a chunk ranked well by either one comes up. Each
retriever is asked for more candidates than ``k`` (``max(4k, 20)``) so that a chunk ranked, say,
8th by one and 2nd by the other can still make the fused top ``k``.

:func:`make_retriever` builds the retriever that ``Settings.retrieval_mode`` names.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from qa import timing
from qa.types import Passage

if TYPE_CHECKING:
    from qa.config import Settings


class Retriever(Protocol):
    def run(self, question: str, k: int = 5) -> list[Passage]: ...


def _key(p: Passage) -> tuple[str, int, int]:
    return (p.chunk.document, p.chunk.start, p.chunk.end)


def candidate_count(k: int) -> int:
    """How many candidates each retriever contributes to the fusion of a top-``k`` ranking."""
    return max(k * 4, 20)


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[Passage]], k: int, rrf_k: int = 60
) -> list[Passage]:
    """Fuse named rankings into one top-``k`` list by RRF.

    The fused passage's ``score`` is its RRF score; ``scores`` keeps every retriever's own score
    under the retriever's name (``dense``, ``bm25``) for the rankings it appeared in, plus
    ``rrf``. Ties are broken by the best single rank, then by document and offset (deterministic).
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    fused: dict[tuple[str, int, int], dict[str, Any]] = {}
    for name, ranking in rankings.items():
        for position, p in enumerate(ranking, start=1):
            rank = p.rank if p.rank >= 1 else position
            entry = fused.setdefault(_key(p), {"chunk": p.chunk, "rrf": 0.0, "best": rank, "scores": {}})
            entry["rrf"] += 1.0 / (rrf_k + rank)
            entry["best"] = min(entry["best"], rank)
            for sname, svalue in p.scores.items():
                entry["scores"].setdefault(sname, float(svalue))
            entry["scores"].setdefault(name, float(p.score))
    ordered = sorted(fused.items(), key=lambda kv: (-kv[1]["rrf"], kv[1]["best"], kv[0]))
    out: list[Passage] = []
    for rank, (_, entry) in enumerate(ordered[:k], start=1):
        scores = dict(entry["scores"])
        scores["rrf"] = entry["rrf"]
        out.append(Passage(chunk=entry["chunk"], score=entry["rrf"], rank=rank, scores=scores))
    return out


class HybridRetriever:
    """Dense + BM25 fused by reciprocal rank fusion; ``run(question, k)`` returns the fused top ``k``."""

    name = "hybrid"

    def __init__(self, dense: Retriever, bm25: Retriever, rrf_k: int = 60) -> None:
        if rrf_k < 0:
            raise ValueError("rrf_k must be >= 0")
        self.dense = dense
        self.bm25 = bm25
        self.rrf_k = rrf_k
        self._lock = threading.Lock()

    def warm_up(self) -> "HybridRetriever":
        with self._lock:
            for r in (self.dense, self.bm25):
                warm = getattr(r, "warm_up", None)
                if callable(warm):
                    warm()
        return self

    def run(self, question: str, k: int = 5) -> list[Passage]:
        if k < 1:
            raise ValueError("k must be >= 1")
        n = candidate_count(k)
        dense = self.dense.run(question, n)
        with timing.stage("bm25"):
            bm25 = self.bm25.run(question, n)
        with timing.stage("fusion"):
            return reciprocal_rank_fusion({"dense": dense, "bm25": bm25}, k, self.rrf_k)


def make_retriever(
    mode: str, store: Any, embedder: Any = None, settings: "Settings | None" = None
) -> Retriever:
    """The retriever for ``mode`` ("dense", "bm25" or "hybrid") over ``store`` (a
    :class:`qa.store.protocol.DocumentReader`; for BM25 alone, also anything with a ``chunks``
    list). ``embedder`` is needed for dense and hybrid."""
    from qa.retriever.bm25 import BM25Retriever, KeywordRetriever

    if settings is None:
        from qa.config import get_settings

        settings = get_settings()

    def keyword() -> Retriever:
        return KeywordRetriever(store) if hasattr(store, "keyword_search") else BM25Retriever(store.chunks)

    if mode == "bm25":
        return keyword()
    if mode not in ("dense", "hybrid"):
        raise ValueError(f"unknown retrieval mode {mode!r}: expected dense, bm25 or hybrid")
    if embedder is None:
        raise ValueError(f"retrieval mode {mode!r} needs an embedder")
    from qa.retriever.dense import DenseRetriever

    dense = DenseRetriever(store, embedder)
    if mode == "dense":
        return dense
    return HybridRetriever(dense, keyword(), rrf_k=settings.rrf_k)
