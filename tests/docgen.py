"""Build test documents (PDF, DOCX, HTML) in memory with maintained writer libraries.

A document is a list of pages; a page is a list of blocks: ``("heading", text)``,
``("para", text)`` or ``("table", [[cell, ...], ...])``. The same structure is written as

* PDF with fpdf2 (DejaVu Sans from matplotlib's package data, so Greek, Cyrillic, accents and
  typographic punctuation are real glyphs with a ToUnicode map; one PDF page per page),
* DOCX with python-docx (pages become page breaks; headings are Heading 1 paragraphs),
* HTML as a saved article page (nav, cookie banner and footer around an <article>).

Used by the converter tests and by bench/converter_quality.py. Nothing is downloaded.
"""

from __future__ import annotations

import html as html_lib
import io
from pathlib import Path

Block = tuple  # ("heading", str) | ("para", str) | ("table", list[list[str]])
Pages = list[list[Block]]


def font_path() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def make_pdf(pages: Pages, *, encrypt_password: str | None = None) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_font("DejaVu", "", str(font_path()))
    pdf.add_font("DejaVu", "B", str(font_path().with_name("DejaVuSans-Bold.ttf")))
    for blocks in pages:
        pdf.add_page()
        for kind, content in blocks:
            if kind == "heading":
                pdf.set_font("DejaVu", size=16)
                pdf.multi_cell(0, 9, content, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(2)
            elif kind == "para":
                pdf.set_font("DejaVu", size=11)
                pdf.multi_cell(0, 6, content, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(3)
            elif kind == "table":
                pdf.set_font("DejaVu", size=10)
                with pdf.table() as table:
                    for row in content:
                        r = table.row()
                        for cell in row:
                            r.cell(cell)
                pdf.ln(3)
            else:
                raise ValueError(kind)
    if encrypt_password is not None:
        pdf.set_encryption(owner_password="owner-" + encrypt_password, user_password=encrypt_password)
    return bytes(pdf.output())


def make_image_only_pdf(n_pages: int = 2) -> bytes:
    """Pages with drawings but no text at all (what a scan without OCR looks like to a text extractor)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    for i in range(n_pages):
        pdf.add_page()
        pdf.set_fill_color(40 * i % 255, 120, 200)
        pdf.rect(20, 20, 150, 90, style="F")
        pdf.ellipse(40, 140, 100, 60, style="D")
    return bytes(pdf.output())


def make_docx(pages: Pages) -> bytes:
    import docx
    from docx.enum.text import WD_BREAK

    document = docx.Document()
    for i, blocks in enumerate(pages):
        if i:
            document.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        for kind, content in blocks:
            if kind == "heading":
                document.add_heading(content, level=1)
            elif kind == "para":
                document.add_paragraph(content)
            elif kind == "table":
                table = document.add_table(rows=len(content), cols=max(len(r) for r in content))
                for r, row in enumerate(content):
                    for c, cell in enumerate(row):
                        table.cell(r, c).text = cell
            else:
                raise ValueError(kind)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


BOILERPLATE = {
    "nav": "Home News Sport Weather Subscribe Sign in",
    "cookie": "We use cookies to improve your experience. Accept all cookies Manage preferences",
    "aside": "Most read today: celebrity gossip roundup and the weekly horoscope",
    "footer": "Copyright 2026 Example Media Group. Terms of use. Privacy policy. Contact us.",
}


def make_html(pages: Pages, title: str = "Test article", *, boilerplate: bool = True) -> bytes:
    e = html_lib.escape
    parts: list[str] = []
    for blocks in pages:
        for kind, content in blocks:
            if kind == "heading":
                parts.append(f"<h2>{e(content)}</h2>")
            elif kind == "para":
                parts.append(f"<p>{e(content)}</p>")
            elif kind == "table":
                rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in content)
                parts.append(f"<table>{rows}</table>")
            else:
                raise ValueError(kind)
    article = "\n".join(parts)
    chrome = (lambda key: BOILERPLATE[key]) if boilerplate else (lambda key: "")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body {{ font-family: sans-serif }}</style><script>window.tracker = "do not index me";</script></head>
<body>
<nav class="menu"><ul>{"".join(f'<li><a href="/{w.lower()}">{w}</a></li>' for w in chrome("nav").split())}</ul></nav>
<div id="cookie-banner" class="cookie-consent"><p>{chrome("cookie")}</p></div>
<main><article><h1>{e(title)}</h1>
{article}
</article></main>
<aside class="sidebar"><p>{chrome("aside")}</p></aside>
<footer><p>{chrome("footer")}</p></footer>
</body></html>"""
    return page.encode("utf-8")


def blocks_text(pages: Pages) -> list[str]:
    """Every text of the document (headings, paragraphs, table cells), in order."""
    out: list[str] = []
    for blocks in pages:
        for kind, content in blocks:
            if kind == "table":
                out.extend(c for row in content for c in row)
            else:
                out.append(content)
    return out
