"""The document endpoints: list, read, upload, replace (If-Match), delete (to the trash), restore."""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional
from urllib.parse import quote

import anyio.to_thread
from fastapi import APIRouter, Depends, File, Header, Query, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.background import BackgroundTask

from api.deps import MAX_FILES_PER_UPLOAD, ServiceState, doc_out, get_service, ready_pipeline, responses
from api.errors import ApiError
from api.models import (
    DeleteResult,
    DocumentList,
    DocumentOut,
    DocumentText,
    JobOut,
    ReplaceResult,
    RestoreResult,
    UploadResult,
)
from api.security import require_read, require_write
from qa.config import Settings
from qa.pipeline import DocumentError, check_document_content, check_document_name, shown
from qa.writes import name_taken

#: A trash entry's name (`GET /trash`): its time and a random suffix, e.g. 20261207T204500123456-1a2b3c.
TRASH_ENTRY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
MAX_LIST_LIMIT = 10_000  # GET /documents?limit=: one page at most (no limit: every document)
_NOT_IMPLEMENTED = "this pipeline cannot {what}"

_MEDIA_TYPES = {".pdf": "application/pdf", ".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
                ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                ".md": "text/markdown; charset=utf-8", ".txt": "text/plain; charset=utf-8"}


def original_media_type(name: str) -> str:
    return _MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def _open_hashed(path: Path) -> tuple[str, BinaryIO, str, int]:
    handle = open(path, "rb")
    try:
        digest, size = hashlib.sha256(), 0
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return path.name, handle, digest.hexdigest(), size


class OriginalMismatch(Exception):
    """The file in the corpus folder is not the indexed version."""


def open_original(pipeline: Any, doc_id: str, write_lock: Any) -> tuple[str, BinaryIO, str, int]:
    """The original file, opened, with the sha256 and size of exactly the bytes that will be sent: a replace
    that renames another version into place meanwhile changes neither (it used to send one version under the
    other's ETag, or fail with a 500 when the file moved between the headers and the body). A file missing,
    or not the indexed version, while a write of this server moves files is looked up again once that write
    is done, and after picking up a version another process committed (a FAISS replica on the same folders:
    it used to answer 404 until its next reload); a file that is still not the indexed version (edited by hand, or a version written through
    another replica of a shared store) is OriginalMismatch, not sent under an ETag that PUT would refuse."""
    expected = getattr(pipeline, "document_sha", None)

    def attempt() -> tuple[str, BinaryIO, str, int]:
        got = _open_hashed(pipeline.document_original(doc_id))
        if expected is not None and got[2] != expected(doc_id):
            got[1].close()
            raise OriginalMismatch(doc_id)
        return got

    try:
        return attempt()
    except (FileNotFoundError, OriginalMismatch):
        with write_lock:
            pass
        reload = getattr(pipeline, "reload_if_changed", None)
        if reload is not None:  # another process sharing the folders (a FAISS replica) committed a newer version
            reload()
        return attempt()


def original_response(name: str, handle: BinaryIO, sha: str, size: int) -> StreamingResponse:
    """Always a download (never rendered here: an uploaded .html must not run on this origin); its ETag is the
    sha256 of the bytes sent."""
    async def body():
        try:
            while block := await anyio.to_thread.run_sync(handle.read, 1 << 16):
                yield block
        finally:
            handle.close()

    quoted = quote(name)
    disposition = (f"attachment; filename*=utf-8''{quoted}" if quoted != name else f'attachment; filename="{name}"')
    return StreamingResponse(body(), media_type=original_media_type(name), background=BackgroundTask(handle.close),
                             headers={"ETag": f'"{sha}"', "Content-Length": str(size),
                                      "Content-Disposition": disposition})


def _plain_id(doc_id: str) -> str:
    """``doc_id`` unless the path is ``/documents/{id}/restore`` (documents end in a file suffix, so it
    can only mean the restore action, which only POST serves)."""
    if doc_id.endswith("/restore"):
        raise ApiError(405, "method_not_allowed", "only POST restores a document", headers={"Allow": "POST"})
    return doc_id


def _spelled(doc_id: str, known: Any) -> str:
    """``doc_id`` as the index spells it: uploads are stored under the NFC form of their name, so the NFD
    spelling of the same name (what macOS file names and some clients send) finds that document too. An id
    that is itself indexed (a file put in the corpus folder under an NFD name) stays as it is.
    ``known``: a callable giving the ids to look in, called only when the two spellings differ."""
    nfc = unicodedata.normalize("NFC", doc_id)
    if nfc == doc_id:
        return doc_id
    ids = known()
    return nfc if doc_id not in ids and nfc in ids else doc_id


def _api_error(e: DocumentError) -> ApiError:
    return ApiError(e.status, e.code, str(e))


