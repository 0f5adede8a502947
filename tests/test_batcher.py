"""Batching across concurrent questions (qa/batcher.py): one forward for the windows of several callers,
each caller gets its own rows' results, errors reach every caller of the batch, and the shipped reader answers
concurrent questions exactly as it answers each alone.

No timed assertions: the tests hold the first forward until the other callers are queued, so the batch they
form is certain."""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import ValidationError

from qa.config import PROJECT_ROOT, Settings
from qa.batcher import ForwardBatcher
from qa.reader.reader import ExtractiveReader

SEEDS = PROJECT_ROOT / "seeds"


def wait_until(cond, what: str):
    """Poll ``cond`` (no timing asserted; the limit only stops a broken test from hanging)."""
    deadline = time.monotonic() + 300
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.001)


class HeldForward:
    """A forward (rows -> row * 10) whose first call waits until ``queued`` other requests are pending."""

    def __init__(self, queued: int, fail_on: int | None = None):
        self.queued = queued
        self.fail_on = fail_on
        self.batches: list[list[int]] = []
        self.batcher: ForwardBatcher | None = None
        self.entered = threading.Event()

    def __call__(self, rows):
        self.batches.append(list(rows))
        if len(self.batches) == 1:
            self.entered.set()
            wait_until(lambda: len(self.batcher._pending) == self.queued, f"{self.queued} queued requests")
        if self.fail_on is not None and self.fail_on in rows:
            raise RuntimeError("forward failed")
        return [r * 10 for r in rows]


def run_threads(batcher: ForwardBatcher, requests: list[list[int]], first_entered: threading.Event):
    results: dict[int, object] = {}

    def call(i):
        try:
            results[i] = batcher.run(requests[i])
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=call, args=(0,))]
    threads[0].start()
    first_entered.wait(60)
    threads += [threading.Thread(target=call, args=(i,)) for i in range(1, len(requests))]
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_queued_callers_share_one_forward_and_each_gets_its_own_rows():
    fwd = HeldForward(queued=5)
    batcher = fwd.batcher = ForwardBatcher(fwd, wait_ms=0, max_rows=64)
    requests = [[100 * i + j for j in range(i + 1)] for i in range(6)]
    results = run_threads(batcher, requests, fwd.entered)
    assert results == {i: [r * 10 for r in req] for i, req in enumerate(requests)}
    assert batcher.forwards == 2 and len(fwd.batches) == 2  # the first alone, the five queued ones together
    assert sorted(fwd.batches[1]) == sorted(r for req in requests[1:] for r in req)


def test_a_batch_holds_at_most_max_rows_and_never_splits_a_request():
    fwd = HeldForward(queued=4)
    batcher = fwd.batcher = ForwardBatcher(fwd, wait_ms=0, max_rows=5)
    requests = [[0], [10, 11, 12], [20, 21], [30, 31, 32, 33, 34, 35], [40]]
    results = run_threads(batcher, requests, fwd.entered)
    assert results == {i: [r * 10 for r in req] for i, req in enumerate(requests)}
    for batch in fwd.batches:
        assert len(batch) <= 5 or len(batch) == 6 and batch == [30, 31, 32, 33, 34, 35]  # too large: alone
        for req in requests:  # a request's rows are in one batch, in order
            inside = [r for r in batch if r in req]
            assert inside in ([], req)


def test_an_error_reaches_every_caller_of_its_batch_and_the_next_batch_works():
    fwd = HeldForward(queued=2, fail_on=21)
    batcher = fwd.batcher = ForwardBatcher(fwd, wait_ms=0, max_rows=64)
    results = run_threads(batcher, [[1], [11], [21]], fwd.entered)
    assert results[0] == [10]
    assert all(isinstance(results[i], RuntimeError) and "forward failed" in str(results[i]) for i in (1, 2))
    assert batcher.run([7, 8]) == [70, 80]


