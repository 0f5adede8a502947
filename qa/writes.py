"""Crash-consistent writes to the corpus folder and the index: staging, a journal, a trash.

Every write (upload, replace, delete, restore) is one transaction, run under the index lock
(:func:`qa.index_store.index_lock`, shared with ``qa index``)::

    1. stage     the new bytes go to  <index>/staging/<txid>/<n>   (never into the corpus yet)
    2. journal   <index>/journal/<txid>.json records what the corpus must look like afterwards
    3. commit    a new index version is built from the previous one plus/minus the documents
                 (qa.index_store.apply_changes) and CURRENT is swapped: the commit point
    4. apply     staged files move into the corpus; deleted/replaced files move to the trash
    5. forget    the journal entry and the staging folder are removed

A ``kill -9`` anywhere leaves a state that :meth:`Writer.recover` (run at start-up and by
``qa index``/``qa restore``) finishes: if the active index already reflects the journal entry
(step 3 done) the corpus changes are applied (roll forward), otherwise they are dropped (roll
back). Both are idempotent, so a crash during recovery is harmless too. The corpus folder is
never written before the index commit, and the index never names a file that recovery will not
put in place.

Trash: ``<index>/trash/<entry>/{meta.json,data}``, one entry per deleted or replaced file, kept
``Settings.trash_keep_days``. :meth:`Writer.restore` brings the newest entry of a document back
(the same bytes, indexed again).

:func:`differences` compares the corpus folder with the active index (ids and sha256) for the
start-up reconciliation and ``qa index --check``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import time
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from qa.converters import ConversionError
from qa.index_store import IndexCorruptError, IndexStore, active_documents, active_version_name, index_lock
from qa.ingest import discover, document_from_bytes, document_from_extraction, document_id, load_corpus
from qa.types import Document
from qa.store.protocol import new_trash_entry
from qa.validation import DocumentError, check_document_name, extract_document, shown

logger = logging.getLogger(__name__)

STAGING = "staging"
JOURNAL = "journal"
TRASH = "trash"

#: indexer(previous store, upserts, removals) -> the new, committed store
Indexer = Callable[[IndexStore | None, list[Document], set[str]], IndexStore]


# ----------------------------------------------------------------------------- file helpers


#: Trash folders whose damaged meta.json was already reported (Writer.trash), once per process.
_DAMAGED_TRASH_SEEN: set[Path] = set()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_durable(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (a short, fresh name) and fsync it and its folder."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(path.parent)


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{uuid.uuid4().hex[:8]}.tmp")
    _write_durable(tmp, (json.dumps(obj, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def move_file(src: Path, dst: Path) -> None:
    """Atomically move ``src`` to ``dst`` (replacing it), also across file systems: there the
    bytes go to a short hidden temp name in ``dst``'s folder first, then are renamed."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dst)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        tmp = dst.parent / f".qa-{uuid.uuid4().hex[:8]}.part"  # short: never near the 255-byte name limit
        try:
            with open(src, "rb") as fi, open(tmp, "wb") as fo:
                shutil.copyfileobj(fi, fo)
                fo.flush()
                os.fsync(fo.fileno())
            os.replace(tmp, dst)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        src.unlink()
    _fsync_dir(dst.parent)
    _fsync_dir(src.parent)


