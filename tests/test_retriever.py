"""DenseRetriever over the seed index."""

from __future__ import annotations

import pytest

from qa.retriever.dense import DenseRetriever

pytestmark = pytest.mark.slow

QUESTION = "When did the protests in Kazakhstan begin?"


def test_dense_ranking(seed_index, embedder):
    retriever = DenseRetriever(seed_index, embedder)
    passages = retriever.run(QUESTION, 5)
    assert len(passages) == 5
    assert [p.rank for p in passages] == [1, 2, 3, 4, 5]
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)
    for p in passages:
        assert p.scores == {"dense": p.score}
        assert -1.0 <= p.score <= 1.0 + 1e-5
        text = seed_index.document_text(p.chunk.document)
        assert text[p.chunk.start : p.chunk.end] == p.chunk.text
        assert open(seed_index.manifest["corpus_root"] + "/" + p.chunk.document, encoding="utf-8").read()[
            p.chunk.start : p.chunk.end
        ] == p.chunk.text
    assert "January 2" in passages[0].chunk.text


def test_k_larger_than_index_and_invalid_k(seed_index, embedder):
    retriever = DenseRetriever(seed_index, embedder)
    everything = retriever.run("Kazakhstan", 10_000)
    assert len(everything) == len(seed_index.chunks)
    assert len({(p.chunk.document, p.chunk.start) for p in everything}) == len(everything)
    with pytest.raises(ValueError):
        retriever.run(QUESTION, 0)


def test_make_retriever_dense(seed_index, embedder, seed_settings):
    from qa.retriever.hybrid import make_retriever

    r = make_retriever("dense", seed_index, embedder, seed_settings)
    assert isinstance(r, DenseRetriever)
    assert r.run(QUESTION, 1)[0].chunk == DenseRetriever(seed_index, embedder).run(QUESTION, 1)[0].chunk
