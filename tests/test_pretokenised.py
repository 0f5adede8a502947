"""Pre-tokenised passages (#15): windows from tokens stored at index time are exactly the tokenizer's, the
reader's spans, scores and citations are the same either way, and an index without the tokens still works."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from qa.config import PROJECT_ROOT, Settings, default_embedding_model
from qa.reader import pretokenised as pt
from qa.reader.decode import decode, decode_shared, encode_windows
from qa.reader.reader import ExtractiveReader
from qa.types import Chunk, Passage

SHIPPED = PROJECT_ROOT / "models" / "reader"


@pytest.fixture(scope="module")
def reader_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(SHIPPED))


@pytest.fixture(scope="module")
def minilm_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_embedding_model())


def _assert_same(ref, got):
    assert [list(x) for x in ref.encoding["input_ids"]] == got.encoding["input_ids"]
    assert [list(x) for x in ref.encoding["token_type_ids"]] == got.encoding["token_type_ids"]
    assert list(ref.context_of) == got.context_of
    assert ref.offsets == got.offsets
    assert ref.word_spans == got.word_spans
    assert pt.same_windows(ref, got)


# Text that stresses tokenisation and offsets: accents (composed and combining), CJK, emoji (non-BMP, ZWJ),
# zero-width and BOM characters, ligatures, RTL, case-folding traps, long words, whitespace runs.
_pieces = st.sampled_from(list("abc XYZ019.,!?;:'\"-()\n\t") + [
    "é", "e\u0301", "日本語", "😀", "👩‍👩‍👧", "\u200b", "ß", "İ", "ﬁ", "עברית", "  ", "\n\n", "\ufeff", "naïve",
    "Straße", "Ωμέγα", "Кириллица", "１２３", "a" * 120, "unbelievably", "tenge", "2,022.5", "—", "…", "\u00a0",
    " the ", " of ", " Kazakhstan ", "don't", "U.S.A.",
])
_texts = st.lists(_pieces, min_size=0, max_size=400).map("".join)
_questions = st.lists(_pieces, min_size=1, max_size=120).map("".join).filter(lambda q: q.strip())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(question=_questions, contexts=st.lists(_texts, min_size=1, max_size=5),
       shape=st.sampled_from([(256, 96), (128, 32), (64, 16), (384, 128)]))
def test_stored_tokens_give_the_tokenizers_windows(reader_tokenizer, minilm_tokenizer, question, contexts, shape):
    """Property: over generated Unicode documents and questions (long ones cut to 64 tokens, contexts that
    overflow into several windows), the windows built from stored tokens equal ``encode_windows``'s: ids,
    token types, window order, offsets and word spans; for the shipped reader's tokenizer and MiniLM's."""
    max_length, stride = shape
    for tok in (reader_tokenizer, minilm_tokenizer):
        tokens = pt.tokenise_contexts(tok, contexts)
        try:
            ref = encode_windows(tok, question, contexts, max_length, stride)
        except Exception as e:  # the tokenizer refuses (question leaves no room beside the stride): so must we
            with pytest.raises(type(e)):
                pt.encode_windows_pretokenised(tok, question, contexts, tokens, max_length, stride)
            continue
        _assert_same(ref, pt.encode_windows_pretokenised(tok, question, contexts, tokens, max_length, stride))
        # a mix of stored and missing entries (those are tokenised at query time) gives the same windows
        mixed = [t if i % 2 else None for i, t in enumerate(tokens)]
        _assert_same(ref, pt.encode_windows_pretokenised(tok, question, contexts, mixed, max_length, stride))


def test_seed_chunks_give_the_same_windows_and_spans(seed_index, reader_tokenizer):
    """The seeds' chunks, as indexed: the stored tokens are the tokenizer's, the windows are the same, and the
    decoded spans and scores (random logits: every token gets a score) are identical."""
    chunks = seed_index.chunks
    stored = seed_index.reader_tokens(chunks, pt.tokenizer_fingerprint(reader_tokenizer))
    assert stored is not None and all(t is not None for t in stored)
    fresh = pt.tokenise_contexts(reader_tokenizer, [c.text for c in chunks])
    for a, b in zip(stored, fresh):
        assert a.ids.tolist() == b.ids.tolist() and a.offsets.tolist() == b.offsets.tolist()
        assert a.word_ids.tolist() == b.word_ids.tolist()
    rng = np.random.default_rng(0)
    questions = ["What did gas for cars cost after the price increase?", "Who was appointed prime minister?",
                 "When did the protests begin in Kazakhstan and what happened in Almaty? " * 4]
    for q in questions:
        for i in range(0, len(chunks), 5):
            texts = [c.text for c in chunks[i : i + 5]]
            ref = encode_windows(reader_tokenizer, q, texts, 256, 96)
            got = pt.encode_windows_pretokenised(reader_tokenizer, q, texts, stored[i : i + 5], 256, 96)
            _assert_same(ref, got)
            width = max(len(x) for x in ref.encoding["input_ids"])
            S = rng.normal(0, 3, (len(ref.context_of), width)).astype(np.float32)
            E = rng.normal(0, 3, (len(ref.context_of), width)).astype(np.float32)
            assert decode(S, E, ref, 30, 20, 3.0) == decode(S, E, got, 30, 20, 3.0)
            assert decode_shared(S, E, ref, 30, 20, 3.0) == decode_shared(S, E, got, 30, 20, 3.0)


@pytest.fixture(scope="module")
def shipped_fp32() -> ExtractiveReader:
    r = ExtractiveReader(SHIPPED, precision="fp32")
    r.warm_up()
    return r


def test_reader_answers_the_same_with_stored_tokens_and_citations_slice(seed_index, shipped_fp32):
    """The served reader over seed passages: same answers, scores, offsets and null probability with the stored
    tokens as without; every citation slices the document exactly."""
    reader = shipped_fp32
    assert reader.pretokenised and reader.tokenizer_fingerprint
    chunks = seed_index.chunks
    calls = []

    def stored(cs, fingerprint):
        calls.append(fingerprint)
        return seed_index.reader_tokens(cs, fingerprint)

    for q, pick in [("What did gas for cars cost after the price increase?", range(0, 5)),
                    ("Who resigned and why?", range(3, 12, 2)),
                    ("Which city saw the largest protests?", range(len(chunks) - 5, len(chunks)))]:
        passages = [Passage(chunks[i], 1.0 / (r + 1), r + 1) for r, i in enumerate(pick)]
        a = reader.run(q, passages, seed_index.document_text)
        b = reader.run(q, passages, seed_index.document_text, stored_tokens=stored)
        assert a.answers == b.answers and a.best_guess == b.best_guess
        assert a.no_answer_score == b.no_answer_score and a.windows == b.windows
        assert a.extra["features"] == b.extra["features"]
        for ans in (b.answers or [b.best_guess]):
            for c in ans.citations:
                assert seed_index.document_text(c.document)[c.start : c.end] == c.text
    assert calls == [reader.tokenizer_fingerprint] * 3


def test_pretokenised_off_tokenises_at_query_time(seed_index):
    reader = ExtractiveReader(SHIPPED, pretokenised=False)
    reader.warm_up()
    assert not reader.pretokenised
    called = []
    p = [Passage(seed_index.chunks[0], 1.0, 1)]
    reader.run("What happened?", p, seed_index.document_text, stored_tokens=lambda *a: called.append(a))
    assert called == []
    assert ExtractiveReader.from_settings(Settings(reader_pretokenised=False)).pretokenised is False


def test_save_load_roundtrip_and_damage(tmp_path, reader_tokenizer):
    texts = ["Hello world, naïve café.", "", "日本語 text 😀 " * 50]
    tokens = pt.tokenise_contexts(reader_tokenizer, texts)
    assert len(tokens[1]) == 0
    pt.save(tmp_path, "abc", tokens)
    fingerprint, back = pt.load(tmp_path, 3)
    assert fingerprint == "abc"
    for a, b in zip(tokens, back):
        assert a.ids.tolist() == b.ids.tolist() and a.offsets.tolist() == b.offsets.tolist()
        assert a.word_ids.tolist() == b.word_ids.tolist()
    with pytest.raises(ValueError):
        pt.load(tmp_path, 4)  # another chunk count
    assert pt.load(tmp_path / "none", 3) is None


# -- with the index ---------------------------------------------------------------------------------------
DOCS = {
    "alpha.txt": "The alpha document talks about volcanoes. Mount Etna erupted in 2021.\n\nLava flows reached the sea.",
    "beta.md": "# Beta\n\nBeta covers the history of tea. Tea came to England in the 17th century. Ünïcödé tëxt 日本.",
}


@pytest.fixture
def small_chunker(tokenizer):
    from qa.chunking import Chunker

    return Chunker(tokenizer=tokenizer, chunk_tokens=32, chunk_overlap=8)


def _version(settings) -> Path:
    return settings.index_dir / (settings.index_dir / "CURRENT").read_text().strip()


def _fresh(store, reader_tokenizer):
    return pt.tokenise_contexts(reader_tokenizer, [c.text for c in store.chunks])


def test_index_stores_reader_tokens_and_reuses_only_unchanged_chunks(tmp_corpus, tmp_path, embedder, small_chunker,
                                                                     reader_tokenizer):
    from qa.index_store import IndexStore, build_or_update

    settings = Settings(index_dir=tmp_path / "index", corpus_dir=tmp_path / "unused")
    root = tmp_corpus(DOCS)
    store = build_or_update(root, settings, embedder, small_chunker)
    fp = pt.tokenizer_fingerprint(reader_tokenizer)
    version = _version(settings)
    assert (version / pt.TOKENS_FILE).is_file()
    assert json.loads((version / "manifest.json").read_text())["reader_tokens"]["tokenizer"] == fp
    loaded = IndexStore.load(settings.index_dir)
    for s in (store, loaded):
        got = s.reader_tokens(s.chunks, fp)
        assert [t.ids.tolist() for t in got] == [t.ids.tolist() for t in _fresh(s, reader_tokenizer)]
    assert loaded.reader_tokens(loaded.chunks, "another tokenizer") is None
    # a document changed in place (same length, same chunk offsets): its tokens are recomputed, not reused
    (root / "alpha.txt").write_text(DOCS["alpha.txt"].replace("volcanoes", "VOLCANOES").replace("Etna", "Fuji"))
    store2 = build_or_update(root, settings, embedder, small_chunker, previous=loaded)
    for s in (store2, IndexStore.load(settings.index_dir)):
        got = s.reader_tokens(s.chunks, fp)
        fresh = _fresh(s, reader_tokenizer)
        assert [t.ids.tolist() for t in got] == [t.ids.tolist() for t in fresh]
        assert [t.offsets.tolist() for t in got] == [t.offsets.tolist() for t in fresh]


def test_index_without_reader_tokens_still_answers_the_same(tmp_corpus, tmp_path, embedder, small_chunker, caplog):
    """Backward compatible: an index written before the tokens (file and manifest entry removed), or with a
    damaged file, loads and answers exactly as with them (the reader tokenises at query time)."""
    from qa.index_store import IndexStore, build_or_update
    from qa.pipeline import QAPipeline

    settings = Settings(index_dir=tmp_path / "index", corpus_dir=tmp_path / "unused", answer_cache_size=0)
    build_or_update(tmp_corpus(DOCS), settings, embedder, small_chunker)
    version = _version(settings)
    q = "When did Mount Etna erupt?"
    pipe = QAPipeline(settings).warm_up()
    assert pipe.store.reader_tokens(pipe.store.chunks, pipe.reader.tokenizer_fingerprint) is not None
    with_tokens = pipe.ask(q)

    manifest = json.loads((version / "manifest.json").read_text())
    manifest.pop("reader_tokens")
    (version / "manifest.json").write_text(json.dumps(manifest))
    (version / pt.TOKENS_FILE).unlink()
    old = IndexStore.load(settings.index_dir)
    assert old.reader_tokens(old.chunks, pipe.reader.tokenizer_fingerprint) is None
    pipe2 = QAPipeline(settings).warm_up()
    without = pipe2.ask(q)
    assert without.answers == with_tokens.answers and without.best_guess == with_tokens.best_guess
    assert without.no_answer_score == with_tokens.no_answer_score

    (version / pt.TOKENS_FILE).write_bytes(b"not a zip file")
    damaged = IndexStore.load(settings.index_dir)
    with caplog.at_level(logging.WARNING):
        assert damaged.reader_tokens(damaged.chunks, pipe.reader.tokenizer_fingerprint) is None
    assert "unreadable" in caplog.text
    for ans in with_tokens.answers:
        for c in ans.citations:
            assert pipe.store.document_text(c.document)[c.start : c.end] == c.text


def test_index_without_pretokenising(tmp_corpus, tmp_path, embedder, small_chunker):
    from qa.index_store import build_or_update

    settings = Settings(index_dir=tmp_path / "index", corpus_dir=tmp_path / "unused", reader_pretokenised=False)
    store = build_or_update(tmp_corpus(DOCS), settings, embedder, small_chunker)
    assert not (_version(settings) / pt.TOKENS_FILE).exists()
    assert store.reader_tokens(store.chunks, "x") is None
