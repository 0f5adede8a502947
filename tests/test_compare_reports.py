"""eval/compare_reports.py: paired F1 differences with a bootstrap interval, answerable and all questions."""

from __future__ import annotations

import json
import sys

import pytest

from qa.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "eval"))
import compare_reports  # noqa: E402


def _item(i, f1, answerable=True, abstained=False):
    return {"id": f"q{i}", "f1": f1, "answerable": answerable, "abstained": abstained}


def test_paired_difference_hand_computed():
    mean, lo, hi = compare_reports.paired_difference([0.5] * 10)
    assert (mean, lo, hi) == (0.5, 0.5, 0.5)  # every resample has the same mean
    mean, lo, hi = compare_reports.paired_difference([1.0, -1.0] * 50)
    assert mean == 0.0 and lo < 0 < hi and hi - lo < 0.5  # ~ +-1.96 * 1 / sqrt(100) = +-0.2
    assert compare_reports.paired_difference([1.0, 0.0, 0.0], seed=3) == compare_reports.paired_difference(
        [1.0, 0.0, 0.0], seed=3)


def test_compare_counts_answerable_all_and_caught(tmp_path, capsys):
    old = [_item(0, 1.0), _item(1, 0.0), _item(2, 0.5), _item(3, 1.0, False, True), _item(4, 1.0, False, True)]
    new = [_item(0, 1.0), _item(1, 1.0), _item(2, 0.5), _item(3, 0.0, False, False), _item(4, 1.0, False, True),
           _item(9, 1.0)]  # q9 is not in the old report: left out
    lines = compare_reports.compare(old, new)
    assert lines[0].startswith("answerable questions: 3; F1 new - old: +33.3")
    assert "worse on 0, better on 1" in lines[0]
    assert lines[1].startswith("all questions: 5; F1 new - old: +0.0") and "worse on 1, better on 1" in lines[1]
    assert lines[2] == "unanswerable questions caught: 2 -> 1 of 2"
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"items": old}))
    b.write_text(json.dumps({"items": new}))
    assert compare_reports.main(str(a), str(b)) == 0
    assert "unanswerable questions caught: 2 -> 1 of 2" in capsys.readouterr().out
    b.write_text(json.dumps({"items": [_item(7, 1.0)]}))
    assert compare_reports.main(str(a), str(b)) == 1


@pytest.mark.parametrize("n", [1, 7])
def test_interval_holds_the_mean(n):
    diffs = [((i * 37) % 11 - 5) / 10 for i in range(n)]
    mean, lo, hi = compare_reports.paired_difference(diffs, resamples=400)
    assert lo <= mean <= hi
