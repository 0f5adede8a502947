import hashlib
import logging

import pytest

from qa.ingest import decode_bytes, load_corpus


def test_recursive_ids_and_types(tmp_corpus):
    root = tmp_corpus(
        {
            "a.txt": "alpha",
            "sub/b.md": "# beta",
            "sub/deeper/c.txt": "gamma",
            "ignored.csv": "nope",
            ".hidden/d.txt": "hidden",
        }
    )
    docs, skipped = load_corpus(root)
    assert [d.id for d in docs] == ["a.txt", "sub/b.md", "sub/deeper/c.txt"]
    assert skipped == []


def test_sha256_and_size_are_of_raw_bytes(tmp_corpus):
    raw = "\ufeffline one\r\nline two\r\n".encode("utf-8")
    root = tmp_corpus({"crlf_bom.txt": raw})
    (doc,), _ = load_corpus(root)
    assert doc.sha256 == hashlib.sha256(raw).hexdigest()
    assert doc.size == len(raw)


def test_crlf_and_bom_text_matches_open_read(tmp_corpus):
    root = tmp_corpus(
        {
            "crlf.txt": b"First line.\r\nSecond line with answer.\r\n\r\nThird.\rLone CR.",
            "bom.txt": b"\xef\xbb\xbfBOM document: the answer is 42.",
        }
    )
    docs, _ = load_corpus(root)
    by_id = {d.id: d for d in docs}
    for doc_id, needle in (("crlf.txt", "answer"), ("bom.txt", "42")):
        with open(root / doc_id, encoding="utf-8") as f:
            reference = f.read()
        text = by_id[doc_id].text
        assert text == reference
        start = text.index(needle)
        assert reference[start : start + len(needle)] == needle
    assert "\r" not in by_id["crlf.txt"].text
    assert by_id["bom.txt"].text.startswith("\ufeff")  # BOM kept, offsets count it


def test_decode_bytes_matches_open(tmp_path):
    raw = b"\xef\xbb\xbfa\r\nb\rc\n\xe2\x82\xac\r\n"
    p = tmp_path / "x.txt"
    p.write_bytes(raw)
    assert decode_bytes(raw) == open(p, encoding="utf-8").read()


def test_bad_files_are_skipped_with_warning(tmp_corpus, caplog):
    root = tmp_corpus(
        {
            "good.txt": "fine",
            "latin1.txt": "caf\xe9".encode("latin-1"),
            "empty.txt": b"",
            "blank.md": b" \n\t\r\n ",
        }
    )
    with caplog.at_level(logging.WARNING, logger="qa.ingest"):
        docs, skipped = load_corpus(root)
    assert [d.id for d in docs] == ["good.txt"]
    assert {s.path for s in skipped} == {"latin1.txt", "empty.txt", "blank.md"}
    reasons = {s.path: s.reason for s in skipped}
    assert "UTF-8" in reasons["latin1.txt"]
    assert "empty" in reasons["empty.txt"]
    for name in ("latin1.txt", "empty.txt", "blank.md"):
        assert any(name in r.getMessage() for r in caplog.records), name


def test_explicit_paths(tmp_corpus):
    root = tmp_corpus({"a.txt": "alpha", "sub/b.md": "beta", "sub/c.txt": "gamma", "x.csv": "1,2"})
    docs, skipped = load_corpus(root, [root / "a.txt", root / "sub", root / "x.csv"])
    assert [d.id for d in docs] == ["a.txt", "sub/b.md", "sub/c.txt"]
    assert [s.path for s in skipped] == ["x.csv"]


def test_links_out_of_the_corpus_are_skipped_and_named(tmp_corpus):
    """Two links to files outside the corpus (teamA/notes.txt, teamB/notes.txt) both got the id `notes.txt`: one
    was dropped with only a log line, the other served under a name no file in the folder has. Links out of the
    folder are now skipped, each named with the reason; a link to a file inside is that file, indexed once."""
    elsewhere = tmp_corpus({"A/notes.txt": "Team A launches on 12 May.", "B/notes.txt": "Team B spends 40000 euros."})
    root = tmp_corpus({"readme.txt": "The project is called Zephyr."})
    for team in ("A", "B"):
        (root / f"team{team}").mkdir()
        (root / f"team{team}" / "notes.txt").symlink_to(elsewhere / team / "notes.txt")
    (root / "alias.txt").symlink_to(root / "readme.txt")
    docs, skipped = load_corpus(root)
    assert [d.id for d in docs] == ["readme.txt"]
    assert [s.path for s in skipped] == ["teamA/notes.txt", "teamB/notes.txt"]
    assert all("outside the corpus folder (a symbolic link" in s.reason for s in skipped)


