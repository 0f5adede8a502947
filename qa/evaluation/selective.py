"""Selective question answering: how well the service's confidence separates right from wrong answers.

Plain functions over plain lists (no models, no numpy needed). Per question the evaluation records

* **confidence** - the score of the best guess: ``AskResult.best_guess.score`` (the top candidate
  whether or not the service answered), else ``answers[0].score``, else 0 when nothing was found.
  Once the verifier ships this is the calibrated P(correct).
* **correct** - the question is answerable AND the best guess's SQuAD token F1 against the gold
  answers is >= 0.5 (:data:`CORRECT_F1`). An unanswerable question's guess is always wrong: the
  only right response there is to abstain, so a good confidence should be low.

Over a list of (confidence, correct) pairs:

* **AUROC right-vs-wrong** (``auroc_correct``, 0-1) - probability that a random correct question has
  a higher confidence than a random wrong one, ties counted half (Mann-Whitney U / (n_pos * n_neg),
  computed with mid-ranks; equal to ``sklearn.metrics.roc_auc_score``). None when either class is
  empty. 0.5 = confidence carries no information.
* **AUROC answerable-vs-unanswerable** (``auroc_answerable``, 0-1) - the same with "answerable" as
  the positive class and the confidence as its score.
* **risk-coverage curve** - questions sorted by confidence, highest first; answering the top ``i``
  gives coverage ``i/n`` and risk = share of wrong answers among those ``i``. Questions with equal
  confidence cannot be separated by a threshold: the curve's points are taken at the ends of tie
  groups only, and inside a tie group the risk of a prefix is its expected value over the orders of
  the tied questions (errors before the group + j * wrong_in_group / group_size).
* **AURC** (``aurc``, 0-1, lower is better) - area under the risk-coverage curve as defined by
  Geifman & El-Yaniv (2017, "Selective classification for deep neural networks"; Geifman et al.
  2019): the mean of the risks of the ``n`` prefixes, ``AURC = (1/n) * sum_{i=1..n} risk(i)``, with
  the expected risk inside tie groups as above. The AURC of an oracle ordering (every correct
  answer first; about ``r + (1-r) ln(1-r)`` for overall risk ``r``) is reported as ``aurc_optimal``.
* **coverage at 90% precision** (``coverage_at_90_precision``, percent) - the largest coverage,
  over thresholds that a confidence cut can realise (ends of tie groups), whose covered precision
  (1 - risk) is >= 0.9; 0 when no threshold reaches it (and for an empty list).
* **ECE** (``ece``, 0-1) - expected calibration error with 10 equal-width bins over [0, 1]
  (bin ``b`` holds ``b/10 <= c < (b+1)/10``, confidence 1.0 in the last bin, confidences clipped to
  [0, 1]): ``ECE = sum_b n_b/n * |acc_b - conf_b|`` with ``acc_b`` the share correct and ``conf_b``
  the mean confidence of bin ``b``. The **reliability bins** list ``count``, mean ``confidence`` and
  ``accuracy`` per bin (None for an empty bin).
* **ECE of a calibrated score on the same confidences** (``ece_calibrated_median``, ``ece_calibrated_p90``,
  0-1) - ECE is biased upwards on a finite set: even a score that *is* P(correct) shows an ECE above 0, larger
  the fewer the questions (each bin's accuracy is a sample). Drawing every question's correctness as a coin
  with its own confidence as the probability (:data:`ECE_DRAWS` seeded draws) gives the ECE a perfectly
  calibrated score would show on these confidences: its median and 90th percentile. ``ece_p_value`` is the
  share of those draws with an ECE at least the measured one: small (say < 0.05) means the miscalibration is
  real, large means this set cannot tell the score from a calibrated one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from qa.metrics import best_over, f1

CORRECT_F1 = 0.5  # a best guess counts as correct at token F1 >= this against the gold answers
N_BINS = 10
PRECISION_TARGET = 0.9
ECE_DRAWS = 1000  # simulated label draws for the ECE of a calibrated score (ece_if_calibrated)


# ---------------------------------------------------------------------------------------------
# per question


def confidence_and_guess(result: Any) -> tuple[float, str]:
    """(confidence, guess text) of an ``AskResult``-like object (see the module docstring)."""
    guess = getattr(result, "best_guess", None)
    if guess is None:
        answers = list(getattr(result, "answers", None) or [])
        guess = answers[0] if answers else None
    if guess is None:
        return 0.0, ""
    score = getattr(guess, "score", None)
    return (0.0 if score is None else float(score)), str(getattr(guess, "text", "") or "")


def guess_correctness(guess: str, answers: Sequence[str]) -> tuple[float, bool]:
    """(token F1 of the guess, correct) against the gold answers; ``answers == []`` is unanswerable
    and then the guess is wrong (F1 0) whatever it says."""
    if not answers:
        return 0.0, False
    score = best_over(f1, guess, answers)
    return score, score >= CORRECT_F1


# ---------------------------------------------------------------------------------------------
# ranking


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve of ``scores`` for the positive class ``labels``, ties counted half.
    None when there is no positive or no negative."""
    if len(scores) != len(labels):
        raise ValueError("scores and labels must have the same length")
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        mid = (i + j) / 2.0 + 1.0  # 1-based mid-rank of the tie group
        for t in range(i, j + 1):
            ranks[order[t]] = mid
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, labels) if y)
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def _tie_groups(confidences: Sequence[float], correct: Sequence[bool]) -> list[tuple[float, int, int]]:
    """(confidence, size, wrong) of each group of equal confidence, highest confidence first."""
    if len(confidences) != len(correct):
        raise ValueError("confidences and correct must have the same length")
    pairs = sorted(zip(confidences, correct), key=lambda p: -p[0])
    groups: list[tuple[float, int, int]] = []
    for c, ok in pairs:
        if groups and groups[-1][0] == c:
            conf, size, wrong = groups[-1]
            groups[-1] = (conf, size + 1, wrong + (0 if ok else 1))
        else:
            groups.append((c, 1, 0 if ok else 1))
    return groups