def _infos(pipeline: Any) -> dict[str, DocumentOut]:
    return {doc_out(d).id: doc_out(d) for d in pipeline.documents()}


def upload_writer(service: ServiceState, pipeline: Any, corpus: Path, batch: list[tuple[str, bytes]],
                  resumed: bool = False) -> Callable[[], UploadResult]:
    """The write of an upload (all files or none), to run on the writer thread. ``resumed``: a job run again after
    a restart, whose write the journal may already have finished: when every file is indexed with exactly these
    bytes, that is its result (not 409 ``name_taken``)."""
    def store() -> UploadResult:
        with service.write_lock:
            infos = _infos(pipeline)
            if resumed and all(infos.get(name) is not None and infos[name].sha256 == hashlib.sha256(data).hexdigest()
                               for name, data in batch):
                return UploadResult(added=[name for name, _ in batch], documents=[infos[name] for name, _ in batch])
            in_folder = getattr(pipeline, "uploads_in_corpus_folder", True)  # else a file there takes no name
            for name, _ in batch:
                if name in infos or (in_folder and (corpus / name).exists()):
                    raise _api_error(name_taken(name, name in infos))
            try:
                added = list(pipeline.add_documents(batch))
            except DocumentError as e:
                raise _api_error(e) from None
            except ValueError as e:  # any other refusal from the indexing layer
                raise ApiError(400, "invalid_document", str(e) or "invalid document") from None
            infos = _infos(pipeline)
            return UploadResult(added=added, documents=[infos[i] for i in added if i in infos])

    return store


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["documents"])
    read = [Depends(require_read)]
    write = [Depends(require_write)]

    first = "$response.body#/documents/0"

    @router.get("/documents", response_model=DocumentList, summary="Indexed documents", operation_id="list_documents",
                responses={200: {"links": {  # OpenAPI links: what a client (or schemathesis) can do next
                    "GetDocument": {"operationId": "get_document", "parameters": {"doc_id": f"{first}/id"}},
                    "ReplaceDocument": {"operationId": "replace_document",
                                        "parameters": {"doc_id": f"{first}/id", "header.If-Match": f"{first}/sha256"}},
                    "DeleteDocument": {"operationId": "delete_document", "parameters": {"doc_id": f"{first}/id"}},
                }}, **responses(401, 403, 503)}, dependencies=read)
    async def list_documents(
        pipeline: Any = Depends(ready_pipeline),
        offset: int = Query(0, ge=0, description="skip this many documents (in id order)"),
        limit: Optional[int] = Query(None, ge=1, le=MAX_LIST_LIMIT,
                                     description="return at most this many (default: every document)"),
    ) -> DocumentList:
        infos = await anyio.to_thread.run_sync(pipeline.documents)
        page = infos[offset:] if limit is None else infos[offset:offset + limit]
        return DocumentList(documents=[doc_out(d) for d in page], total=len(infos))

    @router.get(
        "/documents/{doc_id:path}",
        operation_id="get_document",
        response_model=DocumentText,
        summary="A document's text, exactly as answer offsets index it",
        description=(
            "JSON `{id, text, length, page_starts}` by default; with `?raw=true` the bare text as "
            "`text/plain; charset=utf-8`; with `?original=true` the original file as uploaded (e.g. "
            "the PDF), as a download. Offsets are Python code points (not UTF-16 units); for a PDF, "
            "`page_starts[i]` is where page i+1 begins in `text`. The `ETag` header is the sha256 of "
            "the file's bytes (send it as If-Match to replace it)."
        ),
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}},
                              **{t.split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
                                 for t in _MEDIA_TYPES.values() if not t.startswith("text/plain")}},
                  "headers": {"ETag": {"description": "sha256 of the file's bytes", "schema": {"type": "string"}}}},
            **responses(401, 403, 404, 409, 422, 503),
        },
        dependencies=read,
    )
    async def get_document(
        doc_id: str,
        raw: bool = Query(False, description="return text/plain instead of JSON"),
        original: bool = Query(False, description="download the original file (PDF, DOCX, HTML, ...)"),
        pipeline: Any = Depends(ready_pipeline),
        service: ServiceState = Depends(get_service),
    ):
        doc_id = _spelled(_plain_id(doc_id), lambda: _infos(pipeline))

        def sha_of() -> str | None:  # the file's sha256: the ETag that PUT's If-Match wants
            info = next((d for d in pipeline.documents() if doc_out(d).id == doc_id), None)
            return doc_out(info).sha256 if info is not None else None

        def lookup() -> tuple[str, str | None, list[int]]:
            view = getattr(pipeline, "document_view", None)
            if view is not None:  # text and sha256 of one index version
                text, sha, pages = view(doc_id)
                return text, sha, list(pages)
            text = pipeline.document_text(doc_id)
            page_starts = getattr(pipeline, "page_starts", None)
            pages = list(page_starts(doc_id)) if page_starts else []
            return text, sha_of(), pages

        try:
            if original:
                got = await anyio.to_thread.run_sync(open_original, pipeline, doc_id, service.write_lock)
                return original_response(*got)
            text, sha, pages = await anyio.to_thread.run_sync(lookup)
        except KeyError:
            raise ApiError(404, "not_found", f"unknown document {shown(doc_id)}") from None
        except FileNotFoundError:  # removed from the corpus folder by hand; the index still serves its text
            if not getattr(pipeline, "uploads_in_corpus_folder", True):  # Milvus: an upload is kept as text only
                raise ApiError(404, "not_found", f"the original file of {shown(doc_id)} is not in this server's "
                               "corpus folder (QA_STORE=milvus keeps an upload as its text only: docs/scaling.md); "
                               "its text is served by GET without ?original") from None
            raise ApiError(404, "not_found", f"the original file of {shown(doc_id)} is no longer in the corpus "
                           "folder (its text is still indexed; `qa index` drops it)") from None
        except OSError as e:  # there but unreadable (permissions, an I/O error): the server's to fix
            raise ApiError(409, "file_unreadable", f"the original file of {shown(doc_id)} in the corpus folder cannot "
                           f"be read on the server ({e.strerror or type(e).__name__}); its text is served by GET "
                           "without ?original") from None
        except OriginalMismatch:
            raise ApiError(404, "not_found", f"the file of {shown(doc_id)} in this server's corpus folder is not "
                           "the indexed version (changed there by hand, or the document was written through "
                           "another replica); its text is served by GET without ?original") from None
        headers = {"ETag": f'"{sha}"'} if sha else {}
        if raw:
            return PlainTextResponse(text, media_type="text/plain; charset=utf-8", headers=headers)
        body = DocumentText(id=doc_id, text=text, length=len(text), page_starts=pages or None)
        return JSONResponse(body.model_dump(), headers=headers)

    @router.post(
        "/documents",
        operation_id="upload_documents",
        response_model=UploadResult,
        status_code=201,
        summary="Upload .txt/.md/.pdf/.docx/.html files: indexed, then stored in the corpus folder",
        description=(
            f"Multipart field `files`, one or more (at most {MAX_FILES_PER_UPLOAD}). Each must be at "
            f"most Settings.max_upload_bytes ({settings.max_upload_bytes}) bytes, with a plain "
            ".txt/.md/.pdf/.docx/.html/.htm name (no path separators, '..', leading dot, control, "
            "bidi or zero-width characters; NFC-normalised) that is not taken yet, and must yield "
            "text: .txt/.md UTF-8 text (`not_utf8`, `not_text`, `empty_file`); a PDF with a text "
            "layer (`pdf_corrupt`, `pdf_encrypted`, `pdf_no_text`); a DOCX (`docx_corrupt`, "
            "`docx_zip_bomb`, `docx_no_text`); HTML with a readable body (`html_no_text`, `html_too_deep`). The "
            "original file is kept (`GET /documents/{id}?original=true`). All or nothing: "
            "if any file is rejected, nothing is stored or indexed. Uploads larger than "
            f"Settings.async_upload_bytes ({settings.async_upload_bytes}) in total answer 202 with "
            "a job to poll at `GET /jobs/{id}`."
        ),
        responses={202: {"model": JobOut, "description": "Accepted: a large upload is indexed in the background"},
                   **responses(400, 401, 403, 409, 413, 422, 503)},
        dependencies=write,
    )
    async def upload_documents(
        files: list[UploadFile] = File(..., description="the .txt/.md/.pdf/.docx/.html files"),
        pipeline: Any = Depends(ready_pipeline),
        service: ServiceState = Depends(get_service),
    ):
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
                # off the event loop: converting a PDF/DOCX/HTML takes a moment
                await anyio.to_thread.run_sync(check_document_content, name, data, limit)
            except DocumentError as e:
                raise _api_error(e) from None
            batch.append((name, data))

        if sum(len(d) for _, d in batch) > settings.async_upload_bytes:
            job = service.writes.submit("upload", upload_writer(service, pipeline, corpus, batch), batch=batch)
            return JSONResponse(JobOut(**vars(job)).model_dump(), status_code=202,
                                headers={"Location": f"/jobs/{job.id}"})
        return await service.writes.run(upload_writer(service, pipeline, corpus, batch))

    @router.put(
        "/documents/{doc_id:path}",
        operation_id="replace_document",
        response_model=ReplaceResult,
        summary="Replace a document's bytes (optimistic: If-Match its current sha256)",
        description=(
            "The body is the new file (same formats and rules as uploads; a PDF/DOCX/HTML is "
            "converted again). `If-Match` must carry the "
            "document's current sha256 (its ETag, from GET /documents/{id} or GET /documents): a "
            "stale one answers 412 and changes nothing. The old bytes go to the trash."
        ),
        openapi_extra={"requestBody": {"required": True, "content": {
            "text/plain": {"schema": {"type": "string"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
        responses=responses(400, 401, 403, 404, 409, 412, 413, 428, 503),
        dependencies=write,
    )
    async def replace_document(
        doc_id: str,
        request: Request,
        if_match: str | None = Header(None, description="the document's current sha256 (ETag)"),
        pipeline: Any = Depends(ready_pipeline),
        service: ServiceState = Depends(get_service),
    ) -> ReplaceResult:
        doc_id = _spelled(_plain_id(doc_id), lambda: _infos(pipeline))
        data = await request.body()
        replace = getattr(pipeline, "replace_document", None)
        if replace is None:
            raise ApiError(400, "unsupported", _NOT_IMPLEMENTED.format(what="replace documents"))

        def run() -> ReplaceResult:
            with service.write_lock:
                if doc_id not in _infos(pipeline):  # 404 before If-Match (428/412) and the body (400) are judged
                    raise ApiError(404, "not_found", f"unknown document {shown(doc_id)}")
                try:
                    changed = replace(doc_id, data, if_match)
                except DocumentError as e:
                    raise _api_error(e) from None
                except KeyError:
                    raise ApiError(404, "not_found", f"unknown document {shown(doc_id)}") from None
                return ReplaceResult(id=doc_id, replaced=changed, document=_infos(pipeline).get(doc_id))

        return await service.writes.run(run)

    @router.delete(
        "/documents/{doc_id:path}",
        operation_id="delete_document",
        response_model=DeleteResult,
        summary="Remove a document from the index; its file moves to the trash (restorable)",
        responses={200: {"links": {"RestoreDocument": {"operationId": "restore_document",
                                                       "parameters": {"doc_id": "$response.body#/id"}}}},
                   **responses(401, 403, 404, 409, 503)},
        dependencies=write,
    )
    async def delete_document(
        doc_id: str,
        pipeline: Any = Depends(ready_pipeline),
        service: ServiceState = Depends(get_service),
    ) -> DeleteResult:
        doc_id = _spelled(_plain_id(doc_id), lambda: _infos(pipeline))

        def remove() -> DeleteResult:
            with service.write_lock:
                if doc_id not in _infos(pipeline):
                    raise ApiError(404, "not_found", f"unknown document {shown(doc_id)}")
                try:
                    pipeline.remove_document(doc_id)
                except KeyError:
                    raise ApiError(404, "not_found", f"unknown document {shown(doc_id)}") from None
                except DocumentError as e:  # its file unreadable; (Milvus) replaced through other replicas meanwhile
                    raise _api_error(e) from None
                trash = getattr(pipeline, "trash", None)
                entry = next((t.entry for t in trash() if t.id == doc_id), None) if trash else None
                return DeleteResult(id=doc_id, trash_entry=entry)

        return await service.writes.run(remove)

    @router.post(
        "/documents/{doc_id:path}/restore",
        operation_id="restore_document",
        response_model=RestoreResult,
        summary="Bring a deleted (or replaced) document back from the trash: the same bytes, indexed again",
        responses=responses(401, 403, 404, 409, 503),
        dependencies=write,
    )
    async def restore_document(
        doc_id: str,
        entry: Optional[str] = Query(
            None, pattern=TRASH_ENTRY_PATTERN, max_length=64,
            description="which trashed version to bring back (`entry` of `GET /trash`); the newest one of this "
                        "document when left out"),
        pipeline: Any = Depends(ready_pipeline),
        service: ServiceState = Depends(get_service),
    ) -> RestoreResult:
        trash = getattr(pipeline, "trash", None)
        doc_id = _spelled(doc_id, lambda: {t.id for t in trash()} if trash else set())
        restore = getattr(pipeline, "restore_document", None)
        if restore is None:
            raise ApiError(404, "not_found", f"nothing in the trash for {shown(doc_id)}")

        def run() -> RestoreResult:
            with service.write_lock:
                try:
                    restored = restore(doc_id, entry=entry) if entry is not None else restore(doc_id)
                except KeyError:
                    which = f"entry {entry} of {shown(doc_id)}" if entry is not None else shown(doc_id)
                    raise ApiError(404, "not_found", f"nothing in the trash for {which}") from None
                except DocumentError as e:
                    raise _api_error(e) from None
                return RestoreResult(id=doc_id, restored_from=restored.entry, document=_infos(pipeline).get(doc_id))

        return await service.writes.run(run)

    return router
