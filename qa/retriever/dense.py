"""Dense retrieval: embed the question, inner-product search in the document store
(:meth:`qa.store.protocol.DocumentReader.dense_search`: FAISS or Milvus)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qa import timing
from qa.types import Passage

if TYPE_CHECKING:
    from qa.embedding import Embedder
    from qa.store.protocol import DocumentReader


class DenseRetriever:
    """``run(question, k)``: the ``k`` chunks most similar to the question (cosine), best first."""

    name = "dense"

    def __init__(self, store: "DocumentReader", embedder: "Embedder") -> None:
        self.store = store
        self.embedder = embedder

    def warm_up(self) -> "DenseRetriever":
        self.embedder.warm_up()
        return self

    def run(self, question: str, k: int = 5) -> list[Passage]:
        if k < 1:
            raise ValueError("k must be >= 1")
        if self.store.count_chunks() == 0:
            return []
        with timing.stage("embed_query"):
            qv = self.embedder.embed_query(question)
        with timing.stage("dense_search"):
            hits = self.store.dense_search(qv, k)
        return [
            Passage(chunk=h.chunk, score=h.score, rank=rank, scores={"dense": h.score})
            for rank, h in enumerate(hits, start=1)
        ]
