"""The ``milvus`` backend of :class:`qa.store.protocol.DocumentStore` (``QA_STORE=milvus``).

``QA_MILVUS_URI`` picks the Milvus: a local file path ending in ``.db`` runs Milvus Lite inside this
process (one process per file); ``http://host:port`` talks to a Milvus server (or ``milvus-lite
server``), which any number of ``qa serve`` replicas can share. Everything a replica serves comes
from Milvus: no per-process index, BM25 statistics or document texts (docs/scaling.md).

Five collections, named ``<QA_MILVUS_COLLECTION>_<kind>`` (default prefix ``qa``):

* ``chunks``: one row per chunk of each revision of a document. Primary key: the revision and a digest of
  the stable chunk id (qa.store.protocol.chunk_id, which searches report: it is made again from
  ``document``, ``ordinal`` and ``text``), so two versions that share a chunk have a row each and each
  version's rows come and go with it (while one replaces the other, a search may find both: reported once);
  ``document``, ``ordinal``, ``start``, ``end``, ``rev``, ``text`` (the exact chunk text),
  ``vector`` (FLOAT_VECTOR, inner product, FLAT index: exact like FAISS's IndexFlatIP) and the
  keyword side: ``terms`` (the chunk's words lower-cased, English stop words dropped, Snowball-stemmed:
  the same analysis as the FAISS backend's bm25s) feeds Milvus's built-in BM25 function
  (``FunctionType.BM25``) whose SPARSE_FLOAT_VECTOR output ``sparse`` is searched with metric BM25.
  Milvus keeps the BM25 statistics; a query is analysed the same way (stateless) and sent as text.
* ``texts``: each document's exact served text, in parts of at most 60,000 UTF-8 bytes (a VARCHAR
  holds 65,535), keyed by document, revision and part (0, 1, ...); and once a revision has gone live, its
  *live marker*: rows with negative parts holding its metadata (JSON), by which a later write finds a
  version that went live and was overwritten without the overwriting write having read it.
* ``documents``: one row per document: sha256, size, converter, page starts, text checksum, chunk
  count and its current revision (which ``texts`` rows are its text).
* ``meta``: the generation and what the vectors are (embedding model, dimension, chunking).
* ``trash``: deleted and replaced documents (:class:`qa.store.protocol.TrashBin`): the exact text in
  parts, with the document's sha256, size, converter, page starts, when and why it left. A restore
  writes that text back (chunked and embedded again), so every replica shares one trash.

A write is ordered so that a reader on another replica never sees a document without its text:
new text parts (new revision) -> chunks inserted -> the document row names the new revision (the
switch) -> generation + 1 -> live marker -> old revisions' chunks and text parts deleted by filter
(see :meth:`MilvusDocumentStore.write_document`).
Collections use Strong consistency: a write acknowledged by one replica is visible to every replica.
Concurrent writers on different replicas are not serialised: two replicas replacing the same
document at the same moment end with one of the two versions (last writer wins per row).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from qa.index_store import DocumentInfo, IndexStaleError
from qa.store.protocol import (DocumentChangedError, DocumentExistsError, Hit, check_write, chunk_id, new_trash_entry, widened,
                               with_ids)
from qa.types import Chunk, Document

logger = logging.getLogger(__name__)

ID_MAX = 2048  # bytes of a document id (a relative path) in a VARCHAR
CHUNK_ID_MAX = ID_MAX + 32
VARCHAR_MAX = 65535
TEXT_PART_BYTES = 60_000
TOP_K_MAX = 16_384  # Milvus's limit on a search's topk / a query's limit
SCHEMA_VERSION = 1
BUCKETS = 256
#: A revision of a document that is not current and began this long before another write of the same document
#: is abandoned (its writer crashed, or lost a race between replicas): that write removes it.
ABANDONED_AFTER_S = 600.0  # documents are listed one bucket (hash of the id) at a time past TOP_K_MAX of them
# BM25 as the faiss backend's bm25s ranks (qa.retriever.bm25: k1=1.5, b=0.75, Lucene idf). Milvus's score
# carries the classic (k1 + 1) factor in the numerator that bm25s's Lucene variant leaves out, so a
# Milvus score / (k1 + 1) is the bm25s score (the answer verifier reads BM25 magnitudes, not only ranks).
# A Milvus server takes k1 and b from the index parameters (its default k1 is 1.2); Milvus Lite 3.2.2
# ignores them and always uses k1=1.5, b=0.75 (tests/test_store_contract.py compares the two backends).
BM25_K1, BM25_B = 1.5, 0.75

_WORD = re.compile(r"(?u)\b\w\w+\b")  # bm25s's default token pattern
_analysis: dict[str, Any] = {}


def analyze(text: str) -> str:
    """The words BM25 sees: lower-cased, English stop words (bm25s's list) dropped, Snowball
    English stems (PyStemmer), joined by spaces. Stateless, so every replica agrees."""
    if not _analysis:
        import Stemmer
        from bm25s.stopwords import STOPWORDS_EN

        _analysis["stop"] = frozenset(STOPWORDS_EN)
        _analysis["stem"] = Stemmer.Stemmer("english")
    stop = _analysis["stop"]
    words = [w for w in _WORD.findall(text.lower()) if w not in stop]
    return " ".join(_analysis["stem"].stemWords(words)) if words else ""


def _lit(value: str) -> str:
    """A string literal for a Milvus filter expression (JSON escaping: quotes and backslashes)."""
    return json.dumps(value, ensure_ascii=False)


def _text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def split_text(text: str, limit: int = TEXT_PART_BYTES) -> list[str]:
    """``text`` in consecutive pieces of at most ``limit`` UTF-8 bytes; ``"".join`` gives it back."""
    parts: list[str] = []
    start, size = 0, 0
    for i, ch in enumerate(text):
        n = len(ch.encode("utf-8", "surrogatepass"))
        if size + n > limit:
            parts.append(text[start:i])
            start, size = i, 0
        size += n
    parts.append(text[start:])
    return parts


def _row_key(rev: str, stable_id: str) -> str:
    """A chunk row's primary key: its revision and 24 hex digits of sha256(stable chunk id)."""
    return f"{rev}:{hashlib.sha256(stable_id.encode('utf-8', 'surrogatepass')).hexdigest()[:24]}"


def _search_limit(n: int) -> int:
    # twice n: while a write replaces a document, a chunk both versions hold is found twice (reported once)
    return min(2 * n, TOP_K_MAX)


def _complete(result: Any, limit: int) -> bool:
    """Whether a search returned every row it could (fewer than it asked for, or as many as Milvus gives)."""
    return len(result[0] if result else []) < limit or limit >= TOP_K_MAX


def _deleted(result: Any) -> int:
    """How many rows a ``MilvusClient.delete`` removed: Milvus Lite answers the list of their keys, a server
    ``{"delete_count": n, ...}`` (also when n is 0)."""
    if isinstance(result, Mapping):
        return int(result.get("delete_count") or 0)
    return len(result or ())


def _document(doc_id: str, text: str, info: Mapping[str, Any]) -> Document:
    """A stored version as a Document: its text and the metadata kept with it (a ``documents`` row's, a live
    marker's or a trash entry's ``info``)."""
    return Document(doc_id, text, info["sha256"], int(info["size"]), info.get("converter", "text"),
                    info.get("converter_version", ""), tuple(int(x) for x in info.get("page_starts") or ()))


class _LiteUnimplemented(logging.Filter):
    """Milvus Lite's in-process server does not implement some calls pymilvus makes (AllocTimestamp) and pymilvus
    does without them, but grpc logs each as an ERROR with a traceback (six per ``qa index``): those records only
    are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], NotImplementedError))


def _quiet_lite_server() -> None:
    grpc_server = logging.getLogger("grpc._server")
    if not any(isinstance(f, _LiteUnimplemented) for f in grpc_server.filters):
        grpc_server.addFilter(_LiteUnimplemented())


def is_local_uri(uri: str) -> bool:
    return "://" not in uri


class MilvusDocumentStore:
    """A :class:`~qa.store.protocol.DocumentStore` in Milvus (see the module docstring).

    ``uri``: a local ``.db`` path (Milvus Lite in this process) or ``http://host:port``.
    ``model_id``/``dimension``/``chunking``: what the writers' embedder and chunker produce; a store
    created with others raises :class:`qa.index_store.IndexStaleError`.
    """

    name = "milvus"

    def __init__(self, uri: str, model_id: str, dimension: int, chunking: Mapping[str, Any],
                 collection: str = "qa", token: str = "") -> None:
        from pymilvus import MilvusClient

        from qa.config import SettingsError  # qa prints it as one line

        uri = str(uri)
        if is_local_uri(uri) and not uri.endswith(".db"):
            raise SettingsError(f"QA_MILVUS_URI {uri!r}: a local Milvus Lite file must end in .db "
                             "(or give http://host:port of a Milvus server)")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,200}", collection):
            raise SettingsError(f"QA_MILVUS_COLLECTION {collection!r}: letters, digits and _ only")
        if is_local_uri(uri):
            _quiet_lite_server()
        self.uri = uri
        self.model_id, self.dimension, self.chunking = model_id, int(dimension), dict(chunking)
        self.prefix = collection
        self.c_chunks, self.c_texts = f"{collection}_chunks", f"{collection}_texts"
        self.c_docs, self.c_meta = f"{collection}_documents", f"{collection}_meta"
        self.c_trash = f"{collection}_trash"
        self.client = MilvusClient(uri=uri, token=token) if token else MilvusClient(uri=uri)
        self._write_lock = threading.Lock()
        self._ensure_collections()

    # ------------------------------------------------------------------ schema
    def _ensure_collections(self) -> None:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        c = self.client
        existing = set(c.list_collections())

        def create(name: str, schema: Any, vector_fields: list[tuple[str, str, str]]) -> None:
            if name in existing:
                c.load_collection(name)
                return
            index = c.prepare_index_params()
            for field, kind, metric in vector_fields:
                params = {"bm25_k1": BM25_K1, "bm25_b": BM25_B} if metric == "BM25" else {}
                index.add_index(field_name=field, index_type=kind, metric_type=metric, params=params)
            c.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")

        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=CHUNK_ID_MAX)
        s.add_field("document", DataType.VARCHAR, max_length=ID_MAX)
        s.add_field("ordinal", DataType.INT64)
        s.add_field("start", DataType.INT64)
        s.add_field("end", DataType.INT64)
        s.add_field("rev", DataType.VARCHAR, max_length=64)
        s.add_field("text", DataType.VARCHAR, max_length=VARCHAR_MAX)
        s.add_field("terms", DataType.VARCHAR, max_length=VARCHAR_MAX, enable_analyzer=True,
                    analyzer_params={"tokenizer": "standard"})
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dimension)
        s.add_function(Function(name="terms_bm25", function_type=FunctionType.BM25,
                                input_field_names=["terms"], output_field_names=["sparse"]))
        create(self.c_chunks, s, [("vector", "FLAT", "IP"), ("sparse", "SPARSE_INVERTED_INDEX", "BM25")])

        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=CHUNK_ID_MAX)
        s.add_field("document", DataType.VARCHAR, max_length=ID_MAX)
        s.add_field("rev", DataType.VARCHAR, max_length=64)
        s.add_field("part", DataType.INT64)
        s.add_field("text", DataType.VARCHAR, max_length=VARCHAR_MAX)
        s.add_field("_v", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
        create(self.c_texts, s, [("_v", "FLAT", "L2")])

        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX)
        s.add_field("rev", DataType.VARCHAR, max_length=64)
        s.add_field("parts", DataType.INT64)
        s.add_field("bucket", DataType.INT64)
        s.add_field("info", DataType.JSON)
        s.add_field("_v", DataType.FLOAT_VECTOR, dim=2)
        create(self.c_docs, s, [("_v", "FLAT", "L2")])

        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=CHUNK_ID_MAX)
        s.add_field("entry", DataType.VARCHAR, max_length=64)
        s.add_field("document", DataType.VARCHAR, max_length=ID_MAX)
        s.add_field("part", DataType.INT64)
        s.add_field("parts", DataType.INT64)
        s.add_field("text", DataType.VARCHAR, max_length=VARCHAR_MAX)
        s.add_field("info", DataType.JSON)
        s.add_field("_v", DataType.FLOAT_VECTOR, dim=2)
        create(self.c_trash, s, [("_v", "FLAT", "L2")])  # stores made before the trash get it on open

        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        s.add_field("generation", DataType.INT64)
        s.add_field("info", DataType.JSON)
        s.add_field("_v", DataType.FLOAT_VECTOR, dim=2)
        create(self.c_meta, s, [("_v", "FLAT", "L2")])

        rows = c.query(self.c_meta, filter='id == "store"', output_fields=["generation", "info"])
        wanted = {"schema": SCHEMA_VERSION, "embedding_model": self.model_id, "dimension": self.dimension,
                  "chunking": self.chunking}
        if not rows:
            c.insert(self.c_meta, [{"id": "store", "generation": 0, "info": wanted, "_v": [0.0, 0.0]}])
            return
        have = rows[0]["info"] or {}
        for key in ("schema", "embedding_model", "dimension", "chunking"):
            if have.get(key) != wanted[key]:
                raise IndexStaleError(
                    f"Milvus collections {self.prefix}_* at {self.uri} hold {key} {have.get(key)!r} but this "
                    f"service uses {wanted[key]!r}; drop them (or set another QA_MILVUS_COLLECTION) and index again")

    def drop(self) -> None:
        """Remove the five collections (everything this store holds)."""
        for name in (self.c_chunks, self.c_texts, self.c_docs, self.c_meta, self.c_trash):
            if self.client.has_collection(name):
                self.client.drop_collection(name)

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ reads
    def snapshot(self) -> "MilvusDocumentStore":
        return self  # live: see qa.store.protocol

    @property
    def generation(self) -> int:
        rows = self.client.query(self.c_meta, filter='id == "store"', output_fields=["generation"])
        return int(rows[0]["generation"]) if rows else 0

    def _doc_rows(self, filter: str, limit: int | None = None) -> list[dict[str, Any]]:
        fields = ["id", "rev", "parts", "info"]
        if limit is not None:
            return self.client.query(self.c_docs, filter=filter, output_fields=fields, limit=limit)
        # A query returns at most TOP_K_MAX rows (and pymilvus's query_iterator cannot page over
        # ids holding quotes or backslashes): more documents are read one hash bucket at a time.
        if self.count_documents() < TOP_K_MAX:
            return self.client.query(self.c_docs, filter=filter, output_fields=fields, limit=TOP_K_MAX)
        out: list[dict[str, Any]] = []
        for b in range(BUCKETS):
            out.extend(self.client.query(self.c_docs, filter=f"({filter}) and bucket == {b}", output_fields=fields,
                                         limit=TOP_K_MAX))
        return out

    @staticmethod
    def _info(row: dict[str, Any]) -> DocumentInfo:
        i = row["info"]
        return DocumentInfo(row["id"], i["sha256"], int(i["size"]), int(i["chunk_count"]), i.get("converter", "text"),
                            i.get("converter_version", ""), len(i["page_starts"]) if i.get("page_starts") else None)

    @property
    def documents(self) -> dict[str, DocumentInfo]:
        return {r["id"]: self._info(r) for r in self._doc_rows('id != ""')}

    def document_ids(self) -> list[str]:
        return sorted(self.documents)

    def _doc_row(self, doc_id: str) -> dict[str, Any]:
        rows = self._doc_rows(f"id == {_lit(doc_id)}", limit=1)
        if not rows:
            raise KeyError(doc_id)
        return rows[0]

    def document_info(self, doc_id: str) -> DocumentInfo:
        return self._info(self._doc_row(doc_id))

    def document_text(self, doc_id: str) -> str:
        return self.document_view(doc_id)[0]

    def document_view(self, doc_id: str) -> tuple[str, str, tuple[int, ...]]:
        """(text, sha256 of the file, page starts) of one revision: the row and the text parts it names are
        read together, so a replace by another replica in between cannot pair one version's text with the
        other's sha256 (the ETag a PUT's If-Match is checked against). KeyError: unknown."""
        for attempt in range(3):
            row = self._doc_row(doc_id)
            text = self._revision_text(doc_id, row["rev"], row["info"])
            if text is not None:
                i = row["info"]
                return text, i["sha256"], tuple(int(x) for x in (i.get("page_starts") or ()))
            # the document was replaced between the two reads: read its new revision
        raise RuntimeError(f"the stored text of {doc_id!r} is incomplete or does not match its checksum")

    def _revision_text(self, doc_id: str, rev: str, info: Mapping[str, Any]) -> str | None:
        """The text of revision ``rev`` of ``doc_id``; None if its parts are not all there (or not its own)."""
        parts = self.client.query(self.c_texts, output_fields=["part", "text"], limit=TOP_K_MAX,
                                  filter=f"document == {_lit(doc_id)} and rev == {_lit(rev)} and part >= 0")
        text = "".join(p["text"] for p in sorted(parts, key=lambda p: p["part"]))
        return text if _text_sha(text) == info["text_sha256"] else None

    def page_starts(self, doc_id: str) -> tuple[int, ...]:
        return tuple(int(x) for x in (self._doc_row(doc_id)["info"].get("page_starts") or ()))

    def _hits(self, result: Any, sign: float) -> list[Hit]:
        out, seen = [], set()
        for h in result[0] if result else []:
            e = h["entity"]
            cid = chunk_id(e["document"], int(e["ordinal"]), e["text"])
            if cid in seen:  # the same chunk in two revisions of its document, one replacing the other
                continue
            seen.add(cid)
            score = float(h["distance"]) * sign
            out.append(Hit(Chunk(e["document"], int(e["start"]), int(e["end"]), e["text"], id=cid), score))
        return out

    def dense_search(self, query_vector: np.ndarray, k: int) -> list[Hit]:
        if k < 1:
            return []
        q = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dimension:
            raise ValueError(f"query vector has dimension {q.shape[0]}, the store has {self.dimension}")

        def search(n: int) -> tuple[list[Hit], bool]:
            limit = _search_limit(n)
            res = self.client.search(self.c_chunks, data=[q.tolist()], anns_field="vector",
                                     limit=limit, search_params={"metric_type": "IP"},
                                     output_fields=["document", "ordinal", "start", "end", "text"])
            return self._hits(res, 1.0), _complete(res, limit)

        return widened(search, k)  # ties by chunk id, as the faiss backend

    def keyword_search(self, query: str, k: int) -> list[Hit]:
        terms = analyze(query)
        if k < 1 or not terms:
            return []

        def search(n: int) -> tuple[list[Hit], bool]:
            limit = _search_limit(n)
            res = self.client.search(self.c_chunks, data=[terms], anns_field="sparse", limit=limit,
                                     search_params={"metric_type": "BM25"},
                                     output_fields=["document", "ordinal", "start", "end", "text"])
            # Milvus Lite reports a BM25 match as a negative distance (smaller is better); a server as a
            # positive score: the magnitude is the BM25 score either way, and the order is Milvus's.
            # Divided by (k1 + 1): the scale of the faiss backend's bm25s scores (see BM25_K1).
            hits = [Hit(h.chunk, abs(h.score) / (BM25_K1 + 1.0)) for h in self._hits(res, 1.0)]
            return [h for h in hits if h.score > 0.0], _complete(res, limit)

        return widened(search, k)

    def _count(self, collection: str) -> int:
        rows = self.client.query(collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def count_documents(self) -> int:
        return self._count(self.c_docs)

    def count_chunks(self) -> int:
        return self._count(self.c_chunks)

    # ------------------------------------------------------------------ writes
    def _bump(self) -> int:
        """generation + 1 (at least the current time in microseconds, so that writers on several
        replicas, which Milvus does not serialise, still move it forward)."""
        rows = self.client.query(self.c_meta, filter='id == "store"', output_fields=["generation", "info"])
        new = max(int(rows[0]["generation"]) + 1, time.time_ns() // 1000)
        self.client.upsert(self.c_meta, [{"id": "store", "generation": new, "info": rows[0]["info"], "_v": [0.0, 0.0]}])
        return new

    def write_document(self, document: Document, chunks: Sequence[Chunk], vectors: np.ndarray, *,
                       expect_absent: bool = False, keep_replaced: bool = False) -> int:
        """Write or replace ``document``. Replicas write without a lock between them (Milvus has no
        transactions), so a write never deletes what another replica's write may still need:

        1. its text parts go in under a new revision (time-ordered: ``<time_ns hex><random>``);
        2. ``expect_absent`` (an upload, a restore): a document of that id already there is
           :class:`DocumentExistsError` (its revision rolled back) -- checked again here because another
           replica may have written the id since the caller's check;
        3. its chunks (rows of their own: keyed by revision), then the document row pointing at its revision
           (the switch; the row it replaces is read just before), then the generation, then its live marker;
        4. only then old revisions go: the one it replaced; any that went live and is not current (marked:
           overwritten by a write on another replica that did not read it -- that version, acknowledged to its
           writer, goes to the trash as "replaced" first, unless the trash holds it already); and any other
           that is not current and began more than ``ABANDONED_AFTER_S`` before this write (a write that
           crashed); never one that may still be in flight;
        5. if its own revision is no longer current (another write went live right after it), its rows go:
           ``expect_absent`` raises :class:`DocumentExistsError` (of two uploads of a name, the one overwritten
           after answering 201 is in the trash: nothing acknowledged is lost);
        ``keep_replaced`` (a replace whose caller copied the version it saw to the trash): the revision this
        write replaces goes to the trash too unless the trash holds it already -- it may be another replica's
        replace that went live (and was acknowledged) after that copy;
        6. it checks that its own text parts are all still there (a write in flight for longer than
           ``ABANDONED_AFTER_S`` could have had them taken by step 4 of another) and puts them back if not.

        Two replicas replacing one document at once end with one of the two versions, readable; the
        returned generation is the store's after this write."""
        vecs = check_write(document, chunks, vectors, self.dimension)
        self.check_document(document)
        chunks = with_ids(document.id, chunks)
        started = time.time_ns()
        rev = f"{started:016x}{uuid.uuid4().hex[:4]}"
        rows = []
        for i, (c, v) in enumerate(zip(chunks, vecs)):
            terms = analyze(c.text)
            if len(c.text.encode("utf-8")) > VARCHAR_MAX or len(terms.encode("utf-8")) > VARCHAR_MAX:
                raise ValueError(f"{document.id}: chunk {c.start}:{c.end} is longer than {VARCHAR_MAX} bytes")
            rows.append({"id": _row_key(rev, c.id), "document": document.id, "ordinal": i, "start": c.start,
                         "end": c.end, "rev": rev, "text": c.text, "terms": terms, "vector": v.tolist()})
        parts = split_text(document.text)
        part_rows = [{"id": f"{rev}:{n}:{document.id}", "document": document.id, "rev": rev, "part": n, "text": p,
                      "_v": [0.0, 0.0]} for n, p in enumerate(parts)]
        info = {"sha256": document.sha256, "size": document.size, "chunk_count": len(chunks),
                "converter": document.converter, "converter_version": document.converter_version,
                "page_starts": list(document.page_starts), "text_sha256": _text_sha(document.text)}
        marker_rows = [{"id": f"{rev}:m{n}:{document.id}", "document": document.id, "rev": rev, "part": -1 - n,
                        "text": p, "_v": [0.0, 0.0]} for n, p in enumerate(split_text(json.dumps(info)))]
        d = _lit(document.id)
        with self._write_lock:
            chunks_written = False
            try:
                self.client.insert(self.c_texts, part_rows)
                before = self._doc_rows(f"id == {d}", limit=1)
                if expect_absent and before:
                    raise DocumentExistsError(document.id)
                chunks_written = True
                for n in range(0, len(rows), 500):
                    self.client.upsert(self.c_chunks, rows[n:n + 500])
                before = self._doc_rows(f"id == {d}", limit=1)  # again, as late as possible: the one replaced
                if expect_absent and before:
                    raise DocumentExistsError(document.id)
                self.client.upsert(self.c_docs, [{"id": document.id, "rev": rev, "parts": len(parts), "info": info,
                                                  "bucket": int(_text_sha(document.id)[:8], 16) % BUCKETS,
                                                  "_v": [0.0, 0.0]}])
            except BaseException:
                # roll back what this write added (its revision's rows); the previous version stays
                for coll in (self.c_texts, self.c_chunks) if chunks_written else (self.c_texts,):
                    try:
                        self.client.delete(coll, filter=f"document == {d} and rev == {_lit(rev)}")
                    except Exception:  # noqa: BLE001 - report the first error
                        logger.exception("rolling back a failed write of %s", document.id)
                raise
            generation = self._bump()  # at once: answers cached for the old version are unreachable from here
            self.client.insert(self.c_texts, marker_rows)
            current = self._drop_old_revisions(document.id, rev, before[0]["rev"] if before else None, started,
                                               keep_replaced=keep_replaced)
            if current != rev:
                # another write went live right after this one: this version is not served (an overwritten
                # upload or restore is told so; a replace's caller keeps its version in the trash)
                for coll in (self.c_texts, self.c_chunks):
                    self.client.delete(coll, filter=f"document == {d} and rev == {_lit(rev)}")
                if expect_absent:
                    raise DocumentExistsError(document.id)
                return generation
            have = self.client.query(self.c_texts, filter=f"document == {d} and rev == {_lit(rev)} and part >= 0",
                                     output_fields=["part"], limit=TOP_K_MAX)
            if len(have) != len(parts):  # taken by another replica's clean-up (step 4): put them back
                logger.warning("text parts of %s (revision %s) were removed while it was written; written again",
                               document.id, rev)
                self.client.upsert(self.c_texts, part_rows + marker_rows)
                for n in range(0, len(rows), 500):
                    self.client.upsert(self.c_chunks, rows[n:n + 500])
            return generation

    def _live_revisions(self, d: str) -> dict[str, dict[str, Any]]:
        """{revision: its metadata} of every revision of document ``d`` (a filter literal) that went live."""
        pieces: dict[str, list[tuple[int, str]]] = {}
        for r in self.client.query(self.c_texts, filter=f"document == {d} and part < 0",
                                   output_fields=["rev", "part", "text"], limit=TOP_K_MAX):
            pieces.setdefault(r["rev"], []).append((-int(r["part"]), r["text"]))
        out = {}
        for rev, ps in pieces.items():
            try:
                out[rev] = json.loads("".join(t for _, t in sorted(ps)))
            except ValueError:  # a marker cut short (its writer crashed while writing it): not counted
                continue
        return out

    def _in_trash(self, doc_id: str, sha256: str) -> bool:
        rows = self.client.query(self.c_trash, filter=f"document == {_lit(doc_id)} and part == 0",
                                 output_fields=["info"], limit=TOP_K_MAX)
        return any(r["info"]["sha256"] == sha256 for r in rows)

    def _trash_overwritten(self, doc_id: str, rev: str, info: dict[str, Any]) -> None:
        """Keep revision ``rev`` of ``doc_id`` (live once, overwritten unread) in the trash as "replaced",
        unless the trash holds that version of it already."""
        if self._in_trash(doc_id, info["sha256"]):
            return
        text = self._revision_text(doc_id, rev, info)
        if text is None:  # its parts are going already: another write is cleaning up
            logger.warning("an overwritten version of %s (revision %s) could not be kept in the trash", doc_id, rev)
            return
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.trash_document(doc_id, new_trash_entry(), "replaced", now, document=_document(doc_id, text, info))

    def _drop_old_revisions(self, doc_id: str, own: str, replaced: str | None, started_ns: int,
                            keep_replaced: bool = False) -> str | None:
        """Step 4 of :meth:`write_document`; returns the document's current revision (None: deleted)."""
        d = _lit(doc_id)
        live = self._live_revisions(d)  # before the row: a revision marked by now went live before this read
        row = self._doc_rows(f"id == {d}", limit=1)
        current = row[0]["rev"] if row else None
        keep = {own} | ({current} if current else set())
        overwritten = sorted(r for r in live if r not in keep and (keep_replaced or r != replaced))
        for r in overwritten:
            self._trash_overwritten(doc_id, r, live[r])
        cutoff = f"{max(0, started_ns - int(ABANDONED_AFTER_S * 1e9)):016x}"
        gone = [_lit(r) for r in overwritten + ([replaced] if replaced and replaced not in keep else [])]
        cond = " or ".join(([f"rev in [{', '.join(gone)}]"] if gone else []) + [f'rev < "{cutoff}"'])
        keep_lits = ", ".join(_lit(k) for k in sorted(keep))
        for coll in (self.c_chunks, self.c_texts):
            self.client.delete(coll, filter=f"document == {d} and ({cond}) and rev not in [{keep_lits}]")
        return current

    def check_document(self, document: Document) -> None:
        """ValueError when Milvus cannot hold ``document``: an id over ``ID_MAX`` bytes (a deeply nested path), a
        text with a character UTF-8 cannot encode. Checked before anything is written."""
        size = len(document.id.encode("utf-8", "surrogatepass"))
        if size > ID_MAX:
            raise ValueError(f"{document.id[:40]}…: its id (its path in the corpus folder) is {size} bytes, over the "
                             f"{ID_MAX} a Milvus store holds; move the file up the folder tree")
        try:
            document.text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"{document.id}: the text holds a character Milvus cannot store ({e.reason})") from None

    def write_documents(self, items: Sequence[tuple[Document, Sequence[Chunk], np.ndarray]],
                        removals: Iterable[str] = ()) -> int:
        for d, c, v in items:  # all checked first: bad input writes nothing
            check_write(d, c, v, self.dimension)
            self.check_document(d)
        generation = self.generation
        for d, c, v in items:
            generation = self.write_document(d, c, v)
        for doc_id in removals:
            with contextlib.suppress(KeyError):  # unknown (deleted through another replica meanwhile)
                generation = self.delete_document(doc_id)
        return generation

    def delete_document(self, doc_id: str, if_sha256: str | None = None) -> int:
        """Delete the document row of the revision read (another replica's write since then: that one is read
        and deleted instead, or with ``if_sha256`` :class:`DocumentChangedError`), then every chunk and text
        part of the document."""
        d = _lit(doc_id)
        with self._write_lock:
            for _ in range(3):
                started = time.time_ns()
                row = self._doc_row(doc_id)  # KeyError: unknown
                if if_sha256 is not None and row["info"]["sha256"] != if_sha256:
                    raise DocumentChangedError(doc_id)
                if _deleted(self.client.delete(self.c_docs, filter=f"id == {d} and rev == {_lit(row['rev'])}")):
                    break
                # deleted or replaced through another replica since the read: read it again
            else:
                raise DocumentChangedError(doc_id)
            # the revision deleted and older ones (and abandoned ones), never a newer one: another replica's
            # write of the name may be in flight and go live right after this delete (an upload after it)
            cutoff = f"{max(0, started - int(ABANDONED_AFTER_S * 1e9)):016x}"
            cond = f"document == {d} and (rev <= {_lit(row['rev'])} or rev < \"{cutoff}\")"
            self.client.delete(self.c_chunks, filter=cond)
            self.client.delete(self.c_texts, filter=cond)
            return self._bump()

    # ------------------------------------------------------------------ trash (qa.store.protocol.TrashBin)
    def trash_document(self, doc_id: str, entry: str, reason: str, deleted_at: str,
                       document: Document | None = None) -> None:
        """Copy ``doc_id``'s exact text and metadata to the trash as ``entry`` (or those of ``document``: a
        version that never became current, e.g. one that lost a race between replicas). KeyError: unknown."""
        if document is None:
            for _ in range(3):  # the row and the text of one revision (another replica may replace it meanwhile)
                row = self._doc_row(doc_id)
                text = self._revision_text(doc_id, row["rev"], row["info"])
                if text is not None:
                    break
            else:
                raise RuntimeError(f"the stored text of {doc_id!r} is incomplete or does not match its checksum")
            i = row["info"]
        else:
            text = document.text
            i = {"sha256": document.sha256, "size": document.size, "converter": document.converter,
                 "converter_version": document.converter_version, "page_starts": list(document.page_starts)}
        parts = split_text(text)
        info = {"sha256": i["sha256"], "size": int(i["size"]), "converter": i.get("converter", "text"),
                "converter_version": i.get("converter_version", ""), "page_starts": list(i.get("page_starts") or ()),
                "text_sha256": _text_sha(text), "deleted_at": deleted_at, "reason": reason}
        self.client.insert(self.c_trash, [
            {"id": f"{entry}:{n}", "entry": entry, "document": doc_id, "part": n, "parts": len(parts), "text": p,
             "info": info, "_v": [0.0, 0.0]} for n, p in enumerate(parts)])

    def trash_entries(self) -> list[dict[str, Any]]:
        """Every complete trash entry: {entry, id, sha256, size, deleted_at, reason}, newest first."""
        rows = self.client.query(self.c_trash, filter="part == 0", output_fields=["entry", "document", "parts", "info"],
                                 limit=TOP_K_MAX)
        out = [{"entry": r["entry"], "id": r["document"], "sha256": r["info"]["sha256"], "size": int(r["info"]["size"]),
                "deleted_at": r["info"]["deleted_at"], "reason": r["info"]["reason"]} for r in rows]
        return sorted(out, key=lambda t: t["entry"], reverse=True)

    def trashed_document(self, entry: str) -> Document:
        """The document kept as trash ``entry`` (its exact text and metadata). KeyError: no such
        entry, or an incomplete one (a delete that crashed while copying)."""
        rows = self.client.query(self.c_trash, filter=f"entry == {_lit(entry)}",
                                 output_fields=["document", "part", "parts", "text", "info"], limit=TOP_K_MAX)
        if not rows or len(rows) != int(rows[0]["parts"]):
            raise KeyError(entry)
        rows.sort(key=lambda r: r["part"])
        text = "".join(r["text"] for r in rows)
        if _text_sha(text) != rows[0]["info"]["text_sha256"]:
            raise KeyError(entry)
        return _document(rows[0]["document"], text, rows[0]["info"])

    def drop_trash_entry(self, entry: str) -> None:
        self.client.delete(self.c_trash, filter=f"entry == {_lit(entry)}")