def test_empty_and_invalid():
    batcher = ForwardBatcher(lambda rows: [r for r in rows])
    assert batcher.run([]) == []
    with pytest.raises(ValueError, match="max_rows"):
        ForwardBatcher(lambda rows: rows, max_rows=0)
    with pytest.raises(ValueError, match="wait_ms"):
        ForwardBatcher(lambda rows: rows, wait_ms=-1)
    with pytest.raises(ValidationError, match="reader_batch_windows"):
        Settings(reader_batch_windows=-1)
    with pytest.raises(ValidationError, match="reader_batch_wait_ms"):
        Settings(reader_batch_wait_ms=-5)


QUESTIONS = [
    "When did the protests in Kazakhstan begin?",
    "Who is the first president of Kazakhstan?",
    "What did President Tokayev introduce?",
    "Which building did protesters break into in Almaty?",
    "Who are the peacekeepers sent by?",
    "Why did people protest in Kazakhstan?",
]


def _contexts() -> list[tuple[str, str]]:
    """The first ~2,000 characters of each seed article (a few windows each: small batches, little memory)."""
    docs = sorted(SEEDS.glob("*.txt"))
    return [(p.name, p.read_text(encoding="utf-8")[:2000]) for p in docs]


def _answer(out) -> tuple:
    best = out.best_guess
    return (out.answer_found, [(a.text, [(c.document, c.start, c.end) for c in a.citations]) for a in out.answers],
            None if best is None else (best.text, best.citations[0].document, best.citations[0].start))


def _scores(out) -> list[float]:
    return [a.score for a in out.answers] + [out.no_answer_score]


def test_concurrent_questions_get_the_answers_they_get_alone():
    settings = Settings(reader_precision="fp32", device="cpu", reader_batch_windows=64, reader_batch_wait_ms=0)
    reader = ExtractiveReader.from_settings(settings)
    reader.warm_up()
    contexts = _contexts()
    batcher = reader.batcher
    alone = {q: reader.read_contexts(q, contexts) for q in QUESTIONS}
    assert batcher.forwards == len(QUESTIONS)  # one at a time: one forward each

    # hold the first forward until every other question is queued: they then share the second forward
    forward = batcher.forward
    entered = threading.Event()
    calls = {"n": 0}

    def held(rows):
        calls["n"] += 1
        if calls["n"] == 1:
            entered.set()
            wait_until(lambda: len(batcher._pending) == len(QUESTIONS) - 1, "the other questions queued")
        return forward(rows)

    batcher.forward = held
    results: dict[str, object] = {}

    def ask(q):
        try:
            results[q] = reader.read_contexts(q, contexts)
        except Exception as e:  # reported by the assertion below, not lost in a thread
            results[q] = e

    threads = [threading.Thread(target=ask, args=(QUESTIONS[0],))]
    threads[0].start()
    assert entered.wait(120)
    threads += [threading.Thread(target=ask, args=(q,)) for q in QUESTIONS[1:]]
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(300)
    errors = {q: r for q, r in results.items() if isinstance(r, Exception)}
    assert not errors, errors
    assert calls["n"] == 2 and batcher.forwards == len(QUESTIONS) + 2
    for q in QUESTIONS:
        assert _answer(results[q]) == _answer(alone[q]), q
        assert _scores(results[q]) == pytest.approx(_scores(alone[q]), abs=1e-4), q
        for a in results[q].answers:  # citations stay exact
            assert a.text == a.citations[0].text
            for c in a.citations:
                assert dict(contexts)[c.document][c.start : c.end] == c.text
    assert any(results[q].answers for q in QUESTIONS)


def test_concurrent_questions_get_their_own_reader_windows():
    """The tokenizer is shared by the API's worker threads; unguarded, concurrent calls came back with another
    call's truncation settings (untruncated windows). The reader tokenises one question at a time."""
    reader = ExtractiveReader.from_settings(Settings(reader_precision="fp32", device="cpu"))
    reader.warm_up()
    contexts = [t for _, t in _contexts()]
    expected = {q: reader.encode(q, contexts).encoding["input_ids"] for q in QUESTIONS}
    wrong: list = []

    def work(q):
        for _ in range(40):
            ids = reader.encode(q, contexts).encoding["input_ids"]
            if ids != expected[q]:
                wrong.append((q, len(ids), len(expected[q])))

    threads = [threading.Thread(target=work, args=(q,)) for q in QUESTIONS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert wrong == []
