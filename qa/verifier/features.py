"""Features of a candidate answer that say whether it is right.

Two feature sets: ``FULL`` (the pipeline: the reader's scores plus retrieval ranks and scores) and ``READER``
(the reader alone on given passages, e.g. ``qa eval --squad``: no retrieval). Every feature is a float; the
same function computes them at training and at serving time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
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
    "q_in_sentence",  # share of the question's content words found in the best citation's sentence
    "q_in_sentence_max",  # the same, best over all the answer's citations
]
FULL = READER + [
    "passage_rank",  # retrieval rank of the passage of the best citation (k+1 when unknown)
    "passage_dense",  # its dense (cosine) score
    "passage_bm25_rel",  # its BM25 score / the best BM25 score retrieved
    "top_dense",  # best dense score retrieved (is anything relevant at all?)
    "top_bm25_log",  # log1p(best BM25 score retrieved)
    "evidence_top",  # 1 when the best citation lies in the first retrieved passage
    "q_in_passages",  # share of the question's content words found anywhere in the retrieved passages
]

# The direction in which each pipeline feature can move P(correct), all else equal: +1 never lowers it, -1 never
# raises it, absent = either way. The trees are fitted under these constraints (scikit-learn's ``monotonic_cst``;
# ``qa train-verifier --monotonic``): where the training rows are sparse a tree cannot learn a reversal that is
# only noise (docs/confidence.md#monotonic-trees-2026-12-07).
DIRECTIONS = {
    "span_logit": 1, "support_logit": 1, "mass_logit": 1, "null_logit": -1, "margin": 1, "rank": -1,
    "sources": 1, "agree": 1, "answer_in_question": -1, "q_in_sentence": 1, "q_in_sentence_max": 1,
    "passage_rank": -1, "passage_dense": 1, "passage_bm25_rel": 1, "top_dense": 1, "q_in_passages": 1,
}

_EPS = 1e-6
_WORD = re.compile(r"\w+", re.UNICODE)
# English function words (question words included): what carries no topic
_STOP = frozenset("""
a about above after again against all am an and any are as at be because been before being below between both but
by can could did do does doing down during each few for from further had has have having he her here hers herself
him himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or
other our ours ourselves out over own same she should so some such than that the their theirs them themselves then
there these they this those through to too under until up very was we were what when where which while who whom
whose why will with would you your yours yourself yourselves did does many much also
""".split())


def logit(p: float) -> float:
    p = min(max(float(p), _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


def content_terms(text: str) -> set[str]:
    """A text's content words, lower-cased, without function words, cut to 5 characters (a crude stem:
    "protests" and "protesters" meet, so do "arrested" and "arrests")."""
    return {w[:5] for w in (x.lower() for x in _WORD.findall(text)) if w not in _STOP and len(w) > 1}


@lru_cache(maxsize=32)
def _passages_terms(texts: tuple[str, ...]) -> frozenset[str]:
    """The content words of the retrieved passages together: the same for every answer to a question, so made
    once per question (~0.25 ms each time on ~900 words)."""
    return frozenset(content_terms(" ".join(texts)))


def coverage(question_terms: set[str], text: str) -> float:
    """Share of ``question_terms`` that occur in ``text`` (1.0 for a question with no content word)."""
    if not question_terms:
        return 1.0
    return len(question_terms & content_terms(text)) / len(question_terms)


def answer_features(groups: Sequence[Any], index: int, null_prob: float, question: str, answer_text: str,
                    passage_best_keys: Sequence[str | None], passages: Sequence[Any] | None = None,
                    sentences: Sequence[str] = ()) -> dict[str, float]:
    """Features of ``groups[index]`` (an :class:`qa.reader.aggregate.AnswerGroup`; groups sorted by support).
    ``passages``: the retrieved passages (``qa.types.Passage``) when the pipeline retrieved them.
    ``sentences``: the sentence around each of the answer's citations, best first.

    The question-coverage features catch the on-topic question the documents do not answer: the reader still
    finds a span of the right type, but the words that make the question specific ("sentence", "dog",
    "founded") are not where the span is."""
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
    qterms = content_terms(question)
    covs = [coverage(qterms, s) for s in sentences]
    f["q_in_sentence"] = covs[0] if covs else 0.0
    f["q_in_sentence_max"] = max(covs) if covs else 0.0
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
            "q_in_passages": (len(qterms & _passages_terms(tuple(x.chunk.text for x in passages))) / len(qterms)
                              if qterms else 1.0),
        })
    return f


def key_of(text: str) -> str:
    return normalize_answer(text) or text.strip().lower()
