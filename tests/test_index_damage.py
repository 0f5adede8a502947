"""The index folder damaged under the service: every command and endpoint says what to do in one line, `qa index`
repairs what it names, `qa index --check` never passes an index the server refuses, and no write commits what it
cannot finish (audit 2026-12-08).

The real pipeline with small stand-in models (tests/lite_pipeline.py) on temp copies of seeds/.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import qa.cli as cli
import qa.index_store as index_store
from api.app import create_app
from lite_pipeline import CharChunker, HashEmbedder, LitePipeline, lite_settings
from qa.config import PROJECT_ROOT
from qa.index_store import IndexCorruptError, IndexStore, build_or_update

SEEDS = PROJECT_ROOT / "seeds"
DOC = "000_4741fbb5b5543d86.txt"


@pytest.fixture
def settings(tmp_path):
    shutil.copytree(SEEDS, tmp_path / "corpus")
    s = lite_settings(tmp_path / "corpus", tmp_path / "index", allowed_hosts="testserver", reload_interval_s=0)
    LitePipeline(s).warm_up()
    return s


def _version(s) -> Path:
    return Path(s.index_dir) / (Path(s.index_dir) / "CURRENT").read_text().strip()


def _corpus(s) -> dict[str, str]:
    root = Path(s.corpus_dir)
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}


def _rebuild(s) -> IndexStore:
    return build_or_update(s.corpus_dir, s, HashEmbedder(), CharChunker())


def _client(s) -> TestClient:
    return TestClient(create_app(s, LitePipeline(s), background_warm_up=False), raise_server_exceptions=False)


def test_qa_index_check_never_passes_an_index_that_does_not_load(settings, monkeypatch, capsys):
    """It read the manifest only: 0 differences (exit 0) for an index whose index.faiss every ask refused."""
    s = settings
    monkeypatch.setattr(cli, "get_cli_settings", lambda: s)
    faiss_file = _version(s) / "index.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    assert cli.main(["index", "--check"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "index.faiss" in err[0] and "qa index" in err[0], err
    _rebuild(s)
    assert cli.main(["index", "--check"]) == 0


@pytest.mark.parametrize("pointer", [b"\xff\xfev-1\n", ("v" * 300 + "\n").encode()], ids=["not-utf8", "too-long"])
def test_an_unreadable_current_is_a_clear_error_that_qa_index_repairs(settings, pointer):
    """A UnicodeDecodeError / ENAMETOOLONG escaped as a traceback from every command, `qa index` included, and an
    upload was refused as the client's invalid_document."""
    s = settings
    (Path(s.index_dir) / "CURRENT").write_bytes(pointer)
    with pytest.raises(IndexCorruptError, match="CURRENT.*qa index"):
        IndexStore.load(s.index_dir)
    assert index_store.active_version_name(s.index_dir) is None
    _rebuild(s)
    assert DOC in IndexStore.load(s.index_dir).documents


def test_a_stray_bare_manifest_beside_current_is_ignored(settings):
    """It was preferred to CURRENT, so `qa index` (which says it is ignored) never repaired the error it caused."""
    s = settings
    shutil.copy(_version(s) / "manifest.json", Path(s.index_dir) / "manifest.json")
    assert DOC in IndexStore.load(s.index_dir).documents


@pytest.mark.parametrize("field, value", [("generation", "abc"), ("generation", None), ("counts", [])])
def test_manifest_fields_that_writes_read_are_checked_on_load(settings, field, value):
    """They loaded, then every write (and `qa index`) failed with a bare ValueError/TypeError/AttributeError."""
    s = settings
    path = _version(s) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest[field] = value
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match=f"manifest.*{field}.*qa index|manifest.*bad field.*qa index"):
        IndexStore.load(s.index_dir)
    _rebuild(s)
    assert IndexStore.load(s.index_dir).generation >= 1


def test_a_stored_text_that_is_not_a_string_is_a_clear_error(settings):
    s = settings
    path = _version(s) / "documents.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    rec = json.loads(lines[0])
    rec["text"] = None
    lines[0] = json.dumps(rec) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="documents.jsonl.*qa index"):
        IndexStore.load(s.index_dir)


