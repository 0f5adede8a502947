"""The document store protocol: what the retriever, the pipeline and the write path need from a store.

Two backends implement it (``QA_STORE``): ``faiss`` (default: :class:`qa.store.faiss_store.FaissDocumentStore`,
the versioned index folder of :mod:`qa.index_store`) and ``milvus``
(:class:`qa.store.milvus_store.MilvusDocumentStore`, Milvus Lite in-process or a Milvus server).

The model is Haystack 2.x's document-store protocol (count / write / delete, a policy per write),
narrowed to what an extractive QA service needs: a *document* is the exact served text that every
offset indexes, and it is stored with its *chunks* (offsets into that text) and their vectors.

* Chunks get **stable ids** (:func:`chunk_id`: document id + ordinal + short content hash), never a
  row position of an index, so a hit means the same chunk on every replica and after a rebuild.
* Writes are per document: :meth:`DocumentStore.write_document` writes or replaces one document and
  all its chunks; :meth:`DocumentStore.delete_document` removes one (``KeyError`` when unknown).
* Every write increases :attr:`DocumentReader.generation` (an int; 0 for a store never written).
* For every chunk a search returns, ``document_text(chunk.document)[chunk.start:chunk.end] == chunk.text``
  while that document is unchanged: citations slice the stored text exactly.

:class:`DocumentReader` is the read side (what one question uses). A store's :meth:`DocumentStore.snapshot`
is a consistent read view: the FAISS backend hands out the loaded immutable version (a question sees
one version, old or new, never half of each); the Milvus backend is live (it returns itself; the
pipeline drops a passage whose text no longer slices from its document, so citations stay exact while
another replica replaces that document).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from qa.types import Chunk, Document

if TYPE_CHECKING:
    from qa.index_store import DocumentInfo

#: The backends QA_STORE may name.
BACKENDS = ("faiss", "milvus")


def chunk_id(document: str, ordinal: int, text: str) -> str:
    """The stable id of a document's ``ordinal``-th chunk (0-based) with this ``text``:
    ``"<document>#<ordinal>-<first 8 hex of sha256(text)>"``. The same chunk of the same text has
    the same id in every backend, process and rebuild."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{document}#{ordinal}-{digest}"


class DocumentChangedError(Exception):
    """``delete_document(..., if_sha256=...)`` found another version of the document stored (on Milvus: written
    through another replica since the caller read it)."""


class DocumentExistsError(Exception):
    """``write_document(..., expect_absent=True)`` of a store that several processes write (Milvus) found a
    document of that id: another replica wrote it since the caller checked."""


@dataclass(frozen=True)
class Hit:
    """One search result: the chunk (``chunk.id`` is its stable id) and its score, higher is better
    (inner product for dense search, BM25 for keyword search)."""

    chunk: Chunk
    score: float

    @property
    def id(self) -> str:
        return self.chunk.id


@runtime_checkable
class DocumentReader(Protocol):
    """The read side of a document store."""

    @property
    def generation(self) -> int:
        """Increases on every write (0: never written)."""
        ...

    @property
    def documents(self) -> Mapping[str, "DocumentInfo"]:
        """{document id: DocumentInfo} of every stored document."""
        ...

    def document_ids(self) -> list[str]:
        """Every document id, sorted."""
        ...

    def document_text(self, doc_id: str) -> str:
        """The exact text that offsets index. ``KeyError`` for an unknown document."""
        ...

    def page_starts(self, doc_id: str) -> tuple[int, ...]:
        """Where each page of a paged document (PDF) starts in its text; () otherwise. ``KeyError``
        for an unknown document."""
        ...

    def dense_search(self, query_vector: np.ndarray, k: int) -> list[Hit]:
        """The ``k`` chunks whose vectors have the largest inner product with ``query_vector``
        (normalised: cosine), best first."""
        ...

    def keyword_search(self, query: str, k: int) -> list[Hit]:
        """Up to ``k`` chunks ranked by BM25 for ``query``, best first; chunks sharing no term with
        the query are not returned."""
        ...

    def count_documents(self) -> int: ...

    def count_chunks(self) -> int: ...