def risk_coverage_curve(confidences: Sequence[float], correct: Sequence[bool]) -> list[dict[str, float]]:
    """Points (``coverage``, ``risk``, ``threshold``) at the end of every tie group, highest
    confidence first: answering every question with confidence >= ``threshold`` covers
    ``coverage`` (0-1) of them with ``risk`` (0-1) wrong among those."""
    n = len(confidences)
    points: list[dict[str, float]] = []
    covered = wrong = 0
    for conf, size, w in _tie_groups(confidences, correct):
        covered += size
        wrong += w
        points.append({"coverage": covered / n, "risk": wrong / covered, "threshold": conf})
    return points


def aurc(confidences: Sequence[float], correct: Sequence[bool]) -> float | None:
    """Area under the risk-coverage curve: mean over the n prefixes of the risk (expected value
    inside tie groups). None for an empty list."""
    n = len(confidences)
    if n == 0:
        return None
    total = 0.0
    covered = 0
    wrong_before = 0
    for _conf, size, w in _tie_groups(confidences, correct):
        for j in range(1, size + 1):
            total += (wrong_before + j * w / size) / (covered + j)
        covered += size
        wrong_before += w
    return total / n


def optimal_aurc(correct: Sequence[bool]) -> float | None:
    """AURC of an oracle ordering (every correct answer first): ``mean_i max(0, i - n_correct) / i``."""
    n = len(correct)
    if n == 0:
        return None
    n_ok = sum(1 for c in correct if c)
    return sum(max(0, i - n_ok) / i for i in range(1, n + 1)) / n


def coverage_at_precision(confidences: Sequence[float], correct: Sequence[bool],
                          precision: float = PRECISION_TARGET) -> float:
    """Largest coverage (0-1) at a realisable threshold whose covered precision is >= ``precision``;
    0.0 if none (or nothing to cover)."""
    best = 0.0
    for point in risk_coverage_curve(confidences, correct):
        # a tolerance so that 9 right out of 10 counts as 90% despite float rounding
        if 1.0 - point["risk"] >= precision - 1e-12:
            best = max(best, point["coverage"])
    return best


# ---------------------------------------------------------------------------------------------
# calibration


def _bin_of(c: float, n_bins: int) -> int:
    return min(n_bins - 1, max(0, int(math.floor(c * n_bins))))


