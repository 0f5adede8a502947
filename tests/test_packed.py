"""QA_READER_PACKED (qa.reader.packed): windows of different lengths in one forward without padding give the padded
forward's logits and the same answers, citations stay exact, and a model it cannot walk falls back cleanly."""

from __future__ import annotations

import numpy as np
import pytest

from qa.config import Settings
from qa.reader.forward import forward_logits
from qa.reader.packed import matches_padded, packed_logits, supports
from qa.reader.reader import ExtractiveReader
from shipped import (RUNTIME_QUESTIONS as QUESTIONS, SHIPPED, UNREST as CTX, assert_citations_exact, assert_same_answers,
                     citation_property, two_passages)


@pytest.fixture(scope="module")
def packed_reader() -> ExtractiveReader:
    r = ExtractiveReader(SHIPPED, precision="fp32", packed=True, token_keep=1.0)  # pruning: test_token_pruning.py
    r.warm_up()
    return r


@pytest.fixture(scope="module")
def padded_reader() -> ExtractiveReader:
    r = ExtractiveReader(SHIPPED, precision="fp32", packed=False)
    r.warm_up()
    return r


def _rows(lengths, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for n in lengths:
        ids = rng.integers(1000, 20000, size=n).astype(np.int64)
        ids[0] = 101
        types = np.zeros(n, dtype=np.int64)
        types[min(n - 1, 9):] = 1
        rows.append((ids, types))
    return rows


@pytest.mark.parametrize("per_window", [True, False])
@pytest.mark.parametrize("lengths", [[17], [5, 220], [64, 64, 63], [256, 3, 130, 199, 41]])
def test_logits_are_the_padded_forwards(padded_reader, lengths, per_window):
    """Both ways of attending (window by window, the CPU's; one padded block, the GPU's) give the padded logits."""
    rows = _rows(lengths)
    width = max(lengths)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for i, (a, b) in enumerate(rows):
        ids[i, : len(a)], mask[i, : len(a)], types[i, : len(a)] = a, 1, b
    s, e = forward_logits(padded_reader.model, ids, mask, types, "cpu", False)
    packed = packed_logits(padded_reader.model, rows, per_window=per_window)
    assert [len(p[0]) for p in packed] == lengths
    for i, (ps, pe) in enumerate(packed):
        assert np.abs(ps - s[i, : lengths[i]]).max() < 1e-4
        assert np.abs(pe - e[i, : lengths[i]]).max() < 1e-4


def test_the_reader_uses_it_and_gives_the_same_answers(packed_reader, padded_reader, monkeypatch):
    assert packed_reader.packed and not padded_reader.packed
    import qa.reader.packed as packed_mod

    calls = []
    real = packed_mod.packed_logits
    monkeypatch.setattr(packed_mod, "packed_logits", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert_same_answers(packed_reader, padded_reader, 1e-4)
    assert len(calls) == len(QUESTIONS)


@citation_property
def test_every_citation_slices_the_document_exactly(packed_reader, text, question):
    assert_citations_exact(packed_reader, text, question)


def test_a_model_it_cannot_walk_falls_back_to_the_padded_forward(caplog, monkeypatch):
    class NotBert:
        base_model = None
        config = None

    assert not supports(NotBert()) and not matches_padded(NotBert())
    import qa.reader.packed as packed_mod

    monkeypatch.setattr(packed_mod, "supports", lambda model: False)
    r = ExtractiveReader(SHIPPED, precision="fp32", packed=True)
    with caplog.at_level("WARNING"):
        r.warm_up()
    assert r.packed is False and "QA_READER_PACKED" in caplog.text
    doc, passages = two_passages(CTX)
    assert r.run(QUESTIONS[0], passages, lambda d: doc).best_guess is not None


def test_a_probe_that_disagrees_turns_it_off(monkeypatch):
    import qa.reader.packed as packed_mod

    real = packed_mod.packed_logits
    monkeypatch.setattr(packed_mod, "packed_logits",
                        lambda *a, **k: [(s + 1.0, e) for s, e in real(*a, **k)])  # a walk that got it wrong
    r = ExtractiveReader(SHIPPED, precision="fp32", packed=True)
    r.warm_up()
    assert r.packed is False


def test_the_setting(monkeypatch):
    assert Settings().reader_packed is True
    monkeypatch.setenv("QA_READER_PACKED", "0")
    assert ExtractiveReader.from_settings(Settings()).packed is False
    monkeypatch.setenv("QA_READER_PACKED", "maybe")
    with pytest.raises(ValueError):
        Settings()


def test_bf16_weights_pass_the_probe_and_answer_alike():
    """bf16 rounds differently with and without padding (~0.5 % of a logit, as between two batch shapes of the padded
    forward); the probe's tolerance admits that, and the answers to clear questions stay the same."""
    packed = ExtractiveReader(SHIPPED, precision="bf16", packed=True)
    padded = ExtractiveReader(SHIPPED, precision="bf16", packed=False)
    packed.warm_up()
    padded.warm_up()
    assert packed.packed and packed.runtime == "torch-bf16"
    doc, passages = two_passages(CTX)
    for q in QUESTIONS[:4]:
        a = packed.run(q, passages, lambda d: doc).best_guess
        b = padded.run(q, passages, lambda d: doc).best_guess
        assert (a.text, a.citations[0].start) == (b.text, b.citations[0].start)
