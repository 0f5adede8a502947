"""Reader-only latency over the seed questions' retrieved passages, replayable on another machine.

    python bench/bench_read.py --dump /tmp/passages.json      # retrieve once (needs the index and embedder)
    python bench/bench_read.py --replay /tmp/passages.json [--threads 2] [--precision auto|bf16|fp32]

`--replay` loads only the reader (no index, no embedder), so the read stage can be timed on a machine
that has the model but not the rest of the service: a CPU with native bf16, for instance. Prints p50/p95
of one question's read (all its passages in one batch) and windows/s. Figures only: nothing asserts a time.
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


def dump(path: Path, questions_file: Path, k: int | None) -> None:
    from qa.config import Settings
    from qa.pipeline import QAPipeline

    questions = [json.loads(line)["question"] for line in questions_file.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        pipe = QAPipeline(Settings(index_dir=Path(tmp) / "index")).warm_up()
        items = []
        for q in questions:
            r = pipe.ask(q, top_k=k)
            items.append({"question": q, "contexts": [[p.document, p.text] for p in r.passages]})
    path.write_text(json.dumps(items))
    print(f"wrote {len(items)} questions' passages to {path}")


def replay(path: Path, rounds: int, threads: int | None, precision: str) -> None:
    import torch

    from qa.reader.reader import ExtractiveReader

    if threads:
        torch.set_num_threads(threads)
    items = json.loads(path.read_text())
    reader = ExtractiveReader(ROOT / "models" / "reader", precision=precision)
    reader.warm_up()
    print(f"reader runtime: {reader.runtime}; torch threads: {torch.get_num_threads()}")
    reader.read_contexts(items[0]["question"], [tuple(c) for c in items[0]["contexts"]])
    times, windows = [], 0
    for _ in range(rounds):
        for it in items:
            t = time.perf_counter()
            out = reader.read_contexts(it["question"], [tuple(c) for c in it["contexts"]])
            times.append((time.perf_counter() - t) * 1000)
            windows += out.windows
    secs = sum(times) / 1000
    print(f"read over {len(times)} questions: p50 {statistics.median(times):.0f} ms, p95 {pct(times, 0.95):.0f} ms, "
          f"mean {statistics.mean(times):.0f} ms; {windows / secs:.1f} windows/s")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", type=Path)
    ap.add_argument("--replay", type=Path)
    ap.add_argument("--questions", type=Path, default=ROOT / "eval" / "seeds_qa.jsonl")
    ap.add_argument("-k", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    args = ap.parse_args()
    if args.dump:
        dump(args.dump, args.questions, args.k)
    elif args.replay:
        replay(args.replay, args.rounds, args.threads, args.precision)
    else:
        ap.error("give --dump FILE or --replay FILE")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
