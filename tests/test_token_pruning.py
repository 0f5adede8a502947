"""Late-layer token pruning (qa.reader.token_pruning, the packed forward's ``probe``): which tokens are kept, that
the rest cannot be an answer, that a window's logits still depend on that window alone, that a share of 1 is the
unpruned forward, that citations stay exact, that a missing or wrong probe file leaves every token computed, and
that `qa fit-token-probe` writes a probe that ranks tokens."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from qa.config import Settings
from qa.reader import token_pruning
from qa.reader.packed import packed_logits
from qa.reader.reader import ExtractiveReader
from qa.reader.token_pruning import DROPPED_LOGIT, TokenProbe, kept_tokens
from shipped import SHIPPED, UNREST, assert_citations_exact, citation_property, two_passages


@pytest.fixture(scope="module")
def reader() -> ExtractiveReader:
    """The shipped reader in fp32 with every token computed (its own probe is given to packed_logits by hand)."""
    r = ExtractiveReader(SHIPPED, precision="fp32", token_keep=1.0)
    r.warm_up()
    assert r.token_probe is None
    return r


@pytest.fixture(scope="module")
def pruning_reader() -> ExtractiveReader:
    r = ExtractiveReader(SHIPPED, precision="fp32")
    r.warm_up()
    return r


def _rows(reader, question, contexts):
    enc = reader.encode(question, contexts).encoding
    return [(np.asarray(i, dtype=np.int64), np.asarray(t, dtype=np.int64))
            for i, t in zip(enc["input_ids"], enc["token_type_ids"])]


def _probe(reader, keep: float, layer: int = 4) -> TokenProbe:
    shipped = token_pruning.load(SHIPPED)
    assert shipped is not None, "the shipped reader has a token probe"
    return TokenProbe(layer=layer, keep=keep, weight=shipped.weight, bias=shipped.bias)


def test_kept_tokens_by_hand():
    # two windows: [CLS] q q [SEP] c c c c [SEP] and [CLS] q [SEP] c c [SEP]
    types = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1])
    lens = [9, 6]
    scores = np.array([0, 0, 0, 0, 5, 1, 9, 3, 100, 0, 0, 0, 2, 2, 100], dtype=float)
    # window 1: context tokens 4..7 (the closing [SEP] 8 is never a candidate), keep ceil(0.5*4)=2: tokens 6 and 4
    # window 2: context tokens 12, 13 (a tie: the earlier), keep ceil(0.5*2)=1: token 12
    assert kept_tokens(scores, types, lens, 0.5).tolist() == [0, 1, 2, 3, 4, 6, 8, 9, 10, 11, 12, 14]
    assert kept_tokens(scores, types, lens, 1.0).tolist() == list(range(15))
    # at least one context token of each window, whatever the share
    assert kept_tokens(scores, types, lens, 0.01).tolist() == [0, 1, 2, 3, 6, 8, 9, 10, 11, 12, 14]


@pytest.mark.parametrize("keep", [0.05, 0.3, 0.7])
def test_pruned_tokens_cannot_answer_and_the_rest_are_scored(reader, keep):
    rows = _rows(reader, "Where did the protests spread?", [UNREST, UNREST[:90], UNREST[40:]])
    probe = _probe(reader, keep)
    out = packed_logits(reader.model, rows, probe=probe)
    for (ids, types), (s, e) in zip(rows, out):
        ctx = np.flatnonzero(types[:-1] == 1)
        dropped = s == DROPPED_LOGIT
        assert np.array_equal(dropped, e == DROPPED_LOGIT)
        assert not dropped[types == 0].any() and not dropped[-1]  # question and special tokens always computed
        assert (~dropped[ctx]).sum() == max(1, math.ceil(keep * len(ctx)))
        assert np.isfinite(s[~dropped]).all() and np.abs(s[~dropped]).max() < 1e3


def test_a_windows_logits_depend_on_that_window_alone(reader):
    """The selection is per window: read together or one by one, a window gets the same logits (the cascade and
    the pre-tokenised path rely on it)."""
    rows = _rows(reader, "When did the unrest begin?", [UNREST, UNREST[60:], UNREST[:120]])
    probe = _probe(reader, 0.3)
    together = packed_logits(reader.model, rows, probe=probe)
    for row, (s, e) in zip(rows, together):
        (s1, e1), = packed_logits(reader.model, [row], probe=probe)
        assert np.array_equal(s1 == DROPPED_LOGIT, s == DROPPED_LOGIT)
        assert np.abs(s1 - s).max() < 1e-4 and np.abs(e1 - e).max() < 1e-4


def test_keeping_every_token_is_the_unpruned_forward(reader):
    rows = _rows(reader, "What was seized in Almaty?", [UNREST, UNREST[30:]])
    plain = packed_logits(reader.model, rows)
    full = packed_logits(reader.model, rows, probe=_probe(reader, 1.0))
    for (s, e), (s1, e1) in zip(plain, full):
        assert np.abs(s - s1).max() < 1e-5 and np.abs(e - e1).max() < 1e-5


def test_the_shipped_reader_prunes_on_the_cpu_and_answers(pruning_reader, reader, monkeypatch):
    assert pruning_reader.token_probe is not None and pruning_reader.token_probe.keep < 1.0
    import qa.reader.packed as packed_mod

    probes = []
    real = packed_mod.packed_logits
    monkeypatch.setattr(packed_mod, "packed_logits",
                        lambda *a, **k: (a[0] is pruning_reader.model and probes.append(k.get("probe"))) or real(*a, **k))
    doc, passages = two_passages(UNREST)
    for q in ["When did the unrest begin?", "Where did the protests spread?", "What was seized in Almaty?"]:
        a = pruning_reader.run(q, passages, lambda d: doc).best_guess
        b = reader.run(q, passages, lambda d: doc).best_guess
        assert a.text == b.text and a.citations[0].start == b.citations[0].start
    # one window of one length goes through the packed forward too when pruning is on
    pruning_reader.run("Who resigned?", passages[:1], lambda d: doc)
    assert len(probes) == 4 and all(p is pruning_reader.token_probe for p in probes)


def test_int8_with_pruning_answers_as_fp32(reader):
    """int8-torch with the token pruning (`auto` on CPUs without native bf16) gives the clear answers of the fp32
    reader that computes every token."""
    r = ExtractiveReader(SHIPPED, precision="int8-torch")
    r.warm_up()
    assert r.runtime == "torch-int8" and r.token_probe is not None
    doc, passages = two_passages(UNREST)
    for q in ["When did the unrest begin?", "Where did the protests spread?", "Who resigned on 5 January?"]:
        a = r.run(q, passages, lambda d: doc).best_guess
        b = reader.run(q, passages, lambda d: doc).best_guess
        assert (a.text, a.citations[0].start) == (b.text, b.citations[0].start)
        assert abs(a.score - b.score) < 0.1


@citation_property
def test_every_citation_slices_the_document_exactly(pruning_reader, text, question):
    assert_citations_exact(pruning_reader, text, question)


def test_the_setting(monkeypatch):
    assert Settings().reader_token_keep is None
    monkeypatch.setenv("QA_READER_TOKEN_KEEP", "1")
    r = ExtractiveReader.from_settings(Settings())
    assert r.token_keep == 1.0
    r.warm_up()
    assert r.token_probe is None
    monkeypatch.setenv("QA_READER_TOKEN_KEEP", "0.5")
    r = ExtractiveReader.from_settings(Settings(reader_precision="fp32"))
    r.warm_up()
    assert r.token_probe.keep == 0.5
    for bad in ("0", "1.5", "some"):
        monkeypatch.setenv("QA_READER_TOKEN_KEEP", bad)
        with pytest.raises(ValueError):
            Settings()
    with pytest.raises(ValueError):
        ExtractiveReader(SHIPPED, token_keep=0.0)


def test_bf16_prunes_only_when_asked():
    """bf16 (CPUs with AMX) computes every token by default (no faster pruned); an explicit share still applies."""
    r = ExtractiveReader(SHIPPED, precision="bf16")
    r.warm_up()
    assert r.runtime == "torch-bf16" and r.token_probe is None
    r = ExtractiveReader(SHIPPED, precision="bf16", token_keep=0.3)
    r.warm_up()
    assert r.token_probe is not None and r.token_probe.keep == 0.3
    doc, passages = two_passages(UNREST)
    assert r.run("Where did the protests spread?", passages, lambda d: doc).best_guess.text == "Almaty"


def _copy_reader(tmp_path):
    folder = tmp_path / "reader"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns(".*cache*"))
    return folder


@pytest.mark.parametrize("damage", ["missing", "not json", "no weight", "other weights", "wrong size", "bad keep"])
def test_a_missing_or_wrong_probe_leaves_every_token_computed(tmp_path, caplog, damage):
    folder = _copy_reader(tmp_path)
    path = folder / token_pruning.PROBE_FILE
    data = json.loads(path.read_text())
    if damage == "missing":
        path.unlink()
    elif damage == "not json":
        path.write_text("{")
    elif damage == "no weight":
        path.write_text(json.dumps({k: v for k, v in data.items() if k != "weight"}))
    elif damage == "other weights":
        path.write_text(json.dumps(data | {"weights_sha256": "0" * 64}))
    elif damage == "wrong size":
        path.write_text(json.dumps(data | {"weight": data["weight"][:-1]}))
    else:
        path.write_text(json.dumps(data | {"keep": 1.5}))
    r = ExtractiveReader(folder, precision="fp32")
    with caplog.at_level("INFO"):
        r.warm_up()
    assert r.token_probe is None and token_pruning.PROBE_FILE in caplog.text
    doc, passages = two_passages(UNREST)
    assert r.run("When did the unrest begin?", passages, lambda d: doc).best_guess is not None


def test_fit_token_probe_writes_a_probe_that_ranks_tokens(tmp_path, reader):
    """`qa fit-token-probe` on a small generated SQuAD file: a probe that loads for these weights and keeps the
    tokens the reader answers with."""
    from qa.cli import main

    paragraphs = [{"context": UNREST, "qas": [
        {"id": f"u{i}", "question": q, "answers": [{"text": a, "answer_start": UNREST.index(a)}]}
        for i, (q, a) in enumerate([("When did the unrest begin?", "2 January 2022"),
                                    ("Where did the protests spread?", "Almaty"),
                                    ("What was seized?", "the airport"),
                                    ("How long was the state of emergency?", "two weeks"),
                                    ("Who resigned?", "The government"),
                                    ("Why did the unrest begin?", "fuel prices doubled")])]}]
    squad = tmp_path / "squad"
    squad.mkdir()
    (squad / "squad-v1.1-train.json").write_text(json.dumps({"data": [{"title": "U", "paragraphs": paragraphs}]}))
    out = tmp_path / "probe.json"
    assert main(["fit-token-probe", "--squad-dir", str(squad), "--questions", "6", "--out", str(out),
                 "--layer", "4", "--keep", "0.4"]) == 0
    data = json.loads(out.read_text())
    assert data["layer"] == 4 and data["keep"] == 0.4 and len(data["weight"]) == reader.model.config.hidden_size
    folder = _copy_reader(tmp_path)
    shutil.copy(out, folder / token_pruning.PROBE_FILE)
    probe = token_pruning.load(folder)
    assert probe is not None and probe.keep == 0.4
    # fitted on these questions: the tokens of the reader's own best span are kept
    rows = _rows(reader, "Where did the protests spread?", [UNREST])
    (s, e), = packed_logits(reader.model, rows)
    (ps, pe), = packed_logits(reader.model, rows, probe=probe)
    assert ps[int(np.argmax(s))] != DROPPED_LOGIT and pe[int(np.argmax(e))] != DROPPED_LOGIT
    assert main(["fit-token-probe", "--squad-dir", str(squad), "--layer", "6", "--out", str(out)]) == 2
    assert main(["fit-token-probe", "--squad-dir", str(tmp_path / "none"), "--out", str(out)]) == 2
