"""Writes through the :class:`qa.store.protocol.DocumentStore` protocol alone (the ``milvus`` backend).

:class:`StoreWriter` answers the pipeline like :class:`qa.writes.Writer` (add, replace with If-Match,
delete, restore, trash, recover) but the store is the only place documents live: an upload is checked
and converted (the same rules and errors as the FAISS backend: a refused file changes nothing),
chunked, embedded, and written with ``write_document``; a delete is ``delete_document``. Nothing goes
to the corpus folder, so replicas on other machines serve the same documents; the corpus folder is
only read by :meth:`StoreWriter.sync_corpus` (``qa index``, and a first start on an empty store).
A store that is a :class:`qa.store.protocol.TrashBin` (Milvus) keeps deleted and replaced documents
itself: a delete or replace first copies the old text there (so a crash in between loses nothing:
at worst the document is both present and in the trash), a restore writes it back and then drops
the entry; ``Settings.trash_keep_days`` purges old entries as with the FAISS backend. A store
without one has no trash (a delete is final; restore answers 404).
"""

from __future__ import annotations

import inspect
import logging
import time
import unicodedata
from pathlib import Path
from typing import Any, Callable

from qa.index_store import BuildReport
from qa.ingest import SkippedFile, load_corpus
from qa.store.protocol import (DocumentChangedError, DocumentExistsError, DocumentStore, TrashBin, document_sha,
                               store_problem)
from qa.types import Document
from qa.validation import DocumentError, shown
from qa import writes as core_writes
from qa.writes import Recovery, TrashEntry, Writer

logger = logging.getLogger(__name__)


