"""Converted formats (PDF, DOCX, HTML): extraction, exact citations, pages, bad files, offline.

Test files are built here (tests/docgen.py: fpdf2, python-docx, plain HTML); nothing is downloaded.

* Property tests (hypothesis), one per format, on generated documents (several pages, headings,
  tables, Unicode): every word of the source is in the extracted text, PDF page starts put every
  sentence on its page, and through the HTTP API (FakePipeline, which converts uploads with the
  same qa.converters and fills pages with the same helper as QAPipeline) every answer and
  citation slices the served text exactly and carries the right page.
* Bad files get their own error code and change nothing (corpus folder and document list).
* The real pipeline (slow): a question about a sentence on page 3 of an uploaded PDF cites page 3.
"""

from __future__ import annotations

import hashlib
import io
import random
import socket
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from api.app import create_app
from api_fake import FakePipeline
from docgen import BOILERPLATE, blocks_text, make_docx, make_html, make_image_only_pdf, make_pdf
from qa.config import Settings
from qa.converters import ConversionError, convert, page_of
from qa.converters.docx import DocxConverter

# --------------------------------------------------------------------------- generated documents

# Letters DejaVu Sans draws (so the PDF really contains them): Latin with accents, Greek, Cyrillic.
PDF_LETTERS = "abcdefghijklmnopqrstuvwxyzäöüßéèçñøåœłžÄÖÜÉ" + "αβγδεζηθλμπσω" + "абвгдежзиклмнопрстуфя"
# DOCX and HTML also carry CJK and emoji (no font involved).
RICH_LETTERS = PDF_LETTERS + "漢字仮名한국어" + "🦄🌊🧪"


def words(letters: str):
    return st.text(alphabet=letters, min_size=1, max_size=10)


def sentence(letters: str):
    return st.lists(words(letters), min_size=3, max_size=12).map(lambda ws: ws[0].capitalize() + " " + " ".join(ws[1:]) + ".")


def page_blocks(letters: str):
    """A page: sections of an optional heading followed by paragraphs and tables (a heading always
    heads something: trafilatura drops a heading with nothing after it at the end of an article)."""
    heading = st.lists(words(letters), min_size=1, max_size=5).map(lambda ws: ("heading", " ".join(ws).title()))
    para = st.lists(sentence(letters), min_size=1, max_size=3).map(lambda ss: ("para", " ".join(ss)))
    table = st.integers(2, 3).flatmap(
        lambda cols: st.lists(st.lists(words(letters), min_size=cols, max_size=cols), min_size=2, max_size=3)
    ).map(lambda rows: ("table", rows))
    section = st.tuples(st.lists(heading, max_size=1), st.lists(st.one_of(para, para, table), min_size=1, max_size=3))
    return st.lists(section, min_size=1, max_size=2).map(lambda secs: [b for h, body in secs for b in [*h, *body]])


@st.composite
def documents(draw, letters: str, max_pages: int = 4):
    """(pages, fact page index, code word, answer): a unique fact sentence planted on one page."""
    pages = draw(st.lists(page_blocks(letters), min_size=1, max_size=max_pages))
    fact_page = draw(st.integers(0, len(pages) - 1))
    n = draw(st.integers(1000, 9999))
    code, answer = f"Zorblat{n}", f"{n}-alpha"
    fact = ("para", f"The {code} vault code is {answer}.")
    blocks = list(pages[fact_page])
    blocks.insert(draw(st.integers(0, len(blocks))), fact)
    pages[fact_page] = blocks
    return pages, fact_page, code, answer


def normalise(text: str) -> str:
    return " ".join(text.replace("|", " ").split())


def assert_words_extracted(pages, text: str) -> None:
    """Every word of every heading, paragraph and table cell occurs in the extracted text, in order
    within each block (whitespace and table separators aside)."""
    flat = normalise(text)
    for block in blocks_text(pages):
        assert normalise(block) in flat, (block, text)


