"""The dense index on disk: FAISS vectors + chunk metadata + document texts + a manifest.

Layout of ``Settings.index_dir`` (default ``index/``)::

    index/
      CURRENT                 name of the active version folder (replaced atomically)
      v-20261122T004512-1a2b3c/
        manifest.json         format version, generation (+1 per commit), embedding model id, dimension, chunking params,
                              index type, counts, and per document: id, sha256, size, chunk_count,
                              converter and converter_version (absent in older indexes: "text")
        documents.jsonl       {"id", "text", "page_starts"?} per document: the exact (served,
                              converted) text offsets refer to, and where each PDF page starts
        chunks.jsonl          {"document", "start", "end"} per chunk, in vector order
        vectors.npy           float32 (n_chunks, dimension), L2-normalised (reused on update)
        index.faiss           IndexFlatIP (default) or IndexHNSWFlat (inner product)
        reader_tokens.npz     optional (since #15): each chunk's tokens for the reader's tokenizer
                              (qa.reader.pretokenised), with the tokenizer's fingerprint; an index
                              without it (or a reader with another tokenizer) tokenises at query time
      .lock                   held while a build runs (fcntl), so builds never interleave

A build writes a complete new version into ``index/.tmp-XXXX/``, renames it to ``v-...`` and only
then swaps ``CURRENT`` with ``os.replace`` (atomic). A crash at any step before the swap leaves the
previous version active and loadable; stale ``.tmp-*`` folders and superseded versions are removed
by the next successful build. The index is self-contained: it stores each document's text, so
``store.document_text(doc_id)[chunk.start:chunk.end] == chunk.text`` without the corpus folder.
Every build re-extracts every file (qa.converters), so a converter upgrade takes effect at the next
build; a document's vectors are reused only while its file bytes AND its extracted text are unchanged.

:meth:`IndexStore.load` verifies the manifest and raises :class:`IndexNotFoundError`,
:class:`IndexCorruptError` or :class:`IndexStaleError` (all :class:`IndexLoadError`) with a message
that says what to do. :func:`build_or_update` re-embeds only new or changed documents.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from qa.ingest import SkippedFile, load_corpus
from qa.types import Chunk, Document

if TYPE_CHECKING:
    from qa.chunking import Chunker
    from qa.config import Settings
    from qa.embedding import Embedder
    from qa.store.protocol import Hit

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
CURRENT_FILE = "CURRENT"
MANIFEST = "manifest.json"
DOCUMENTS_FILE = "documents.jsonl"
CHUNKS_FILE = "chunks.jsonl"
VECTORS_FILE = "vectors.npy"
FAISS_FILE = "index.faiss"
DATA_FILES = (DOCUMENTS_FILE, CHUNKS_FILE, VECTORS_FILE, FAISS_FILE)
REBUILD_HINT = "run `qa index` to rebuild it"


class IndexLoadError(Exception):
    """The index cannot be used; the message says why and what to do."""


class IndexNotFoundError(IndexLoadError):
    pass


class IndexCorruptError(IndexLoadError):
    pass


class IndexStaleError(IndexLoadError):
    """Built with another embedding model, dimension or index format."""


@dataclass(frozen=True)
class DocumentInfo:
    id: str
    sha256: str  # of the file's bytes
    size: int  # bytes
    chunk_count: int
    converter: str = "text"  # qa.converters name that extracted the served text
    converter_version: str = ""  # its library/rule versions ("" in indexes built before converters)
    pages: int | None = None  # pages of a paged document (PDF), else None


@dataclass
class BuildReport:
    index_dir: str = ""
    documents: int = 0
    chunks: int = 0
    added: list[str] = field(default_factory=list)  # new documents (embedded)
    changed: list[str] = field(default_factory=list)  # sha256 changed (re-embedded)
    reused: list[str] = field(default_factory=list)  # unchanged (vectors reused)
    reextracted: list[str] = field(default_factory=list)  # converter version changed since the last build
    removed: list[str] = field(default_factory=list)  # gone from the corpus
    skipped: list[SkippedFile] = field(default_factory=list)
    chunks_embedded: int = 0
    full_rebuild_reason: str | None = None  # why nothing could be reused, if so
    seconds: float = 0.0

    @property
    def indexed(self) -> list[str]:
        return self.added + self.changed

    def summary(self) -> str:
        return (
            f"{self.documents} documents, {self.chunks} chunks: {len(self.indexed)} indexed "
            f"({len(self.added)} new, {len(self.changed)} changed), {len(self.reused)} reused, "
            f"{len(self.removed)} removed, {len(self.skipped)} skipped"
            + (f", {len(self.reextracted)} re-extracted by a new converter version" if self.reextracted else "")
            + f" in {self.seconds:.1f}s"
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["indexed"] = self.indexed
        return d


def _with_stable_ids(chunks: list[Chunk]) -> list[Chunk]:
    """``chunks`` (grouped by document, in order) with their stable ids (qa.store.protocol.chunk_id)."""
    from dataclasses import replace

    from qa.store.protocol import chunk_id

    ordinals: dict[str, int] = {}
    out = []
    for c in chunks:
        n = ordinals.get(c.document, 0)
        ordinals[c.document] = n + 1
        out.append(c if c.id else replace(c, id=chunk_id(c.document, n, c.text)))
    return out


def _manifest_text(version: Path) -> str:
    """The text of ``version``'s manifest.json. IndexCorruptError if it is there but is not a file: a FIFO in its
    place made every command wait for ever, a folder failed with a bare IsADirectoryError."""
    path = version / MANIFEST
    if os.path.lexists(path) and not path.is_file():
        raise IndexCorruptError(f"{path} is not a file; {REBUILD_HINT}")
    return path.read_text(encoding="utf-8")


def active_generation(index_dir: str | Path) -> int:
    """The generation of the active version on disk (0: none, or an index without generations)."""
    try:
        version = _active_version(Path(index_dir))
        manifest = json.loads(_manifest_text(version))
        return int(manifest.get("generation", 0))
    except (IndexLoadError, OSError, ValueError, TypeError, AttributeError):
        return 0


def _info(entry: dict[str, Any]) -> DocumentInfo:
    """A manifest's document entry as DocumentInfo (converter fields optional: older indexes)."""
    pages = entry.get("pages")
    return DocumentInfo(entry["id"], entry["sha256"], int(entry["size"]), int(entry["chunk_count"]),
                        str(entry.get("converter", "text")), str(entry.get("converter_version", "")),
                        int(pages) if pages is not None else None)


