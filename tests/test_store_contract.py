"""One contract for every DocumentStore backend (qa/store): faiss in tmp_path, milvus with a Milvus
Lite file in tmp_path (in this process). Small deterministic models (tests/lite_pipeline.py) keep
it fast; the real embedder is the same code path with other vectors."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lite_pipeline import CharChunker, HashEmbedder, LitePipeline  # noqa: E402

from qa.config import Settings  # noqa: E402
from qa.index_store import IndexStaleError  # noqa: E402
from qa.retriever.hybrid import make_retriever  # noqa: E402
from qa.store import open_store  # noqa: E402
from qa.store.protocol import DocumentReader, DocumentStore, Hit, chunk_id, ranked, with_ids  # noqa: E402
from qa.types import Chunk, Document  # noqa: E402

BACKENDS = ["faiss", "milvus"]
EMB, CHUNKER = HashEmbedder(), CharChunker()

KAZ = ("Protests in Kazakhstan began on 2 January 2022 after a sharp rise in liquefied gas prices. "
       "The protests spread quickly from Zhanaozen to Almaty. ") * 6
BIRDS = "The heron nests by the estuary every spring. Otters swim in the river below the cliff."
LIGHT = "The lighthouse keeper of Varn island counted 212 ospreys in 1987."


def doc(doc_id: str, text: str, page_starts: tuple[int, ...] = ()) -> Document:
    raw = text.encode("utf-8")
    return Document(doc_id, text, hashlib.sha256(raw).hexdigest(), len(raw), page_starts=page_starts)


def write(store: DocumentStore, d: Document) -> int:
    chunks = CHUNKER.chunk(d)
    return store.write_document(d, chunks, EMB.embed_documents([c.text for c in chunks]))


def settings_for(backend: str, tmp_path: Path, **kw) -> Settings:
    return Settings(store=backend, corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index",
                    milvus_uri=str(tmp_path / "milvus.db") if backend == "milvus" else "", **kw)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def make_store(backend, tmp_path):
    opened: list = []

    def make() -> DocumentStore:
        s = open_store(settings_for(backend, tmp_path), EMB.model_id, EMB.dimension, CHUNKER.params)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


def assert_exact(store: DocumentReader, hits) -> None:
    for h in hits:
        assert store.document_text(h.chunk.document)[h.chunk.start:h.chunk.end] == h.chunk.text


def test_empty_store(make_store, backend):
    store = make_store()
    assert isinstance(store, DocumentStore) and store.name == backend
    assert (store.generation, store.count_documents(), store.count_chunks()) == (0, 0, 0)
    assert store.document_ids() == [] and dict(store.documents) == {}
    assert store.dense_search(EMB.embed_query("heron"), 5) == []
    assert store.keyword_search("heron", 5) == []
    for call in (store.document_text, store.page_starts, store.delete_document):
        with pytest.raises(KeyError):
            call("nope.txt")
    assert store.generation == 0


def test_add_search_counts_and_stable_ids(make_store):
    store = make_store()
    g1 = write(store, doc("kaz.txt", KAZ))
    g2 = write(store, doc("notes/birds.md", BIRDS))
    g3 = write(store, doc("light.txt", LIGHT))
    assert 0 < g1 < g2 < g3 == store.generation
    assert store.document_ids() == ["kaz.txt", "light.txt", "notes/birds.md"]
    assert store.count_documents() == 3
    n_chunks = sum(len(CHUNKER.chunk(d)) for d in (doc("kaz.txt", KAZ), doc("b", BIRDS), doc("l", LIGHT)))
    assert store.count_chunks() == n_chunks
    info = store.documents["kaz.txt"]
    assert info.sha256 == hashlib.sha256(KAZ.encode()).hexdigest() and info.size == len(KAZ.encode())
    assert info.chunk_count == len(CHUNKER.chunk(doc("kaz.txt", KAZ))) > 1
    assert store.document_text("kaz.txt") == KAZ and store.document_text("light.txt") == LIGHT

    dense = store.dense_search(EMB.embed_query("heron nests estuary"), 3)
    assert dense[0].chunk.document == "notes/birds.md"
    assert [h.score for h in dense] == sorted((h.score for h in dense), reverse=True)
    kw = store.keyword_search("protested in Almaty", 10)  # stemmed: protested ~ protests
    assert kw and {h.chunk.document for h in kw} == {"kaz.txt"}
    assert all(h.score > 0 for h in kw)
    assert store.keyword_search("ospreys", 5)[0].chunk.document == "light.txt"
    assert store.keyword_search("the of and", 5) == []  # stop words only
    assert store.keyword_search("zebra", 5) == []  # no shared term
    everything = store.dense_search(EMB.embed_query("x"), 10_000)
    assert len(everything) == n_chunks
    assert_exact(store, dense + kw + everything)
    # stable ids: document + ordinal + content hash, the same in every backend
    kaz_chunks = CHUNKER.chunk(doc("kaz.txt", KAZ))
    want = {chunk_id("kaz.txt", i, c.text): (c.start, c.end) for i, c in enumerate(kaz_chunks)}
    got = {h.id: (h.chunk.start, h.chunk.end) for h in everything if h.chunk.document == "kaz.txt"}
    assert got == want


def test_replace_and_delete(make_store):
    store = make_store()
    write(store, doc("a.txt", BIRDS))
    write(store, doc("b.txt", LIGHT))
    g = store.generation
    write(store, doc("a.txt", KAZ))  # replace: the old chunks go, the new text is served
    assert store.generation > g
    assert store.document_text("a.txt") == KAZ
    assert store.count_documents() == 2
    assert store.count_chunks() == len(CHUNKER.chunk(doc("a.txt", KAZ))) + 1
    assert store.keyword_search("heron otters", 5) == []
    assert store.keyword_search("Zhanaozen", 5)[0].chunk.document == "a.txt"
    assert store.documents["a.txt"].sha256 == hashlib.sha256(KAZ.encode()).hexdigest()

    g = store.generation
    assert store.delete_document("a.txt") > g
    assert store.document_ids() == ["b.txt"] and store.count_chunks() == 1
    with pytest.raises(KeyError):
        store.document_text("a.txt")
    assert all(h.chunk.document == "b.txt" for h in store.dense_search(EMB.embed_query("Kazakhstan protests"), 10))
    assert store.keyword_search("Kazakhstan", 5) == []
    g = store.generation
    with pytest.raises(KeyError):
        store.delete_document("a.txt")  # unknown now: an error, nothing changes
    assert store.generation == g and store.document_ids() == ["b.txt"]


def test_bad_input_writes_nothing(make_store):
    store = make_store()
    write(store, doc("b.txt", LIGHT))
    g, n = store.generation, store.count_chunks()
    d = doc("a.txt", BIRDS)
    chunks = CHUNKER.chunk(d)
    vecs = EMB.embed_documents([c.text for c in chunks])
    with pytest.raises(ValueError, match="does not slice"):
        store.write_document(d, [Chunk("a.txt", 0, 5, "XXXXX")], vecs[:1])
    with pytest.raises(ValueError, match="shape"):
        store.write_document(d, chunks, np.zeros((len(chunks), EMB.dimension + 1), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        store.write_document(d, chunks, np.full((len(chunks), EMB.dimension), np.nan, np.float32))
    with pytest.raises(ValueError):
        store.write_document(d, [Chunk("other.txt", 0, 3, BIRDS[:3])], vecs[:1])
    assert (store.generation, store.count_chunks(), store.document_ids()) == (g, n, ["b.txt"])


def test_odd_ids_unicode_pages_and_long_texts(make_store):
    store = make_store()
    odd = 'reports/it\'s "quoted" \\ back é 漢字.txt'
    write(store, doc(odd, "Crème brûlée was served at the 漢字 festival in Kyoto."))
    long_text = ("Gannets dive for mackerel off the northern cliffs. ∑ é 🦅 " * 2500)  # > 60 000 UTF-8 bytes
    assert len(long_text.encode()) > 130_000
    pages = (0, 100, 5000)
    write(store, doc("long.pdf", long_text, pages))
    assert store.document_text(odd) == "Crème brûlée was served at the 漢字 festival in Kyoto."
    assert store.document_text("long.pdf") == long_text
    assert store.page_starts("long.pdf") == pages and store.page_starts(odd) == ()
    assert store.keyword_search("brûlée festival", 3)[0].chunk.document == odd
    hits = store.keyword_search("gannets mackerel", 5)
    assert hits and hits[0].chunk.document == "long.pdf"
    assert_exact(store, hits)
    assert store.delete_document(odd) and store.document_ids() == ["long.pdf"]


def test_reopen_sees_the_same_documents(make_store):
    store = make_store()
    write(store, doc("a.txt", BIRDS))
    g = store.generation
    store.close()
    again = make_store()
    assert again.document_ids() == ["a.txt"] and again.generation == g
    assert again.document_text("a.txt") == BIRDS
    assert again.dense_search(EMB.embed_query("heron"), 1)[0].chunk.document == "a.txt"


def test_another_model_is_refused(make_store, backend, tmp_path):
    store = make_store()
    write(store, doc("a.txt", BIRDS))
    store.close()
    with pytest.raises(IndexStaleError):
        open_store(settings_for(backend, tmp_path), "another-model", EMB.dimension, CHUNKER.params)


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_retrievers_over_the_protocol(make_store, mode):
    store = make_store()
    for d in (doc("kaz.txt", KAZ), doc("birds.txt", BIRDS), doc("light.txt", LIGHT)):
        write(store, d)
    r = make_retriever(mode, store.snapshot(), EMB, Settings())
    if hasattr(r, "warm_up"):
        r.warm_up()
    passages = r.run("lighthouse keeper Varn island ospreys", 3)
    assert passages[0].chunk.document == "light.txt"
    assert [p.rank for p in passages] == list(range(1, len(passages) + 1))
    assert_exact(store, passages)


def test_both_backends_rank_and_score_alike(tmp_path):
    """The same documents in both backends give the same hits with the same scores: dense (inner
    product) and BM25 (Milvus's score rescaled to bm25s's; the answer verifier reads the magnitudes,
    so a different scale changes confidences and abstentions)."""
    stores = {b: open_store(settings_for(b, tmp_path / b), EMB.model_id, EMB.dimension, CHUNKER.params)
              for b in BACKENDS}
    try:
        for store in stores.values():
            for d in (doc("kaz.txt", KAZ), doc("birds.txt", BIRDS), doc("light.txt", LIGHT),
                      doc("more.txt", "Protests and strikes: gas prices rose in Zhanaozen, then in Almaty; "
                                      "the keeper of the lighthouse saw herons. " * 3)):
                write(store, d)
        f, m = stores["faiss"].snapshot(), stores["milvus"].snapshot()
        for query in ("protests in Almaty", "gas prices rise", "lighthouse keeper ospreys", "herons otters river",
                      "Zhanaozen Kazakhstan protest spread"):
            a, b = f.keyword_search(query, 10), m.keyword_search(query, 10)
            assert a and [h.id for h in a] == [h.id for h in b], query
            assert [h.score for h in b] == pytest.approx([h.score for h in a], rel=1e-4), query
            # kaz.txt repeats itself: its chunks tie, and both backends order ties by chunk id
            a, b = f.dense_search(EMB.embed_query(query), 4), m.dense_search(EMB.embed_query(query), 4)
            assert len(a) == 4 and [h.id for h in a] == [h.id for h in b], query
            assert [h.score for h in b] == pytest.approx([h.score for h in a], rel=1e-5, abs=1e-6), query
    finally:
        for store in stores.values():
            store.close()


def test_a_tie_wider_than_the_margin_gives_the_same_hits_on_both_backends(tmp_path):
    """One boilerplate paragraph in 20 documents: 20 chunks tie, more than k + TIE_MARGIN. Each engine used to
    return its own subset of the tied chunks (FAISS k + 8 of them, Milvus 2 (k + 8)), so the two backends
    cited different documents for the same question; now a search widens until it has the whole tie."""
    stores = {b: open_store(settings_for(b, tmp_path / b), EMB.model_id, EMB.dimension, CHUNKER.params)
              for b in BACKENDS}
    footer = "Disclaimer: this bulletin is for members of the Varn island ferry club only."
    try:
        for store in stores.values():
            write(store, doc("light.txt", LIGHT))
            for i in range(20):
                write(store, doc(f"bulletin-{i:02d}.txt", footer))
        for k in (1, 3, 5, 12):
            f, m = (stores[b].snapshot().dense_search(EMB.embed_query("ferry club disclaimer"), k) for b in BACKENDS)
            assert len(f) == k and [h.id for h in f] == [h.id for h in m], k
            assert [h.chunk.document for h in f] == [f"bulletin-{i:02d}.txt" for i in range(k)], k
            f, m = (stores[b].snapshot().keyword_search("ferry club disclaimer", k) for b in BACKENDS)
            assert [h.id for h in f] == [h.id for h in m], k
            assert [h.chunk.document for h in f] == [f"bulletin-{i:02d}.txt" for i in range(k)], k
    finally:
        for store in stores.values():
            store.close()


def test_ties_are_ordered_by_chunk_id():
    def hit(doc_id: str, score: float) -> Hit:
        return Hit(Chunk(doc_id, 0, 1, "x", id=f"{doc_id}#0-00000000"), score)

    hits = [hit("d", 0.5), hit("b", 2.0), hit("c", 0.9), hit("a", 0.9 + 1e-7), hit("e", 0.9)]
    assert [h.chunk.document for h in ranked(hits, 5)] == ["b", "a", "c", "e", "d"]
    assert [h.chunk.document for h in ranked(hits, 2)] == ["b", "a"]
    assert ranked(hits, 0) == [] and ranked([], 3) == []


def test_pipeline_citations_slice_the_stored_text(backend, tmp_path, tmp_corpus):
    corpus = tmp_corpus({"kaz.txt": KAZ, "birds.txt": BIRDS}, name="corpus")
    s = settings_for(backend, tmp_path, retrieval_mode="hybrid", reload_interval_s=0)
    assert s.corpus_dir == corpus
    p = LitePipeline(s).warm_up()  # the first start indexes the corpus folder
    try:
        assert sorted(d.id for d in p.documents()) == ["birds.txt", "kaz.txt"]
        ids = p.add_documents([("light.txt", LIGHT.encode())])
        assert ids == ["light.txt"]
        result = p.ask("How many ospreys did the lighthouse keeper count in 1987?")
        assert result.answer_found and result.answers[0].top.document == "light.txt"
        for a in result.answers:
            for c in a.citations:
                assert p.document_text(c.document)[c.start:c.end] == c.text
        for q in result.passages:
            assert p.document_text(q.document)[q.start:q.end] == q.text
        assert json.loads(result.model_dump_json())["answers"][0]["citations"][0]["document"] == "light.txt"
        p.remove_document("light.txt")
        with pytest.raises(KeyError):
            p.document_text("light.txt")
        assert all(x.document != "light.txt" for x in p.ask("ospreys lighthouse keeper").passages)
    finally:
        close = getattr(p.store, "close", None)
        if backend == "milvus" and close is not None:
            close()


@pytest.mark.slow
def test_cli_index_search_and_check_with_milvus(tmp_path, tmp_corpus, monkeypatch, embedder, capsys):
    """`qa index`, `qa search`, `qa index --check` and `qa restore` with QA_STORE=milvus (a Milvus Lite file)."""
    from qa.cli import main
    from qa.config import get_settings

    corpus = tmp_corpus({"kaz.txt": KAZ, "birds.txt": BIRDS})
    for k, v in {"STORE": "milvus", "MILVUS_URI": str(tmp_path / "cli.db"), "CORPUS_DIR": str(corpus),
                 "INDEX_DIR": str(tmp_path / "index")}.items():
        monkeypatch.setenv(f"QA_{k}", v)
    get_settings.cache_clear()
    try:
        assert main(["index", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert sorted(report["added"]) == ["birds.txt", "kaz.txt"] and report["documents"] == 2
        (corpus / "light.txt").write_text(LIGHT, encoding="utf-8")
        (corpus / "birds.txt").unlink()
        assert main(["index", "--check"]) == 1
        out = capsys.readouterr().out
        assert "not_indexed: light.txt" in out and "missing_file: birds.txt" in out
        assert main(["index", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert (report["added"], report["removed"], report["reused"]) == (["light.txt"], ["birds.txt"], ["kaz.txt"])
        assert main(["index", "--check"]) == 0
        capsys.readouterr()
        assert main(["search", "How many ospreys did the lighthouse keeper count?", "--json", "-k", "2"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert rows[0]["document"] == "light.txt" and set(rows[0]["scores"]) == {"dense", "bm25", "rrf"}
        for r in rows:
            assert (corpus / r["document"]).read_text(encoding="utf-8")[r["start"]:r["end"]] == r["text"]
        # `qa restore` lists and restores from the trash kept in Milvus
        from qa.cli import store_writer

        writer = store_writer(get_settings())
        writer.delete("light.txt")
        writer.store.close()
        assert main(["restore", "--list"]) == 0
        assert "\tlight.txt\t" in capsys.readouterr().out
        assert main(["restore", "light.txt"]) == 0
        assert "Restored light.txt" in capsys.readouterr().out
        assert main(["restore", "light.txt"]) == 1  # nothing left to restore
        assert main(["restore", "--list"]) == 0
        listed = capsys.readouterr().out  # what `qa index` removed is kept too (Milvus holds its only copy)
        assert "\tbirds.txt\t" in listed and "\tlight.txt\t" not in listed
        assert main(["search", "How many ospreys did the lighthouse keeper count?", "--json", "-k", "1"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["document"] == "light.txt"
        assert not (tmp_path / "index" / "CURRENT").exists()  # nothing went to a FAISS index
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("env, code, says", [
    ({"MILVUS_URI": "{tmp}/a-file/qa.db"}, 2, "(a folder above it is a file); set QA_MILVUS_URI"),  # FileExistsError
    ({"MILVUS_URI": "http://127.0.0.1:1"}, 2, "(Fail connecting to server"),  # MilvusException traceback
    ({"MILVUS_URI": "{tmp}/qa.txt"}, 1, "a local Milvus Lite file must end in .db"),  # ValueError traceback
    ({"MILVUS_COLLECTION": "bad-name"}, 1, "QA_MILVUS_COLLECTION 'bad-name': letters, digits and _ only"),
])
def test_milvus_settings_mistakes_are_one_line(tmp_path, tmp_corpus, monkeypatch, capsys, env, code, says):
    from qa.cli import main
    from qa.config import get_settings

    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    corpus = tmp_corpus({"kaz.txt": KAZ})
    env = {"STORE": "milvus", "MILVUS_URI": str(tmp_path / "m.db"), "CORPUS_DIR": str(corpus), **env}
    for k, v in env.items():
        monkeypatch.setenv(f"QA_{k}", v.format(tmp=tmp_path))
    get_settings.cache_clear()
    try:
        assert main(["index"]) == code
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err.strip()
    assert err.startswith("qa: error: ") and says in err and len(err.splitlines()) == 1, err


def test_write_documents_in_bulk(make_store):
    store = make_store()
    items = []
    for d in (doc("kaz.txt", KAZ), doc("birds.txt", BIRDS), doc("light.txt", LIGHT)):
        chunks = CHUNKER.chunk(d)
        items.append((d, chunks, EMB.embed_documents([c.text for c in chunks])))
    bad = (doc("bad.txt", "short"), [Chunk("bad.txt", 0, 3, "XXX")], EMB.embed_documents(["XXX"]))
    with pytest.raises(ValueError):
        store.write_documents([*items, bad])
    assert (store.generation, store.count_documents()) == (0, 0)  # checked before anything is written
    g = store.write_documents(items)
    assert g == store.generation > 0
    assert store.document_ids() == ["birds.txt", "kaz.txt", "light.txt"]
    assert all(store.document_text(d.id) == d.text for d, _, _ in items)
    assert store.keyword_search("ospreys", 1)[0].chunk.document == "light.txt"


def test_readers_never_see_half_a_replace(make_store):
    """A document replaced over and over while another thread reads it: every read is one whole
    version's text, and every search hit slices the text of the version it came from."""
    import threading

    store = make_store()
    versions = [KAZ, KAZ.replace("Almaty", "Aqtobe") + " Later the protests ended.", BIRDS + " " + KAZ[:400]]
    write(store, doc("a.txt", versions[0]))
    write(store, doc("b.txt", LIGHT))
    stop, seen, problems = threading.Event(), set(), []

    def read() -> None:
        while not stop.is_set():
            text = store.document_text("a.txt")
            if text not in versions:
                problems.append(text[:60])
            seen.add(versions.index(text) if text in versions else -1)
            for h in store.keyword_search("protests Kazakhstan", 5):
                if h.chunk.text not in {t[h.chunk.start:h.chunk.end] for t in versions} | {LIGHT}:
                    problems.append(h.chunk.id)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(1, 13):
            write(store, doc("a.txt", versions[i % 3]))
    finally:
        stop.set()
        reader.join(60)
    assert problems == []
    assert len(seen) >= 2  # the reader did run across replaces
    assert store.document_text("a.txt") == versions[0] and store.count_documents() == 2
    assert store.count_chunks() == len(CHUNKER.chunk(doc("a.txt", versions[0]))) + 1


