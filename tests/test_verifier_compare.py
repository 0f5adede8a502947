"""eval/verifier_compare.py: verifier files scored on the same saved answers, figures checked by hand."""

import json

from eval.verifier_compare import main, scored
from qa.verifier.features import FULL


def _verifier(path, coef_on_span, min_confidence):
    n = len(FULL)
    full = {"features": FULL, "mean": [0.0] * n, "scale": [1.0] * n,
            "coef": [coef_on_span if f == "span_logit" else 0.0 for f in FULL], "intercept": 0.0,
            "isotonic": {"x": [], "y": []}}
    path.write_text(json.dumps({"models": {"full": full}, "min_confidence": min_confidence}))
    return path


def _row(span_logit, label, answerable, rank=0, read="all"):
    r = {f: 0.0 for f in FULL}
    r.update(span_logit=span_logit, _label=label, _answerable=answerable, _rank=rank, _read=read)
    return r


ROWS = [
    _row(3.0, 1, True), _row(2.0, 1, True), _row(-1.0, 0, True),  # answerable: two right, one wrong
    _row(-2.0, 0, False), _row(1.0, 0, False),  # unanswerable: always wrong
    _row(5.0, 1, True, rank=1),  # not a top answer: not scored
    _row(-5.0, 0, True, read="first"),  # a cascade's first read: not what a full read serves
]


def test_scores_top_answers_of_full_reads_at_the_files_threshold(tmp_path):
    m = scored(ROWS, _verifier(tmp_path / "a.json", 1.0, 0.5))
    # P = sigmoid(span_logit): 0.95, 0.88, 0.27 | 0.12, 0.73; threshold 0.5
    assert m["questions"] == 5 and m["answerable"] == 3 and m["unanswerable"] == 2
    assert abs(m["refused"] - 1 / 3) < 1e-9  # the wrong answerable one (0.27)
    assert m["caught"] == 1  # 0.12 caught, 0.73 answered
    # right (0.95, 0.88) above every wrong (0.27, 0.12, 0.73)
    assert m["auroc"] == 1.0
    flat = scored(ROWS, _verifier(tmp_path / "b.json", 0.0, 0.6))  # P = 0.5 for all: refuses everything
    assert flat["auroc"] == 0.5 and flat["refused"] == 1.0 and flat["caught"] == 2
    assert abs(flat["ece"] - abs(0.4 - 0.5)) < 1e-9  # one bin: 2 of 5 right at confidence 0.5


def test_command_prints_each_file_and_writes_json(tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = tmp_path / "figures.json"
    assert main(["--rows", str(rows), "--verifier", f"a={_verifier(tmp_path / 'a.json', 1.0, 0.5)}",
                 "--verifier", f"b={_verifier(tmp_path / 'b.json', 0.0, 0.6)}", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "\na " in printed and "\nb " in printed
    figures = json.loads(out.read_text())
    assert set(figures) == {"a", "b"} and figures["a"]["caught"] == 1
