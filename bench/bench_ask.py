"""Warm `qa ask` latency over the seed questions (model and index already loaded) and reader throughput.

    python bench/bench_ask.py [--rounds 3] [--questions eval/seeds_qa.jsonl]

Prints p50/p95 of the whole ask (retrieve + read), of each stage, and reader windows/s. Figures only:
nothing here asserts a time.
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
    ap.add_argument("--precision", choices=["auto", "bf16", "fp32"], default=None,
                    help="reader precision (default: QA_READER_PRECISION, auto)")
    ap.add_argument("--reader", type=Path, action="append", default=None,
                    help="reader folder (repeat to compare readers in one run: questions alternate between them, "
                         "so both see the same machine load); default: settings")
    ap.add_argument("--first-passages", type=int, default=None,
                    help="early exit: passages read first (default: QA_READER_FIRST_PASSAGES; 0 = read all at once)")
    args = ap.parse_args()
    if args.reader and len(args.reader) > 1:
        return compare(args)

    from qa.config import Settings
    from qa.pipeline import QAPipeline

    questions = [json.loads(line)["question"] for line in args.questions.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {"reader_precision": args.precision} if args.precision else {}
        if args.first_passages is not None:
            overrides["reader_first_passages"] = args.first_passages
        settings = Settings(index_dir=Path(tmp) / "index", **overrides)
        t0 = time.perf_counter()
        pipe = QAPipeline(settings).warm_up()
        print(f"warm-up (models + index build of seeds/): {time.perf_counter() - t0:.1f} s; "
              f"reader runtime: {pipe.reader.runtime}")
        pipe.ask(questions[0])  # first call outside the figures
        total, retrieve, read, windows, early = [], [], [], 0, 0
        exited: dict[str, str | None] = {}  # question -> top answer after an early exit
        for _ in range(args.rounds):
            for q in questions:
                t = time.perf_counter()
                r = pipe.ask(q, top_k=args.k)
                total.append((time.perf_counter() - t) * 1000)
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
        print(f"early exit: read {first} passages first, the rest only below score {settings.reader_early_exit_score}: "
              f"exited early on {early} of {n} asks" if first else "early exit: off (every passage read at once)")
        for name, v in (("ask total", total), ("retrieve", retrieve), ("read", read)):
            print(f"{name:>10}: p50 {pct(v, 0.5):7.1f} ms   p95 {pct(v, 0.95):7.1f} ms   mean {statistics.mean(v):7.1f} ms")
        print(f"reader throughput: {windows / (sum(read) / 1000):.1f} windows/s (one window per passage of "
              f"<= {settings.chunk_tokens} tokens), {windows / n:.2f} passages read per ask")
        if exited:  # outside the timings: does reading every passage change the top answer?
            pipe.reader.first_passages = 0
            changed = 0
            for q, top in exited.items():
                r = pipe.ask(q, top_k=args.k)
                changed += (r.answers[0].text if r.answers else None) != top
            print(f"early exit: top answer differs from reading every passage on {changed} of {len(exited)} "
                  f"questions that exited early")
    return 0


def compare(args) -> int:
    """Several readers over one index, asked alternately (same questions, same load), p50/p95 each."""
    from qa.config import Settings
    from qa.pipeline import QAPipeline

    questions = [json.loads(line)["question"] for line in args.questions.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        pipes = []
        for d in args.reader:
            overrides = {"reader_precision": args.precision} if args.precision else {}
            settings = Settings(index_dir=Path(tmp) / "index", reader_model_dir=d, **overrides)
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
              f"reader runtime: {pipes[0].reader.runtime}")
        base = pct(times[0], 0.5)
        for d, pipe, v in zip(args.reader, pipes, times):
            verifier = "verifier" if pipe.reader.verifier is not None else "no verifier"
            shared = "shared" if pipe.reader.shared else "per-window"
            print(f"{str(d):>30} ({shared}, {verifier}): p50 {pct(v, 0.5):7.1f} ms   p95 {pct(v, 0.95):7.1f} ms   "
                  f"p50 ratio to the first {pct(v, 0.5) / base:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