def test_passages_of_a_replaced_document_are_not_read(make_store):
    """The pipeline's guard for a live store: a passage retrieved before its document was replaced
    (on another replica) no longer slices the stored text and is dropped before the reader."""
    from qa.pipeline import _exact_passages

    store = make_store()
    write(store, doc("a.txt", KAZ))
    write(store, doc("b.txt", BIRDS))
    passages = make_retriever("bm25", store.snapshot(), EMB, Settings()).run("protests Kazakhstan heron", 10)
    assert {p.chunk.document for p in passages} == {"a.txt", "b.txt"}
    assert _exact_passages(passages, store.document_text) == passages
    write(store, doc("a.txt", "Breaking: " + KAZ))  # every offset of a.txt moves by 10
    kept = _exact_passages(passages, store.snapshot().document_text)
    assert [p.chunk.document for p in kept] == ["b.txt"]
    store.delete_document("b.txt")
    assert _exact_passages(passages, store.snapshot().document_text) == []  # gone: dropped, no error


def test_faiss_index_without_generation_loads_and_counts_on(tmp_path):
    """Versions written before generations existed load as generation 0; the next commit is 1 more
    than the largest seen, and the on-disk format (CURRENT + version folders) is unchanged."""
    s = settings_for("faiss", tmp_path)
    store = open_store(s, EMB.model_id, EMB.dimension, CHUNKER.params)
    write(store, doc("a.txt", BIRDS))
    current = (s.index_dir / "CURRENT").read_text().strip()
    manifest_path = s.index_dir / current / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["generation"] == 1 and manifest["format_version"] == 1
    del manifest["generation"]
    manifest_path.write_text(json.dumps(manifest))
    old = open_store(s, EMB.model_id, EMB.dimension, CHUNKER.params)
    assert old.generation == 0 and old.document_text("a.txt") == BIRDS
    assert write(old, doc("b.txt", LIGHT)) == 1
    active = (s.index_dir / "CURRENT").read_text().strip()
    assert active != current and active.startswith("v-")
    manifest = json.loads((s.index_dir / active / "manifest.json").read_text())
    assert manifest["generation"] == 1 and manifest["counts"]["documents"] == 2
    assert open_store(s, EMB.model_id, EMB.dimension, CHUNKER.params).document_ids() == ["a.txt", "b.txt"]


