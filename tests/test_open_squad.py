"""The open SQuAD setting (qa.evaluation.open_squad) on a tiny synthetic SQuAD file, and `qa eval --open-squad`
with a fake pipeline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from qa.config import Settings
from qa.evaluation import cli as eval_cli
from qa.evaluation.open_squad import (
    PARAGRAPH_SEPARATOR,
    TrainingArticlesError,
    build_open_setting,
    check_no_training_articles,
    safe_title,
    squad_titles,
    write_corpus,
)
from qa.ingest import read_text
from qa.types import Answer, AskResult, Citation, PassageOut


def _qa(qid: str, question: str, context: str, *answers: str, start: int | None = None) -> dict:
    out = []
    for a in answers:
        out.append({"text": a, "answer_start": context.index(a) if start is None else start})
    return {"id": qid, "question": question, "answers": out}


def _article(title: str, paragraphs: list[tuple[str, list[tuple[str, str, tuple[str, ...]]]]]) -> dict:
    return {"title": title, "paragraphs": [
        {"context": ctx, "qas": [_qa(qid, q, ctx, *ans) for qid, q, ans in qas]} for ctx, qas in paragraphs]}


P_ALPHA = [
    ("Alpha Centauri is the closest star system to the Sun. It is 4.37 light-years away.",
     [("a1", "What is the closest star system?", ("Alpha Centauri",)),
      ("a2", "How far away is it?", ("4.37 light-years", "4.37 light-years away"))]),
    ("Proxima Centauri is a small red dwarf. It was discovered in 1915 by Robert Innes.",
     [("a3", "Who discovered Proxima?", ("Robert Innes",)),
      ("a4", "When was Proxima discovered?", ("1915",))]),
]
P_BETA = [
    ("The Beta river flows north. The Beta river is 300 km long and the river freezes in winter.",
     [("b1", "How long is the river?", ("300 km",)),
      ("b2", "When does the river freeze?", ("in winter", "winter"))]),
]
P_GAMMA = [
    ("Gamma rays have the smallest wavelengths.", [("g1", "What has the smallest wavelengths?", ("Gamma rays",))]),
    ("They were discovered by Paul Villard in 1900.", [("g2", "Who discovered gamma rays?", ("Paul Villard",))]),
    ("Gamma ray bursts come from distant galaxies.", [("g3", "Where do bursts come from?", ("distant galaxies",))]),
]
P_DELTA = [("A river delta forms at a river mouth.", [("d1", "Where does a delta form?", ("at a river mouth",))])]
P_EPS = [("Epsilon is the fifth letter of the Greek alphabet.", [("e1", "Which letter is epsilon?", ("fifth",))])]

TITLES = ["Alpha_Centauri", "Beta River/Basin", "Gamma ray", "Delta", "Épsilon (letter)"]


def _squad(extra: list[dict] | None = None) -> dict:
    arts = [_article(TITLES[0], P_ALPHA), _article(TITLES[1], P_BETA), _article(TITLES[2], P_GAMMA),
            _article(TITLES[3], P_DELTA), _article(TITLES[4], P_EPS)]
    # b2's second answer has a wrong answer_start (SQuAD has a few): it must still map exactly
    arts[1]["paragraphs"][0]["qas"][1]["answers"][1]["answer_start"] = 3
    return {"version": "1.1", "data": arts + (extra or [])}


@pytest.fixture
def squad_file(tmp_path: Path) -> Path:
    p = tmp_path / "dev.json"
    p.write_text(json.dumps(_squad(), ensure_ascii=False), encoding="utf-8")
    return p


ALL_IDS = ["a1", "a2", "a3", "a4", "b1", "b2", "g1", "g2", "g3", "d1", "e1"]


# ------------------------------------------------------------------------------------------ builder


def test_documents_are_articles_joined_by_blank_lines(squad_file):
    s = build_open_setting(squad_file)
    assert set(s.documents) == {"Alpha_Centauri.txt", "Beta_River_Basin.txt", "Gamma_ray.txt", "Delta.txt",
                                "Épsilon_letter.txt"}
    assert s.documents["Alpha_Centauri.txt"] == P_ALPHA[0][0] + "\n\n" + P_ALPHA[1][0]
    assert s.documents["Gamma_ray.txt"] == PARAGRAPH_SEPARATOR.join(p[0] for p in P_GAMMA)
    assert [i.id for i in s.items] == ALL_IDS
    assert {i.type for i in s.items} == {"present"} and s.removed_titles == set()
    assert s.present_titles == set(TITLES)
    assert s.items[0].extra == {"title": "Alpha_Centauri", "document": "Alpha_Centauri.txt"}


def test_evidence_slices_exactly(squad_file):
    s = build_open_setting(squad_file)
    n_spans = 0
    for item in s.items:
        assert item.answerable and item.evidence
        for span in item.evidence:
            assert span.document == item.extra["document"]
            assert s.documents[span.document][span.start:span.end] in item.answers
            n_spans += 1
        # every distinct answer has its span
        assert {s.documents[e.document][e.start:e.end] for e in item.evidence} == set(item.answers)
    assert n_spans == 13
    # the answer in the second paragraph is offset by the first paragraph and the separator
    a3 = next(i for i in s.items if i.id == "a3")
    assert a3.evidence[0].start == len(P_ALPHA[0][0]) + 2 + P_ALPHA[1][0].index("Robert Innes")
    # the wrong answer_start of b2's second answer was corrected to the nearest occurrence
    b2 = next(i for i in s.items if i.id == "b2")
    doc = s.documents["Beta_River_Basin.txt"]
    assert sorted((e.start, e.end) for e in b2.evidence) == [
        (doc.index("in winter"), doc.index("in winter") + 9), (doc.index("winter"), doc.index("winter") + 6)]


def test_removed_articles_are_unanswerable_and_absent(squad_file):
    s = build_open_setting(squad_file, remove_articles=2, seed=3)
    assert len(s.removed_titles) == 2 and len(s.present_titles) == 3
    assert not (s.removed_titles & s.present_titles)
    assert s.removed_titles | s.present_titles == set(TITLES)
    removed_docs = {s.document_of_title[t] for t in s.removed_titles}
    assert not removed_docs & set(s.documents)
    corpus = "\n".join(s.documents.values())
    source = {t: p for t, p in zip(TITLES, [P_ALPHA, P_BETA, P_GAMMA, P_DELTA, P_EPS])}
    for t in s.removed_titles:
        for context, _ in source[t]:
            assert context not in corpus
    for item in s.items:
        if item.extra["title"] in s.removed_titles:
            assert item.type == "removed" and item.answers == () and item.evidence == () and not item.answerable
            assert item.extra["removed_answers"]  # kept for inspection
        else:
            assert item.type == "present" and item.answerable
            assert item.extra["document"] in s.documents
    assert [i.id for i in s.items] == ALL_IDS  # every question is still asked


def test_seeded_removal_is_deterministic(squad_file):
    first = build_open_setting(squad_file, remove_articles=2, seed=11)
    again = build_open_setting(squad_file, remove_articles=2, seed=11)
    assert first.removed_titles == again.removed_titles and first.documents == again.documents
    assert [(i.id, i.type) for i in first.items] == [(i.id, i.type) for i in again.items]
    # different seeds choose different articles (10 possible pairs; seeds 0-9 give several)
    assert len({frozenset(build_open_setting(squad_file, remove_articles=2, seed=k).removed_titles)
                for k in range(10)}) >= 3


def test_remove_articles_bounds(squad_file):
    everything = build_open_setting(squad_file, remove_articles=5)
    assert everything.documents == {} and everything.removed_titles == set(TITLES)
    assert all(not i.answerable for i in everything.items)
    with pytest.raises(ValueError, match="only 5"):
        build_open_setting(squad_file, remove_articles=6)
    with pytest.raises(ValueError):
        build_open_setting(squad_file, remove_articles=-1)
    # with a title filter the bound is the number of selected articles
    with pytest.raises(ValueError, match="only 2"):
        build_open_setting(squad_file, titles={"Delta", "Gamma ray"}, remove_articles=3)


def test_limit_samples_the_same_questions_with_and_without_removal(squad_file):
    a = build_open_setting(squad_file, limit=5, seed=4)
    b = build_open_setting(squad_file, limit=5, seed=4, remove_articles=2)
    c = build_open_setting(squad_file, limit=5, seed=5)
    ids = [i.id for i in a.items]
    assert len(ids) == 5 and ids == [i.id for i in b.items]
    assert ids == [q for q in ALL_IDS if q in ids]  # file order
    assert len({tuple(i.id for i in build_open_setting(squad_file, limit=5, seed=k).items) for k in range(6)}) > 1
    assert c.documents == a.documents  # the sample does not change the corpus
    assert [i.id for i in build_open_setting(squad_file, limit=50).items] == ALL_IDS
    with pytest.raises(ValueError):
        build_open_setting(squad_file, limit=0)


def test_titles_filter(squad_file):
    s = build_open_setting(squad_file, titles={"Delta", "Gamma ray"}, remove_articles=1, seed=0)
    assert s.present_titles | s.removed_titles == {"Delta", "Gamma ray"}
    assert {i.extra["title"] for i in s.items} == {"Delta", "Gamma ray"}
    assert len(s.documents) == 1
    with pytest.raises(ValueError, match="no article titled"):
        build_open_setting(squad_file, titles={"Nope"})


def test_safe_titles_and_collisions(tmp_path):
    assert safe_title("Beta River/Basin") == "Beta_River_Basin"
    assert safe_title("../..") == "article"
    assert safe_title("Beyoncé") == "Beyoncé" and safe_title("Épsilon (letter)") == "Épsilon_letter"
    data = {"data": [_article("A/B", P_DELTA), _article("A B", P_EPS), _article("a-b", P_BETA)]}
    p = tmp_path / "c.json"
    p.write_text(json.dumps(data), encoding="utf-8")
    s = build_open_setting(p)
    assert sorted(s.documents) == ["A_B.txt", "A_B_2.txt", "a-b.txt"]
    assert s.document_of_title == {"A/B": "A_B.txt", "A B": "A_B_2.txt", "a-b": "a-b.txt"}
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps({"data": [_article("X", P_DELTA), _article("X", P_EPS)]}), encoding="utf-8")
    with pytest.raises(ValueError, match="twice"):
        build_open_setting(dup)


def test_long_titles_make_file_names_a_file_system_takes(tmp_path):
    """A title longer than a file name may be (255 bytes: 300 letters, or 90 CJK characters of 3 bytes) made
    write_corpus fail with a bare OSError (File name too long); names are now cut, and still unique."""
    long_cjk, long_latin = "東京" * 45, "x" * 300
    assert len(safe_title(long_latin).encode("utf-8")) <= 200 and safe_title(long_cjk) == "東京" * 33
    data = {"data": [_article(long_latin, P_DELTA), _article(long_latin + "y", P_EPS), _article(long_cjk, P_BETA)]}
    p = tmp_path / "long.json"
    p.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    s = build_open_setting(p)
    assert len(set(s.document_of_title.values())) == 3
    folder = write_corpus(s, tmp_path / "corpus")
    assert sorted(f.name for f in folder.iterdir()) == sorted(s.documents)
    assert all(read_text(folder / name) == text for name, text in s.documents.items())


def test_v2_impossible_questions_are_unanswerable_in_present_articles(tmp_path):
    art = _article("T", P_DELTA)
    art["paragraphs"][0]["qas"].append({"id": "imp", "question": "Who named it?", "answers": [],
                                        "plausible_answers": [{"text": "river", "answer_start": 8}],
                                        "is_impossible": True})
    p = tmp_path / "v2.json"
    p.write_text(json.dumps({"version": "v2.0", "data": [art]}), encoding="utf-8")
    s = build_open_setting(p)
    imp = next(i for i in s.items if i.id == "imp")
    assert imp.type == "present" and not imp.answerable and imp.evidence == ()


def test_write_corpus_round_trips_and_syncs(squad_file, tmp_path):
    folder = tmp_path / "corpus"
    full = build_open_setting(squad_file)
    write_corpus(full, folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted(full.documents)
    for name, text in full.documents.items():
        assert read_text(folder / name) == text  # what the index will read, offsets included
    # reuse the folder with articles removed: their files go, the others stay untouched
    (folder / "notes.bin").write_bytes(b"x")  # not a document: left alone
    mtime = (folder / "Delta.txt").stat().st_mtime_ns
    fewer = build_open_setting(squad_file, remove_articles=2, seed=3)
    write_corpus(fewer, folder)
    assert sorted(p.name for p in folder.glob("*.txt")) == sorted(fewer.documents)
    assert (folder / "notes.bin").exists()
    if "Delta.txt" in fewer.documents:
        assert (folder / "Delta.txt").stat().st_mtime_ns == mtime


def test_check_no_training_articles(squad_file, tmp_path):
    train = tmp_path / "train.json"
    train.write_text(json.dumps({"data": [_article("Other", P_DELTA), _article("Delta", P_DELTA)]}), encoding="utf-8")
    with pytest.raises(TrainingArticlesError, match="Delta"):
        check_no_training_articles(squad_file, train)
    clean = tmp_path / "train2.json"
    clean.write_text(json.dumps({"data": [_article("Other", P_DELTA)]}), encoding="utf-8")
    assert check_no_training_articles(squad_file, clean) is None
    assert squad_titles(clean) == ["Other"]


def test_real_dev_file_shares_no_article_with_train():
    from qa.config import get_settings

    squad_dir = Path(get_settings().squad_dir)
    dev, train = squad_dir / "squad-v1.1-dev-42.json", squad_dir / "squad-v1.1-train.json"
    assert dev.is_file() and train.is_file(), f"SQuAD files missing in {squad_dir}"
    check_no_training_articles(dev, train)
    with pytest.raises(TrainingArticlesError):
        check_no_training_articles(train, train)


def test_index_over_the_written_corpus_keeps_offsets(squad_file, tmp_path, embedder):
    from qa.evaluation.open_squad import build_index

    s = build_open_setting(squad_file, remove_articles=1, seed=0)
    settings = Settings(corpus_dir=write_corpus(s, tmp_path / "corpus"), index_dir=tmp_path / "index")
    store = build_index(settings)
    assert sorted(store.document_ids()) == sorted(s.documents)
    for item in s.items:
        for span in item.evidence:
            assert store.document_text(span.document)[span.start:span.end] in item.answers
    for chunk in store.chunks:
        assert store.document_text(chunk.document)[chunk.start:chunk.end] == chunk.text
    # rebuilding with another removal only re-embeds what changed
    s2 = build_open_setting(squad_file, remove_articles=1, seed=1)
    write_corpus(s2, tmp_path / "corpus")
    store2 = build_index(settings)
    assert sorted(store2.document_ids()) == sorted(s2.documents)
    assert set(store2.build_report.reused) == set(s.documents) & set(s2.documents)


# ----------------------------------------------------------------------------------------------- CLI


class CorpusPipeline:
    """Answers from the corpus folder it was built on: the right answer, located in the document, for
    questions whose answer is in the corpus; for the others (removed articles) a low-scored guess and
    an abstention."""

    def __init__(self, settings, gold: dict[str, tuple[str, str]]):
        self.settings = settings
        self.docs = {p.name: read_text(p) for p in Path(settings.corpus_dir).glob("*.txt")}
        self.gold = gold  # question -> (document, answer)

    def document_text(self, doc_id: str) -> str:
        return self.docs[doc_id]

    def ask(self, question, top_k=None, max_answers=None) -> AskResult:
        doc, text = self.gold[question]
        if doc in self.docs:
            body, score, found = self.docs[doc], 0.9, True
        else:  # a guess in some other document
            doc = sorted(self.docs)[0]
            body, score, found = self.docs[doc], 0.2, False
            text = body.split()[0]
        s = body.index(text)
        cit = Citation(document=doc, start=s, end=s + len(text), text=text, score=score, context=body,
                       context_start=0, context_end=len(body))
        ans = Answer(text=text, score=score, citations=[cit])
        return AskResult(question=question, answer_found=found, answers=[ans] if found else [],
                         passages=[PassageOut(document=doc, start=0, end=len(body), score=1.0, rank=1, text=body)],
                         no_answer_score=1 - score, best_guess=ans)


def _gold() -> dict[str, tuple[str, str]]:
    s = build_open_setting_from_dict()
    return {i.question: (i.extra["document"], i.answers[0]) for i in s.items}


def build_open_setting_from_dict():
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.json"
        p.write_text(json.dumps(_squad(), ensure_ascii=False), encoding="utf-8")
        return build_open_setting(p)


def _args(**kw) -> argparse.Namespace:
    base = dict(files=[], json=True, out=None, mode=None, k=None, max_answers=None, squad=None, reader_dir=None,
                limit=None, no_progress=True, retrieval_only=False, open_squad=None, remove_articles=0, seed=0,
                workdir=None)
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.fixture
def fake_cli(monkeypatch, tmp_path):
    seen: dict = {"index": [], "pipelines": []}
    squad_dir = tmp_path / "squad_dir"  # no train file here unless a test writes one
    squad_dir.mkdir()
    monkeypatch.setattr(eval_cli, "_settings_for", lambda args: Settings(squad_dir=squad_dir))

    def fake_index(settings, progress=False):
        seen["index"].append((Path(settings.corpus_dir), Path(settings.index_dir)))
        seen["corpus_files"] = sorted(p.name for p in Path(settings.corpus_dir).glob("*.txt"))
        return None

    gold = _gold()

    def fake_pipeline(settings):
        p = CorpusPipeline(settings, gold)
        seen["pipelines"].append(p)
        return p

    monkeypatch.setattr(eval_cli, "build_open_index", fake_index)
    monkeypatch.setattr(eval_cli, "make_pipeline", fake_pipeline)
    seen["squad_dir"] = squad_dir
    return seen


def test_cmd_open_squad(squad_file, tmp_path, fake_cli, capsys):
    out = tmp_path / "report"
    work = tmp_path / "work"
    rc = eval_cli.cmd_eval(_args(open_squad=squad_file, remove_articles=2, seed=3, out=out, workdir=work))
    assert rc == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    expected = build_open_setting(squad_file, remove_articles=2, seed=3)
    assert fake_cli["index"] == [(work / "corpus", work / "index")]
    assert fake_cli["corpus_files"] == sorted(expected.documents)
    assert summary["meta"]["open_squad"]["removed_articles"] == sorted(expected.removed_titles)
    n_removed = sum(1 for i in expected.items if i.type == "removed")
    o, present, removed = summary["overall"], summary["by_type"]["present"], summary["by_type"]["removed"]
    assert o["count"] == 11 and removed["count"] == n_removed and present["count"] == 11 - n_removed
    # the fake answers every present question right and abstains on every removed one
    assert present["f1"] == 100.0 and present["coverage"] == 100.0
    assert removed["no_answer_accuracy"] == 100.0 and removed["coverage"] == 0.0 and removed["f1"] == 100.0
    assert o["auroc_answerable"] == 1.0 and o["auroc_correct"] == 1.0
    # a perfect ranking: the AURC is the oracle's, above 0 because the removed questions are all wrong
    assert o["aurc"] == pytest.approx(o["aurc_optimal"]) and o["aurc"] > 0
    assert o["citation_validity"] == 100.0 and o["citation_accuracy"] == 100.0 and o["recall@k"] == 100.0
    assert removed["auroc_correct"] is None  # only wrong guesses there
    assert {p.name for p in out.iterdir()} == {"report.json", "report.md", "chart.png"}
    assert "removed" in captured.err and "AURC" in captured.err
    assert json.loads((work / "setting.json").read_text(encoding="utf-8"))["questions"] == 11
    # the kept work folder is reused: no removal now, every article back in the corpus
    assert eval_cli.cmd_eval(_args(open_squad=squad_file, out=tmp_path / "r2", workdir=work)) == 0
    assert fake_cli["corpus_files"] == sorted(build_open_setting(squad_file).documents)
    assert json.loads(capsys.readouterr().out)["overall"]["f1"] == 100.0


def test_cmd_open_squad_temporary_workdir_and_limit(squad_file, tmp_path, fake_cli, capsys):
    assert eval_cli.cmd_eval(_args(open_squad=squad_file, limit=4, seed=1, out=tmp_path / "r")) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["overall"]["count"] == 4 and summary["meta"]["limit"] == 4
    corpus, index = fake_cli["index"][0]
    assert not corpus.exists()  # the temporary folder is gone


def test_cmd_open_squad_refuses_training_articles(squad_file, tmp_path, fake_cli, capsys):
    train = fake_cli["squad_dir"] / "squad-v1.1-train.json"
    train.write_text(json.dumps({"data": [_article("Gamma ray", P_GAMMA)]}), encoding="utf-8")
    assert eval_cli.cmd_eval(_args(open_squad=squad_file, out=tmp_path / "r")) == 2
    err = capsys.readouterr().err
    assert "Gamma ray" in err and "training file" in err
    assert fake_cli["index"] == [] and fake_cli["pipelines"] == []


def test_cmd_open_squad_bad_arguments(squad_file, tmp_path, fake_cli, capsys):
    assert eval_cli.cmd_eval(_args(open_squad=squad_file, remove_articles=9, out=tmp_path / "r")) == 2
    assert "cannot remove 9 articles" in capsys.readouterr().err
    assert eval_cli.cmd_eval(_args(open_squad=squad_file, remove_articles=-1)) == 2
    assert eval_cli.cmd_eval(_args(open_squad=tmp_path / "missing.json")) == 2
    assert fake_cli["index"] == []


def test_cmd_open_squad_refuses_a_carriage_return_in_one_line(tmp_path, fake_cli, capsys):
    """A paragraph with a CR (its file would read back with other offsets) stopped the run in write_corpus with a
    traceback; it is now an input error (exit 2, one line) before anything is written or indexed. In a removed
    article it is harmless (never written)."""
    data = _squad()
    ctx = data["data"][3]["paragraphs"][0]["context"]  # Delta
    data["data"][3]["paragraphs"][0]["context"] = ctx.replace(" at ", " at\r\n", 1)
    p = tmp_path / "cr.json"
    p.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert eval_cli.cmd_eval(_args(open_squad=p, out=tmp_path / "r", workdir=tmp_path / "w")) == 2
    err = capsys.readouterr().err
    assert "carriage return" in err and "'Delta'" in err and "Traceback" not in err
    assert fake_cli["index"] == [] and not (tmp_path / "w").exists()
    plain = tmp_path / "plain.json"  # the same titles: the same seeded draw
    plain.write_text(json.dumps(_squad(), ensure_ascii=False), encoding="utf-8")
    seed = next(n for n in range(50) if build_open_setting(plain, remove_articles=1, seed=n).removed_titles == {"Delta"})
    assert "Delta.txt" not in build_open_setting(p, remove_articles=1, seed=seed).documents


def test_argparse_open_squad():
    parser = argparse.ArgumentParser(prog="qa")
    sub = parser.add_subparsers(dest="command", required=True)
    eval_cli.add_eval_command(sub)
    args = parser.parse_args(["eval", "--open-squad", "dev.json", "--remove-articles", "8", "--limit", "600",
                              "--seed", "3", "--workdir", "w"])
    assert (args.open_squad, args.remove_articles, args.limit, args.seed, args.workdir) == (
        Path("dev.json"), 8, 600, 3, Path("w"))
    args = parser.parse_args(["eval"])
    assert args.open_squad is None and args.remove_articles == 0 and args.seed == 0 and args.workdir is None


def test_open_squad_report_markdown_names_the_setting(squad_file, tmp_path, fake_cli, capsys):
    out = tmp_path / "r"
    assert eval_cli.cmd_eval(_args(open_squad=squad_file, remove_articles=1, seed=2, out=out)) == 0
    capsys.readouterr()
    md = (out / "report.md").read_text(encoding="utf-8")
    removed = sorted(build_open_setting(squad_file, remove_articles=1, seed=2).removed_titles)
    assert f"5 articles as documents, 1 removed ({removed[0]})" in md
    assert "| present |" in md and "| removed |" in md and "## Confidence (selective QA)" in md


def test_builder_imports_without_models():
    import subprocess
    import sys

    code = ("import sys, qa.evaluation.open_squad, qa.evaluation.selective; "
            "heavy = [m for m in ('torch', 'transformers', 'faiss', 'sentence_transformers') if m in sys.modules]; "
            "assert not heavy, heavy")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_cmd_open_squad_refuses_the_service_folders_as_workdir(squad_file, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    (home / "corpus").mkdir(parents=True)
    (home / "corpus" / "mine.txt").write_text("my own document", encoding="utf-8")
    monkeypatch.setattr(eval_cli, "_settings_for",
                        lambda args: Settings(squad_dir=tmp_path / "none", corpus_dir=home / "corpus",
                                              index_dir=tmp_path / "elsewhere"))
    monkeypatch.setattr(eval_cli, "build_open_index", lambda settings, progress=False: pytest.fail("indexed"))
    assert eval_cli.cmd_eval(_args(open_squad=squad_file, workdir=home)) == 2
    assert "service's own corpus" in capsys.readouterr().err
    assert (home / "corpus" / "mine.txt").exists()


def test_cmd_open_squad_uses_its_own_faiss_index_whatever_the_store(squad_file, tmp_path, fake_cli, monkeypatch,
                                                                     capsys):
    """With QA_STORE=milvus the run's pipeline opened the service's own Milvus store (QA_MILVUS_URI): it evaluated
    the service's documents (or filled an empty store with the articles). It now reads the FAISS index it builds."""
    service_db = tmp_path / "service" / "milvus.db"
    monkeypatch.setattr(eval_cli, "_settings_for", lambda args: Settings(
        squad_dir=fake_cli["squad_dir"], store="milvus", milvus_uri=str(service_db)))
    work = tmp_path / "work"
    assert eval_cli.cmd_eval(_args(open_squad=squad_file, out=tmp_path / "r", workdir=work)) == 0
    (pipeline,) = fake_cli["pipelines"]
    assert pipeline.settings.store == "faiss" and Path(pipeline.settings.index_dir) == work / "index"
    assert json.loads(capsys.readouterr().out)["overall"]["f1"] == 100.0
