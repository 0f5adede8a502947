"""Per-question comparison of two `qa eval` reports on the same question set (answerable questions).

    python eval/compare_reports.py OLD/report.json NEW/report.json

Prints the mean F1 difference (NEW - OLD), a bootstrap 95 % interval over questions (5,000 resamples,
seed 0), and how many questions got worse / better by more than 0.3 F1.
"""

from __future__ import annotations

import json
import random
import sys


def main(old_path: str, new_path: str) -> int:
    old = {it["id"]: it for it in json.load(open(old_path))["items"]}
    new = json.load(open(new_path))["items"]
    diffs = [it["f1"] - old[it["id"]]["f1"] for it in new if it["answerable"] and it["id"] in old]
    if not diffs:
        print("no answerable questions in common")
        return 1
    rng = random.Random(0)
    boot = sorted(sum(rng.choice(diffs) for _ in diffs) / len(diffs) for _ in range(5000))
    worse = sum(d < -0.3 for d in diffs)
    better = sum(d > 0.3 for d in diffs)
    print(f"answerable questions: {len(diffs)}; F1 new - old: {100 * sum(diffs) / len(diffs):+.1f} "
          f"(95 % bootstrap interval {100 * boot[125]:+.1f} to {100 * boot[4874]:+.1f}); "
          f"worse on {worse}, better on {better}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