FORMATS = {
    "pdf": (make_pdf, PDF_LETTERS),
    "docx": (make_docx, RICH_LETTERS),
    "html": (make_html, RICH_LETTERS),
}
PROPERTY = hyp_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- converter properties


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_extraction_keeps_every_word_and_pdf_pages(fmt):
    make, letters = FORMATS[fmt]

    @PROPERTY
    @given(documents(letters))
    def check(doc):
        pages, fact_page, code, answer = doc
        ex = convert(f"doc.{fmt}", make(pages))
        assert ex.converter == fmt and ex.version
        assert "\r" not in ex.text and "\x00" not in ex.text and ex.text.strip()
        assert_words_extracted(pages, ex.text)
        if fmt == "pdf":
            assert len(ex.page_starts) == len(pages) and ex.page_starts[0] == 0
            assert list(ex.page_starts) == sorted(set(ex.page_starts))
            at = ex.text.index(code)
            assert ex.page_of(at) == fact_page + 1
            # every sentence of a page lies between that page's start and the next one's
            for i, blocks in enumerate(pages):
                page_text = ex.text[ex.page_starts[i] : ex.page_starts[i + 1] if i + 1 < len(pages) else None]
                for block in blocks_text([blocks]):
                    assert normalise(block) in normalise(page_text)
        else:
            assert ex.page_starts == ()

    check()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("converted-api")
    corpus = tmp / "corpus"
    corpus.mkdir()
    (corpus / "intro.txt").write_text("This corpus holds generated test documents.\n", encoding="utf-8")
    # TestClient's Host header must be allowed (the Host allow-list, api/security.py)
    s = Settings(corpus_dir=corpus, index_dir=tmp / "index", max_upload_bytes=5_000_000, allowed_hosts="testserver")
    with TestClient(create_app(s, FakePipeline(s), background_warm_up=False)) as client:
        yield client, s


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_answer_and_citation_slices_the_served_text(api, fmt):
    """Upload a generated document, ask about its planted fact: every answer and citation slices
    GET /documents/{id}'s text exactly; for a PDF, `page` is the planted page."""
    client, s = api
    make, letters = FORMATS[fmt]
    counter = iter(range(10**6))

    @PROPERTY
    @given(documents(letters))
    def check(doc):
        pages, fact_page, code, answer = doc
        name = f"generated-{next(counter)}.{fmt}"
        r = client.post("/documents", files=[("files", (name, make(pages), "application/octet-stream"))])
        assert r.status_code == 201, r.text
        info = r.json()["documents"][0]
        assert info["id"] == name and info["converter"] == fmt
        assert info["pages"] == (len(pages) if fmt == "pdf" else None)
        try:
            served = client.get(f"/documents/{name}").json()
            text, starts = served["text"], served["page_starts"]
            assert served["length"] == len(text)
            body = client.post("/ask", json={"question": f"What is the {code} vault code?"}).json()
            assert body["answer_found"], body
            best = body["answers"][0]
            assert best["citations"][0]["document"] == name and code in best["text"], best
            for a in body["answers"]:
                assert a["page"] == a["citations"][0]["page"]  # the answer's page is its first citation's
                for item in a["citations"]:
                    doc_text = text if item["document"] == name else \
                        client.get(f"/documents/{item['document']}").json()["text"]
                    assert doc_text[item["start"]:item["end"]] == item["text"]
                    assert doc_text[item["context_start"]:item["context_end"]] == item["context"]
                    if item["document"] == name and fmt == "pdf":
                        assert item["page"] == page_of(starts, item["start"])
                    elif fmt != "pdf":
                        assert item["page"] is None
            if fmt == "pdf":
                assert best["page"] == fact_page + 1 and best["citations"][0]["page"] == fact_page + 1
            else:
                assert starts is None
            for p in body["passages"]:
                if p["document"] == name:
                    assert text[p["start"]:p["end"]] == p["text"]
        finally:
            assert client.delete(f"/documents/{name}").status_code == 200

    check()


# --------------------------------------------------------------------------- what each library does


def test_html_drops_page_chrome_and_scripts():
    pages = [[("heading", "Harbour news"), ("para", "The Quillon lighthouse on Tesk island was built in 1873.")]]
    ex = convert("page.html", make_html(pages, title="Harbour news today"))
    assert "1873" in ex.text and ex.text.startswith("Harbour news today")
    for chrome in BOILERPLATE.values():
        assert chrome not in ex.text
    assert "tracker" not in ex.text and "font-family" not in ex.text


