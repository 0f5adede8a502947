"""Reader: exact offsets (property), merging of duplicate answers, abstention, offline loading."""

from __future__ import annotations

import hashlib
import json
import re
import socket
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from qa.config import PROJECT_ROOT, default_embedding_model
from qa.reader.aggregate import Located
from qa.reader.reader import ExtractiveReader, sentence_bounds
from qa.types import Chunk, Passage
from shipped import assert_citations_exact, citation_property

SHIPPED = PROJECT_ROOT / "models" / "reader"


@pytest.fixture(scope="session")
def random_head_dir(tmp_path_factory) -> Path:
    """MiniLM with an untrained span head: it proposes arbitrary spans, which is what an offset test wants."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("random_reader")
    AutoModelForQuestionAnswering.from_pretrained(default_embedding_model()).save_pretrained(out)
    AutoTokenizer.from_pretrained(default_embedding_model()).save_pretrained(out)
    (out / "reader_config.json").write_text(json.dumps({"threshold": 0.0}))
    return out


@pytest.fixture(scope="session")
def random_reader(random_head_dir) -> ExtractiveReader:
    r = ExtractiveReader(random_head_dir, max_length=64, stride=16, n_best=10)
    r.warm_up()
    return r


# Text that stresses offsets: emoji (non-BMP), CJK, combining marks, RTL, tabs, newlines, long runs.
_alphabet = st.sampled_from(list("abc XYZ019.,!?\n\t") + ["é", "e\u0301", "日本語", "😀", "👩‍👩‍👧", "\u200b", "ß", "İ",
                                                          "ﬁ", "עברית", "  ", "\n\n", "\ufeff", "a" * 300])
doc_texts = st.lists(_alphabet, min_size=1, max_size=120).map("".join).filter(lambda t: t.strip())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=doc_texts, question=st.text(min_size=1, max_size=40).filter(lambda q: q.strip()))
def test_every_citation_slices_the_document_exactly(random_reader, chunker, text, question):
    chunks = chunker.chunk_text(text, "doc.txt")
    passages = [Passage(chunk=c, score=1.0, rank=i + 1) for i, c in enumerate(chunks)]
    out = random_reader.run(question, passages, {"doc.txt": text}.__getitem__, max_answers=20)
    answers = out.answers + ([out.best_guess] if out.best_guess else [])
    for a in answers:
        assert a.citations and a.top.text == a.text
        for c in a.citations:
            assert text[c.start : c.end] == c.text
            assert text[c.context_start : c.context_end] == c.context
            assert c.context_start <= c.start <= c.end <= c.context_end


def test_citations_slice_files_read_back_crlf_bom_and_long(random_reader, chunker, tmp_path):
    """The non-negotiable check, on real files: open(file, encoding='utf-8').read()[start:end]."""
    from qa.ingest import load_corpus

    body = "Intro line 😀.\r\nThe protests began on 2 January in Zhanaozen.\r\n" + ("Filler sentence ä. " * 400)
    (tmp_path / "crlf.txt").write_bytes(("\ufeff" + body).encode("utf-8"))
    docs, skipped = load_corpus(tmp_path)
    assert not skipped
    doc = docs[0]
    chunks = chunker.chunk(doc)
    assert len(chunks) > 3  # a long file: many windows
    passages = [Passage(chunk=c, score=1.0, rank=i + 1) for i, c in enumerate(chunks)]
    out = random_reader.run("When did the protests begin?", passages, lambda d: doc.text, max_answers=50)
    on_disk = open(tmp_path / "crlf.txt", encoding="utf-8").read()
    assert out.answers
    for a in out.answers:
        for c in a.citations:
            assert on_disk[c.start : c.end] == c.text


def test_sentence_bounds_contains_span_and_stops_at_sentences():
    text = "First one. The protests began on 2 January. Third\nline here."
    s = text.index("2 January")
    cs, ce = sentence_bounds(text, s, s + 9)
    assert text[cs:ce] == "The protests began on 2 January."


def _reader_with_threshold(t: float) -> ExtractiveReader:
    r = ExtractiveReader("unused", threshold=t)
    return r


DOCS = {
    "a.txt": "Protests began on 2 January. Later, on 2 January, the fuel price rose.",
    "b.txt": "Reports say protests began on 2 January in Zhanaozen.",
}


def _loc(doc: str, needle: str, nth: int, p: float):
    starts = [m.start() for m in re.finditer(re.escape(needle), DOCS[doc])]
    s = starts[nth]
    return Located(doc, s, s + len(needle), p)


def test_duplicates_merge_into_one_answer_with_every_citation():
    r = _reader_with_threshold(0.1)
    located = [
        _loc("a.txt", "2 January", 0, 0.6),
        _loc("a.txt", "2 January", 0, 0.5),  # the same place seen through an overlapping chunk
        _loc("b.txt", "2 January", 0, 0.4),  # another document
        _loc("a.txt", "2 January", 1, 0.2),  # another place in the same document
        _loc("b.txt", "Zhanaozen", 0, 0.3),
    ]
    out = r._assemble("When?", located, DOCS.__getitem__, max_answers=5, n_windows=3, null=0.1, n_passages=2,
                      passages=None)
    assert out.answer_found
    top = out.answers[0]
    assert top.text == "2 January"
    assert [(c.document, c.score) for c in top.citations] == [("a.txt", 0.6), ("b.txt", 0.4), ("a.txt", 0.2)]
    # support from independent documents ranks higher than any single place (noisy-or over a.txt and b.txt;
    # the second place in a.txt is the same witness and adds nothing)
    assert top.score == pytest.approx(1 - (1 - 0.6) * (1 - 0.4))
    assert [a.text for a in out.answers] == ["2 January", "Zhanaozen"]


def test_abstains_below_threshold_but_keeps_best_guess():
    r = _reader_with_threshold(0.7)
    out = r._assemble("Where?", [_loc("b.txt", "Zhanaozen", 0, 0.3)], DOCS.__getitem__, max_answers=3, n_windows=1,
                      null=0.7, n_passages=1, passages=None)
    assert not out.answer_found and out.answers == []
    assert out.best_guess is not None and out.best_guess.text == "Zhanaozen"
    assert out.no_answer_score == pytest.approx(0.7)


def test_no_passages_means_no_answer(random_reader):
    out = random_reader.run("Anything?", [], lambda d: "", max_answers=3)
    assert not out.answer_found and out.answers == [] and out.best_guess is None


def test_missing_model_dir_gives_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="reader model not found"):
        ExtractiveReader(tmp_path / "nope").warm_up()


# ---------------------------------------------------------------------------- the shipped model


def _card() -> dict:
    return json.loads((SHIPPED / "reader_config.json").read_text())


def test_shipped_checkpoint_matches_model_card_checksum():
    card = _card()
    weights = SHIPPED / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert digest == card["sha256"]["model.safetensors"]
    assert card["sha256"]["model.safetensors"] in (SHIPPED / "MODEL_CARD.md").read_text()


def test_shipped_verifier_matches_the_model_card_and_the_feature_lists():
    from qa.verifier.features import FULL, READER
    from qa.verifier.model import Verifier

    card = _card()
    v = Verifier.load(SHIPPED)
    assert v is not None and v.sha256 == card["sha256"]["verifier.json"]
    assert v.sha256 in (SHIPPED / "MODEL_CARD.md").read_text()
    assert v.models["full"].features == FULL and v.models["reader"].features == READER
    assert v.models["first"].features == FULL  # the cascade's first step (qa train-verifier --first-passages)
    assert 0.0 < v.min_confidence < 1.0
    # calibrated: a non-decreasing map into [0, 1] (an isotonic curve, or Platt scaling with a positive slope)
    for m in v.models.values():
        if m.platt is not None:
            assert m.platt[0] > 0
        else:
            assert len(m.iso_x) > 1 and (m.iso_y[1:] >= m.iso_y[:-1]).all() and 0 <= m.iso_y.min() <= m.iso_y.max() <= 1
        raw = np.linspace(0.0, 1.0, 101)
        from qa.verifier.model import calibrate

        cal = calibrate(raw, m.iso_x, m.iso_y, m.platt)
        assert (np.diff(cal) >= 0).all() and 0 <= cal.min() <= cal.max() <= 1


def test_shipped_model_loads_offline_and_answers(monkeypatch):
    def no_network(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    r = ExtractiveReader(SHIPPED)
    r.warm_up()
    ctx = "The protests began on 2 January 2022 in the town of Zhanaozen after a sharp rise in fuel prices."
    out = r.read_contexts("When did the protests begin?", [("ctx", ctx)])
    assert out.best_guess is not None and "2 January" in out.best_guess.text
    assert 0.0 < r.threshold < 1.0  # a calibrated threshold, read from the model folder


def test_decoded_spans_are_widened_to_whole_words():
    """The model may put its start/end on a sub-word ("kazakh" of "Kazakhstani"): the answer is the whole word."""
    import numpy as np
    from transformers import AutoTokenizer

    from qa.reader.decode import decode, encode_windows

    tok = AutoTokenizer.from_pretrained(default_embedding_model())
    context = "Protests in Kazakhstani cities began on 2 January 2022."
    w = encode_windows(tok, "Where?", [context], max_length=64, stride=16)
    toks = tok.convert_ids_to_tokens(w.encoding["input_ids"][0])
    first = toks.index("kazakhstan")  # "Kazakhstani" is "kazakhstan" + "##i"
    assert toks[first + 1] == "##i"
    S = np.full((1, len(toks)), -10.0, dtype=np.float32)
    E = np.full((1, len(toks)), -10.0, dtype=np.float32)
    S[0, first], E[0, first] = 10.0, 10.0  # the span "Kazakhstan", cut inside the word
    cands, _ = decode(S, E, w, max_answer_tokens=30, n_best=5)
    assert context[cands[0].start : cands[0].end] == "Kazakhstani"
    S[0, first], S[0, first + 1] = -10.0, 10.0  # the span "i" alone
    cands2, _ = decode(S, E, w, max_answer_tokens=30, n_best=5)
    assert context[cands2[0].start : cands2[0].end] == "Kazakhstani"
    cands = cands + cands2
    # every candidate starts and ends on word boundaries
    for c in cands:
        assert c.start == 0 or not (context[c.start - 1].isalnum() and context[c.start].isalnum())
        assert c.end == len(context) or not (context[c.end - 1].isalnum() and context[c.end].isalnum())


def test_no_answer_is_longer_than_the_character_cap():
    """A run of characters the tokenizer cannot split is one [UNK] token: however confident the model, it is
    not an answer (a 3,200-character "answer" from a file of "aaaa..."; hostile-input audit, 2026-12-07)."""
    import numpy as np
    from transformers import AutoTokenizer

    from qa.reader.decode import MAX_ANSWER_CHARS, decode, encode_windows

    tok = AutoTokenizer.from_pretrained(default_embedding_model())
    context = "It began on 2 January. " + "a" * 3000 + " The end."
    w = encode_windows(tok, "When?", [context], max_length=64, stride=16)
    toks = tok.convert_ids_to_tokens(w.encoding["input_ids"][0])
    unk = toks.index("[UNK]")
    S = np.full((1, len(toks)), -10.0, dtype=np.float32)
    E = np.full((1, len(toks)), -10.0, dtype=np.float32)
    S[0, unk], E[0, unk] = 10.0, 10.0
    cands, _ = decode(S, E, w, max_answer_tokens=30, n_best=5)
    assert cands and all(c.end - c.start <= MAX_ANSWER_CHARS for c in cands)
    assert "a" * 100 not in context[cands[0].start : cands[0].end]


@pytest.mark.parametrize("onednn,cpu,limit,native", [
    (True, True, None, True),  # AVX-512 BF16 / AMX
    (True, True, "AVX512_CORE_AMX", True),
    (True, True, "avx512_core_bf16", True),
    (True, False, None, False),  # AVX-512 without BF16 (Cascade Lake, Ice Lake): oneDNN says yes, in software
    (True, True, "AVX512_CORE_VNNI", False),  # oneDNN limited below bf16 (how a bf16 CPU emulates one without)
    (True, True, "AVX2", False),
    (False, True, None, False),
])
def test_native_bf16_needs_the_instructions_not_only_onednn(onednn, cpu, limit, native):
    from qa.reader.reader import bf16_native_from

    assert bf16_native_from(onednn, cpu, limit) is native


@pytest.mark.parametrize("amx,limit,usable", [
    (True, None, True),  # Sapphire Rapids and later
    (True, "AVX512_CORE_AMX", True),
    (True, "avx10_1_512_amx", True),
    (True, "AVX512_CORE_BF16", False),  # oneDNN limited to AVX-512 BF16 (how an AMX CPU emulates Zen 4)
    (True, "AVX2", False),
    (False, None, False),  # AVX-512 BF16 without AMX: AMD Zen 4 / 5, Cooper Lake
])
def test_amx_needs_the_tiles_and_no_onednn_limit_below_them(amx, limit, usable):
    from qa.reader.reader import amx_usable_from

    assert amx_usable_from(amx, limit) is usable


def test_native_bf16_honours_an_onednn_limit_below_bf16(monkeypatch):
    from qa.reader.reader import native_bf16

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    assert native_bf16() is False


def test_native_bf16_asks_x86_cpus_for_the_instructions_and_others_trust_onednn(monkeypatch):
    import platform

    import torch

    import qa.reader.reader as reader_mod

    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    onednn = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    monkeypatch.setattr(reader_mod, "_x86_bf16_instructions", lambda: False)
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert reader_mod.native_bf16() is False  # an AVX-512 CPU without BF16: oneDNN's yes is not enough
    monkeypatch.setattr(reader_mod, "_x86_bf16_instructions", lambda: True)
    assert reader_mod.native_bf16() is onednn
    monkeypatch.setattr(reader_mod, "_x86_bf16_instructions", lambda: False)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")  # oneDNN checks the CPU's own bf16 there
    assert reader_mod.native_bf16() is onednn


def test_precision_setting_is_checked_and_bf16_agrees_with_fp32():
    import torch

    from qa.reader.reader import auto_cpu_bf16

    with pytest.raises(ValueError, match="precision"):
        ExtractiveReader(SHIPPED, precision="fp8")
    auto = ExtractiveReader(SHIPPED)
    auto.warm_up()
    assert auto.bf16 == auto_cpu_bf16(SHIPPED)
    # without bf16 on AMX (AVX2, Zen 4), auto takes the shipped int8 scales on an x86 build of torch
    assert auto.runtime == ("torch-bf16" if auto_cpu_bf16(SHIPPED) else
                            "torch-int8" if "fbgemm" in torch.backends.quantized.supported_engines else "torch-fp32")
    fp32 = ExtractiveReader(SHIPPED, precision="fp32")
    fp32.warm_up()
    bf16 = ExtractiveReader(SHIPPED, precision="bf16")
    bf16.warm_up()
    assert (fp32.bf16, bf16.bf16) == (False, True)
    import torch

    assert next(fp32.model.parameters()).dtype == torch.float32
    assert next(bf16.model.parameters()).dtype == torch.bfloat16  # cast once, not autocast per forward
    ctx = ("Unrest began in the city of Zhanaozen on 2 January 2022 after fuel prices doubled. "
           "By 5 January the protests had spread to Almaty, the largest city.")
    for q in ("When did the unrest begin?", "Where did the protests spread?"):
        a = fp32.read_contexts(q, [("ctx", ctx)]).best_guess
        b = bf16.read_contexts(q, [("ctx", ctx)]).best_guess
        assert (a.top.start, a.top.end) == (b.top.start, b.top.end)
        assert abs(a.score - b.score) < 0.05


def _passages(doc: str, pieces: list[str]) -> tuple[str, list[Passage]]:
    """One document made of ``pieces`` (one passage each, in retrieval order)."""
    text, passages = "", []
    for i, piece in enumerate(pieces):
        start = len(text)
        text += piece + "\n\n"
        passages.append(Passage(chunk=Chunk(doc, start, start + len(piece), piece), score=1.0 - i / 10, rank=i + 1))
    return text, passages


_ANSWER = "The protests began on 2 January 2022 in the town of Zhanaozen after a sharp rise in fuel prices."
_OTHER = ["The river is frozen for five months of the year and ships wait in the harbour.",
          "Wheat, barley and cotton are grown in the south, where the summers are long and dry.",
          "The national football team plays its home matches in the capital's largest stadium."]


@pytest.fixture(scope="module")
def shipped_reader() -> ExtractiveReader:
    r = ExtractiveReader(SHIPPED)
    r.warm_up()
    return r


def test_early_exit_stops_after_a_confident_first_passage(shipped_reader):
    text, passages = _passages("d.txt", [_ANSWER, *_OTHER])
    q = "When did the protests begin?"
    # the exit score is on the reader's tempered probability scale (temperature 3: a clear answer scores ~0.3)
    shipped_reader.first_passages, shipped_reader.early_exit_score = 0, 0.2
    full = shipped_reader.run(q, passages, lambda d: text)
    assert full.passages_read == 4 and full.windows == 4
    shipped_reader.first_passages = 1
    try:
        fast = shipped_reader.run(q, passages, lambda d: text)
    finally:
        shipped_reader.first_passages = 0
    assert fast.best_guess.citations[0].score >= 0.2  # the premise: the model is confident here
    assert fast.passages_read == 1 and fast.windows == 1
    assert fast.best_guess.text == full.best_guess.text == "2 January 2022"
    assert text[fast.best_guess.top.start : fast.best_guess.top.end] == fast.best_guess.text


def test_early_exit_reads_on_when_the_first_passages_are_weak(shipped_reader):
    """The answer is in the third passage: the first two give no confident span, so every passage is read and
    the answer's offsets point into the third passage of the document."""
    text, passages = _passages("d.txt", [_OTHER[0], _OTHER[1], _ANSWER, _OTHER[2]])
    q = "When did the protests begin?"
    shipped_reader.first_passages, shipped_reader.early_exit_score = 2, 0.2
    try:
        out = shipped_reader.run(q, passages, lambda d: text)
    finally:
        shipped_reader.first_passages = 0
    assert out.passages_read == 4 and out.windows == 4
    best = out.best_guess.top
    assert best.text == "2 January 2022" and text[best.start : best.end] == best.text
    assert passages[2].chunk.start <= best.start < best.end <= passages[2].chunk.end