def file_sha256(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def corpus_file_sha256(path: Path, doc_id: str) -> str | None:
    """:func:`file_sha256` of a document's corpus file before a write that moves it: DocumentError 409
    ``file_unreadable`` (nothing changes) when it is there but cannot be read (no permission, an I/O error): a
    server-side condition to fix in the folder, which answered 500."""
    try:
        return file_sha256(path)
    except OSError as e:
        raise DocumentError(f"the file of {shown(doc_id)} in the corpus folder cannot be read on the server "
                            f"({e.strerror or type(e).__name__}): fix it there, then retry", "file_unreadable",
                            409) from None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class TrashEntry:
    entry: str  # folder name under <index>/trash
    id: str
    sha256: str
    size: int
    deleted_at: str
    reason: str  # "deleted" or "replaced"


@dataclass(frozen=True)
class Difference:
    id: str
    kind: str  # not_indexed | missing_file | changed
    detail: str


@dataclass(frozen=True)
class Recovery:
    txid: str
    op: str
    action: str  # rolled_forward | rolled_back


# ----------------------------------------------------------------------------- the writer


def name_taken(name: str, indexed: bool) -> DocumentError:
    """The 409 of an upload whose name is taken: by a document (replace or delete it), or by a file in the
    corpus folder that could not be indexed (no document to replace or delete: it must be fixed there)."""
    if indexed:
        return DocumentError(f"a document named {shown(name)} already exists; replace it with PUT "
                             "/documents/{id} (If-Match: its sha256) or delete it first", "already_exists", 409)
    return DocumentError(f"a file named {shown(name)} is already in the corpus folder but is not indexed (it could "
                         "not be read; `qa index --check` on the server says why): fix or remove that file there, "
                         "or upload under another name", "already_exists", 409)


class Writer:
    """Runs write transactions for one corpus folder + index folder (see the module docstring)."""

    def __init__(self, settings: Any, indexer: Indexer) -> None:
        self.settings = settings
        self.indexer = indexer
        self.corpus = Path(settings.corpus_dir)
        self.index_dir = Path(settings.index_dir)
        #: called after step 3 of every transaction with the new store (e.g. to swap it in for
        #: readers before the files move); a test hook can raise here to simulate a crash
        self.after_commit: Callable[[IndexStore], None] | None = None

    # ------------------------------------------------------------ paths
    @property
    def staging_dir(self) -> Path:
        return self.index_dir / STAGING

    @property
    def journal_dir(self) -> Path:
        return self.index_dir / JOURNAL

    @property
    def trash_dir(self) -> Path:
        return self.index_dir / TRASH

    def corpus_path(self, doc_id: str) -> Path:
        """The corpus file of ``doc_id``; KeyError if the id would leave the corpus folder."""
        root = self.corpus.resolve()
        path = (root / doc_id).resolve()
        if root not in path.parents or any(part in ("", ".", "..") for part in doc_id.split("/")):
            raise KeyError(doc_id)
        return path

    # ------------------------------------------------------------ the current index
    def _fresh(self, current: IndexStore | None, load: Callable[[], IndexStore] | None) -> IndexStore | None:
        """``current`` if it is still the active version on disk, else the active one reloaded
        (another process, e.g. ``qa index``, committed in between)."""
        active = active_version_name(self.index_dir)
        if current is not None and (active is None or current.path.name == active):
            return current
        if load is not None and active is not None:
            return load()
        return current

    # ------------------------------------------------------------ transactions
    def _transaction(
        self,
        op: str,
        current: IndexStore | None,
        puts: list[tuple[Document, bytes | None, Path | None]],
        trash: list[tuple[str, str]],
        reason: str,
    ) -> IndexStore:
        """puts: (document, bytes to stage, or an existing file to move in); trash: (id, sha256 of
        the corpus file now). Caller holds the index lock and has checked the preconditions."""
        txid = f"{int(time.time() * 1000):x}-{uuid.uuid4().hex[:8]}"
        stage = self.staging_dir / txid
        record: dict[str, Any] = {"txid": txid, "op": op, "created_at": _now(), "put": [], "trash": []}
        try:
            for n, (doc, data, source) in enumerate(puts):
                if data is not None:
                    stage.mkdir(parents=True, exist_ok=True)
                    _write_durable(stage / str(n), data)
                    source = stage / str(n)
                assert source is not None
                record["put"].append({"id": doc.id, "sha256": doc.sha256,
                                      "source": source.relative_to(self.index_dir).as_posix()})
            for doc_id, sha in trash:
                entry = self._new_trash_entry_name()
                record["trash"].append({"id": doc_id, "sha256": sha, "entry": entry, "reason": reason})
            self.journal_dir.mkdir(parents=True, exist_ok=True)
            _write_json_atomic(self.journal_dir / f"{txid}.json", record)
            removals = {d for d, _ in trash} - {doc.id for doc, _, _ in puts}
            store = self.indexer(current, [doc for doc, _, _ in puts], removals)  # the commit point
        except BaseException:
            self._roll_back(record)
            raise
        if self.after_commit is not None:
            self.after_commit(store)
        self._roll_forward(record)
        return store

    def _new_trash_entry_name(self) -> str:
        return new_trash_entry()

    def add(self, files: list[tuple[str, bytes]], current: IndexStore | None,
            load: Callable[[], IndexStore] | None = None) -> tuple[IndexStore, list[str]]:
        """Add new documents (all or nothing). DocumentError: a bad file or a taken name (409)."""
        docs = self._checked(files)
        with index_lock(self.index_dir):
            self.recover()
            current = self._fresh(current, load)
            indexed = self._indexed_names(current)
            for doc, _ in docs:
                path = self.corpus_path(doc.id)
                if unicodedata.normalize("NFC", doc.id) in indexed or path.exists():
                    raise name_taken(doc.id, unicodedata.normalize("NFC", doc.id) in indexed)
            store = self._transaction("add", current, [(d, raw, None) for d, raw in docs], [], "replaced")
        return store, [d.id for d, _ in docs]

    def replace(self, doc_id: str, data: bytes, if_match: str | None, current: IndexStore | None,
                load: Callable[[], IndexStore] | None = None) -> tuple[IndexStore, bool]:
        """Replace a document's bytes if its sha256 is still ``if_match``; the old bytes go to the
        trash. Returns (store, changed). DocumentError 404/412/428, or a bad file (400/413)."""
        if not if_match:
            raise DocumentError("replacing a document needs an If-Match header with its current sha256 "
                                "(from GET /documents)", "precondition_required", 428)
        [(doc, raw)] = self._checked([(doc_id.rsplit("/", 1)[-1], data)], doc_id=doc_id)
        with index_lock(self.index_dir):
            self.recover()
            current = self._fresh(current, load)
            info = current.documents.get(doc_id) if current is not None else None
            if info is None:
                raise DocumentError(f"unknown document {shown(doc_id)}", "not_found", 404)
            wanted = {t.strip().removeprefix("W/").strip('"') for t in if_match.split(",")}
            if info.sha256 not in wanted and "*" not in wanted:
                raise DocumentError(f"document {shown(doc_id)} has changed (its sha256 is {info.sha256}); "
                                    "fetch it again and retry", "precondition_failed", 412)
            if doc.sha256 == info.sha256:
                return current, False
            path = self.corpus_path(doc_id)
            on_disk = corpus_file_sha256(path, doc_id)
            trash = [(doc_id, on_disk)] if on_disk is not None else []
            store = self._transaction("replace", current, [(doc, raw, None)], trash, "replaced")
        return store, True

    def delete(self, doc_id: str, current: IndexStore | None,
               load: Callable[[], IndexStore] | None = None) -> IndexStore:
        """Remove a document from the index and move its file to the trash. KeyError: unknown."""
        with index_lock(self.index_dir):
            self.recover()
            current = self._fresh(current, load)
            if current is None or doc_id not in current.documents:
                raise KeyError(doc_id)
            path = self.corpus_path(doc_id)
            on_disk = corpus_file_sha256(path, doc_id)
            trash = [(doc_id, on_disk if on_disk is not None else current.documents[doc_id].sha256)]
            store = self._transaction("delete", current, [], trash, "deleted")
            self.purge_trash()
        return store

    def restore(self, doc_id: str, current: IndexStore | None,
                load: Callable[[], IndexStore] | None = None, entry: str | None = None) -> tuple[IndexStore, TrashEntry]:
        """Bring the newest trash entry of ``doc_id`` (or the named ``entry``) back into the corpus
        and the index. KeyError: nothing in the trash; DocumentError 409: the name is taken."""
        with index_lock(self.index_dir):
            self.recover()
            current = self._fresh(current, load)
            candidates = [t for t in self.trash() if t.id == doc_id and (entry is None or t.entry == entry)]
            if not candidates:
                raise KeyError(doc_id)
            t = candidates[0]
            if (current is not None and doc_id in current.documents) or self.corpus_path(doc_id).exists():
                raise DocumentError(f"a document named {shown(doc_id)} exists; delete it (it goes to the trash "
                                    "too) before restoring the older one", "already_exists", 409)
            data_path = self.trash_dir / t.entry / "data"
            try:
                doc = document_from_bytes(doc_id, data_path.read_bytes())
            except ConversionError as e:  # e.g. a file emptied by hand before it was deleted: it stays in the trash
                raise DocumentError(f"the trashed copy of {shown(doc_id)} (entry {t.entry}) cannot be indexed: it "
                                    f"{e}; it stays in the trash", e.code, 422) from None
            store = self._transaction("restore", current, [(doc, None, data_path)], [], "replaced")
            shutil.rmtree(self.trash_dir / t.entry, ignore_errors=True)
        return store, t

    def _checked(self, files: list[tuple[str, bytes]], doc_id: str | None = None) -> list[tuple[Document, bytes]]:
        out: list[tuple[Document, bytes]] = []
        seen: set[str] = set()
        limit = self.settings.max_upload_bytes
        for name, data in files:
            name = check_document_name(name)
            if name in seen:
                raise DocumentError(f"file {shown(name)} is given twice", "duplicate_file")
            seen.add(name)
            # Converted (PDF/DOCX/HTML -> text + page starts) and checked before anything is staged:
            # a refused file changes nothing. The original bytes are what gets staged and moved in.
            doc = document_from_extraction(doc_id or name, data, extract_document(name, data, limit))
            out.append((doc, data))
        return out

    @staticmethod
    def _indexed_names(store: IndexStore | None) -> set[str]:
        return {unicodedata.normalize("NFC", d) for d in (store.documents if store is not None else {})}

    # ------------------------------------------------------------ recovery
    def _committed(self, record: dict[str, Any], active: dict[str, str] | None) -> bool:
        if active is None:
            return False
        puts = {p["id"]: p["sha256"] for p in record["put"]}
        if any(active.get(i) != sha for i, sha in puts.items()):
            return False
        return all(t["id"] in puts or t["id"] not in active for t in record["trash"])

    def _roll_forward(self, record: dict[str, Any]) -> None:
        for t in record["trash"]:  # first: a replaced file leaves before the new one arrives
            path = self.corpus_path(t["id"])
            if file_sha256(path) != t["sha256"]:
                continue  # already moved (or changed by hand: reconciliation reports it)
            folder = self.trash_dir / t["entry"]
            folder.mkdir(parents=True, exist_ok=True)
            size = path.stat().st_size
            _write_json_atomic(folder / "meta.json", {"id": t["id"], "sha256": t["sha256"], "size": size,
                                                      "deleted_at": _now(), "reason": t.get("reason", "deleted")})
            move_file(path, folder / "data")
        for p in record["put"]:
            source = self.index_dir / p["source"]
            if source.exists():
                move_file(source, self.corpus_path(p["id"]))
        self._forget(record)

    def _roll_back(self, record: dict[str, Any]) -> None:
        for t in record["trash"]:
            folder = self.trash_dir / t["entry"]
            if folder.exists() and not (folder / "data").exists():
                shutil.rmtree(folder, ignore_errors=True)
        self._forget(record)

    def _forget(self, record: dict[str, Any]) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.journal_dir / f"{record['txid']}.json").unlink()
            _fsync_dir(self.journal_dir)
        shutil.rmtree(self.staging_dir / record["txid"], ignore_errors=True)

    def _check_folders(self) -> None:
        """IndexCorruptError naming a write folder (staging, journal, trash) that is there but is not a folder. Checked
        before any write: otherwise a delete committed to the index, then failed to move its file to the trash, and
        every later write and start-up failed on its journal entry with a bare NotADirectoryError."""
        for folder in (self.staging_dir, self.journal_dir, self.trash_dir):
            if os.path.lexists(folder) and not folder.is_dir():
                raise IndexCorruptError(f"{folder} is not a folder: move it out of the index folder (a new one is "
                                        "made), then retry")

    def _record(self, path: Path) -> dict[str, Any] | None:
        """A journal entry, or None when it cannot be read or is not one (damaged on disk: entries are written
        atomically, so a crash never leaves half of one)."""
        def name(value: Any) -> bool:  # a relative path that stays where it is put
            return isinstance(value, str) and bool(value) and not value.startswith("/") and ".." not in value.split("/")

        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict) or not isinstance(record.get("txid"), str):
                return None
            for p in record["put"]:
                self.corpus_path(p["id"])  # KeyError: outside the corpus folder
                if not (isinstance(p["sha256"], str) and name(p["source"])):
                    return None
            for t in record["trash"]:
                self.corpus_path(t["id"])
                if not (isinstance(t["sha256"], str) and name(t["entry"]) and "/" not in t["entry"]):
                    return None
            return record
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def recover(self) -> list[Recovery]:
        """Finish or undo every transaction a crash interrupted; remove orphaned staging files."""
        done: list[Recovery] = []
        with index_lock(self.index_dir):
            self._check_folders()
            journal = sorted(self.journal_dir.glob("*.json")) if self.journal_dir.is_dir() else []
            kept: set[str] = {p.name.removesuffix(".json.damaged") for p in self.journal_dir.glob("*.json.damaged")
                              } if self.journal_dir.is_dir() else set()
            if journal:
                active = active_documents(self.index_dir)
                for path in journal:
                    record = self._record(path)
                    if record is None:
                        # Not removed: if it was committed, its staged files are the only copy of the bytes the
                        # index names. Renamed aside (no longer replayed), and its staging folder is kept.
                        logger.warning("journal entry %s is damaged; renamed to %s.damaged, its staged files stay in "
                                       "%s", path.name, path.name, self.staging_dir / path.stem)
                        with contextlib.suppress(OSError):
                            os.replace(path, path.with_name(path.name + ".damaged"))
                        kept.add(path.stem)
                        continue
                    if self._committed(record, active):
                        self._roll_forward(record)
                        action = "rolled_forward"
                    else:
                        self._roll_back(record)
                        action = "rolled_back"
                    logger.warning("recovered interrupted %s transaction %s: %s", record.get("op"), record.get("txid"), action)
                    done.append(Recovery(record.get("txid", path.stem), record.get("op", "?"), action))
            for tmp in self.journal_dir.glob(".*.tmp") if self.journal_dir.is_dir() else []:
                tmp.unlink(missing_ok=True)
            if self.staging_dir.is_dir():
                for leftover in self.staging_dir.iterdir():  # no journal entry: never committed
                    if leftover.name in kept:
                        continue
                    shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()
            if self.trash_dir.is_dir():
                for folder in self.trash_dir.iterdir():
                    if folder.is_dir() and not (folder / "data").exists():
                        shutil.rmtree(folder, ignore_errors=True)
        return done

    # ------------------------------------------------------------ trash
    def trash(self) -> list[TrashEntry]:
        """Trash entries, newest first."""
        out: list[TrashEntry] = []
        if not self.trash_dir.is_dir():
            return out
        for folder in self.trash_dir.iterdir():
            if not (folder / "data").is_file():
                continue
            try:
                meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
                out.append(TrashEntry(folder.name, meta["id"], meta["sha256"], int(meta["size"]),
                                      meta["deleted_at"], meta.get("reason", "deleted")))
            except (OSError, ValueError, KeyError, TypeError):
                # Not listed (nothing says which document it was), but said once: its bytes are still there
                if folder not in _DAMAGED_TRASH_SEEN:
                    _DAMAGED_TRASH_SEEN.add(folder)
                    logger.warning("trash entry %s cannot be listed or restored: its meta.json is damaged; the "
                                   "document's bytes are kept in %s (copy them into the corpus folder under their "
                                   "name to bring the document back)", folder.name, folder / "data")
                continue
        out.sort(key=lambda t: t.entry, reverse=True)
        return out

    def purge_trash(self) -> int:
        """Remove trash entries older than Settings.trash_keep_days (0: keep forever)."""
        days = float(getattr(self.settings, "trash_keep_days", 0) or 0)
        if days <= 0:
            return 0
        cutoff = datetime.now(timezone.utc).timestamp() - days * 86400
        n = 0
        for t in self.trash():
            try:
                when = datetime.fromisoformat(t.deleted_at).timestamp()
            except ValueError:
                continue
            if when < cutoff:
                self._drop_trash(t)
                n += 1
        return n

    def _drop_trash(self, t: TrashEntry) -> None:
        shutil.rmtree(self.trash_dir / t.entry, ignore_errors=True)