def test_html_fallback_for_pages_trafilatura_finds_no_article_in():
    page = b"<html><body><div>Opening hours</div><div>Mon-Fri 9:00-17:00</div><script>x=1</script></body></html>"
    ex = convert("hours.htm", page)
    assert "Opening hours" in ex.text and "Mon-Fri 9:00-17:00" in ex.text and "x=1" not in ex.text


def test_html_in_a_legacy_charset():
    page = '<html><head><meta charset="windows-1252"><title>Café</title></head><body><p>Crème brûlée costs 4 €.</p></body></html>'
    ex = convert("menu.html", page.encode("cp1252"))
    assert "Crème brûlée costs 4 €." in ex.text


def test_docx_tables_in_document_order_and_merged_cells_once():
    import docx

    d = docx.Document()
    d.add_paragraph("Before the table.")
    t = d.add_table(rows=2, cols=3)
    t.cell(0, 0).merge(t.cell(0, 1)).text = "Merged heading"
    t.cell(0, 2).text = "Year"
    t.cell(1, 0).text, t.cell(1, 1).text, t.cell(1, 2).text = "Quillon", "lighthouse", "1873"
    d.add_paragraph("After the table.")
    buf = io.BytesIO()
    d.save(buf)
    ex = convert("t.docx", buf.getvalue())
    assert ex.text == "Before the table.\n\nMerged heading | Year\nQuillon | lighthouse | 1873\n\nAfter the table."


def docx_with_body(body_xml: str) -> bytes:
    """A generated DOCX whose document.xml body is ``body_xml`` (raw WordprocessingML paragraphs)."""
    src = zipfile.ZipFile(io.BytesIO(make_docx([[("para", "placeholder")]])))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "word/document.xml":
                xml = data.decode("utf-8")
                head, tail = xml.index("<w:body>") + len("<w:body>"), xml.index("<w:sectPr")
                data = (xml[:head] + body_xml + xml[tail:]).encode("utf-8")
            out.writestr(info, data)
    return buf.getvalue()


def test_docx_reads_tracked_changes_accepted():
    """Inserted runs (and runs in content controls) are text, deleted ones are not: python-docx's Paragraph.text
    dropped the insertion (citation audit, 2026-12-07: a question about it had nothing to cite)."""
    change = 'w:author="a" w:date="2026-01-01T00:00:00Z"'
    body = (f'<w:p><w:r><w:t xml:space="preserve">The Ulm archive was founded by </w:t></w:r>'
            f'<w:del w:id="1" {change}><w:r><w:delText>Old Name</w:delText></w:r></w:del>'
            f'<w:ins w:id="2" {change}><w:r><w:t>Hedda Brun</w:t></w:r></w:ins>'
            f'<w:r><w:t xml:space="preserve"> in 1850.</w:t></w:r></w:p>'
            f'<w:tbl><w:tr><w:tc><w:p><w:ins w:id="3" {change}><w:r><w:t>Cell insert</w:t></w:r></w:ins></w:p></w:tc>'
            f'<w:tc><w:p><w:sdt><w:sdtContent><w:r><w:t>Control</w:t></w:r></w:sdtContent></w:sdt></w:p></w:tc>'
            f'</w:tr></w:tbl>')
    ex = convert("tracked.docx", docx_with_body(body))
    assert ex.text == "The Ulm archive was founded by Hedda Brun in 1850.\n\nCell insert | Control"


def test_pdf_ligatures_and_justified_gaps_are_plain_text():
    pages = [[("para", "The ﬁnance oﬃce ﬂoor. " + "Justified text runs over several lines of this page. " * 5)]]
    ex = convert("l.pdf", make_pdf(pages))
    assert "The finance office floor." in ex.text
    assert "  " not in ex.text and "\ufb01" not in ex.text


