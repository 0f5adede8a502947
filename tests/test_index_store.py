"""IndexStore: build, verify on load, corruption, atomic swap, incremental update."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

import qa.index_store as index_store
from qa.chunking import Chunker
from qa.config import Settings
from qa.index_store import (
    FORMAT_VERSION,
    IndexCorruptError,
    IndexLoadError,
    IndexNotFoundError,
    IndexStaleError,
    IndexStore,
    build_or_update,
    load_or_build,
)

pytestmark = pytest.mark.slow

DOCS = {
    "alpha.txt": "The alpha document talks about volcanoes. Mount Etna erupted in 2021.\n\nLava flows reached the sea.",
    "beta.md": "# Beta\n\nBeta covers the history of tea. Tea came to England in the 17th century.",
    "sub/gamma.txt": "Gamma is about chess. Magnus Carlsen became world champion in 2013.",
}


class CountingEmbedder:
    """Wraps the real embedder and records every text it embeds."""

    def __init__(self, inner):
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.embedded: list[str] = []

    def embed_documents(self, texts, show_progress=False):
        self.embedded.extend(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


@pytest.fixture
def small_chunker(tokenizer):
    return Chunker(tokenizer=tokenizer, chunk_tokens=32, chunk_overlap=8)


@pytest.fixture
def settings(tmp_path):
    return Settings(index_dir=tmp_path / "index", corpus_dir=tmp_path / "unused")


@pytest.fixture
def built(tmp_corpus, settings, embedder, small_chunker):
    root = tmp_corpus(DOCS)
    store = build_or_update(root, settings, embedder, small_chunker)
    return root, store


def _version(settings) -> Path:
    return settings.index_dir / (settings.index_dir / "CURRENT").read_text().strip()


def test_build_and_load_roundtrip(built, settings, embedder):
    root, store = built
    loaded = IndexStore.load(settings.index_dir, embedder.model_id, embedder.dimension)
    assert loaded.path == store.path
    assert set(loaded.documents) == {"alpha.txt", "beta.md", "sub/gamma.txt"}
    assert [(c.document, c.start, c.end) for c in loaded.chunks] == [
        (c.document, c.start, c.end) for c in store.chunks
    ]
    np.testing.assert_allclose(loaded.vectors, store.vectors)
    for c in loaded.chunks:
        assert loaded.document_text(c.document)[c.start : c.end] == c.text
        on_disk = open(root / c.document, encoding="utf-8").read()
        assert on_disk[c.start : c.end] == c.text
    info = loaded.documents["beta.md"]
    raw = (root / "beta.md").read_bytes()
    assert info.size == len(raw) and info.chunk_count == len(loaded.chunks_of("beta.md"))

    m = json.loads((loaded.path / "manifest.json").read_text())
    assert m["format_version"] == FORMAT_VERSION
    assert m["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert m["dimension"] == 384
    assert m["chunking"]["chunk_tokens"] == 32 and m["chunking"]["chunk_overlap"] == 8
    assert m["index_type"] == "flat"
    assert m["counts"] == {"documents": 3, "chunks": len(loaded.chunks), "vectors": len(loaded.chunks)}
    assert {d["id"] for d in m["documents"]} == set(DOCS)
    assert all({"id", "sha256", "size", "chunk_count"} <= set(d) for d in m["documents"])

    # Searching with a chunk's own vector finds it first.
    hits = loaded.search(loaded.vectors[2], 3)
    assert hits[0][0] == 2 and hits[0][1] == pytest.approx(1.0, abs=1e-4)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert len(loaded.search(loaded.vectors[0], 1000)) == len(loaded.chunks)


def test_missing_index(tmp_path):
    with pytest.raises(IndexNotFoundError, match="qa index"):
        IndexStore.load(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexNotFoundError, match="qa index"):
        IndexStore.load(tmp_path / "empty")


def test_error_hierarchy():
    for cls in (IndexNotFoundError, IndexCorruptError, IndexStaleError):
        assert issubclass(cls, IndexLoadError)
    assert issubclass(IndexLoadError, Exception)


def _truncate_faiss(v: Path) -> None:
    data = (v / "index.faiss").read_bytes()
    (v / "index.faiss").write_bytes(data[: len(data) // 2])


def _edit_manifest(v: Path, fn) -> None:
    m = json.loads((v / "manifest.json").read_text())
    fn(m)
    (v / "manifest.json").write_text(json.dumps(m))


def _bump_chunk_count(m):
    m["documents"][0]["chunk_count"] += 1


def _bump_counts(m):
    m["counts"]["vectors"] += 1


def _drop_document(m):
    m["documents"].pop()


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (_truncate_faiss, "index.faiss"),
        (lambda v: (v / "chunks.jsonl").unlink(), "chunks.jsonl"),
        (lambda v: (v / "vectors.npy").unlink(), "vectors.npy"),
        (lambda v: (v / "documents.jsonl").unlink(), "documents.jsonl"),
        (lambda v: (v / "manifest.json").write_text("{not json"), "manifest"),
        (lambda v: (v / "manifest.json").unlink(), "manifest"),
        (lambda v: _edit_manifest(v, _bump_chunk_count), "chunk counts"),
        (lambda v: _edit_manifest(v, _bump_counts), "counts"),
        (lambda v: _edit_manifest(v, _drop_document), "documents"),
        (lambda v: _edit_manifest(v, lambda m: m.pop("dimension")), "dimension"),
        (lambda v: (v / "chunks.jsonl").write_text('{"document": "alpha.txt", "start": 0, "end": 99999}\n'), "chunks.jsonl"),
        (lambda v: (v / "vectors.npy").write_bytes(b"garbage"), "vectors.npy"),
        (lambda v: (v / "documents.jsonl").write_text(
            (v / "documents.jsonl").read_text().replace("volcanoes", "volcanos")), "checksum"),
    ],
)
def test_corrupt_index_raises_clear_error(built, settings, embedder, damage, fragment):
    damage(_version(settings))
    with pytest.raises(IndexCorruptError) as exc:
        IndexStore.load(settings.index_dir, embedder.model_id, embedder.dimension)
    msg = str(exc.value)
    assert fragment in msg
    assert "qa index" in msg  # tells the user what to do


def test_current_pointing_nowhere(built, settings):
    (settings.index_dir / "CURRENT").write_text("v-does-not-exist\n")
    with pytest.raises(IndexCorruptError, match="qa index"):
        IndexStore.load(settings.index_dir)


def test_stale_index(built, settings, embedder):
    with pytest.raises(IndexStaleError, match="other-model.*qa index|qa index"):
        IndexStore.load(settings.index_dir, "other-model", embedder.dimension)
    with pytest.raises(IndexStaleError, match="768"):
        IndexStore.load(settings.index_dir, embedder.model_id, 768)
    _edit_manifest(_version(settings), lambda m: m.update(format_version=999))
    with pytest.raises(IndexStaleError, match="format version"):
        IndexStore.load(settings.index_dir)


@pytest.mark.parametrize("step", ["_write_faiss", "_write_manifest", "_swap_current"])
def test_crash_mid_build_keeps_previous_index(built, settings, embedder, small_chunker, monkeypatch, step):
    root, store = built
    old_version = store.path
    (root / "new.txt").write_text("A brand new document about kites.", encoding="utf-8")
    (root / "alpha.txt").unlink()

    def boom(*a, **k):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(index_store, step, boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        build_or_update(root, settings, embedder, small_chunker)
    monkeypatch.undo()

    old = IndexStore.load(settings.index_dir, embedder.model_id, embedder.dimension)
    assert old.path == old_version
    assert set(old.documents) == set(DOCS)  # the old index, intact
    assert old.document_text("alpha.txt") == DOCS["alpha.txt"]
    assert not list(settings.index_dir.glob(".tmp-*"))  # the half-written folder was removed

    # The next build succeeds; the newest Settings.keep_index_versions versions stay (for a rollback).
    new = build_or_update(root, settings, embedder, small_chunker)
    assert set(new.documents) == {"beta.md", "sub/gamma.txt", "new.txt"}
    versions = {p.name for p in settings.index_dir.glob("v-*")}
    assert {new.path.name, old_version.name} <= versions and len(versions) <= settings.keep_index_versions
    assert IndexStore.load(settings.index_dir).path == new.path
    # with one version kept, every other (and any orphaned) version folder is removed
    (root / "another.txt").write_text("Another document about tides.", encoding="utf-8")
    one = settings.model_copy(update={"keep_index_versions": 1})
    newest = build_or_update(root, one, embedder, small_chunker)
    assert [p.name for p in settings.index_dir.glob("v-*")] == [newest.path.name]


def test_incremental_update(built, settings, embedder, small_chunker):
    root, v1 = built
    (root / "beta.md").write_text("# Beta\n\nBeta now covers coffee. Coffee reached Europe in the 1600s.", encoding="utf-8")
    (root / "sub/gamma.txt").unlink()
    (root / "delta.txt").write_text("Delta explains rivers. The Nile is very long.", encoding="utf-8")

    counting = CountingEmbedder(embedder)
    v2 = build_or_update(root, settings, counting, small_chunker)
    r = v2.build_report
    assert r.added == ["delta.txt"]
    assert r.changed == ["beta.md"]
    assert r.reused == ["alpha.txt"]
    assert r.removed == ["sub/gamma.txt"]
    assert r.full_rebuild_reason is None
    # Only chunks of the new and the changed document were embedded.
    expected = [c.text for c in v2.chunks if c.document in ("beta.md", "delta.txt")]
    assert sorted(counting.embedded) == sorted(expected)
    assert r.chunks_embedded == len(expected)
    # Reused vectors are identical to the old ones.
    old_alpha = v1.vectors[[i for i, c in enumerate(v1.chunks) if c.document == "alpha.txt"]]
    new_alpha = v2.vectors[[i for i, c in enumerate(v2.chunks) if c.document == "alpha.txt"]]
    np.testing.assert_array_equal(old_alpha, new_alpha)
    # New object; the old one is still fully usable (search, texts of removed documents).
    assert v2 is not v1
    assert v1.document_text("sub/gamma.txt") == DOCS["sub/gamma.txt"]
    assert v1.search(v1.vectors[0], 1)[0][0] == 0
    loaded = IndexStore.load(settings.index_dir, embedder.model_id, embedder.dimension)
    assert set(loaded.documents) == {"alpha.txt", "beta.md", "delta.txt"}
    for c in loaded.chunks:
        assert open(root / c.document, encoding="utf-8").read()[c.start : c.end] == c.text

    # Nothing changed: nothing embedded.
    counting.embedded.clear()
    v3 = build_or_update(root, settings, counting, small_chunker, previous=v2)
    assert counting.embedded == [] and v3.build_report.reused == ["alpha.txt", "beta.md", "delta.txt"]


def test_explicit_paths_update_only_those(built, settings, embedder, small_chunker):
    root, _ = built
    (root / "extra.md").write_text("Extra notes on bees. Bees make honey.", encoding="utf-8")
    (root / "sub/gamma.txt").unlink()  # not named: stays indexed
    counting = CountingEmbedder(embedder)
    store = build_or_update(root, settings, counting, small_chunker, paths=[root / "extra.md"])
    assert store.build_report.added == ["extra.md"]
    assert store.build_report.removed == []
    assert set(store.documents) == {"alpha.txt", "beta.md", "sub/gamma.txt", "extra.md"}
    assert all(t in [c.text for c in store.chunks_of("extra.md")] for t in counting.embedded)


def test_chunking_change_forces_full_rebuild(built, settings, embedder, tokenizer):
    root, _ = built
    counting = CountingEmbedder(embedder)
    store = build_or_update(root, settings, counting, Chunker(tokenizer=tokenizer, chunk_tokens=24, chunk_overlap=4))
    assert "chunking" in store.build_report.full_rebuild_reason
    assert len(counting.embedded) == len(store.chunks)
    assert store.build_report.reused == []


def test_hnsw_index(tmp_corpus, tmp_path, embedder, small_chunker):
    settings = Settings(index_dir=tmp_path / "hnsw", index_type="hnsw")
    root = tmp_corpus(DOCS)
    store = build_or_update(root, settings, embedder, small_chunker)
    loaded = IndexStore.load(settings.index_dir, embedder.model_id, embedder.dimension)
    assert loaded.index_type == "hnsw"
    import faiss

    assert isinstance(loaded._index, faiss.IndexHNSWFlat)
    assert loaded._index.metric_type == faiss.METRIC_INNER_PRODUCT
    q = embedder.embed_query("When did Magnus Carlsen become world champion?")
    top = loaded.search(q, 1)[0][0]
    assert loaded.chunks[top].document == "sub/gamma.txt"
    assert store.search(q, 1)[0][0] == top


def test_crlf_bom_and_skipped_files(tmp_corpus, settings, embedder, small_chunker, caplog):
    root = tmp_corpus(
        {
            "crlf.txt": b"Line one of the CRLF file.\r\nThe secret code is 1234.\r\n\r\nLast line.\r\n",
            "bom.txt": "\ufeffThe BOM file says the answer is forty-two.".encode("utf-8"),
            "bad.txt": b"caf\xe9 au lait",
            "empty.md": b"",
        }
    )
    with caplog.at_level(logging.WARNING):
        store = build_or_update(root, settings, embedder, small_chunker)
    assert set(store.documents) == {"crlf.txt", "bom.txt"}
    assert sorted(s.path for s in store.build_report.skipped) == ["bad.txt", "empty.md"]
    assert any("bad.txt" in r.getMessage() for r in caplog.records)
    assert any("empty.md" in r.getMessage() for r in caplog.records)
    loaded = IndexStore.load(settings.index_dir)
    for name, needle in (("crlf.txt", "1234"), ("bom.txt", "forty-two")):
        reference = open(root / name, encoding="utf-8").read()
        assert loaded.document_text(name) == reference
        start = reference.index(needle)
        [chunk] = [c for c in loaded.chunks_of(name) if c.start <= start < c.end][:1]
        assert reference[chunk.start : chunk.end] == chunk.text
        assert needle in chunk.text
    assert loaded.document_text("bom.txt")[0] == "\ufeff"


def test_empty_corpus(tmp_corpus, settings, embedder, small_chunker):
    root = tmp_corpus({"only-blank.txt": "   \n"})
    store = build_or_update(root, settings, embedder, small_chunker)
    assert store.chunks == [] and store.documents == {}
    assert IndexStore.load(settings.index_dir).search(embedder.embed_query("x"), 5) == []


def test_load_or_build_first_run(tmp_corpus, tmp_path, embedder):
    root = tmp_corpus(DOCS)
    settings = Settings(index_dir=tmp_path / "fresh", corpus_dir=root, chunk_tokens=32, chunk_overlap=8)
    messages = []
    store = load_or_build(settings, embedder, announce=messages.append)
    assert messages and "first run" in messages[0]
    assert set(store.documents) == set(DOCS)
    messages.clear()
    again = load_or_build(settings, embedder, announce=messages.append)
    assert messages == [] and again.path == store.path
