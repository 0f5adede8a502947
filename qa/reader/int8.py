"""The reader in static int8 on ONNX Runtime (``QA_READER_PRECISION=int8``, CPU only).

What ships (``models/reader``): the fp32 weights, and ``int8_calibration.json``: ONNX Runtime's
calibration cache (``onnxruntime.quantization.calibrate.save_tensors_data``: the min/max of every
tensor of the exported fp32 graph over SQuAD training windows), written by ``qa quantize-reader``, and
``int8.json``: which weights and tools the ranges belong to, and the quantisation options.

What happens at ``warm_up`` (once per machine; ~15 s): the fp32 model is exported to ONNX
(``torch.onnx.export``, TorchScript exporter, opset 17), and ``onnxruntime.quantization.quantize_static``
turns it into a QDQ model with the shipped ranges (no calibration data is needed at run time): int8
weights (per output channel, ``reduce_range``: 7-bit, so AVX2's ``vpmaddubsw`` cannot saturate and
every x86 CPU computes the same logits) and uint8 activations for the linear layers' matrix products,
except the feed-forward output projections and the span head, which stay float (their inputs, after
GELU, have outliers that 8 bits flatten: measured in docs/benchmarks.md). The result is cached under
``QA_READER_INT8_CACHE`` (default ``<reader>/.int8-cache/``) by a key of the weights, the ranges, the
options and the torch / ONNX Runtime versions, so a change of any of them builds again.

Nothing here downloads anything. Errors say what to do: no ``int8_calibration.json`` beside the weights,
ranges made for other weights, or no onnxruntime installed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from qa.reader.model_cache import cached_build
from qa.writes import file_sha256 as sha256_file  # None for a missing file: never equal to a recorded sha

log = logging.getLogger(__name__)

CALIBRATION_FILE = "int8_calibration.json"  # ONNX Runtime's calibration cache format
MANIFEST_FILE = "int8.json"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUTS = ("start_logits", "end_logits")
OPSET = 17
# linear layers kept in float: the FFN output projections (inputs after GELU) and the span head
FLOAT_KEPT = re.compile(r"(/layer\.\d+/output/dense/MatMul|qa_outputs/MatMul)$")
OPTIONS = {"format": "QDQ", "per_channel": True, "reduce_range": True, "activation_type": "QUInt8",
           "weight_type": "QInt8", "op_types": ["MatMul"], "float_kept": FLOAT_KEPT.pattern,
           "opset": OPSET}


class Int8Error(RuntimeError):
    """The int8 reader cannot be built here; the message says why and what to do."""


def _versions() -> dict:
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__}


def _require_runtime() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise Int8Error(f"QA_READER_PRECISION=int8 needs onnxruntime and onnx ({exc}); "
                        "`pip install -e .` installs them, or use QA_READER_PRECISION=auto") from exc


def export_onnx(model_dir: Path, out: Path) -> Path:
    """The fp32 span model as ONNX (dynamic batch and length; TorchScript exporter, deterministic names)."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    ids = torch.ones(2, 16, dtype=torch.long)
    axes = {name: {0: "batch", 1: "seq"} for name in (*INPUTS, *OUTPUTS)}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(out),
                          input_names=list(INPUTS), output_names=list(OUTPUTS), dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)
    return out


def linear_nodes(onnx_path: Path) -> tuple[list[str], list[str]]:
    """(quantised, kept float): the MatMul nodes whose second input is a weight (the linear layers)."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    linear = [n.name for n in graph.node if n.op_type == "MatMul" and len(n.input) > 1 and n.input[1] in weights]
    kept = [n for n in linear if re.search(OPTIONS["float_kept"], n)]
    return [n for n in linear if n not in kept], kept


class CalibrationReader:
    """onnxruntime's CalibrationDataReader over reader windows: one window per call (any length)."""

    def __init__(self, windows: list[tuple[np.ndarray, np.ndarray]]):
        self.windows = windows
        self._i = 0

    def get_next(self):
        if self._i >= len(self.windows):
            return None
        ids, tt = self.windows[self._i]
        self._i += 1
        return {"input_ids": ids[None, :].astype(np.int64), "attention_mask": np.ones((1, len(ids)), np.int64),
                "token_type_ids": tt[None, :].astype(np.int64)}

    def rewind(self):
        self._i = 0


