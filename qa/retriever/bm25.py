"""Lexical retrieval: BM25 over the chunks, with the maintained ``bm25s`` package.

Text is lower-cased, split on word characters, English stop words are dropped and words are
stemmed with the Snowball English stemmer (PyStemmer), so "protests" matches "protest". The
index is built in memory from the chunks in :meth:`BM25Retriever.warm_up` (milliseconds for a few
hundred chunks), so nothing extra is stored on disk next to the dense index.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from qa.types import Chunk, Passage


def _stemmer() -> Any:
    try:
        import Stemmer  # PyStemmer
    except ImportError:  # pragma: no cover - PyStemmer is a declared dependency
        return None
    return Stemmer.Stemmer("english")


class BM25Retriever:
    """BM25 ranking of ``chunks``; ``run(question, k)`` returns up to ``k`` passages, best first.

    Chunks that share no (stemmed, non-stop-word) term with the question score 0 and are not
    returned, so fewer than ``k`` passages may come back (none for a question of stop words only).
    """

    name = "bm25"

    def __init__(
        self,
        chunks: Sequence[Chunk],
        *,
        k1: float = 1.5,
        b: float = 0.75,
        stopwords: str | list[str] = "en",
        stem: bool = True,
    ) -> None:
        self.chunks: list[Chunk] = list(chunks)
        self.k1 = k1
        self.b = b
        self.stopwords = stopwords
        self.stem = stem
        self._tokenizer: Any = None
        self._model: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_store(cls, store: Any, **kwargs: Any) -> "BM25Retriever":
        """Build over an index store's chunks (anything with a ``chunks`` list of :class:`Chunk`)."""
        return cls(store.chunks, **kwargs)

    @property
    def ready(self) -> bool:
        return self._model is not None or not self.chunks

    def warm_up(self) -> "BM25Retriever":
        with self._lock:
            if self._model is not None or not self.chunks:
                return self
            import bm25s
            from bm25s.tokenization import Tokenizer

            tokenizer = Tokenizer(
                lower=True,
                stopwords=self.stopwords,
                stemmer=_stemmer() if self.stem else None,
            )
            corpus_ids = tokenizer.tokenize(
                [c.text for c in self.chunks], update_vocab=True, return_as="ids", show_progress=False
            )
            model = bm25s.BM25(k1=self.k1, b=self.b)
            model.index(corpus_ids, show_progress=False)
            self._tokenizer = tokenizer
            self._model = model
        return self

    def scores(self, question: str) -> list[float]:
        """BM25 score of every chunk for ``question`` (same order as ``self.chunks``)."""
        self.warm_up()
        if not self.chunks:
            return []
        query_ids = self._query_ids(question)
        if not query_ids:
            return [0.0] * len(self.chunks)
        return [float(s) for s in self._model.get_scores(query_ids)]

    def _query_ids(self, question: str) -> list[int]:
        # update_vocab=False still caches new surface forms of known stems in the tokenizer's
        # dicts, so queries from several threads (the HTTP API) take the lock.
        with self._lock:
            ids = self._tokenizer.tokenize(
                [question], update_vocab=False, return_as="ids", show_progress=False
            )[0]
        # Words not in the corpus vocabulary map to the empty token; they cannot match anything.
        empty = self._tokenizer.get_vocab_dict().get("")
        return [i for i in ids if i != empty]

    def run(self, question: str, k: int = 5) -> list[Passage]:
        if k < 1:
            raise ValueError("k must be >= 1")
        self.warm_up()
        if not self.chunks:
            return []
        query_ids = self._query_ids(question)
        if not query_ids:
            return []
        n = min(k, len(self.chunks))
        docs, scores = self._model.retrieve(
            [query_ids], k=n, show_progress=False, n_threads=0, return_as="tuple"
        )
        passages: list[Passage] = []
        for idx, score in zip(docs[0].tolist(), scores[0].tolist()):
            if score <= 0.0:
                break
            s = float(score)
            passages.append(
                Passage(chunk=self.chunks[int(idx)], score=s, rank=len(passages) + 1, scores={"bm25": s})
            )
        return passages


class KeywordRetriever:
    """BM25 through the document store (:meth:`qa.store.protocol.DocumentReader.keyword_search`):
    bm25s in memory for the FAISS backend, Milvus's built-in BM25 function for the Milvus one (no
    per-process state there). ``run(question, k)`` like :class:`BM25Retriever`."""

    name = "bm25"

    def __init__(self, store: Any) -> None:
        self.store = store

    def warm_up(self) -> "KeywordRetriever":
        warm = getattr(self.store, "bm25", None)  # the FAISS backend builds its BM25 index here
        if callable(warm):
            warm()
        return self

    def run(self, question: str, k: int = 5) -> list[Passage]:
        if k < 1:
            raise ValueError("k must be >= 1")
        return [
            Passage(chunk=h.chunk, score=h.score, rank=rank, scores={"bm25": h.score})
            for rank, h in enumerate(self.store.keyword_search(question, k), start=1)
        ]