def _text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _active_version(index_dir: Path) -> Path:
    """The folder holding manifest.json: ``index_dir`` itself, or the one CURRENT names."""
    index_dir = Path(index_dir)
    pointer = index_dir / CURRENT_FILE
    # A bare manifest (the older layout, or a version folder given itself) counts only where there is no
    # CURRENT: a build writes versions and CURRENT beside a stray one and says that it is ignored.
    if (index_dir / MANIFEST).is_file() and not os.path.lexists(pointer):
        return index_dir
    if pointer.exists() and not pointer.is_file():
        raise IndexCorruptError(f"{pointer} is not a file; remove it (the versions beside it stay), then "
                                f"{REBUILD_HINT}")
    if not pointer.is_file():
        raise IndexNotFoundError(
            f"no index found in {index_dir}: run `qa index` to build it from your documents"
        )
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:  # unreadable, or bytes that are no version name
        raise IndexCorruptError(f"{pointer} cannot be read ({e.strerror if isinstance(e, OSError) else e.reason}); "
                                f"{REBUILD_HINT}") from None
    if not name or "/" in name or name.startswith(".") or "\x00" in name or len(name.encode()) > 255:
        raise IndexCorruptError(f"{pointer} is damaged ({name[:80]!r}); {REBUILD_HINT}")
    version = index_dir / name
    if not version.is_dir():
        raise IndexCorruptError(
            f"{pointer} names {name}, which does not exist in {index_dir}; {REBUILD_HINT}"
        )
    return version


def active_version_name(index_dir: str | Path) -> str | None:
    """Name of the version CURRENT points at (None: no index, or a damaged pointer)."""
    try:
        return _active_version(Path(index_dir)).name
    except IndexLoadError:
        return None


def active_documents(index_dir: str | Path) -> dict[str, str] | None:
    """{document id: sha256} of the active version, read from its manifest only (cheap); None if
    there is no readable index."""
    try:
        version = _active_version(Path(index_dir))
        manifest = json.loads(_manifest_text(version))
        return {d["id"]: d["sha256"] for d in manifest["documents"]}
    except (IndexLoadError, OSError, ValueError, KeyError, TypeError):
        return None


def _build_faiss(vectors: np.ndarray, index_type: str, hnsw_m: int) -> Any:
    import faiss

    d = int(vectors.shape[1])
    if index_type == "flat":
        index = faiss.IndexFlatIP(d)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 200
        index.hnsw.efSearch = 128
    else:
        raise ValueError(f"unknown index type {index_type!r}: expected flat or hnsw")
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


