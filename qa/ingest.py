"""Load a corpus of documents: ``.txt``/``.md`` text, and ``.pdf``, ``.docx``, ``.html``/``.htm``
converted to text by :mod:`qa.converters`.

Offsets contract
----------------
Every offset in the service is a Python code-point offset into the document's **served text**:
for a converted format, the converter's output (stored in the index and returned by
``GET /documents/{id}``); for ``.txt``/``.md``, the text exactly as
``open(path, encoding="utf-8").read()`` returns it. That means, for text files:

* universal newlines: a CRLF (or lone CR) in the file reads as ``"\\n"``;
* a UTF-8 byte-order mark is **kept** as ``"\\ufeff"`` at offset 0. We deliberately do not strip
  it, so that ``open(file, encoding="utf-8").read()[start:end] == answer_text`` holds for every
  answer and citation without any adjustment by the caller.

``sha256`` and ``size`` are computed on the raw bytes on disk.

Files that cannot be converted (not valid UTF-8, empty / whitespace-only, an encrypted or
image-only PDF, a damaged DOCX, ...) are skipped with a ``logging`` warning naming them and the
reason; they never abort loading. So are symbolic links to files outside the corpus folder (a link to
a file inside it is that file, indexed once under its own id) and symbolic links to folders (not followed). A converted document keeps its file name as its id
(``report.pdf``); the original file stays in the corpus folder.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from qa.converters import SUPPORTED_SUFFIXES, ConversionError, Extraction, convert
from qa.types import Document

logger = logging.getLogger(__name__)

__all__ = ["SUPPORTED_SUFFIXES", "SkippedFile", "decode_bytes", "discover", "document_from_bytes", "document_from_extraction",
           "document_id", "load_corpus", "load_document", "outside", "read_text"]


@dataclass(frozen=True)
class SkippedFile:
    path: str  # document id if under the root, else the path as given
    reason: str


def read_text(path: Path) -> str:
    """The canonical text of a document (see module docstring). Raises UnicodeDecodeError."""
    with open(path, encoding="utf-8") as f:
        return f.read()


def decode_bytes(raw: bytes) -> str:
    """Decode raw file bytes exactly like ``open(path, encoding="utf-8").read()`` would.

    Useful for uploads that never touch the disk: strict UTF-8, BOM kept, CRLF/CR -> LF.
    """
    text = raw.decode("utf-8")  # strict; keeps a BOM as U+FEFF like the "utf-8" codec on files
    return text.replace("\r\n", "\n").replace("\r", "\n")


def document_id(path: Path, root: Path) -> str:
    """Path relative to the corpus root with "/" separators; the file name if not under the root."""
    try:
        rel = Path(path).resolve().relative_to(Path(root).resolve())
        return rel.as_posix()
    except ValueError:
        return Path(path).name


def outside(path: Path, root: Path) -> bool:
    """True when ``path``, its symbolic links followed, is not inside the folder ``root``."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return True
    return False


def _shown_id(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as written (a link's own place), for naming a file that has no document id."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).name


def _utf8(name: str) -> bool:
    """False for a file name whose bytes are not UTF-8 (Python holds them as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(name: str) -> str:
    """``name`` with the bytes that are not UTF-8 shown as U+FFFD, for reports."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _document(doc_id: str, raw: bytes, ex: Extraction) -> Document:
    return Document(id=doc_id, text=ex.text, sha256=hashlib.sha256(raw).hexdigest(), size=len(raw),
                    converter=ex.converter, converter_version=ex.version, page_starts=ex.page_starts)


def document_from_extraction(doc_id: str, raw: bytes, ex: Extraction) -> Document:
    """A Document from a file's raw bytes and their already made extraction (no second conversion)."""
    return _document(doc_id, raw, ex)


def document_from_bytes(doc_id: str, raw: bytes) -> Document:
    """Build a Document from a file's raw bytes, converted by its suffix. Raises
    :class:`qa.converters.ConversionError` (a ValueError) when it cannot be converted."""
    return _document(doc_id, raw, convert(doc_id, raw))


def load_document(path: Path, root: Path | None = None) -> Document:
    """Load and convert one file. Raises ConversionError (a ValueError: not UTF-8, empty, a bad PDF...)."""
    path = Path(path)
    raw = path.read_bytes()
    doc_id = document_id(path, root) if root is not None else path.name
    return _document(doc_id, raw, convert(path.name, raw))


def discover(root: Path) -> list[Path]:
    """All supported files under ``root`` (recursive), sorted, hidden files/folders excluded."""
    root = Path(root)
    if root.is_file():
        return [root]
    found = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_symlink() and p.is_dir():
            found.append(p)  # not followed (rglob does not): load_corpus names it, instead of nothing saying so
        elif p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES:
            found.append(p)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _expand(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir() and not p.is_symlink():
            out.extend(discover(p))
        else:
            out.append(p)
    return out


def load_corpus(
    root: Path, paths: list[Path] | None = None
) -> tuple[list[Document], list[SkippedFile]]:
    """Load every supported file under ``root`` (recursive), or only ``paths`` if given.

    ``paths`` may contain files or folders; ids are relative to ``root``. Returns documents
    sorted by id, and the files that were skipped (with a warning logged for each).
    """
    root = Path(root)
    if paths is None:
        if not root.exists():
            raise FileNotFoundError(f"corpus folder not found: {root}")
        files = discover(root)
    else:
        files = _expand(paths)

    docs: dict[str, Document] = {}
    skipped: list[SkippedFile] = []
    for f in files:
        doc_id = document_id(f, root)
        if f.is_symlink() and f.is_dir():
            doc_id = _shown_id(f, root)
            reason = ("a symbolic link to a folder, not followed; copy the folder's files into the corpus folder to "
                      "index them")
        elif not _utf8(doc_id):
            # an id the index (JSON, Milvus) cannot store: one such name failed the whole build with a traceback
            doc_id = _printable(doc_id)
            reason = "its name is not valid UTF-8 (a file from another system's encoding?); rename it"
        elif f.suffix.lower() not in SUPPORTED_SUFFIXES:
            reason = f"unsupported file type {f.suffix or '(none)'!r} (supported: {', '.join(SUPPORTED_SUFFIXES)})"
        elif outside(f, root):
            # its id would be its bare name (two such links: one of them silently dropped), and the server never
            # serves, replaces or deletes a file outside the corpus folder
            doc_id = _shown_id(f, root)
            link = " (a symbolic link to a file elsewhere)" if f.is_symlink() else ""
            reason = f"outside the corpus folder{link}; copy the file into the folder to index it"
        elif not f.is_file():
            reason = "file not found"
        else:
            try:
                doc = load_document(f, root)
            except ConversionError as e:
                reason = f"{e} [{e.code}]"
            except ValueError as e:
                reason = str(e)
            except OSError as e:
                reason = f"cannot read: {e}"
            else:
                if doc.id in docs:
                    logger.warning("duplicate document id %s (from %s); keeping the first", doc.id, f)
                    continue
                docs[doc.id] = doc
                continue
        logger.warning("skipping %s: %s", f, reason)
        skipped.append(SkippedFile(path=doc_id, reason=reason))
    return [docs[k] for k in sorted(docs)], skipped
