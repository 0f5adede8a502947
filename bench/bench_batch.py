"""Concurrent asks with and without batching across questions (qa/batcher.py), in one process.

    python bench/bench_batch.py [--threads 4] [--rounds 2] [--wait-ms 2] [--windows 64]

One pipeline over a fresh index of seeds/ (answer cache off). First every seed question alone (the reference
answers); then, alternating ``--rounds`` times so both modes see the same machine load, all questions from
``--threads`` threads (the API runs up to 4 asks at once: api/deps.py MODEL_CONCURRENCY) without batching (each
question its own forward, one at a time) and with it. Prints per-ask latency p50/p95, questions/s, forwards
per question, and how many answers differ from the reference (text, citation offsets). Figures only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def key(r) -> tuple:
    return (r.answer_found, [(a.text, [(c.document, c.start, c.end) for c in a.citations]) for a in r.answers])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=Path, default=ROOT / "eval" / "seeds_qa.jsonl")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--wait-ms", type=float, default=2.0)
    ap.add_argument("--windows", type=int, default=64, help="most windows in one batched forward")
    ap.add_argument("--precision", choices=["auto", "bf16", "fp32"], default=None)
    args = ap.parse_args()

    from qa.config import Settings
    from qa.evaluation.dataset import load_eval_set
    from qa.pipeline import QAPipeline
    from qa.batcher import ForwardBatcher

    questions = [it.question for it in load_eval_set(args.questions)]
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {"reader_precision": args.precision} if args.precision else {}
        settings = Settings(index_dir=Path(tmp) / "index", answer_cache_size=0, reader_batch_windows=0, **overrides)
        pipe = QAPipeline(settings).warm_up()
        reader = pipe.reader
        # as ExtractiveReader builds it for QA_READER_BATCH_WINDOWS: a batch of up to --windows windows in one forward
        batcher = ForwardBatcher(partial(reader._forward_rows, batch_size=max(reader.batch_size, args.windows),
                                         width=reader.max_length),
                                 wait_ms=args.wait_ms, max_rows=args.windows)
        print(f"reader runtime: {reader.runtime}; {len(questions)} questions; {args.threads} threads; "
              f"batching: wait {args.wait_ms} ms, at most {args.windows} windows per forward")
        pipe.ask(questions[0])
        reference = {q: key(pipe.ask(q)) for q in questions}

        def timed(q):
            t = time.perf_counter()
            r = pipe.ask(q)
            return (time.perf_counter() - t) * 1000, key(r) != reference[q]

        figures: dict[str, dict[str, list]] = {m: {"lat": [], "qps": [], "diff": [], "fpq": []}
                                               for m in ("no batching", "batching")}
        for _ in range(args.rounds):
            for mode in figures:
                reader.batcher = batcher if mode == "batching" else None
                f0 = batcher.forwards
                t0 = time.perf_counter()
                with ThreadPoolExecutor(args.threads) as ex:
                    out = list(ex.map(timed, questions))
                wall = time.perf_counter() - t0
                fig = figures[mode]
                fig["lat"] += [ms for ms, _ in out]
                fig["qps"].append(len(questions) / wall)
                fig["diff"].append(sum(d for _, d in out))
                fig["fpq"].append((batcher.forwards - f0) / len(questions) if mode == "batching" else 1.0)
        for mode, fig in figures.items():
            print(f"{mode:>12}: ask p50 {pct(fig['lat'], 0.5):7.1f} ms  p95 {pct(fig['lat'], 0.95):7.1f} ms  "
                  f"{statistics.mean(fig['qps']):5.2f} questions/s (rounds: "
                  f"{', '.join(f'{x:.2f}' for x in fig['qps'])})  forwards per question "
                  f"{statistics.mean(fig['fpq']):.2f}  answers differing from alone: {fig['diff']} of "
                  f"{len(questions)} per round")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