class IndexStore:
    """A loaded index version. Immutable in use: updates build a new object (and a new version)."""

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        chunks: list[Chunk],
        documents: dict[str, DocumentInfo],
        texts: dict[str, str],
        vectors: np.ndarray,
        index: Any,
        page_starts: dict[str, tuple[int, ...]] | None = None,
    ) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.chunks = _with_stable_ids(chunks)
        self.documents = documents
        self._texts = texts
        self._page_starts = page_starts or {}
        self.vectors = vectors
        self._index = index
        self._doc_chunks: dict[str, list[int]] = {}
        for i, c in enumerate(chunks):
            self._doc_chunks.setdefault(c.document, []).append(i)
        self.build_report: BuildReport | None = None
        self._bm25: Any = None  # qa.retriever.bm25.BM25Retriever over self.chunks, built on first use
        self._bm25_lock = threading.Lock()
        # (fingerprint, {(document, start, end): ContextTokens}) from reader_tokens.npz, read on first use;
        # False: none (absent, unreadable or not asked for)
        self._reader_tokens: Any = None
        self._reader_tokens_lock = threading.Lock()

    # ------------------------------------------------------------ properties

    @property
    def generation(self) -> int:
        """Increases with every committed version (0: an index written before generations)."""
        return int(self.manifest.get("generation", 0))

    @property
    def model_id(self) -> str:
        return self.manifest["embedding_model"]

    @property
    def dimension(self) -> int:
        return int(self.manifest["dimension"])

    @property
    def index_type(self) -> str:
        return self.manifest["index_type"]

    @property
    def chunking(self) -> dict[str, int]:
        return dict(self.manifest["chunking"])

    def __len__(self) -> int:
        return len(self.chunks)

    # ---------------------------------------------------------------- access

    def document_text(self, doc_id: str) -> str:
        """The exact text that offsets refer to. Raises KeyError for an unknown document."""
        return self._texts[doc_id]

    def page_starts(self, doc_id: str) -> tuple[int, ...]:
        """Where each page of a paged document (PDF) starts in its text; () for other formats.
        Raises KeyError for an unknown document."""
        if doc_id not in self._texts:
            raise KeyError(doc_id)
        return self._page_starts.get(doc_id, ())

    def page_of(self, doc_id: str, offset: int) -> int | None:
        """1-based page holding ``offset`` of a paged document, else None."""
        from qa.converters import page_of

        return page_of(self.page_starts(doc_id), offset)

    def document_ids(self) -> list[str]:
        return sorted(self.documents)

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        return [self.chunks[i] for i in self._doc_chunks.get(doc_id, [])]

    def search(self, query_vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Top ``k`` (chunk index, inner-product score), best first."""
        n = len(self.chunks)
        if n == 0 or k < 1:
            return []
        q = np.ascontiguousarray(np.asarray(query_vector, dtype=np.float32).reshape(1, -1))
        if q.shape[1] != self.dimension:
            raise ValueError(f"query vector has dimension {q.shape[1]}, index has {self.dimension}")
        scores, ids = self._index.search(q, min(k, n))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    # ------------------------------------------- qa.store.protocol.DocumentReader

    def dense_search(self, query_vector: np.ndarray, k: int) -> list["Hit"]:
        """Top ``k`` chunks by inner product with ``query_vector``, best first (stable chunk ids; ties by
        id: qa.store.protocol.ranked)."""
        from qa.store.protocol import Hit, widened

        if k < 1:
            return []

        def search(n: int) -> tuple[list[Hit], bool]:
            found = self.search(query_vector, n)
            return [Hit(self.chunks[i], s) for i, s in found], len(found) < n

        return widened(search, k)

    def bm25(self) -> Any:
        """The in-memory BM25 ranking of this version's chunks (built once, on first use)."""
        with self._bm25_lock:
            if self._bm25 is None:
                from qa.retriever.bm25 import BM25Retriever

                self._bm25 = BM25Retriever(self.chunks)
        return self._bm25.warm_up()

    def keyword_search(self, query: str, k: int) -> list["Hit"]:
        """Up to ``k`` chunks by BM25 (bm25s, stemmed, English stop words dropped), best first (ties by id)."""
        from qa.store.protocol import Hit, widened

        if k < 1:
            return []

        def search(n: int) -> tuple[list[Hit], bool]:
            found = self.bm25().run(query, n)
            return [Hit(p.chunk, p.score) for p in found], len(found) < n

        return widened(search, k)

    def _tokens_table(self) -> Any:
        with self._reader_tokens_lock:
            if self._reader_tokens is None:
                from qa.reader import pretokenised

                self._reader_tokens = False
                try:
                    got = pretokenised.load(self.path, len(self.chunks))
                except Exception as e:  # noqa: BLE001 - a damaged optional file: tokenise at query time
                    logger.warning("%s/%s is unreadable (%s); the reader tokenises passages per question",
                                   self.path, pretokenised.TOKENS_FILE, e)
                    got = None
                if got is not None:
                    fingerprint, tokens = got
                    self._reader_tokens = (fingerprint, {(c.document, c.start, c.end): t
                                                         for c, t in zip(self.chunks, tokens)})
            return self._reader_tokens

    def set_reader_tokens(self, fingerprint: str, tokens: list) -> None:
        """The reader tokens of this version's chunks (one per chunk, in order), as just written by a build."""
        with self._reader_tokens_lock:
            self._reader_tokens = (fingerprint, {(c.document, c.start, c.end): t for c, t in zip(self.chunks, tokens)})

    def reader_tokens(self, chunks: list[Chunk], fingerprint: str) -> list | None:
        """The stored reader tokens (qa.reader.pretokenised.ContextTokens) of ``chunks``, each None where not
        stored; None when this version stores none for a tokenizer with this ``fingerprint``."""
        table = self._tokens_table()
        if not table or table[0] != fingerprint:
            return None
        return [table[1].get((c.document, c.start, c.end)) for c in chunks]

    def count_documents(self) -> int:
        return len(self.documents)

    def count_chunks(self) -> int:
        return len(self.chunks)

    # ------------------------------------------------------------------ load

    @classmethod
    def load(
        cls,
        index_dir: str | Path,
        embedder_model_id: str | None = None,
        dimension: int | None = None,
    ) -> "IndexStore":
        """Load and verify the active index in ``index_dir`` (or a version folder itself).

        ``embedder_model_id``/``dimension``: what the query embedder produces; a mismatch raises
        :class:`IndexStaleError`. Missing or damaged files raise :class:`IndexCorruptError`.
        """
        index_dir = Path(index_dir)
        for attempt in range(3):
            version = _active_version(index_dir)
            try:
                return cls._load_version(version, embedder_model_id, dimension)
            except IndexCorruptError:
                # A concurrent build may have swapped CURRENT and removed this version: retry.
                if attempt < 2 and version != index_dir and _active_version(index_dir) != version:
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def _load_version(
        cls, version: Path, embedder_model_id: str | None, dimension: int | None
    ) -> "IndexStore":
        where = str(version)
        try:
            manifest = json.loads(_manifest_text(version))
        except FileNotFoundError:
            raise IndexCorruptError(f"index {where} has no {MANIFEST}; {REBUILD_HINT}") from None
        except (OSError, ValueError) as e:
            raise IndexCorruptError(f"index manifest {where}/{MANIFEST} is unreadable ({e}); {REBUILD_HINT}") from None
        if not isinstance(manifest, dict):
            raise IndexCorruptError(f"index manifest {where}/{MANIFEST} is not a JSON object; {REBUILD_HINT}")

        fmt = manifest.get("format_version")
        if fmt != FORMAT_VERSION:
            raise IndexStaleError(
                f"index {where} has format version {fmt!r}, this program reads version "
                f"{FORMAT_VERSION}; {REBUILD_HINT}"
            )
        try:
            model = manifest["embedding_model"]
            dim = int(manifest["dimension"])
            index_type = manifest["index_type"]
            manifest["chunking"]["chunk_tokens"]
            counts = manifest["counts"]
            doc_entries = manifest["documents"]
            docs = {d["id"]: _info(d) for d in doc_entries}
            text_shas = {d["id"]: d["text_sha256"] for d in doc_entries}
            int(manifest.get("generation", 0))  # every write reads it (IndexStore.generation)
            if not isinstance(counts, dict):
                raise TypeError(f"counts is {type(counts).__name__}, not an object")
            if not all(isinstance(d, str) for d in docs):
                raise TypeError("a document id is not a string")
        except (KeyError, TypeError, ValueError) as e:
            raise IndexCorruptError(
                f"index manifest {where}/{MANIFEST} is missing or has a bad field ({e!r}); {REBUILD_HINT}"
            ) from None
        if embedder_model_id is not None and model != embedder_model_id:
            raise IndexStaleError(
                f"index {where} was built with embedding model {model!r} but the configured model "
                f"is {embedder_model_id!r}; {REBUILD_HINT} with the current model"
            )
        if dimension is not None and dim != int(dimension):
            raise IndexStaleError(
                f"index {where} holds {dim}-dimensional vectors but the embedding model produces "
                f"{dimension}; {REBUILD_HINT}"
            )
        missing = [f for f in DATA_FILES if not (version / f).is_file()]
        if missing:
            raise IndexCorruptError(f"index {where} is missing {', '.join(missing)}; {REBUILD_HINT}")

        # Documents (texts)
        texts: dict[str, str] = {}
        pages: dict[str, tuple[int, ...]] = {}
        try:
            with open(version / DOCUMENTS_FILE, encoding="utf-8", newline="") as f:
                for line in f:
                    rec = json.loads(line)
                    if not isinstance(rec["text"], str):
                        raise TypeError(f"the text of {rec['id']!r} is not a string")
                    texts[rec["id"]] = rec["text"]
                    if rec.get("page_starts"):
                        starts = tuple(int(x) for x in rec["page_starts"])
                        if starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])) or starts[-1] > len(rec["text"]):
                            raise ValueError(f"bad page_starts of {rec['id']}")
                        pages[rec["id"]] = starts
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise IndexCorruptError(f"{where}/{DOCUMENTS_FILE} is damaged ({e!r}); {REBUILD_HINT}") from None
        if set(texts) != set(docs):
            raise IndexCorruptError(
                f"{where}/{DOCUMENTS_FILE} does not match the manifest's documents; {REBUILD_HINT}"
            )
        bad = [d for d, t in texts.items() if _text_sha(t) != text_shas[d]]
        if bad:
            raise IndexCorruptError(
                f"stored text of {', '.join(sorted(bad)[:5])} does not match the manifest checksum; {REBUILD_HINT}"
            )

        # Chunks
        chunks: list[Chunk] = []
        try:
            with open(version / CHUNKS_FILE, encoding="utf-8") as f:
                for line in f:
                    rec = json.loads(line)
                    doc, s, e = rec["document"], int(rec["start"]), int(rec["end"])
                    text = texts[doc]
                    if not 0 <= s < e <= len(text):
                        raise ValueError(f"offsets {s}:{e} outside {doc}")
                    chunks.append(Chunk(document=doc, start=s, end=e, text=text[s:e]))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise IndexCorruptError(f"{where}/{CHUNKS_FILE} is damaged ({e!r}); {REBUILD_HINT}") from None

        # Vectors and FAISS index
        try:
            vectors = np.load(version / VECTORS_FILE, allow_pickle=False)
        except Exception as e:  # noqa: BLE001 - numpy raises several types for a damaged file
            raise IndexCorruptError(f"{where}/{VECTORS_FILE} is damaged ({e}); {REBUILD_HINT}") from None
        try:
            import faiss

            index = faiss.read_index(str(version / FAISS_FILE))
        except Exception as e:  # noqa: BLE001 - faiss raises RuntimeError with a C++ message
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise IndexCorruptError(
                f"{where}/{FAISS_FILE} cannot be read (truncated or damaged: {first}); {REBUILD_HINT}"
            ) from None

        n_chunks = len(chunks)
        per_doc = sum(d.chunk_count for d in docs.values())
        actual_per_doc: dict[str, int] = {}
        for c in chunks:
            actual_per_doc[c.document] = actual_per_doc.get(c.document, 0) + 1
        problems = []
        if vectors.ndim != 2 or vectors.shape != (n_chunks, dim) or vectors.dtype != np.float32:
            problems.append(f"{VECTORS_FILE} has shape {vectors.shape} {vectors.dtype}, expected ({n_chunks}, {dim}) float32")
        if index.ntotal != n_chunks:
            problems.append(f"{FAISS_FILE} holds {index.ntotal} vectors but there are {n_chunks} chunks")
        if index.d != dim:
            problems.append(f"{FAISS_FILE} has dimension {index.d}, manifest says {dim}")
        if per_doc != n_chunks or any(actual_per_doc.get(d, 0) != i.chunk_count for d, i in docs.items()):
            problems.append(f"per-document chunk counts (sum {per_doc}) do not match {n_chunks} chunks")
        if counts.get("chunks") != n_chunks or counts.get("vectors") != n_chunks or counts.get("documents") != len(docs):
            problems.append(f"manifest counts {counts} do not match the files ({len(docs)} documents, {n_chunks} chunks)")
        if problems:
            raise IndexCorruptError(f"index {where} is inconsistent: {'; '.join(problems)}; {REBUILD_HINT}")
        if index_type == "hnsw" and hasattr(index, "hnsw"):
            index.hnsw.efSearch = max(int(index.hnsw.efSearch), 128)

        return cls(version, manifest, chunks, docs, texts, vectors, index, pages)

    # ----------------------------------------------------------------- build

    @staticmethod
    def build_or_update(
        corpus_root: str | Path,
        settings: "Settings",
        embedder: "Embedder",
        chunker: "Chunker",
        *,
        paths: list[Path] | None = None,
        previous: "IndexStore | None" = None,
        show_progress: bool = False,
    ) -> "IndexStore":
        return build_or_update(
            corpus_root, settings, embedder, chunker,
            paths=paths, previous=previous, show_progress=show_progress,
        )


