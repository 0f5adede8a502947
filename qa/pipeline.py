"""The question-answering pipeline: an explicit composition of index store, retriever and reader.

    pipeline = QAPipeline(settings); pipeline.warm_up(); result = pipeline.ask("...")

warm_up() loads the index (building it from the corpus on first run), the embedder, the retriever
and the reader, once per process. Writers (add/remove documents) build a new index version and swap
one reference to an immutable ``_State``; readers take that reference once per question, so every
answer comes from one consistent index, old or new, never half of each.

The store is a :class:`qa.store.protocol.DocumentReader` (``QA_STORE``): with ``faiss`` (default) a
loaded index version, written through the journalled transactions of :mod:`qa.writes`; with
``milvus`` the live :class:`qa.store.milvus_store.MilvusDocumentStore`, written through
:class:`qa.store.writes.StoreWriter`. Either way a passage whose text does not slice from its
document's stored text (replaced meanwhile by another replica) is dropped before reading, so every
citation slices its document exactly.

Answers are cached (qa.answer_cache, ``QA_ANSWER_CACHE_SIZE``) by (normalised question, top_k, max_answers,
index state): every write or reload makes a new ``_State``, so a cached answer is only ever served from the
index it was computed on.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from qa import timing
from qa.answer_cache import AnswerCache, normalise_question
from qa.config import Settings, get_settings
from qa.converters import add_pages
from qa.index_store import DocumentInfo, IndexStore, build_or_update, load_or_build
from qa.store.protocol import document_sha
from qa.validation import (  # noqa: F401 - re-exported: the API imports them from here
    MAX_NAME_BYTES,
    DocumentError,
    check_document_content,
    check_document_name,
    shown,
)
from qa.types import AskResult, PassageOut

if TYPE_CHECKING:
    from qa.store.protocol import DocumentReader

logger = logging.getLogger(__name__)
#: a question must hold a word character (a letter, digit or "_"): "?", NUL or U+200B alone is nothing to ask
_WORD = re.compile(r"\w")
#: a lone surrogate: what Python makes of argv bytes that are not UTF-8 (a terminal in Latin-1 typing "café"),
#: and what a JSON "\udce9" escape gives; no tokenizer can read it (it raised a TypeError deep in the embedder)
_SURROGATE = re.compile("[\ud800-\udfff]")


class QuestionError(ValueError):
    """The question cannot be asked (empty, too long)."""


_generations = itertools.count(1)


@dataclass(frozen=True)
class _State:
    store: "DocumentReader"  # an IndexStore version (faiss) or the live Milvus store
    retriever: object
    generation: int = 0  # unique per state in this process: part of the answer cache's key


def _exact_passages(passages: list, document_text) -> list:
    """The passages whose chunk still slices from its document's text (all of them with a FAISS
    version; with a live store a document replaced between the search and now drops out)."""
    out = []
    for p in passages:
        c = p.chunk
        try:
            ok = document_text(c.document)[c.start:c.end] == c.text
        except KeyError:
            ok = False
        if ok:
            out.append(p)
        else:
            logger.info("passage %s:%d-%d changed since it was retrieved; not read", c.document, c.start, c.end)
    return out


def _text_fetcher(store: Any) -> tuple[Callable[[str], str], dict[str, str] | None]:
    """(document_text, the versions read): one fetch per document. A store of immutable versions (faiss) is all
    of one generation: None. A live store (milvus) reads each text with its sha256 (one revision), recorded."""
    view = getattr(store, "document_view", None)
    if view is None or getattr(store, "path", None) is not None:
        return lru_cache(maxsize=None)(store.document_text), None
    versions: dict[str, str] = {}

    @lru_cache(maxsize=None)
    def document_text(doc_id: str) -> str:
        text, versions[doc_id], _ = view(doc_id)
        return text

    return document_text, versions


def _versions_hold(store: Any, versions: dict[str, str] | None) -> bool:
    """Whether the documents a cached answer read are still the versions it read. The cache's key holds the
    store's generation, which a write moves right after going live; a writer on another replica killed between
    the two leaves the new version served under the old generation, so a live store's answer is checked too."""
    if versions is None:
        return True
    try:
        return all(document_sha(store, d) == sha for d, sha in versions.items())
    except KeyError:  # deleted since
        return False


def _store_version(state: _State):
    """What identifies the index an answer was computed on: the loaded version's folder (faiss,
    immutable), or the live store's generation (milvus: another replica may have written since)."""
    path = getattr(state.store, "path", None)
    return path.name if path is not None else ("generation", state.store.generation)