def test_qa_index_on_milvus_keeps_uploads_and_replaced_versions_in_the_trash(tmp_path, tmp_corpus):
    """With QA_STORE=milvus an upload or a PUT lives only in Milvus (not in the corpus folder), so `qa index`
    (StoreWriter.sync_corpus) finds the upload "removed" and the replaced document "changed". It used to delete
    the upload and overwrite the PUT's version outright, neither kept anywhere; both now go to the trash first
    (restorable, as on every other delete and replace)."""
    tmp_corpus({"kaz.txt": KAZ, "birds.txt": BIRDS}, name="corpus")
    s = settings_for("milvus", tmp_path, reload_interval_s=0)
    p = LitePipeline(s).warm_up()
    try:
        p.add_documents([("light.txt", LIGHT.encode())])
        put = "The heron left the estuary in 2024."
        p.replace_document("birds.txt", put.encode(), "*")
        report = p.writer.sync_corpus(s.corpus_dir)
        assert report.removed == ["light.txt"] and report.changed == ["birds.txt"]
        assert p.document_text("birds.txt") == BIRDS  # the folder's version, as documented
        kept = [(t.id, t.reason, t.sha256) for t in p.trash()]
        assert ("light.txt", "deleted", hashlib.sha256(LIGHT.encode()).hexdigest()) in kept
        assert ("birds.txt", "replaced", hashlib.sha256(put.encode()).hexdigest()) in kept
        p.restore_document("light.txt")
        assert p.document_text("light.txt") == LIGHT
        assert p.writer.sync_corpus(s.corpus_dir, [s.corpus_dir / "kaz.txt"]).removed == []  # paths: no removals
    finally:
        p.store.close()


