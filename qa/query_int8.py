"""Question embeddings with the encoder's linear layers in int8 (``QA_QUERY_PRECISION``, CPU only).

A question is ~15 tokens, so its embedding is bound by reading the encoder's 42 MB of fp32 linear weights, which
the reader's forward has just pushed out of the caches; int8 weights are a quarter of that. The layers are
qa.reader.int8_torch's (smoothed, per-channel int8 weights, 7-bit inputs with a fixed calibrated range, the
feed-forward outputs' range asymmetric) and walked by qa.query_encoder. Only questions go through them: documents
are embedded in fp32 as before, so an index does not depend on this setting and needs no rebuild.

What ships is ``models/embedder/query_int8.json`` (``qa quantize-embedder``): each linear layer's input range over
the embeddings of seeded SQuAD *training* questions, the smoothing exponent and the sha256 of the weights it
belongs to. Warm-up builds the int8 layers from it (~0.3 s) and checks them on probe questions: a cosine to the
fp32 vector under :data:`MIN_COSINE` (another model, stale scales) keeps fp32, logged.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
from pathlib import Path

import numpy as np

from qa.reader.int8 import Int8Error
from qa.writes import file_sha256

log = logging.getLogger(__name__)

ALPHA = 0.9  # smoothing exponent, chosen on 600 dev-42 questions' cosines among 0.5, 0.7, 0.8, 0.9, 0.95
FLOAT_KEPT = r"(^|\.)pooler\."  # never reached by a sentence embedding
PRECISIONS = ("auto", "fp32", "int8")
MIN_COSINE = 0.98  # on the probe questions; the shipped scales give 0.994-0.998 on 720 held-out questions


def weights_file(model_path: str | Path) -> Path:
    return Path(model_path) / "model.safetensors"


def calibrate(encoder, questions: list[str], weights: Path, out: Path, source: str, alpha: float = ALPHA) -> dict:
    """Write the scales of ``encoder`` (a qa.query_encoder.QueryEncoder in fp32) over ``questions`` to ``out``
    (atomically) and return what was written, less the ranges."""
    from qa.reader.int8_torch import ASYMMETRIC, linear_names, range_entries, recorded_input_range

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], not {alpha}")
    if not questions:
        raise ValueError("no calibration questions")
    model = encoder.model
    low, high = recorded_input_range(model, lambda: [encoder.encode(q) for q in questions])
    quantised, kept = linear_names(model, FLOAT_KEPT)
    missing = [n for n in quantised if n not in low]
    if missing:
        raise Int8Error(f"no calibration input reached {missing[:3]}: is this a BERT-layout encoder?")
    asymmetric = [n for n in quantised if re.search(ASYMMETRIC, n)]
    data = {"weights_sha256": file_sha256(weights), "alpha": alpha, "float_kept": FLOAT_KEPT,
            "asymmetric": ASYMMETRIC, "calibration_questions": len(questions), "calibration_source": source,
            **range_entries(low, high, quantised, asymmetric)}
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.tmp"
    partial.write_text(json.dumps(data) + "\n", encoding="utf-8")
    os.replace(partial, out)
    return {k: v for k, v in data.items() if not k.startswith("input_")} | {"quantised_layers": len(quantised),
                                                                             "kept_float": kept}


def load_scales(path: Path, weights: Path) -> dict:
    """The scales in ``path``, checked against ``weights`` (Int8Error saying what to do otherwise)."""
    if not path.is_file():
        raise Int8Error(f"no query scales at {path}; run `qa quantize-embedder`, or set QA_QUERY_PRECISION=fp32")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data.get("input_absmax"), dict) or not 0.0 <= float(data["alpha"]) <= 1.0:
            raise ValueError("input_absmax or alpha missing")
        re.compile(str(data.get("float_kept", FLOAT_KEPT)))
        re.compile(str(data.get("asymmetric", "(?!)")))
    except (OSError, ValueError, KeyError, TypeError, re.error) as exc:
        raise Int8Error(f"{path} is unreadable ({exc}); run `qa quantize-embedder` again") from exc
    if data.get("weights_sha256") != (file_sha256(weights) if weights.is_file() else None):
        raise Int8Error(f"{path} was made for other weights than {weights}; run `qa quantize-embedder` for these "
                        "weights, or set QA_QUERY_PRECISION=fp32")
    return data


def int8_encoder(encoder, scales: dict):
    """A copy of ``encoder`` whose transformer layers are in int8 (the token embeddings and the tokenizer are
    shared with ``encoder``, which stays fp32). Int8Error where the layers or the kernels do not fit."""
    import torch

    from qa.reader.int8_torch import quantize

    holder = torch.nn.Module()
    holder.encoder = copy.deepcopy(encoder.model.encoder)
    quantize(holder, scales)  # Int8Error for a layer the scales do not describe, or no FBGEMM
    out = copy.copy(encoder)
    out.layers = holder.encoder.layer
    return out


def agreement(int8, fp32, texts) -> float:
    """The smallest cosine between the two encoders' vectors over ``texts``."""
    return min(float(np.dot(int8.encode(t), fp32.encode(t))) for t in texts)
