"""Per-question comparison of two `qa eval` reports on the same question set.

    python eval/compare_reports.py OLD/report.json NEW/report.json

Prints, for the answerable questions and for all questions (the report's headline F1, where abstaining on an
unanswerable question scores 1), the mean F1 difference (NEW - OLD) with a bootstrap 95 % interval over questions
(5,000 resamples, seed 0), and how many questions got worse / better by more than 0.3 F1; then the unanswerable
questions caught by each. An interval that holds 0 means the set cannot tell the two apart.
"""

from __future__ import annotations

import json
import random
import sys

RESAMPLES = 5000


def paired_difference(diffs: list[float], resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``diffs`` and its bootstrap 95 % interval (percentiles 2.5 and 97.5)."""
    rng = random.Random(seed)
    n = len(diffs)
    boot = sorted(sum(rng.choice(diffs) for _ in range(n)) / n for _ in range(resamples))
    lo, hi = boot[int(0.025 * resamples)], boot[int(0.975 * resamples) - 1]
    return sum(diffs) / n, lo, hi


def compare(old_items: list[dict], new_items: list[dict]) -> list[str]:
    old = {it["id"]: it for it in old_items}
    both = [(old[it["id"]], it) for it in new_items if it["id"] in old]
    if not both:
        return ["no questions in common"]
    lines = []
    for label, pairs in (("answerable questions", [(o, n) for o, n in both if n["answerable"]]),
                         ("all questions", both)):
        if not pairs:
            continue
        diffs = [n["f1"] - o["f1"] for o, n in pairs]
        mean, lo, hi = paired_difference(diffs)
        worse = sum(d < -0.3 for d in diffs)
        better = sum(d > 0.3 for d in diffs)
        lines.append(f"{label}: {len(diffs)}; F1 new - old: {100 * mean:+.1f} (95 % bootstrap interval "
                     f"{100 * lo:+.1f} to {100 * hi:+.1f}); worse on {worse}, better on {better}")
    unanswerable = [(o, n) for o, n in both if not n["answerable"]]
    if unanswerable:
        caught_old = sum(bool(o["abstained"]) for o, _ in unanswerable)
        caught_new = sum(bool(n["abstained"]) for _, n in unanswerable)
        lines.append(f"unanswerable questions caught: {caught_old} -> {caught_new} of {len(unanswerable)}")
    return lines


def main(old_path: str, new_path: str) -> int:
    with open(old_path, encoding="utf-8") as f:
        old = json.load(f)["items"]
    with open(new_path, encoding="utf-8") as f:
        new = json.load(f)["items"]
    lines = compare(old, new)
    print("\n".join(lines))
    return 1 if lines == ["no questions in common"] else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
