"""Evaluation metrics, runner, reports and `qa eval` on hand-made inputs and a fake pipeline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from qa.evaluation import cli as eval_cli
from qa.evaluation.dataset import EvalItem, EvalSetError, EvidenceSpan, load_eval_set, parse_item
from qa.evaluation.metrics import (
    aggregate,
    answer_em_f1,
    citation_errors,
    first_hit_rank,
    mean_reciprocal_rank,
    no_answer_metrics,
    percentile,
    recall_at_k,
    score_item,
)
from qa.evaluation.report import build_report, render_markdown, summary_table, worst_misses, write_report
from qa.evaluation.runner import run_pipeline
from qa.evaluation.squad import load_squad_file, predict_squad, prediction_text, squad_scores
from qa.types import Answer, AskResult, Citation, PassageOut

DOCS = {
    "a.txt": "Protests in Kazakhstan began on January 2. Prices for liquefied gas had doubled.",
    "b.txt": "Karim Massimov was arrested. He is suspected of treason.",
}


# --------------------------------------------------------------------------------- plain metrics


def test_evidence_overlap():
    ev = EvidenceSpan("a.txt", 10, 20)
    assert ev.overlaps("a.txt", 19, 30)
    assert ev.overlaps("a.txt", 0, 11)
    assert ev.overlaps("a.txt", 12, 13)
    assert not ev.overlaps("a.txt", 20, 30)  # end is exclusive
    assert not ev.overlaps("a.txt", 0, 10)
    assert not ev.overlaps("b.txt", 12, 13)


def test_recall_mrr_and_hit_rank():
    ev = [EvidenceSpan("a.txt", 32, 41)]
    passages = [PassageOut(document="b.txt", start=0, end=50, score=1, rank=1, text="x"),
                PassageOut(document="a.txt", start=0, end=30, score=1, rank=2, text="x"),
                PassageOut(document="a.txt", start=30, end=60, score=1, rank=3, text="x")]
    assert first_hit_rank(passages, ev) == 3
    assert first_hit_rank(passages[:2], ev) is None
    ranks = [1, 3, None, 2]
    assert recall_at_k(ranks, 1) == 25.0
    assert recall_at_k(ranks, 3) == 75.0
    assert recall_at_k([], 3) is None
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)


def test_em_f1_with_abstention():
    assert answer_em_f1("January 2", ["January 2", "the beginning of January"]) == (1.0, 1.0)
    em, f = answer_em_f1("on January 2", ["January 2"])
    assert em == 0.0 and f == pytest.approx(0.8)
    assert answer_em_f1("", ["January 2"]) == (0.0, 0.0)  # wrong abstention
    assert answer_em_f1("", []) == (1.0, 1.0)  # correct abstention
    assert answer_em_f1("Tokayev", []) == (0.0, 0.0)  # answered the unanswerable


def test_no_answer_metrics():
    abstained = [True, True, False, False, True]
    unanswerable = [True, False, True, False, True]
    m = no_answer_metrics(abstained, unanswerable)
    assert m["no_answer_precision"] == pytest.approx(100 * 2 / 3)
    assert m["no_answer_recall"] == pytest.approx(100 * 2 / 3)
    assert m["no_answer_accuracy"] == pytest.approx(100 * 3 / 5)
    none = no_answer_metrics([False], [False])
    assert none["no_answer_precision"] is None and none["no_answer_recall"] is None
    with pytest.raises(ValueError):
        no_answer_metrics([True], [])


def test_percentile():
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


# ----------------------------------------------------------------------------- answers & citations


def _answer(doc: str, text: str, *, start: int | None = None, cite_text: str | None = None,
            score: float = 0.9) -> Answer:
    body = DOCS[doc]
    s = body.index(text) if start is None else start
    e = s + len(text)
    ctext = cite_text if cite_text is not None else body[s:e]
    cit = Citation(document=doc, start=s, end=e, text=ctext if start is None else text, score=score, context=body,
                   context_start=0, context_end=len(body))
    return Answer(text=text, score=score, citations=[cit])


def _result(question: str, answers: list[Answer], passages: list[tuple[str, int, int]]) -> AskResult:
    return AskResult(
        question=question,
        answer_found=bool(answers),
        answers=answers,
        passages=[PassageOut(document=d, start=s, end=e, score=1.0 / (i + 1), rank=i + 1, text=DOCS[d][s:e])
                  for i, (d, s, e) in enumerate(passages)],
        no_answer_score=0.1 if answers else 0.9,
    )


def test_citation_errors():
    good = _answer("a.txt", "January 2")
    assert citation_errors(good, DOCS.__getitem__) == []
    shifted = _answer("a.txt", "January 2", start=DOCS["a.txt"].index("January 2") + 1)
    assert any(e.startswith("citation a.txt[") for e in citation_errors(shifted, DOCS.__getitem__))
    wrong_text = _answer("a.txt", "January 2", cite_text="january 3")
    errs = citation_errors(wrong_text, DOCS.__getitem__)
    assert any("citation a.txt" in e for e in errs)
    assert any("is not its first citation's" in e for e in errs)
    no_cit = good.model_copy(update={"citations": []})
    assert citation_errors(no_cit, DOCS.__getitem__) == ["answer has no citation"]
    unknown = good.model_copy(update={"citations": [good.top.model_copy(update={"document": "zzz.txt"})]})
    assert any("cannot be read" in e for e in citation_errors(unknown, DOCS.__getitem__))


def _item(qid: str, question: str, answers: list[str], evidence: list[tuple[str, str]], qtype: str) -> EvalItem:
    spans = []
    for doc, text in evidence:
        s = DOCS[doc].index(text)
        spans.append(EvidenceSpan(doc, s, s + len(text)))
    return EvalItem(qid, question, tuple(answers), tuple(spans), qtype)


ITEMS = [
    _item("q1", "When did protests begin?", ["January 2"], [("a.txt", "January 2")], "date"),
    _item("q2", "Who was arrested?", ["Karim Massimov"], [("b.txt", "Karim Massimov")], "person"),
    _item("q3", "What is Massimov suspected of?", ["treason"], [("b.txt", "treason")], "other"),
    _item("q4", "Who commanded the peacekeepers?", [], [], "unanswerable"),
    _item("q5", "How many were arrested?", [], [], "unanswerable"),
]


class FakePipeline:
    """Answers q1 right, q2 wrong (with a citation outside the evidence), abstains on q3 and q4,
    answers q5 (which is unanswerable) and raises on an unknown question."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None, int | None]] = []

    def document_text(self, doc_id: str) -> str:
        return DOCS[doc_id]

    def ask(self, question: str, top_k: int | None = None, max_answers: int | None = None) -> AskResult:
        self.calls.append((question, top_k, max_answers))
        a, b = DOCS["a.txt"], DOCS["b.txt"]
        if question == "When did protests begin?":
            return _result(question, [_answer("a.txt", "January 2")], [("a.txt", 0, 43), ("b.txt", 0, 28)])
        if question == "Who was arrested?":
            return _result(question, [_answer("a.txt", "Kazakhstan")], [("a.txt", 0, 43), ("b.txt", 0, len(b))])
        if question == "What is Massimov suspected of?":
            return _result(question, [], [("a.txt", 0, len(a))])
        if question == "Who commanded the peacekeepers?":
            return _result(question, [], [("a.txt", 0, len(a))])
        if question == "How many were arrested?":
            return _result(question, [_answer("b.txt", "Karim Massimov")], [("b.txt", 0, 28)])
        raise RuntimeError("unexpected question")


