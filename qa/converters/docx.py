"""Word (.docx) with python-docx: body paragraphs and tables in document order.

Headings and paragraphs become one line each, separated by a blank line; a table becomes one
line per row with the cells joined by " | " (a merged cell is written once). A paragraph's text is
that of all its runs as the document reads with tracked changes accepted: inserted (``w:ins``,
``w:moveTo``) runs and runs in content controls, smart tags and simple fields count, deleted ones
(``w:del``, ``w:moveFrom``) do not (python-docx's ``Paragraph.text`` reads only plain runs and
hyperlinks, so a tracked insertion was lost: citation audit, 2026-12-07). Headers, footers,
footnotes, comments and text boxes are not read (see docs/converters.md for the comparison with
mammoth, which we measured as the alternative).

Before python-docx sees the file, the zip container is checked: a file that is not a zip or has
no ``word/document.xml`` is ``docx_corrupt``; one whose parts would unpack to more than
``MAX_UNPACKED_BYTES`` or compress more than ``MAX_RATIO`` : 1 is refused as ``docx_zip_bomb``
without unpacking anything. (A zip whose headers lie about sizes fails zipfile's own size/CRC
checks while reading and ends up ``docx_corrupt``.) XML entities are not expanded by python-docx's
parser (lxml with ``resolve_entities=False``).
"""

from __future__ import annotations

import io
import zipfile

from qa.converters.base import ConversionError, Extraction, described, tidy

RULES = 2
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
MAX_RATIO = 200
MAX_MEMBERS = 10_000


def check_zip(data: bytes, kind: str = "DOCX") -> zipfile.ZipFile:
    """The zip container of an Office file, after the bomb checks (raises ConversionError)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise ConversionError(f"is not a valid {kind} file (not a zip container: {e})", "docx_corrupt") from None
    if len(infos) > MAX_MEMBERS:
        raise ConversionError(f"holds {len(infos)} files in its zip container; refused as a zip bomb", "docx_zip_bomb")
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if total > MAX_UNPACKED_BYTES:
        raise ConversionError(
            f"would unpack to {total} bytes (limit {MAX_UNPACKED_BYTES}); refused as a zip bomb", "docx_zip_bomb"
        )
    for i in infos:
        if i.file_size > 1024 * 1024 and i.file_size > MAX_RATIO * max(1, i.compress_size):
            raise ConversionError(
                f"part {i.filename} compresses {i.file_size // max(1, i.compress_size)}:1 "
                f"({i.file_size} bytes from {i.compress_size}); refused as a zip bomb",
                "docx_zip_bomb",
            )
    if total > 1024 * 1024 and total > MAX_RATIO * max(1, packed):
        raise ConversionError(f"compresses {total // max(1, packed)}:1; refused as a zip bomb", "docx_zip_bomb")
    if "word/document.xml" not in {i.filename for i in infos}:
        raise ConversionError(f"is not a {kind} file (no word/document.xml in the zip)", "docx_corrupt")
    return zf


#: The runs of one paragraph as it reads with tracked changes accepted (not those of a text box inside it).
_RUNS = ".//w:r[count(ancestor::w:p) = 1 and not(ancestor::w:del) and not(ancestor::w:moveFrom)]"


def paragraph_text(paragraph) -> str:
    """A paragraph's text with tracked changes accepted (see the module docstring)."""
    from docx.text.run import Run

    return "".join(Run(r, paragraph).text for r in paragraph._p.xpath(_RUNS))


def _table_lines(table) -> list[str]:
    lines = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell appears once per grid column it spans
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(t.strip() for t in map(paragraph_text, cell.paragraphs) if t.strip()))
        if any(cells):
            lines.append(" | ".join(cells))
    return lines


class DocxConverter:
    name = "docx"
    suffixes = (".docx",)

    def version(self) -> str:
        from importlib.metadata import version

        return f"python-docx {version('python-docx')}; rules {RULES}"

    def convert(self, data: bytes) -> Extraction:
        check_zip(data)
        import docx
        from docx.table import Table

        try:
            document = docx.Document(io.BytesIO(data))
            blocks: list[str] = []
            for item in document.iter_inner_content():
                if isinstance(item, Table):
                    lines = _table_lines(item)
                    if lines:
                        blocks.append("\n".join(lines))
                elif (text := paragraph_text(item)).strip():
                    blocks.append(text)
        except ConversionError:
            raise
        except Exception as e:  # noqa: BLE001 - python-docx/lxml raise many types for a damaged file
            from docx.opc.exceptions import OpcError
            from lxml.etree import LxmlError

            raise ConversionError(f"cannot be read as a DOCX file ({described(e, (OpcError, LxmlError))})",
                                  "docx_corrupt") from None
        text = tidy("\n\n".join(blocks))
        if not text.strip():
            raise ConversionError("has no text (an empty document, or only images)", "docx_no_text")
        return Extraction(text=text, converter=self.name, version=self.version())
