"""The question-answering pipeline: an explicit composition of index store, retriever and reader.

    pipeline = QAPipeline(settings); pipeline.warm_up(); result = pipeline.ask("...")

warm_up() loads the index (building it from the corpus on first run), the embedder, the retriever
and the reader, once per process. Writers (add/remove documents) build a new index version and swap
one reference to an immutable ``_State``; readers take that reference once per question, so every
answer comes from one consistent index, old or new, never half of each.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from qa.config import Settings, get_settings
from qa.converters import SUPPORTED_SUFFIXES, ConversionError, add_pages, converter_for
from qa.index_store import DocumentInfo, IndexStore, build_or_update, load_or_build
from qa.types import AskResult, PassageOut

logger = logging.getLogger(__name__)


class QuestionError(ValueError):
    """The question cannot be asked (empty, too long)."""


class DocumentError(ValueError):
    """An uploaded document is refused (name, type, encoding, size). ``code`` and ``status`` say how an
    HTTP layer should report it."""

    def __init__(self, message: str, code: str = "invalid_document", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class _State:
    store: IndexStore
    retriever: object


MAX_NAME_BYTES = 255
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def shown(name: str) -> str:
    """A name quoted for an error message, control/bidi characters escaped (emoji etc. kept)."""
    return "'" + _CONTROL_CHARS.sub(lambda m: m.group().encode("unicode_escape").decode(), name.replace("'", "\\'")) + "'"


def check_document_name(name: str | None) -> str:
    """A safe, flat file name of a supported type (qa.converters) inside the corpus folder, or DocumentError."""
    if not name:
        raise DocumentError("every uploaded file needs a file name", "invalid_file_name")
    if "/" in name or "\\" in name:
        raise DocumentError(f"file name {shown(name)} must not contain path separators", "invalid_file_name")
    if ".." in name:
        raise DocumentError(f"file name {shown(name)} must not contain '..'", "invalid_file_name")
    if name.startswith("."):
        raise DocumentError(f"file name {shown(name)} must not start with a dot", "invalid_file_name")
    if _CONTROL_CHARS.search(name):
        raise DocumentError(f"file name {shown(name)} must not contain control characters", "invalid_file_name")
    if name != name.strip():
        raise DocumentError(f"file name {shown(name)} must not start or end with whitespace", "invalid_file_name")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise DocumentError(f"file name {shown(name)} is longer than {MAX_NAME_BYTES} bytes", "invalid_file_name")
    if not name.lower().endswith(SUPPORTED_SUFFIXES) or name.lower() in SUPPORTED_SUFFIXES:
        raise DocumentError(f"file {shown(name)}: only {', '.join(SUPPORTED_SUFFIXES)} files can be uploaded",
                            "unsupported_file_type")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise DocumentError(f"file name {shown(name)} is not valid Unicode", "invalid_file_name") from None
    return name


def check_document_content(name: str, data: bytes, limit: int) -> str:
    """The upload's served text if it is at most ``limit`` bytes and converts to non-empty text, or
    DocumentError. ``.txt``/``.md`` must be UTF-8 without NULs; other formats are converted by
    qa.converters, whose error codes (pdf_encrypted, pdf_no_text, docx_corrupt, docx_zip_bomb,
    html_no_text, ...) are passed on."""
    if len(data) > limit:
        raise DocumentError(f"file {shown(name)} is larger than the limit of {limit} bytes", "file_too_large", 413)
    conv = converter_for(name)
    if conv is not None and conv.name != "text":
        try:
            return conv.convert(data).text
        except ConversionError as e:
            raise DocumentError(f"file {shown(name)} {e}", e.code) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DocumentError(f"file {shown(name)} is not UTF-8 text ({e.reason} at byte {e.start})", "not_utf8") from None
    if "\x00" in text:
        raise DocumentError(f"file {shown(name)} contains NUL bytes; only plain text can be uploaded", "not_text")
    if not text.strip():
        raise DocumentError(f"file {shown(name)} is empty or only whitespace", "empty_file")
    return text


class QAPipeline:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._state: _State | None = None
        self._write_lock = threading.Lock()
        self.embedder = None
        self.chunker = None
        self.reader = None

    # ------------------------------------------------------------------ loading
    def warm_up(self, show_progress: bool = False) -> "QAPipeline":
        if self._state is not None:
            return self
        from qa.chunking import Chunker
        from qa.embedding import get_embedder
        from qa.reader.reader import ExtractiveReader

        s = self.settings
        self.embedder = get_embedder(s.resolved_embedding_model(), s.embedding_batch_size).warm_up()
        self.chunker = Chunker.from_settings(s)
        store = load_or_build(s, self.embedder, self.chunker, announce=logger.warning, show_progress=show_progress)
        self.reader = ExtractiveReader.from_settings(s)
        self.reader.warm_up()
        self._state = self._make_state(store)
        return self

    def _make_state(self, store: IndexStore) -> _State:
        from qa.retriever.hybrid import make_retriever

        retriever = make_retriever(self.settings.retrieval_mode, store, self.embedder, self.settings)
        if hasattr(retriever, "warm_up"):
            retriever.warm_up()
        return _State(store, retriever)

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
        if len(q) > self.settings.max_question_chars:
            raise QuestionError(f"the question is {len(q)} characters long; the limit is "
                                f"{self.settings.max_question_chars}")
        return q

    def ask(self, question: str, top_k: int | None = None, max_answers: int | None = None) -> AskResult:
        q = self.check_question(question)
        k = top_k or self.settings.top_k
        n = max_answers or self.settings.max_answers
        state = self._require()  # one consistent index for the whole question
        t0 = time.perf_counter()
        passages = state.retriever.run(q, k)
        t1 = time.perf_counter()
        out = self.reader.run(q, passages, state.store.document_text, max_answers=n)
        t2 = time.perf_counter()
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
        store = self.store
        return [store.documents[d] for d in store.document_ids()]

    def document_text(self, doc_id: str) -> str:
        return self.store.document_text(doc_id)

    def page_starts(self, doc_id: str) -> tuple[int, ...]:
        """Where each page of a PDF starts in its served text; () for other formats. KeyError if unknown."""
        return self.store.page_starts(doc_id)

    def document_original(self, doc_id: str) -> Path:
        """The indexed document's original file in the corpus folder (e.g. the .pdf). KeyError when
        the document is not indexed or its file is gone."""
        if doc_id not in self.store.documents:
            raise KeyError(doc_id)
        corpus = Path(self.settings.corpus_dir).resolve()
        path = (corpus / doc_id).resolve()
        if corpus not in path.parents or not path.is_file():
            raise KeyError(doc_id)
        return path

    def add_documents(self, files: list[tuple[str, bytes]]) -> list[str]:
        """Validate every file first, then write them into the corpus folder and index incrementally.

        Nothing is written unless every file is valid; if indexing fails, the files written are
        removed again and the previous index stays active.
        """
        s = self.settings
        checked: list[tuple[str, str]] = []
        seen: set[str] = set()
        for name, data in files:
            name = check_document_name(name)
            if name in seen:
                raise DocumentError(f"file {shown(name)} is given twice", "duplicate_file")
            seen.add(name)
            checked.append((name, check_document_content(name, data, s.max_upload_bytes)))
        corpus = Path(s.corpus_dir)
        with self._write_lock:
            state = self._require()
            corpus.mkdir(parents=True, exist_ok=True)
            written: list[tuple[Path, bytes | None]] = []
            try:
                for (name, _), (_, data) in zip(checked, files):
                    target = corpus / name
                    if target.resolve().parent != corpus.resolve():
                        raise DocumentError(f"file name {shown(name)} escapes the corpus folder", "invalid_file_name")
                    previous = target.read_bytes() if target.exists() else None
                    tmp = corpus / f".{name}.upload"
                    tmp.write_bytes(data)
                    os.replace(tmp, target)
                    written.append((target, previous))
                # Only the uploaded files are read (and converted); the other documents stay as indexed.
                store = build_or_update(corpus, s, self.embedder, self.chunker, previous=state.store,
                                        paths=[target for target, _ in written])
            except BaseException:
                for target, previous in written:
                    if previous is None:
                        target.unlink(missing_ok=True)
                    else:
                        target.write_bytes(previous)
                raise
            self._state = self._make_state(store)
        return [name for name, _ in checked]

    def remove_document(self, doc_id: str) -> None:
        with self._write_lock:
            state = self._require()
            if doc_id not in state.store.documents:
                raise KeyError(doc_id)
            corpus = Path(self.settings.corpus_dir).resolve()
            path = (corpus / doc_id).resolve()
            if corpus not in path.parents:
                raise KeyError(doc_id)
            backup = path.read_bytes() if path.exists() else None
            path.unlink(missing_ok=True)
            try:
                store = build_or_update(corpus, self.settings, self.embedder, self.chunker, previous=state.store)
            except BaseException:
                if backup is not None:
                    path.write_bytes(backup)
                raise
            self._state = self._make_state(store)