def test_score_item_and_aggregate():
    pipe = FakePipeline()
    results = run_pipeline(pipe, ITEMS, top_k=2, max_answers=1, progress=False)
    assert [c[1:] for c in pipe.calls] == [(2, 1)] * 5
    r1, r2, r3, r4, r5 = results
    assert (r1.em, r1.f1, r1.hit_rank, r1.citation_correct, r1.citation_valid) == (1.0, 1.0, 1, True, True)
    assert (r2.em, r2.hit_rank, r2.citation_correct, r2.citation_valid) == (0.0, 2, False, True)
    assert r3.abstained and r3.f1 == 0.0 and r3.hit_rank is None and r3.citation_correct is None
    assert r4.abstained and r4.f1 == 1.0 and r4.hit_rank is None
    assert not r5.abstained and r5.f1 == 0.0 and r5.citation_correct is None and r5.citation_valid
    assert all(r.latency_ms >= 0 for r in results)

    agg = aggregate(results, k=2)
    assert agg["count"] == 5 and agg["answerable"] == 3 and agg["unanswerable"] == 2
    assert agg["exact_match"] == pytest.approx(40.0)  # q1, q4
    assert agg["f1_answerable"] == pytest.approx(100 / 3)
    assert agg["recall@1"] == pytest.approx(100 / 3)  # q1 only
    assert agg["recall@2"] == agg["recall@k"] == pytest.approx(200 / 3)  # q1, q2
    assert agg["mrr"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert agg["citation_accuracy"] == pytest.approx(50.0)  # q1 right, q2 wrong
    assert agg["citation_validity"] == 100.0
    assert agg["no_answer_precision"] == pytest.approx(50.0)  # abstained on q3 (wrong) and q4 (right)
    assert agg["no_answer_recall"] == pytest.approx(50.0)  # q4 of q4, q5
    # agreement of (abstained) with (unanswerable): q1, q2 (answered, answerable) and q4
    assert agg["no_answer_accuracy"] == pytest.approx(60.0)
    assert agg["latency_p50_ms"] is not None


def test_invalid_citation_is_detected():
    item = ITEMS[0]
    bad = _answer("a.txt", "January 2", start=DOCS["a.txt"].index("January 2") + 2)
    r = score_item(item, _result(item.question, [bad], [("a.txt", 0, 43)]), DOCS.__getitem__, 1.0)
    assert r.citation_valid is False and r.citation_errors
    agg = aggregate([r], 1)
    assert agg["citation_validity"] == 0.0


def test_errors_are_recorded_not_raised():
    items = [*ITEMS[:1], EvalItem("boom", "unknown question", ("x",), (EvidenceSpan("a.txt", 0, 1),), "date")]
    results = run_pipeline(FakePipeline(), items, top_k=2, progress=False)
    assert results[1].error and "unexpected question" in results[1].error
    assert results[1].abstained and results[1].f1 == 0.0
    assert aggregate(results, 2)["errors"] == 1
    with pytest.raises(RuntimeError):
        run_pipeline(FakePipeline(), items, top_k=2, progress=False, on_error="raise")


# --------------------------------------------------------------------------------- dataset format


def test_load_eval_set(tmp_path: Path):
    p = tmp_path / "set.jsonl"
    rows = [
        {"id": "1", "question": "Q?", "answers": ["A"], "evidence": [{"document": "a.txt", "start": 0, "end": 1}],
         "type": "person", "answer_type": "person"},
        {"id": "2", "question": "Q2?", "answers": [], "evidence": []},
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    items = load_eval_set(p, p)
    assert [i.id for i in items] == ["1", "2", "set:1", "set:2"]
    assert items[0].extra == {"answer_type": "person"} and items[0].answerable
    assert items[1].type == "unanswerable" and not items[1].answerable
    with pytest.raises(EvalSetError):
        parse_item({"id": "x", "question": "q", "answers": "A"})
    with pytest.raises(EvalSetError):
        parse_item({"id": "x", "question": "q", "answers": ["A"], "evidence": [{"document": "a", "start": 5, "end": 2}]})
    dup = tmp_path / "dup.jsonl"
    dup.write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[0]) + "\n", encoding="utf-8")
    with pytest.raises(EvalSetError):
        load_eval_set(dup)