def pdf_of(objects: list[bytes]) -> bytes:
    """A PDF file of these objects (numbered from 1; object 1 the catalog) with its cross-reference table."""
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def tounicode_pdf(to_unicode: dict[int, str], shown: bytes) -> bytes:
    """A one-page PDF showing the one-byte codes ``shown`` in a font whose ToUnicode map sends code ``k`` to
    the UTF-16BE hex ``to_unicode[k]`` (e.g. ``"D800"``: a lone surrogate, which pypdf passes on as is)."""
    cmap = ("/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Adobe-Identity-UCS def "
            "/CMapType 2 def 1 begincodespacerange <00> <FF> endcodespacerange %d beginbfchar %s endbfchar endcmap "
            "CMapName currentdict /CMap defineresource pop end end"
            % (len(to_unicode), " ".join(f"<{k:02X}> <{v}>" for k, v in to_unicode.items()))).encode()
    content = b"BT /F1 12 Tf 20 100 Td <%s> Tj ET" % shown.hex().encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(cmap), cmap)]
    return pdf_of(objects)


#: "Word", a lone surrogate, "Word" again, then the two halves of U+1F600 as two codes of their own
SURROGATE_PDF_CODES = {0x41: "0057", 0x42: "006F", 0x43: "0072", 0x44: "0064", 0x01: "D800", 0x02: "D83D",
                       0x03: "DE00", 0x20: "0020"}


def test_pdf_text_has_no_surrogates():
    """A ToUnicode map can send a glyph to half of a surrogate pair, which pypdf passes on: a lone half is
    served as U+FFFD, two halves in a row as their character (UTF-8, JSON and the tokenizer take neither half)."""
    ex = convert("s.pdf", tounicode_pdf(SURROGATE_PDF_CODES, b"ABCD\x01 ABCD \x02\x03"))
    assert ex.text == "Word\ufffd Word \U0001F600"
    ex.text.encode("utf-8")


def test_pdf_with_a_lone_surrogate_uploads_and_slices(api):
    """Found by the citation audit (2026-12-07): the upload answered 500 (and `qa index` stopped) on such a file."""
    client, _ = api
    name = "surrogate.pdf"
    r = client.post("/documents", files=[("files", (name, tounicode_pdf(SURROGATE_PDF_CODES, b"ABCD\x01 ABCD"),
                                                    "application/pdf"))])
    assert r.status_code == 201, r.text
    try:
        got = client.get(f"/documents/{name}")
        assert got.status_code == 200 and got.json()["text"] == "Word\ufffd Word"
        assert client.get(f"/documents/{name}?raw=true").text == "Word\ufffd Word"
    finally:
        assert client.delete(f"/documents/{name}").status_code == 200


def test_pdf_with_copy_protection_only_is_read():
    """Encrypted with an owner password but an empty user password: opens without a password."""
    pages = [[("para", "Copy protected but readable text.")]]
    ex = convert("p.pdf", make_pdf(pages, encrypt_password=""))
    assert "readable text" in ex.text


def test_converters_work_offline(monkeypatch):
    """No converter opens a network connection (run with every socket refused)."""
    def refuse(*a, **k):
        raise OSError("network access attempted in a converter")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    pages = [[("heading", "Offline"), ("para", "Converted without any network access.")]]
    for name, data in (("a.pdf", make_pdf(pages)), ("a.docx", make_docx(pages)), ("a.html", make_html(pages))):
        assert "without any network access" in convert(name, data).text


# --------------------------------------------------------------------------- bad files


