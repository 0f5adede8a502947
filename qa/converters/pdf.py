"""PDF with pypdf, page by page.

Each page's text is ``page.extract_text()`` (pypdf's default "plain" mode) with runs of spaces
inside a line (justified text) made one space and ligature characters (ﬁ, ﬂ, ...) spelled out, tidied (see :func:`qa.converters.base.tidy`); pages are joined with a blank line and their start offsets are
recorded, so a citation's page number comes from the served text itself. Why pypdf and not
pdfplumber: see docs/converters.md (the same words on our test files; pypdf reads two-column pages
column by column where pdfplumber interleaves their lines, and it is ~5x faster).

Refused, each with its own code: a file pypdf cannot parse (``pdf_corrupt``), one encrypted with
a password (``pdf_encrypted``; an empty user password, i.e. copy protection only, is opened), and
one with no text layer at all, e.g. a scan (``pdf_no_text``: run OCR first).
"""

from __future__ import annotations

import io
import logging
import re
import threading
from contextlib import contextmanager

from qa.converters.base import ConversionError, Extraction, described, join_pages, tidy

RULES = 1
#: pypdf renders the stretched word gaps of justified lines as runs of spaces: one space is served.
_SPACES = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")
#: Typographic ligature characters (U+FB00-FB06) that fonts map text to: served as their letters, so
#: "ﬁnance" is found by a search for "finance".
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                            "\ufb05": "st", "\ufb06": "st"})


def _page_text(raw: str) -> str:
    return tidy(_SPACES.sub(" ", raw.translate(_LIGATURES)))
#: What pypdf logs when a page's content stream is damaged (it then reads the page as empty).
_DAMAGE = re.compile(r"decompress|decod|corrupt|invalid|unexpected|truncat", re.I)
#: Refuse PDFs with more pages than this (a 2 MB upload limit makes it academic for uploads).
MAX_PAGES = 5000


_notes = threading.local()


class _PypdfNotes(logging.Handler):
    """Keeps what pypdf logs while *this thread* converts a file (a content stream it could not decompress
    is only a warning to pypdf: the page then reads as empty). Other threads' conversions are not mixed
    in; errors still reach the ``qa.converters`` log."""

    def emit(self, record: logging.LogRecord) -> None:
        notes = getattr(_notes, "list", None)
        if notes is not None and record.levelno >= logging.WARNING:
            notes.append(record.getMessage())
        if record.levelno >= logging.ERROR:
            logging.getLogger("qa.converters").warning("pypdf: %s", record.getMessage())


_HANDLER = _PypdfNotes()


@contextmanager
def _pypdf_notes():
    log = logging.getLogger("pypdf")
    if _HANDLER not in log.handlers:
        log.addHandler(_HANDLER)
        log.propagate = False  # repaired xref tables etc. are pypdf's business, not the server log's
    log.setLevel(logging.WARNING)
    _notes.list = notes = []
    try:
        yield notes
    finally:
        _notes.list = None


class PdfConverter:
    name = "pdf"
    suffixes = (".pdf",)

    def version(self) -> str:
        import pypdf

        return f"pypdf {pypdf.__version__}; rules {RULES}"

    def convert(self, data: bytes) -> Extraction:
        import pypdf
        from pypdf.errors import DependencyError, PyPdfError

        if not data.lstrip()[:5].startswith(b"%PDF"):
            raise ConversionError("is not a PDF file (no %PDF header)", "pdf_corrupt")
        try:
            reader = pypdf.PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                try:
                    ok = reader.decrypt("")
                except Exception:  # noqa: BLE001 - unsupported encryption algorithms raise several types
                    ok = 0
                if not ok:
                    raise ConversionError(
                        "is encrypted with a password; save an unprotected copy and upload that", "pdf_encrypted"
                    )
            n = len(reader.pages)
            if n > MAX_PAGES:
                raise ConversionError(f"has {n} pages; at most {MAX_PAGES} are read", "pdf_too_many_pages")
            with _pypdf_notes() as notes:
                pages = [_page_text(page.extract_text() or "") for page in reader.pages]
        except ConversionError:
            raise
        except DependencyError as e:  # e.g. a stream in JBIG2, whose decoder (jbig2dec) this server lacks
            raise ConversionError(f"uses an encoding this server cannot decode ({e}); save it again as a plain "
                                  "PDF (e.g. print it to PDF) and upload that"[:300], "pdf_corrupt") from None
        except Exception as e:  # noqa: BLE001 - pypdf raises many types on a damaged or hostile file
            raise ConversionError(f"cannot be read as a PDF ({described(e, (PyPdfError,))})", "pdf_corrupt") from None
        if not any(p.strip() for p in pages):
            damage = [n for n in notes if _DAMAGE.search(n)]
            if damage:  # the pages have content, but pypdf could not decode it: not a scan
                raise ConversionError(
                    f"has page contents that cannot be decoded ({damage[0][:200]}); the file is damaged: "
                    "save or export it again and upload that",
                    "pdf_corrupt",
                )
            raise ConversionError(
                f"has no text layer ({n} page{'s' if n != 1 else ''} of images or drawings, e.g. a scan); "
                "run OCR on it first (e.g. ocrmypdf) and upload the result",
                "pdf_no_text",
            )
        text, starts = join_pages(pages)
        return Extraction(text=text, converter=self.name, version=self.version(), page_starts=starts)
