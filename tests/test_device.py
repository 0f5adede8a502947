"""QA_DEVICE: auto picks CUDA only when torch sees a GPU; cuda without one falls back to the CPU with a warning;
anything else is refused with a clear error. (torch.cuda.is_available is monkeypatched: no GPU needed.)"""

from __future__ import annotations

import logging

import pytest
import torch
from pydantic import ValidationError

from qa.config import PROJECT_ROOT, Settings
from qa.device import resolve_device
from qa.reader.reader import ExtractiveReader, cuda_precision


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


def test_default_is_auto(monkeypatch):
    monkeypatch.delenv("QA_DEVICE", raising=False)
    assert Settings().device == "auto"


def test_auto_picks_cpu_without_a_gpu_and_cuda_with_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert Settings(device="auto").resolved_device() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device(None) == "cuda"
    assert resolve_device("cpu") == "cpu"  # cpu stays cpu even with a GPU


def test_cuda_without_a_gpu_falls_back_to_cpu_with_a_warning(no_gpu, caplog):
    with caplog.at_level(logging.WARNING, logger="qa.device"):
        assert resolve_device("cuda") == "cpu"
    assert any("no CUDA GPU" in r.getMessage() and "CPU" in r.getMessage() for r in caplog.records)


def test_cuda_with_a_gpu_is_cuda_without_warning(gpu, caplog):
    with caplog.at_level(logging.WARNING, logger="qa.device"):
        assert resolve_device("cuda") == "cuda"
    assert not caplog.records


def test_a_broken_cuda_install_counts_as_no_gpu(monkeypatch):
    def boom():
        raise RuntimeError("CUDA driver initialization failed")

    monkeypatch.setattr(torch.cuda, "is_available", boom)
    assert resolve_device("auto") == "cpu"


@pytest.mark.parametrize("bad", ["gpu", "CUDA:0", "tpu", ""])
def test_invalid_device_is_a_clear_validation_error(bad, monkeypatch):
    monkeypatch.delenv("QA_DEVICE", raising=False)
    with pytest.raises(ValidationError) as err:
        Settings(device=bad)
    msg = str(err.value)
    assert "device" in msg and "'auto', 'cpu' or 'cuda'" in msg


def test_invalid_device_from_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("QA_DEVICE", "gpu")
    with pytest.raises(ValidationError, match="'auto', 'cpu' or 'cuda'"):
        Settings()
    monkeypatch.setenv("QA_DEVICE", "cpu")
    assert Settings().device == "cpu"


def test_resolve_device_names_the_choices_for_a_bad_value():
    with pytest.raises(ValueError, match="auto, cpu, cuda; not 'gpu'"):
        resolve_device("gpu")


def test_embedder_falls_back_to_cpu(no_gpu, model_path):
    from qa.embedding import Embedder, get_embedder

    assert Embedder(model_path, device="cuda").device == "cpu"
    assert Embedder(model_path, device="auto").device == "cpu"
    # the shared instance is keyed by the resolved device: cuda-without-GPU shares the CPU model
    assert get_embedder(model_path, 32, "cuda") is get_embedder(model_path, 32, "cpu")


def test_reader_asked_for_cuda_without_a_gpu_runs_on_cpu_and_answers(no_gpu, caplog):
    settings = Settings(device="cuda", reader_precision="fp32")
    reader = ExtractiveReader.from_settings(settings, PROJECT_ROOT / "models" / "reader")
    with caplog.at_level(logging.WARNING, logger="qa.device"):
        reader.warm_up()
    assert reader.device == "cpu" and reader.runtime == "torch-fp32"
    assert next(reader.model.parameters()).device.type == "cpu"
    assert any("no CUDA GPU" in r.getMessage() for r in caplog.records)
    text = "The protests began on 2 January 2022 in the town of Zhanaozen."
    out = reader.read_contexts("When did the protests begin?", [("a.txt", text)])
    best = out.best_guess
    assert best is not None and "2 January" in best.text
    c = best.citations[0]
    assert text[c.start : c.end] == best.text


@pytest.mark.parametrize("precision,bf16_gpu,expected", [
    ("auto", True, "bf16"), ("auto", False, "fp16"), ("bf16", False, "bf16"), ("bf16", True, "bf16"),
    ("fp32", True, "fp32"), ("fp32", False, "fp32"),
])
def test_reader_on_cuda_uses_half_precision_unless_fp32(precision, bf16_gpu, expected):
    assert cuda_precision(precision, bf16_gpu) == expected
