"""One SQuAD loader (qa.squad_data) behind training and evaluation, with one is_impossible rule."""

from __future__ import annotations

import json

import pytest

from qa.evaluation.squad import load_squad_file
from qa.training.squad import load_squad, squad_titles
from qa.squad_data import is_impossible, read_squad

SQUAD = {
    "version": "v2.0",
    "data": [
        {"title": "Harbour", "paragraphs": [{"context": "The Quillon lighthouse was built in 1873.", "qas": [
            {"id": "a", "question": "When was it built?", "answers": [{"text": "1873", "answer_start": 36}]},
            {"id": "b", "question": "Who painted it?", "answers": [], "is_impossible": True,
             "plausible_answers": [{"text": "Quillon", "answer_start": 4}]},
            {"id": "c", "question": "How tall is it?", "answers": []},  # no flag, no answer
        ]}]},
        {"title": "Ferry", "paragraphs": [{"context": "The ferry leaves at 07:45.", "qas": [
            {"id": 7, "question": "When does it leave?", "answers": [{"text": "07:45", "answer_start": 20}]},
        ]}]},
    ],
}


@pytest.fixture
def squad_file(tmp_path):
    p = tmp_path / "squad.json"
    p.write_text(json.dumps(SQUAD), encoding="utf-8")
    return p


def test_one_is_impossible_rule_for_training_and_evaluation(squad_file):
    version, items = read_squad(squad_file)
    assert version == "v2.0" and [i.id for i in items] == ["a", "b", "c", "7"]
    rule = {i.id: i.is_impossible for i in items}
    assert rule == {"a": False, "b": True, "c": True, "7": False}
    assert {e.id: e.is_impossible for e in load_squad(squad_file)} == rule
    _, questions = load_squad_file(squad_file)
    assert {q.id: q.is_impossible for q in questions} == rule
    assert {q.id: q.gold for q in questions} == {"a": ["1873"], "b": [""], "c": [""], "7": ["07:45"]}
    assert is_impossible({"answers": [{"text": "x"}], "is_impossible": True})
    assert not is_impossible({"answers": [{"text": "x"}]})


def test_titles_limit_and_bad_files(squad_file, tmp_path):
    assert squad_titles(squad_file) == ["Harbour", "Ferry"]
    assert [e.id for e in load_squad(squad_file, titles={"Ferry"})] == ["7"]
    assert load_squad(squad_file)[0].answers == [{"text": "1873", "answer_start": 36}]
    assert [q.id for q in load_squad_file(squad_file, limit=2)[1]] == ["a", "b"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"articles": []}', encoding="utf-8")
    with pytest.raises(ValueError, match="not a SQuAD file"):
        read_squad(bad)
