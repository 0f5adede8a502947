"""File converters: bytes of a document file -> the exact text that answers cite.

    from qa.converters import convert, converter_for, SUPPORTED_SUFFIXES
    extraction = convert("report.pdf", data)   # Extraction(text, converter, version, page_starts)

One converter per format, chosen by file suffix (case-insensitive): ``.txt``/``.md`` (UTF-8 text),
``.pdf`` (pypdf), ``.docx`` (python-docx), ``.html``/``.htm`` (trafilatura + selectolax).
Libraries are imported on first use. Nothing here downloads anything. Errors are
:class:`ConversionError` with a ``code`` the HTTP API reports as is.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Callable, Sequence

from qa.converters.base import ConversionError, Converter, Extraction, join_pages, page_of, readable, tidy
from qa.converters.docx import DocxConverter
from qa.converters.html import HtmlConverter
from qa.converters.pdf import PdfConverter
from qa.converters.text import TextConverter

CONVERTERS: tuple[Converter, ...] = (TextConverter(), PdfConverter(), DocxConverter(), HtmlConverter())
BY_SUFFIX: dict[str, Converter] = {s: c for c in CONVERTERS for s in c.suffixes}
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(BY_SUFFIX)
BY_NAME: dict[str, Converter] = {c.name: c for c in CONVERTERS}
#: The code of a file whose converted text has no letter or digit, by converter.
NO_TEXT_CODES = {"text": "empty_file", "pdf": "pdf_no_text", "docx": "docx_no_text", "html": "html_no_text"}

__all__ = [
    "BY_NAME", "BY_SUFFIX", "CONVERTERS", "ConversionError", "Converter", "Extraction", "SUPPORTED_SUFFIXES",
    "add_pages", "convert", "converter_for", "join_pages", "page_of", "readable", "tidy",
]


def converter_for(name: str) -> Converter | None:
    """The converter for a file name's suffix (case-insensitive), or None."""
    return BY_SUFFIX.get(PurePath(name).suffix.lower())


def convert(name: str, data: bytes) -> Extraction:
    """Convert ``data`` (the file ``name``'s bytes). Raises ConversionError (``unsupported_file_type``
    for a suffix no converter handles)."""
    conv = converter_for(name)
    if conv is None:
        raise ConversionError(
            f"unsupported file type {PurePath(name).suffix or '(none)'!r} (supported: {', '.join(SUPPORTED_SUFFIXES)})",
            "unsupported_file_type",
        )
    extraction = conv.convert(data)
    if not readable(extraction.text):
        raise ConversionError("has no readable text (no letter or digit: only whitespace, invisible or control "
                              "characters, or punctuation)", NO_TEXT_CODES.get(conv.name, "empty_file"))
    return extraction


def add_pages(result, page_starts_of: Callable[[str], Sequence[int]]):
    """Fill ``page`` on every citation of an AskResult (or anything with ``answers``; an answer's page
    is its first citation's) from the recorded page starts of each document: ``page_starts_of(doc_id)`` (empty: no pages).
    Offsets are untouched. Returns ``result``."""
    cache: dict[str, Sequence[int]] = {}

    def starts(doc: str) -> Sequence[int]:
        if doc not in cache:
            try:
                cache[doc] = page_starts_of(doc) or ()
            except KeyError:
                cache[doc] = ()
        return cache[doc]

    answers = list(getattr(result, "answers", None) or [])
    guess = getattr(result, "best_guess", None)
    if guess is not None and all(guess is not a for a in answers):
        answers.append(guess)
    for answer in answers:  # the answer's page is its first citation's
        for citation in answer.citations:
            citation.page = page_of(starts(citation.document), citation.start)
    return result
