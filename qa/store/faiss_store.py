"""The ``faiss`` backend (default) of :class:`qa.store.protocol.DocumentStore`: the versioned index
folder of :mod:`qa.index_store` (CURRENT + ``v-*`` version folders, FAISS + chunks + texts).

Reads go to the loaded, immutable :class:`qa.index_store.IndexStore` version (:meth:`snapshot`);
every write commits a complete new version atomically (``qa.index_store.commit_documents``: the
other documents keep their chunks and vectors) under the index lock, so several processes can
write to one folder, and a process serving the folder sees another's commit after :meth:`reload`.
BM25 is the in-memory ``bm25s`` ranking of the loaded version's chunks (built on first use).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.index_store import (
    DocumentInfo,
    IndexNotFoundError,
    IndexStore,
    _reuse_problem,
    active_version_name,
    commit_documents,
)
from qa.store.protocol import DocumentChangedError, Hit, check_write
from qa.types import Chunk, Document


class _Spec:
    """What a commit needs to know of the embedder and chunker (model id, dimension, params).
    Never embeds or chunks: a store whose previous version cannot be reused refuses to write."""

    def __init__(self, model_id: str, dimension: int, params: dict[str, Any]) -> None:
        self.model_id, self.dimension, self.params = model_id, int(dimension), dict(params)

    def embed_documents(self, *_a: Any, **_k: Any) -> np.ndarray:
        raise ValueError("the index was built with another embedding model or chunking: run `qa index` to rebuild it")

    def chunk(self, *_a: Any, **_k: Any) -> list[Chunk]:
        return self.embed_documents()


class FaissDocumentStore:
    """A :class:`~qa.store.protocol.DocumentStore` over ``settings.index_dir``.

    ``model_id``/``dimension``/``chunking``: what the embedder and chunker of the writers produce
    (recorded in every version's manifest; loading an index built otherwise raises
    :class:`qa.index_store.IndexStaleError`). An empty folder is an empty store (generation 0).
    """

    name = "faiss"

    def __init__(self, settings: Any, model_id: str, dimension: int, chunking: dict[str, Any],
                 snapshot: IndexStore | None = None) -> None:
        self.settings = settings
        self.index_dir = Path(settings.index_dir)
        self._spec = _Spec(model_id, dimension, chunking)
        self._snap: IndexStore | None = snapshot
        if self._snap is None:
            try:
                self._snap = IndexStore.load(self.index_dir, model_id, dimension)
            except IndexNotFoundError:
                self._snap = None

    # ------------------------------------------------------------------ reads
    def snapshot(self) -> IndexStore | "FaissDocumentStore":
        """The loaded version (immutable); this store itself while nothing was ever written."""
        return self._snap if self._snap is not None else self

    @property
    def dimension(self) -> int:
        return self._spec.dimension

    @property
    def version(self) -> IndexStore | None:
        return self._snap

    @property
    def generation(self) -> int:
        return self._snap.generation if self._snap is not None else 0

    @property
    def documents(self) -> Mapping[str, DocumentInfo]:
        return self._snap.documents if self._snap is not None else {}

    def document_ids(self) -> list[str]:
        return self._snap.document_ids() if self._snap is not None else []

    def document_text(self, doc_id: str) -> str:
        if self._snap is None:
            raise KeyError(doc_id)
        return self._snap.document_text(doc_id)

    def page_starts(self, doc_id: str) -> tuple[int, ...]:
        if self._snap is None:
            raise KeyError(doc_id)
        return self._snap.page_starts(doc_id)

    def dense_search(self, query_vector: np.ndarray, k: int) -> list[Hit]:
        return self._snap.dense_search(query_vector, k) if self._snap is not None else []

    def keyword_search(self, query: str, k: int) -> list[Hit]:
        return self._snap.keyword_search(query, k) if self._snap is not None else []

    def count_documents(self) -> int:
        return self._snap.count_documents() if self._snap is not None else 0

    def count_chunks(self) -> int:
        return self._snap.count_chunks() if self._snap is not None else 0

    # ------------------------------------------------------------------ writes
    def write_document(self, document: Document, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        vecs = check_write(document, chunks, vectors, self._spec.dimension)
        self._snap = commit_documents(self.settings, self._spec, self._spec, self._snap,
                                      writes=[(document, list(chunks), vecs)])
        return self._snap.generation

    def write_documents(self, items: Sequence[tuple[Document, Sequence[Chunk], np.ndarray]],
                        removals: Iterable[str] = ()) -> int:
        writes = [(d, list(c), check_write(d, c, v, self._spec.dimension)) for d, c, v in items]
        if len({d.id for d, _, _ in writes}) != len(writes):
            raise ValueError("a document is given twice")
        self._snap = commit_documents(self.settings, self._spec, self._spec, self._snap, writes=writes,
                                      removals=set(removals))
        return self._snap.generation

    def reuse_problem(self) -> str | None:
        """Why the stored chunks and vectors cannot be kept by a write of this store's chunking (the index was
        built with other chunking parameters: every document must be chunked and embedded again); None: they can."""
        return _reuse_problem(self._snap, self._spec, self._spec.params) if self._snap is not None else None

    def delete_document(self, doc_id: str, if_sha256: str | None = None) -> int:
        self.reload()
        if doc_id not in self.documents:
            raise KeyError(doc_id)
        if if_sha256 is not None and self.documents[doc_id].sha256 != if_sha256:
            raise DocumentChangedError(doc_id)
        self._snap = commit_documents(self.settings, self._spec, self._spec, self._snap, removals={doc_id})
        return self._snap.generation

    # ------------------------------------------------------------------ replicas
    def reload(self) -> bool:
        """Load the active version if another process committed a new one (True if so)."""
        active = active_version_name(self.index_dir)
        if active is None or (self._snap is not None and self._snap.path.name == active):
            return False
        self._snap = IndexStore.load(self.index_dir, self._spec.model_id, self._spec.dimension)
        return True

    def close(self) -> None:
        pass