def test_qa_index_ray_on_milvus_keeps_what_it_removes_in_the_trash(tmp_path, tmp_corpus):
    """`qa index --ray` (qa.store.bulk.ray_index) over a Milvus store deleted a document with no file in the folder
    (an upload) outright, as `qa index` did; it goes to the trash first now. Nothing changed, so Ray never starts."""
    from qa.store.bulk import ray_index

    corpus = tmp_corpus({"kaz.txt": KAZ}, name="corpus")
    store = open_store(settings_for("milvus", tmp_path), EMB.model_id, EMB.dimension, CHUNKER.params)
    try:
        write(store, doc("kaz.txt", KAZ))
        write(store, doc("light.txt", LIGHT))  # uploaded through a replica: not in the folder
        report = ray_index(settings_for("milvus", tmp_path), store, corpus)
        assert report.removed == ["light.txt"] and report.reused == ["kaz.txt"] and report.chunks_embedded == 0
        assert [(t["id"], t["reason"]) for t in store.trash_entries()] == [("light.txt", "deleted")]
        assert store.trashed_document(store.trash_entries()[0]["entry"]).text == LIGHT
    finally:
        store.close()


def test_a_folder_document_deleted_through_the_api_can_be_uploaded_again_on_both_backends(backend, tmp_path,
                                                                                           tmp_corpus):
    """A document of the corpus folder, deleted with DELETE /documents/{id}, is uploaded again under its name. The
    FAISS backend moves its file to the trash; the Milvus backend leaves the folder alone, and the API's check for
    a file of that name in the corpus folder answered 409 "is already in the corpus folder but is not indexed (it
    could not be read)" there, for every later upload of the name."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    tmp_corpus({"kaz.txt": KAZ, "birds.txt": BIRDS}, name="corpus")
    s = settings_for(backend, tmp_path, reload_interval_s=0, allowed_hosts="testserver")
    p = LitePipeline(s)
    try:
        with TestClient(create_app(s, p, background_warm_up=False)) as c:
            assert c.delete("/documents/birds.txt").status_code == 200
            r = c.post("/documents", files=[("files", ("birds.txt", b"The heron came back in 2025."))])
            assert r.status_code == 201, r.text
            assert c.get("/documents/birds.txt").json()["text"] == "The heron came back in 2025."
            r = c.post("/documents", files=[("files", ("birds.txt", b"Again."))])  # now it is a document: 409
            assert r.status_code == 409 and "already exists; replace it with PUT" in r.json()["message"]
            assert c.post("/documents", files=[("files", ("light.txt", LIGHT.encode()))]).status_code == 201
            r = c.get("/documents/light.txt", params={"original": "true"})
            if backend == "faiss":
                assert r.status_code == 200 and r.content == LIGHT.encode()
            else:  # an upload is kept as text only; the 404 used to say the file was removed from the folder
                assert r.status_code == 404 and "keeps an upload as its text only" in r.json()["message"], r.text
    finally:
        if backend == "milvus":
            p.store.close()


def test_trash_and_restore_on_both_backends(backend, tmp_path, tmp_corpus, monkeypatch):
    """Delete and replace keep the old version in the trash (the Milvus backend keeps it in Milvus, so
    every replica shares it); restore brings back the exact text and sha256, retrievable again; a
    restore over a taken name is refused; old entries are purged after trash_keep_days."""
    import qa.writes
    from qa.validation import DocumentError

    tmp_corpus({"kaz.txt": KAZ, "birds.txt": BIRDS}, name="corpus")
    s = settings_for(backend, tmp_path, retrieval_mode="hybrid", reload_interval_s=0, trash_keep_days=1)
    p = LitePipeline(s).warm_up()
    try:
        p.add_documents([("light.txt", LIGHT.encode())])
        sha = {d.id: d.sha256 for d in p.documents()}["light.txt"]
        p.remove_document("light.txt")
        with pytest.raises(KeyError):
            p.remove_document("light.txt")
        assert [(t.id, t.sha256, t.size, t.reason) for t in p.trash()] == [("light.txt", sha, len(LIGHT), "deleted")]
        with pytest.raises(KeyError):
            p.document_text("light.txt")

        restored = p.restore_document("light.txt")
        assert restored.id == "light.txt" and p.trash() == []
        assert p.document_text("light.txt") == LIGHT
        assert {d.id: d.sha256 for d in p.documents()}["light.txt"] == sha
        result = p.ask("How many ospreys did the lighthouse keeper count in 1987?")
        assert result.answer_found and result.answers[0].top.document == "light.txt"
        for a in result.answers:
            for c in a.citations:
                assert p.document_text(c.document)[c.start:c.end] == c.text
        with pytest.raises(KeyError):
            p.restore_document("light.txt")  # nothing left in the trash

        # a replace keeps the old version; restoring it over the new one is refused
        new = "The lighthouse keeper of Varn island counted 300 ospreys in 1990."
        assert p.replace_document("light.txt", new.encode(), sha)
        assert [(t.id, t.sha256, t.reason) for t in p.trash()] == [("light.txt", sha, "replaced")]
        with pytest.raises(DocumentError) as e:
            p.restore_document("light.txt")
        assert e.value.status == 409 and p.document_text("light.txt") == new
        # the same advice on both backends (Milvus's said "or restore under another name": no such option)
        assert str(e.value) == ("a document named 'light.txt' exists; delete it (it goes to the trash too) "
                                "before restoring the older one")
        p.remove_document("light.txt")
        assert [t.reason for t in p.trash()] == ["deleted", "replaced"]  # newest first
        older = p.trash()[1].entry
        p.restore_document("light.txt", entry=older)
        assert p.document_text("light.txt") == LIGHT and [t.reason for t in p.trash()] == ["deleted"]

        # entries older than trash_keep_days go at a delete (here the one that made it); newer ones stay
        monkeypatch.setattr(qa.writes, "_now", lambda: "2020-01-01T00:00:00+00:00")
        p.remove_document("birds.txt")
        monkeypatch.undo()
        assert [t.id for t in p.trash()] == ["light.txt"]
        p.remove_document("kaz.txt")
        assert sorted(t.id for t in p.trash()) == ["kaz.txt", "light.txt"]
    finally:
        close = getattr(p.store, "close", None)
        if backend == "milvus" and close is not None:
            close()


# --------------------------------------------------------------------------- two replicas writing one document


def second_writer(store):
    """Another replica's view of the same Milvus collections (one client, its own write lock)."""
    import copy
    import threading

    other = copy.copy(store)
    other._write_lock = threading.Lock()
    return other