def reliability_bins(confidences: Sequence[float], correct: Sequence[bool],
                     n_bins: int = N_BINS) -> list[dict[str, Any]]:
    """Per equal-width bin: ``lo``, ``hi``, ``count``, mean ``confidence`` and ``accuracy`` (0-1;
    None when the bin is empty)."""
    if len(confidences) != len(correct):
        raise ValueError("confidences and correct must have the same length")
    counts = [0] * n_bins
    conf_sum = [0.0] * n_bins
    ok_sum = [0] * n_bins
    for c, ok in zip(confidences, correct):
        c = min(1.0, max(0.0, float(c)))
        b = _bin_of(c, n_bins)
        counts[b] += 1
        conf_sum[b] += c
        ok_sum[b] += 1 if ok else 0
    return [{"lo": b / n_bins, "hi": (b + 1) / n_bins, "count": counts[b],
             "confidence": conf_sum[b] / counts[b] if counts[b] else None,
             "accuracy": ok_sum[b] / counts[b] if counts[b] else None} for b in range(n_bins)]


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool],
                               n_bins: int = N_BINS) -> float | None:
    """ECE = sum_b n_b/n * |acc_b - conf_b| over equal-width bins; None for an empty list."""
    n = len(confidences)
    if n == 0:
        return None
    bins = reliability_bins(confidences, correct, n_bins)
    return sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"])


def ece_if_calibrated(confidences: Sequence[float], observed: float | None = None, n_bins: int = N_BINS,
                      draws: int = ECE_DRAWS, seed: int = 0) -> dict[str, float] | None:
    """The ECE a perfectly calibrated score would show on ``confidences``: each question correct with
    probability its confidence, ``draws`` seeded draws. ``median`` and ``p90`` of those ECEs, and with
    ``observed`` (the measured ECE) ``p_value``, the share of draws whose ECE is >= it. None for an empty list."""
    import random

    n = len(confidences)
    if n == 0 or draws < 1:
        return None
    clipped = [min(1.0, max(0.0, float(c))) for c in confidences]
    bins = [_bin_of(c, n_bins) for c in clipped]
    counts = [0] * n_bins
    conf_sum = [0.0] * n_bins
    for c, b in zip(clipped, bins):
        counts[b] += 1
        conf_sum[b] += c
    rng = random.Random(seed)
    eces = []
    for _ in range(draws):
        ok = [0] * n_bins
        for c, b in zip(clipped, bins):
            if rng.random() < c:
                ok[b] += 1
        eces.append(sum(abs(ok[b] - conf_sum[b]) for b in range(n_bins) if counts[b]) / n)
    eces.sort()
    out = {"median": eces[(draws - 1) // 2] if draws % 2 else (eces[draws // 2 - 1] + eces[draws // 2]) / 2,
           "p90": eces[min(draws - 1, math.ceil(0.9 * draws) - 1)]}
    if observed is not None:
        out["p_value"] = sum(1 for e in eces if e >= observed - 1e-12) / draws
    return out


# ---------------------------------------------------------------------------------------------
# all together


def selective_metrics(confidences: Sequence[float], correct: Sequence[bool],
                      answerable: Sequence[bool] | None = None) -> dict[str, Any]:
    """The scalar selective-QA metrics of a list of questions (see the module docstring):
    ``auroc_correct``, ``auroc_answerable`` (when ``answerable`` is given), ``aurc``,
    ``aurc_optimal``, ``coverage_at_90_precision`` (percent), ``ece`` with ``ece_calibrated_median``,
    ``ece_calibrated_p90`` and ``ece_p_value`` (:func:`ece_if_calibrated`), ``accuracy_guess`` (percent of
    best guesses correct) and ``mean_confidence``."""
    n = len(confidences)
    ece = expected_calibration_error(confidences, correct)
    floor = ece_if_calibrated(confidences, ece) or {}
    out: dict[str, Any] = {
        "auroc_correct": auroc(confidences, correct),
        "auroc_answerable": auroc(confidences, answerable) if answerable is not None else None,
        "aurc": aurc(confidences, correct),
        "aurc_optimal": optimal_aurc(correct),
        "coverage_at_90_precision": 100.0 * coverage_at_precision(confidences, correct),
        "ece": ece,
        "ece_calibrated_median": floor.get("median"),
        "ece_calibrated_p90": floor.get("p90"),
        "ece_p_value": floor.get("p_value"),
        "accuracy_guess": 100.0 * sum(1 for c in correct if c) / n if n else None,
        "mean_confidence": sum(confidences) / n if n else None,
    }
    return out


def thin_curve(points: Sequence[dict[str, float]], max_points: int = 200) -> list[dict[str, float]]:
    """At most ``max_points`` evenly spaced points of a curve (always keeping the last)."""
    if len(points) <= max_points:
        return list(points)
    step = len(points) / max_points
    picked = [points[min(len(points) - 1, int(i * step))] for i in range(max_points)]
    if picked[-1] is not points[-1]:
        picked[-1] = points[-1]
    return picked
