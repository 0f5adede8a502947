"""`qa index --ray`: Ray Data chunks and embeds (a local Ray with 2 CPUs, started by the test) and
the result is the index `qa index` builds: the same chunks, the same vectors, in FAISS and Milvus."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import ray  # ray[data]: the `ray` extra, which make setup installs

from qa.chunking import Chunker
from qa.config import PROJECT_ROOT, Settings
from qa.index_store import IndexStore, build_or_update
from qa.store import open_store
from qa.store.bulk import ray_index

SEEDS_DIR = PROJECT_ROOT / "seeds"  # read only: copied into tmp_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             object_store_memory=256 * 1024 * 1024)
    yield
    ray.shutdown()


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    for p in sorted(SEEDS_DIR.glob("*.txt"))[:3]:
        shutil.copy(p, root / p.name)
    (root / "sub").mkdir()
    (root / "sub" / "empty.txt").write_text("   ", encoding="utf-8")  # skipped, named in the report
    return root


def test_ray_index_matches_qa_index(local_ray, corpus, tmp_path, embedder, chunker):
    plain = Settings(corpus_dir=corpus, index_dir=tmp_path / "plain")
    expected = build_or_update(corpus, plain, embedder, chunker)

    s = Settings(corpus_dir=corpus, index_dir=tmp_path / "ray")
    store = open_store(s, embedder.model_id, embedder.dimension, Chunker.from_settings(s).params)
    report = ray_index(s, store, corpus)
    assert sorted(report.added) == sorted(expected.documents) and len(expected.documents) == 3
    assert [sk.path for sk in report.skipped] == [sk.path for sk in expected.build_report.skipped] != []
    assert report.chunks == report.chunks_embedded == len(expected.chunks)

    got = IndexStore.load(s.index_dir, embedder.model_id)
    assert [(c.document, c.start, c.end, c.id) for c in got.chunks] == \
        [(c.document, c.start, c.end, c.id) for c in expected.chunks]
    assert np.allclose(got.vectors, expected.vectors, atol=1e-5)
    for d in expected.documents:
        assert got.document_text(d) == expected.document_text(d)
        assert got.documents[d].sha256 == expected.documents[d].sha256

    # nothing changed: nothing is embedded again; a removed file is dropped
    (corpus / sorted(expected.documents)[0]).unlink()
    again = ray_index(s, store, corpus)
    assert again.chunks_embedded == 0 and len(again.reused) == 2 and again.removed == [sorted(expected.documents)[0]]
    assert store.count_documents() == 2


def test_ray_index_into_milvus(local_ray, corpus, tmp_path, embedder):
    s = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", store="milvus", milvus_uri=str(tmp_path / "m.db"))
    store = open_store(s, embedder.model_id, embedder.dimension, Chunker.from_settings(s).params)
    try:
        report = ray_index(s, store, corpus)
        assert len(report.added) == 3 and store.count_documents() == 3
        hits = store.dense_search(embedder.embed_query("When did the protests in Kazakhstan begin?"), 3)
        assert hits
        for h in hits + store.keyword_search("Kazakhstan protests", 3):
            assert store.document_text(h.chunk.document)[h.chunk.start:h.chunk.end] == h.chunk.text
    finally:
        store.close()


def test_qa_index_ray_cli(local_ray, corpus, tmp_path, monkeypatch, capsys, embedder):
    import json

    from qa.cli import main
    from qa.config import get_settings

    monkeypatch.setenv("QA_CORPUS_DIR", str(corpus))
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "cli-index"))
    get_settings.cache_clear()
    try:
        assert main(["index", "--ray", "--ray-cpus", "2", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert len(report["added"]) == 3 and report["chunks"] == report["chunks_embedded"] > 0
        assert IndexStore.load(tmp_path / "cli-index").count_documents() == 3
    finally:
        get_settings.cache_clear()


def test_ray_workers_and_threads(local_ray, corpus, tmp_path, embedder):
    """--ray-workers / --ray-threads: one embedding worker with 2 torch threads makes the same index;
    the run's figures are filled in; more threads or workers than Ray's CPUs is refused before any work."""
    from qa.store.bulk import RayStats

    s = Settings(corpus_dir=corpus, index_dir=tmp_path / "one-by-two")
    store = open_store(s, embedder.model_id, embedder.dimension, Chunker.from_settings(s).params)
    stats = RayStats()
    report = ray_index(s, store, corpus, threads=2, workers=1, stats=stats)
    assert (stats.workers, stats.threads, stats.cpus) == (1, 2, 2)
    assert stats.chunks == report.chunks_embedded > 0 and stats.embed_s > 0 and stats.pipeline_s >= stats.embed_s
    assert "1 embedding worker(s) x 2 torch thread(s)" in stats.line()
    plain = build_or_update(corpus, Settings(corpus_dir=corpus, index_dir=tmp_path / "plain"), embedder,
                            Chunker.from_settings(s))
    assert np.allclose(IndexStore.load(s.index_dir, embedder.model_id).vectors, plain.vectors, atol=1e-5)

    fresh = Settings(corpus_dir=corpus, index_dir=tmp_path / "refused")
    store2 = open_store(fresh, embedder.model_id, embedder.dimension, Chunker.from_settings(fresh).params)
    with pytest.raises(ValueError, match="only 2 CPU"):
        ray_index(fresh, store2, corpus, threads=3)
    with pytest.raises(ValueError, match="need 4 CPUs"):
        ray_index(fresh, store2, corpus, threads=2, workers=2)
    assert store2.count_documents() == 0


def test_ray_index_rechunks_an_index_of_other_chunking(local_ray, corpus, tmp_path, embedder):
    """An index built with other chunking parameters is chunked and embedded again whole, as `qa index` does
    (it was reported all reused and kept its old chunks, or, with one file changed, failed after the Ray work);
    a file gone meanwhile leaves in the same one new version."""
    old = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    first = build_or_update(corpus, old, embedder, Chunker.from_settings(old))
    gone = sorted(first.documents)[0]
    (corpus / gone).unlink()

    s = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", chunk_tokens=64, chunk_overlap=16)
    store = open_store(s, embedder.model_id, embedder.dimension, Chunker.from_settings(s).params)
    report = ray_index(s, store, corpus)
    assert report.full_rebuild_reason and "chunking" in report.full_rebuild_reason
    assert report.reused == [] and len(report.changed) == 2 and report.removed == [gone]
    assert report.chunks == report.chunks_embedded

    got = IndexStore.load(s.index_dir, embedder.model_id)
    assert got.generation == first.generation + 1 and got.chunking == Chunker.from_settings(s).params
    expected = build_or_update(corpus, Settings(corpus_dir=corpus, index_dir=tmp_path / "plain", chunk_tokens=64,
                                                chunk_overlap=16), embedder, Chunker.from_settings(s))
    assert [(c.document, c.start, c.end) for c in got.chunks] == [(c.document, c.start, c.end) for c in expected.chunks]
    assert np.allclose(got.vectors, expected.vectors, atol=1e-5)

    # with explicit paths the other documents stay, chunked again too
    s2 = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", chunk_tokens=100, chunk_overlap=20)
    store = open_store(s2, embedder.model_id, embedder.dimension, Chunker.from_settings(s2).params)
    one = sorted(got.documents)[0]
    report = ray_index(s2, store, corpus, [corpus / one])
    assert sorted(report.changed) == sorted(got.documents) and report.removed == []
    again = IndexStore.load(s2.index_dir, embedder.model_id)
    assert sorted(again.documents) == sorted(got.documents) and again.chunking == Chunker.from_settings(s2).params


def test_ray_index_joins_the_cluster_of_ray_address(corpus, tmp_path, embedder, monkeypatch, capsys):
    """With RAY_ADDRESS (a cluster, docs/scaling.md) ray.init was always given a local Ray's object store size, which
    it refuses when joining a cluster ("object_store_memory must not be provided"): cluster mode never ran. It now
    joins with no local sizes; --ray-cpus with RAY_ADDRESS is refused before any work, in one line."""
    from qa.cli import main
    from qa.config import get_settings

    class Joined(Exception):
        pass

    calls = []

    def fake_init(*args, **kwargs):
        calls.append(kwargs)
        raise Joined

    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    s = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    store = open_store(s, embedder.model_id, embedder.dimension, Chunker.from_settings(s).params)
    with pytest.raises(Joined):
        ray_index(s, store, corpus)
    assert len(calls) == 1 and not {"num_cpus", "object_store_memory"} & set(calls[0])

    monkeypatch.setenv("QA_CORPUS_DIR", str(corpus))
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "cli-index"))
    get_settings.cache_clear()
    try:
        assert main(["index", "--ray", "--ray-cpus", "2"]) == 1
    finally:
        get_settings.cache_clear()
    assert "leave --ray-cpus out" in capsys.readouterr().err and len(calls) == 1
    assert not (tmp_path / "cli-index").exists()


def test_qa_index_ray_holds_the_index_lock_like_qa_index(corpus, tmp_path, monkeypatch, capsys):
    """`qa index` holds the index folder's lock from reading the corpus to the commit, so that a server's upload,
    replace or delete cannot slip in between; `qa index --ray` did not (a server's replace in between was
    overwritten with the text read before it). It now holds it over the whole run. Its report also says why a run
    embedded everything again ("Full rebuild: ..."), as `qa index` does (it did not)."""
    import fcntl

    from qa.cli import main
    from qa.config import get_settings
    from qa.index_store import BuildReport

    index_dir = tmp_path / "cli-index"
    seen = []

    def fake_ray_index(settings, store, corpus, paths=None, **kwargs):
        with open(index_dir / ".lock", "a+") as fh:  # another open file: flock conflicts even in this process
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                seen.append("held")
            else:
                fcntl.flock(fh, fcntl.LOCK_UN)
                seen.append("free")
        return BuildReport(index_dir=str(index_dir), full_rebuild_reason="chunking parameters changed (a -> b)")

    monkeypatch.setattr("qa.store.bulk.ray_index", fake_ray_index)
    monkeypatch.setenv("QA_CORPUS_DIR", str(corpus))
    monkeypatch.setenv("QA_INDEX_DIR", str(index_dir))
    get_settings.cache_clear()
    try:
        assert main(["index", "--ray"]) == 0
    finally:
        get_settings.cache_clear()
    assert seen == ["held"]
    # the report says why everything was embedded again, as `qa index` does
    assert "Full rebuild: chunking parameters changed (a -> b)" in capsys.readouterr().out
