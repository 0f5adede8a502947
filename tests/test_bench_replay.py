"""bench/bench_replay.py: what it saves is what the reader was given, and a replay answers as the service did."""

import json
import threading
import time
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from bench.bench_replay import answer_quality, concurrent_level, passage_from_json, passage_to_json, run_one, top_of
from qa.reader.reader import ExtractiveReader
from qa.types import Chunk, Passage
from tests.shipped import RUNTIME_QUESTIONS, SHIPPED, UNREST, two_passages

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=50, deadline=None)
@given(text=st.text(min_size=1, max_size=80), start=st.integers(0, 10**6), doc=st.text(min_size=1, max_size=30),
       chunk_id=st.text(max_size=20), score=finite, rank=st.integers(1, 50),
       scores=st.dictionaries(st.sampled_from(["dense", "bm25", "fused"]), finite))
def test_a_passage_survives_the_file(text, start, doc, chunk_id, score, rank, scores):
    p = Passage(Chunk(doc, start, start + len(text), text, id=chunk_id), score=score, rank=rank, scores=scores)
    back = passage_from_json(json.loads(json.dumps(passage_to_json(p))))
    assert back == p
    assert back.chunk.id == p.chunk.id  # not part of a chunk's equality
    assert back.scores == p.scores


@pytest.fixture(scope="module")
def reader() -> ExtractiveReader:
    r = ExtractiveReader(SHIPPED, precision="fp32")
    r.warm_up()
    return r


def test_a_replay_answers_as_the_reader_did(reader):
    doc, passages = two_passages(UNREST)
    documents = {"d.txt": doc}
    for q in RUNTIME_QUESTIONS:
        served = top_of(reader.run(q, passages, documents.__getitem__, max_answers=3))
        item = json.loads(json.dumps({"question": q, "answers": [], "served": served,
                                      "passages": [passage_to_json(p) for p in passages]}))
        replayed = top_of(run_one(reader, item, documents))
        assert replayed == served
        assert served["text"]  # an answer or a best guess to compare, not two Nones


def test_answer_quality_counts_answerable_questions_and_abstentions():
    items = [{"answers": ["2 January 2022"]}, {"answers": ["Almaty"]}, {"answers": ["the airport", "airport"]},
             {"answers": []}]
    tops = [{"answer_found": True, "text": "2 January 2022"},  # exact
            {"answer_found": False, "text": "Almaty"},  # abstained: counts 0 although the guess is right
            {"answer_found": True, "text": "the airport was seized"},  # SQuAD drops "the": 1 of 3 words, F1 0.5
            {"answer_found": True, "text": "anything"}]  # unanswerable: not counted
    q = answer_quality(items, tops)
    assert q["answerable"] == 3
    assert q["em"] == pytest.approx(round(100 * 1 / 3, 1))
    assert q["f1"] == pytest.approx(round(100 * (1 + 0 + 0.5) / 3, 1))


class _CountingReader:
    def __init__(self):
        self.asked = Counter()
        self.threads = set()
        self.lock = threading.Lock()

    def run(self, question, passages, document_text, max_answers=3, cascade=None):
        with self.lock:
            self.asked[question] += 1
            self.threads.add(threading.get_ident())
        time.sleep(0.005)  # long enough for the pool to start its other threads
        assert all(isinstance(p, Passage) for p in passages)
        assert document_text(passages[0].chunk.document)
        return None


def test_a_concurrency_level_asks_every_question_from_several_threads():
    doc, passages = two_passages(UNREST)
    items = [{"question": f"q{i}", "passages": [passage_to_json(p) for p in passages]} for i in range(5)]
    fake = _CountingReader()
    level = concurrent_level(fake, items, {"d.txt": doc}, clients=4, asks=12)
    assert level["asks"] == 12 and level["clients"] == 4 and level["per_s"] > 0
    assert fake.asked == Counter({"q0": 3, "q1": 3, "q2": 2, "q3": 2, "q4": 2})
    assert len(fake.threads) > 1
