"""Extraction quality of the document converters and their runners-up, on generated test files.

    python bench/converter_quality.py            # prints the tables of docs/converters.md
    python bench/converter_quality.py --docs 50  # more generated documents per format

Needs the `compare` extra for the runners-up (pip install -e '.[compare]': pdfplumber, mammoth).
Documents are built like the tests build them (tests/docgen.py: fpdf2, python-docx, HTML with page
chrome around an <article>) from seeded random text: headings, paragraphs, tables, several pages,
accents, Greek and Cyrillic (PDF), plus CJK and emoji (DOCX/HTML). Measured per candidate:

* blocks kept: share of headings, paragraphs and table cells found verbatim (whitespace aside);
* words kept: share of the source's words (with multiplicity) in the output;
* chrome leaked (HTML): share of the navigation/cookie/side-bar/footer phrases in the output;
* order: share of consecutive block pairs that appear in the right order;
* double spaces: runs of two or more spaces per 1,000 characters (justified PDF lines);
* ms/doc: mean conversion time.

Plus a few named cases that show typical failures (two-column PDF pages, running page headers,
DOCX headers/footers, a short HTML page).
"""

from __future__ import annotations

import argparse
import io
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from docgen import BOILERPLATE, blocks_text, font_path, make_docx, make_html, make_pdf  # noqa: E402

LATIN = "abcdefghijklmnopqrstuvwxyz" * 3 + "äöüßéèçñøåœłž"
PDF_LETTERS = LATIN + "αβγδεζηθλμπσω" + "абвгдежзиклмнопрстуфя"
RICH_LETTERS = PDF_LETTERS + "漢字仮名한국어" + "🦄🌊"
WORD = re.compile(r"\w+")


def rand_doc(rng: random.Random, letters: str) -> list[list[tuple]]:
    def word() -> str:
        return "".join(rng.choice(letters) for _ in range(rng.randint(2, 9)))

    def sentence() -> str:
        ws = [word() for _ in range(rng.randint(4, 14))]
        return ws[0].capitalize() + " " + " ".join(ws[1:]) + "."

    pages = []
    for _ in range(rng.randint(1, 4)):
        blocks: list[tuple] = []
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.7:
                blocks.append(("heading", " ".join(word() for _ in range(rng.randint(1, 4))).title()))
            for _ in range(rng.randint(1, 3)):
                if rng.random() < 0.25:
                    cols = rng.randint(2, 4)
                    blocks.append(("table", [[word() for _ in range(cols)] for _ in range(rng.randint(2, 4))]))
                else:
                    blocks.append(("para", " ".join(sentence() for _ in range(rng.randint(1, 5)))))
        pages.append(blocks)
    return pages


def norm(text: str) -> str:
    return " ".join(text.replace("|", " ").split())


def score(pages, text: str) -> dict[str, float]:
    flat = norm(text)
    blocks = [norm(b) for b in blocks_text(pages)]
    found = [b in flat for b in blocks]
    src = Counter(w.lower() for w in WORD.findall(" ".join(blocks)))
    got = Counter(w.lower() for w in WORD.findall(text))
    positions = [flat.find(b) for b in blocks]
    pairs = [(a, b) for a, b in zip(positions, positions[1:]) if a >= 0 and b >= 0]
    return {
        "blocks": 100 * sum(found) / max(1, len(found)),
        "words": 100 * sum(min(n, got[w]) for w, n in src.items()) / max(1, sum(src.values())),
        "order": 100 * sum(a <= b for a, b in pairs) / max(1, len(pairs)),
        "dblspace": 1000 * len(re.findall(r"(?<=\S)  +(?=\S)", text)) / max(1, len(text)),
        "chrome": 100 * sum(v in text for v in BOILERPLATE.values()) / len(BOILERPLATE),
    }


# --------------------------------------------------------------------------- candidates


def pypdf_text(data: bytes) -> str:
    from qa.converters import convert

    return convert("x.pdf", data).text


def pdfplumber_text(data: bytes) -> str:
    import pdfplumber

    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return "\n\n".join(page.extract_text() or "" for page in pdf.pages)


def python_docx_text(data: bytes) -> str:
    from qa.converters import convert

    return convert("x.docx", data).text


def mammoth_text(data: bytes) -> str:
    import mammoth

    return mammoth.extract_raw_text(io.BytesIO(data)).value


def ours_html(data: bytes) -> str:
    from qa.converters import convert

    return convert("x.html", data).text


def trafilatura_only(data: bytes) -> str:
    import trafilatura

    from qa.converters.html import _config

    return trafilatura.extract(data.decode("utf-8"), output_format="txt", include_tables=True,
                               deduplicate=False, config=_config()) or ""


def trafilatura_defaults(data: bytes) -> str:
    import trafilatura

    return trafilatura.extract(data.decode("utf-8"), output_format="txt", include_tables=True) or ""


def selectolax_text(data: bytes) -> str:
    from selectolax.lexbor import LexborHTMLParser

    from qa.converters.html import _fallback_text

    return _fallback_text(LexborHTMLParser(data.decode("utf-8")))


CANDIDATES: dict[str, tuple[Callable, list[tuple[str, Callable]], str]] = {
    "PDF": (make_pdf, [("pypdf (chosen)", pypdf_text), ("pdfplumber", pdfplumber_text)], PDF_LETTERS),
    "DOCX": (make_docx, [("python-docx (chosen)", python_docx_text), ("mammoth", mammoth_text)], RICH_LETTERS),
    "HTML": (make_html, [("trafilatura + <article> check (chosen)", ours_html),
                         ("trafilatura alone (MIN_EXTRACTED_SIZE 1)", trafilatura_only),
                         ("trafilatura, default settings", trafilatura_defaults),
                         ("selectolax, all visible text", selectolax_text)], RICH_LETTERS),
}


