"""`qa index` and `qa search`: reports, first run, acceptance query, errors (exit 2, no traceback)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from qa.cli import main
from qa.config import PROJECT_ROOT, get_settings

pytestmark = pytest.mark.slow

QUESTION = "When did the protests in Kazakhstan begin?"


@pytest.fixture
def cli_env(monkeypatch, embedder):
    """Point the CLI at given index/corpus folders via QA_* variables (settings cache cleared)."""

    def configure(index_dir, corpus_dir=None, **extra):
        monkeypatch.setenv("QA_INDEX_DIR", str(index_dir))
        if corpus_dir is not None:
            monkeypatch.setenv("QA_CORPUS_DIR", str(corpus_dir))
        for k, v in extra.items():
            monkeypatch.setenv(f"QA_{k.upper()}", str(v))
        get_settings.cache_clear()

    yield configure
    get_settings.cache_clear()


def test_search_acceptance_on_seeds(seed_index, seed_settings, cli_env, capsys):
    cli_env(seed_settings.index_dir, seed_settings.corpus_dir)
    for extra in ([], ["--mode", "dense"]):
        assert main(["search", QUESTION, "--json", *extra]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert rows and [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
        for r in rows:
            text = open(seed_settings.corpus_dir / r["document"], encoding="utf-8").read()
            assert text[r["start"] : r["end"]] == r["text"]
            assert {"document", "start", "end", "score", "rank", "text"} <= set(r)
        assert "January 2" in rows[0]["text"], (extra, rows[0])


def test_search_text_output_and_k(seed_index, seed_settings, cli_env, capsys):
    cli_env(seed_settings.index_dir, seed_settings.corpus_dir)
    assert main(["search", QUESTION, "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("score=") == 2 and "#1 " in out and ".txt" in out
    assert main(["search", QUESTION, "-k", "0"]) == 1
    assert main(["search", QUESTION, "-k", "51"]) == 1  # was accepted up to any size (as qa ask: 1-50)
    assert main(["search", "?!"]) == 1  # no letter or digit
    capsys.readouterr()
    assert main(["search", "When " * 300]) == 1  # over QA_MAX_QUESTION_CHARS (1000), as qa ask
    assert "the limit is 1000" in capsys.readouterr().err


def test_first_run_builds_index(tmp_corpus, tmp_path, cli_env, capsys):
    root = tmp_corpus({"a.txt": "Otters hold hands while they sleep.", "b.md": "Bread rises because of yeast."})
    cli_env(tmp_path / "idx", root)
    assert main(["search", "Why does bread rise?", "--json", "-k", "1"]) == 0
    captured = capsys.readouterr()
    assert "first run" in captured.err and "building" in captured.err
    rows = json.loads(captured.out)
    assert rows[0]["document"] == "b.md"
    assert (tmp_path / "idx" / "CURRENT").is_file()


def test_indexing_an_empty_folder_says_what_to_do(tmp_corpus, tmp_path, cli_env, capsys):
    """`qa index` of a folder without documents printed "Chunks: 0" and nothing else to go on."""
    root = tmp_corpus({"notes.odt": b"PK not supported"})
    cli_env(tmp_path / "idx", root, chunk_tokens=32, chunk_overlap=8)
    assert main(["index"]) == 0
    out = capsys.readouterr().out
    assert "The index is empty: put documents (.txt" in out and str(root) in out
    (root / "a.txt").write_text("Alpha text about owls.", encoding="utf-8")
    assert main(["index"]) == 0
    assert "The index is empty" not in capsys.readouterr().out


def test_indexing_an_empty_folder_into_milvus_says_what_to_do(tmp_corpus, tmp_path, cli_env, capsys):
    """With QA_STORE=milvus (and with --ray) `qa index` of a folder without documents stored nothing, then failed with a
    NameError traceback printing its report; it now says what to do, as with FAISS."""
    root = tmp_corpus({"notes.odt": b"PK not supported"})
    cli_env(tmp_path / "idx", root, chunk_tokens=32, chunk_overlap=8, store="milvus", milvus_uri=tmp_path / "m.db")
    assert main(["index"]) == 0
    out = capsys.readouterr().out
    assert "Chunks: 0" in out and "The index is empty: put documents (.txt" in out and str(root) in out


def test_a_document_milvus_cannot_hold_is_skipped_not_fatal(tmp_corpus, tmp_path, cli_env, capsys, embedder):
    """A file nested so deep that its id is over the 2,048 bytes a Milvus store holds failed the whole `qa index`
    (and a replica's start-up) with a ValueError traceback, and the documents after it were never stored. It is now
    skipped and named; the others are stored."""
    from qa.chunking import Chunker
    from qa.store import open_store

    root = tmp_corpus({"00_first.txt": "The first file talks about Tartu.", "zz_last.txt": "The last one is about Narva."})
    deep = root.joinpath(*[f"{n:02d}" + "x" * 198 for n in range(11)])
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_text("A very deep file about the Tallinn tram.", encoding="utf-8")
    cli_env(tmp_path / "idx", root, chunk_tokens=32, chunk_overlap=8, store="milvus", milvus_uri=tmp_path / "m.db")
    assert main(["index"]) == 0
    out = capsys.readouterr().out
    assert "Documents indexed: 2" in out and "Documents skipped: 1" in out and "over the 2048 a Milvus store" in out
    s = get_settings()
    store = open_store(s, embedder.model_id, embedder.dimension, Chunker.from_settings(s).params)
    try:
        assert sorted(store.documents) == ["00_first.txt", "zz_last.txt"]
    finally:
        store.close()


def test_index_command_reports_changes(tmp_corpus, tmp_path, cli_env, capsys):
    root = tmp_corpus({"a.txt": "Alpha text about owls.", "b.txt": "Beta text about bees.", "bad.txt": b"\xff\xfe\x00oops"})
    cli_env(tmp_path / "idx", root, chunk_tokens=32, chunk_overlap=8)
    assert main(["index"]) == 0
    out = capsys.readouterr().out
    assert "Documents indexed: 2" in out
    assert "Documents skipped: 1" in out and "bad.txt" in out
    assert "Time:" in out

    (root / "a.txt").write_text("Alpha text about eagles now.", encoding="utf-8")
    (root / "b.txt").unlink()
    (root / "c.md").write_text("Gamma text about ants.", encoding="utf-8")
    assert main(["index", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == ["c.md"] and report["changed"] == ["a.txt"]
    assert report["removed"] == ["b.txt"] and report["reused"] == []

    assert main(["index"]) == 0
    out = capsys.readouterr().out
    assert "Documents indexed: 0" in out and "Documents reused:  2" in out


def test_index_explicit_folder(tmp_corpus, tmp_path, cli_env, capsys):
    root = tmp_corpus({"x/one.txt": "One document.", "x/two.md": "Two document."})
    cli_env(tmp_path / "idx", tmp_path / "does-not-matter", chunk_tokens=32, chunk_overlap=8)
    assert main(["index", str(root)]) == 0
    out = capsys.readouterr().out
    assert "Documents indexed: 2" in out
    from qa.index_store import IndexStore

    assert set(IndexStore.load(tmp_path / "idx").documents) == {"x/one.txt", "x/two.md"}
    assert main(["index", str(tmp_path / "missing")]) == 1


def test_index_check_compares_the_folder_it_is_given(tmp_corpus, tmp_path, cli_env, capsys):
    """`qa index --check FOLDER` ignored FOLDER: it compared QA_CORPUS_DIR with an index built from FOLDER and told to
    run `qa index`, which would make the index follow the other folder. It now compares FOLDER; files are refused."""
    root = tmp_corpus({"x/one.txt": "One document.", "x/two.md": "Two document."})
    other = tmp_corpus({"else.txt": "Another folder's document."})
    cli_env(tmp_path / "idx", other, chunk_tokens=32, chunk_overlap=8)
    assert main(["index", str(root)]) == 0
    capsys.readouterr()
    assert main(["index", "--check", str(root)]) == 0
    assert f"0 difference(s) between {root.resolve()}" in capsys.readouterr().out
    (root / "x" / "two.md").unlink()
    assert main(["index", "--check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "missing_file: x/two.md" in out and f"run `qa index {root.resolve()}`" in out and "else.txt" not in out
    assert main(["index", "--check", str(root / "x" / "one.txt")]) == 1
    assert "give no PATH" in capsys.readouterr().err
    assert main(["index", "--check", str(other)]) == 1  # QA_CORPUS_DIR itself, named
    out = capsys.readouterr().out
    assert "not_indexed: else.txt" in out and "run `qa index` to repair" in out


def test_index_refuses_a_file_outside_the_corpus_folder(tmp_corpus, tmp_path, cli_env, capsys):
    """Its id would be its bare name (replacing a corpus document's text) and nothing in the corpus would hold it."""
    root = tmp_corpus({"one.txt": "One document."})
    outside = tmp_path / "elsewhere" / "one.txt"
    outside.parent.mkdir()
    outside.write_text("A different text under the same name.", encoding="utf-8")
    cli_env(tmp_path / "idx", root, chunk_tokens=32, chunk_overlap=8)
    assert main(["index", str(outside)]) == 1
    err = capsys.readouterr().err
    assert "not in the corpus folder" in err and "Traceback" not in err
    assert not (tmp_path / "idx" / "CURRENT").exists()  # nothing was indexed
    assert main(["index", str(root / "one.txt")]) == 0  # a file under the corpus folder is fine


def test_configuration_and_folder_mistakes_are_one_clear_line(tmp_path, cli_env, capsys, monkeypatch):
    """A bad QA_* value, a missing corpus folder, an index folder that is a file, a CURRENT that is a folder:
    one `qa: error:` line naming what to fix, never a traceback."""
    cli_env(tmp_path / "idx", tmp_path / "corpus", top_k="abc")
    assert main(["ask", "When?"]) == 1
    assert "QA_TOP_K='abc'" in capsys.readouterr().err
    monkeypatch.delenv("QA_TOP_K")
    cli_env(tmp_path / "idx", tmp_path / "no-such-corpus")
    assert main(["search", "When?"]) == 2
    err = capsys.readouterr().err
    assert "corpus folder" in err and "QA_CORPUS_DIR" in err and "Traceback" not in err
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    cli_env(tmp_path / "afile", tmp_path)
    assert main(["search", "When?"]) == 2
    assert "is a file" in capsys.readouterr().err
    (tmp_path / "idx2" / "CURRENT").mkdir(parents=True)
    cli_env(tmp_path / "idx2", tmp_path)
    assert main(["search", "When?"]) == 2
    assert "CURRENT is not a file" in capsys.readouterr().err

    def refused(*_a, **_k):  # an index folder that cannot be made: was a PermissionError traceback from mkdir
        raise PermissionError(13, "Permission denied")

    cli_env(tmp_path / "not-allowed", tmp_path)
    monkeypatch.setattr("pathlib.Path.mkdir", refused)
    assert main(["index"]) == 2
    err = capsys.readouterr().err
    assert "(Permission denied); set QA_INDEX_DIR to a folder you can write" in err and "Traceback" not in err


def _copy_index(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
    return dst / (dst / "CURRENT").read_text().strip()


@pytest.mark.parametrize(
    "damage, message, cls",
    [
        (lambda v: (v / "index.faiss").write_bytes((v / "index.faiss").read_bytes()[:100]), "index.faiss", "corrupt"),
        (lambda v: (v / "chunks.jsonl").unlink(), "chunks.jsonl", "corrupt"),
        (
            lambda v: (v / "manifest.json").write_text(
                (v / "manifest.json").read_text().replace("all-MiniLM-L6-v2", "some-other-model")
            ),
            "some-other-model",
            "stale",
        ),
    ],
)
def test_search_with_broken_index_exits_2(seed_index, seed_settings, tmp_path, cli_env, capsys, damage, message, cls):
    version = _copy_index(seed_settings.index_dir, tmp_path / "idx")
    damage(version)
    cli_env(tmp_path / "idx", seed_settings.corpus_dir)
    assert main(["search", QUESTION]) == 2
    err = capsys.readouterr().err
    assert message in err and "qa index" in err
    assert "Traceback" not in err


def test_subprocess_error_has_no_traceback(seed_index, seed_settings, tmp_path):
    version = _copy_index(seed_settings.index_dir, tmp_path / "idx")
    (version / "vectors.npy").unlink()
    env = dict(os.environ, QA_INDEX_DIR=str(tmp_path / "idx"), QA_CORPUS_DIR=str(seed_settings.corpus_dir))
    proc = subprocess.run(
        [sys.executable, "-m", "qa.cli", "search", QUESTION],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "vectors.npy" in proc.stderr and "qa index" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_index_converts_pdf_docx_html_and_names_skipped_files(tmp_corpus, tmp_path, cli_env, capsys):
    from docgen import make_docx, make_html, make_image_only_pdf, make_pdf

    pages = [[("para", "Otters hold hands while they sleep.")], [("para", "Sea otters use stones as tools.")]]
    root = tmp_corpus({"report.pdf": make_pdf(pages), "memo.docx": make_docx(pages), "page.html": make_html(pages),
                       "scan.pdf": make_image_only_pdf(1), "notes.txt": "Bread rises because of yeast."})
    cli_env(tmp_path / "idx", root)
    assert main(["index", str(root)]) == 0
    out = capsys.readouterr().out
    assert "Documents indexed: 4 (4 new, 0 changed)" in out
    assert "skipped scan.pdf:" in out and "no text layer" in out and "[pdf_no_text]" in out
    assert main(["search", "Which animal uses stones as tools?", "--json", "-k", "5"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"report.pdf", "memo.docx", "page.html"} <= {r["document"] for r in rows}
    from qa.index_store import IndexStore

    store = IndexStore.load(tmp_path / "idx")
    for r in rows:  # offsets index the served (extracted) text
        assert store.document_text(r["document"])[r["start"]:r["end"]] == r["text"]
    assert store.documents["report.pdf"].converter == "pdf" and store.documents["report.pdf"].pages == 2