def replica_writers(tmp_path):
    """A Milvus Lite store holding a.txt (KAZ), another replica's view of it, and a StoreWriter on each."""
    from qa.store.writes import StoreWriter

    s = settings_for("milvus", tmp_path)
    store = open_store(s, EMB.model_id, EMB.dimension, CHUNKER.params)
    other = second_writer(store)
    write(store, doc("a.txt", KAZ))
    return store, other, StoreWriter(s, store, EMB, CHUNKER), StoreWriter(s, other, EMB, CHUNKER)


def interleave(monkeypatch, store, method: str, collection: str, action) -> None:
    """Run ``action`` (another replica's whole write) once, just before ``store``'s next ``method`` call
    (``upsert``/``insert``) on ``collection``: what Milvus, which serialises nothing, lets two replicas do."""
    real = getattr(store.client, method)
    fired = []

    def call(coll, *a, **kw):
        if coll == collection and not fired:
            fired.append(1)
            action()
        return real(coll, *a, **kw)

    monkeypatch.setattr(store.client, method, call)


def test_two_replicas_replacing_one_document_leave_one_readable_version(tmp_path, monkeypatch):
    """A concurrency audit (2026-12-07): each write deleted every revision but its own, so a replica finishing
    its write while another was between writing its parts and switching the row deleted the other's parts,
    and the document stayed listed but unreadable (500 on GET, PUT and DELETE)."""
    store = open_store(settings_for("milvus", tmp_path), EMB.model_id, EMB.dimension, CHUNKER.params)
    try:
        other = second_writer(store)
        v0, v1, v2 = KAZ, "Version one. " + LIGHT, "Version two. " + BIRDS
        write(store, doc("a.txt", v0))
        # the other replica writes all of v2 after this one wrote v1's text parts, before its chunks and switch
        interleave(monkeypatch, store, "upsert", store.c_chunks, lambda: write(other, doc("a.txt", v2)))
        write(store, doc("a.txt", v1))  # switches last: its version is the one served
        assert store.document_text("a.txt") == v1
        text, sha, _ = store.document_view("a.txt")
        assert text == v1 and sha == doc("a.txt", v1).sha256
        assert store.count_documents() == 1
        assert store.count_chunks() == len(CHUNKER.chunk(doc("a.txt", v1)))  # nothing of v0 or v2 left behind
        assert_exact(store, store.keyword_search("version heron osprey protests", 10))
    finally:
        store.close()


