"""kill -9 a server subprocess at N random moments (default 100) during uploads, replaces, deletes,
restores and start-up re-indexing; after each kill replay the journal and compare the corpus
folder with the index. Prints the figures (the test suite runs 20 rounds of the same thing).

    python bench/bench_kill_points.py --rounds 100 [--seed 1]

The server is tests/lite_pipeline.py: the real write path (journal, trash, index versions, FAISS)
with small stand-in models, so each round takes about two seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from test_kill_points import run_kill_rounds  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.perf_counter()

    def report(r, acked, flight):
        state = f"in flight: {flight[0]}" if flight else "between writes"
        print(f"round {r + 1}: killed after {acked} acknowledged writes ({state}); 0 differences", flush=True)

    with tempfile.TemporaryDirectory(prefix="qa-kill-") as tmp:
        figures = run_kill_rounds(Path(tmp), args.rounds, args.seed, report=report)
    print(f"\n{figures['rounds']} kill -9 rounds in {time.perf_counter() - t0:.0f}s (seed {args.seed}): "
          f"{figures['differences_after_kill']} corpus/index differences after journal replay, "
          f"{figures['lost']} acknowledged versions lost, {figures['acknowledged_writes']} acknowledged writes, "
          f"{figures['killed_during_startup_reindex']} kills during start-up re-indexing; kills inside a write "
          f"transaction: {figures['rolled_forward']} rolled forward, {figures['rolled_back']} rolled back by the journal")


if __name__ == "__main__":
    main()