# --------------------------------------------------------------------- building

_build_lock = threading.Lock()
_held = threading.local()


@contextlib.contextmanager
def index_lock(index_dir: str | Path) -> Iterator[None]:
    """Serialise writers of one index folder: in this process (threads) and across processes
    (flock on ``index_dir/.lock``). Re-entrant within a thread, so a write transaction
    (qa.writes) can hold it around the build it triggers."""
    index_dir = Path(index_dir)
    key = str(index_dir.resolve())
    held: set[str] = getattr(_held, "dirs", None) or set()
    _held.dirs = held
    if key in held:
        yield
        return
    with _build_lock:
        try:
            index_dir.mkdir(parents=True, exist_ok=True)
            fh = open(index_dir / ".lock", "a+")
        except (FileExistsError, NotADirectoryError):
            raise IndexLoadError(f"the index folder {index_dir} (or a folder above it) is a file; set QA_INDEX_DIR to a "
                                 "folder (a new one is created on first run)") from None
        except OSError as e:  # no permission, a missing or read-only mount
            raise IndexLoadError(f"cannot write in the index folder {index_dir} ({e.strerror or type(e).__name__}); "
                                 "set QA_INDEX_DIR to a folder you can write (a new one is created on first run)"
                                 ) from None
        with fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            held.add(key)
            try:
                yield
            finally:
                held.discard(key)
                fcntl.flock(fh, fcntl.LOCK_UN)