def test_the_real_eval_set_loads():
    items = load_eval_set(eval_cli.DEFAULT_EVAL_FILE)
    assert len(items) >= 80
    assert sum(1 for i in items if not i.answerable) >= 12


# ---------------------------------------------------------------------------------------- reports


def test_reports(tmp_path: Path):
    results = run_pipeline(FakePipeline(), ITEMS, top_k=2, progress=False)
    report = build_report(results, 2, {"retrieval_mode": "bm25", "eval_files": ["x.jsonl"]})
    misses = worst_misses(results)
    assert [m.id for m in misses][:2] == ["q2", "q5"]  # confident wrong answers first
    assert "q1" not in [m.id for m in misses]
    md = render_markdown(report)
    assert "| recall@2 |" in md and "## By question type" in md and "## Worst misses" in md
    assert "Who was arrested?" in md and "Karim Massimov" in md and "(abstained)" in md
    paths = write_report(report, tmp_path / "r")
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data["overall"]["count"] == 5 and set(data["by_type"]) == {"date", "person", "other", "unanswerable"}
    assert len(data["items"]) == 5 and data["worst_misses"][0] == "q2"
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "chart.png" in paths["markdown"].read_text(encoding="utf-8")
    table = summary_table(report)
    assert "citation validity" in table and "unanswerable" in table


