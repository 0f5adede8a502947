"""qa/timing.py: stage timers that do nothing unless a collector is active in the calling context, and the
stages a warm ask records (bench/bench_ask.py prints their medians)."""

from __future__ import annotations

import shutil
import threading

from lite_pipeline import LitePipeline, lite_settings
from qa import timing
from qa.config import PROJECT_ROOT

Q = "When did the protests in Kazakhstan begin?"


def test_a_stage_without_a_collector_records_nothing():
    assert not timing.enabled()
    with timing.stage("bm25"):
        pass
    with timing.collect() as st:
        pass
    assert st == {}


def test_a_collector_sums_each_stage_and_stops_at_its_end():
    with timing.collect() as st:
        assert timing.enabled()
        for _ in range(3):
            with timing.stage("decode"):
                pass
        with timing.stage("fusion"):
            pass
    assert set(st) == {"decode", "fusion"} and all(v >= 0 for v in st.values())
    assert not timing.enabled()
    with timing.stage("decode"):  # after the collector: not recorded
        pass
    assert set(st) == {"decode", "fusion"}


def test_a_stage_that_raises_is_still_recorded():
    with timing.collect() as st:
        try:
            with timing.stage("verifier"):
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    assert "verifier" in st


def test_collectors_of_other_threads_do_not_mix():
    seen: dict[str, set] = {}
    barrier = threading.Barrier(2)

    def work(name: str):
        with timing.collect() as st:
            barrier.wait()
            with timing.stage(name):
                barrier.wait()
        seen[name] = set(st)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("bm25", "decode")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"bm25": {"bm25"}, "decode": {"decode"}}


def test_a_hybrid_ask_records_its_stages_and_answers_the_same(tmp_path):
    shutil.copytree(PROJECT_ROOT / "seeds", tmp_path / "corpus")
    s = lite_settings(tmp_path / "corpus", tmp_path / "index", answer_cache_size=0, reload_interval_s=0)
    s = s.model_copy(update={"retrieval_mode": "hybrid"})
    pipe = LitePipeline(s).warm_up()
    plain = pipe.ask(Q)
    with timing.collect() as st:
        timed = pipe.ask(Q)
    assert {"check_question", "embed_query", "dense_search", "bm25", "fusion", "result"} <= set(st)
    assert set(st) <= set(timing.STAGES)
    assert timed.model_dump(exclude={"timing_ms"}) == plain.model_dump(exclude={"timing_ms"})