_locked = index_lock


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_documents(folder: Path, docs: list[Document]) -> None:
    with open(folder / DOCUMENTS_FILE, "w", encoding="utf-8", newline="") as f:
        for d in docs:
            rec: dict[str, Any] = {"id": d.id, "text": d.text}
            if d.page_starts:
                rec["page_starts"] = list(d.page_starts)
            f.write(json.dumps(rec) + "\n")


def _write_chunks(folder: Path, chunks: list[Chunk]) -> None:
    with open(folder / CHUNKS_FILE, "w", encoding="utf-8") as f:
        for c in chunks:
            f.write(json.dumps({"document": c.document, "start": c.start, "end": c.end}) + "\n")


def _write_vectors(folder: Path, vectors: np.ndarray) -> None:
    np.save(folder / VECTORS_FILE, vectors, allow_pickle=False)


def _write_faiss(folder: Path, index: Any) -> None:
    import faiss

    faiss.write_index(index, str(folder / FAISS_FILE))


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _swap_current(index_dir: Path, version_name: str) -> None:
    """Atomically point CURRENT at ``version_name``."""
    tmp = index_dir / f".{CURRENT_FILE}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(version_name + "\n", encoding="utf-8")
    _fsync_file(tmp)
    os.replace(tmp, index_dir / CURRENT_FILE)
    _fsync_dir(index_dir)


def _cleanup(index_dir: Path, keep: str, keep_versions: int = 1) -> None:
    """Remove half-written folders and all but the newest ``keep_versions`` versions (``keep``,
    the active one, always stays)."""
    versions = sorted(
        (p for p in index_dir.iterdir() if p.is_dir() and p.name.startswith("v-") and p.name != keep),
        key=lambda p: (p.name[2:17], p.stat().st_mtime),  # v-YYYYmmddTHHMMSS-xxxxxx
        reverse=True,
    )
    kept = {keep, *(p.name for p in versions[: max(0, keep_versions - 1)])}
    for p in index_dir.iterdir():
        name = p.name
        if name in kept:
            continue
        if p.is_dir() and (name.startswith("v-") or name.startswith(".tmp-")):
            shutil.rmtree(p, ignore_errors=True)
        elif p.is_file() and name.startswith(f".{CURRENT_FILE}."):
            with contextlib.suppress(OSError):
                p.unlink()


