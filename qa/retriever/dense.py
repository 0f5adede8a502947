"""Dense retrieval: embed the question, inner-product search over the FAISS index."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qa import timing
from qa.types import Passage

if TYPE_CHECKING:
    from qa.embedding import Embedder
    from qa.index_store import IndexStore


class DenseRetriever:
    """``run(question, k)``: the ``k`` chunks most similar to the question (cosine), best first."""

    name = "dense"

    def __init__(self, store: "IndexStore", embedder: "Embedder") -> None:
        self.store = store
        self.embedder = embedder

    def warm_up(self) -> "DenseRetriever":
        self.embedder.warm_up()
        return self

    def run(self, question: str, k: int = 5) -> list[Passage]:
        if k < 1:
            raise ValueError("k must be >= 1")
        if not self.store.chunks:
            return []
        with timing.stage("embed_query"):
            qv = self.embedder.embed_query(question)
        with timing.stage("dense_search"):
            hits = self.store.search(qv, k)
        return [
            Passage(chunk=self.store.chunks[i], score=s, rank=rank, scores={"dense": s})
            for rank, (i, s) in enumerate(hits, start=1)
        ]