def _quantize(fp32: Path, out: Path, calibration: Path, reader: CalibrationReader | None = None) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantised, _kept = linear_nodes(fp32)
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))  # ORT logs a pre-processing hint to the root logger; only for this call
    try:
        quantize_static(str(fp32), str(out), calibration_data_reader=reader, quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=OPTIONS["op_types"], nodes_to_quantize=quantised,
                        per_channel=OPTIONS["per_channel"], reduce_range=OPTIONS["reduce_range"],
                        activation_type=getattr(QuantType, OPTIONS["activation_type"]),
                        weight_type=getattr(QuantType, OPTIONS["weight_type"]),
                        calibrate_method=CalibrationMethod.MinMax, calibration_cache_path=str(calibration))
    finally:
        root.setLevel(level)


def calibrate(model_dir: Path, windows: list[tuple[np.ndarray, np.ndarray]], source: str) -> dict:
    """Write ``int8_calibration.json`` and ``int8.json`` beside the weights from these windows; return the
    manifest (``qa quantize-reader``)."""
    _require_runtime()
    model_dir = Path(model_dir)
    calib = model_dir / CALIBRATION_FILE
    with tempfile.TemporaryDirectory(prefix="qa-int8-") as tmp:
        fp32 = export_onnx(model_dir, Path(tmp) / "fp32.onnx")
        _quantised, kept = linear_nodes(fp32)
        tmp_calib = Path(tmp) / CALIBRATION_FILE
        _quantize(fp32, Path(tmp) / "int8.onnx", tmp_calib, CalibrationReader(windows))
        partial = model_dir / f".{CALIBRATION_FILE}.tmp"
        partial.write_bytes(tmp_calib.read_bytes())
        os.replace(partial, calib)
    manifest = {
        "weights_sha256": sha256_file(model_dir / "model.safetensors"),
        "calibration_sha256": sha256_file(calib),
        "calibration_windows": len(windows),
        "calibration_source": source,
        "options": OPTIONS,
        "float_kept_nodes": kept,
        **_versions(),
    }
    (model_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def load_manifest(model_dir: Path) -> dict:
    """``int8.json`` checked against the weights beside it (Int8Error with what to do otherwise)."""
    model_dir = Path(model_dir)
    manifest_path, calib = model_dir / MANIFEST_FILE, model_dir / CALIBRATION_FILE
    if not manifest_path.is_file() or not calib.is_file():
        raise Int8Error(f"QA_READER_PRECISION=int8: no int8 calibration in {model_dir} (expected {MANIFEST_FILE} "
                        f"and {CALIBRATION_FILE}); run `qa quantize-reader` to make them, or use "
                        "QA_READER_PRECISION=auto")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Int8Error(f"{manifest_path} is unreadable ({exc}); run `qa quantize-reader` again") from exc
    if manifest.get("weights_sha256") != sha256_file(model_dir / "model.safetensors"):
        raise Int8Error(f"{manifest_path} was made for other weights than {model_dir / 'model.safetensors'}; "
                        "run `qa quantize-reader` for these weights, or use QA_READER_PRECISION=auto")
    if manifest.get("calibration_sha256") != sha256_file(calib):
        raise Int8Error(f"{calib} does not match its checksum in {manifest_path}; run `qa quantize-reader` again")
    return manifest


def model_path(model_dir: Path, cache_dir: Path | None = None) -> Path:
    """The int8 ONNX model for the reader in ``model_dir``: from the cache, or built into it now."""
    _require_runtime()
    model_dir = Path(model_dir)
    manifest = load_manifest(model_dir)
    key = hashlib.sha256(json.dumps({"weights": manifest["weights_sha256"], "ranges": manifest["calibration_sha256"],
                                     "options": OPTIONS, **_versions()}, sort_keys=True).encode()).hexdigest()[:16]
    cache = Path(cache_dir) if cache_dir is not None else model_dir / ".int8-cache"

    def build(tmp: Path) -> Path:
        fp32 = export_onnx(model_dir, tmp / "fp32.onnx")
        _quantize(fp32, tmp / "int8.onnx", model_dir / CALIBRATION_FILE)
        return tmp / "int8.onnx"

    return cached_build(cache / f"reader-int8-{key}.onnx", build, "int8", "QA_READER_INT8_CACHE")


class Int8Forward:
    """An ONNX Runtime session over the int8 model: ``(ids, mask, types) -> (start, end)`` logits."""

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # no busy-waiting between forwards: spinning ORT threads took the cores from the query embedder (torch),
        # whose median went from 12 to 21 ms in `qa ask`
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])

    def __call__(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s, e = self.session.run(list(OUTPUTS), {"input_ids": ids.astype(np.int64, copy=False),
                                                "attention_mask": mask.astype(np.int64, copy=False),
                                                "token_type_ids": types.astype(np.int64, copy=False)})
        return s.astype(np.float32, copy=False), e.astype(np.float32, copy=False)