def test_early_exit_is_configured_by_settings():
    from qa.config import Settings

    r = ExtractiveReader.from_settings(Settings(reader_first_passages=3, reader_early_exit_score=0.8))
    assert (r.first_passages, r.early_exit_score) == (3, 0.8)
    with pytest.raises(ValueError):
        Settings(reader_early_exit_score=1.5)


def test_cascade_exits_on_a_confident_answer_from_the_first_passage(shipped_reader):
    """early_exit_by="confidence": the first passage's best answer, as served (the verifier's calibrated score),
    reaches the bar, so the other passages are not read; the citation still slices the document."""
    text, passages = _passages("d.txt", [_ANSWER, *_OTHER])
    q = "When did the protests begin?"
    r = shipped_reader
    r.first_passages, r.early_exit_by, r.early_exit_score = 1, "confidence", 0.5
    try:
        out = r.run(q, passages, lambda d: text)
    finally:
        r.first_passages, r.early_exit_by, r.early_exit_score = 0, "span", 0.9
    assert out.passages_read == 1 and out.windows == 1
    assert out.answer_found and out.answers[0].score >= 0.5
    top = out.answers[0].top
    assert top.text == "2 January 2022" and text[top.start : top.end] == top.text


def test_cascade_reads_on_below_the_bar_and_answers_as_reading_everything(shipped_reader):
    """Below the bar the cascade reads the other passages and decodes every window together (keeping the first
    passage's logits): the same answers, offsets and citations as reading every passage at once."""
    text, passages = _passages("d.txt", [_OTHER[0], _OTHER[1], _ANSWER, _OTHER[2]])
    q = "When did the protests begin?"
    r = shipped_reader
    full = r.run(q, passages, lambda d: text)
    r.first_passages, r.early_exit_by, r.early_exit_score = 1, "confidence", 0.99
    try:
        out = r.run(q, passages, lambda d: text)
    finally:
        r.first_passages, r.early_exit_by, r.early_exit_score = 0, "span", 0.9
    assert out.passages_read == 4 and out.windows == 4
    got = [(a.text, [(c.document, c.start, c.end) for c in a.citations]) for a in out.answers]
    assert got == [(a.text, [(c.document, c.start, c.end) for c in a.citations]) for a in full.answers]
    assert [a.score for a in out.answers] == pytest.approx([a.score for a in full.answers], abs=0.02)
    assert out.best_guess.text == full.best_guess.text == "2 January 2022"
    for a in out.answers:
        for c in a.citations:
            assert text[c.start : c.end] == c.text


