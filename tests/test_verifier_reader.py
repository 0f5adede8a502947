"""The reader with shared normalisation and a verifier: scores are the verifier's P(correct), abstention follows
QA_MIN_CONFIDENCE, the best guess is kept, and every citation still slices its document exactly."""

import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from qa.config import default_embedding_model
from qa.reader.reader import ExtractiveReader
from qa.types import Chunk, Passage
from qa.verifier.features import FULL, READER
from qa.verifier.model import FILE_NAME


def _linear(features, coef_on_span=1.0):
    n = len(features)
    coef = [coef_on_span if f == "span_logit" else 0.0 for f in features]
    return {"features": features, "mean": [0.0] * n, "scale": [1.0] * n, "coef": coef, "intercept": 0.0,
            "isotonic": {"x": [], "y": []}}


@pytest.fixture(scope="module")
def verified_dir(tmp_path_factory):
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("verified_reader")
    AutoModelForQuestionAnswering.from_pretrained(default_embedding_model()).save_pretrained(out)
    AutoTokenizer.from_pretrained(default_embedding_model()).save_pretrained(out)
    (out / "reader_config.json").write_text(json.dumps({"threshold": 0.0, "normalisation": "shared"}))
    # P(correct) = the span probability itself (logistic of its logit), no calibration curve
    (out / FILE_NAME).write_text(json.dumps({"models": {"full": _linear(FULL), "reader": _linear(READER)},
                                             "min_confidence": 0.5}))
    return out


@pytest.fixture(scope="module")
def verified_reader(verified_dir):
    r = ExtractiveReader(verified_dir, max_length=64, stride=16, n_best=10)
    r.warm_up()
    return r


TEXT = "Protests began in Zhanaozen on 2 January. The price of gas had doubled. Tokayev asked the CSTO for help."


def _passages(chunker, text):
    return [Passage(chunk=c, score=1.0, rank=i + 1, scores={"dense": 0.5, "bm25": 2.0})
            for i, c in enumerate(chunker.chunk_text(text, "doc.txt"))]


def test_loads_verifier_and_shared_decoding(verified_reader):
    assert verified_reader.shared and verified_reader.verifier is not None
    assert verified_reader.min_confidence == 0.5


def test_scores_are_the_verifiers_and_abstention_follows_min_confidence(verified_reader, chunker):
    out = verified_reader.run("When did the protests begin?", _passages(chunker, TEXT), {"doc.txt": TEXT}.__getitem__)
    assert out.best_guess is not None
    rows = out.extra["features"]
    probs = verified_reader.verifier.score(rows, "full")
    # every answer's score is the verifier's probability of its row; the order stays the reader's (by support)
    assert out.best_guess.score == pytest.approx(probs[0], abs=1e-6)
    assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)
    assert out.answer_found == (out.best_guess.score >= 0.5)
    assert all(a.score >= 0.5 for a in out.answers)


def test_min_confidence_setting_overrides_the_file(verified_dir, chunker):
    strict = ExtractiveReader(verified_dir, max_length=64, stride=16, min_confidence=1.0)
    strict.warm_up()
    out = strict.run("When did the protests begin?", _passages(chunker, TEXT), {"doc.txt": TEXT}.__getitem__)
    assert not out.answer_found and out.answers == [] and out.best_guess is not None


def test_without_verifier_the_old_rule_applies(verified_dir, chunker):
    r = ExtractiveReader(verified_dir, max_length=64, stride=16, use_verifier=False)
    r.warm_up()
    assert r.verifier is None
    out = r.run("When?", _passages(chunker, TEXT), {"doc.txt": TEXT}.__getitem__)
    assert out.answer_found  # threshold 0.0 in reader_config.json


def test_reader_alone_uses_the_reader_feature_set(verified_reader):
    out = verified_reader.read_contexts("Who asked for help?", [("p1", TEXT)])
    assert set(out.extra["features"][0]) == set(READER)


_alphabet = st.sampled_from(list("abc XYZ019.,!?\n") + ["é", "e\u0301", "日本語", "😀", "\u200b", "ß", "ﬁ", "עברית",
                                                      "\n\n", "\ufeff", "a" * 200])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(text=st.lists(_alphabet, min_size=1, max_size=80).map("".join).filter(lambda t: t.strip()),
       question=st.text(min_size=1, max_size=30).filter(lambda q: q.strip()))
def test_every_citation_slices_exactly_with_the_verifier(verified_reader, chunker, text, question):
    out = verified_reader.run(question, _passages(chunker, text), {"doc.txt": text}.__getitem__, max_answers=10)
    for a in out.answers + ([out.best_guess] if out.best_guess else []):
        assert a.top.text == a.text
        assert 0.0 <= a.score <= 1.0
        for c in a.citations:
            assert text[c.start : c.end] == c.text
            assert text[c.context_start : c.context_end] == c.context


def test_the_cascade_scores_its_first_step_with_the_first_passages_model(verified_dir, chunker, tmp_path):
    """With a ``first`` model in verifier.json, the cascade's first step is scored by it (here: always sure, so the
    question exits after one passage with that score); without one, by the full model (here: the span
    probability, below the bar, so every passage is read)."""
    import numpy as np

    from qa.verifier.model import model_from_dict

    def reader(models: dict) -> ExtractiveReader:
        d = tmp_path / "-".join(sorted(models))
        shutil.copytree(verified_dir, d)
        (d / FILE_NAME).write_text(json.dumps({"models": models, "min_confidence": 0.5}))
        r = ExtractiveReader(d, max_length=64, stride=16, first_passages=1, early_exit_by="confidence",
                             early_exit_score=0.99)
        r.warm_up()
        return r

    sure = dict(_linear(FULL, coef_on_span=0.0), intercept=8.0)  # P = sigmoid(8) = 0.9997 whatever the features
    text = TEXT + "\n\n" + TEXT.replace("Zhanaozen", "Aktau")
    cut = len(TEXT) + 2
    passages = [Passage(chunk=c, score=1.0, rank=i + 1, scores={"dense": 0.5, "bm25": 2.0})
                for i, c in enumerate([Chunk("doc.txt", 0, len(TEXT), TEXT), Chunk("doc.txt", cut, len(text), text[cut:])])]
    q = "When did the protests begin?"
    with_first = reader({"full": _linear(FULL), "reader": _linear(READER), "first": sure})
    out = with_first.run(q, passages, {"doc.txt": text}.__getitem__)
    assert out.passages_read == 1
    expected = model_from_dict(sure).predict(np.zeros((1, len(FULL))))[0]
    assert out.best_guess.score == pytest.approx(expected, abs=1e-6) and out.answer_found
    without = reader({"full": _linear(FULL), "reader": _linear(READER)})
    out = without.run(q, passages, {"doc.txt": text}.__getitem__)
    assert out.passages_read == len(passages)
    for a in out.answers:
        for c in a.citations:
            assert text[c.start : c.end] == c.text
