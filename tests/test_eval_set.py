"""The hand-written evaluation set eval/seeds_qa.jsonl is well-formed and its evidence offsets are exact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVAL_FILE = ROOT / "eval" / "seeds_qa.jsonl"
SEEDS = ROOT / "seeds"


def _load() -> list[dict]:
    with EVAL_FILE.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


ITEMS = _load()
DOCS = {p.name: p.open(encoding="utf-8").read() for p in SEEDS.iterdir() if p.is_file()}


def test_counts():
    assert len(ITEMS) >= 80
    unanswerable = [it for it in ITEMS if it["type"] == "unanswerable"]
    assert len(unanswerable) >= 12
    multi = [it for it in ITEMS if it["type"] == "multi-document"]
    assert len(multi) >= 10


def test_ids_and_questions_unique():
    ids = [it["id"] for it in ITEMS]
    assert len(ids) == len(set(ids))
    questions = [it["question"].strip().lower() for it in ITEMS]
    assert len(questions) == len(set(questions))


def test_fields():
    for it in ITEMS:
        assert {"id", "question", "answers", "evidence", "type"} <= set(it), it
        assert isinstance(it["question"], str) and it["question"].strip()
        assert isinstance(it["answers"], list) and all(isinstance(a, str) and a.strip() for a in it["answers"])


@pytest.mark.parametrize("item", ITEMS, ids=[it["id"] for it in ITEMS])
def test_evidence_slices_to_an_answer(item):
    if item["type"] == "unanswerable":
        assert item["answers"] == [] and item["evidence"] == []
        return
    assert item["answers"], "answerable items need at least one answer"
    assert item["evidence"], "answerable items need at least one evidence span"
    for ev in item["evidence"]:
        assert ev["document"] in DOCS, f"unknown document {ev['document']}"
        text = DOCS[ev["document"]]
        assert 0 <= ev["start"] < ev["end"] <= len(text)
        assert text[ev["start"] : ev["end"]] in item["answers"]
    docs = {ev["document"] for ev in item["evidence"]}
    assert (item["type"] == "multi-document") == (len(docs) > 1)


def test_every_answer_is_verbatim_in_some_article():
    corpus = list(DOCS.values())
    for it in ITEMS:
        for a in it["answers"]:
            assert any(a in text for text in corpus), (it["id"], a)


def test_protests_began_january_2():
    item = next(it for it in ITEMS if it["question"] == "When did the protests in Kazakhstan begin?")
    assert item["answers"][0] == "January 2"
    assert len({ev["document"] for ev in item["evidence"]}) >= 4


def test_file_matches_authoring_script():
    result = subprocess.run(
        [sys.executable, str(ROOT / "eval" / "build_seeds_qa.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr + result.stdout