def test_an_upload_racing_another_replicas_upload_of_the_name_is_refused(tmp_path, monkeypatch):
    """Both replicas checked that the name was free, both wrote it: two 201s and one version lost. The
    store checks again just before its write goes live."""
    from qa.store.protocol import DocumentExistsError

    store = open_store(settings_for("milvus", tmp_path), EMB.model_id, EMB.dimension, CHUNKER.params)
    try:
        other = second_writer(store)
        # the other replica's upload of the name goes live just as this one starts writing
        interleave(monkeypatch, store, "upsert", store.c_chunks, lambda: write(other, doc("a.txt", BIRDS)))
        d = doc("a.txt", BIRDS + " (mine)")
        chunks = CHUNKER.chunk(d)
        with pytest.raises(DocumentExistsError):
            store.write_document(d, chunks, EMB.embed_documents([c.text for c in chunks]), expect_absent=True)
        monkeypatch.undo()
        assert store.document_text("a.txt") == BIRDS  # the other replica's upload, whole
        assert store.count_chunks() == len(CHUNKER.chunk(doc("a.txt", BIRDS)))
        assert_exact(store, store.keyword_search("heron otters", 10))
    finally:
        store.close()


def test_replicas_racing_deletes_and_replaces_lose_nothing_and_trash_once(tmp_path, monkeypatch):
    """Two deletes of one document through two replicas made two trash entries (and one answered 404 after
    writing to the trash); a replace that lost a race to another replica's replace was in neither the store
    nor the trash."""
    store, other, w1, w2 = replica_writers(tmp_path)
    try:

        real_trash = store.trash_document
        monkeypatch.setattr(store, "trash_document", lambda *a, **kw: (real_trash(*a, **kw), w2.delete("a.txt"))[0])
        with pytest.raises(KeyError):
            w1.delete("a.txt")  # the other replica deleted it in between: 404
        monkeypatch.undo()
        assert [(t.id, t.reason) for t in w1.trash()] == [("a.txt", "deleted")]  # one entry
        assert store.documents == {}

        write(store, doc("b.txt", LIGHT))
        v1, v2 = (LIGHT + " Version one.").encode(), (LIGHT + " Version two.").encode()
        real_write = store.write_document
        monkeypatch.setattr(store, "write_document", lambda *a, **kw: (
            real_write(*a, **kw), w2.replace("b.txt", v2, "*"))[0])  # the other replace goes live after this one
        w1.replace("b.txt", v1, "*")
        monkeypatch.undo()
        assert store.document_text("b.txt") == v2.decode()
        trashed = {(t.sha256, t.reason) for t in w1.trash() if t.id == "b.txt"}
        assert (hashlib.sha256(v1).hexdigest(), "replaced") in trashed  # version one: not lost
        assert (doc("b.txt", LIGHT).sha256, "replaced") in trashed
        assert len([t for t in w1.trash() if t.id == "b.txt"]) == 2  # each version once
    finally:
        store.close()


def test_a_delete_that_finds_the_document_gone_is_a_404_and_trashes_nothing(tmp_path, monkeypatch):
    """Both replicas' deletes found the document and both answered 200 with two trash entries: a Milvus server
    answers a delete that matched nothing with {"delete_count": 0, ...}, which the check read as true."""
    from qa.store.milvus_store import _deleted
    from qa.store.writes import StoreWriter

    assert _deleted({"delete_count": 0, "cost": 0}) == 0 and _deleted({"delete_count": 2}) == 2
    assert _deleted(["a.txt"]) == 1 and _deleted([]) == 0 and _deleted({}) == 0
    s = settings_for("milvus", tmp_path)
    store = open_store(s, EMB.model_id, EMB.dimension, CHUNKER.params)
    try:
        w1, w2 = StoreWriter(s, store, EMB, CHUNKER), StoreWriter(s, second_writer(store), EMB, CHUNKER)
        write(store, doc("a.txt", KAZ))
        # the other replica's whole delete runs after this one found the document, before it deletes the row
        interleave(monkeypatch, store, "delete", store.c_docs, lambda: w2.delete("a.txt"))
        with pytest.raises(KeyError):
            w1.delete("a.txt")
        monkeypatch.undo()
        assert [(t.id, t.reason) for t in w1.trash()] == [("a.txt", "deleted")]
    finally:
        store.close()


def test_the_upload_that_goes_live_first_of_two_is_told_409(tmp_path, monkeypatch):
    """Two replicas' uploads of one name that both passed the last check: the one whose switch is overwritten
    by the other's a moment later answered 201 and its version was gone. It checks the row once more."""
    from qa.store.protocol import DocumentExistsError

    store = open_store(settings_for("milvus", tmp_path), EMB.model_id, EMB.dimension, CHUNKER.params)
    try:
        other = second_writer(store)
        # the other upload passed its last check before this one went live, and goes live right after it
        interleave(monkeypatch, store, "upsert", store.c_meta, lambda: write(other, doc("a.txt", BIRDS)))
        mine = doc("a.txt", LIGHT)
        chunks = CHUNKER.chunk(mine)
        with pytest.raises(DocumentExistsError):
            store.write_document(mine, chunks, EMB.embed_documents([c.text for c in chunks]), expect_absent=True)
        monkeypatch.undo()
        assert store.document_text("a.txt") == BIRDS
        parts = store.client.query(store.c_texts, filter='document == "a.txt"', output_fields=["rev"], limit=100)
        assert len({p["rev"] for p in parts}) == 1  # this upload's text parts are gone again
    finally:
        store.close()


def test_an_upload_refused_late_takes_nothing_of_the_winners_chunks(tmp_path, monkeypatch):
    """A chunk's row key was its stable id (document, ordinal, text), the same in two versions that share a
    chunk: an upload refused after writing its chunks (another replica's upload of the name went live in
    between) took back its rows by revision, and with them the winner's identical chunks, which were out of
    search until the document's next write. Each revision now has its own rows."""
    from qa.store.protocol import DocumentExistsError

    store = open_store(settings_for("milvus", tmp_path), EMB.model_id, EMB.dimension, CHUNKER.params)
    try:
        other = second_writer(store)
        theirs, mine = doc("a.txt", KAZ), doc("a.txt", KAZ + " Mine adds this sentence about herons.")
        assert len(CHUNKER.chunk(theirs)) > 2
        # the other replica's upload goes live just before this one writes its chunks (same text but the end)
        interleave(monkeypatch, store, "upsert", store.c_chunks, lambda: write(other, theirs))
        chunks = CHUNKER.chunk(mine)
        with pytest.raises(DocumentExistsError):
            store.write_document(mine, chunks, EMB.embed_documents([c.text for c in chunks]), expect_absent=True)
        monkeypatch.undo()
        assert store.document_text("a.txt") == KAZ
        want = {c.id for c in with_ids("a.txt", CHUNKER.chunk(theirs))}
        found = {h.id for h in store.keyword_search("protests Kazakhstan Zhanaozen Almaty gas prices", 100)}
        assert found == want  # every chunk of the version served, and nothing of the refused one
        assert store.count_chunks() == len(want)
    finally:
        store.close()