def _args(**kw) -> argparse.Namespace:
    base = dict(files=[], json=False, out=None, mode=None, k=None, max_answers=None, squad=None,
                reader_dir=None, limit=None, no_progress=True, retrieval_only=False)
    base.update(kw)
    return argparse.Namespace(**base)


def test_cmd_eval_with_fake_pipeline(tmp_path: Path, monkeypatch, capsys):
    eval_file = tmp_path / "set.jsonl"
    eval_file.write_text("".join(
        json.dumps({"id": i.id, "question": i.question, "answers": list(i.answers), "type": i.type,
                    "evidence": [{"document": e.document, "start": e.start, "end": e.end} for e in i.evidence]})
        + "\n" for i in ITEMS), encoding="utf-8")
    seen = {}

    def fake_make_pipeline(settings):
        seen["settings"] = settings
        return FakePipeline()

    monkeypatch.setattr(eval_cli, "make_pipeline", fake_make_pipeline)
    out = tmp_path / "out"
    rc = eval_cli.cmd_eval(_args(files=[eval_file], json=True, out=out, mode="bm25", k=3))
    assert rc == 0
    assert seen["settings"].retrieval_mode == "bm25" and seen["settings"].top_k == 3
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["overall"]["count"] == 5 and "recall@3" in summary["overall"]
    assert summary["meta"]["retrieval_mode"] == "bm25"
    # where the figures came from: the machine, and the reader's runtime (a fake pipeline has none)
    assert summary["meta"]["machine"]["cores"] and summary["meta"]["reader_runtime"] is None
    assert "citation validity" in captured.err
    assert "reader ? on " in captured.err and "**machine**" in (out / "report.md").read_text(encoding="utf-8")
    assert {p.name for p in out.iterdir()} == {"report.json", "report.md", "chart.png"}

    assert eval_cli.cmd_eval(_args(files=[tmp_path / "missing.jsonl"])) == 2

    def no_reader(settings):
        raise FileNotFoundError("reader model not found")

    monkeypatch.setattr(eval_cli, "make_pipeline", no_reader)
    assert eval_cli.cmd_eval(_args(files=[eval_file])) == 1
    assert "reader model not found" in capsys.readouterr().err
    assert eval_cli.cmd_eval(_args(files=[eval_file], k=0)) == 2


def test_argparse_wiring():
    parser = argparse.ArgumentParser(prog="qa")
    sub = parser.add_subparsers(dest="command", required=True)
    eval_cli.add_eval_command(sub)
    args = parser.parse_args(["eval", "a.jsonl", "b.jsonl", "--json", "--mode", "hybrid", "-k", "7",
                              "--out", "x"])
    assert args.func is eval_cli.cmd_eval and args.handler is eval_cli.cmd_eval
    assert args.files == [Path("a.jsonl"), Path("b.jsonl")] and args.k == 7 and args.mode == "hybrid"
    args = parser.parse_args(["eval", "--squad", "dev.json", "--limit", "10"])
    assert args.squad == Path("dev.json") and args.limit == 10 and args.files == []


# ----------------------------------------------------------------------------------------- SQuAD


SQUAD_V2 = {
    "version": "v2.0",
    "data": [{"title": "T", "paragraphs": [{
        "context": "Karim Massimov was arrested in January.",
        "qas": [
            {"id": "s1", "question": "Who was arrested?", "answers": [{"text": "Karim Massimov", "answer_start": 0}],
             "is_impossible": False},
            {"id": "s2", "question": "When?", "answers": [{"text": "January", "answer_start": 31},
                                                           {"text": "in January", "answer_start": 28}]},
            {"id": "s3", "question": "Why?", "answers": [], "plausible_answers": [{"text": "x", "answer_start": 0}],
             "is_impossible": True},
        ]}]}],
}