def test_the_cascade_first_step_has_the_features_train_verifier_collects(shipped_reader):
    """`qa train-verifier --first-passages 1` reads a question with its first passage only
    (qa.training.verifier.collect); the served cascade's first step must give the verifier the same features,
    or the exit decision is made on rows unlike those it was fitted on."""
    import types

    from qa.training.verifier import collect

    text, passages = _passages("d.txt", [_ANSWER, *_OTHER])
    q = "When did the protests begin?"
    r = shipped_reader
    r.first_passages, r.early_exit_by, r.early_exit_score = 1, "confidence", 0.0  # always exits
    try:
        served = r.run(q, passages, lambda d: text)
    finally:
        r.first_passages, r.early_exit_by, r.early_exit_score = 0, "span", 0.9
    assert served.passages_read == 1
    state = types.SimpleNamespace(retriever=types.SimpleNamespace(run=lambda question, k: passages),
                                  store=types.SimpleNamespace(document_text=lambda d: text))
    pipeline = types.SimpleNamespace(_require=lambda: state, reader=r)
    item = types.SimpleNamespace(id="q1", question=q, answers=["2 January 2022"], answerable=True, evidence=[],
                                 extra={"title": "t"}, type="present")
    rows = collect(pipeline, [item], top_k=len(passages), progress=False, first_passages=1)
    first = [x for x in rows if x["_read"] == "first"]
    full = [x for x in rows if x["_read"] == "all"]
    assert first and full and first[0]["passages"] == 1.0 and full[0]["passages"] == float(len(passages))
    strip = lambda row: {k: v for k, v in row.items() if not k.startswith("_")}  # noqa: E731
    assert [strip(x) for x in first] == [pytest.approx(f) for f in served.extra["features"]]
    assert first[0]["_label"] == 1 and first[0]["_answer"] == "2 January 2022"