def test_links_to_folders_are_named_not_silently_passed_over(tmp_corpus):
    """A symbolic link to a folder (corpus/handbook -> /srv/handbook) was passed over with nothing said: its files
    were simply missing from the index. It is still not followed (its files would be outside the folder, or a
    second copy of files inside it), but the report names it with what to do."""
    elsewhere = tmp_corpus({"policy.txt": "Leave is 30 days a year."})
    root = tmp_corpus({"readme.txt": "The project is called Zephyr.", "inner/a.txt": "Inner file."})
    (root / "handbook").symlink_to(elsewhere, target_is_directory=True)
    (root / "again").symlink_to(root / "inner", target_is_directory=True)
    for paths in (None, [root / "handbook", root / "again"]):
        docs, skipped = load_corpus(root, paths)
        assert [d.id for d in docs] == ([] if paths else ["inner/a.txt", "readme.txt"])
        assert sorted(s.path for s in skipped) == ["again", "handbook"]
        assert all("symbolic link to a folder, not followed" in s.reason for s in skipped), skipped


def test_a_file_name_that_is_not_utf8_is_skipped_and_named(tmp_corpus):
    """`café.txt` saved by a Latin-1 system (name bytes b"caf\\xe9.txt") gave a document id the manifest and Milvus
    cannot store: the whole `qa index` failed with a traceback (a server's start-up indexes the folder the same way).
    It is now skipped, named with U+FFFD for the bytes that are not UTF-8."""
    import os

    root = tmp_corpus({"good.txt": "fine"})
    with open(os.path.join(os.fsencode(root), b"caf\xe9.txt"), "w", encoding="utf-8") as f:
        f.write("The cafe opens at nine.")
    docs, skipped = load_corpus(root)
    assert [d.id for d in docs] == ["good.txt"]
    assert [(s.path, "not valid UTF-8" in s.reason) for s in skipped] == [("caf\ufffd.txt", True)]
    skipped[0].path.encode("utf-8")  # printable in the report


def test_missing_root_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_corpus(tmp_path / "nope")


def test_converted_formats_keep_their_file_name_as_id(tmp_corpus):
    from docgen import make_docx, make_html, make_pdf

    pages = [[("heading", "Harbour report"), ("para", "The Quillon lighthouse was built in 1873.")],
             [("para", "The ferry to Tesk island leaves at 07:45.")]]
    root = tmp_corpus({"report.pdf": make_pdf(pages), "sub/memo.docx": make_docx(pages),
                       "page.html": make_html(pages), "old.htm": make_html(pages), "notes.txt": "plain"})
    docs, skipped = load_corpus(root)
    assert skipped == []
    by_id = {d.id: d for d in docs}
    assert sorted(by_id) == ["notes.txt", "old.htm", "page.html", "report.pdf", "sub/memo.docx"]
    assert {d.id: d.converter for d in docs} == {"notes.txt": "text", "old.htm": "html", "page.html": "html",
                                                 "report.pdf": "pdf", "sub/memo.docx": "docx"}
    pdf = by_id["report.pdf"]
    assert len(pdf.page_starts) == 2 and pdf.page_starts[0] == 0
    assert pdf.text.index("ferry") >= pdf.page_starts[1] > pdf.text.index("1873")
    assert pdf.sha256 == hashlib.sha256((root / "report.pdf").read_bytes()).hexdigest()
    assert "pypdf" in pdf.converter_version
    for d in docs:
        assert "plain" in d.text or "Tesk island" in d.text


def test_unreadable_converted_files_are_skipped_with_their_code(tmp_corpus, caplog):
    root = tmp_corpus({"good.txt": "fine", "fake.pdf": b"not a pdf", "fake.docx": b"PK\x03\x04 broken",
                       "empty.html": b"<html><body><script>x=1</script></body></html>"})
    with caplog.at_level(logging.WARNING, logger="qa.ingest"):
        docs, skipped = load_corpus(root)
    assert [d.id for d in docs] == ["good.txt"]
    reasons = {s.path: s.reason for s in skipped}
    assert "pdf_corrupt" in reasons["fake.pdf"]
    assert "docx_corrupt" in reasons["fake.docx"]
    assert "html_no_text" in reasons["empty.html"]
