"""The reader's linear layers in int8 on PyTorch (``QA_READER_PRECISION=int8-torch``, CPU only).

Each quantised linear layer multiplies int8 weights (one scale per output channel) by its input quantised to 7 bits
with a fixed scale, and returns fp32 (FBGEMM's ``quantized::linear_with_input_q_dq_qweight_dq_output_fp32``): a
token's output depends on that token alone, so the packed forward (``qa/reader/packed.py``), the cascade and the
cross-request batcher work as in fp32. 7-bit inputs (levels 0..127; zero point 64 for a range centred on zero) keep AVX2's ``vpmaddubsw``, which
adds two u8 x s8 products in 16 bits, from saturating: every x86 CPU computes the same thing.

A transformer's activations have a few channels far larger than the rest, and one scale for a whole input
flattens the others. As in SmoothQuant (Xiao et al., 2023) each input channel ``j`` is divided by
``s_j = max|x_j|^a / max|W_:,j|^(1-a)`` and the weight's column multiplied by it -- the same product in exact
arithmetic -- which moves the outliers into the weights, where per-channel scales absorb them. BERT normalises
*after* the residual, so the division cannot be folded into the LayerNorm before it: it is an element-wise
multiply in front of the layer (:class:`Smoothed`, ~1 % of the layer's cost).

The feed-forward output projections read GELU's output, which never goes below -0.17 but reaches far above zero.
A range centred on zero (as for the other layers) spends levels on negative values that never occur, and those
layers lost 0.8-1.0 F1 in int8 that way. Their inputs are quantised over their calibrated ``[min, max]`` after
smoothing instead (asymmetric: zero point 23-37 of 127 for the shipped reader, 1.6-2x the resolution), which keeps
the F1 (docs/reader.md).

What ships beside the weights is ``int8_torch.json`` (``qa quantize-reader --runtime torch``): the largest absolute
input of every linear layer's channels over the reader windows of seeded SQuAD *training* questions (and the
smallest and largest for the asymmetric layers), the smoothing exponent, the layers kept in float (the span head)
and the sha256 of the weights they belong to. A file made before the asymmetric layers (no ``asymmetric`` entry)
keeps its feed-forward output projections in float, as its ``float_kept`` says. The int8 layers are built from it
at warm-up (~1 s, nothing cached, no data needed). Unlike the ONNX Runtime int8 reader (``qa/reader/int8.py``),
FBGEMM's kernels can be restricted to AVX2 (``FBGEMM_ENABLE_INSTRUCTIONS=AVX2``, as ``ATEN_CPU_CAPABILITY``
restricts PyTorch's own), so its speed on an AVX2-only CPU can be measured on any x86 CPU.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from qa.reader.int8 import Int8Error
from qa.writes import file_sha256

SCALES_FILE = "int8_torch.json"
ALPHA = 0.8  # chosen on the first 2,000 dev-42 questions among 0.5, 0.65, 0.8, 0.9 (docs/reader.md)
LEVELS = 127  # 7-bit inputs: levels 0..127 (zero point 64 for a range centred on zero)
# linear layers kept in float: the span head (2 outputs, nothing to gain)
FLOAT_KEPT = r"(^|\.)qa_outputs$"
# layers whose inputs are quantised over [min, max] with the zero point near the bottom: the feed-forward output
# projections, which read GELU's output (>= -0.17)
ASYMMETRIC = r"(^|\.)layer\.\d+\.output\.dense$"
# until 2026-12-07 the feed-forward output projections were kept in float; a scales file without "asymmetric" says so
FLOAT_KEPT_BEFORE = r"(^|\.)layer\.\d+\.output\.dense$|(^|\.)qa_outputs$"


def linear_names(model, float_kept: str = FLOAT_KEPT) -> tuple[list[str], list[str]]:
    """(quantised, kept float): the names of ``model``'s linear layers."""
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    kept = [n for n in names if re.search(float_kept, n)]
    return [n for n in names if n not in kept], kept


def recorded_input_range(model, run) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(smallest, largest) input of every input channel of every linear layer of ``model`` that ``run()`` reaches
    (``run`` calls the model as often as it likes; layers it never reaches are absent)."""
    low: dict[str, torch.Tensor] = {}
    high: dict[str, torch.Tensor] = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            def hook(_mod, inputs, name=name):
                x = inputs[0].detach()
                x = x.reshape(-1, x.shape[-1]).float()
                a, b = x.amin(0), x.amax(0)
                low[name] = torch.minimum(low[name], a) if name in low else a
                high[name] = torch.maximum(high[name], b) if name in high else b
            hooks.append(mod.register_forward_pre_hook(hook))
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    return {n: v.cpu().numpy() for n, v in low.items()}, {n: v.cpu().numpy() for n, v in high.items()}


def input_range(model, windows: list) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(smallest, largest) input of every input channel of every linear layer of ``model`` while it reads each
    window ``(input_ids, token_type_ids)`` on its own (the CPU)."""
    from qa.reader.forward import forward_logits

    def run() -> None:
        for ids, types in windows:
            ids = np.asarray(ids, dtype=np.int64)[None, :]
            forward_logits(model, ids, np.ones_like(ids), np.asarray(types, dtype=np.int64)[None, :], "cpu", False)

    return recorded_input_range(model, run)