def zip_bomb_docx() -> bytes:
    """A valid-looking DOCX container whose document.xml unpacks from ~50 KB to 50 MB."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with z.open("word/document.xml", "w") as f:
            chunk = b"\x20" * (1024 * 1024)
            for _ in range(50):
                f.write(chunk)
    return buf.getvalue()


def corrupt_docx() -> bytes:
    data = make_docx([[("para", "This document will be cut in half.")]])
    return data[: len(data) // 2]


def docx_with_broken_xml() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(make_docx([[("para", "fine")]]))) as src, zipfile.ZipFile(buf, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, b"<w:document><unclosed" if item.filename == "word/document.xml" else data)
    return buf.getvalue()


def jbig2_pdf() -> bytes:
    """A one-page PDF whose content stream is JBIG2-encoded: pypdf needs the jbig2dec program to read it."""
    return one_stream_pdf(b"/JBIG2Decode", b"  ")


def garbled_pdf() -> bytes:
    """A one-page PDF whose Flate-compressed content stream is random bytes: pypdf only logs a warning and reads
    the page as empty, which is a damaged file, not a scan (found by a hostile-upload audit, 2026-12-07)."""
    return one_stream_pdf(b"/FlateDecode", random.Random(3).randbytes(400))


def one_stream_pdf(filter_name: bytes, data: bytes) -> bytes:
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Filter %s /Length %d >>\nstream\n%s\nendstream" % (filter_name, len(data), data),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    return pdf_of(objects)


BAD_FILES = {
    "encrypted.pdf": (lambda: make_pdf([[("para", "Secret text.")]], encrypt_password="hunter2"), "pdf_encrypted"),
    "scan.pdf": (lambda: make_image_only_pdf(3), "pdf_no_text"),
    "broken.pdf": (lambda: make_pdf([[("para", "Cut short.")]])[:300], "pdf_corrupt"),
    "renamed.pdf": (lambda: b"Just some text pretending to be a PDF.", "pdf_corrupt"),
    "broken.docx": (corrupt_docx, "docx_corrupt"),
    "badxml.docx": (docx_with_broken_xml, "docx_corrupt"),
    "notazip.docx": (lambda: "plain text named .docx".encode(), "docx_corrupt"),
    "bomb.docx": (zip_bomb_docx, "docx_zip_bomb"),
    "empty.docx": (lambda: make_docx([]), "docx_no_text"),
    "nobody.html": (lambda: b"<html><head><title>Only a title</title><script>var x = 'script text';</script>"
                            b"</head><body><img src='a.png'><script>document.write('hi')</script></body></html>",
                    "html_no_text"),
    "blank.htm": (lambda: b"   \n", "html_no_text"),
    # no letter or digit anywhere: nothing to ask about or cite (found by a hostile-upload audit, 2026-12-07)
    "bom-only.txt": (lambda: "\ufeff \n".encode(), "empty_file"),
    "zero-width.txt": (lambda: "\u200b\u200b\u2060".encode(), "empty_file"),
    "controls.md": (lambda: b"\x01\x02\x03 \x7f -- !", "empty_file"),
    "invisible.html": (lambda: b"<html><body><p>&nbsp;&#8203;</p></body></html>", "html_no_text"),
    "random.html": (lambda: random.Random(7).randbytes(5000), "not_text"),
    "jbig2.pdf": (jbig2_pdf, "pdf_corrupt"),
    "garbled.pdf": (garbled_pdf, "pdf_corrupt"),
    # block elements nested thousands deep: parsing time grows with the square of the depth (1 MB took ~17 s)
    "deep.html": (lambda: b"<div>" * 5000 + b"Some text." + b"</div>" * 5000, "html_too_deep"),
    "deep-unclosed.htm": (lambda: b"<body>" + b"<section><ul>" * 1500 + b"Words.", "html_too_deep"),
    "types-not-xml.docx": (lambda: _zip({"word/document.xml": b"<not xml", "[Content_Types].xml": b"<x/>"}),
                           "docx_corrupt"),
}


def _zip(parts: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_has_its_own_code(name):
    make, code = BAD_FILES[name]
    with pytest.raises(ConversionError) as e:
        convert(name, make())
    assert e.value.code == code and str(e.value)
    # the library's words for what is wrong, never Python internals (an AttributeError deep in lxml)
    assert "Error:" not in str(e.value) and "object has no attribute" not in str(e.value), str(e.value)


def test_zip_bomb_is_refused_before_python_docx_unpacks_it(monkeypatch):
    import docx

    def opened(*a, **k):
        raise AssertionError("python-docx was given a zip bomb")

    monkeypatch.setattr(docx, "Document", opened)
    with pytest.raises(ConversionError) as e:
        DocxConverter().convert(zip_bomb_docx())
    assert e.value.code == "docx_zip_bomb" and "bomb" in str(e.value)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_upload_is_400_with_its_code_and_changes_nothing(api, name):
    client, s = api
    make, code = BAD_FILES[name]
    before = (snapshot(s.corpus_dir), client.get("/documents").json())
    r = client.post("/documents", files=[("files", ("good.txt", b"A good file.", "text/plain")),
                                         ("files", (name, make(), "application/octet-stream"))])
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == code and name in body["message"], body
    assert (snapshot(s.corpus_dir), client.get("/documents").json()) == before


def test_original_file_is_downloadable_and_never_rendered(api):
    client, s = api
    pdf = make_pdf([[("para", "Page one.")], [("para", "Page two.")]])
    page = make_html([[("para", "An article with <script>alert(1)</script> in its text.")]])
    files = [("files", ("report.pdf", pdf, "application/pdf")), ("files", ("page.html", page, "text/html"))]
    assert client.post("/documents", files=files).status_code == 201
    try:
        r = client.get("/documents/report.pdf", params={"original": "true"})
        assert r.status_code == 200 and r.content == pdf
        assert r.headers["content-type"] == "application/pdf"
        assert r.headers["content-disposition"].startswith("attachment")
        # the ETag is the file's sha256, so a download's ETag is what PUT's If-Match wants
        assert r.headers["etag"] == f'"{hashlib.sha256(pdf).hexdigest()}"'
        r = client.get("/documents/page.html", params={"original": "true"})
        assert r.content == page and r.headers["content-disposition"].startswith("attachment")
        assert r.headers["x-content-type-options"] == "nosniff"
        served = client.get("/documents/report.pdf").json()
        assert served["text"] == "Page one.\n\nPage two." and served["page_starts"] == [0, 11]
        assert client.get("/documents/report.pdf", params={"raw": "true"}).text == served["text"]
        assert client.get("/documents/nope.pdf", params={"original": "true"}).status_code == 404
    finally:
        client.delete("/documents/report.pdf")
        client.delete("/documents/page.html")


# --------------------------------------------------------------------------- index: converter versions


@pytest.mark.slow
def test_converter_change_reextracts(tmp_path, tmp_corpus, embedder, tokenizer, monkeypatch):
    from qa.chunking import Chunker
    from qa.converters.pdf import PdfConverter
    from qa.index_store import IndexStore, build_or_update

    pages = [[("para", "The Quillon lighthouse was built in 1873.")], [("para", "The ferry leaves at 07:45.")]]
    root = tmp_corpus({"report.pdf": make_pdf(pages), "notes.txt": "Plain notes."})
    s = Settings(corpus_dir=root, index_dir=tmp_path / "index")
    chunker = Chunker(tokenizer=tokenizer, chunk_tokens=32, chunk_overlap=8)
    first = build_or_update(root, s, embedder, chunker)
    entry = {d["id"]: d for d in first.manifest["documents"]}["report.pdf"]
    assert entry["converter"] == "pdf" and entry["converter_version"].startswith("pypdf ") and entry["pages"] == 2
    loaded = IndexStore.load(s.index_dir)
    assert loaded.page_starts("report.pdf") == first.page_starts("report.pdf") and len(loaded.page_starts("report.pdf")) == 2
    assert loaded.page_of("report.pdf", loaded.document_text("report.pdf").index("ferry")) == 2
    assert loaded.page_of("notes.txt", 0) is None and loaded.documents["report.pdf"].pages == 2

    # A new converter version that extracts the same text: recorded, vectors reused.
    monkeypatch.setattr(PdfConverter, "version", lambda self: "pypdf 99; rules 2")
    second = build_or_update(root, s, embedder, chunker)
    assert second.build_report.reextracted == ["report.pdf"] and "report.pdf" in second.build_report.reused
    assert second.documents["report.pdf"].converter_version == "pypdf 99; rules 2"

    # One that extracts different text: the document is re-chunked and re-embedded.
    real_convert = PdfConverter.convert

    def shouting(self, data):
        ex = real_convert(self, data)
        return type(ex)(ex.text.upper(), ex.converter, "pypdf 99; rules 3", ex.page_starts)

    monkeypatch.setattr(PdfConverter, "convert", shouting)
    monkeypatch.setattr(PdfConverter, "version", lambda self: "pypdf 99; rules 3")
    third = build_or_update(root, s, embedder, chunker)
    assert third.build_report.changed == ["report.pdf"] and third.build_report.reextracted == ["report.pdf"]
    assert "QUILLON" in third.document_text("report.pdf")
    assert third.build_report.reused == ["notes.txt"]


# --------------------------------------------------------------------------- the real pipeline


@pytest.mark.slow
def test_real_pipeline_cites_page_3_and_refuses_bad_pdfs_without_change(tmp_path):
    """The trained reader on an uploaded 4-page PDF: a question about a sentence on page 3 cites
    page 3, exactly; an encrypted and an image-only PDF are refused and leave corpus and index as
    they were."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "intro.txt").write_text("The harbour office keeps the ferry timetables.\n", encoding="utf-8")
    s = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", allowed_hosts="testserver")
    filler = "The annual report describes the maintenance of the harbour, its piers and its cranes."
    pages = [
        [("heading", "Annual harbour report"), ("para", filler)],
        [("heading", "Ferries"), ("para", "The ferry to Tesk island leaves every Tuesday morning."),
         ("table", [["Route", "Boat"], ["Tesk", "Marta"], ["Varna", "Petar"]])],
        [("heading", "Lighthouses"), ("para", "The Quillon lighthouse was built in 1873 by the engineer Marta Okonkwo.")],
        [("heading", "Budget"), ("para", "The harbour spent 40 000 crowns on new cranes in 2025.")],
    ]
    with TestClient(create_app(s, background_warm_up=False)) as c:  # ready before the first request
        assert c.get("/ready").status_code == 200
        r = c.post("/documents", files=[("files", ("harbour report.pdf", make_pdf(pages), "application/pdf"))])
        assert r.status_code == 201, r.text
        assert r.json()["documents"][0]["pages"] == 4
        body = c.post("/ask", json={"question": "Who built the Quillon lighthouse?"}).json()
        assert body["answer_found"], body
        best = body["answers"][0]
        assert best["citations"][0]["document"] == "harbour report.pdf" and "Okonkwo" in best["text"], best
        assert best["page"] == 3 and best["citations"][0]["page"] == 3
        served = c.get("/documents/harbour report.pdf").json()
        for item in best["citations"]:
            assert served["text"][item["start"]:item["end"]] == item["text"]
            assert page_of(served["page_starts"], item["start"]) == item["page"]

        index_before = snapshot(s.index_dir)
        before = (snapshot(corpus), c.get("/documents").json())
        for name, make in (("locked.pdf", lambda: make_pdf(pages, encrypt_password="pw")),
                           ("scan.pdf", lambda: make_image_only_pdf(2))):
            r = c.post("/documents", files=[("files", (name, make(), "application/pdf"))])
            assert r.status_code == 400 and r.json()["error"] in ("pdf_encrypted", "pdf_no_text"), r.text
        assert (snapshot(corpus), c.get("/documents").json()) == before
        assert snapshot(s.index_dir) == index_before