class QAPipeline:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._state: _State | None = None
        self._write_lock = threading.Lock()
        self.answers = AnswerCache(self.settings.answer_cache_size)
        self.embedder = None
        self.chunker = None
        self.reader = None
        self.writer = None  # qa.writes.Writer, after warm_up
        self.recovered: list = []  # interrupted writes finished/undone at start-up
        self.reconciled: list = []  # corpus/index differences found (and repaired) at start-up

    # ------------------------------------------------------------------ loading
    def _load_models(self) -> tuple[object, object]:
        """(embedder, chunker), loaded and warm. Tests substitute small fakes here."""
        from qa.chunking import Chunker
        from qa.embedding import embedder_for

        s = self.settings
        embedder = embedder_for(s)
        return embedder.warm_up(), Chunker.from_settings(s)

    def _load_reader(self) -> object:
        from qa.reader.reader import ExtractiveReader

        reader = ExtractiveReader.from_settings(self.settings)
        reader.warm_up()
        return reader

    def warm_up(self, show_progress: bool = False) -> "QAPipeline":
        """Load models and the index. Before the index is used: interrupted writes are finished or
        undone (the journal, qa.writes), then the corpus folder is reconciled with the index and
        every difference is logged and repaired (the index follows the corpus)."""
        if self._state is not None:
            return self
        from qa.writes import Writer

        s = self.settings
        self.embedder, self.chunker = self._load_models()
        if s.store != "faiss":
            return self._warm_up_store(show_progress)
        self.writer = Writer(s, self._index_changes)
        self.writer.after_commit = self._swap_in
        self.recovered = self.writer.recover()
        store = load_or_build(s, self.embedder, self.chunker, announce=logger.warning, show_progress=show_progress)
        store = self._reconcile(store, show_progress)
        self.reader = self._load_reader()
        self._state = self._make_state(store)
        return self

    def _warm_up_store(self, show_progress: bool = False) -> "QAPipeline":
        """QA_STORE=milvus: the store is the only copy of the documents. A store never written
        (generation 0) is filled from the corpus folder first (start one replica first, or run
        `qa index`, before starting several)."""
        from qa.store import open_store
        from qa.store.writes import StoreWriter

        s = self.settings
        store = open_store(s, self.embedder.model_id, self.embedder.dimension, self.chunker.params)
        self.writer = StoreWriter(s, store, self.embedder, self.chunker)
        if store.generation == 0 and Path(s.corpus_dir).is_dir():
            logger.warning("the %s store is empty; indexing %s into it (first run)", store.name, s.corpus_dir)
            report = self.writer.sync_corpus(Path(s.corpus_dir), show_progress=show_progress)
            logger.warning("store filled: %s", report.summary())
        self.reader = self._load_reader()
        self._state = self._make_state(store.snapshot())
        return self

    def _reconcile(self, store: IndexStore, show_progress: bool = False) -> IndexStore:
        from qa.writes import describe, differences

        corpus = Path(self.settings.corpus_dir)
        diffs = differences(corpus, {d: i.sha256 for d, i in store.documents.items()})
        self.reconciled = diffs
        if not diffs:
            return store
        for line in describe(diffs):
            logger.warning("corpus and index disagree: %s", line)
        if not corpus.is_dir():
            logger.error("corpus folder %s is missing: the index is left as it is", corpus)
            return store
        missing = sum(1 for d in diffs if d.kind == "missing_file")
        if store.documents and missing == len(store.documents) == len(diffs):
            # no document in the folder at all: an unmounted or emptied drive would otherwise empty the index
            logger.error("corpus folder %s holds none of the %d indexed documents, and no other (an unmounted or "
                         "emptied drive?): the index is left as it is; run `qa index` to make the index follow the "
                         "folder", corpus, missing)
            return store
        store = build_or_update(corpus, self.settings, self.embedder, self.chunker, previous=store,
                                show_progress=show_progress)
        logger.warning("index repaired from the corpus folder: %s", store.build_report.summary() if store.build_report else "")
        return store

    def _index_changes(self, previous: IndexStore | None, upserts: list, removals: set[str]) -> IndexStore:
        from qa.index_store import apply_changes

        return apply_changes(self.settings, self.embedder, self.chunker, previous, upserts=upserts, removals=removals)

    def _swap_in(self, store: IndexStore) -> None:
        """Readers get a write's new index as soon as it is committed, *before* the writer moves the files in
        and out of the corpus folder: a document is never on disk but unknown (an upload read back at once
        answered 404), nor listed after its file went to the trash. Runs under ``_write_lock``; a failure here
        is raised again by the caller once the files are in place."""
        try:
            self._state = self._make_state(store)
        except Exception:  # noqa: BLE001 - the write is committed: finish moving its files first
            logger.exception("could not swap in the new index version before moving the files")

    def _load_store(self) -> IndexStore:
        return IndexStore.load(self.settings.index_dir, getattr(self.embedder, "model_id", None))

    def _make_state(self, store: IndexStore) -> _State:
        from qa.retriever.hybrid import make_retriever

        retriever = make_retriever(self.settings.retrieval_mode, store, self.embedder, self.settings)
        if hasattr(retriever, "warm_up"):
            retriever.warm_up()
        return _State(store, retriever, next(_generations))

    @property
    def store(self) -> IndexStore:
        return self._require().store

    def _require(self) -> _State:
        if self._state is None:
            self.warm_up()
        return self._state  # type: ignore[return-value]

    # ------------------------------------------------------------------ asking
    def check_question(self, question: str) -> str:
        q = (question or "").strip()
        if not q:
            raise QuestionError("the question is empty")
        if _SURROGATE.search(q):
            raise QuestionError("the question holds bytes that are not UTF-8 (a lone surrogate such as \\udce9: a "
                                "terminal set to another encoding?); send or type it in UTF-8")
        if not _WORD.search(q):  # the API's rule too (api/models.py)
            raise QuestionError("the question has no letter or digit; ask it in words")
        if len(q) > self.settings.max_question_chars:
            raise QuestionError(f"the question is {len(q)} characters long; the limit is "
                                f"{self.settings.max_question_chars}")
        return q

    def ask(self, question: str, top_k: int | None = None, max_answers: int | None = None,
            busy: bool = False) -> AskResult:
        """Answer ``question`` from the documents. ``busy``: other questions are waiting (the API says so), so
        read by the confidence cascade when ``busy_first_passages`` is set (qa.config); a cached answer of a
        full read is still served first."""
        with timing.stage("check_question"):
            q = self.check_question(question)
        k = top_k or self.settings.top_k
        n = max_answers or self.settings.max_answers
        state = self._require()  # one consistent index for the whole question
        t0 = time.perf_counter()
        key = (normalise_question(q), k, n, _store_version(state), state.generation)
        cascade = ((self.settings.busy_first_passages, self.settings.busy_exit_score)
                   if busy and self.settings.busy_first_passages else None)
        cached = self.answers.get(key)  # a copy: the caller may change it
        if cached is None and cascade is not None:
            key = (*key, "busy")  # answers read by the cascade are cached apart from full reads
            cached = self.answers.get(key)
        if cached is not None and _versions_hold(state.store, cached[1]):
            cached = cached[0]
            cached.question = q
            cached.timing_ms = {"retrieve": 0.0, "read": 0.0, "total": round((time.perf_counter() - t0) * 1000, 2),
                                "cache_hit": 1.0}
            return cached
        passages = state.retriever.run(q, k)
        document_text, versions = _text_fetcher(state.store)
        passages = _exact_passages(passages, document_text)
        t1 = time.perf_counter()
        # the passages' reader tokens stored with the index (qa.reader.pretokenised), where the store has them
        stored = getattr(state.store, "reader_tokens", None)
        extra = {"stored_tokens": stored} if stored is not None and getattr(self.reader, "pretokenised", False) else {}
        if cascade is not None:
            extra["cascade"] = cascade
        out = self.reader.run(q, passages, document_text, max_answers=n, **extra)
        t2 = time.perf_counter()
        with timing.stage("result"):
            result = self._result(q, passages, out, state, t0, t1, t2)
        self.answers.put(key, (result, versions))
        return result

    @staticmethod
    def _result(q: str, passages: list, out, state: _State, t0: float, t1: float, t2: float) -> AskResult:
        return add_pages(AskResult(
            question=q,
            answer_found=out.answer_found,
            answers=out.answers,
            passages=[PassageOut(document=p.chunk.document, start=p.chunk.start, end=p.chunk.end,
                                 score=round(p.score, 6), rank=p.rank, text=p.chunk.text) for p in passages],
            no_answer_score=out.no_answer_score,
            best_guess=out.best_guess,
            passages_read=out.passages_read,
            timing_ms={"retrieve": round((t1 - t0) * 1000, 2), "read": round((t2 - t1) * 1000, 2),
                       "total": round((t2 - t0) * 1000, 2)},
        ), state.store.page_starts)

    # ------------------------------------------------------------------ documents
    def documents(self) -> list[DocumentInfo]:
        docs = self.store.documents
        return [docs[d] for d in sorted(docs)]

    def document_text(self, doc_id: str) -> str:
        return self.store.document_text(doc_id)

    def document_view(self, doc_id: str) -> tuple[str, str, tuple[int, ...]]:
        """(served text, sha256 of the file, page starts) of one index version, so a write in between cannot
        pair one version's text with another's ETag. KeyError if unknown."""
        store = self.store
        view = getattr(store, "document_view", None)  # a live store (milvus) reads them as one revision
        if view is not None:
            return view(doc_id)
        return store.document_text(doc_id), store.documents[doc_id].sha256, tuple(store.page_starts(doc_id))

    def document_sha(self, doc_id: str) -> str:
        """The indexed version's sha256 (of the file's bytes). KeyError if unknown."""
        return document_sha(self.store, doc_id)

    def page_starts(self, doc_id: str) -> tuple[int, ...]:
        """Where each page of a PDF starts in its served text; () for other formats. KeyError if unknown."""
        return self.store.page_starts(doc_id)

    @property
    def uploads_in_corpus_folder(self) -> bool:
        """Whether uploads are written into the corpus folder (FAISS) or kept only in the store (Milvus, where a
        file of the folder whose document was deleted through the API stays there and does not take its name)."""
        return self.settings.store == "faiss"

    def document_original(self, doc_id: str) -> Path:
        """The indexed document's original file in the corpus folder (e.g. the .pdf). KeyError when
        the document is not indexed, FileNotFoundError when it is but its file is gone."""
        if doc_id not in self.store.documents:
            raise KeyError(doc_id)
        corpus = Path(self.settings.corpus_dir).resolve()
        path = (corpus / doc_id).resolve()
        if corpus not in path.parents:
            raise KeyError(doc_id)
        if not path.is_file():
            raise FileNotFoundError(doc_id)
        return path

    def add_documents(self, files: list[tuple[str, bytes]]) -> list[str]:
        """Store and index new documents, all or nothing (DocumentError: a bad file, 409 a taken
        name). Crash-consistent: see qa.writes."""
        with self._write_lock:
            state = self._require()
            store, ids = self.writer.add(files, state.store, self._load_store)
            self._adopt(store)
        return ids

    def replace_document(self, doc_id: str, data: bytes, if_match: str | None) -> bool:
        """Replace a document's bytes if its sha256 still matches ``if_match``; the old bytes go to
        the trash. Returns False when the bytes were the same already."""
        with self._write_lock:
            state = self._require()
            store, changed = self.writer.replace(doc_id, data, if_match, state.store, self._load_store)
            self._adopt(store)
        return changed

    def remove_document(self, doc_id: str) -> None:
        """Remove a document from the index; its file moves to the trash. KeyError: unknown."""
        with self._write_lock:
            state = self._require()
            store = self.writer.delete(doc_id, state.store, self._load_store)
            self._adopt(store)

    def restore_document(self, doc_id: str, entry: str | None = None):
        """Bring the newest trashed version of ``doc_id`` back (KeyError: none in the trash)."""
        with self._write_lock:
            state = self._require()
            store, restored = self.writer.restore(doc_id, state.store, self._load_store, entry=entry)
            self._adopt(store)
        return restored

    def _adopt(self, store) -> None:
        """After a write: serve ``store`` unless :meth:`_swap_in` already does (or the write changed nothing)."""
        if self._state is None or self._state.store is not store:
            self._state = self._make_state(store)

    def trash(self) -> list:
        self._require()
        return self.writer.trash()

    def active_version(self) -> str:
        store = self._require().store
        path = getattr(store, "path", None)
        return path.name if path is not None else f"{getattr(store, 'name', 'store')}-generation-{store.generation}"

    def reload_if_changed(self) -> bool:
        """Swap to the active index version on disk if another process (``qa index``, ``qa
        restore``) committed a new one. Skipped while a write of this process runs."""
        from qa.index_store import active_version_name

        if self._state is None or self.settings.store != "faiss":
            return False  # a live store (milvus) has nothing to reload
        active = active_version_name(self.settings.index_dir)
        if active is None or active == self._state.store.path.name:
            return False
        if not self._write_lock.acquire(blocking=False):
            return False
        try:
            if self._state.store.path.name == active_version_name(self.settings.index_dir):
                return False
            store = self._load_store()
            self._state = self._make_state(store)
            logger.warning("switched to index version %s", store.path.name)
            return True
        finally:
            self._write_lock.release()
