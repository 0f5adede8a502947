"""QA_READER_PRECISION=int8-torch (qa.reader.int8_torch): smoothing that does not change the function, the int8
layers where they should be, answers close to fp32, a window's logits independent of the windows read with it,
exact citations, and clear errors when the scales are missing, damaged or made for other weights."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from qa.reader.int8 import Int8Error
from qa.reader.int8_torch import (SCALES_FILE, Int8Linear, Smoothed, calibrate, input_quantisation, input_range,
                                  linear_names, load_scales, quantize, smooth)
from qa.reader.reader import ExtractiveReader
from qa.writes import file_sha256
from shipped import (SHIPPED, UNREST as CTX, UNREST_QUESTIONS as QUESTIONS, assert_citations_exact,
                     citation_property, logit_agreement)


@pytest.fixture(scope="module")
def int8_reader() -> ExtractiveReader:
    r = ExtractiveReader(SHIPPED, precision="int8-torch", token_keep=1.0)  # int8 alone; with pruning: test_token_pruning
    r.warm_up()
    return r


def _copy_reader(tmp_path: Path, with_scales: bool = True) -> Path:
    d = tmp_path / "reader"
    d.mkdir()
    for f in SHIPPED.iterdir():
        if f.is_file() and (with_scales or f.name != SCALES_FILE):
            (d / f.name).symlink_to(f) if f.name == "model.safetensors" else shutil.copy(f, d / f.name)
    return d


def test_shipped_scales_belong_to_the_shipped_weights():
    scales = load_scales(SHIPPED)
    assert scales["weights_sha256"] == file_sha256(SHIPPED / "model.safetensors")
    assert "train" in scales["calibration_source"] and "dev" not in scales["calibration_source"]
    assert file_sha256(SHIPPED / SCALES_FILE) in (SHIPPED / "MODEL_CARD.md").read_text(encoding="utf-8")


def test_smoothing_alone_keeps_the_function(shipped_fp32_reader):
    """Dividing a layer's inputs by s and multiplying its weight's columns by s is the same product."""
    model = copy.deepcopy(shipped_fp32_reader.model)
    targets = smooth(model, load_scales(SHIPPED))
    assert targets and all(isinstance(model.get_submodule(t), Smoothed) for t in targets)
    w = shipped_fp32_reader.encode(QUESTIONS[0], [CTX])
    ids = torch.tensor(w.encoding["input_ids"][:1])
    types = torch.tensor(w.encoding["token_type_ids"][:1])
    with torch.inference_mode():
        a = shipped_fp32_reader.model(input_ids=ids, token_type_ids=types)
        b = model(input_ids=ids, token_type_ids=types)
    assert torch.allclose(a.start_logits, b.start_logits, atol=1e-3)
    assert torch.allclose(a.end_logits, b.end_logits, atol=1e-3)
    # and the scales are not all ones: something moved
    assert any(not torch.allclose(model.get_submodule(t).inv, torch.ones(1)) for t in targets)


def test_the_linear_layers_are_int8_except_those_kept_float(int8_reader):
    assert int8_reader.runtime == "torch-int8"
    model = int8_reader.model
    int8 = [n for n, m in model.named_modules() if isinstance(m, Int8Linear)]
    floats = [n for n, m in model.named_modules() if type(m) is torch.nn.Linear]
    layers = model.config.num_hidden_layers
    assert len(int8) == 6 * layers  # query, key, value, attention output, feed-forward input and output
    assert floats == ["qa_outputs"]
    assert int8_reader.packed  # the packed forward applies (it calls the same modules)
    # the feed-forward outputs read GELU's output (>= -0.17): more of their range lies above zero than below
    for i in range(layers):
        ffn_out = model.get_submodule(f"bert.encoder.layer.{i}.output.dense")
        assert 0 < ffn_out.zero_point < 48
        assert model.get_submodule(f"bert.encoder.layer.{i}.intermediate.dense").zero_point == 64


def test_logits_and_answers_stay_close_to_fp32(int8_reader, shipped_fp32_reader):
    rows = logit_agreement(int8_reader, shipped_fp32_reader)
    assert all(r[2] for r in rows)  # really another computation
    assert sum(r[0] for r in rows) >= 2 * len(QUESTIONS) - 2  # start and end argmax: at most two of twelve differ
    assert min(r[1] for r in rows) > 0.98
    for q in QUESTIONS:
        a = shipped_fp32_reader.read_contexts(q, [("ctx", CTX)]).best_guess
        b = int8_reader.read_contexts(q, [("ctx", CTX)]).best_guess
        assert a.text == b.text
        assert abs(a.score - b.score) < 0.1


def test_each_int8_layer_reads_each_token_alone(int8_reader):
    """The input scales are fixed, so every int8 layer's output for a token depends on that token alone: bit for bit
    the same whatever rows share the call (one scale per call, as in dynamic int8, would not be)."""
    layers = [m for m in int8_reader.model.modules() if isinstance(m, Int8Linear)]
    assert len(layers) == 36
    g = torch.Generator().manual_seed(0)
    for layer in layers:
        x = torch.randn(300, layer.in_features, generator=g) * (layer.scale * 20)
        whole = layer(x)
        assert torch.equal(layer(x[:1]), whole[:1])
        assert torch.equal(layer(x[7:120]), whole[7:120])
        assert torch.equal(layer(torch.cat([x[200:], torch.zeros(5, layer.in_features)]))[:100], whole[200:])


def test_a_windows_logits_do_not_depend_on_the_windows_read_with_it(int8_reader):
    """A window read alone, packed with other windows, padded with them, or padded to the cross-request batcher's
    width gets the same best start and end and logits within rounding. Not bit for bit, unlike fp32: the float parts
    (attention, LayerNorm, the fp32 layers) round a little differently for other shapes on some CPUs, and an int8
    layer turns a last-bit difference that crosses a rounding boundary into one step of its input scale. Measured on
    the 13 shipped test questions: up to 0.39 in one logit (mean 0.06) on a Xeon with AVX-512/AMX, under 0.05 on an
    AVX2-only EPYC; dynamic int8 moved a logit by up to 0.8."""
    for q in (QUESTIONS[1], QUESTIONS[-1]):
        w = int8_reader.encode(q, [CTX, CTX[:120], CTX[40:]])
        rows = [(np.asarray(i), np.asarray(t)) for i, t in zip(w.encoding["input_ids"], w.encoding["token_type_ids"])]
        assert len({len(r[0]) for r in rows}) > 1
        together = int8_reader._forward_rows(rows)
        batched = int8_reader._forward_rows(rows, width=int8_reader.max_length)
        int8_reader.packed = False
        try:
            padded = int8_reader._forward_rows(rows)
        finally:
            int8_reader.packed = True
        for i, row in enumerate(rows):
            (alone_s, alone_e), = int8_reader._forward_rows([row])
            for s, e in (together[i], batched[i], padded[i]):
                assert len(s) == len(row[0])
                assert np.argmax(s) == np.argmax(alone_s) and np.argmax(e) == np.argmax(alone_e)
                assert np.abs(s - alone_s).max() < 0.6 and np.abs(e - alone_e).max() < 0.6
                assert np.abs(s - alone_s).mean() < 0.1 and np.abs(e - alone_e).mean() < 0.1


@citation_property
def test_int8_torch_citations_slice_the_document_exactly(int8_reader, text, question):
    assert_citations_exact(int8_reader, text, question)


def test_missing_scales_say_to_run_quantize_reader(tmp_path):
    r = ExtractiveReader(_copy_reader(tmp_path, with_scales=False), precision="int8-torch")
    with pytest.raises(Int8Error, match="qa quantize-reader --runtime torch"):
        r.warm_up()


def test_input_quantisation_hand_computed():
    scale, zp = input_quantisation(-2.54, 2.54)  # centred on zero: the old fixed zero point
    assert zp == 64 and scale == pytest.approx(5.08 / 127)
    scale, zp = input_quantisation(-0.17, 12.53)  # GELU's output: zero point 0.17 / 0.1 -> 2
    assert zp == 2 and scale == pytest.approx(0.1)
    assert input_quantisation(0.3, 1.27) == (pytest.approx(0.01), 0)  # a range above zero still holds zero
    assert input_quantisation(-1.27, -0.5) == (pytest.approx(0.01), 127)
    assert input_quantisation(0.0, 0.0)[0] > 0  # a dead input: no division by zero


def test_scales_made_before_the_asymmetric_layers_still_load(tmp_path, int8_reader):
    """A file from before 2026-12-07's asymmetric layers (no "asymmetric", no input_min/max) keeps the feed-forward
    output projections in float, as its float_kept says, and answers close to the current one."""
    d = _copy_reader(tmp_path)
    data = json.loads((d / SCALES_FILE).read_text())
    for k in ("asymmetric", "input_min", "input_max"):
        del data[k]
    data["float_kept"] = r"(^|\.)layer\.\d+\.output\.dense$|(^|\.)qa_outputs$"
    data["input_absmax"] = {n: v for n, v in data["input_absmax"].items()
                            if not (n.endswith("output.dense") and "attention" not in n)}
    (d / SCALES_FILE).write_text(json.dumps(data))
    old = ExtractiveReader(d, precision="int8-torch")
    old.warm_up()
    assert sum(isinstance(m, Int8Linear) for m in old.model.modules()) == 30
    assert sorted(n for n, m in old.model.named_modules() if type(m) is torch.nn.Linear)[0].endswith("0.output.dense")
    assert _ask(old) == _ask(int8_reader)


@pytest.mark.parametrize("damage", ["other weights", "not json", "no alpha", "wrong width", "no input_min"])
def test_damaged_or_foreign_scales_are_refused(tmp_path, damage):
    d = _copy_reader(tmp_path)
    data = json.loads((d / SCALES_FILE).read_text())
    if damage == "other weights":
        data["weights_sha256"] = "0" * 64
        (d / SCALES_FILE).write_text(json.dumps(data))
        match = "other weights"
    elif damage == "not json":
        (d / SCALES_FILE).write_text("{ not json")
        match = "unreadable"
    elif damage == "no alpha":
        del data["alpha"]
        (d / SCALES_FILE).write_text(json.dumps(data))
        match = "unreadable"
    elif damage == "no input_min":
        del data["input_min"]
        (d / SCALES_FILE).write_text(json.dumps(data))
        match = "unreadable"
    else:
        name = next(iter(data["input_absmax"]))
        data["input_absmax"][name] = data["input_absmax"][name][:-1]
        (d / SCALES_FILE).write_text(json.dumps(data))
        match = "does not describe"
    r = ExtractiveReader(d, precision="int8-torch")
    with pytest.raises(Int8Error, match=match):
        r.warm_up()


def test_setting_is_accepted_and_combinations_refused(monkeypatch):
    from qa.config import Settings

    monkeypatch.setenv("QA_READER_PRECISION", "int8-torch")
    assert ExtractiveReader.from_settings(Settings()).precision == "int8-torch"
    with pytest.raises(ValueError, match="PyTorch"):
        ExtractiveReader(SHIPPED, precision="int8-torch", backend="openvino")
    import qa.device

    monkeypatch.setattr(qa.device, "resolve_device", lambda requested: "cuda")
    with pytest.raises(ValueError, match="runs on the CPU"):
        ExtractiveReader(SHIPPED, precision="int8-torch", device="cuda").warm_up()


def _ask(reader: ExtractiveReader) -> tuple[str, int]:
    from shipped import two_passages

    doc, passages = two_passages(CTX)
    a = reader.run(QUESTIONS[0], passages, lambda d: doc).best_guess
    return a.text, a.citations[0].start


@pytest.mark.parametrize("native,amx", [(False, False), (True, False), (True, True)])
def test_auto_is_int8_torch_unless_bf16_runs_on_amx(monkeypatch, native, amx, int8_reader):
    """AVX2 / AVX-512 without BF16 (no native bf16) and AVX-512 BF16 without AMX (Zen 4: int8 on VNNI is faster
    than bf16 there) serve int8-torch; bf16 on AMX stays bf16."""
    import qa.reader.reader as reader_mod

    monkeypatch.setattr(reader_mod, "native_bf16", lambda: native)
    monkeypatch.setattr(reader_mod, "bf16_matrix_units", lambda: amx)
    bf16 = native and amx
    auto = ExtractiveReader(SHIPPED)
    auto.warm_up()
    assert auto.runtime == ("torch-bf16" if bf16 else "torch-int8")
    if not bf16:
        # the same int8 layers as asking for int8-torch, so the same answer at the same place
        assert sum(isinstance(m, Int8Linear) for m in auto.model.modules()) == 36
        assert _ask(auto) == _ask(int8_reader)
    fp32 = ExtractiveReader(SHIPPED, precision="fp32")  # the way back to fp32 on such a CPU
    fp32.warm_up()
    assert fp32.runtime == "torch-fp32" and not any(isinstance(m, Int8Linear) for m in fp32.model.modules())


@pytest.mark.parametrize("scales", ["missing", "other weights"])
def test_auto_without_matching_scales_is_fp32_and_says_why(tmp_path, monkeypatch, caplog, scales,
                                                           shipped_fp32_reader):
    """A reader folder without int8 scales for its weights (a reader trained here, scales left stale) still starts
    under auto: in fp32, with the reason in the log; asking for int8-torch by name is still refused."""
    import logging

    import qa.reader.reader as reader_mod

    monkeypatch.setattr(reader_mod, "native_bf16", lambda: False)
    d = _copy_reader(tmp_path, with_scales=scales != "missing")
    if scales == "other weights":
        data = json.loads((d / SCALES_FILE).read_text())
        data["weights_sha256"] = "0" * 64
        (d / SCALES_FILE).write_text(json.dumps(data))
    auto = ExtractiveReader(d)
    with caplog.at_level(logging.INFO, logger="qa.reader.reader"):
        auto.warm_up()
    assert auto.runtime == "torch-fp32" and not any(isinstance(m, Int8Linear) for m in auto.model.modules())
    assert any("fp32 on this CPU" in r.getMessage() for r in caplog.records)
    assert _ask(auto) == _ask(shipped_fp32_reader)
    with pytest.raises(Int8Error):
        ExtractiveReader(d, precision="int8-torch").warm_up()


def test_auto_on_native_bf16_without_amx_and_without_scales_is_bf16_and_says_why(tmp_path, monkeypatch, caplog):
    """On a CPU with AVX-512 BF16 but no AMX (Zen 4), a reader folder without int8 scales keeps bf16, not fp32."""
    import logging

    import qa.reader.reader as reader_mod

    monkeypatch.setattr(reader_mod, "native_bf16", lambda: True)
    monkeypatch.setattr(reader_mod, "bf16_matrix_units", lambda: False)
    d = _copy_reader(tmp_path, with_scales=False)
    auto = ExtractiveReader(d)
    with caplog.at_level(logging.INFO, logger="qa.reader.reader"):
        auto.warm_up()
    assert auto.runtime == "torch-bf16" and not any(isinstance(m, Int8Linear) for m in auto.model.modules())
    assert any("bf16 on this CPU, not int8-torch" in r.getMessage() for r in caplog.records)


def test_calibrate_writes_what_load_scales_reads(tmp_path, shipped_fp32_reader):
    d = _copy_reader(tmp_path, with_scales=False)
    w = shipped_fp32_reader.encode(QUESTIONS[2], [CTX])
    windows = [(np.asarray(i), np.asarray(t)) for i, t in zip(w.encoding["input_ids"], w.encoding["token_type_ids"])]
    model = copy.deepcopy(shipped_fp32_reader.model)
    out = calibrate(d, model, windows, "test windows", alpha=0.4)
    scales = load_scales(d)
    quantised, kept = linear_names(model)
    assert out["quantised_layers"] == len(quantised) and out["kept_float"] == kept
    assert set(scales["input_absmax"]) == set(quantised) and scales["alpha"] == 0.4
    assert all(v >= 0 for vals in scales["input_absmax"].values() for v in vals)
    assert kept == ["qa_outputs"] and out["asymmetric_layers"] == model.config.num_hidden_layers
    # the asymmetric layers' ranges hold every calibration input: GELU's output, never below -0.17
    low, high = input_range(copy.deepcopy(shipped_fp32_reader.model), windows)
    assert set(scales["input_min"]) == set(scales["input_max"]) == {n for n in quantised if n.endswith("output.dense")
                                                                     and "attention" not in n}
    for n, lo in scales["input_min"].items():
        assert min(lo) >= -0.2 and all(a <= b for a, b in zip(lo, low[n]))
        assert all(a >= b for a, b in zip(scales["input_max"][n], high[n]))
    assert not list(d.glob(".*.tmp"))  # written atomically
    with pytest.raises(ValueError, match="alpha"):
        calibrate(d, model, windows, "x", alpha=1.5)
    quantize(model, scales)  # a model is built from it
    assert isinstance(model.get_submodule(quantised[0]), Int8Linear)


def test_quantize_reader_torch_command(tmp_path):
    from qa.cli import main

    d = _copy_reader(tmp_path, with_scales=False)
    squad = tmp_path / "squad"
    squad.mkdir()
    paragraphs = [{"context": CTX, "qas": [{"id": f"q{i}", "question": q, "answers": [{"text": "Zhanaozen",
                                                                                    "answer_start": CTX.index("Zhanaozen")}]}
                                        for i, q in enumerate(QUESTIONS)]}]
    (squad / "squad-v1.1-train.json").write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}))
    assert main(["quantize-reader", "--runtime", "torch", "--questions", "3", "--model-dir", str(d), "--squad-dir", str(squad)]) == 0
    assert load_scales(d)["calibration_windows"] == 3
    assert main(["quantize-reader", "--alpha", "0.5", "--model-dir", str(d), "--squad-dir", str(squad)]) == 2