@pytest.mark.parametrize("folder", ["trash", "staging", "journal"])
def test_a_write_folder_that_is_a_file_refuses_writes_before_the_commit(settings, folder):
    """A delete committed to the index, then failed to move its file into a trash that was a file: 500, and every
    later write and every start-up failed on its journal entry (NotADirectoryError)."""
    s = settings
    before, active = _corpus(s), (Path(s.index_dir) / "CURRENT").read_text()
    with _client(s) as c:
        shutil.rmtree(Path(s.index_dir) / folder, ignore_errors=True)
        (Path(s.index_dir) / folder).write_text("not a folder")  # while the server runs
        r = c.delete(f"/documents/{DOC}")
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "index_unavailable" and f"<index>/{folder} is not a folder" in r.json()["message"]
        assert c.get(f"/documents/{DOC}").status_code == 200
    with _client(s) as c:  # a restart says the same
        assert c.get("/ready").json()["reason"].endswith(f"<index>/{folder} is not a folder: move it out of the index "
                                                         "folder (a new one is made), then retry")
    assert _corpus(s) == before and (Path(s.index_dir) / "CURRENT").read_text() == active
    (Path(s.index_dir) / folder).unlink()
    with _client(s) as c:
        assert c.get("/ready").status_code == 200
        assert c.delete(f"/documents/{DOC}").status_code == 200
        assert c.post(f"/documents/{DOC}/restore").status_code == 200
    assert _corpus(s) == before


def test_a_damaged_journal_entry_is_set_aside_with_its_staged_files(settings):
    """A parseable entry that is not one (`{}`, a list, an id outside the corpus) raised KeyError/TypeError from
    recovery (every start-up and `qa index`); an unreadable one was deleted with its staged files, which may be
    the only copy of bytes a committed write indexed."""
    s = settings
    w = LitePipeline(s).warm_up().writer
    journal, staging = Path(s.index_dir) / "journal", Path(s.index_dir) / "staging"
    journal.mkdir(exist_ok=True)
    (staging / "tx-1").mkdir(parents=True)
    (staging / "tx-1" / "0").write_bytes(b"the only copy")
    (journal / "tx-1.json").write_text("{}")
    (journal / "tx-2.json").write_text(json.dumps({"txid": "tx-2", "op": "delete", "put": [],
                                                   "trash": [{"id": "../outside.txt", "sha256": "0", "entry": "e"}]}))
    (journal / "tx-3.json").write_bytes(b"\xff{")
    assert w.recover() == []
    assert sorted(p.name for p in journal.iterdir()) == ["tx-1.json.damaged", "tx-2.json.damaged", "tx-3.json.damaged"]
    assert (staging / "tx-1" / "0").read_bytes() == b"the only copy"
    assert w.recover() == [] and (staging / "tx-1" / "0").exists()  # and again: nothing replayed, nothing removed


def test_a_full_disk_is_a_507_that_says_so_and_changes_nothing(settings, monkeypatch):
    """It was a 500 "internal error; see the server log"."""
    s = settings
    before, active = _corpus(s), (Path(s.index_dir) / "CURRENT").read_text()

    def full(folder, index):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(index_store, "_write_faiss", full)
    with _client(s) as c:
        r = c.post("/documents", files=[("files", ("new.txt", b"Otters hold hands.", "text/plain"))])
        assert r.status_code == 507, r.text
        assert r.json()["error"] == "insufficient_storage" and "free space" in r.json()["message"]
        assert c.get("/ready").status_code == 200
    assert _corpus(s) == before and (Path(s.index_dir) / "CURRENT").read_text() == active


