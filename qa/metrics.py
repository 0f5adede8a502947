"""SQuAD v1.1 evaluation, as in the official script: normalise, then EM and token F1,
each the best over the reference answers."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower-case, drop punctuation, articles and extra whitespace (official v1.1 normalisation)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1(prediction: str, truth: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(truth).split()
    if not pred_tokens or not truth_tokens:
        # Both empty (e.g. a correct abstention) is a match; one empty is not.
        return float(pred_tokens == truth_tokens)
    common = Counter(pred_tokens) & Counter(truth_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def best_over(metric, prediction: str, truths: Iterable[str]) -> float:
    truths = list(truths)
    if not truths:
        return float(prediction.strip() == "")
    return max(metric(prediction, t) for t in truths)


def squad_em_f1(predictions: dict[str, str], references: dict[str, list[str]]) -> dict[str, float]:
    """EM and F1 in percent over the questions in ``references``; a missing prediction scores 0."""
    if not references:
        return {"exact_match": 0.0, "f1": 0.0, "count": 0}
    em = f = 0.0
    for qid, truths in references.items():
        pred = predictions.get(qid, "")
        em += best_over(exact_match, pred, truths)
        f += best_over(f1, pred, truths)
    n = len(references)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f / n, "count": n}
