"""Plain text and Markdown: the file's UTF-8 text as ``open(path, encoding="utf-8").read()``
returns it (universal newlines, a BOM kept as U+FEFF). See :mod:`qa.ingest` for the contract."""

from __future__ import annotations

from qa.converters.base import ConversionError, Extraction

RULES = 1


class TextConverter:
    name = "text"
    suffixes = (".txt", ".md")

    def version(self) -> str:
        return f"utf-8; rules {RULES}"

    def convert(self, data: bytes) -> Extraction:
        try:
            text = data.decode("utf-8")  # strict; a BOM stays as U+FEFF
        except UnicodeDecodeError as e:
            raise ConversionError(f"not UTF-8 text ({e.reason} at byte {e.start})", "not_utf8") from None
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if not text.strip():
            raise ConversionError("empty or only whitespace", "empty_file")
        return Extraction(text=text, converter=self.name, version=self.version())
