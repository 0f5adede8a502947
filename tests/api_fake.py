"""A small in-memory pipeline honoring qa.pipeline.QAPipeline's interface, for fast API tests.

Its "reader" picks the sentence sharing most words with the question and answers with that
sentence, so answers are real spans of real documents: ``text[start:end] == answer.text``.
Documents live in ``settings.corpus_dir`` like the real pipeline's (uploads are written there) and are
converted by qa.converters like the real pipeline's (PDF/DOCX/HTML served as extracted text; PDF
answers and citations carry ``page`` from the same helper the real pipeline uses).
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from qa.config import Settings
from qa.converters import add_pages
from qa.ingest import document_from_bytes, load_corpus
from qa.types import Answer, AskResult, Citation, Document, PassageOut

WORD = re.compile(r"\w+")
SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
STOP = {"the", "a", "an", "of", "in", "is", "was", "what", "when", "did", "who", "to", "and", "do", "does", "how"}


@dataclass(frozen=True)
class FakeDocInfo:
    id: str
    size: int
    sha256: str
    chunk_count: int
    converter: str = "text"
    pages: int | None = None


class FakeLoadError(Exception):
    pass


class FakePipeline:
    def __init__(self, settings: Settings, fail_warm_up: str | None = None):
        self.settings = settings
        self.fail_warm_up = fail_warm_up
        self._lock = threading.Lock()
        self._docs: dict[str, tuple[str, bytes]] = {}
        self._pages: dict[str, tuple[int, ...]] = {}
        self._converter: dict[str, str] = {}
        self.asked: list[tuple[str, int | None, int | None]] = []
        self.busy: list[bool] = []  # per ask: whether the API said other questions were waiting
        self.warmed = False

    def warm_up(self) -> None:
        if self.fail_warm_up:
            raise FakeLoadError(self.fail_warm_up)
        docs, _ = load_corpus(Path(self.settings.corpus_dir))
        self._docs = {d.id: (d.text, (Path(self.settings.corpus_dir) / d.id).read_bytes()) for d in docs}
        self._remember(docs)
        self.warmed = True

    def _remember(self, docs: list[Document]) -> None:
        self._pages = {**self._pages, **{d.id: d.page_starts for d in docs}}
        self._converter = {**self._converter, **{d.id: d.converter for d in docs}}

    # -- reading
    def documents(self) -> list[FakeDocInfo]:
        docs = dict(self._docs)
        return [
            FakeDocInfo(id=i, size=len(raw), sha256=hashlib.sha256(raw).hexdigest(), chunk_count=max(1, len(t) // 800 + 1),
                        converter=self._converter.get(i, "text"), pages=len(self._pages.get(i, ())) or None)
            for i, (t, raw) in sorted(docs.items())
        ]

    def document_text(self, doc_id: str) -> str:
        return self._docs[doc_id][0]

    def page_starts(self, doc_id: str) -> tuple[int, ...]:
        self._docs[doc_id]  # KeyError if unknown
        return self._pages.get(doc_id, ())

    def document_original(self, doc_id: str) -> Path:
        if doc_id not in self._docs:
            raise KeyError(doc_id)
        path = Path(self.settings.corpus_dir) / doc_id
        if not path.is_file():
            raise KeyError(doc_id)
        return path

    def ask(self, question: str, top_k: int | None = None, max_answers: int | None = None,
            busy: bool = False) -> AskResult:
        self.asked.append((question, top_k, max_answers))
        self.busy.append(busy)
        top_k = top_k or self.settings.top_k
        max_answers = max_answers or self.settings.max_answers
        q = {w.lower() for w in WORD.findall(question)} - STOP
        scored = []
        for doc_id, (text, _) in sorted(self._docs.items()):
            for m in SENTENCE.finditer(text):
                s = m.group().strip()
                if not s:
                    continue
                start = m.start() + (len(m.group()) - len(m.group().lstrip()))
                end = start + len(s)
                overlap = len(q & {w.lower() for w in WORD.findall(s)})
                scored.append((overlap, doc_id, start, end, text))
        scored.sort(key=lambda x: (-x[0], x[1], x[2]))
        passages = [
            PassageOut(document=d, start=s, end=e, score=float(o), rank=i + 1, text=t[s:e])
            for i, (o, d, s, e, t) in enumerate(scored[:top_k])
        ]
        answers = []
        for o, d, s, e, t in scored[:max_answers]:
            if o == 0:
                break
            score = min(1.0, o / max(1, len(q)))
            cit = Citation(document=d, start=s, end=e, text=t[s:e], score=score, context=t[s:e],
                           context_start=s, context_end=e)
            answers.append(Answer(text=t[s:e], score=score, citations=[cit]))
        guess = answers[0] if answers else None
        if guess is None and passages:  # abstaining: the best guess is the top passage, with a low score
            p = passages[0]
            cit = Citation(document=p.document, start=p.start, end=p.end, text=p.text, score=0.05, context=p.text,
                           context_start=p.start, context_end=p.end)
            guess = Answer(text=p.text, score=0.05, citations=[cit])
        return add_pages(AskResult(question=question, answer_found=bool(answers), answers=answers, passages=passages,
                                   no_answer_score=0.1 if answers else 0.9, best_guess=guess,
                                   # as the cascade reads when the API says busy: the best passage only
                                   passages_read=min(1, len(passages)) if busy else len(passages),
                                   timing_ms={"total": 1.0}), self.page_starts)

    # -- writing
    def add_documents(self, files: list[tuple[str, bytes]]) -> list[str]:
        with self._lock:
            corpus = Path(self.settings.corpus_dir)
            docs = [document_from_bytes(name, raw) for name, raw in files]  # validates (ConversionError)
            for (name, raw), doc in zip(files, docs):
                (corpus / name).write_bytes(raw)
                self._docs = {**self._docs, name: (doc.text, raw)}
            self._remember(docs)
            return [name for name, _ in files]

    def remove_document(self, doc_id: str) -> None:
        with self._lock:
            if doc_id not in self._docs:
                raise KeyError(doc_id)
            (Path(self.settings.corpus_dir) / doc_id).unlink(missing_ok=True)
            docs = dict(self._docs)
            del docs[doc_id]
            self._docs = docs
