"""The answer cache (qa/answer_cache.py, QAPipeline.ask): a repeated question is served from the cache; a write
makes a new index version, so the next ask is computed again; callers get copies they cannot corrupt.

The real pipeline with small stand-in models (tests/lite_pipeline.py) on temp copies of seeds/.
"""

from __future__ import annotations

import shutil
import threading

import pytest
from pydantic import ValidationError

from lite_pipeline import LitePipeline, lite_settings
from qa.answer_cache import AnswerCache, normalise_question
from qa.config import PROJECT_ROOT, Settings

SEEDS = PROJECT_ROOT / "seeds"
Q = "When did the protests in Kazakhstan begin?"
NEW_DOC = ("zebra.txt", b"The zebra parade in Ulaanbaatar began on 14 March 2023 with forty striped floats.\n")
ZQ = "When did the zebra parade in Ulaanbaatar begin?"


class CountingPipeline(LitePipeline):
    """Counts the reader's runs (a cache hit does not read) and records the ``cascade`` each was given."""

    def _load_reader(self):
        reader = super()._load_reader()
        self.reads = 0
        self.cascades = []
        run = reader.run

        def counted(*a, **kw):
            self.reads += 1
            self.cascades.append(kw.get("cascade"))
            return run(*a, **kw)

        reader.run = counted
        return reader


@pytest.fixture
def make(tmp_path):
    shutil.copytree(SEEDS, tmp_path / "corpus")

    def build(**overrides) -> CountingPipeline:
        s = lite_settings(tmp_path / "corpus", tmp_path / "index", reload_interval_s=0, **overrides)
        return CountingPipeline(s).warm_up()

    return build


def test_a_repeated_question_is_served_from_the_cache(make):
    pipe = make()
    first = pipe.ask(Q)
    assert pipe.reads == 1 and first.answers and "cache_hit" not in first.timing_ms
    again = pipe.ask(Q)
    assert pipe.reads == 1, "the second ask read again"
    assert again.timing_ms["cache_hit"] == 1.0
    assert again.model_dump(exclude={"timing_ms"}) == first.model_dump(exclude={"timing_ms"})
    assert pipe.answers.hits == 1


def test_the_key_is_the_normalised_question_and_the_parameters(make):
    pipe = make()
    pipe.ask(Q)
    r = pipe.ask("  when did the protests in   KAZAKHSTAN begin? ")
    assert pipe.reads == 1  # same question up to case and spaces
    assert r.question == "when did the protests in   KAZAKHSTAN begin?"  # the caller's question, stripped
    pipe.ask(Q, top_k=3)
    assert pipe.reads == 2  # another k: computed
    pipe.ask(Q, max_answers=1)
    assert pipe.reads == 3  # another number of answers: computed
    pipe.ask(Q, top_k=3)
    assert pipe.reads == 3
    assert normalise_question(" A\tb\n C ") == "a b c"


def test_adding_a_document_recomputes_the_answer(make):
    pipe = make()
    before = pipe.ask(ZQ)
    assert all(c.document != "zebra.txt" for a in before.answers for c in a.citations)
    version = pipe.active_version()
    pipe.add_documents([NEW_DOC])
    assert pipe.active_version() != version
    after = pipe.ask(ZQ)
    assert pipe.reads == 2, "the answer came from the cache after a write"
    assert "cache_hit" not in after.timing_ms
    top = after.answers[0].citations[0]
    assert top.document == "zebra.txt"
    assert pipe.document_text("zebra.txt")[top.start : top.end] == after.answers[0].text

    pipe.remove_document("zebra.txt")  # a delete is a write too
    gone = pipe.ask(ZQ)
    assert pipe.reads == 3
    assert all(c.document != "zebra.txt" for a in gone.answers for c in a.citations)


def test_the_caller_gets_a_copy_it_cannot_corrupt(make):
    pipe = make()
    first = pipe.ask(Q)
    text = first.answers[0].text
    first.answers[0].text = "corrupted"
    first.answers[0].citations[0].start = -1
    first.passages.clear()
    second = pipe.ask(Q)
    assert second.answers[0].text == text and second.answers[0].citations[0].start >= 0 and second.passages
    second.answers.clear()
    third = pipe.ask(Q)
    assert third.answers and third.answers[0].text == text
    assert pipe.reads == 1


def test_size_zero_disables_the_cache(make):
    pipe = make(answer_cache_size=0)
    pipe.ask(Q)
    pipe.ask(Q)
    assert pipe.reads == 2 and len(pipe.answers) == 0


def test_the_cache_is_bounded_lru():
    cache = AnswerCache(2)
    cache.put("a", {"v": 1})
    cache.put("b", {"v": 2})
    assert cache.get("a") == {"v": 1}  # a is now the most recent
    cache.put("c", {"v": 3})  # evicts b
    assert cache.get("b") is None and cache.get("a") == {"v": 1} and cache.get("c") == {"v": 3}
    assert len(cache) == 2


def test_concurrent_asks_share_the_cache_safely(make):
    pipe = make()
    expected = pipe.ask(Q).model_dump(exclude={"timing_ms", "question"})
    errors: list = []

    def worker():
        try:
            for _ in range(20):
                r = pipe.ask(Q)
                assert r.model_dump(exclude={"timing_ms", "question"}) == expected
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and pipe.reads == 1


def test_invalid_cache_size_is_refused(monkeypatch):
    with pytest.raises(ValidationError, match="answer_cache_size"):
        Settings(answer_cache_size=-1)
    monkeypatch.setenv("QA_ANSWER_CACHE_SIZE", "lots")
    with pytest.raises(ValidationError, match="answer_cache_size"):
        Settings()
    with pytest.raises(ValueError, match=">= 0"):
        AnswerCache(-1)


def test_a_busy_ask_is_read_by_the_cascade_and_cached_apart(make):
    pipe = make(busy_first_passages=2, busy_exit_score=0.6)
    pipe.ask(Q, busy=True)
    assert pipe.cascades == [(2, 0.6)]
    pipe.ask(Q, busy=True)
    assert pipe.reads == 1  # the busy read is cached for busy asks
    pipe.ask(Q)
    assert pipe.reads == 2 and pipe.cascades[-1] is None  # an idle ask does not get the cascade's answer
    pipe.ask(Q2 := "Who is the President of Kazakhstan?")
    pipe.ask(Q2, busy=True)
    assert pipe.reads == 3, "a busy ask is served the cached full read"


def test_busy_reading_can_be_turned_off(make):
    pipe = make(busy_first_passages=0)
    pipe.ask(Q, busy=True)
    pipe.ask(Q)
    assert pipe.cascades == [None] and pipe.reads == 1  # the same read and the same cache entry
    with pytest.raises(ValidationError):
        Settings(busy_exit_score=1.5)
    with pytest.raises(ValidationError):
        Settings(busy_first_passages=-1)
