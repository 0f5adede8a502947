"""ONNX Runtime backend for the reader.

The shipped checkpoint (fp16 safetensors) stays the one source of truth: on first use it is exported to an
fp32 ONNX graph, checked against PyTorch on inputs of two other shapes, and cached under
``Settings.reader_cache_dir`` keyed by the checkpoint's sha256 (a new checkpoint gets a new file; a corrupt
file is rebuilt). On a CPU without native bf16 (AVX2 only) onnxruntime runs the same fp32 model about 1.7x
faster than PyTorch eager (``python bench/bench_ask.py --backend ...`` prints both).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
MAX_ABS_DIFF = 1e-3  # logits of the exported graph vs PyTorch fp32 (measured: ~5e-6)


def onnx_available() -> bool:
    """onnxruntime to run, onnx + onnxscript for torch's exporter."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx", "onnxscript"))


def checkpoint_digest(model_dir: Path) -> str:
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        with open(model_dir / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def cached_onnx_path(model_dir: Path, cache_dir: Path) -> Path:
    import torch

    return cache_dir / f"reader-{checkpoint_digest(model_dir)[:16]}-torch{torch.__version__.split('+')[0]}.onnx"


def _probe_inputs(batch: int, length: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 20000, size=(batch, length), dtype=np.int64)
    ids[:, 0] = 101  # [CLS]
    mask = np.ones_like(ids)
    mask[-1, length // 2 :] = 0  # a padded row, as dynamic padding makes
    types = np.zeros_like(ids)
    types[:, length // 3 :] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _torch_model(model_dir: Path):
    import torch
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(str(model_dir), dtype=torch.float32)
    model.eval()

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.start_logits, out.end_logits

    return Logits(model).eval()


def _verify(session, torch_model) -> float:
    """Largest |logit difference| between the ONNX graph and PyTorch over inputs of two new shapes."""
    import torch

    worst = 0.0
    for batch, length, seed in ((2, 53, 1), (5, 211, 2)):
        feed = _probe_inputs(batch, length, seed)
        s, e = session.run(None, feed)
        with torch.inference_mode():
            ts, te = torch_model(*(torch.from_numpy(feed[k]) for k in INPUTS))
        m = feed["attention_mask"].astype(bool)  # padded positions are masked out by the decoder anyway
        worst = max(worst, float(np.abs(s - ts.numpy())[m].max()), float(np.abs(e - te.numpy())[m].max()))
    return worst


def export_onnx(model_dir: Path, out_path: Path) -> Path:
    """Export the checkpoint to ``out_path`` (atomically), after checking it against PyTorch."""
    import torch

    torch_model = _torch_model(model_dir)
    probe = _probe_inputs(3, 37, 0)
    batch, length = torch.export.Dim("batch", min=1, max=1024), torch.export.Dim("length", min=2, max=512)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    chatter = io.StringIO()  # the exporter prints its progress; keep stdout clean for `qa ask --json`
    onnx_log = logging.getLogger("torch.onnx")  # and logs "torchvision is not installed" notes
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                torch_model, tuple(torch.from_numpy(probe[k]) for k in INPUTS), str(tmp),
                input_names=list(INPUTS), output_names=["start_logits", "end_logits"],
                dynamic_shapes={k: {0: batch, 1: length} for k in INPUTS},
                dynamo=True, external_data=False, verbose=False,
            )
        diff = _verify(_session(tmp), torch_model)
        if diff > MAX_ABS_DIFF:
            raise RuntimeError(f"exported reader differs from PyTorch by {diff:.2e} (> {MAX_ABS_DIFF})")
        os.replace(tmp, out_path)
        logger.info("reader exported to %s (max |logit diff| vs PyTorch %.1e)", out_path, diff)
    finally:
        onnx_log.setLevel(level)
        tmp.unlink(missing_ok=True)
    return out_path


def _session(path: Path, threads: int | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads or (os.cpu_count() or 1)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class OnnxQAModel:
    """Start/end logits from the cached ONNX export of a reader checkpoint (built on first use)."""

    def __init__(self, model_dir: str | Path, cache_dir: str | Path, threads: int | None = None):
        self.model_dir = Path(model_dir)
        self.cache_dir = Path(cache_dir)
        self.threads = threads
        self.path: Path | None = None
        self.session = None

    def warm_up(self) -> "OnnxQAModel":
        if self.session is not None:
            return self
        path = cached_onnx_path(self.model_dir, self.cache_dir)
        if path.exists():
            try:
                self.session = _session(path, self.threads)
            except Exception as exc:  # a truncated or corrupt cache file: rebuild it
                logger.warning("rebuilding the reader's ONNX cache %s (%s)", path, exc)
        if self.session is None:
            export_onnx(self.model_dir, path)
            self.session = _session(path, self.threads)
        self.path = path
        return self

    def logits(self, input_ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s, e = self.session.run(None, {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": types})
        return s, e
