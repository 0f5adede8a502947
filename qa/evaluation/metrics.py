"""Evaluation metrics as plain functions over plain values, plus per-item scoring of an AskResult.

Definitions (all rates in percent, MRR in 0-1):

* **recall@k** - share of answerable questions for which at least one of the top ``k`` retrieved
  passages overlaps an evidence span (same document, at least one shared character).
* **MRR** - mean over answerable questions of 1 / rank of the first passage overlapping evidence
  (0 when none of the returned passages does).
* **EM / F1** - SQuAD v1.1 exact match and token F1 (:mod:`qa.metrics`) of the top answer, best over
  the acceptable answers. An abstention is the empty prediction: on an unanswerable question it
  scores 1 (correct), on an answerable one 0; any answer to an unanswerable question scores 0.
* **citation accuracy** - share of answered answerable questions whose top answer's cited span
  overlaps an evidence span.
* **citation validity** - share of answered questions where every answer's span and every
  citation slice exactly to their text in the document (``text[start:end] == citation.text``),
  the citation text is the answer (same after SQuAD normalisation) and the context slices too.
  Must be 100%.
* **no-answer precision / recall / accuracy** - positive class "abstained": precision = correct
  abstentions / abstentions, recall = correct abstentions / unanswerable questions, accuracy =
  share of questions where (abstained) == (unanswerable).
* **errors** - questions whose ``ask`` raised (:func:`failed_item`): they count in every rate and are
  always wrong (EM = F1 = 0 even when unanswerable; for the no-answer metrics, an abstention on an
  answerable question and an answer on an unanswerable one); ``qa eval`` exits 1 when there are any.
* **latency p50 / p95** - percentiles (linear interpolation) of the wall time of each ``ask``.
* **coverage** - share of questions answered (not abstained); **coverage (answerable)** - share of
  the answerable questions answered.

Selective-QA metrics (definitions in :mod:`qa.evaluation.selective`): every question's
*confidence* is the score of its best guess (``AskResult.best_guess``, else the top answer, else 0)
and the guess is *correct* when the question is answerable and the guess's token F1 >= 0.5. Over
those: ``auroc_correct`` (right vs wrong) and ``auroc_answerable`` (answerable vs unanswerable),
0-1, ties counted half, None when one class is empty; ``aurc`` (area under the risk-coverage
curve, mean risk over the n prefixes, 0-1, lower is better); ``coverage_at_90_precision`` (percent);
``ece`` (10 equal-width bins, 0-1). The report also keeps the reliability bins and the
risk-coverage curve (``EvalReport.selective``).

The same aggregates serve ``qa eval --open-squad FILE [--remove-articles N] [--limit Q] [--seed S]
[--workdir DIR]`` (:mod:`qa.evaluation.open_squad`: SQuAD articles as documents, every question through
the whole pipeline; questions of removed articles are unanswerable, typed ``removed``, the others
``present``, so the per-type tables split the two). ``qa eval --squad FILE`` (the reader alone,
:mod:`qa.evaluation.squad`) reports coverage of the answerable questions, the no-answer metrics and
the same selective metrics. Commands, definitions and measured figures: docs/evaluation.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from qa.evaluation.dataset import EvalItem, EvidenceSpan
from qa.evaluation.selective import confidence_and_guess, guess_correctness, selective_metrics
from qa.metrics import best_over, exact_match, f1, normalize_answer

# ---------------------------------------------------------------------------------------------
# plain functions


def overlaps_any(document: str, start: int, end: int, evidence: Iterable[EvidenceSpan]) -> bool:
    return any(ev.overlaps(document, start, end) for ev in evidence)


def first_hit_rank(passages: Sequence[Any], evidence: Sequence[EvidenceSpan]) -> int | None:
    """1-based rank of the first passage (anything with document/start/end) overlapping evidence."""
    for position, p in enumerate(passages, start=1):
        doc, start, end = _span_of(p)
        if overlaps_any(doc, start, end, evidence):
            return position
    return None


def _span_of(p: Any) -> tuple[str, int, int]:
    chunk = getattr(p, "chunk", None)  # qa.types.Passage
    src = chunk if chunk is not None else p
    return src.document, src.start, src.end


def recall_at_k(hit_ranks: Sequence[int | None], k: int) -> float | None:
    """Percent of questions whose first evidence-overlapping passage is within the top ``k``."""
    if not hit_ranks:
        return None
    return 100.0 * sum(1 for r in hit_ranks if r is not None and r <= k) / len(hit_ranks)


def mean_reciprocal_rank(hit_ranks: Sequence[int | None]) -> float | None:
    if not hit_ranks:
        return None
    return sum(1.0 / r for r in hit_ranks if r) / len(hit_ranks)


def answer_em_f1(prediction: str, answers: Sequence[str]) -> tuple[float, float]:
    """EM and F1 (0-1) of one prediction; ``prediction == ""`` is an abstention and
    ``answers == []`` an unanswerable question."""
    return best_over(exact_match, prediction, answers), best_over(f1, prediction, answers)


def no_answer_metrics(abstained: Sequence[bool], unanswerable: Sequence[bool]) -> dict[str, float | None]:
    """Precision, recall and accuracy (percent) of abstaining, positive class = abstained."""
    if len(abstained) != len(unanswerable):
        raise ValueError("abstained and unanswerable must have the same length")
    n = len(abstained)
    correct = sum(1 for a, u in zip(abstained, unanswerable) if a and u)
    n_abstained = sum(1 for a in abstained if a)
    n_unanswerable = sum(1 for u in unanswerable if u)
    agree = sum(1 for a, u in zip(abstained, unanswerable) if a == u)
    return {
        "no_answer_precision": 100.0 * correct / n_abstained if n_abstained else None,
        "no_answer_recall": 100.0 * correct / n_unanswerable if n_unanswerable else None,
        "no_answer_accuracy": 100.0 * agree / n if n else None,
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError("q must be in [0, 100]")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def citation_errors(answer: Any, document_text: Callable[[str], str]) -> list[str]:
    """Why an answer's spans do not slice to their text (empty list: valid).

    Checks every citation: ``text[start:end] == citation.text``, the citation text equals the answer
    text after SQuAD normalisation (the first citation: exactly), and the context slices too.
    """
    errors: list[str] = []

    def text_of(doc: str) -> str | None:
        try:
            return document_text(doc)
        except Exception as exc:  # unknown document
            errors.append(f"document {doc!r} cannot be read: {exc}")
            return None

    citations = list(getattr(answer, "citations", []) or [])
    if not citations:
        errors.append("answer has no citation")
    elif citations[0].text != answer.text:
        errors.append(f"answer text {answer.text!r} is not its first citation's {citations[0].text!r}")
    for c in citations:
        t = text_of(c.document)
        if t is None:
            continue
        if t[c.start : c.end] != c.text:
            errors.append(f"citation {c.document}[{c.start}:{c.end}] is {t[c.start:c.end]!r}, not {c.text!r}")
        if normalize_answer(c.text) != normalize_answer(answer.text):
            errors.append(f"citation text {c.text!r} is not the answer {answer.text!r}")
        ctx_start = getattr(c, "context_start", None)
        if ctx_start is not None:
            if t[c.context_start : c.context_end] != c.context:
                errors.append(f"citation context {c.document}[{c.context_start}:{c.context_end}] does not slice")
            elif not (c.context_start <= c.start and c.end <= c.context_end):
                errors.append(f"citation {c.document}[{c.start}:{c.end}] is outside its context")
    return errors


# ---------------------------------------------------------------------------------------------
# per-item scoring


@dataclass
class ItemResult:
    id: str
    question: str
    type: str
    answers: list[str]
    answerable: bool
    abstained: bool
    prediction: str
    score: float | None
    no_answer_score: float | None
    em: float
    f1: float
    hit_rank: int | None  # first passage overlapping evidence (answerable items only)
    n_passages: int
    citation_correct: bool | None  # answered answerable items only
    citation_valid: bool | None  # answered items only
    citation_errors: list[str] = field(default_factory=list)
    latency_ms: float = 0.0
    cited: dict | None = None  # the top answer's citation: document, start, end, context
    top_passage: dict | None = None
    error: str | None = None
    # selective QA: the best guess whether or not the service answered (qa.evaluation.selective)
    confidence: float = 0.0  # its score (0 when nothing was found)
    guess: str = ""
    guess_f1: float = 0.0  # token F1 against the gold answers (0 for unanswerable questions)
    guess_correct: bool = False  # answerable and guess_f1 >= 0.5

    def to_dict(self) -> dict:
        return asdict(self)


def score_item(
    item: EvalItem, result: Any, document_text: Callable[[str], str], latency_ms: float
) -> ItemResult:
    """Score one pipeline ``AskResult`` against an evaluation item."""
    answers = list(getattr(result, "answers", []) or [])
    abstained = not bool(getattr(result, "answer_found", False)) or not answers
    top = None if abstained else answers[0]
    prediction = "" if top is None else top.text
    em, f = answer_em_f1(prediction, item.answers)
    passages = list(getattr(result, "passages", []) or [])
    hit = first_hit_rank(passages, item.evidence) if item.answerable else None

    cited = None
    citation_correct = None
    citation_valid = None
    errors: list[str] = []
    if top is not None:
        for a in answers:
            errors.extend(citation_errors(a, document_text))
        citation_valid = not errors
        place = top.citations[0]
        cited = {"document": place.document, "start": place.start, "end": place.end,
                 "context": getattr(place, "context", ""), "context_start": getattr(place, "context_start", None)}
        if item.answerable:
            citation_correct = overlaps_any(place.document, place.start, place.end, item.evidence)
    confidence, guess = confidence_and_guess(result)
    guess_f1, guess_correct = guess_correctness(guess, item.answers)
    top_passage = None
    if passages:
        p = passages[0]
        top_passage = {"document": p.document, "start": p.start, "end": p.end, "text": p.text}
    return ItemResult(
        id=item.id,
        question=item.question,
        type=item.type,
        answers=list(item.answers),
        answerable=item.answerable,
        abstained=abstained,
        prediction=prediction,
        score=None if top is None else float(top.score),
        no_answer_score=_float_or_none(getattr(result, "no_answer_score", None)),
        em=em,
        f1=f,
        hit_rank=hit,
        n_passages=len(passages),
        citation_correct=citation_correct,
        citation_valid=citation_valid,
        citation_errors=errors,
        latency_ms=latency_ms,
        cited=cited,
        top_passage=top_passage,
        confidence=confidence,
        guess=guess,
        guess_f1=guess_f1,
        guess_correct=guess_correct,
    )


def failed_item(item: EvalItem, error: str, latency_ms: float) -> ItemResult:
    """An item whose ``ask`` raised: nothing answered, nothing retrieved, and scored wrong whatever the
    question (EM = F1 = 0 even when it is unanswerable: a failure is not a correct abstention; the
    no-answer metrics of :func:`aggregate` count it wrong too)."""
    return ItemResult(
        id=item.id, question=item.question, type=item.type, answers=list(item.answers),
        answerable=item.answerable, abstained=True, prediction="", score=None, no_answer_score=None,
        em=0.0, f1=0.0, hit_rank=None, n_passages=0, citation_correct=None, citation_valid=None,
        latency_ms=latency_ms, error=error,
    )


def _float_or_none(x: Any) -> float | None:
    return None if x is None else float(x)


# ---------------------------------------------------------------------------------------------
# aggregation


def _pct(flags: Sequence[bool]) -> float | None:
    return 100.0 * sum(1 for x in flags if x) / len(flags) if flags else None


def recall_ks(k: int) -> list[int]:
    return sorted({x for x in (1, 3, 5, 10) if x <= k} | {k})


def aggregate(results: Sequence[ItemResult], k: int) -> dict[str, Any]:
    """All metrics over ``results``; ``k`` is the number of passages asked for (recall@k)."""
    answerable = [r for r in results if r.answerable]
    answered = [r for r in results if not r.abstained]
    answered_answerable = [r for r in answerable if not r.abstained]
    ranks = [r.hit_rank for r in answerable]
    out: dict[str, Any] = {
        "count": len(results),
        "answerable": len(answerable),
        "unanswerable": len(results) - len(answerable),
        "answered": len(answered),
        "errors": sum(1 for r in results if r.error),
        "exact_match": 100.0 * sum(r.em for r in results) / len(results) if results else None,
        "f1": 100.0 * sum(r.f1 for r in results) / len(results) if results else None,
        "exact_match_answerable": 100.0 * sum(r.em for r in answerable) / len(answerable) if answerable else None,
        "f1_answerable": 100.0 * sum(r.f1 for r in answerable) / len(answerable) if answerable else None,
    }
    for kk in recall_ks(k):
        out[f"recall@{kk}"] = recall_at_k(ranks, kk)
    out["recall@k"] = recall_at_k(ranks, k)
    out["mrr"] = mean_reciprocal_rank(ranks)
    out["citation_accuracy"] = _pct([bool(r.citation_correct) for r in answered_answerable])
    out["citation_validity"] = _pct([bool(r.citation_valid) for r in answered])
    # a question that raised counts as the wrong decision: an abstention where it was answerable, an
    # answer where it was not (it never counts as a correct abstention)
    out.update(no_answer_metrics([r.abstained if not r.error else r.answerable for r in results],
                                 [not r.answerable for r in results]))
    out["coverage"] = _pct([not r.abstained for r in results])
    out["coverage_answerable"] = _pct([not r.abstained for r in answerable])
    out.update(selective_metrics([r.confidence for r in results], [r.guess_correct for r in results],
                                 [r.answerable for r in results]))
    latencies = [r.latency_ms for r in results]
    out["latency_p50_ms"] = percentile(latencies, 50)
    out["latency_p95_ms"] = percentile(latencies, 95)
    return out


def aggregate_by_type(results: Sequence[ItemResult], k: int) -> dict[str, dict[str, Any]]:
    types = sorted({r.type for r in results})
    return {t: aggregate([r for r in results if r.type == t], k) for t in types}