def _text_sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class StoreWriter(Writer):
    """Write transactions straight to a document store (see the module docstring)."""

    def __init__(self, settings: Any, store: DocumentStore, embedder: Any, chunker: Any) -> None:
        super().__init__(settings, self._no_indexer)
        self.store = store
        self.embedder = embedder
        self.chunker = chunker
        self.chunks_embedded = 0  # by write(), for reports

    @staticmethod
    def _no_indexer(*_a: Any) -> Any:  # pragma: no cover - the journal path is not used here
        raise RuntimeError("StoreWriter writes through the store")

    # ------------------------------------------------------------ one document
    def write(self, doc: Document, new: bool = False, keep_replaced: bool = False) -> int:
        """Chunk, embed and write one document (replacing one of that id). Returns the generation. ``new``: the
        id must not exist (an upload, a restore): DocumentError 409 when another replica wrote it meanwhile."""
        chunks = self.chunker.chunk(doc)
        vectors = self.embedder.embed_documents([c.text for c in chunks])
        self.chunks_embedded += len(chunks)
        params = inspect.signature(self.store.write_document).parameters
        if keep_replaced and "keep_replaced" in params:  # the version replaced may not be the one copied to the trash
            return self.store.write_document(doc, chunks, vectors, keep_replaced=True)
        if not new or "expect_absent" not in params:
            return self.store.write_document(doc, chunks, vectors)  # (a store no other process writes)
        try:
            return self.store.write_document(doc, chunks, vectors, expect_absent=True)
        except DocumentExistsError:
            raise DocumentError(f"a document named {shown(doc.id)} was just written (through another replica); "
                                "replace it with PUT /documents/{id} (If-Match: its sha256) or delete it first",
                                "already_exists", 409) from None

    # ------------------------------------------------------------ the pipeline's write calls
    def add(self, files: list[tuple[str, bytes]], current: Any = None,
            load: Callable[[], Any] | None = None) -> tuple[DocumentStore, list[str]]:
        """Add new documents, all or nothing. DocumentError: a bad file (nothing written) or a taken
        name (409)."""
        docs = self._checked(files)  # every file converted and checked before anything is written
        indexed = {unicodedata.normalize("NFC", d) for d in self.store.documents}
        for doc, _ in docs:
            if unicodedata.normalize("NFC", doc.id) in indexed:
                raise DocumentError(
                    f"a document named {shown(doc.id)} already exists; replace it with "
                    "PUT /documents/{id} (If-Match: its sha256) or delete it first", "already_exists", 409)
        written: list[str] = []
        try:
            for doc, _ in docs:
                self.write(doc, new=True)
                written.append(doc.id)
        except BaseException:
            for doc_id in written:  # all or nothing: take back the ones already written
                try:
                    self.store.delete_document(doc_id)
                except Exception:  # noqa: BLE001 - report the first error
                    logger.exception("could not take back %s after a failed upload", doc_id)
            raise
        return self.store, [d.id for d, _ in docs]

    def replace(self, doc_id: str, data: bytes, if_match: str | None, current: Any = None,
                load: Callable[[], Any] | None = None) -> tuple[DocumentStore, bool]:
        if not if_match:
            raise DocumentError("replacing a document needs an If-Match header with its current sha256 "
                                "(from GET /documents)", "precondition_required", 428)
        [(doc, _raw)] = self._checked([(doc_id.rsplit("/", 1)[-1], data)], doc_id=doc_id)
        info = self.store.documents.get(doc_id)
        if info is None:
            raise DocumentError(f"unknown document {shown(doc_id)}", "not_found", 404)
        wanted = {t.strip().removeprefix("W/").strip('"') for t in if_match.split(",")}
        if info.sha256 not in wanted and "*" not in wanted:
            raise DocumentError(f"document {shown(doc_id)} has changed (its sha256 is {info.sha256}); "
                                "fetch it again and retry", "precondition_failed", 412)
        if doc.sha256 == info.sha256:
            return self.store, False
        self._to_trash(doc_id, "replaced")
        self.write(doc, keep_replaced=True)
        # another replica replaced (or deleted) it at the same moment, without seeing this version
        self._keep_unless_served(doc)
        return self.store, True

    def _in_trash(self, doc_id: str, sha256: str, other_than: str | None = None) -> bool:
        return any(t.id == doc_id and t.sha256 == sha256 and t.entry != other_than for t in self.trash())

    def _keep_unless_served(self, doc: Document) -> None:
        """A version this replica wrote that is not the one served now (another replica's write went live right
        after it) goes to the trash as replaced, unless it is there already: nothing accepted is lost."""
        if (isinstance(self.store, TrashBin) and self._current_sha(doc.id) != doc.sha256
                and not self._in_trash(doc.id, doc.sha256)):
            self.store.trash_document(doc.id, self._new_trash_entry_name(), "replaced", core_writes._now(),
                                      document=doc)

    def _current_sha(self, doc_id: str) -> str | None:
        try:
            return document_sha(self.store, doc_id)
        except KeyError:
            return None

    def delete(self, doc_id: str, current: Any = None, load: Callable[[], Any] | None = None) -> DocumentStore:
        """Copy the served version to the trash, then delete exactly that version: one replaced through another
        replica in between is copied and deleted in its turn (its predecessor is in the trash already, put
        there by that replace), so the version deleted is always in the trash."""
        for _ in range(3):
            entry = self._to_trash(doc_id, "deleted")  # KeyError: unknown (nothing changes)
            kept = next((t for t in self.trash() if t.entry == entry), None) if entry else None
            try:
                # KeyError: unknown, or deleted by another replica meanwhile
                self.store.delete_document(doc_id, if_sha256=kept.sha256 if kept else None)
            except KeyError:
                if entry is not None:  # that replica's delete put the document in the trash: one entry, not two
                    self.store.drop_trash_entry(entry)
                raise
            except DocumentChangedError:
                if kept and self._in_trash(doc_id, kept.sha256, other_than=entry):
                    self.store.drop_trash_entry(entry)  # that version is in the trash once already
                continue
            self.purge_trash()
            return self.store
        raise DocumentError(f"document {shown(doc_id)} changed while it was being deleted (through another "
                            "replica); try again", "conflict", 409)

    def _to_trash(self, doc_id: str, reason: str) -> str | None:
        if not isinstance(self.store, TrashBin):
            return None
        entry = self._new_trash_entry_name()
        self.store.trash_document(doc_id, entry, reason, core_writes._now())
        return entry

    def restore(self, doc_id: str, current: Any = None, load: Callable[[], Any] | None = None,
                entry: str | None = None) -> tuple[DocumentStore, TrashEntry]:
        """Write the newest trashed version of ``doc_id`` (or the named ``entry``) back. KeyError:
        nothing in the trash; DocumentError 409: a document of that name exists."""
        candidates = [t for t in self.trash() if t.id == doc_id and (entry is None or t.entry == entry)]
        if not candidates or not isinstance(self.store, TrashBin):
            raise KeyError(doc_id)
        t = candidates[0]
        if self._exists(doc_id):
            raise DocumentError(f"a document named {shown(doc_id)} exists; delete it (it goes to the trash "
                                "too) before restoring the older one", "already_exists", 409)
        kept = self.store.trashed_document(t.entry)
        self.write(kept, new=True)
        self.store.drop_trash_entry(t.entry)
        # another replica's upload overwrote it at once and left it to the entry just dropped
        self._keep_unless_served(kept)
        return self.store, t

    def _exists(self, doc_id: str) -> bool:
        try:
            self.store.page_starts(doc_id)  # one row's read, not the whole document list
        except KeyError:
            return False
        return True

    def recover(self) -> list[Recovery]:
        return []  # every write is one store call sequence; nothing is journalled

    def trash(self) -> list[TrashEntry]:
        if not isinstance(self.store, TrashBin):
            return []
        return [TrashEntry(t["entry"], t["id"], t["sha256"], int(t["size"]), t["deleted_at"], t["reason"])
                for t in self.store.trash_entries()]

    def _drop_trash(self, t: TrashEntry) -> None:  # Writer.purge_trash: entries past trash_keep_days
        if isinstance(self.store, TrashBin):
            self.store.drop_trash_entry(t.entry)

    # ------------------------------------------------------------ the corpus folder
    def sync_corpus(self, corpus: Path, paths: list[Path] | None = None, show_progress: bool = False) -> BuildReport:
        """Make the store hold the corpus folder's documents: new or changed files (sha256 of the
        bytes or of the extracted text) are written, unchanged ones kept, and (without ``paths``)
        stored documents with no file any more are deleted. The report says which. The version a
        changed file replaces and a deleted document go to the trash first: an upload or a PUT lives
        only in the store (never in the folder), and `qa index` used to delete or overwrite it unkept."""
        t0 = time.perf_counter()
        report = BuildReport(index_dir=str(getattr(self.store, "uri", "")))
        docs, report.skipped = load_corpus(Path(corpus), paths)
        stored = self.store.documents
        embedded = self.chunks_embedded
        for doc in docs:
            old = stored.get(doc.id)
            if old is not None and old.sha256 == doc.sha256 and self._same_text(doc):
                report.reused.append(doc.id)
                continue
            problem = store_problem(self.store, doc)
            if problem is not None:  # one such document failed the whole sync (and a replica's start-up)
                logger.warning("skipping %s: %s", doc.id, problem)
                report.skipped.append(SkippedFile(path=doc.id, reason=problem))
                continue
            if old is not None:
                self._to_trash(doc.id, "replaced")
            self.write(doc)
            (report.changed if old is not None else report.added).append(doc.id)
        if paths is None:
            present = {d.id for d in docs}
            for doc_id in sorted(set(stored) - present):
                self.delete(doc_id)
                report.removed.append(doc_id)
        report.documents = self.store.count_documents()
        report.chunks = self.store.count_chunks()
        report.chunks_embedded = self.chunks_embedded - embedded
        report.seconds = time.perf_counter() - t0
        return report

    def _same_text(self, doc: Document) -> bool:
        try:
            return _text_sha(self.store.document_text(doc.id)) == _text_sha(doc.text)
        except KeyError:
            return False