def range_entries(low: dict, high: dict, quantised: list[str], asymmetric: list[str]) -> dict:
    """The ``input_absmax`` of the ``quantised`` layers and the ``input_min`` / ``input_max`` of the ``asymmetric``
    ones, as a scales file stores them (six decimals; the range rounded outwards, so that it still holds every
    calibration input)."""
    absmax = {n: np.maximum(np.abs(low[n]), np.abs(high[n])) for n in quantised}
    return {
        "input_absmax": {n: [round(float(v), 6) for v in absmax[n]] for n in quantised},
        "input_min": {n: [round(math.floor(float(v) * 1e6) / 1e6, 6) for v in low[n]] for n in asymmetric},
        "input_max": {n: [round(math.ceil(float(v) * 1e6) / 1e6, 6) for v in high[n]] for n in asymmetric},
    }


def calibrate(model_dir: Path, model, windows: list, source: str, alpha: float = ALPHA) -> dict:
    """Write ``int8_torch.json`` beside the weights in ``model_dir`` from the inputs the fp32 ``model`` sees
    reading ``windows``; return what was written, less the maxima (``qa quantize-reader --runtime torch``)."""
    model_dir = Path(model_dir)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], not {alpha}")
    low, high = input_range(model, windows)
    quantised, kept = linear_names(model)
    asymmetric = [n for n in quantised if re.search(ASYMMETRIC, n)]
    missing = [n for n in quantised if n not in low]
    if missing:
        raise Int8Error(f"no calibration input reached {missing[:3]}: is this a BERT-style span model?")
    data = {
        "weights_sha256": file_sha256(model_dir / "model.safetensors"),
        "alpha": alpha,
        "float_kept": FLOAT_KEPT,
        "asymmetric": ASYMMETRIC,
        "calibration_windows": len(windows),
        "calibration_source": source,
        **range_entries(low, high, quantised, asymmetric),
    }
    path = model_dir / SCALES_FILE
    partial = model_dir / f".{SCALES_FILE}.tmp"
    partial.write_text(json.dumps(data) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return {k: v for k, v in data.items() if not k.startswith("input_")} | {"quantised_layers": len(quantised),
                                                                             "kept_float": kept,
                                                                             "asymmetric_layers": len(asymmetric)}


def load_scales(model_dir: Path) -> dict:
    """``int8_torch.json`` checked against the weights beside it (Int8Error saying what to do otherwise)."""
    model_dir = Path(model_dir)
    path = model_dir / SCALES_FILE
    if not path.is_file():
        raise Int8Error(f"QA_READER_PRECISION=int8-torch: no {SCALES_FILE} in {model_dir}; run `qa quantize-reader "
                        "--runtime torch` to make it, or use QA_READER_PRECISION=auto")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data.get("input_absmax"), dict) or not 0.0 <= float(data["alpha"]) <= 1.0:
            raise ValueError("input_absmax or alpha missing")
        re.compile(str(data.get("float_kept", FLOAT_KEPT_BEFORE)))
        if "asymmetric" in data:
            re.compile(str(data["asymmetric"]))
            if not isinstance(data.get("input_min"), dict) or not isinstance(data.get("input_max"), dict):
                raise ValueError("input_min or input_max missing")
    except (OSError, ValueError, KeyError, TypeError, re.error) as exc:
        raise Int8Error(f"{path} is unreadable ({exc}); run `qa quantize-reader --runtime torch` again") from exc
    if data.get("weights_sha256") != file_sha256(model_dir / "model.safetensors"):
        raise Int8Error(f"{path} was made for other weights than {model_dir / 'model.safetensors'}; run `qa "
                        "quantize-reader --runtime torch` for these weights, or use QA_READER_PRECISION=auto")
    return data


class Smoothed(torch.nn.Module):
    """``linear(x * inv)``: the input's channels divided by the smoothing scales, the weight's columns multiplied
    by them."""

    def __init__(self, inv, linear):
        super().__init__()
        self.register_buffer("inv", inv)
        self.linear = linear

    def forward(self, x):
        return self.linear(x * self.inv)


