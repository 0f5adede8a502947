"""The reader on OpenVINO (``QA_READER_BACKEND=openvino``, CPU).

The same fp32 weights, another runtime: at ``warm_up`` the span model is exported to ONNX (``torch.onnx.export``,
TorchScript exporter, eager attention: a graph whose attention OpenVINO fuses; the ``sdpa`` graph measured slower)
and cached under ``QA_READER_OPENVINO_CACHE`` (default ``<reader>/.openvino-cache/``) by a key of the weights and
the torch / OpenVINO versions; OpenVINO reads it (its ONNX front end) and compiles it for the CPU with the
latency hint. Logits agree with PyTorch's to ~1e-5 in fp32 (``tests/test_openvino.py``); the forward pass over a
question's windows takes ~0.7x PyTorch's on the CPUs measured (docs/benchmarks.md).

Nothing here downloads or sends anything: the model is not converted with ``openvino.convert_model`` (its
converter reports usage over the network unless told otherwise), only read from the ONNX file this module wrote.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from qa.reader.model_cache import cached_build
from qa.writes import file_sha256

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUTS = ("start_logits", "end_logits")
OPSET = 17
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16"}


class OpenVinoError(RuntimeError):
    """The OpenVINO reader cannot be built here; the message says why and what to do."""


def _openvino():
    try:
        import openvino
    except ImportError as exc:  # pragma: no cover - a dependency
        raise OpenVinoError(f"QA_READER_BACKEND=openvino needs the openvino package ({exc}); `pip install -e .` "
                            "installs it, or set QA_READER_BACKEND=torch") from exc
    return openvino


def export_onnx(model_dir: Path, out: Path) -> Path:
    """The fp32 span model as ONNX with eager attention (dynamic batch and length)."""
    import warnings

    import torch
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(str(model_dir), dtype=torch.float32,
                                                          attn_implementation="eager").eval()

    class Span(torch.nn.Module):  # (start, end) logits as a plain tuple
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            o = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return o.start_logits, o.end_logits

    ids = torch.ones(2, 16, dtype=torch.long)
    axes = {name: {0: "batch", 1: "seq"} for name in (*INPUTS, *OUTPUTS)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Span(model), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(out),
                          input_names=list(INPUTS), output_names=list(OUTPUTS), dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)
    return out


def model_path(model_dir: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The exported ONNX model of the reader in ``model_dir``: from the cache, or built into it now (~5 s)."""
    import torch

    ov = _openvino()
    model_dir = Path(model_dir)
    weights = model_dir / "model.safetensors"
    sha = file_sha256(weights)
    if sha is None:
        raise OpenVinoError(f"no model.safetensors in {model_dir}: QA_READER_BACKEND=openvino exports the reader's "
                            "weights (set QA_READER_MODEL_DIR, or QA_READER_BACKEND=torch)")
    key = hashlib.sha256(json.dumps({"weights": sha, "torch": torch.__version__, "openvino": ov.__version__,
                                     "opset": OPSET, "attention": "eager"}, sort_keys=True).encode()).hexdigest()[:16]
    cache = Path(cache_dir) if cache_dir is not None else model_dir / ".openvino-cache"
    return cached_build(cache / f"reader-{key}.onnx", lambda tmp: export_onnx(model_dir, tmp / "reader.onnx"),
                        "OpenVINO", "QA_READER_OPENVINO_CACHE")


class OpenVinoForward:
    """A compiled OpenVINO model: ``(ids, mask, types) -> (start, end)`` logits. One call at a time (the reader
    holds its forward lock)."""

    def __init__(self, path: str | Path, threads: int | None = None, precision: str = "fp32"):
        if precision not in PRECISION_HINTS:
            raise OpenVinoError(f"OpenVINO runs the reader in fp32 or bf16, not {precision!r}")
        ov = _openvino()
        self.path = Path(path)
        self.precision = precision
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision]}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        core = ov.Core()
        try:
            self.compiled = core.compile_model(core.read_model(str(self.path)), "CPU", config)
        except RuntimeError as exc:
            raise OpenVinoError(f"OpenVINO could not load {self.path} ({str(exc).splitlines()[0][:200]}); delete "
                                "the file to export it again, or set QA_READER_BACKEND=torch") from exc
        self.request = self.compiled.create_infer_request()

    def __call__(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.request.infer({"input_ids": ids.astype(np.int64, copy=False),
                                  "attention_mask": mask.astype(np.int64, copy=False),
                                  "token_type_ids": types.astype(np.int64, copy=False)})
        s = np.asarray(out[self.compiled.output("start_logits")], dtype=np.float32)
        e = np.asarray(out[self.compiled.output("end_logits")], dtype=np.float32)
        return s.copy(), e.copy()