# ----------------------------------------------------------------------------- reconciliation


def _corpus_shas(corpus: Path, indexed: dict[str, str]) -> dict[str, str]:
    """{id: sha256} of the corpus files the indexer would index. A file whose bytes are the indexed ones is only
    hashed; the others (new, changed) are converted to tell a readable file from one the indexer skips. Converting
    every file (a PDF takes up to seconds) at each start-up and ``qa index --check`` grew with the corpus."""
    shas: dict[str, str] = {}
    others: list[Path] = []
    seen: set[str] = set()
    for path in discover(corpus):
        doc_id = document_id(path, corpus)
        try:
            sha = None if doc_id in seen else file_sha256(path)  # a second file of one id: load_corpus keeps the first
        except OSError:
            sha = None
        seen.add(doc_id)
        if sha is not None and indexed.get(doc_id) == sha:
            shas[doc_id] = sha
        else:
            others.append(path)
    docs, _skipped = load_corpus(corpus, others) if others else ([], [])
    for d in docs:
        shas.setdefault(d.id, d.sha256)
    return shas


def differences(corpus: Path, indexed: dict[str, str] | None) -> list[Difference]:
    """Every disagreement between the corpus folder (files the converters read) and the index
    ({id: sha256}). Files the indexer skips (not UTF-8, empty, a scan, ...) are not differences."""
    indexed = indexed or {}
    on_disk = _corpus_shas(Path(corpus), indexed) if Path(corpus).is_dir() else {}
    out: list[Difference] = []
    for doc_id in sorted(set(on_disk) | set(indexed)):
        a, b = on_disk.get(doc_id), indexed.get(doc_id)
        if a == b:
            continue
        if b is None:
            out.append(Difference(doc_id, "not_indexed", "in the corpus folder, not in the index"))
        elif a is None:
            out.append(Difference(doc_id, "missing_file", "in the index, not in the corpus folder"))
        else:
            out.append(Difference(doc_id, "changed", f"file sha256 {a[:12]}…, indexed {b[:12]}…"))
    return out


def describe(diffs: Iterable[Difference]) -> list[str]:
    return [f"{d.kind}: {d.id} ({d.detail})" for d in diffs]