@runtime_checkable
class DocumentStore(DocumentReader, Protocol):
    """A document store: the reads plus per-document writes."""

    name: str  # the backend: "faiss" or "milvus"

    def write_document(self, document: Document, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        """Write ``document`` (its exact text, sha256, size, converter, page starts) with its
        ``chunks`` (offsets into ``document.text``, in order) and their ``vectors`` (one
        normalised row per chunk), replacing every chunk a document of that id had. Returns the new
        generation. Bad input (a chunk that does not slice from the text, vectors of another shape)
        raises ``ValueError`` and writes nothing."""
        ...

    def write_documents(self, items: Sequence[tuple[Document, Sequence[Chunk], np.ndarray]],
                        removals: Iterable[str] = ()) -> int:
        """:meth:`write_document` for several documents (bulk indexing), and :meth:`delete_document` for the
        ``removals`` (unknown ids ignored): the FAISS backend commits all of it as one version, Milvus writes
        and then deletes one document after the other. Every item is checked before anything is written.
        Returns the new generation."""
        ...

    def delete_document(self, doc_id: str, if_sha256: str | None = None) -> int:
        """Delete a document and all its chunks; returns the new generation. ``KeyError`` when the
        document is unknown (nothing changes). ``if_sha256``: only that version of it
        (:class:`DocumentChangedError` if another is stored: nothing changes)."""
        ...

    def snapshot(self) -> DocumentReader:
        """A consistent read view for one question (see the module docstring)."""
        ...

    def close(self) -> None: ...



@runtime_checkable
class TrashBin(Protocol):
    """A store that keeps deleted and replaced documents itself, so a trash is shared by every
    replica (the ``milvus`` backend; the ``faiss`` backend's trash is a folder beside its index,
    :mod:`qa.writes`). :class:`qa.store.writes.StoreWriter` uses it for delete, replace and restore."""

    def trash_document(self, doc_id: str, entry: str, reason: str, deleted_at: str,
                       document: "Document | None" = None) -> None:
        """Keep ``doc_id``'s exact text and metadata as trash ``entry`` (those of ``document`` when given: a
        version that never became current). ``KeyError``: unknown."""
        ...

    def trash_entries(self) -> list[dict]:
        """{entry, id, sha256, size, deleted_at, reason} of every entry, newest first."""
        ...

    def trashed_document(self, entry: str) -> Document:
        """The document kept as ``entry``, exactly as it was written. ``KeyError``: no such entry."""
        ...

    def drop_trash_entry(self, entry: str) -> None: ...

def new_trash_entry() -> str:
    """A new trash entry's name: UTC time to the microsecond and 6 random hex digits (names sort by age)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f") + "-" + uuid.uuid4().hex[:6]


#: Searches ask their engine for this many hits more than ``k`` first (:func:`widened`: more while chunks may tie
#: the k-th), so that chunks tied with the k-th are all seen before :func:`ranked` orders ties by id and cuts at ``k``.
TIE_MARGIN = 8


def document_sha(store: Any, doc_id: str) -> str:
    """sha256 of the stored version of ``doc_id`` (of the file's bytes): one row of a live store
    (``document_info``), not its whole document list. KeyError if unknown."""
    info = getattr(store, "document_info", None)
    return info(doc_id).sha256 if info is not None else store.documents[doc_id].sha256


def ranked(hits: Sequence[Hit], k: int, rel: float = 1e-5) -> list[Hit]:
    """The best ``k`` of ``hits``, best first, **ties ordered by chunk id**: scores within ``rel``
    (relative, at least ``rel`` absolute) of a group's first score form one group. FAISS, bm25s and
    Milvus each break ties their own way (and float32 scores differ in the last bits), so without
    this two backends holding the same chunks could rank tied chunks differently, which moves
    reciprocal-rank fusion and hence answers and confidences."""
    ordered = sorted(hits, key=lambda h: -h.score)
    out: list[Hit] = []
    group: list[Hit] = []
    for h in ordered:
        if group and abs(group[0].score - h.score) > rel * max(1.0, abs(group[0].score)):
            out.extend(sorted(group, key=lambda g: g.id))
            group = []
            if len(out) >= k:
                break
        group.append(h)
    out.extend(sorted(group, key=lambda g: g.id))
    return out[:max(k, 0)]


def store_problem(store: Any, document: Document) -> str | None:
    """Why ``store`` cannot hold ``document`` (a backend's limit: its ``check_document``, e.g. Milvus's id length), or
    None. Indexing skips such a document and names it, as it does a file it cannot read."""
    check = getattr(store, "check_document", None)
    if check is None:
        return None
    try:
        check(document)
    except ValueError as e:
        return str(e)
    return None


def widened(search: Callable[[int], tuple[list[Hit], bool]], k: int, rel: float = 1e-5) -> list[Hit]:
    """:func:`ranked` over ``search(n)``'s hits, asking for ``k + TIE_MARGIN`` first and twice as many again while
    the hits do not hold every chunk tied with the k-th (``search`` says whether it returned all it had). With
    a tie wider than the margin (one boilerplate paragraph in many documents) each engine used to return its own
    subset of the tied chunks, so the two backends cited different documents for one question."""
    n = k + TIE_MARGIN
    while True:
        hits, complete = search(n)
        if complete or not _cut_inside_a_tie(hits, k, rel):
            return ranked(hits, k, rel)
        n *= 2


def _cut_inside_a_tie(hits: Sequence[Hit], k: int, rel: float) -> bool:
    """Whether the worst of ``hits`` may tie the k-th best (so a chunk left out may tie it too)."""
    scores = sorted((h.score for h in hits), reverse=True)
    if len(scores) < k:
        return True
    kth = scores[k - 1]
    return scores[-1] >= kth - 2 * rel * max(1.0, abs(kth))


def check_write(document: Document, chunks: Sequence[Chunk], vectors: np.ndarray, dimension: int) -> np.ndarray:
    """Validate a :meth:`DocumentStore.write_document` call; returns the vectors as float32 (n, d).
    Raises ValueError with a message that names the problem."""
    vecs = np.asarray(vectors, dtype=np.float32)
    if vecs.ndim != 2 or vecs.shape != (len(chunks), dimension):
        raise ValueError(f"{document.id}: expected vectors of shape ({len(chunks)}, {dimension}), got {vecs.shape}")
    if not np.all(np.isfinite(vecs)):
        raise ValueError(f"{document.id}: vectors hold NaN or infinite values")
    for c in chunks:
        if c.document != document.id:
            raise ValueError(f"a chunk of {c.document!r} was given with document {document.id!r}")
        if not (0 <= c.start < c.end <= len(document.text)) or document.text[c.start:c.end] != c.text:
            raise ValueError(f"{document.id}: chunk {c.start}:{c.end} does not slice from the document text")
    return vecs


def with_ids(document: str, chunks: Sequence[Chunk]) -> list[Chunk]:
    """``chunks`` (a document's, in order) with their stable ids set."""
    from dataclasses import replace

    return [replace(c, id=chunk_id(document, i, c.text)) for i, c in enumerate(chunks)]