def test_a_version_overwritten_unseen_goes_to_the_trash_and_leaves_no_chunks(tmp_path, monkeypatch):
    """Another replica's replace went live between this write's last read of the row and its switch: this
    write overwrote it without knowing, so that version (acknowledged to its client) was in neither the
    store nor the trash, and its chunks stayed searchable until the document's next write ten minutes later."""
    store = open_store(settings_for("milvus", tmp_path), EMB.model_id, EMB.dimension, CHUNKER.params)
    try:
        other = second_writer(store)
        v0, v1, v2 = doc("a.txt", KAZ), doc("a.txt", "Version one. " + LIGHT), doc("a.txt", "Version two. " + BIRDS)
        write(store, v0)
        interleave(monkeypatch, store, "upsert", store.c_docs, lambda: write(other, v2))
        write(store, v1)  # switches last: served
        monkeypatch.undo()
        assert store.document_text("a.txt") == v1.text
        assert store.count_chunks() == len(CHUNKER.chunk(v1))
        assert not store.keyword_search("heron otters estuary", 10)  # nothing of v2 left in search
        trashed = [t for t in store.trash_entries() if t["id"] == "a.txt"]
        assert [(t["sha256"], t["reason"]) for t in trashed] == [(v2.sha256, "replaced")]
        assert store.trashed_document(trashed[0]["entry"]).text == v2.text
        revs = {p["rev"] for p in store.client.query(store.c_texts, filter='document == "a.txt"',
                                                     output_fields=["rev"], limit=100)}
        assert len(revs) == 1  # v0 (replaced knowingly: the caller trashes it) and v2 both gone
    finally:
        store.close()


def upload_paused_at_switch(store, other, d: Document):
    """Start ``other``'s upload of ``d`` in a thread and return once it has passed its last check and waits just
    before its switch: (the thread, the event that lets it go on, the errors it raised)."""
    import threading

    at_switch, go_on = threading.Event(), threading.Event()
    real_upsert = store.client.upsert

    class Paused:  # the other replica's client: stops just before its switch until told to go on
        def __getattr__(self, name):
            return getattr(store.client, name)

        def upsert(self, coll, *a, **kw):
            if coll == store.c_docs and not at_switch.is_set():
                at_switch.set()
                assert go_on.wait(60)
            return real_upsert(coll, *a, **kw)

    other.client = Paused()
    errors: list[BaseException] = []

    def upload() -> None:
        try:
            c = CHUNKER.chunk(d)
            other.write_document(d, c, EMB.embed_documents([x.text for x in c]), expect_absent=True)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    t = threading.Thread(target=upload)
    t.start()
    assert at_switch.wait(60)
    return t, go_on, errors


def test_two_uploads_both_acknowledged_lose_neither(tmp_path):
    """Two replicas' uploads of one name, the second going live after the first had checked and answered
    201: both answered 201 and the first version was gone. The second finds it and puts it in the trash."""
    store = open_store(settings_for("milvus", tmp_path), EMB.model_id, EMB.dimension, CHUNKER.params)
    try:
        other = second_writer(store)
        first, second = doc("a.txt", LIGHT), doc("a.txt", BIRDS)
        t, go_on, errors = upload_paused_at_switch(store, other, second)  # it passed its last check: name free
        c = CHUNKER.chunk(first)
        store.write_document(first, c, EMB.embed_documents([x.text for x in c]), expect_absent=True)  # 201
        go_on.set()
        t.join(60)
        assert not errors
        assert store.document_text("a.txt") == second.text  # the later switch is served ...
        trashed = [t for t in store.trash_entries() if t["id"] == "a.txt"]
        assert [(t["sha256"], t["reason"]) for t in trashed] == [(first.sha256, "replaced")]  # ... the other kept
        assert store.count_chunks() == len(CHUNKER.chunk(second))
    finally:
        store.close()


def test_a_search_during_a_replace_reports_a_shared_chunk_once(tmp_path, monkeypatch):
    """While a write replaces a document, the chunks both versions hold have a row per revision: a search
    then finds both rows and reports the chunk once, under its stable id."""
    store = open_store(settings_for("milvus", tmp_path), EMB.model_id, EMB.dimension, CHUNKER.params)
    try:
        v0, v1 = doc("a.txt", KAZ), doc("a.txt", KAZ + " A closing sentence about herons.")
        write(store, v0)
        seen: list[list[Hit]] = []
        q = "protests Kazakhstan Zhanaozen Almaty gas prices"
        interleave(monkeypatch, store, "upsert", store.c_docs,  # both revisions' chunks are in, v0 still served
                   lambda: seen.extend([store.keyword_search(q, 50), store.dense_search(EMB.embed_query(q), 50)]))
        write(store, v1)
        assert store.count_chunks() == len(CHUNKER.chunk(v1))
        stable = {c.id for v in (v0, v1) for c in with_ids("a.txt", CHUNKER.chunk(v))}
        for hits in seen:
            ids = [h.id for h in hits]
            assert len(ids) == len(set(ids)) and set(ids) <= stable and len(ids) >= len(CHUNKER.chunk(v0))
    finally:
        store.close()


def test_a_delete_racing_a_replace_keeps_the_version_it_deletes(tmp_path, monkeypatch):
    """A delete copies the served version to the trash, then deletes the document: another replica's replace
    that went live in between (acknowledged with 200) was deleted without being in the trash."""
    from qa.store.writes import StoreWriter

    s = settings_for("milvus", tmp_path)
    store = open_store(s, EMB.model_id, EMB.dimension, CHUNKER.params)
    try:
        w1, w2 = StoreWriter(s, store, EMB, CHUNKER), StoreWriter(s, second_writer(store), EMB, CHUNKER)
        write(store, doc("a.txt", KAZ))
        v1 = (LIGHT + " Version one.").encode()
        real_trash = store.trash_document
        monkeypatch.setattr(store, "trash_document", lambda *a, **kw: (
            real_trash(*a, **kw), monkeypatch.undo(), w2.replace("a.txt", v1, "*"))[0])
        w1.delete("a.txt")
        assert store.documents == {}
        trashed = {t.sha256 for t in w1.trash() if t.id == "a.txt"}
        assert hashlib.sha256(v1).hexdigest() in trashed  # the version deleted is kept
        assert doc("a.txt", KAZ).sha256 in trashed
        assert store.count_chunks() == 0
    finally:
        store.close()


def test_a_delete_of_one_version_leaves_another(make_store):
    from qa.store.protocol import DocumentChangedError

    store = make_store()
    write(store, doc("a.txt", BIRDS))
    with pytest.raises(DocumentChangedError):
        store.delete_document("a.txt", if_sha256=doc("a.txt", LIGHT).sha256)
    assert store.document_text("a.txt") == BIRDS and store.count_chunks() == len(CHUNKER.chunk(doc("a.txt", BIRDS)))
    store.delete_document("a.txt", if_sha256=doc("a.txt", BIRDS).sha256)
    assert store.documents == {} and store.count_chunks() == 0
    with pytest.raises(KeyError):
        store.delete_document("a.txt")