def smooth(model, scales: dict) -> list[str]:
    """Divide the inputs of ``model``'s linear layers that are to be quantised by their smoothing scales and
    multiply the weights' columns by them (each becomes a :class:`Smoothed`, in place): the same function in exact
    arithmetic. Returns the names of those layers."""
    alpha = float(scales["alpha"])
    quantised, _kept = linear_names(model, str(scales.get("float_kept", FLOAT_KEPT_BEFORE)))
    absmax = scales["input_absmax"]
    asym = [n for n in quantised if re.search(str(scales.get("asymmetric", "(?!)")), n)]
    missing = [n for n in quantised if n not in absmax or len(absmax[n]) != model.get_submodule(n).in_features]
    missing += [n for n in asym if any(n not in scales.get(k, {}) or len(scales[k][n]) != len(absmax.get(n, ()))
                                       for k in ("input_min", "input_max"))]
    if missing:
        raise Int8Error(f"{SCALES_FILE} does not describe this model's layers ({missing[:3]}); run `qa "
                        "quantize-reader --runtime torch` again")
    for name in quantised if alpha > 0 else []:
        parent_name, _, child = name.rpartition(".")
        linear = model.get_submodule(name)
        x = torch.tensor(absmax[name], dtype=torch.float32).clamp(min=1e-5)
        w = linear.weight.detach().abs().amax(0).float().clamp(min=1e-5)
        s = x.pow(alpha) / w.pow(1.0 - alpha)
        with torch.no_grad():
            linear.weight.mul_(s[None, :].to(linear.weight.dtype))
        setattr(model.get_submodule(parent_name), child, Smoothed((1.0 / s).to(linear.weight.dtype), linear))
    return quantised


def input_quantisation(low: float, high: float) -> tuple[float, int]:
    """(scale, zero point) that map inputs in ``[low, high]`` (which holds 0) onto the 7-bit levels 0..127."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if high - low < 2e-6:
        low, high = -1e-6, 1e-6
    scale = (high - low) / LEVELS
    return scale, int(min(LEVELS, max(0, round(-low / scale))))


class Int8Linear(torch.nn.Module):
    """A linear layer with int8 weights (per output channel), its input quantised with a fixed scale and zero point
    (the same for every call) and an fp32 output; ``inv``: the smoothing, applied first. The input range is
    ``[-input_absmax, input_absmax]`` (zero point 64), or ``[input_min, input_absmax]`` when ``input_min`` is
    given (asymmetric: the zero point near the bottom for inputs that are rarely negative)."""

    def __init__(self, linear, input_absmax: float, inv=None, input_min: float | None = None):
        super().__init__()
        w = linear.weight.detach().float()
        scales = (w.abs().amax(1) / 127.0).clamp(min=1e-8).double()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyTorch's notice that quantised tensor types are deprecated
            wq = torch.quantize_per_channel(w, scales, torch.zeros(w.shape[0], dtype=torch.long), 0, torch.qint8)
            bias = linear.bias.detach().float() if linear.bias is not None else None
            self._packed = torch.ops.quantized.linear_prepack(wq, bias)
        high = max(float(input_absmax), 1e-6)
        self.scale, self.zero_point = input_quantisation(-high if input_min is None else input_min, high)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("inv", inv if inv is not None else torch.ones(linear.in_features))

    def forward(self, x):
        shape = x.shape
        y = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(
            (x * self.inv).reshape(-1, shape[-1]).contiguous(), self.scale, self.zero_point, self._packed)
        return y.reshape(*shape[:-1], self.out_features)


def quantize(model, scales: dict):
    """``model`` (fp32, eval) with its linear layers smoothed and in int8, except those kept float (in place)."""
    if "fbgemm" not in torch.backends.quantized.supported_engines or not hasattr(
            torch.ops.quantized, "linear_with_input_q_dq_qweight_dq_output_fp32"):
        raise Int8Error("QA_READER_PRECISION=int8-torch needs PyTorch's FBGEMM int8 kernels (an x86 build of torch "
                        "2.13, as pinned); use QA_READER_PRECISION=auto")
    torch.backends.quantized.engine = "fbgemm"
    asymmetric = str(scales.get("asymmetric", "(?!)"))  # none in a file made before them
    for name in smooth(model, scales):
        parent_name, _, child = name.rpartition(".")
        mod = model.get_submodule(name)
        inv = mod.inv if isinstance(mod, Smoothed) else torch.ones(mod.in_features)
        linear = mod.linear if isinstance(mod, Smoothed) else mod
        if re.search(asymmetric, name):  # the input range after smoothing (inv > 0 keeps each channel's order)
            low = torch.tensor(scales["input_min"][name], dtype=torch.float32) * inv
            high = torch.tensor(scales["input_max"][name], dtype=torch.float32) * inv
            mod = Int8Linear(linear, float(high.max()), inv, input_min=float(low.min()))
        else:
            absmax = torch.tensor(scales["input_absmax"][name], dtype=torch.float32)
            mod = Int8Linear(linear, float((absmax * inv).max()), inv)
        setattr(model.get_submodule(parent_name), child, mod)
    return model