def test_cascade_is_configured_by_settings(monkeypatch):
    from qa.config import Settings

    s = Settings()
    assert (s.reader_first_passages, s.reader_early_exit_score, s.reader_early_exit_by) == (0, 0.9, "span")
    monkeypatch.setenv("QA_READER_EARLY_EXIT_BY", "confidence")
    monkeypatch.setenv("QA_READER_FIRST_PASSAGES", "1")
    s = Settings()
    assert (s.reader_first_passages, s.reader_early_exit_by) == (1, "confidence")
    r = ExtractiveReader.from_settings(s)
    assert (r.first_passages, r.early_exit_by) == (1, "confidence")
    with pytest.raises(ValueError):
        ExtractiveReader(SHIPPED, early_exit_by="sometimes")
    monkeypatch.setenv("QA_READER_EARLY_EXIT_BY", "sometimes")
    with pytest.raises(ValueError):
        Settings()


def test_temperature_keeps_the_order_within_a_window_and_softens_it():
    import numpy as np
    from transformers import AutoTokenizer

    from qa.reader.decode import decode, encode_windows

    tok = AutoTokenizer.from_pretrained(default_embedding_model())
    context = "The protests began in Zhanaozen on 2 January and spread to Almaty within days."
    w = encode_windows(tok, "When?", [context], max_length=64, stride=16)
    rng = np.random.default_rng(0)
    S = rng.normal(0, 3, (1, len(w.encoding["input_ids"][0]))).astype(np.float32)
    E = rng.normal(0, 3, S.shape).astype(np.float32)
    sharp, _ = decode(S, E, w, max_answer_tokens=10, n_best=10)
    soft, _ = decode(S, E, w, max_answer_tokens=10, n_best=10, temperature=2.0)
    assert [(c.start, c.end) for c in sharp] == [(c.start, c.end) for c in soft]
    assert soft[0].prob < sharp[0].prob  # the best span is less certain at a higher temperature
    assert [c.prob for c in soft] == sorted((c.prob for c in soft), reverse=True)


