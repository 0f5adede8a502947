"""Warm `qa ask` latency over the seed questions (model and index already loaded) and reader throughput.

    python bench/bench_ask.py [--rounds 3] [--questions eval/seeds_qa.jsonl]

Prints p50/p95 of the whole ask (retrieve + read), the median of each stage of the ask (question check,
query embedding, FAISS search, BM25, fusion, reader tokenisation, reader forward, decoding, aggregation,
verifier, result; qa/timing.py), reader windows/s, and the seed set's EM/F1 and citation validity over the
first round (so a speed-up never silently costs quality). Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=Path, default=ROOT / "eval" / "seeds_qa.jsonl")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-k", type=int, default=None)
    ap.add_argument("--precision", choices=["auto", "bf16", "fp32", "int8", "int8-torch"], default=None,
                    help="reader precision (default: QA_READER_PRECISION, auto)")
    ap.add_argument("--reader", type=Path, action="append", default=None,
                    help="reader folder (repeat to compare readers in one run: questions alternate between them, "
                         "so both see the same machine load); default: settings")
    ap.add_argument("--first-passages", type=int, default=None,
                    help="early exit: passages read first (default: QA_READER_FIRST_PASSAGES; 0 = read all at once)")
    args = ap.parse_args()
    if args.reader and len(args.reader) > 1:
        return compare(args)

    from qa import machine, timing
    from qa.config import Settings
    from qa.evaluation.dataset import load_eval_set
    from qa.evaluation.metrics import aggregate, score_item
    from qa.pipeline import QAPipeline

    items = load_eval_set(args.questions)
    questions = [it.question for it in items]
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {"reader_precision": args.precision} if args.precision else {}
        overrides["answer_cache_size"] = 0  # every ask computed: the figures are the pipeline's, not the cache's
        if args.first_passages is not None:
            overrides["reader_first_passages"] = args.first_passages
        settings = Settings(index_dir=Path(tmp) / "index", **overrides)
        t0 = time.perf_counter()
        pipe = QAPipeline(settings).warm_up()
        probe = pipe.reader.token_probe
        print(f"warm-up (models + index build of seeds/): {time.perf_counter() - t0:.1f} s; "
              f"reader runtime: {pipe.reader.runtime}; token pruning: "
              + (f"{probe.keep:g} of each window's context tokens after layer {probe.layer}" if probe else "off"))
        print(f"machine: {machine.summary()}")
        pipe.ask(questions[0])  # first call outside the figures
        total, retrieve, read, windows, early = [], [], [], 0, 0
        stages: dict[str, list[float]] = {name: [] for name in timing.STAGES}
        scored = []
        exited: dict[str, str | None] = {}  # question -> top answer after an early exit
        for round_ in range(args.rounds):
            for item in items:
                q = item.question
                with timing.collect() as st:
                    t = time.perf_counter()
                    r = pipe.ask(q, top_k=args.k)
                    total.append((time.perf_counter() - t) * 1000)
                for name in stages:  # a stage that did not run (e.g. BM25 in dense mode) counts 0
                    stages[name].append(st.get(name, 0.0) * 1000)
                if round_ == 0:
                    scored.append(score_item(item, r, pipe.document_text, total[-1]))
                retrieve.append(r.timing_ms["retrieve"])
                read.append(r.timing_ms["read"])
                windows += r.passages_read
                if r.passages_read < len(r.passages):
                    early += 1
                    exited[q] = r.answers[0].text if r.answers else None
        n = len(total)
        print(f"questions: {len(questions)} x {args.rounds} rounds = {n} asks, top_k={args.k or settings.top_k}, "
              f"retrieval={settings.retrieval_mode}")
        first = settings.reader_first_passages
        by = getattr(settings, "reader_early_exit_by", "span")
        print(f"early exit: read {first} passages first, the rest only below {by} {settings.reader_early_exit_score}: "
              f"exited early on {early} of {n} asks" if first else "early exit: off (every passage read at once)")
        for name, v in (("ask total", total), ("retrieve", retrieve), ("read", read)):
            print(f"{name:>10}: p50 {pct(v, 0.5):7.1f} ms   p95 {pct(v, 0.95):7.1f} ms   mean {statistics.mean(v):7.1f} ms")
        print(f"reader throughput: {windows / (sum(read) / 1000):.1f} passages/s (passages of "
              f"<= {settings.chunk_tokens} tokens), {windows / n:.2f} passages read per ask")
        print_stages(stages, total)
        m = aggregate(scored, args.k or settings.top_k)
        print(f"seed set ({len(scored)} questions, first round): EM {m['exact_match']:.1f}  F1 {m['f1']:.1f}  "
              f"F1 answerable {m['f1_answerable']:.1f}  citation validity {m['citation_validity']:.1f} %  "
              f"answered {m['answered']}")
        # the answer cache (QA_ANSWER_CACHE_SIZE, off in the figures above): a repeated question's latency
        from qa.answer_cache import AnswerCache

        pipe.answers = AnswerCache(256)
        for q in questions[:20]:
            pipe.ask(q, top_k=args.k)
        hits = []
        for _ in range(5):
            for q in questions[:20]:
                t = time.perf_counter()
                pipe.ask(q, top_k=args.k)
                hits.append((time.perf_counter() - t) * 1000)
        print(f"answer cache hit (a repeated question, {len(hits)} asks): p50 {pct(hits, 0.5):.3f} ms   "
              f"p95 {pct(hits, 0.95):.3f} ms")
        pipe.answers = AnswerCache(0)
        if exited:  # outside the timings: does reading every passage change the top answer?
            pipe.reader.first_passages = 0
            changed = 0
            for q, top in exited.items():
                r = pipe.ask(q, top_k=args.k)
                changed += (r.answers[0].text if r.answers else None) != top
            print(f"early exit: top answer differs from reading every passage on {changed} of {len(exited)} "
                  f"questions that exited early")
    return 0


def print_stages(stages: dict[str, list[float]], total: list[float]) -> None:
    """Median ms of each stage over the asks (qa/timing.py), in the order of the ask."""
    med = {name: statistics.median(v) for name, v in stages.items() if v and any(v)}
    if "aggregate" in med and "verifier" in med:  # the verifier runs inside aggregation: shown apart
        med["aggregate"] = statistics.median(a - v for a, v in zip(stages["aggregate"], stages["verifier"]))
    print("stages of a warm ask (median ms over the asks; the medians need not add up to the total's):")
    for name, v in med.items():
        print(f"{name:>16}: {v:7.2f} ms")
    print(f"{'sum of medians':>16}: {sum(med.values()):7.2f} ms   (ask total p50 {pct(total, 0.5):.2f} ms)")


def compare(args) -> int:
    """Several readers over one index, asked alternately (same questions, same load), p50/p95 each."""
    from qa import machine
    from qa.config import Settings
    from qa.pipeline import QAPipeline

    questions = [json.loads(line)["question"] for line in args.questions.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        pipes = []
        for d in args.reader:
            overrides = {"reader_precision": args.precision} if args.precision else {}
            settings = Settings(index_dir=Path(tmp) / "index", reader_model_dir=d, answer_cache_size=0, **overrides)
            pipe = QAPipeline(settings).warm_up()
            pipe.ask(questions[0])
            pipes.append(pipe)
        times: list[list[float]] = [[] for _ in pipes]
        for _ in range(args.rounds):
            for q in questions:
                for i, pipe in enumerate(pipes):
                    t = time.perf_counter()
                    pipe.ask(q, top_k=args.k)
                    times[i].append((time.perf_counter() - t) * 1000)
        print(f"questions: {len(questions)} x {args.rounds} rounds per reader, asked alternately; "
              f"reader runtime: {pipes[0].reader.runtime}; machine: {machine.summary()}")
        base = pct(times[0], 0.5)
        for d, pipe, v in zip(args.reader, pipes, times):
            verifier = "verifier" if pipe.reader.verifier is not None else "no verifier"
            shared = "shared" if pipe.reader.shared else "per-window"
            print(f"{str(d):>30} ({shared}, {verifier}): p50 {pct(v, 0.5):7.1f} ms   p95 {pct(v, 0.95):7.1f} ms   "
                  f"p50 ratio to the first {pct(v, 0.5) / base:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