class FakeReaderOutput:
    def __init__(self, text: str | None):
        self.answer_found = text is not None
        self.answers = [type("A", (), {"text": text})()] if text else []
        self.best_guess = type("A", (), {"text": text or "Karim"})()


class FakeReader:
    def __init__(self):
        self.contexts = []

    def read_contexts(self, question, contexts):
        self.contexts.append(contexts)
        return FakeReaderOutput({"Who was arrested?": "Massimov", "When?": "in January", "Why?": None}[question])


def test_squad_scoring(tmp_path: Path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(SQUAD_V2), encoding="utf-8")
    version, qs = load_squad_file(path)
    assert version == "v2.0" and [q.id for q in qs] == ["s1", "s2", "s3"]
    assert qs[2].gold == [""] and qs[1].gold == ["January", "in January"]
    assert len(load_squad_file(path, limit=2)[1]) == 2
    reader = FakeReader()
    preds, lat, forced = predict_squad(reader.read_contexts, qs, progress=False)
    assert forced == {"s1": "Massimov", "s2": "in January", "s3": "Karim"}
    assert reader.contexts[0] == [("s1", SQUAD_V2["data"][0]["paragraphs"][0]["context"])]
    assert preds == {"s1": "Massimov", "s2": "in January", "s3": ""} and len(lat) == 3
    s = squad_scores(preds, qs)
    assert s["total"] == 3
    assert s["HasAns_exact"] == 50.0 and s["HasAns_f1"] == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert s["NoAns_exact"] == 100.0
    assert s["exact"] == pytest.approx(200 / 3)
    v1 = squad_scores({"s1": "Karim Massimov"}, qs[:1])
    assert v1 == {"exact": 100.0, "f1": 100.0, "total": 1}
    assert prediction_text(None) == "" and prediction_text("x") == "x"


def test_cmd_eval_squad(tmp_path: Path, monkeypatch, capsys):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(SQUAD_V2), encoding="utf-8")
    monkeypatch.setattr(eval_cli, "make_reader", lambda model_dir, settings=None: FakeReader())
    out = tmp_path / "sq"
    assert eval_cli.cmd_eval(_args(squad=path, out=out, json=True, limit=2)) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scores"]["total"] == 2 and data["version"] == "v2.0"
    assert data["scores"]["abstained"] == 0.0 and data["scores"]["forced_f1"] == data["scores"]["f1"]
    saved = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert saved["predictions"] == {"s1": "Massimov", "s2": "in January"}
    assert saved["machine"]["isa"] == data["machine"]["isa"] and "reader_runtime" in saved


def test_cmd_eval_retrieval_only(tmp_path: Path, monkeypatch, capsys):
    from qa.retriever.bm25 import BM25Retriever
    from qa.types import Chunk

    chunks = [Chunk(d, 0, len(t), t) for d, t in DOCS.items()]
    seen = {}

    def fake_retriever(settings):
        seen["mode"] = settings.retrieval_mode
        return BM25Retriever(chunks)

    monkeypatch.setattr(eval_cli, "make_retriever_for", fake_retriever)
    eval_file = tmp_path / "set.jsonl"
    eval_file.write_text("".join(
        json.dumps({"id": i.id, "question": i.question, "answers": list(i.answers), "type": i.type,
                    "evidence": [{"document": e.document, "start": e.start, "end": e.end} for e in i.evidence]})
        + "\n" for i in ITEMS), encoding="utf-8")
    out = tmp_path / "ret"
    rc = eval_cli.cmd_eval(_args(files=[eval_file], out=out, json=True, mode="bm25", k=1, retrieval_only=True))
    assert rc == 0 and seen["mode"] == "bm25"
    data = json.loads(capsys.readouterr().out)
    assert data["overall"]["count"] == 3  # answerable only
    # "When did protests begin?" -> a.txt; "Who was arrested?" -> b.txt; "suspected" -> b.txt
    assert data["overall"]["recall@1"] == 100.0 and data["overall"]["mrr"] == 1.0
    assert (out / "report.json").exists()