def table(fmt: str, n_docs: int, seed: int) -> list[str]:
    make, candidates, letters = CANDIDATES[fmt]
    rng = random.Random(seed)
    docs = [rand_doc(rng, letters) for _ in range(n_docs)]
    files = [make(d) for d in docs]
    cols = ["blocks kept %", "words kept %", "order %", "double spaces /1000 chars", "ms/doc"]
    if fmt == "HTML":
        cols.insert(3, "chrome leaked %")
    out = [f"| {fmt}: {n_docs} generated documents | " + " | ".join(cols) + " |",
           "|---|" + "---:|" * len(cols)]
    for name, fn in candidates:
        totals: Counter = Counter()
        t0 = time.perf_counter()
        texts = [fn(f) for f in files]
        ms = 1000 * (time.perf_counter() - t0) / len(files)
        for d, t in zip(docs, texts):
            totals.update(score(d, t))
        avg = {k: v / len(docs) for k, v in totals.items()}
        vals = [avg["blocks"], avg["words"], avg["order"], avg["dblspace"], ms]
        if fmt == "HTML":
            vals.insert(3, avg["chrome"])
        out.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in vals) + " |")
    return out


# --------------------------------------------------------------------------- named cases


def two_column_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.add_font("DejaVu", "", str(font_path()))
    pdf.set_font("DejaVu", size=11)
    left = "Left column: the Quillon lighthouse was built in 1873 by Marta Okonkwo on Tesk island. " * 3
    right = "Right column: the ferry to Tesk island leaves every Tuesday at 07:45 from pier four. " * 3
    with pdf.text_columns(ncols=2, gutter=10) as cols:
        cols.write(left)
        cols.new_column()
        cols.write(right)
    return bytes(pdf.output())


def running_header_pdf() -> bytes:
    from fpdf import FPDF

    class WithHeader(FPDF):
        def header(self):
            self.set_font("DejaVu", size=8)
            self.cell(0, 5, "Harbour Authority - Annual report 2025 - confidential", new_x="LMARGIN", new_y="NEXT")

        def footer(self):
            self.set_y(-12)
            self.set_font("DejaVu", size=8)
            self.cell(0, 5, f"Page {self.page_no()}")

    pdf = WithHeader(format="A4")
    pdf.add_font("DejaVu", "", str(font_path()))
    for i in range(2):
        pdf.add_page()
        pdf.set_font("DejaVu", size=11)
        pdf.multi_cell(0, 6, f"Body text of page {i + 1}: the cranes were serviced in spring.")
    return bytes(pdf.output())


def docx_with_header_footer() -> bytes:
    import docx

    d = docx.Document()
    d.sections[0].header.paragraphs[0].text = "Header: Harbour Authority memo"
    d.sections[0].footer.paragraphs[0].text = "Footer: internal use only"
    d.add_paragraph("Body: the council met on 3 March 2026.")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def short_html() -> bytes:
    return make_html([[("para", "Opening hours: Mon-Fri 9:00-17:00."),
                       ("table", [["Day", "Hours"], ["Sat", "10-14"]])]])


def show(text: str, width: int = 160) -> str:
    return repr(text[:width] + ("…" if len(text) > width else ""))


def cases() -> list[str]:
    out = ["", "Named cases (first characters of each output):", ""]
    pdf2 = two_column_pdf()
    hdr = running_header_pdf()
    for label, data in (("two-column PDF page", pdf2), ("PDF with running header/footer", hdr)):
        out.append(f"* {label}:")
        out.append(f"  * pypdf: {show(pypdf_text(data))}")
        out.append(f"  * pdfplumber: {show(pdfplumber_text(data))}")
    import docx

    t = docx.Document()
    t.add_paragraph("Before the table.")
    tab = t.add_table(rows=2, cols=3)
    for r, row in enumerate([["Route", "Boat", "Departs"], ["Tesk", "Marta", "07:45"]]):
        for c, cell in enumerate(row):
            tab.cell(r, c).text = cell
    buf = io.BytesIO()
    t.save(buf)
    out.append("* DOCX table (2 rows, 3 cells):")
    out.append(f"  * python-docx (ours): {show(python_docx_text(buf.getvalue()))}")
    out.append(f"  * mammoth: {show(mammoth_text(buf.getvalue()))}")
    tpdf = make_pdf([[("para", "Ferries:"), ("table", [["Route", "Boat", "Departs"], ["Tesk island", "Marta", "07:45"]])]])
    out.append("* PDF table (2 rows, 3 cells):")
    out.append(f"  * pypdf: {show(pypdf_text(tpdf))}")
    out.append(f"  * pdfplumber: {show(pdfplumber_text(tpdf))}")
    d = docx_with_header_footer()
    out.append("* DOCX with a header and a footer:")
    out.append(f"  * python-docx (ours): {show(python_docx_text(d))}")
    out.append(f"  * mammoth: {show(mammoth_text(d))}")
    h = short_html()
    out.append("* short HTML page (one sentence and a small table inside <article>, menus around it):")
    for name, fn in CANDIDATES["HTML"][1]:
        out.append(f"  * {name}: {show(fn(h))}")
    tiny = make_html([[("para", "The Zorblat1000 vault code is 1000-alpha."),
                       ("table", [["a", "a"], ["a", "a"]]), ("table", [["a", "a"], ["a", "a"]])]])
    out.append("* an article of one sentence and two tiny tables (found by the property test):")
    for name, fn in CANDIDATES["HTML"][1]:
        out.append(f"  * {name}: {show(fn(tiny))}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=30, help="generated documents per format (default 30)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)
    for fmt in CANDIDATES:
        print("\n".join(table(fmt, args.docs, args.seed)))
        print()
    print("\n".join(cases()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
