"""HTTP request/response models of the API (the answer itself is ``qa.types.AskResult``)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

#: API bounds for the optional knobs of /ask (Settings may allow more internally).
TOP_K_MAX = 20
MAX_ANSWERS_MAX = 10


class AskRequestBase(BaseModel):
    """Body of ``POST /ask``. The concrete class (with the configured length limit) is built by
    :func:`ask_request_model`. Unknown fields are refused: ``{"k": 3}`` meant ``top_k`` and must not be
    silently ignored."""

    model_config = ConfigDict(extra="forbid")

    question: str
    top_k: int | None = Field(
        None, ge=1, le=TOP_K_MAX, description="passages to retrieve (default: Settings.top_k)"
    )
    max_answers: int | None = Field(
        None, ge=1, le=MAX_ANSWERS_MAX, description="answers to return at most (default: Settings.max_answers)"
    )

    @field_validator("top_k", "max_answers", mode="before")
    @classmethod
    def _json_integer(cls, v: Any) -> Any:
        # As JSON Schema's "integer": true/false and "3" are not integers (1.0 is). Pydantic's lax
        # mode would coerce them.
        if isinstance(v, (bool, str)):
            raise ValueError("must be an integer")
        return v

    @field_validator("question")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("question must not be empty or whitespace")
        if not re.search(r"\w", v):  # NUL, U+200B, a BOM, "?" alone (said in the schema's description)
            raise ValueError("question must contain a letter or digit")
        return v.strip()


def ask_request_model(max_question_chars: int) -> type[AskRequestBase]:
    """``AskRequest`` with ``question`` limited to ``max_question_chars`` code points, so that the
    limit shows in the OpenAPI schema too."""
    return create_model(
        "AskRequest",
        __base__=AskRequestBase,
        question=(
            str,
            Field(
                ...,
                min_length=1,
                max_length=max_question_chars,
                description=f"the question, 1-{max_question_chars} characters, with at least one letter or digit",
                examples=["When did the protests in Kazakhstan begin?"],
                # no `pattern` for "a letter or digit somewhere": JSON Schema's regular expressions (ECMA-262)
                # read \w as ASCII only, so a schema pattern would call "¿Qué?" or "Когда?" invalid; the
                # validator enforces it (Python's Unicode \w), as the description says
            ),
        ),
    )


class DocumentOut(BaseModel):
    id: str = Field(description='path relative to the corpus folder, "/"-separated')
    size: int = Field(description="bytes on disk")
    sha256: str = Field(description="of the file's bytes")
    chunk_count: int = Field(description="chunks indexed for retrieval")
    converter: str = Field("text", description="what extracted the served text: text, pdf, docx or html")
    pages: int | None = Field(None, description="pages of a PDF; null for other formats")


class DocumentList(BaseModel):
    documents: list[DocumentOut]
    total: int = Field(description="how many documents are indexed (all of them, whatever offset and limit ask)")


class DocumentText(BaseModel):
    id: str
    text: str = Field(description="exactly the text that start/end offsets index (Python code points)")
    length: int = Field(description="len(text) in code points")
    page_starts: list[int] | None = Field(None, description="PDF: offset in text where each page begins "
                                                            "(page n starts at page_starts[n-1]); null otherwise")


class UploadResult(BaseModel):
    added: list[str] = Field(description="ids of the documents stored and indexed")
    documents: list[DocumentOut] = Field(description="the added documents as now indexed")


class DeleteResult(BaseModel):
    id: str
    deleted: bool = True
    trash_entry: str | None = Field(None, description="where the file went: restore it with "
                                                      "POST /documents/{id}/restore")


_GONE = ("the document as now indexed; null when another replica (QA_STORE=milvus) deleted it right after this "
         "write (the version written is then in the trash)")


class ReplaceResult(BaseModel):
    id: str
    replaced: bool = Field(description="false when the new bytes equal the current ones")
    document: DocumentOut | None = Field(description=_GONE)


class TrashEntryOut(BaseModel):
    entry: str
    id: str
    sha256: str
    size: int
    deleted_at: str
    reason: str = Field(description='"deleted" or "replaced"')


class TrashList(BaseModel):
    entries: list[TrashEntryOut] = Field(description="newest first")


class RestoreResult(BaseModel):
    id: str
    restored_from: str = Field(description="the trash entry")
    document: DocumentOut | None = Field(description=_GONE)


class JobOut(BaseModel):
    id: str
    kind: str
    status: str = Field(description='"queued", "running", "done" or "failed"')
    created_at: str
    finished_at: str | None = None
    result: dict[str, Any] | None = Field(None, description="the write's result when done (e.g. an UploadResult)")
    error: dict[str, Any] | None = Field(None, description="{status, error, message} when failed")


class Health(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    ready: bool
    status: str = Field(description='"ready", "starting" or "failed"')
    reason: str | None = Field(None, description="why the service is not ready")
    documents: int | None = Field(None, description="documents indexed, when ready")
    reader_runtime: str | None = Field(None, description='how the reader runs, when ready: "torch-bf16" '
                                                         '(CPUs with AMX), "torch-fp32" (QA_READER_PRECISION=fp32), "onnxruntime-int8" '
                                                         '(QA_READER_PRECISION=int8), "torch-int8" (QA_READER_PRECISION=int8-torch, and auto on x86 CPUs without AMX), '
                                                         '"openvino-fp32|bf16" '
                                                         '(QA_READER_BACKEND=openvino) or "torch-cuda-bf16|fp16|fp32"')
    query_runtime: str | None = Field(None, description='how questions are embedded, when ready: "int8" '
                                                        '(QA_QUERY_PRECISION=auto on the CPU with the shipped scales) '
                                                        'or "fp32"; documents are always embedded in fp32')
    reader_token_keep: float | None = Field(None, description="share of each passage's tokens the reader's last "
                                                              "layers compute (QA_READER_TOKEN_KEEP; 1.0: every token)")
    busy_first_passages: int | None = Field(None, description="passages read first by a question that waits its "
                                                              "turn, when ready (QA_BUSY_FIRST_PASSAGES; 0: off)")
    writes: str | None = Field(None, description='who may write: "open" (loopback, no keys), "key" (a write '
                                                 'key is needed) or "read_only" (no keys, not loopback)')


class ErrorResponse(BaseModel):
    """Every error response has this shape."""

    error: str = Field(description="machine-readable code, e.g. invalid_request, not_found, not_ready")
    message: str = Field(description="human-readable explanation")
    details: list[dict[str, Any]] | None = Field(None, description="per-field problems (validation errors)")
