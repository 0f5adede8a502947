"""The nouns of the service. Internal records are dataclasses; HTTP/CLI boundaries use pydantic models.

Offsets everywhere are Python code-point offsets into the document text exactly as
``open(path, encoding="utf-8").read()`` returns it (universal newlines: CRLF reads as "\\n";
a UTF-8 BOM is kept as U+FEFF). So for every citation: ``text[start:end] == citation.text``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, Field, computed_field


@dataclass(frozen=True)
class Document:
    id: str  # path relative to the corpus root, with "/" separators
    text: str  # the served text: what offsets index (a converted format's extracted text)
    sha256: str  # of the file's bytes
    size: int  # bytes on disk
    converter: str = "text"  # qa.converters name: text, pdf, docx, html
    converter_version: str = ""  # library + rule versions that produced ``text``
    page_starts: tuple[int, ...] = ()  # paged formats: offset in ``text`` where each page starts


@dataclass(frozen=True)
class Chunk:
    document: str
    start: int
    end: int
    text: str  # == document_text[start:end]
    # stable id (qa.store.protocol.chunk_id: document + ordinal + content hash); set by the stores,
    # not part of equality (a chunk is its document and offsets)
    id: str = field(default="", compare=False)


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its score (higher is better) and 1-based rank."""

    chunk: Chunk
    score: float
    rank: int
    scores: dict[str, float] = field(default_factory=dict)  # per-retriever scores, e.g. dense/bm25


class Span(BaseModel):
    document: str
    start: int
    end: int


class Citation(BaseModel):
    """One place in one document that supports an answer."""

    document: str
    start: int = Field(description="code-point offset of the answer's first character")
    end: int = Field(description="code-point offset one past the answer's last character")
    text: str = Field(description="document_text[start:end]")
    score: float = Field(description="reader confidence for this occurrence, 0-1")
    context: str = Field(description="the surrounding sentence(s): document_text[context_start:context_end]")
    context_start: int
    context_end: int
    page: int | None = Field(None, description="1-based page of `start` in a paged document (PDF); null otherwise")


class Answer(BaseModel):
    """An answer is its text, one confidence, and where it stands: ``citations``, best first (never empty).

    The answer's own place (document, offsets, context, page) is its first citation: ``answer.top``.
    """

    text: str
    score: float = Field(description="calibrated confidence 0-1, comparable across passages")
    citations: list[Citation] = Field(min_length=1, description="every supporting occurrence, best first; "
                                                                 "citations[0] is where the answer is shown")

    @property
    def top(self) -> Citation:
        """The best citation: the place the answer is shown."""
        return self.citations[0]

    @computed_field(description="1-based page of the best citation in a paged document (PDF); null otherwise")
    @property
    def page(self) -> int | None:
        return self.citations[0].page


class PassageOut(BaseModel):
    document: str
    start: int
    end: int
    score: float
    rank: int
    text: str


class AskResult(BaseModel):
    question: str
    answer_found: bool
    answers: list[Answer]
    passages: list[PassageOut]
    no_answer_score: float = Field(description="reader's confidence that the documents hold no answer, 0-1")
    best_guess: Answer | None = Field(None, description="the best candidate answer whether or not it was given: "
                                                        "when answer_found is false this is the guess the service "
                                                        "did not trust enough (score below QA_MIN_CONFIDENCE)")
    passages_read: int = Field(0, description="passages the reader read: all of them, or fewer when the best "
                                              "ones already held a confident answer (QA_READER_FIRST_PASSAGES)")
    timing_ms: dict[str, float] = Field(default_factory=dict)