def test_a_manifest_that_is_not_a_file_is_one_line_not_a_hang(settings, monkeypatch, capsys):
    """A FIFO in place of the active version's manifest.json made every command wait for ever (read_text blocks)."""
    import os
    import subprocess
    import sys

    s = settings
    manifest = _version(s) / "manifest.json"
    manifest.unlink()
    os.mkfifo(manifest)
    code = ("import sys; sys.path.insert(0, 'tests'); from lite_pipeline import LitePipeline, lite_settings; "
            "from qa.index_store import IndexLoadError\n"
            f"s = lite_settings({str(s.corpus_dir)!r}, {str(s.index_dir)!r})\n"
            "try:\n    LitePipeline(s).warm_up()\nexcept IndexLoadError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert "refused:" in out.stdout and "is not a file" in out.stdout, out.stdout + out.stderr
    monkeypatch.setattr(cli, "get_cli_settings", lambda: s)
    assert cli.main(["index", "--check"]) == 2  # one line, at once
    assert "run `qa index`" in capsys.readouterr().err


def test_qa_index_refuses_a_current_that_is_a_folder_before_building(settings, monkeypatch, capsys):
    """The message said "remove it, then run `qa index`", and `qa index` without removing it wrote a whole version
    and then failed with a bare IsADirectoryError."""
    s = settings
    current = Path(s.index_dir) / "CURRENT"
    current.unlink()
    current.mkdir()
    monkeypatch.setattr(cli, "get_cli_settings", lambda: s)
    assert cli.main(["index"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CURRENT is not a file; remove it" in err
    assert not list(Path(s.index_dir).glob(".tmp-*"))
    current.rmdir()
    assert cli.main(["index"]) == 0


def test_a_corpus_file_the_server_cannot_read_is_a_409_that_says_so(settings, monkeypatch):
    """A document's file made unreadable in the corpus folder (permissions, an I/O error): GET ?original=true, PUT
    and DELETE answered 500 "internal error"; now 409 file_unreadable, and nothing changes."""
    import builtins

    import api.routers.documents as documents
    import qa.writes as writes

    s = settings
    target = Path(s.corpus_dir) / DOC
    real_open = builtins.open

    def unreadable(path, *a, **kw):
        if Path(path) == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *a, **kw)

    before = _corpus(s)
    with _client(s) as c:
        sha = c.get(f"/documents/{DOC}").headers["etag"].strip('"')
        monkeypatch.setattr(writes, "open", unreadable, raising=False)
        monkeypatch.setattr(documents, "open", unreadable, raising=False)
        for r in (c.get(f"/documents/{DOC}?original=true"),
                  c.put(f"/documents/{DOC}", files={"file": (DOC, b"New text.")}, headers={"If-Match": sha}),
                  c.delete(f"/documents/{DOC}")):
            assert r.status_code == 409 and r.json()["error"] == "file_unreadable", r.text
            assert "cannot be read on the server (Permission denied)" in r.json()["message"]
        monkeypatch.undo()
        assert c.get(f"/documents/{DOC}").status_code == 200 and c.get("/trash").json()["entries"] == []
    assert _corpus(s) == before


def test_a_trash_entry_with_a_damaged_meta_is_reported_once_and_kept(settings, caplog):
    """A trash entry whose meta.json is damaged was silently missing from GET /trash (its bytes kept, nothing said):
    now the log says, once per process, where the bytes are; the entry stays on disk and the others are listed."""
    p = LitePipeline(settings).warm_up()
    p.remove_document(DOC)
    p.remove_document("001_7bd650501039e11f.txt")
    damaged = next(t for t in p.trash() if t.id == DOC)
    folder = Path(settings.index_dir) / "trash" / damaged.entry
    (folder / "meta.json").write_text('{"id": ')
    with caplog.at_level("WARNING", logger="qa.writes"):
        assert [t.id for t in p.trash()] == ["001_7bd650501039e11f.txt"]
        assert [t.id for t in p.trash()] == ["001_7bd650501039e11f.txt"]
    said = [r.getMessage() for r in caplog.records if damaged.entry in r.getMessage()]
    assert len(said) == 1 and str(folder / "data") in said[0] and "meta.json is damaged" in said[0], said
    assert (folder / "data").is_file()
