"""What every converter gives back, the errors it raises, and page look-ups.

A converter turns a file's bytes into the **served text**: the exact string that
``GET /documents/{id}`` returns and that every answer's ``start``/``end`` index. Nothing is
re-derived later: the index stores this text, so ``text[start:end] == answer`` holds for every
format by construction. Paged formats (PDF) also record where each page starts in that text, so
a citation's page is ``page_of(page_starts, start)``.
"""

from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable


class ConversionError(ValueError):
    """A file that cannot be turned into text. ``code`` is the API's machine-readable error code
    (e.g. ``pdf_encrypted``); the message says what is wrong and what to do."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Extraction:
    """A converted document.

    ``page_starts``: for paged formats, the offset in ``text`` where each page begins (first is 0,
    strictly increasing), one per page of the file; empty for formats without pages.
    ``converter``: the converter's name (``pdf``); ``version``: the library and rule versions
    that produced the text (a change re-extracts the document at the next index build).
    """

    text: str
    converter: str
    version: str
    page_starts: tuple[int, ...] = field(default_factory=tuple)

    def page_of(self, offset: int) -> int | None:
        return page_of(self.page_starts, offset)


@runtime_checkable
class Converter(Protocol):
    name: str
    suffixes: tuple[str, ...]  # lower case, with the dot

    def version(self) -> str:
        """Library name and version plus this module's rule version, e.g. ``pypdf 7.1.1; rules 1``."""
        ...

    def convert(self, data: bytes) -> Extraction:
        """The served text of ``data``; raises :class:`ConversionError` for a file it cannot read."""
        ...


def page_of(page_starts: Sequence[int], offset: int) -> int | None:
    """1-based page holding code-point ``offset`` (None when the document has no pages)."""
    if not page_starts:
        return None
    return max(1, bisect.bisect_right(page_starts, offset))


def join_pages(pages: Sequence[str], separator: str = "\n\n") -> tuple[str, tuple[int, ...]]:
    """Concatenate page texts with ``separator``; returns (text, start offset of each page)."""
    parts: list[str] = []
    starts: list[int] = []
    pos = 0
    for i, page in enumerate(pages):
        if i:
            parts.append(separator)
            pos += len(separator)
        starts.append(pos)
        parts.append(page)
        pos += len(page)
    return "".join(parts), tuple(starts)


def described(e: BaseException, library_errors: tuple[type, ...]) -> str:
    """What a client is told about a parser's exception: the library's own words for a damaged file (its
    error classes), never Python internals such as an AttributeError deep inside lxml (logged instead)."""
    if isinstance(e, library_errors):
        return str(e)[:240] or type(e).__name__
    logging.getLogger("qa.converters").info("converter failed on a file: %s: %s", type(e).__name__, e)
    return "its internal structure is damaged"


def readable(text: str) -> bool:
    """True when ``text`` holds at least one letter or digit: whitespace, invisible format characters (a BOM,
    U+200B), control characters and punctuation alone are nothing anyone could ask about or cite."""
    return any(c.isalnum() for c in text)


def looks_binary(data: bytes, share: float = 0.02) -> bool:
    """True when more than ``share`` of the first 64 KB are control bytes that no text file holds (NUL and the
    other C0 codes but tab, line feed, form feed and carriage return): random or binary data under a text
    suffix. A UTF-16 file with its byte-order mark is text."""
    head = data[:65536]
    if not head or head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    return sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13)) > share * len(head)


_SURROGATE = re.compile("[\ud800-\udfff]")


def whole_characters(text: str) -> str:
    """``text`` without surrogate code points: a pair of halves becomes the character it encodes, a lone half
    U+FFFD. pypdf decodes a font's ToUnicode map as UTF-16 without checking it, so a PDF can yield a lone
    surrogate, which UTF-8 (JSON responses, the tokenizers) cannot encode: its upload failed with a 500, and
    ``qa index`` on a folder holding it stopped with a traceback (citation audit, 2026-12-07)."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def tidy(text: str) -> str:
    """Whole characters (:func:`whole_characters`), line ends as "\\n", no NULs, no trailing spaces on lines,
    at most one blank line in a row, no blank lines at either end. Applied by the converters to what a
    library returns."""
    text = whole_characters(text).replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    lines = [line.rstrip() for line in text.split("\n")]
    out: list[str] = []
    blank = False
    for line in lines:
        if not line.strip():
            blank = bool(out)
            continue
        if blank:
            out.append("")
        out.append(line)
        blank = False
    return "\n".join(out)