@pytest.mark.slow
def test_an_index_built_before_the_converters_loads_and_is_reused(tmp_path, tmp_corpus, embedder, tokenizer):
    """Manifests without converter fields (older indexes) load as `text` documents, and the next build
    reuses their vectors (same bytes, same text) without calling them re-extracted."""
    import json

    from qa.chunking import Chunker
    from qa.index_store import IndexStore, build_or_update

    root = tmp_corpus({"notes.txt": "Plain notes about otters.", "b.md": "# B\nBread rises."})
    s = Settings(corpus_dir=root, index_dir=tmp_path / "index")
    chunker = Chunker(tokenizer=tokenizer, chunk_tokens=32, chunk_overlap=8)
    built = build_or_update(root, s, embedder, chunker)
    manifest_path = built.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for d in manifest["documents"]:
        d.pop("converter"), d.pop("converter_version")
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    old = IndexStore.load(s.index_dir)
    assert {(i.converter, i.converter_version, i.pages) for i in old.documents.values()} == {("text", "", None)}
    again = build_or_update(root, s, embedder, chunker)
    assert sorted(again.build_report.reused) == ["b.md", "notes.txt"] and again.build_report.reextracted == []
    assert again.build_report.chunks_embedded == 0
    assert again.documents["notes.txt"].converter == "text" and again.documents["notes.txt"].converter_version


def test_html_nested_as_deep_as_real_pages_converts():
    """The depth guard counts only block elements (div, section, ul, ...) left open, not siblings or inline tags."""
    page = (b"<html><body>" + b"<div class='wrap'>" * 400 + b"<p>Deep but ordinary text.</p>" + b"</div>" * 400
            + b"<div>x</div>" * 3000 + b"<span>" * 3000 + b"</body></html>")
    assert "Deep but ordinary text." in convert("ok.html", page).text
