"""QA_READER_PRECISION=int8 (qa.reader.int8): built from the shipped calibration, close to fp32, exact citations,
clear errors when the calibration is missing or made for other weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from qa.reader.int8 import CALIBRATION_FILE, MANIFEST_FILE, Int8Error, load_manifest, model_path, sha256_file
from qa.reader.reader import ExtractiveReader
from qa.types import Passage
from shipped import SHIPPED, UNREST as CTX, UNREST_QUESTIONS as QUESTIONS, logit_agreement


@pytest.fixture(scope="module")
def int8_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("int8-cache")


@pytest.fixture(scope="module")
def int8_reader(int8_cache) -> ExtractiveReader:
    r = ExtractiveReader(SHIPPED, precision="int8", int8_cache_dir=int8_cache)
    r.warm_up()
    return r


def test_shipped_calibration_belongs_to_the_shipped_weights():
    manifest = load_manifest(SHIPPED)
    assert manifest["weights_sha256"] == sha256_file(SHIPPED / "model.safetensors")
    assert manifest["calibration_sha256"] == sha256_file(SHIPPED / CALIBRATION_FILE)
    assert "dev" not in manifest["calibration_source"]  # calibrated on training articles, never on dev-42
    # the model card names the same checksum
    assert manifest["calibration_sha256"] in (SHIPPED / "MODEL_CARD.md").read_text(encoding="utf-8")


def test_int8_runs_on_onnxruntime_and_is_cached(int8_reader, int8_cache):
    import logging

    assert int8_reader.runtime == "onnxruntime-int8"
    assert logging.getLogger().level == logging.WARNING  # building it left the root logger as it was
    built = list(int8_cache.glob("reader-int8-*.onnx"))
    assert len(built) == 1
    mtime = built[0].stat().st_mtime_ns
    assert model_path(SHIPPED, int8_cache) == built[0]  # a second warm-up reuses it, does not build again
    assert built[0].stat().st_mtime_ns == mtime
    import onnx

    ops = {n.op_type for n in onnx.load(str(built[0])).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # really quantised (QDQ)


def test_int8_logits_agree_with_fp32(int8_reader, shipped_fp32_reader):
    rows = logit_agreement(int8_reader, shipped_fp32_reader)
    assert sum(r[0] for r in rows) >= 2 * len(QUESTIONS) - 2  # start and end argmax: at most two of twelve differ
    assert min(r[1] for r in rows) > 0.95
    for q in QUESTIONS[:3]:  # the same answers as fp32 on clear questions
        a = shipped_fp32_reader.read_contexts(q, [("ctx", CTX)]).best_guess
        b = int8_reader.read_contexts(q, [("ctx", CTX)]).best_guess
        assert a.text == b.text


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(extra=st.lists(st.sampled_from(list("abc XYZ019.,\n") + ["é", "日本語", "😀", "e\u0301", "ß"]),
                      max_size=80).map("".join), question=st.sampled_from(QUESTIONS))
def test_int8_citations_slice_the_document_exactly(int8_reader, chunker, extra, question):
    text = extra + CTX + extra
    chunks = chunker.chunk_text(text, "doc.txt")
    passages = [Passage(chunk=c, score=1.0, rank=i + 1) for i, c in enumerate(chunks)]
    out = int8_reader.run(question, passages, {"doc.txt": text}.__getitem__, max_answers=5)
    for a in out.answers + ([out.best_guess] if out.best_guess else []):
        for c in a.citations:
            assert text[c.start : c.end] == c.text == a.text


def _copy_reader(tmp_path: Path, with_int8: bool = True) -> Path:
    d = tmp_path / "reader"
    d.mkdir()
    for f in SHIPPED.iterdir():
        if f.is_file() and (with_int8 or f.name not in (CALIBRATION_FILE, MANIFEST_FILE)):
            (d / f.name).symlink_to(f) if f.name == "model.safetensors" else shutil.copy(f, d / f.name)
    return d


def test_missing_calibration_says_to_run_quantize_reader(tmp_path):
    d = _copy_reader(tmp_path, with_int8=False)
    r = ExtractiveReader(d, precision="int8", int8_cache_dir=tmp_path / "cache")
    with pytest.raises(Int8Error, match="qa quantize-reader"):
        r.warm_up()


def test_calibration_for_other_weights_is_refused(tmp_path):
    d = _copy_reader(tmp_path)
    manifest = json.loads((d / MANIFEST_FILE).read_text())
    manifest["weights_sha256"] = "0" * 64
    (d / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(Int8Error, match="other weights"):
        model_path(d, tmp_path / "cache")
    d2 = tmp_path / "second"
    d2.mkdir()
    for f in d.iterdir():
        shutil.copy(f, d2 / f.name)
    (d2 / MANIFEST_FILE).write_text((SHIPPED / MANIFEST_FILE).read_text())
    (d2 / CALIBRATION_FILE).write_text("{}")
    with pytest.raises(Int8Error, match="checksum"):
        model_path(d2, tmp_path / "cache")


def test_int8_setting_is_accepted_and_checked(monkeypatch, tmp_path):
    from qa.config import Settings

    monkeypatch.setenv("QA_READER_PRECISION", "int8")
    monkeypatch.setenv("QA_READER_INT8_CACHE", str(tmp_path))
    s = Settings()
    r = ExtractiveReader.from_settings(s)
    assert (r.precision, Path(r.int8_cache_dir)) == ("int8", tmp_path)
    with pytest.raises(ValueError, match="int8"):
        ExtractiveReader(SHIPPED, precision="int4")
