"""QA_READER_BACKEND=openvino (qa.reader.openvino_rt): the same weights on OpenVINO give PyTorch's logits and
answers, citations stay exact, the exported model is cached, and wrong combinations get clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.reader.openvino_rt import OpenVinoError, OpenVinoForward, model_path
from qa.reader.reader import ExtractiveReader
from shipped import SHIPPED, assert_citations_exact, assert_same_answers, citation_property


@pytest.fixture(scope="module")
def ov_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("openvino-cache")


@pytest.fixture(scope="module")
def ov_reader(ov_cache) -> ExtractiveReader:
    r = ExtractiveReader(SHIPPED, precision="fp32", backend="openvino", openvino_cache_dir=ov_cache)
    r.warm_up()
    return r


def test_runs_on_openvino_and_caches_the_export(ov_reader, ov_cache):
    assert ov_reader.runtime == "openvino-fp32" and ov_reader.openvino is not None
    built = list(ov_cache.glob("reader-*.onnx"))
    assert len(built) == 1
    mtime = built[0].stat().st_mtime_ns
    assert model_path(SHIPPED, ov_cache) == built[0] and built[0].stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_logits_agree_with_pytorch_over_batch_shapes(ov_reader, shipped_fp32_reader):
    rng = np.random.default_rng(0)
    for batch, length in ((1, 17), (3, 64), (5, 220), (2, 256)):
        ids = rng.integers(1000, 20000, size=(batch, length)).astype(np.int64)
        ids[:, 0] = 101
        mask = np.ones_like(ids)
        mask[0, length // 2:] = 0  # a padded row: its real tokens' logits must not change
        types = np.zeros_like(ids)
        types[:, length // 3:] = 1
        s_ov, e_ov = ov_reader.openvino(ids, mask, types)
        from qa.reader.forward import forward_logits

        s_pt, e_pt = forward_logits(shipped_fp32_reader.model, ids, mask, types, "cpu", False)
        keep = mask.astype(bool)
        assert np.abs(s_ov - s_pt)[keep].max() < 1e-3 and np.abs(e_ov - e_pt)[keep].max() < 1e-3


def test_answers_offsets_and_scores_are_pytorchs(ov_reader, shipped_fp32_reader):
    assert_same_answers(ov_reader, shipped_fp32_reader, 1e-3)


@citation_property
def test_every_citation_slices_the_document_exactly(ov_reader, text, question):
    assert_citations_exact(ov_reader, text, question)


def test_the_setting_and_the_errors(monkeypatch, tmp_path):
    assert Settings().reader_backend == "torch"
    monkeypatch.setenv("QA_READER_BACKEND", "openvino")
    r = ExtractiveReader.from_settings(Settings())
    assert r.backend == "openvino"
    monkeypatch.setenv("QA_READER_BACKEND", "tensorrt")
    with pytest.raises(ValueError):
        Settings()
    with pytest.raises(ValueError, match="int8 runs on ONNX Runtime"):
        ExtractiveReader(SHIPPED, precision="int8", backend="openvino")
    with pytest.raises(ValueError):
        ExtractiveReader(SHIPPED, backend="tensorrt")
    with pytest.raises(OpenVinoError, match="no model.safetensors"):
        model_path(tmp_path, tmp_path / "cache")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(OpenVinoError, match="delete the file"):
        OpenVinoForward(broken)


def test_openvino_refuses_the_gpu(monkeypatch, ov_cache):
    import qa.device

    monkeypatch.setattr(qa.device, "resolve_device", lambda requested: "cuda")
    r = ExtractiveReader(SHIPPED, backend="openvino", device="cuda", openvino_cache_dir=ov_cache)
    with pytest.raises(ValueError, match="QA_READER_BACKEND=openvino runs on the CPU"):
        r.warm_up()


def test_an_unwritable_cache_folder_exports_into_a_temporary_one(tmp_path, caplog):
    if os.geteuid() == 0:
        blocked = tmp_path / "file-not-folder"
        blocked.write_text("x")  # a file where the cache folder should be: mkdir fails even for root
    else:
        blocked = tmp_path / "ro"
        blocked.mkdir(mode=0o500)
    with caplog.at_level("WARNING"):
        path = model_path(SHIPPED, blocked)
    assert path.is_file() and blocked not in path.parents
    assert "not writable" in caplog.text and "QA_READER_OPENVINO_CACHE" in caplog.text