def test_reader_takes_its_temperature_from_the_model_folder(random_head_dir, tmp_path):
    import shutil

    assert ExtractiveReader(random_head_dir).temperature == 1.0
    folder = tmp_path / "reader"
    shutil.copytree(random_head_dir, folder)
    (folder / "reader_config.json").write_text(json.dumps({"threshold": 0.0, "temperature": 2.5}))
    r = ExtractiveReader(folder)
    r.warm_up()
    assert r.temperature == 2.5
    shipped = json.loads((SHIPPED / "reader_config.json").read_text())
    # the shipped reader is trained with shared normalisation: its probabilities are not tempered
    assert shipped["normalisation"] == "shared" and shipped["temperature"] == 1.0


def test_multi_passage_sets_hold_the_gold_paragraph_and_same_article_distractors():
    from qa.training.squad import QAExample
    from qa.training.validate import multi_passage_sets

    examples = []
    for t in ("A", "B"):
        for p in range(7):
            ctx = f"Article {t} paragraph {p} about rivers {'and towns ' * p}."
            examples.append(QAExample(f"{t}{p}", t, ctx, f"Which towns in paragraph {p}?", [{"text": "rivers",
                                      "answer_start": ctx.index("rivers")}]))
    sets = multi_passage_sets(examples, 6, seed=1)
    assert len(sets) == 6 and sets == multi_passage_sets(examples, 6, seed=1)
    titles = {ex.context: ex.title for ex in examples}
    for ex, contexts in sets:
        assert ex.context in contexts and len(contexts) == 5 == len(set(contexts))
        assert all(titles[c] == ex.title for c in contexts)


