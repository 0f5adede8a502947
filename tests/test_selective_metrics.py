"""Selective-QA metrics (qa.evaluation.selective) on tiny lists computed by hand, their wiring into
ItemResult / aggregate / reports, and the reader-only --squad figures."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from qa.evaluation import cli as eval_cli
from qa.evaluation.dataset import EvalItem, EvidenceSpan
from qa.evaluation.metrics import aggregate, score_item
from qa.evaluation.report import build_report, render_markdown, summary_table, write_report
from qa.evaluation.runner import run_pipeline
from qa.evaluation.selective import (
    aurc,
    auroc,
    confidence_and_guess,
    coverage_at_precision,
    expected_calibration_error,
    guess_correctness,
    optimal_aurc,
    reliability_bins,
    risk_coverage_curve,
    selective_metrics,
    thin_curve,
)
from qa.evaluation.squad import load_squad_file, selective_squad
from qa.types import Answer, AskResult, Citation, PassageOut

# ------------------------------------------------------------------------------ hand-computed lists

# Five questions, no ties, sorted by confidence: right, right, wrong, right, wrong.
CONF = [0.9, 0.8, 0.7, 0.6, 0.2]
OK = [True, True, False, True, False]


def test_auroc_by_hand():
    # positives {.9, .8, .6}, negatives {.7, .2}: of the 6 pairs only (.6, .7) is ordered wrongly -> 5/6
    assert auroc(CONF, OK) == pytest.approx(5 / 6)
    # the order of the input does not matter
    assert auroc(CONF[::-1], OK[::-1]) == pytest.approx(5 / 6)
    # a perfectly inverted score
    assert auroc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert auroc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0


def test_auroc_ties_count_half():
    # positives {.5, .5}, negatives {.5, .1}: two tied pairs (1/2 each) + two wins = 3 of 4
    assert auroc([0.5, 0.5, 0.5, 0.1], [True, False, True, False]) == pytest.approx(0.75)
    # every score equal: 0.5
    assert auroc([0.3] * 5, [True, False, True, False, False]) == pytest.approx(0.5)


def test_auroc_one_class_is_none():
    assert auroc([0.2, 0.9], [True, True]) is None
    assert auroc([0.2, 0.9], [False, False]) is None
    assert auroc([], []) is None
    with pytest.raises(ValueError):
        auroc([0.1], [True, False])


def test_auroc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = random.Random(7)
    for _ in range(20):
        n = rng.randint(2, 60)
        scores = [rng.choice([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1.0]) for _ in range(n)]
        labels = [rng.random() < 0.4 for _ in range(n)]
        if all(labels) or not any(labels):
            labels[0] = not labels[0]
        assert auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))


def test_risk_coverage_and_aurc_by_hand():
    # prefixes of the sorted list: risks 0/1, 0/2, 1/3, 1/4, 2/5
    curve = risk_coverage_curve(CONF, OK)
    assert [p["coverage"] for p in curve] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert [p["risk"] for p in curve] == pytest.approx([0, 0, 1 / 3, 1 / 4, 2 / 5])
    assert [p["threshold"] for p in curve] == CONF
    # AURC = mean of the 5 risks = (0 + 0 + 1/3 + 1/4 + 2/5) / 5 = 0.196666...
    assert aurc(CONF, OK) == pytest.approx((1 / 3 + 1 / 4 + 2 / 5) / 5)
    assert aurc(CONF, OK) == pytest.approx(0.1966667, abs=1e-6)
    # oracle: 3 right first -> risks 0, 0, 0, 1/4, 2/5 -> 0.13
    assert optimal_aurc(OK) == pytest.approx(0.13)
    # covered precision 1, 1, 2/3, 3/4, 3/5: the largest coverage at >= 90% is 2/5
    assert coverage_at_precision(CONF, OK) == pytest.approx(0.4)
    assert coverage_at_precision(CONF, OK, 0.7) == pytest.approx(0.8)  # 3/4 >= 0.7 at coverage 4/5


def test_risk_coverage_with_ties():
    conf = [0.5, 0.5, 0.5, 0.1]
    ok = [True, False, True, False]
    # a threshold cannot split the three tied questions: points only at coverage 3/4 and 1
    curve = risk_coverage_curve(conf, ok)
    assert [(p["coverage"], p["threshold"]) for p in curve] == [(0.75, 0.5), (1.0, 0.1)]
    assert [p["risk"] for p in curve] == pytest.approx([1 / 3, 1 / 2])
    # inside the tie group (1 wrong of 3) the expected risk of each prefix is 1/3: j * (1/3) / j;
    # the last prefix has 2 wrong of 4 -> AURC = (1/3 + 1/3 + 1/3 + 1/2) / 4 = 0.375
    assert aurc(conf, ok) == pytest.approx(0.375)
    # ... whatever the input order of the tied questions
    assert aurc([0.5, 0.5, 0.5, 0.1], [False, True, True, False]) == pytest.approx(0.375)
    assert coverage_at_precision(conf, ok) == 0.0  # 2/3 and 1/2 are below 90%
    assert coverage_at_precision(conf, ok, 0.6) == pytest.approx(0.75)


def test_coverage_at_exactly_90_percent():
    # nine right then one wrong, all confidences distinct: precision at full coverage is exactly 0.9
    conf = [1.0 - i / 20 for i in range(10)]
    ok = [True] * 9 + [False]
    assert coverage_at_precision(conf, ok) == pytest.approx(1.0)
    # the wrong one first: precision 0, 1/2, 2/3, ..., 9/10 -> only full coverage reaches 90%
    assert coverage_at_precision(conf, [False] + [True] * 9) == pytest.approx(1.0)
    # two wrong among ten: never 90% after the first wrong answer at rank 3 (2/3), and 8/10 at the end
    assert coverage_at_precision(conf, [True, True, False] + [True] * 6 + [False]) == pytest.approx(0.2)


def test_ece_and_reliability_bins_by_hand():
    # bins: .9 -> 9 (acc 1), .8 -> 8 (acc 1), .7 -> 7 (acc 0), .6 -> 6 (acc 1), .2 -> 2 (acc 0)
    # ECE = (|1-.9| + |1-.8| + |0-.7| + |1-.6| + |0-.2|) / 5 = 1.6 / 5 = 0.32
    assert expected_calibration_error(CONF, OK) == pytest.approx(0.32)
    bins = reliability_bins(CONF, OK)
    assert len(bins) == 10 and [b["count"] for b in bins] == [0, 0, 1, 0, 0, 0, 1, 1, 1, 1]
    assert bins[7] == {"lo": 0.7, "hi": 0.8, "count": 1, "confidence": pytest.approx(0.7), "accuracy": 0.0}
    assert bins[0]["confidence"] is None and bins[0]["accuracy"] is None
    # shared bins: bin 9 holds .95 (right) and .91 (wrong): mean conf .93, acc .5 -> 2/4 * .43;
    # bin 1 holds .15 and .12 (both wrong): mean conf .135, acc 0 -> 2/4 * .135. ECE = .215 + .0675 = .2825
    assert expected_calibration_error([0.95, 0.91, 0.15, 0.12], [True, False, False, False]) == pytest.approx(0.2825)


def test_ece_edges():
    # confidence 1.0 goes to the last bin; out-of-range confidences are clipped to [0, 1]
    bins = reliability_bins([1.0, 1.7, -0.2, 0.0], [True, True, False, False])
    assert bins[9]["count"] == 2 and bins[9]["confidence"] == 1.0 and bins[9]["accuracy"] == 1.0
    assert bins[0]["count"] == 2 and bins[0]["confidence"] == 0.0
    assert expected_calibration_error([1.0, 1.7, -0.2, 0.0], [True, True, False, False]) == 0.0
    # with ties: conf .5 x3 (2 right) and .1 (wrong): 3/4 * |2/3 - .5| + 1/4 * .1 = .125 + .025
    assert expected_calibration_error([0.5, 0.5, 0.5, 0.1], [True, False, True, False]) == pytest.approx(0.15)


def test_all_correct_all_wrong_empty():
    conf = [0.9, 0.4, 0.4, 0.1]
    right = selective_metrics(conf, [True] * 4, [True] * 4)
    assert right["auroc_correct"] is None and right["auroc_answerable"] is None
    assert right["aurc"] == 0.0 and right["aurc_optimal"] == 0.0
    assert right["coverage_at_90_precision"] == 100.0 and right["accuracy_guess"] == 100.0
    assert right["ece"] == pytest.approx(1 - sum(conf) / 4)  # every bin: accuracy 1, so |1 - mean conf|

    wrong = selective_metrics(conf, [False] * 4, [True, True, False, False])
    assert wrong["auroc_correct"] is None
    assert wrong["auroc_answerable"] == pytest.approx(0.875)  # {.9,.4} vs {.4,.1}: 3 wins + 1 tie of 4
    assert wrong["aurc"] == 1.0 and wrong["aurc_optimal"] == 1.0
    assert wrong["coverage_at_90_precision"] == 0.0 and wrong["accuracy_guess"] == 0.0
    assert wrong["ece"] == pytest.approx(sum(conf) / 4)

    empty = selective_metrics([], [], [])
    assert empty == {"auroc_correct": None, "auroc_answerable": None, "aurc": None, "aurc_optimal": None,
                     "coverage_at_90_precision": 0.0, "ece": None, "ece_calibrated_median": None,
                     "ece_calibrated_p90": None, "ece_p_value": None, "accuracy_guess": None,
                     "mean_confidence": None}
    assert risk_coverage_curve([], []) == [] and reliability_bins([], [])[0]["count"] == 0
    with pytest.raises(ValueError):
        risk_coverage_curve([0.1], [])


def test_thin_curve_keeps_ends():
    pts = [{"coverage": (i + 1) / 1000, "risk": 0.0, "threshold": 1 - i / 1000} for i in range(1000)]
    thin = thin_curve(pts, 50)
    assert len(thin) == 50 and thin[0] is pts[0] and thin[-1] is pts[-1]
    assert thin_curve(pts[:10], 50) == pts[:10]


# ------------------------------------------------------------------------ per question definitions


def test_guess_correctness():
    assert guess_correctness("January 2", ["January 2"]) == (1.0, True)
    f, ok = guess_correctness("on January 2", ["the second", "January 2"])  # best over the gold answers
    assert f == pytest.approx(0.8) and ok
    f, ok = guess_correctness("January 3", ["January 2"])  # F1 exactly 0.5 counts as correct
    assert f == pytest.approx(0.5) and ok
    f, ok = guess_correctness("early January 3", ["January 2"])  # F1 0.4
    assert f == pytest.approx(0.4) and not ok
    assert guess_correctness("", ["January 2"]) == (0.0, False)
    # unanswerable: whatever the guess says, it is wrong
    assert guess_correctness("Tokayev", []) == (0.0, False)
    assert guess_correctness("", []) == (0.0, False)


DOC = "Protests in Kazakhstan began on January 2. Karim Massimov was arrested for treason."


def _ans(text: str, score: float) -> Answer:
    s = DOC.index(text)
    e = s + len(text)
    cit = Citation(document="a.txt", start=s, end=e, text=text, score=score, context=DOC, context_start=0,
                   context_end=len(DOC))
    return Answer(text=text, score=score, citations=[cit])


def _ask(question: str, answers: list[Answer], guess: Answer | None) -> AskResult:
    return AskResult(question=question, answer_found=bool(answers), answers=answers,
                     passages=[PassageOut(document="a.txt", start=0, end=len(DOC), score=1.0, rank=1, text=DOC)],
                     no_answer_score=0.5, best_guess=guess)


def test_confidence_and_guess():
    a = _ans("January 2", 0.7)
    assert confidence_and_guess(_ask("q", [a], a)) == (0.7, "January 2")
    # abstained, but the best guess is still scored
    assert confidence_and_guess(_ask("q", [], _ans("treason", 0.3))) == (0.3, "treason")
    # an older result without best_guess: the top answer
    assert confidence_and_guess(_ask("q", [a], None)) == (0.7, "January 2")
    # nothing found
    assert confidence_and_guess(_ask("q", [], None)) == (0.0, "")


def _item(qid: str, question: str, answers: list[str]) -> EvalItem:
    spans = tuple(EvidenceSpan("a.txt", DOC.index(t), DOC.index(t) + len(t)) for t in answers)
    return EvalItem(qid, question, tuple(answers), spans, "answerable" if answers else "unanswerable")


ITEMS = [
    _item("q1", "When did protests begin?", ["January 2"]),
    _item("q2", "Where were protests?", ["Kazakhstan"]),
    _item("q3", "What was Massimov arrested for?", ["treason"]),
    _item("q4", "Who commanded the peacekeepers?", []),
    _item("q5", "How many were arrested?", []),
]


class GuessingPipeline:
    """q1 answered right (.9); q2 answered wrong (.8); q3 abstained with a right guess (.3);
    q4 (unanswerable) abstained with a guess (.2); q5 (unanswerable) nothing found."""

    def document_text(self, doc_id: str) -> str:
        return DOC

    def ask(self, question: str, top_k=None, max_answers=None) -> AskResult:
        if question == "When did protests begin?":
            a = _ans("January 2", 0.9)
            return _ask(question, [a], a)
        if question == "Where were protests?":
            a = _ans("Karim Massimov", 0.8)
            return _ask(question, [a], a)
        if question == "What was Massimov arrested for?":
            return _ask(question, [], _ans("treason", 0.3))
        if question == "Who commanded the peacekeepers?":
            return _ask(question, [], _ans("Karim Massimov", 0.2))
        return _ask(question, [], None)


def test_item_results_and_aggregate_by_hand():
    results = run_pipeline(GuessingPipeline(), ITEMS, progress=False)
    assert [(r.confidence, r.guess, r.guess_correct) for r in results] == [
        (0.9, "January 2", True), (0.8, "Karim Massimov", False), (0.3, "treason", True),
        (0.2, "Karim Massimov", False), (0.0, "", False)]
    assert results[2].abstained and results[2].f1 == 0.0 and results[2].guess_f1 == 1.0
    assert results[3].guess_f1 == 0.0  # unanswerable
    agg = aggregate(results, k=1)
    assert agg["coverage"] == pytest.approx(40.0)  # q1, q2 answered
    assert agg["coverage_answerable"] == pytest.approx(200 / 3)
    # right {.9, .3} vs wrong {.8, .2, 0}: .9 beats 3, .3 beats 2 -> 5/6
    assert agg["auroc_correct"] == pytest.approx(5 / 6)
    # answerable {.9, .8, .3} vs unanswerable {.2, 0}: all 6 pairs in order
    assert agg["auroc_answerable"] == pytest.approx(1.0)
    # sorted: R W R W W -> risks 0, 1/2, 1/3, 2/4, 3/5 -> AURC = 1.93333/5
    assert agg["aurc"] == pytest.approx((0 + 1 / 2 + 1 / 3 + 1 / 2 + 3 / 5) / 5)
    assert agg["coverage_at_90_precision"] == pytest.approx(20.0)
    # bins 9 (.9, 1), 8 (.8, 0), 3 (.3, 1), 2 (.2, 0), 0 (0, 0): (.1 + .8 + .7 + .2 + 0) / 5
    assert agg["ece"] == pytest.approx(0.36)
    assert agg["accuracy_guess"] == pytest.approx(40.0)


def test_failed_item_is_a_wrong_zero_confidence_guess():
    from qa.evaluation.metrics import failed_item

    r = failed_item(ITEMS[0], "boom", 1.0)
    assert (r.confidence, r.guess, r.guess_correct) == (0.0, "", False)


def test_report_shows_selective_metrics(tmp_path: Path):
    results = run_pipeline(GuessingPipeline(), ITEMS, progress=False)
    report = build_report(results, 1, {"retrieval_mode": "bm25"})
    assert [b["count"] for b in report.selective["reliability"]] == [1, 0, 1, 1, 0, 0, 0, 0, 1, 1]
    assert [p["coverage"] for p in report.selective["risk_coverage"]] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    md = render_markdown(report)
    assert "## Confidence (selective QA)" in md
    assert "| AUROC right/wrong | 0.833 |" in md and "| AURC | 0.387 |" in md
    assert "| coverage@90% precision | 20.0 |" in md and "| ECE | 0.360 |" in md
    assert "| 0.9–1.0 | 1 | 0.900 | 1.000 |" in md
    table = summary_table(report)
    for label in ("AUROC right/wrong", "AURC", "coverage@90% precision", "ECE", "coverage (answerable)"):
        assert label in table
    paths = write_report(report, tmp_path / "r")
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data["overall"]["auroc_correct"] == pytest.approx(5 / 6)
    assert len(data["selective"]["reliability"]) == 10
    assert data["items"][2]["guess"] == "treason" and data["items"][2]["guess_correct"] is True
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chart_with_no_items(tmp_path: Path):
    report = build_report([], 5, {})
    assert report.overall["aurc"] is None and report.selective["risk_coverage"] == []
    paths = write_report(report, tmp_path / "empty")
    assert paths["chart"].read_bytes()[:4] == b"\x89PNG"


def test_score_item_keeps_existing_fields():
    item = ITEMS[0]
    a = _ans("January 2", 0.9)
    r = score_item(item, _ask(item.question, [a], a), lambda d: DOC, 2.0)
    assert (r.em, r.f1, r.score, r.citation_valid, r.hit_rank) == (1.0, 1.0, 0.9, True, 1)


# ------------------------------------------------------------------------------- reader alone (--squad)

SQUAD_V2 = {
    "version": "v2.0",
    "data": [{"title": "T", "paragraphs": [{
        "context": "Karim Massimov was arrested in January for treason.",
        "qas": [
            {"id": "s1", "question": "Who was arrested?", "answers": [{"text": "Karim Massimov", "answer_start": 0}]},
            {"id": "s2", "question": "When?", "answers": [{"text": "January", "answer_start": 31}]},
            {"id": "s3", "question": "Why?", "answers": [{"text": "treason", "answer_start": 43}]},
            {"id": "s4", "question": "Who ordered it?", "answers": [], "is_impossible": True},
        ]}]}],
}


class _Span:
    def __init__(self, text: str, score: float):
        self.text, self.score = text, score


class _Out:
    def __init__(self, answer: str | None, guess: str, score: float):
        self.answer_found = answer is not None
        self.answers = [_Span(answer, score)] if answer else []
        self.best_guess = _Span(guess, score)


class ScoredReader:
    """s1 right (.9), s2 abstains with a right guess (.4), s3 answers wrong (.7), s4 (impossible)
    answers (.6)."""

    def read_contexts(self, question, contexts):
        return {"Who was arrested?": _Out("Karim Massimov", "Karim Massimov", 0.9),
                "When?": _Out(None, "January", 0.4),
                "Why?": _Out("in January", "in January", 0.7),
                "Who ordered it?": _Out("Karim", "Karim", 0.6)}[question]


def test_squad_selective_by_hand(tmp_path: Path, monkeypatch, capsys):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(SQUAD_V2), encoding="utf-8")
    monkeypatch.setattr(eval_cli, "make_reader", lambda model_dir, settings=None: ScoredReader())
    out = tmp_path / "sq"
    args = eval_cli.argparse.Namespace(files=[], json=True, out=out, mode=None, k=None, max_answers=None,
                                       squad=path, reader_dir=None, limit=None, no_progress=True,
                                       retrieval_only=False, open_squad=None)
    assert eval_cli.cmd_eval(args) == 0
    captured = capsys.readouterr()
    s = json.loads(captured.out)["scores"]
    # answerable s1, s2, s3: answered s1 and s3 -> coverage 2/3; s4 answered though impossible
    assert s["coverage_answerable"] == pytest.approx(200 / 3) and s["coverage"] == 75.0
    # (abstained) == (unanswerable) only for... none: s2 abstained but answerable, s4 answered
    assert s["no_answer_accuracy"] == pytest.approx(50.0)  # s1 and s3 agree
    # correct guesses: s1 (.9), s2 (.4); wrong: s3 (.7), s4 (.6) -> AUROC: .9 beats both, .4 none -> 2/4
    assert s["auroc_correct"] == pytest.approx(0.5)
    # answerable {.9, .4, .7} vs impossible {.6}: .9 and .7 win -> 2/3
    assert s["auroc_answerable"] == pytest.approx(2 / 3)
    # sorted .9 R, .7 W, .6 W, .4 R: risks 0, 1/2, 2/3, 2/4 -> AURC = (0 + .5 + .6667 + .5) / 4
    assert s["aurc"] == pytest.approx((0.5 + 2 / 3 + 0.5) / 4)
    assert s["coverage_at_90_precision"] == pytest.approx(25.0)
    # bins 9 (.9, 1), 7 (.7, 0), 6 (.6, 0), 4 (.4, 1): (.1 + .7 + .6 + .6) / 4 = 0.5
    assert s["ece"] == pytest.approx(0.5)
    # forced F1: s1 1, s2 1, s3 ("in January" vs "treason") 0, s4 ("Karim" vs "") 0
    assert s["forced_f1"] == pytest.approx(50.0)
    assert "auroc_correct" in captured.err and "coverage_answerable" in captured.err
    saved = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [i["correct"] for i in saved["items"]] == [True, True, False, False]
    assert len(saved["selective"]["reliability"]) == 10


def test_selective_squad_v1_every_question_answerable(tmp_path: Path):
    v1 = {"version": "1.1", "data": [{"title": "T", "paragraphs": [{
        "context": "Karim Massimov was arrested in January.",
        "qas": [{"id": "a", "question": "Who?", "answers": [{"text": "Karim Massimov", "answer_start": 0}]},
                {"id": "b", "question": "When?", "answers": [{"text": "January", "answer_start": 31}]}]}]}]}
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(v1), encoding="utf-8")
    _, qs = load_squad_file(path)
    records = [{"id": "a", "prediction": "", "forced": "Karim Massimov", "confidence": 0.2},
               {"id": "b", "prediction": "January", "forced": "January", "confidence": 0.8}]
    out = selective_squad(qs, records)["scores"]
    assert out["coverage_answerable"] == 50.0 and out["no_answer_accuracy"] == 50.0
    assert out["auroc_answerable"] is None and out["auroc_correct"] is None  # one class each
    assert out["aurc"] == 0.0 and out["ece"] == pytest.approx((0.8 + 0.2) / 2)


def test_aurc_ties_after_errors_by_hand():
    # .9 wrong; .5 tied pair (one right, one wrong); .1 right.
    # prefix 1: 1/1; inside the tie: j=1 -> (1 + 1/2) / 2 = .75, j=2 -> 2/3; prefix 4: 2/4
    conf = [0.9, 0.5, 0.5, 0.1]
    ok = [False, True, False, True]
    assert aurc(conf, ok) == pytest.approx((1 + 0.75 + 2 / 3 + 0.5) / 4)


def _aurc_no_ties(order_ok: list[bool]) -> float:
    wrong, total = 0, 0.0
    for i, ok in enumerate(order_ok, start=1):
        wrong += 0 if ok else 1
        total += wrong / i
    return total / len(order_ok)


def test_aurc_is_the_mean_over_orders_of_tied_questions():
    import itertools

    rng = random.Random(3)
    for _ in range(15):
        n = rng.randint(1, 7)
        conf = [rng.choice([0.2, 0.5, 0.8]) for _ in range(n)]
        ok = [rng.random() < 0.5 for _ in range(n)]
        # every order consistent with the confidence ranking, equally likely
        orders = {tuple(p) for p in itertools.permutations(range(n))
                  if all(conf[p[i]] >= conf[p[i + 1]] for i in range(n - 1))}
        expected = sum(_aurc_no_ties([ok[i] for i in p]) for p in orders) / len(orders)
        assert aurc(conf, ok) == pytest.approx(expected)


def test_bins_are_floor_of_ten_times_confidence():
    bins = reliability_bins([0.15, 0.25, 0.05, 0.99, 0.1, 0.5], [True] * 6)
    assert [b["count"] for b in bins] == [1, 2, 1, 0, 0, 1, 0, 0, 0, 1]
    # .14 (right) and .16 (wrong) share bin 1: mean conf .15, accuracy .5 -> ECE .35
    assert expected_calibration_error([0.14, 0.16], [True, False]) == pytest.approx(0.35)


# --- the ECE a calibrated score would show on the same confidences ---------------------------------


def test_ece_if_calibrated_hand_computed_cases():
    from qa.evaluation.selective import ece_if_calibrated

    # confidences 0 and 1: a calibrated score's labels are certain, so every draw has ECE 0
    sure = ece_if_calibrated([0.0, 1.0, 1.0, 0.0], observed=0.0, draws=200)
    assert sure == {"median": 0.0, "p90": 0.0, "p_value": 1.0}
    # one question at 0.5: whatever the coin says, |acc - 0.5| = 0.5
    one = ece_if_calibrated([0.5], observed=0.5, draws=200)
    assert one["median"] == pytest.approx(0.5) and one["p90"] == pytest.approx(0.5) and one["p_value"] == 1.0
    # two questions at 0.5 in one bin: ECE |k/2 - 0.5| is 0 (k = 1, probability 1/2) or 0.5 (k = 0 or 2)
    two = ece_if_calibrated([0.5, 0.5], observed=0.5, draws=4000, seed=3)
    assert two["p90"] == pytest.approx(0.5)
    assert 0.45 < two["p_value"] < 0.55  # the share of draws at 0.5
    assert ece_if_calibrated([], observed=0.1) is None
    # seeded: the same figures twice
    conf = [i / 37 for i in range(37)]
    assert ece_if_calibrated(conf, 0.1, seed=5) == ece_if_calibrated(conf, 0.1, seed=5)


def test_ece_of_a_calibrated_score_shrinks_with_the_set_and_real_miscalibration_is_told_apart():
    import random

    from qa.evaluation.selective import ece_if_calibrated, expected_calibration_error

    rng = random.Random(11)
    small = [rng.random() for _ in range(120)]
    large = [rng.random() for _ in range(4000)]
    f_small = ece_if_calibrated(small, draws=300)
    f_large = ece_if_calibrated(large, draws=100)
    # a calibrated score is not at ECE 0 on 120 questions, and its ECE falls with more questions (~1/sqrt(n))
    assert 0.02 < f_small["median"] < 0.09 and f_small["p90"] > f_small["median"]
    assert f_large["median"] < f_small["median"] / 3

    # labels really drawn at the confidence: the measured ECE is typical of the draws (p not small)
    calibrated = [rng.random() < c for c in large]
    ece_cal = expected_calibration_error(large, calibrated)
    assert ece_if_calibrated(large, ece_cal, draws=100)["p_value"] > 0.05
    # labels drawn 0.15 below the confidence: p = 0, the miscalibration is real
    over = [rng.random() < max(0.0, c - 0.15) for c in large]
    ece_over = expected_calibration_error(large, over)
    assert ece_over > 0.1
    assert ece_if_calibrated(large, ece_over, draws=100)["p_value"] == 0.0


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path, monkeypatch, capsys):
    """`qa eval` drew its progress bars into log files and CI output (stderr not a terminal); `qa index` did not.
    Now neither does, `--no-progress` or not."""
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(SQUAD_V2), encoding="utf-8")
    monkeypatch.setattr(eval_cli, "make_reader", lambda model_dir, settings=None: ScoredReader())
    args = eval_cli.argparse.Namespace(files=[], json=True, out=tmp_path / "sq", mode=None, k=None, max_answers=None,
                                       squad=path, reader_dir=None, limit=None, no_progress=False,
                                       retrieval_only=False, open_squad=None)
    assert eval_cli.cmd_eval(args) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["scores"]["coverage"] == 75.0
    assert "qa eval --squad" not in captured.err and "\r" not in captured.err, captured.err
