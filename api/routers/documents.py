"""The document endpoints: list, read, upload, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import PlainTextResponse

from api.deps import MAX_FILES_PER_UPLOAD, ServiceState, doc_out, get_service, in_thread, ready_pipeline, responses
from api.errors import ApiError
from api.models import DeleteResult, DocumentList, DocumentOut, DocumentText, UploadResult
from qa.config import Settings
from qa.pipeline import DocumentError, check_document_content, check_document_name, shown


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["documents"])

    @router.get("/documents", response_model=DocumentList, summary="Indexed documents", responses=responses(503))
    async def list_documents(pipeline: Any = Depends(ready_pipeline)) -> DocumentList:
        infos = await anyio.to_thread.run_sync(pipeline.documents)
        return DocumentList(documents=[doc_out(d) for d in infos])

    @router.get(
        "/documents/{doc_id:path}",
        response_model=DocumentText,
        summary="A document's text, exactly as answer offsets index it",
        description=(
            "JSON `{id, text, length}` by default; with `?raw=true` the bare text as "
            "`text/plain; charset=utf-8`. Offsets are Python code points (not UTF-16 units)."
        ),
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
            **responses(404, 422, 503),
        },
    )
    async def get_document(
        doc_id: str,
        raw: bool = Query(False, description="return text/plain instead of JSON"),
        pipeline: Any = Depends(ready_pipeline),
    ):
        try:
            text = await anyio.to_thread.run_sync(pipeline.document_text, doc_id)
        except KeyError:
            raise ApiError(404, "not_found", f"unknown document {shown(doc_id)}") from None
        if raw:
            return PlainTextResponse(text, media_type="text/plain; charset=utf-8")
        return DocumentText(id=doc_id, text=text, length=len(text))

    @router.post(
        "/documents",
        response_model=UploadResult,
        status_code=201,
        summary="Upload .txt/.md files: stored in the corpus folder and indexed",
        description=(
            f"Multipart field `files`, one or more (at most {MAX_FILES_PER_UPLOAD}). Each must be "
            f"UTF-8 text, not empty, at most Settings.max_upload_bytes ({settings.max_upload_bytes}) "
            "bytes, with a plain .txt/.md name (no path separators, '..', leading dot or control "
            "characters) that is not taken yet. All or nothing: if any file is rejected, nothing is "
            "stored or indexed."
        ),
        responses=responses(400, 409, 413, 422, 503),
    )
    async def upload_documents(
        files: list[UploadFile] = File(..., description="the .txt/.md files"),
        pipeline: Any = Depends(ready_pipeline),
        service: ServiceState = Depends(get_service),
    ) -> UploadResult:
        if not files:
            raise ApiError(400, "no_files", "no files uploaded (multipart field 'files')")
        if len(files) > MAX_FILES_PER_UPLOAD:
            raise ApiError(400, "too_many_files", f"at most {MAX_FILES_PER_UPLOAD} files per upload")
        corpus = Path(settings.corpus_dir).resolve()
        limit = settings.max_upload_bytes
        batch: list[tuple[str, bytes]] = []
        seen: set[str] = set()
        for f in files:
            try:
                name = check_document_name(f.filename)
                if name in seen:
                    raise DocumentError(f"file {shown(name)} is given twice", "duplicate_file")
                seen.add(name)
                data = await f.read(limit + 1)
                check_document_content(name, data, limit)
            except DocumentError as e:
                raise ApiError(e.status, e.code, str(e)) from None
            batch.append((name, data))

        def store() -> tuple[list[str], dict[str, DocumentOut]]:
            # Check and add under one lock, so two uploads of the same name cannot both pass.
            with service.write_lock:
                existing = {doc_out(d).id for d in pipeline.documents()}
                for name, _ in batch:
                    if name in existing or (corpus / name).exists():
                        raise ApiError(409, "already_exists",
                                       f"a document named {shown(name)} already exists; delete it first to replace it")
                try:
                    added = list(pipeline.add_documents(batch))
                except DocumentError as e:
                    raise ApiError(e.status, e.code, str(e)) from None
                except ValueError as e:  # any other refusal from the indexing layer
                    raise ApiError(400, "invalid_document", str(e) or "invalid document") from None
                return added, {doc_out(d).id: doc_out(d) for d in pipeline.documents()}

        added, infos = await in_thread(service, store)
        return UploadResult(added=added, documents=[infos[i] for i in added if i in infos])

    @router.delete(
        "/documents/{doc_id:path}",
        response_model=DeleteResult,
        summary="Remove a document from the corpus folder and the index",
        responses=responses(404, 503),
    )
    async def delete_document(
        doc_id: str,
        pipeline: Any = Depends(ready_pipeline),
        service: ServiceState = Depends(get_service),
    ) -> DeleteResult:
        def remove() -> None:
            with service.write_lock:
                if doc_id not in {doc_out(d).id for d in pipeline.documents()}:
                    raise ApiError(404, "not_found", f"unknown document {shown(doc_id)}")
                try:
                    pipeline.remove_document(doc_id)
                except KeyError:
                    raise ApiError(404, "not_found", f"unknown document {shown(doc_id)}") from None

        await in_thread(service, remove)
        return DeleteResult(id=doc_id)

    return router