def test_a_per_call_cascade_reads_less_and_leaves_the_settings_alone(shipped_reader):
    """``run(..., cascade=(n, bar))`` (the API's reading when busy): at a bar every answer reaches, only the first
    passage is read; at a bar none reaches, every passage, with the full read's answers; the reader's own
    early-exit settings are untouched either way."""
    text, passages = _passages("d.txt", [_ANSWER, *_OTHER])
    q = "When did the protests begin?"
    r = shipped_reader
    settings = (r.first_passages, r.early_exit_by, r.early_exit_score)
    full = r.run(q, passages, lambda d: text)
    first = r.run(q, passages, lambda d: text, cascade=(1, 0.0))
    assert full.passages_read == len(passages) and first.passages_read == 1
    assert first.best_guess.text == "2 January 2022"
    every = r.run(q, passages, lambda d: text, cascade=(1, 1.0))
    assert every.passages_read == len(passages)
    assert [(a.text, [(c.start, c.end) for c in a.citations]) for a in every.answers] == \
        [(a.text, [(c.start, c.end) for c in a.citations]) for a in full.answers]
    for out in (first, every):
        for a in out.answers:
            assert all(text[c.start : c.end] == c.text for c in a.citations)
    assert (r.first_passages, r.early_exit_by, r.early_exit_score) == settings
    assert r.run(q, passages[:1], lambda d: text, cascade=(1, 0.0)).passages_read == 1  # nothing to skip


@citation_property
def test_busy_reading_cites_exactly(shipped_reader, text, question):
    """The per-call cascade (the API's reading when busy), exiting after the first passage or reading on: every
    citation still slices the document exactly, over odd texts."""
    assert_citations_exact(shipped_reader, text, question, cascade=(1, 0.0))
    assert_citations_exact(shipped_reader, text, question, cascade=(1, 1.0))