def _write_version(
    index_dir: Path,
    manifest: dict[str, Any],
    docs: list[Document],
    chunks: list[Chunk],
    vectors: np.ndarray,
    index: Any,
    keep_versions: int = 1,
    reader_tokens: tuple[str, list] | None = None,
) -> Path:
    """Write a complete version into .tmp-XXXX, rename it to v-..., swap CURRENT. Returns the folder.
    ``reader_tokens``: (tokenizer fingerprint, tokens per chunk) for reader_tokens.npz (optional)."""
    pointer = index_dir / CURRENT_FILE
    if os.path.lexists(pointer) and not pointer.is_file():  # checked before the work: the swap could not replace it
        raise IndexCorruptError(f"{pointer} is not a file; remove it (the versions beside it stay), then run "
                                "`qa index`")
    tmp = index_dir / f".tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir(parents=True)
    try:
        _write_documents(tmp, docs)
        _write_chunks(tmp, chunks)
        _write_vectors(tmp, vectors)
        _write_faiss(tmp, index)
        extra: tuple[str, ...] = ()
        if reader_tokens is not None:
            from qa.reader import pretokenised

            pretokenised.save(tmp, *reader_tokens)
            extra = (pretokenised.TOKENS_FILE,)
        _write_manifest(tmp, manifest)  # last: a folder with a manifest is complete
        for f in (*DATA_FILES, *extra, MANIFEST):
            _fsync_file(tmp / f)
        _fsync_dir(tmp)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        final = index_dir / f"v-{stamp}-{uuid.uuid4().hex[:6]}"
        os.rename(tmp, final)
        _fsync_dir(index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _swap_current(index_dir, final.name)
    # The previous version is only removed once the new one is active.
    if (index_dir / MANIFEST).is_file():
        logger.warning("%s holds a bare manifest.json from an older layout; it is ignored", index_dir)
    _cleanup(index_dir, keep=final.name, keep_versions=keep_versions)
    return final


def _load_previous(index_dir: Path, previous: IndexStore | None) -> IndexStore | None:
    if previous is not None:
        return previous
    try:
        return IndexStore.load(index_dir)
    except IndexNotFoundError:
        return None
    except IndexLoadError as e:
        logger.warning("previous index not reusable, rebuilding from scratch: %s", e)
        return None


def _reuse_problem(prev: IndexStore | None, embedder: "Embedder", chunking: dict[str, int]) -> str | None:
    """Why the previous index's vectors cannot be reused (None: they can)."""
    if prev is None:
        return "no previous index"
    if prev.model_id != embedder.model_id:
        return f"embedding model changed ({prev.model_id} -> {embedder.model_id})"
    if prev.chunking != chunking:
        return f"chunking parameters changed ({prev.chunking} -> {chunking})"
    if prev.dimension != embedder.dimension:
        return "embedding dimension changed"
    return None


def build_or_update(
    corpus_root: str | Path,
    settings: "Settings",
    embedder: "Embedder",
    chunker: "Chunker",
    *,
    paths: list[Path] | None = None,
    previous: IndexStore | None = None,
    show_progress: bool = False,
) -> IndexStore:
    """Index the corpus into ``settings.index_dir``, reusing vectors of unchanged documents.

    Without ``paths`` the corpus is every supported file under ``corpus_root`` (converted to text
    by qa.converters): documents whose sha256 and extracted text match the previous index keep
    their chunks and vectors, new or changed ones (or ones a new converter version extracts
    differently) are
    chunked and embedded, and indexed documents no longer present are dropped. With ``paths``
    (files or folders, ids relative to ``corpus_root``) only those are added or updated; the other
    indexed documents stay as they are (nothing is removed).
    ``previous``: an already loaded store to reuse from (else the active one on disk, if any).

    Returns a NEW :class:`IndexStore` (``store.build_report`` says what happened); any store
    object loaded before stays valid and usable.
    """
    t0 = time.perf_counter()
    index_dir = Path(settings.index_dir)
    corpus_root = Path(corpus_root)
    report = BuildReport(index_dir=str(index_dir))

    with _locked(index_dir):
        # Read the corpus under the lock: a write transaction (qa.writes) moving a file in
        # cannot slip in between this read and the commit.
        docs, skipped = load_corpus(corpus_root, paths)
        report.skipped = skipped
        loaded = _load_previous(index_dir, previous)
        if paths is not None and loaded is not None:
            # Explicit paths update those documents; the other indexed documents stay.
            given = {d.id for d in docs}
            for doc_id, info in loaded.documents.items():
                if doc_id not in given:
                    docs.append(Document(doc_id, loaded.document_text(doc_id), info.sha256, info.size,
                                         info.converter, info.converter_version, loaded.page_starts(doc_id)))
            docs.sort(key=lambda d: d.id)
        return _build(docs, loaded, report, t0, corpus_root, settings, embedder, chunker, show_progress)


def apply_changes(
    settings: "Settings",
    embedder: "Embedder",
    chunker: "Chunker",
    previous: IndexStore | None,
    *,
    upserts: list[Document] = (),  # type: ignore[assignment]
    removals: set[str] | frozenset[str] = frozenset(),
) -> IndexStore:
    """A new committed index version: ``previous``'s documents minus ``removals``, plus ``upserts``
    (new or replacing documents, already read into memory). The corpus folder is not read: the
    caller (qa.writes) moves files only after this returns, which is what keeps a crash from
    leaving corpus and index disagreeing."""
    t0 = time.perf_counter()
    index_dir = Path(settings.index_dir)
    report = BuildReport(index_dir=str(index_dir))
    with _locked(index_dir):
        loaded = _load_previous(index_dir, previous)
        new = {d.id: d for d in upserts}
        docs: list[Document] = list(new.values())
        if loaded is not None:
            for doc_id, info in loaded.documents.items():
                if doc_id not in new and doc_id not in removals:
                    docs.append(Document(doc_id, loaded.document_text(doc_id), info.sha256, info.size,
                                         info.converter, info.converter_version, loaded.page_starts(doc_id)))
        docs.sort(key=lambda d: d.id)
        root = Path((loaded.manifest.get("corpus_root") if loaded is not None else None) or settings.corpus_dir)
        return _build(docs, loaded, report, t0, root, settings, embedder, chunker, False)


def commit_documents(
    settings: "Settings",
    embedder: Any,
    chunker: Any,
    previous: IndexStore | None,
    *,
    writes: list[tuple[Document, list[Chunk], np.ndarray]] = (),  # type: ignore[assignment]
    removals: set[str] | frozenset[str] = frozenset(),
) -> IndexStore:
    """A new committed version: the active one (``previous``, or the one on disk if another
    process committed since) minus ``removals``, plus ``writes``: documents with their chunks and
    vectors already computed (qa.store.faiss_store.FaissDocumentStore.write_document). The other
    documents keep their chunks and vectors. ``embedder``/``chunker`` only need ``model_id``,
    ``dimension`` and ``params`` unless the previous version cannot be reused."""
    t0 = time.perf_counter()
    index_dir = Path(settings.index_dir)
    report = BuildReport(index_dir=str(index_dir))
    with _locked(index_dir):
        active = active_version_name(index_dir)
        if previous is not None and active is not None and previous.path.name != active:
            previous = None  # another process committed: start from what is on disk
        loaded = _load_previous(index_dir, previous)
        prepared = {d.id: (list(chunks), vecs) for d, chunks, vecs in writes}
        docs: list[Document] = [d for d, _, _ in writes]
        if loaded is not None:
            for doc_id, info in loaded.documents.items():
                if doc_id not in prepared and doc_id not in removals:
                    docs.append(Document(doc_id, loaded.document_text(doc_id), info.sha256, info.size,
                                         info.converter, info.converter_version, loaded.page_starts(doc_id)))
        docs.sort(key=lambda d: d.id)
        root = Path((loaded.manifest.get("corpus_root") if loaded is not None else None) or settings.corpus_dir)
        return _build(docs, loaded, report, t0, root, settings, embedder, chunker, False, prepared)


def _build(
    docs: list[Document],
    loaded: IndexStore | None,
    report: BuildReport,
    t0: float,
    corpus_root: Path,
    settings: "Settings",
    embedder: "Embedder",
    chunker: "Chunker",
    show_progress: bool,
    prepared: dict[str, tuple[list[Chunk], np.ndarray]] | None = None,
) -> IndexStore:
    """Chunk/embed what changed, reuse the rest, write and commit a version (lock held).
    ``prepared``: documents whose chunks and vectors the caller computed (used as given)."""
    index_dir = Path(settings.index_dir)
    reason = _reuse_problem(loaded, embedder, chunker.params)
    report.full_rebuild_reason = reason
    prev = loaded if reason is None else None
    prev_docs = prev.documents if prev is not None else {}
    # Documents of the old index that are not in the new one (for the report).
    old_ids = set(loaded.documents) if loaded is not None else set()

    dim = embedder.dimension
    all_chunks: list[Chunk] = []
    parts: list[np.ndarray | int] = []  # per document: reused vectors, or how many to embed
    to_embed: list[Chunk] = []
    doc_entries: list[dict[str, Any]] = []
    old_text_shas = {e["id"]: e.get("text_sha256") for e in prev.manifest["documents"]} if prev is not None else {}
    for doc in docs:
        old = prev_docs.get(doc.id)
        text_sha = _text_sha(doc.text)
        before = loaded.documents.get(doc.id) if loaded is not None else None
        if before is not None and before.converter_version and (
            (before.converter, before.converter_version) != (doc.converter, doc.converter_version)
        ):
            report.reextracted.append(doc.id)
        if prepared is not None and doc.id in prepared:
            chunks, vecs = prepared[doc.id]
            parts.append(np.asarray(vecs, dtype=np.float32).reshape(len(chunks), dim))
            (report.changed if doc.id in old_ids else report.added).append(doc.id)
        elif prev is not None and old is not None and old.sha256 == doc.sha256 and old_text_shas.get(doc.id) == text_sha:
            idx = prev._doc_chunks.get(doc.id, [])
            chunks = [prev.chunks[i] for i in idx]
            parts.append(prev.vectors[idx] if idx else np.zeros((0, dim), np.float32))
            report.reused.append(doc.id)
        else:
            chunks = chunker.chunk(doc)
            to_embed.extend(chunks)
            parts.append(len(chunks))
            (report.changed if doc.id in old_ids else report.added).append(doc.id)
        all_chunks.extend(chunks)
        doc_entries.append(
            {
                "id": doc.id,
                "sha256": doc.sha256,
                "size": doc.size,
                "chunk_count": len(chunks),
                "text_sha256": text_sha,
                "converter": doc.converter,
                "converter_version": doc.converter_version,
                **({"pages": len(doc.page_starts)} if doc.page_starts else {}),
            }
        )
    current_ids = {d.id for d in docs}
    report.removed = sorted(d for d in old_ids if d not in current_ids)

    new_vecs = embedder.embed_documents([c.text for c in to_embed], show_progress=show_progress) if to_embed else np.zeros((0, dim), np.float32)
    report.chunks_embedded = len(to_embed)
    pieces: list[np.ndarray] = []
    pos = 0
    for part in parts:
        if isinstance(part, int):
            # to_embed is in document order: this document's vectors are the next rows.
            part, pos = new_vecs[pos : pos + part], pos + part
        pieces.append(part)
    vectors = (
        np.ascontiguousarray(np.concatenate(pieces), dtype=np.float32)
        if pieces
        else np.zeros((0, dim), np.float32)
    )
    assert vectors.shape == (len(all_chunks), dim), (vectors.shape, len(all_chunks))

    index = _build_faiss(vectors, settings.index_type, settings.hnsw_m)
    reader_tokens = _reader_tokens(settings, all_chunks, loaded)
    previous_generation = max(loaded.generation if loaded is not None else 0, active_generation(index_dir))
    manifest = {
        "format_version": FORMAT_VERSION,
        "generation": previous_generation + 1,  # qa.store.protocol: increases on every write
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "embedding_model": embedder.model_id,
        "dimension": dim,
        "chunking": chunker.params,
        "tokenizer": "embedding model tokenizer",
        "index_type": settings.index_type,
        "hnsw_m": settings.hnsw_m if settings.index_type == "hnsw" else None,
        "corpus_root": str(corpus_root.resolve()),
        "counts": {"documents": len(docs), "chunks": len(all_chunks), "vectors": int(index.ntotal)},
        "documents": doc_entries,
    }
    if reader_tokens is not None:
        from qa.reader.pretokenised import TOKENS_FILE

        manifest["reader_tokens"] = {"file": TOKENS_FILE, "tokenizer": reader_tokens[0],
                                     "model_dir": str(settings.reader_model_dir)}
    version = _write_version(index_dir, manifest, docs, all_chunks, vectors, index,
                             keep_versions=getattr(settings, "keep_index_versions", 1), reader_tokens=reader_tokens)

    texts = {d.id: d.text for d in docs}
    infos = {e["id"]: _info(e) for e in doc_entries}
    page_starts = {d.id: d.page_starts for d in docs if d.page_starts}
    store = IndexStore(version, manifest, all_chunks, infos, texts, vectors, index, page_starts)
    if reader_tokens is not None:
        store.set_reader_tokens(*reader_tokens)
    report.documents = len(docs)
    report.chunks = len(all_chunks)
    report.seconds = time.perf_counter() - t0
    store.build_report = report
    logger.info("index %s: %s", version, report.summary())
    return store


_READER_TOKENIZERS: dict[str, Any] = {}
_READER_TOKENIZERS_LOCK = threading.Lock()


def _reader_tokenizer(model_dir: Path) -> Any:
    """The reader's tokenizer (loaded once per folder; used for index builds only, under the index lock)."""
    key = str(Path(model_dir).resolve())
    with _READER_TOKENIZERS_LOCK:
        if key not in _READER_TOKENIZERS:
            from transformers import AutoTokenizer

            _READER_TOKENIZERS[key] = AutoTokenizer.from_pretrained(key)
        return _READER_TOKENIZERS[key]


def _reader_tokens(settings: "Settings", chunks: list[Chunk], loaded: IndexStore | None) -> tuple[str, list] | None:
    """(fingerprint, tokens per chunk) of the reader's tokenizer for reader_tokens.npz, or None (turned off
    by ``QA_READER_PRETOKENISED=0``, or no reader tokenizer here). Chunks the previous version already
    tokenised with the same tokenizer are reused."""
    if not getattr(settings, "reader_pretokenised", False):
        return None
    model_dir = Path(getattr(settings, "reader_model_dir", ""))
    if not (model_dir / "tokenizer.json").is_file() and not (model_dir / "vocab.txt").is_file():
        return None
    try:
        from qa.reader import pretokenised

        tokenizer = _reader_tokenizer(model_dir)
        fingerprint = pretokenised.tokenizer_fingerprint(tokenizer)
        old = loaded._tokens_table() if loaded is not None else None
        known = old[1] if old and old[0] == fingerprint else {}
        old_text = {(c.document, c.start, c.end): c.text for c in loaded.chunks} if known else {}
        # reused only where the chunk's text is the same (a changed document may have a chunk at the same offsets)
        tokens = [known.get(k) if old_text.get(k) == c.text else None
                  for c in chunks for k in [(c.document, c.start, c.end)]]
        todo = [i for i, t in enumerate(tokens) if t is None]
        for i, t in zip(todo, pretokenised.tokenise_contexts(tokenizer, [chunks[i].text for i in todo])):
            tokens[i] = t
        return fingerprint, tokens
    except Exception as e:  # noqa: BLE001 - optional: the reader then tokenises at query time
        logger.warning("reader tokens not stored (%s); the reader tokenises passages per question", e)
        return None


def load_or_build(
    settings: "Settings",
    embedder: "Embedder",
    chunker: "Chunker | None" = None,
    *,
    announce: Any = None,
    show_progress: bool = False,
) -> IndexStore:
    """Load the active index of ``settings.index_dir``; build it from ``settings.corpus_dir`` if
    there is none yet (first run). ``announce(message)`` is called before such a build (e.g. to
    print to stderr). A corrupt or stale index is NOT rebuilt silently: IndexLoadError propagates.
    The embedding dimension is checked after the model is loaded (IndexStaleError on mismatch).
    """
    try:
        store = IndexStore.load(settings.index_dir, embedder.model_id)
    except IndexNotFoundError:
        if not Path(settings.corpus_dir).is_dir():
            raise IndexNotFoundError(
                f"no index in {settings.index_dir}, and the corpus folder {settings.corpus_dir} to build one from "
                "does not exist; set QA_CORPUS_DIR to the folder of your documents (or QA_INDEX_DIR to an "
                "existing index)") from None
        if announce is not None:
            announce(
                f"no index in {settings.index_dir}; building it from {settings.corpus_dir} (first run)"
            )
        if chunker is None:
            from qa.chunking import Chunker

            chunker = Chunker.from_settings(settings)
        store = build_or_update(
            settings.corpus_dir, settings, embedder, chunker, show_progress=show_progress
        )
    if store.dimension != embedder.dimension:
        raise IndexStaleError(
            f"index {store.path} holds {store.dimension}-dimensional vectors but the embedding model "
            f"produces {embedder.dimension}; {REBUILD_HINT}"
        )
    return store
