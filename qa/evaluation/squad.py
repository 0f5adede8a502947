"""Reader-only evaluation on a SQuAD-format file (v1.1 or v2.0) with the official metrics.

Each question is given its own paragraph as the only context, so this measures the reader alone,
without retrieval. SQuAD v2.0 questions marked ``is_impossible`` expect an abstention (the empty
answer), as in the official v2.0 script: gold answers that normalise to nothing are dropped and a
question with none left has the single gold answer "". Reported: ``exact``, ``f1`` (percent, over
all questions) and, when both kinds occur, ``HasAns_*`` and ``NoAns_*`` breakdowns.

Also reported (:func:`evaluate_squad`): ``forced_exact``/``forced_f1`` (the best span even where the
reader abstained), ``coverage_answerable`` (percent of the answerable questions answered), the
no-answer precision/recall/accuracy of :func:`qa.evaluation.metrics.no_answer_metrics` (on a v1.1
file every question is answerable: no-answer accuracy is then the coverage), and the selective-QA
metrics of :mod:`qa.evaluation.selective` (confidence = the best guess's score, correct = answerable
and forced F1 >= 0.5): ``auroc_correct``, ``auroc_answerable``, ``aurc``,
``coverage_at_90_precision``, ``ece``; the reliability bins and the risk-coverage curve are under
``selective``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.evaluation.metrics import no_answer_metrics, percentile
from qa.evaluation.selective import (
    confidence_and_guess,
    guess_correctness,
    reliability_bins,
    risk_coverage_curve,
    selective_metrics,
    thin_curve,
)
from qa.metrics import exact_match, f1, normalize_answer
from qa.squad_data import read_squad


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    title: str
    question: str
    context: str
    answers: tuple[str, ...] = field(default_factory=tuple)
    is_impossible: bool = False

    @property
    def gold(self) -> list[str]:
        """Gold answers as the official v2.0 script takes them ([""] for an impossible question)."""
        golds = [a for a in self.answers if normalize_answer(a)]
        return golds if golds and not self.is_impossible else [""]


def load_squad_file(path: str | Path, limit: int | None = None) -> tuple[str, list[SquadQuestion]]:
    """(version, questions in file order) of a SQuAD v1.1/v2.0 JSON file; at most ``limit``. Read by
    the project's one loader, :func:`qa.squad_data.read_squad` (its ``is_impossible`` rule); the whole
    file is checked first and a repeated question id is refused (scores are kept by id)."""
    version, items = read_squad(path, limit=limit, unique_ids=True)
    return version, [SquadQuestion(id=i.id, title=i.title, question=i.question, context=i.context,
                                   answers=i.answer_texts, is_impossible=i.is_impossible) for i in items]


def squad_scores(predictions: dict[str, str], questions: Sequence[SquadQuestion]) -> dict[str, Any]:
    """Official EM/F1 (percent); a question with no prediction scores as an abstention ("")."""
    def mean(xs: list[float]) -> float:
        return 100.0 * sum(xs) / len(xs)

    em_all, f1_all, em_has, f1_has, em_no, f1_no = [], [], [], [], [], []
    for q in questions:
        pred = predictions.get(q.id, "")
        golds = q.gold
        e = max(exact_match(pred, g) for g in golds)
        f = max(f1(pred, g) for g in golds)
        em_all.append(e)
        f1_all.append(f)
        if golds == [""]:
            em_no.append(e)
            f1_no.append(f)
        else:
            em_has.append(e)
            f1_has.append(f)
    if not questions:
        return {"exact": 0.0, "f1": 0.0, "total": 0}
    out: dict[str, Any] = {"exact": mean(em_all), "f1": mean(f1_all), "total": len(questions)}
    if em_has and em_no:
        out.update({"HasAns_exact": mean(em_has), "HasAns_f1": mean(f1_has), "HasAns_total": len(em_has),
                    "NoAns_exact": mean(em_no), "NoAns_f1": mean(f1_no), "NoAns_total": len(em_no)})
    return out


def prediction_text(output: Any, forced: bool = False) -> str:
    """The reader's best answer text, or "" when it abstains.

    Understands the reader's ``ReaderOutput`` (``answer_found`` plus ``answers``/``spans`` whose
    first item has ``text``) and, leniently, a plain string or None. ``forced``: the best span
    even when the reader abstains (``ReaderOutput.best_guess``), as SQuAD v1.1 expects an answer.
    """
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    if forced:
        guess = getattr(output, "best_guess", None)
        if guess is not None:
            return str(getattr(guess, "text", ""))
    if getattr(output, "answer_found", True) is False:
        return ""
    for name in ("answers", "spans", "candidates"):
        seq = getattr(output, name, None)
        if seq:
            first = seq[0]
            return first if isinstance(first, str) else str(getattr(first, "text", ""))
    text = getattr(output, "text", None)
    return text or ""


def predict_squad_records(
    read: Callable[[str, list[tuple[str, str]]], Any],
    questions: Sequence[SquadQuestion],
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run ``read(question, [(context_id, context)])`` for every question; per question: ``id``,
    ``prediction`` (as served, "" when abstaining), ``forced`` (best span even when abstaining),
    ``confidence`` (the best guess's score, 0 when none) and ``latency_ms``."""
    records: list[dict[str, Any]] = []
    iterator: Any = questions
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(questions, desc="qa eval --squad", unit="q", leave=False)
    for q in iterator:
        t0 = time.perf_counter()
        output = read(q.question, [(q.id, q.context)])
        latency = (time.perf_counter() - t0) * 1000.0
        confidence = 0.0 if output is None or isinstance(output, str) else confidence_and_guess(output)[0]
        records.append({"id": q.id, "prediction": prediction_text(output),
                        "forced": prediction_text(output, forced=True), "confidence": confidence,
                        "latency_ms": latency})
    return records


