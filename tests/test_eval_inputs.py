"""`qa eval` refuses bad input before it runs anything (one line, exit code 2), never scores a failed
question as correct, and says which rows cannot be matched. No model is loaded: fake pipelines and
readers, or tests/lite_pipeline.py's stand-ins."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from qa.config import Settings
from qa.evaluation import cli as eval_cli
from qa.evaluation.dataset import EvalItem, EvalSetError, EvidenceSpan, check_questions, load_eval_set
from qa.evaluation.metrics import aggregate
from qa.evaluation.open_squad import build_open_setting
from qa.evaluation.runner import run_pipeline
from qa.squad_data import SquadFormatError, read_squad
from qa.types import Answer, AskResult, Citation, PassageOut

DOC = "Protests in Kazakhstan began on January 2. Prices for liquefied gas had doubled."


def _row(qid="q1", question="When did protests begin?", answers=("January 2",), evidence=None, **extra) -> dict:
    s = DOC.index("January 2")
    ev = [{"document": "a.txt", "start": s, "end": s + 9}] if evidence is None else evidence
    row = {"id": qid, "question": question, "answers": list(answers), "evidence": ev if answers else []}
    if evidence is not None:
        row["evidence"] = evidence
    row.update(extra)
    return row


UNANSWERABLE = {"id": "q2", "question": "Who commanded the peacekeepers?", "answers": [], "evidence": [],
                "type": "unanswerable"}


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _args(**kw) -> argparse.Namespace:
    base = dict(files=[], json=False, out=None, mode=None, k=None, max_answers=None, squad=None, reader_dir=None,
                limit=None, no_progress=True, retrieval_only=False, open_squad=None, remove_articles=0, seed=0,
                workdir=None)
    base.update(kw)
    return argparse.Namespace(**base)


class FakePipeline:
    """Answers "When did protests begin?" right, abstains on anything else, raises on "boom"."""

    def __init__(self, docs: dict[str, str] | None = None) -> None:
        self.docs = docs or {"a.txt": DOC}
        self.asked: list[str] = []

    def document_text(self, doc_id: str) -> str:
        return self.docs[doc_id]

    def ask(self, question, top_k=None, max_answers=None) -> AskResult:
        self.asked.append(question)
        if "boom" in question:
            raise RuntimeError("the reader fell over")
        passages = [PassageOut(document="a.txt", start=0, end=len(DOC), score=1.0, rank=1, text=DOC)]
        if question == "When did protests begin?":
            s = DOC.index("January 2")
            cit = Citation(document="a.txt", start=s, end=s + 9, text="January 2", score=0.9, context=DOC,
                           context_start=0, context_end=len(DOC))
            ans = Answer(text="January 2", score=0.9, citations=[cit])
            return AskResult(question=question, answer_found=True, answers=[ans], passages=passages,
                             no_answer_score=0.1, best_guess=ans)
        return AskResult(question=question, answer_found=False, answers=[], passages=passages, no_answer_score=0.9)


@pytest.fixture
def no_models(monkeypatch):
    """Fails the test if anything would load a model or index."""
    monkeypatch.setattr(eval_cli, "make_pipeline", lambda settings: pytest.fail("pipeline loaded"))
    monkeypatch.setattr(eval_cli, "make_reader", lambda *a, **k: pytest.fail("reader loaded"))
    monkeypatch.setattr(eval_cli, "make_retriever_for", lambda settings: pytest.fail("index loaded"))
    monkeypatch.setattr(eval_cli, "build_open_index", lambda *a, **k: pytest.fail("index built"))


def _refused(capsys, args: argparse.Namespace, *needles: str) -> str:
    """cmd_eval exits 2 with exactly one line on stderr (no traceback) holding every needle."""
    rc = eval_cli.cmd_eval(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("qa: error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ------------------------------------------------------------------ 1. questions the service refuses


@pytest.mark.parametrize("question, why", [("???", "no letter or digit"), ("x" * 1001, "the limit is 1000")])
def test_questions_the_service_refuses_are_refused_at_load(tmp_path, capsys, no_models, question, why):
    f = _write_jsonl(tmp_path / "set.jsonl", [_row(), {**UNANSWERABLE, "question": question}])
    _refused(capsys, _args(files=[f], out=tmp_path / "out"), f"{f}:2:", why)
    assert not (tmp_path / "out").exists()


def test_check_questions_uses_the_pipeline_rule(tmp_path):
    from qa.pipeline import QAPipeline

    items = load_eval_set(_write_jsonl(tmp_path / "s.jsonl", [_row(), {**UNANSWERABLE, "question": "  ?! "}]))
    check = eval_cli._question_check(Settings(max_question_chars=30))
    with pytest.raises(EvalSetError, match=r"s\.jsonl:2: the question has no letter"):
        check_questions(items, check)
    with pytest.raises(EvalSetError, match="the limit is 10"):
        check_questions(items, eval_cli._question_check(Settings(max_question_chars=10)))
    assert check("When?") == QAPipeline(Settings()).check_question("When?")


def test_open_squad_question_without_words_is_refused(tmp_path, capsys, monkeypatch, no_models):
    monkeypatch.setattr(eval_cli, "_settings_for", lambda args: Settings(squad_dir=tmp_path / "none"))
    path = _squad_file(tmp_path, _squad(question="???"))
    _refused(capsys, _args(open_squad=path, out=tmp_path / "out"), str(path), "question 'x'", "no letter or digit")


# ------------------------------------------------------------------ 1b. a question that raises at run time


def test_a_failed_question_is_never_a_correct_abstention():
    items = [EvalItem("u", "boom unanswerable", (), (), "unanswerable"),
             EvalItem("a", "boom answerable", ("x",), (EvidenceSpan("a.txt", 0, 1),), "date")]
    results = run_pipeline(FakePipeline(), items, progress=False)
    assert all(r.error and r.em == 0.0 and r.f1 == 0.0 for r in results)
    agg = aggregate(results, 5)
    assert agg["errors"] == 2 and agg["exact_match"] == 0.0 and agg["f1"] == 0.0
    assert agg["no_answer_accuracy"] == 0.0 and agg["no_answer_recall"] == 0.0
    assert agg["no_answer_precision"] == 0.0  # the answerable one "abstained" (wrongly); the other counts as answered


def test_cmd_eval_exits_1_and_reports_errors(tmp_path, capsys, monkeypatch):
    f = _write_jsonl(tmp_path / "set.jsonl", [_row(), {**UNANSWERABLE, "question": "boom: what now?"}])
    monkeypatch.setattr(eval_cli, "make_pipeline", lambda settings: FakePipeline())
    out = tmp_path / "out"
    rc = eval_cli.cmd_eval(_args(files=[f], out=out, json=True))
    captured = capsys.readouterr()
    assert rc == 1
    summary = json.loads(captured.out)
    assert summary["overall"]["errors"] == 1 and summary["overall"]["exact_match"] == 50.0
    assert summary["by_type"]["unanswerable"]["f1"] == 0.0
    assert "errors (scored wrong)" in captured.err and "1 question(s) raised an error" in captured.err
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## Errors" in md and "the reader fell over" in md  # nothing lost: the report is written


# ------------------------------------------------------------------ 2. not UTF-8


def test_non_utf8_eval_file(tmp_path, capsys, no_models):
    f = tmp_path / "latin1.jsonl"
    f.write_bytes(json.dumps(_row()).encode() + b"\n" + json.dumps(UNANSWERABLE).encode().replace(b"Who", b"Wh\xe9"))
    _refused(capsys, _args(files=[f], out=tmp_path / "o"), f"{f}:2: not valid UTF-8")


# ------------------------------------------------------------------ 3. offsets, nesting


@pytest.mark.parametrize("start, end", [
    ("0", "1e400"), ("1.9", "7"), ("1", '"7"'), ("true", "3"), ("NaN", "3"), ("0", "1" * 5000)])
def test_evidence_offsets_must_be_integers(tmp_path, capsys, no_models, start, end):
    line = ('{"id": "q1", "question": "When?", "answers": ["x"], '
            f'"evidence": [{{"document": "a.txt", "start": {start}, "end": {end}}}]}}')
    f = _write_jsonl(tmp_path / "set.jsonl", [UNANSWERABLE, line])
    _refused(capsys, _args(files=[f], out=tmp_path / "o"), f"{f}:2:")


def test_deeply_nested_line(tmp_path, capsys, no_models):
    f = _write_jsonl(tmp_path / "set.jsonl", ["[" * 100_000 + "]" * 100_000])
    _refused(capsys, _args(files=[f], out=tmp_path / "o"), f"{f}:1:", "nested too deeply")


# ------------------------------------------------------------------ 4-9. SQuAD files


def _squad(question="Who was arrested?", context="Karim Massimov was arrested in January.", qid="x",
           answers=None) -> dict:
    answers = [{"text": "Karim Massimov", "answer_start": 0}] if answers is None else answers
    return {"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": context, "qas": [{"id": qid, "question": question, "answers": answers}]}]}]}


def _squad_file(tmp_path: Path, content, name="dev.json") -> Path:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return p


def _no_context():
    d = _squad()
    del d["data"][0]["paragraphs"][0]["context"]
    return d


def _no_id():
    d = _squad()
    del d["data"][0]["paragraphs"][0]["qas"][0]["id"]
    return d


def _no_question():
    d = _squad()
    del d["data"][0]["paragraphs"][0]["qas"][0]["question"]
    return d


MALFORMED_SQUAD = {
    "not_squad": ([{"data": []}], "not a SQuAD file"),
    "invalid_json": ('{"data": [', "invalid JSON"),
    "not_utf8": ('{"data": []}'.encode().replace(b"[", b"[\xff"), "not valid UTF-8"),
    "no_context": (_no_context(), "no 'context'"),
    "no_id": (_no_id(), "no 'id'"),
    "no_question": (_no_question(), "no 'question'"),
    "data_strings": ({"data": ["T", "U"]}, "data[0] must be an object"),
    "context_int": (_squad(context=7), "'context' must be a string"),
    "question_int": (_squad(question=7), "'question' must be a string"),
    "question_list": (_squad(question=["a"]), "'question' must be a string"),
    "answer_text_int": (_squad(answers=[{"text": 5, "answer_start": 0}]), "'text' must be a string"),
    "answer_start_str": (_squad(answers=[{"text": "Karim", "answer_start": "0"}]), "'answer_start' must be an integer"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_SQUAD))
def test_malformed_squad_file_is_refused_before_the_reader_loads(tmp_path, capsys, no_models, name):
    content, why = MALFORMED_SQUAD[name]
    path = _squad_file(tmp_path, content)
    _refused(capsys, _args(squad=path, out=tmp_path / "o"), str(path), why)
    with pytest.raises(SquadFormatError, match=why.replace("[", r"\[").replace("]", r"\]")):
        read_squad(path)


@pytest.mark.parametrize("name", sorted(MALFORMED_SQUAD))
def test_malformed_open_squad_file_is_refused(tmp_path, capsys, monkeypatch, no_models, name):
    monkeypatch.setattr(eval_cli, "_settings_for", lambda args: Settings(squad_dir=tmp_path / "none"))
    content, why = MALFORMED_SQUAD[name]
    path = _squad_file(tmp_path, content)
    _refused(capsys, _args(open_squad=path, out=tmp_path / "o"), str(path), why)


def test_squad_file_without_questions(tmp_path, capsys, no_models):
    path = _squad_file(tmp_path, {"version": "1.1", "data": [{"title": "T", "paragraphs": []}]})
    _refused(capsys, _args(squad=path, out=tmp_path / "o"), "no questions to evaluate")


def test_duplicate_squad_ids_are_refused(tmp_path, capsys, monkeypatch, no_models):
    d = _squad(qid="dup")
    d["data"][0]["paragraphs"].append({"context": "Another paragraph.", "qas": [
        {"id": "dup", "question": "What is this?", "answers": [{"text": "Another", "answer_start": 0}]}]})
    path = _squad_file(tmp_path, d)
    _refused(capsys, _args(squad=path, out=tmp_path / "o"), "duplicate id", "'dup'")
    monkeypatch.setattr(eval_cli, "_settings_for", lambda args: Settings(squad_dir=tmp_path / "none"))
    _refused(capsys, _args(open_squad=path, out=tmp_path / "o"), "duplicate id", "'dup'")
    read_squad(path)  # training reads are not keyed by id: still readable there


def test_valid_squad_still_runs(tmp_path, capsys, monkeypatch):
    class Reader:
        def read_contexts(self, question, contexts):
            return "Karim Massimov"

    monkeypatch.setattr(eval_cli, "make_reader", lambda model_dir, settings=None: Reader())
    path = _squad_file(tmp_path, _squad())
    assert eval_cli.cmd_eval(_args(squad=path, out=tmp_path / "o", json=True)) == 0
    assert json.loads(capsys.readouterr().out)["scores"]["exact"] == 100.0


# ------------------------------------------------------------------ 10. answers and type


@pytest.mark.parametrize("row, why", [
    ({**_row(), "answers": [], "type": "answerable", "evidence": []}, "type 'answerable' but no answers"),
    ({**_row(), "answers": ["  "], "evidence": []}, "blank answer"),
    ({**_row(), "answers": ["January 2", ""]}, "blank answer"),
    ({**_row(), "answers": []}, "evidence without answers"),
    ({**_row(), "type": "unanswerable"}, "type 'unanswerable' but it has answers"),
])
def test_rows_are_not_relabelled(tmp_path, capsys, no_models, row, why):
    f = _write_jsonl(tmp_path / "set.jsonl", [UNANSWERABLE, row])
    _refused(capsys, _args(files=[f], out=tmp_path / "o"), f"{f}:2:", why)


@pytest.mark.parametrize("field, value, why", [
    ("type", ["a", "b"], "'type' must be a string"),
    ("id", True, "'id' must be a string or an integer"),
    ("id", 1.5, "'id' must be a string or an integer"),
    ("question", 7, "'question' must be a string"),
])
def test_non_string_fields_are_refused(tmp_path, capsys, no_models, field, value, why):
    f = _write_jsonl(tmp_path / "set.jsonl", [{**_row(), field: value}])
    _refused(capsys, _args(files=[f], out=tmp_path / "o"), f"{f}:1:", why)


def test_integer_ids_and_defaults_still_load(tmp_path):
    f = _write_jsonl(tmp_path / "set.jsonl", [{**_row(), "id": 7}, {**UNANSWERABLE, "type": None}])
    items = load_eval_set(f)
    assert [(i.id, i.type) for i in items] == [("7", "answerable"), ("q2", "unanswerable")]


def test_the_shipped_set_loads_and_passes_the_question_rule():
    items = load_eval_set(eval_cli.DEFAULT_EVAL_FILE)
    check_questions(items, eval_cli._question_check(Settings()))
    assert len(items) == 120 and items[0].where.endswith("seeds_qa.jsonl:1")


# ------------------------------------------------------------------ 11. rows that cannot match


def test_evidence_outside_the_corpus_is_named_before_the_run(tmp_path, capsys, monkeypatch):
    from tests.lite_pipeline import LitePipeline, lite_settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(DOC, encoding="utf-8")
    pipeline = LitePipeline(lite_settings(corpus, tmp_path / "index"))
    pipeline.warm_up()
    monkeypatch.setattr(eval_cli, "make_pipeline", lambda settings: pipeline)
    rows = [_row(),
            _row("q3", "What doubled?", ("liquefied gas",), [{"document": "gone.txt", "start": 0, "end": 3}]),
            _row("q4", "Prices of what?", ("gas",), [{"document": "a.txt", "start": 70, "end": 5000}])]
    f = _write_jsonl(tmp_path / "set.jsonl", rows)
    out = tmp_path / "out"
    rc = eval_cli.cmd_eval(_args(files=[f], out=out, json=True))
    captured = capsys.readouterr()
    assert rc == 0
    assert f"warning: {f}:2: evidence document 'gone.txt' is not in the index" in captured.err
    assert f"warning: {f}:3: evidence a.txt[70:5000] ends past the document's {len(DOC)} characters" in captured.err
    assert len(json.loads(captured.out)["meta"]["input_warnings"]) == 2


def test_retrieval_only_names_evidence_outside_the_index(tmp_path, capsys, monkeypatch):
    from qa.retriever.bm25 import BM25Retriever
    from qa.types import Chunk

    class Store:
        def document_text(self, doc_id):
            return {"a.txt": DOC}[doc_id]

    def retriever(settings):
        r = BM25Retriever([Chunk("a.txt", 0, len(DOC), DOC)])
        r.store = Store()
        return r

    monkeypatch.setattr(eval_cli, "make_retriever_for", retriever)
    rows = [_row(), _row("q3", "What doubled?", ("gas",), [{"document": "gone.txt", "start": 0, "end": 3}])]
    f = _write_jsonl(tmp_path / "set.jsonl", rows)
    assert eval_cli.cmd_eval(_args(files=[f], out=tmp_path / "o", retrieval_only=True, json=True)) == 0
    captured = capsys.readouterr()
    assert f"warning: {f}:2: evidence document 'gone.txt' is not in the index" in captured.err
    assert json.loads(captured.out)["meta"]["input_warnings"] == [
        f"{f}:2: evidence document 'gone.txt' is not in the index"]


def test_a_clean_run_has_no_input_warnings(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(eval_cli, "make_pipeline", lambda settings: FakePipeline())
    f = _write_jsonl(tmp_path / "set.jsonl", [_row(), UNANSWERABLE])
    assert eval_cli.cmd_eval(_args(files=[f], out=tmp_path / "o", json=True)) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err and "input_warnings" not in json.loads(captured.out)["meta"]


def test_open_squad_answer_missing_from_its_context_is_named(tmp_path):
    path = _squad_file(tmp_path, _squad(qid="lost", answers=[{"text": "Nursultan", "answer_start": 0}]))
    setting = build_open_setting(path)
    assert setting.items[0].answers == ("Nursultan",) and setting.items[0].evidence == ()
    assert setting.warnings == [f"{path}: question 'lost': gold answer 'Nursultan' is not in its paragraph "
                                "(no evidence span for it)"]
    assert build_open_setting(_squad_file(tmp_path, _squad(), "ok.json")).warnings == []


# ------------------------------------------------------------------ 12. output folders


def test_unwritable_out_is_refused_before_the_run(tmp_path, capsys, no_models):
    blocker = tmp_path / "afile"
    blocker.write_text("x", encoding="utf-8")
    f = _write_jsonl(tmp_path / "set.jsonl", [_row()])
    _refused(capsys, _args(files=[f], out=blocker / "report"), "--out", "cannot write there")
    _refused(capsys, _args(files=[f], out=blocker), "--out", "is a file")
    _refused(capsys, _args(files=[f], out=blocker, retrieval_only=True), "--out", "is a file")
    sq = _squad_file(tmp_path, _squad())
    _refused(capsys, _args(squad=sq, out=blocker / "r"), "--out", "cannot write there")


def test_unwritable_workdir_is_refused_before_indexing(tmp_path, capsys, monkeypatch, no_models):
    monkeypatch.setattr(eval_cli, "_settings_for", lambda args: Settings(squad_dir=tmp_path / "none"))
    blocker = tmp_path / "afile"
    blocker.write_text("x", encoding="utf-8")
    sq = _squad_file(tmp_path, _squad())
    out = tmp_path / "new" / "out"
    _refused(capsys, _args(open_squad=sq, out=out, workdir=blocker / "w"), "--workdir", "cannot write there")
    assert not (tmp_path / "new").exists()  # the folders made for the report are removed again


def test_failed_start_leaves_no_empty_report_folder(tmp_path, capsys, monkeypatch):
    def no_reader(settings):
        raise FileNotFoundError("reader model not found")

    monkeypatch.setattr(eval_cli, "make_pipeline", no_reader)
    f = _write_jsonl(tmp_path / "set.jsonl", [_row()])
    assert eval_cli.cmd_eval(_args(files=[f], out=tmp_path / "a" / "b")) == 1
    assert not (tmp_path / "a").exists()


# ------------------------------------------------------------------ 13. ranges


@pytest.mark.parametrize("kw, why", [
    ({"k": 0}, "-k must be between 1 and 50"), ({"k": 51}, "-k must be between 1 and 50"),
    ({"k": 100000}, "-k must be between 1 and 50"),
    ({"max_answers": 0}, "--max-answers must be between 1 and 20"),
    ({"max_answers": -1}, "--max-answers must be between 1 and 20"),
    ({"max_answers": 21}, "--max-answers must be between 1 and 20"),
    ({"limit": 0}, "--limit must be >= 1"),
])
def test_option_ranges_are_the_settings_ranges(tmp_path, capsys, no_models, kw, why):
    f = _write_jsonl(tmp_path / "set.jsonl", [_row()])
    _refused(capsys, _args(files=[f], out=tmp_path / "o", **kw), why)


def test_settings_for_validates():
    with pytest.raises(eval_cli.EvalInputError, match="QA_TOP_K"):
        eval_cli._settings_for(_args(k=100000))
    s = eval_cli._settings_for(_args(k=50, max_answers=20, mode="bm25"))
    assert (s.top_k, s.max_answers, s.retrieval_mode) == (50, 20, "bm25")


# ------------------------------------------------------------------ 14. files given twice, id collisions


def test_same_file_twice_is_refused(tmp_path, capsys, no_models, monkeypatch):
    f = _write_jsonl(tmp_path / "set.jsonl", [_row()])
    _refused(capsys, _args(files=[f, f], out=tmp_path / "o"), "given twice")
    monkeypatch.chdir(tmp_path)
    _refused(capsys, _args(files=[f, Path("set.jsonl")], out=tmp_path / "o"), "given twice")


def test_prefixed_ids_never_collide(tmp_path, capsys, no_models):
    a = _write_jsonl(tmp_path / "a.jsonl", [_row("x")])
    b = _write_jsonl(tmp_path / "b.jsonl", [_row("x"), _row("b:x", "What doubled?", ("liquefied gas",), [])])
    items = load_eval_set(a, b)
    ids = [i.id for i in items]
    assert len(ids) == len(set(ids)) == 3
    b2 = _write_jsonl(tmp_path / "b2.jsonl", [_row("b2:x", "What doubled?", ("gas",), []), _row("x")])
    with pytest.raises(EvalSetError, match=r"b2\.jsonl:2: id 'x' is taken .* and so is 'b2:x'"):
        load_eval_set(a, b2)
    _refused(capsys, _args(files=[a, b2], out=tmp_path / "o"), f"{b2}:2:", "distinct ids")


# ------------------------------------------------------------------ 15. conflicting options


@pytest.mark.parametrize("kw, why", [
    ({"files": ["x.jsonl"], "squad": "dev.json"}, "cannot be combined with --squad"),
    ({"files": ["x.jsonl"], "open_squad": "dev.json"}, "cannot be combined with --open-squad"),
    ({"squad": "a.json", "open_squad": "b.json"}, "--squad and --open-squad cannot be combined"),
    ({"retrieval_only": True, "squad": "dev.json"}, "--retrieval-only"),
    ({"remove_articles": 3}, "--remove-articles applies only to --open-squad"),
    ({"seed": 4}, "--seed applies only to --open-squad"),
    ({"workdir": "w"}, "--workdir applies only to --open-squad"),
    ({"squad": "dev.json", "workdir": "w"}, "--workdir applies only to --open-squad"),
    ({"reader_dir": "m"}, "--reader-dir applies only to --squad"),
    ({"squad": "dev.json", "k": 3}, "-k does not apply to --squad"),
    ({"squad": "dev.json", "mode": "bm25"}, "--mode does not apply to --squad"),
    ({"retrieval_only": True, "max_answers": 2}, "--max-answers does not apply to --retrieval-only"),
])
def test_conflicting_options_are_refused(capsys, no_models, kw, why):
    for key in ("squad", "open_squad", "workdir", "reader_dir"):
        if key in kw:
            kw[key] = Path(kw[key])
    if "files" in kw:
        kw["files"] = [Path(p) for p in kw["files"]]
    _refused(capsys, _args(**kw), why)


# ------------------------------------------------------------------ minor


def test_a_directory_is_not_reported_missing(tmp_path, capsys, monkeypatch, no_models):
    d = tmp_path / "adir"
    d.mkdir()
    _refused(capsys, _args(files=[d], out=tmp_path / "o"), str(d), "is a directory")
    _refused(capsys, _args(squad=d, out=tmp_path / "o"), str(d), "is a directory")
    monkeypatch.setattr(eval_cli, "_settings_for", lambda args: Settings(squad_dir=tmp_path / "none"))
    _refused(capsys, _args(open_squad=d, out=tmp_path / "o"), str(d), "is a directory")
    _refused(capsys, _args(files=[tmp_path / "missing.jsonl"], out=tmp_path / "o"), "not found")