def test_a_local_milvus_store_logs_no_tracebacks_of_calls_lite_does_not_implement(tmp_path, caplog):
    """`QA_STORE=milvus qa index` printed six `ERROR grpc._server ... NotImplementedError` tracebacks on success:
    calls of pymilvus that Milvus Lite's in-process server does not implement (and pymilvus does without)."""
    import logging

    caplog.set_level(logging.INFO)
    store = open_store(settings_for("milvus", tmp_path), EMB.model_id, EMB.dimension, CHUNKER.params)
    try:
        write(store, doc("a.txt", BIRDS))
        assert store.keyword_search("heron", 5)
    finally:
        store.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    logging.getLogger("grpc._server").error("a real failure", exc_info=RuntimeError("kept"))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == ["a real failure"]


def test_a_replace_keeps_the_version_that_went_live_after_its_trash_copy(tmp_path, monkeypatch):
    """Audit 2026-12-08: a replace copies the served version to the trash, then writes; another replica's
    replace that went live (and answered 200) in between was the revision this write read and replaced
    "knowingly", so it was deleted unkept: two 200s, one version in neither the store nor the trash."""
    store, other, w1, w2 = replica_writers(tmp_path)
    try:
        v1, v2 = (LIGHT + " Version one.").encode(), (LIGHT + " Version two.").encode()
        # this replica's whole replace runs after the other copied v0 to the trash, before it writes its chunks
        interleave(monkeypatch, other, "upsert", store.c_chunks, lambda: w1.replace("a.txt", v1, "*"))
        w2.replace("a.txt", v2, "*")
        monkeypatch.undo()
        assert store.document_text("a.txt") == v2.decode()
        trashed = [t.sha256 for t in w1.trash() if t.id == "a.txt"]
        assert hashlib.sha256(v1).hexdigest() in trashed  # version one, acknowledged: not lost
        assert doc("a.txt", KAZ).sha256 in trashed
        assert store.count_chunks() == len(CHUNKER.chunk(doc("a.txt", v2.decode())))
    finally:
        store.close()


def test_a_delete_takes_nothing_of_a_write_that_goes_live_after_it(tmp_path, monkeypatch):
    """Audit 2026-12-08: a delete removed the document row, then every chunk and text part of the document by
    its id: another replica's upload of the name that went live in between (201) lost its text and chunks
    (listed but unreadable, 500 on GET)."""
    store = open_store(settings_for("milvus", tmp_path), EMB.model_id, EMB.dimension, CHUNKER.params)
    try:
        other = second_writer(store)
        write(store, doc("a.txt", KAZ))
        new = doc("a.txt", BIRDS)

        def upload():
            c = CHUNKER.chunk(new)
            other.write_document(new, c, EMB.embed_documents([x.text for x in c]), expect_absent=True)

        # the row is gone; the other replica's upload of the name goes live before this delete's clean-up
        interleave(monkeypatch, store, "delete", store.c_chunks, upload)
        store.delete_document("a.txt")
        monkeypatch.undo()
        assert store.document_text("a.txt") == BIRDS
        assert store.count_chunks() == len(CHUNKER.chunk(new))
        assert_exact(store, store.keyword_search("heron otters estuary", 10))
    finally:
        store.close()


def test_a_trash_copy_pairs_the_text_with_its_own_sha256(tmp_path, monkeypatch):
    """Audit 2026-12-08: trash_document read the document row, then the text (of whatever revision was current
    by then): a replace in between gave an entry with one version's sha256 and size and the other's text."""
    store = open_store(settings_for("milvus", tmp_path), EMB.model_id, EMB.dimension, CHUNKER.params)
    try:
        other = second_writer(store)
        write(store, doc("a.txt", KAZ))
        real = store.document_text
        monkeypatch.setattr(store, "document_text", lambda d: (write(other, doc("a.txt", BIRDS)), real(d))[1])
        store.trash_document("a.txt", "e1", "deleted", "2026-12-08T00:00:00+00:00")
        monkeypatch.undo()
        kept = store.trashed_document("e1")
        assert kept.sha256 == doc("a.txt", kept.text).sha256 and kept.size == len(kept.text.encode())
    finally:
        store.close()


def test_a_restore_overwritten_by_an_upload_keeps_its_version(tmp_path, monkeypatch):
    """Audit 2026-12-08: another replica's upload of the name overwrote a restore that had gone live (200) and
    left the restored version alone in the trash ("the trash holds it already": the entry being restored),
    and then the restore dropped that entry: the restored version was in neither the store nor the trash."""
    from qa.store.writes import StoreWriter

    s = settings_for("milvus", tmp_path)
    store = open_store(s, EMB.model_id, EMB.dimension, CHUNKER.params)
    try:
        other = second_writer(store)
        w1 = StoreWriter(s, store, EMB, CHUNKER)
        write(store, doc("a.txt", KAZ))
        w1.delete("a.txt")
        upload = doc("a.txt", BIRDS)
        t, go_on, errors = upload_paused_at_switch(store, other, upload)  # it passed its last check: name free
        real_drop = store.drop_trash_entry

        def drop(entry):  # the upload goes live (and cleans up) after the restore's write, before it drops the entry
            go_on.set()
            t.join(60)
            real_drop(entry)

        monkeypatch.setattr(store, "drop_trash_entry", drop)
        w1.restore("a.txt")  # 200
        monkeypatch.undo()
        assert not errors  # 201
        assert store.document_text("a.txt") == BIRDS  # the later switch is served ...
        assert doc("a.txt", KAZ).sha256 in [t.sha256 for t in w1.trash() if t.id == "a.txt"]  # ... the restore kept
        assert store.count_chunks() == len(CHUNKER.chunk(upload))
    finally:
        store.close()


def test_a_cached_answer_is_not_served_after_a_write_whose_writer_crashed_before_its_bump(tmp_path, tmp_corpus,
                                                                                           monkeypatch):
    """Answers are cached by the store's generation, which a Milvus write moves right after going live: a replica
    killed between the two left the new version served under the old generation, and the other replicas went on
    serving cached answers of the old version, whose citations no longer sliced the served text (audit
    2026-12-08). A cached answer from a live store is checked against the cited documents' versions."""
    tmp_corpus({"light.txt": LIGHT, "birds.txt": BIRDS}, name="corpus")
    s = settings_for("milvus", tmp_path, retrieval_mode="dense", reload_interval_s=0)
    p = LitePipeline(s).warm_up()
    try:
        q = "How many ospreys did the lighthouse keeper count in 1987?"
        first = p.ask(q)
        assert first.answer_found and first.answers[0].top.document == "light.txt"
        assert p.ask(q).timing_ms.get("cache_hit") == 1.0
        # another replica's replace goes live and its process dies before the generation moves
        other = second_writer(p.store)
        monkeypatch.setattr(other, "_bump", lambda: other.generation)
        write(other, doc("light.txt", "Since the storm, " + LIGHT.replace("212", "two hundred and twelve")))
        monkeypatch.undo()
        again = p.ask(q)
        assert again.timing_ms.get("cache_hit") is None  # read afresh
        for a in again.answers:
            for c in a.citations:
                assert p.document_text(c.document)[c.start:c.end] == c.text
        assert p.ask(q).timing_ms.get("cache_hit") == 1.0  # and cached again
    finally:
        p.store.close()
