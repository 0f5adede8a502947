"""Features of a candidate answer that say whether it is right.

Two feature sets: ``FULL`` (the pipeline: the reader's scores plus retrieval ranks and scores) and ``READER``
(the reader alone on given passages, e.g. ``qa eval --squad``: no retrieval). Every feature is a float; the
same function computes them at training and at serving time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from qa.metrics import normalize_answer

READER = [
    "span_logit",  # logit of the best citation's span probability (shared softmax over all windows)
    "support_logit",  # logit of the answer's support (noisy-or over independent sources)
    "mass_logit",  # logit of the summed probability of all its places (a story's copies split one answer's mass)
    "null_logit",  # logit of the question's null probability
    "margin",  # support minus the best other answer's support (negative below the top answer)
    "rank",  # 0 for the top answer by support
    "sources",  # independent sources (documents after near-duplicate merging)
    "documents",
    "agree",  # share of read passages whose own best span is this answer
    "answer_words",
    "answer_in_question",  # share of the answer's words that the question already contains
    "has_digit",
    "passages",  # passages read
]
FULL = READER + [
    "passage_rank",  # retrieval rank of the passage of the best citation (k+1 when unknown)
    "passage_dense",  # its dense (cosine) score
    "passage_bm25_rel",  # its BM25 score / the best BM25 score retrieved
    "top_dense",  # best dense score retrieved (is anything relevant at all?)
    "top_bm25_log",  # log1p(best BM25 score retrieved)
    "evidence_top",  # 1 when the best citation lies in the first retrieved passage
]

_EPS = 1e-6
_WORD = re.compile(r"\w+", re.UNICODE)


def logit(p: float) -> float:
    p = min(max(float(p), _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


def answer_features(groups: Sequence[Any], index: int, null_prob: float, question: str, answer_text: str,
                    passage_best_keys: Sequence[str | None], passages: Sequence[Any] | None = None) -> dict[str, float]:
    """Features of ``groups[index]`` (an :class:`qa.reader.aggregate.AnswerGroup`; groups sorted by support).
    ``passages``: the retrieved passages (``qa.types.Passage``) when the pipeline retrieved them."""
    g = groups[index]
    others = [x.support for i, x in enumerate(groups) if i != index]
    best_other = max(others) if others else 0.0
    words = [w.lower() for w in _WORD.findall(answer_text)]
    qwords = {w.lower() for w in _WORD.findall(question)}
    read = [k for k in passage_best_keys]
    f = {
        "span_logit": logit(g.best.prob),
        "support_logit": logit(g.support),
        "mass_logit": logit(g.mass),
        "null_logit": logit(null_prob),
        "margin": g.support - best_other,
        "rank": float(index),
        "sources": float(g.sources),
        "documents": float(g.documents),
        "agree": (sum(1 for k in read if k == g.key) / len(read)) if read else 0.0,
        "answer_words": float(len(words)),
        "answer_in_question": (sum(1 for w in words if w in qwords) / len(words)) if words else 0.0,
        "has_digit": 1.0 if any(ch.isdigit() for ch in answer_text) else 0.0,
        "passages": float(len(read)),
    }
    if passages is not None:
        k = len(passages)
        pi = g.best.passage
        p = passages[pi] if 0 <= pi < k else None
        dense = [float(x.scores.get("dense", 0.0)) for x in passages]
        bm25 = [float(x.scores.get("bm25", 0.0)) for x in passages]
        top_bm25 = max(bm25) if bm25 else 0.0
        f.update({
            "passage_rank": float(p.rank if p is not None else k + 1),
            "passage_dense": float(p.scores.get("dense", 0.0)) if p is not None else 0.0,
            "passage_bm25_rel": (float(p.scores.get("bm25", 0.0)) / top_bm25) if (p is not None and top_bm25 > 0) else 0.0,
            "top_dense": max(dense) if dense else 0.0,
            "top_bm25_log": math.log1p(max(0.0, top_bm25)),
            "evidence_top": 1.0 if pi == 0 else 0.0,
        })
    return f


def key_of(text: str) -> str:
    return normalize_answer(text) or text.strip().lower()
