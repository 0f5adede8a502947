"""BM25 and hybrid (RRF) retrieval on a few synthetic chunks; the dense side is a fake."""

from __future__ import annotations

import pytest

from qa.config import Settings
from qa.retriever.bm25 import BM25Retriever
from qa.retriever.hybrid import HybridRetriever, candidate_count, make_retriever, reciprocal_rank_fusion
from qa.types import Chunk, Passage

TEXT = {
    "a.txt": "Protests in Kazakhstan began on January 2 over the price of liquefied gas.",
    "b.txt": "The CSTO sent peacekeepers to Kazakhstan at the request of the president.",
    "c.txt": "Karim Massimov, former head of the National Security Committee, was arrested for treason.",
    "d.txt": "Bread disappeared from the shops of Nur-Sultan as residents stocked up on food.",
}
CHUNKS = [Chunk(document=d, start=0, end=len(t), text=t) for d, t in TEXT.items()]


def test_bm25_ranks_matching_chunk_first_with_stemming():
    r = BM25Retriever(CHUNKS).warm_up()
    # "protested" only matches "Protests" after stemming; "began" is in one chunk only
    out = r.run("When was it that people protested and the unrest began?", k=3)
    assert out, "expected at least one hit"
    assert out[0].chunk.document == "a.txt"
    assert [p.rank for p in out] == list(range(1, len(out) + 1))
    assert all(set(p.scores) == {"bm25"} and p.scores["bm25"] == p.score > 0 for p in out)
    assert [p.score for p in out] == sorted((p.score for p in out), reverse=True)


def test_bm25_k_and_no_match():
    r = BM25Retriever(CHUNKS)
    assert len(r.run("Kazakhstan", k=1)) == 1
    assert {p.chunk.document for p in r.run("Kazakhstan", k=10)} == {"a.txt", "b.txt"}
    assert r.run("the of and", k=5) == []  # stop words only
    assert r.run("zebra xylophone", k=5) == []  # unknown words
    with pytest.raises(ValueError):
        r.run("Kazakhstan", k=0)


def test_bm25_empty_corpus_and_scores():
    assert BM25Retriever([]).run("anything", k=3) == []
    r = BM25Retriever(CHUNKS)
    scores = r.scores("Massimov treason")
    assert len(scores) == len(CHUNKS)
    assert max(range(len(scores)), key=scores.__getitem__) == 2
    assert r.run("Massimov treason", k=1)[0].chunk.document == "c.txt"


class FakeDense:
    """Ranks chunks in a fixed order, whatever the question."""

    def __init__(self, order: list[str]) -> None:
        self.order = order
        self.calls: list[int] = []
        self.warmed = False

    def warm_up(self):
        self.warmed = True

    def run(self, question: str, k: int = 5) -> list[Passage]:
        self.calls.append(k)
        by_doc = {c.document: c for c in CHUNKS}
        return [
            Passage(chunk=by_doc[d], score=1.0 - 0.1 * i, rank=i + 1, scores={"dense": 1.0 - 0.1 * i})
            for i, d in enumerate(self.order[:k])
        ]


def test_hybrid_fuses_both_rankings():
    dense = FakeDense(["d.txt", "c.txt", "b.txt", "a.txt"])
    h = HybridRetriever(dense, BM25Retriever(CHUNKS), rrf_k=60)
    h.warm_up()
    assert dense.warmed
    out = h.run("Who was arrested for treason?", k=2)
    assert dense.calls == [candidate_count(2)] == [20]
    # c.txt: dense rank 2 + bm25 rank 1 beats d.txt: dense rank 1 only
    assert [p.chunk.document for p in out] == ["c.txt", "d.txt"]
    top = out[0]
    assert set(top.scores) == {"dense", "bm25", "rrf"}
    assert top.score == pytest.approx(1 / 62 + 1 / 61)
    assert top.scores["rrf"] == top.score
    assert set(out[1].scores) == {"dense", "rrf"}
    assert [p.rank for p in out] == [1, 2]


def test_rrf_ties_and_k():
    c = CHUNKS
    ranking_a = [Passage(c[0], 3.0, 1), Passage(c[1], 2.0, 2)]
    ranking_b = [Passage(c[1], 9.0, 1), Passage(c[0], 8.0, 2)]
    out = reciprocal_rank_fusion({"x": ranking_a, "y": ranking_b}, k=5, rrf_k=60)
    assert len(out) == 2
    assert out[0].score == pytest.approx(out[1].score)
    assert out[0].chunk.document == "a.txt"  # tie broken deterministically by document
    assert out[0].scores == {"x": 3.0, "y": 8.0, "rrf": pytest.approx(1 / 61 + 1 / 62)}
    assert reciprocal_rank_fusion({"x": ranking_a}, k=1)[0].chunk == c[0]
    assert reciprocal_rank_fusion({}, k=3) == []


def test_make_retriever_bm25_and_errors():
    class Store:
        chunks = CHUNKS

    s = Settings()
    r = make_retriever("bm25", Store(), None, s)
    assert isinstance(r, BM25Retriever)
    assert r.run("Massimov", k=1)[0].chunk.document == "c.txt"
    with pytest.raises(ValueError):
        make_retriever("sparse", Store(), None, s)
    with pytest.raises(ValueError):
        make_retriever("hybrid", Store(), None, s)


def test_bm25_concurrent_queries_agree():
    from concurrent.futures import ThreadPoolExecutor

    r = BM25Retriever(CHUNKS).warm_up()
    questions = ["protested prices", "peacekeepers requested", "arrests for treason", "stocking bread"] * 25
    expected = {q: [p.chunk.document for p in r.run(q, 2)] for q in set(questions)}
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda q: (q, [p.chunk.document for p in r.run(q, 2)]), questions))
    assert all(expected[q] == docs for q, docs in got)