def predict_squad(
    read: Callable[[str, list[tuple[str, str]]], Any],
    questions: Sequence[SquadQuestion],
    progress: bool = True,
) -> tuple[dict[str, str], list[float], dict[str, str]]:
    """Run ``read(question, [(context_id, context)])`` for every question:
    (predictions as served, latencies ms, forced predictions = best span even when abstaining)."""
    records = predict_squad_records(read, questions, progress)
    return ({r["id"]: r["prediction"] for r in records}, [r["latency_ms"] for r in records],
            {r["id"]: r["forced"] for r in records})


def selective_squad(questions: Sequence[SquadQuestion], records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Coverage, no-answer and selective-QA metrics of reader-only predictions (module docstring).
    Adds ``guess_f1`` and ``correct`` to every record."""
    by_id = {r["id"]: r for r in records}
    answerable_flags, abstained, confidences, correct = [], [], [], []
    for q in questions:
        r = by_id[q.id]
        answerable = q.gold != [""]
        guess_f1, ok = guess_correctness(r["forced"], q.gold if answerable else [])
        r["guess_f1"], r["correct"] = guess_f1, ok
        answerable_flags.append(answerable)
        abstained.append(not r["prediction"])
        confidences.append(float(r["confidence"]))
        correct.append(ok)
    answered_answerable = [not a for a, ans in zip(abstained, answerable_flags) if ans]
    out: dict[str, Any] = {
        "coverage": 100.0 * sum(1 for a in abstained if not a) / len(abstained) if abstained else None,
        "coverage_answerable": (100.0 * sum(1 for x in answered_answerable if x) / len(answered_answerable)
                                if answered_answerable else None),
    }
    out.update(no_answer_metrics(abstained, [not a for a in answerable_flags]))
    out.update(selective_metrics(confidences, correct, answerable_flags))
    curves = {"reliability": reliability_bins(confidences, correct),
              "risk_coverage": thin_curve(risk_coverage_curve(confidences, correct))}
    return {"scores": out, "selective": curves}


def evaluate_squad(reader: Any, path: str | Path, limit: int | None = None,
                   progress: bool = True,
                   loaded: tuple[str, list[SquadQuestion]] | None = None) -> dict[str, Any]:
    """Score ``reader`` (``read_contexts(question, contexts)``) on a SQuAD file.

    ``scores``: the official metrics of the answers as served (an abstention is the empty answer),
    plus ``forced_exact``/``forced_f1`` of the best span even where the reader abstained (the
    figure comparable with published SQuAD v1.1 results), abstention rate and latency percentiles.
    ``loaded``: ``load_squad_file(path, limit)`` already done (the CLI checks the file before it
    loads the reader).
    """
    version, questions = loaded if loaded is not None else load_squad_file(path, limit)
    records = predict_squad_records(reader.read_contexts, questions, progress=progress)
    preds = {r["id"]: r["prediction"] for r in records}
    forced = {r["id"]: r["forced"] for r in records}
    latencies = [r["latency_ms"] for r in records]
    scores = squad_scores(preds, questions)
    forced_scores = squad_scores(forced, questions)
    scores["forced_exact"] = forced_scores["exact"]
    scores["forced_f1"] = forced_scores["f1"]
    scores["abstained"] = 100.0 * sum(1 for v in preds.values() if not v) / len(preds) if preds else 0.0
    scores["latency_p50_ms"] = percentile(latencies, 50)
    scores["latency_p95_ms"] = percentile(latencies, 95)
    selective = selective_squad(questions, records)
    scores.update(selective["scores"])
    return {"file": str(path), "version": version, "limit": limit, "scores": scores,
            "selective": selective["selective"], "predictions": preds, "items": records}
