"""What an uploaded document must be: a safe file name of a supported type (qa.converters) whose
content converts to non-empty text.

Names are NFC-normalised (so the NFC and NFD spellings of one name are one document) and must
not contain control, format (bidi marks, zero-width characters) or separator characters.
"""

from __future__ import annotations

import re
import unicodedata

from qa.converters import SUPPORTED_SUFFIXES, ConversionError, Extraction, convert, converter_for


class DocumentError(ValueError):
    """An uploaded document is refused (name, type, encoding, size). ``code`` and ``status`` say how an
    HTTP layer should report it."""

    def __init__(self, message: str, code: str = "invalid_document", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


MAX_NAME_BYTES = 255
#: Unicode categories refused in names: control, format (bidi marks, zero-width space/joiners, BOM),
#: surrogates, private use, line/paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(c: str) -> str:
    if _CONTROL_CHARS.match(c) or unicodedata.category(c) in _REFUSED_CATEGORIES:
        return c.encode("unicode_escape", "backslashreplace").decode("ascii")
    return c


def shown(name: str) -> str:
    """A name quoted for an error message, control/bidi/invisible characters escaped (emoji etc. kept)."""
    return "'" + "".join(_escaped(c) for c in name.replace("'", "\\'")) + "'"


def check_document_name(name: str | None) -> str:
    """A safe, flat file name of a supported type (qa.converters) inside the corpus folder
    (NFC-normalised), or DocumentError."""
    if not name:
        raise DocumentError("every uploaded file needs a file name", "invalid_file_name")
    if "/" in name or "\\" in name:
        raise DocumentError(f"file name {shown(name)} must not contain path separators", "invalid_file_name")
    if ".." in name:
        raise DocumentError(f"file name {shown(name)} must not contain '..'", "invalid_file_name")
    if name.startswith("."):
        raise DocumentError(f"file name {shown(name)} must not start with a dot", "invalid_file_name")
    if _CONTROL_CHARS.search(name):
        raise DocumentError(f"file name {shown(name)} must not contain control characters", "invalid_file_name")
    invisible = [c for c in name if unicodedata.category(c) in _REFUSED_CATEGORIES]
    if invisible:
        raise DocumentError(
            f"file name {shown(name)} must not contain invisible or direction-changing characters "
            f"({', '.join(f'U+{ord(c):04X}' for c in invisible[:5])})", "invalid_file_name")
    if name != name.strip():
        raise DocumentError(f"file name {shown(name)} must not start or end with whitespace", "invalid_file_name")
    if len(unicodedata.normalize("NFC", name).encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise DocumentError(f"file name {shown(name)} is longer than {MAX_NAME_BYTES} bytes", "invalid_file_name")
    if not name.lower().endswith(SUPPORTED_SUFFIXES) or name.lower() in SUPPORTED_SUFFIXES:
        raise DocumentError(f"file {shown(name)}: only {', '.join(SUPPORTED_SUFFIXES)} files can be uploaded",
                            "unsupported_file_type")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise DocumentError(f"file name {shown(name)} is not valid Unicode", "invalid_file_name") from None
    return unicodedata.normalize("NFC", name)


def extract_document(name: str, data: bytes, limit: int) -> Extraction:
    """The upload's extraction (served text, page starts, converter+version) if it is at most
    ``limit`` bytes and converts to non-empty text, or DocumentError. ``.txt``/``.md`` must be UTF-8
    without NULs; other formats are converted by qa.converters, whose error codes (pdf_encrypted,
    pdf_no_text, docx_corrupt, docx_zip_bomb, html_no_text, ...) are passed on."""
    if len(data) > limit:
        raise DocumentError(f"file {shown(name)} is larger than the limit of {limit} bytes", "file_too_large", 413)
    conv = converter_for(name)
    if conv is not None and conv.name == "text":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DocumentError(f"file {shown(name)} is not UTF-8 text ({e.reason} at byte {e.start})", "not_utf8") from None
        if "\x00" in text:
            raise DocumentError(f"file {shown(name)} contains NUL bytes; only plain text can be uploaded", "not_text")
        if not text.strip():
            raise DocumentError(f"file {shown(name)} is empty or only whitespace", "empty_file")
    try:
        return convert(name, data)
    except ConversionError as e:
        raise DocumentError(f"file {shown(name)} {e}", e.code) from None


def check_document_content(name: str, data: bytes, limit: int) -> str:
    """The upload's served text (see :func:`extract_document`), or DocumentError."""
    return extract_document(name, data, limit).text
