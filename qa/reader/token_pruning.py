"""Late-layer token pruning: the reader's last layers compute only the tokens that can still be an answer.

After ``layer`` of the reader's six layers, a linear probe on each context token's hidden state predicts the
token's final span logit (the larger of its start and end logits). In every window only the best ``keep`` share
of the context tokens goes on being computed (queries, attention output, feed-forward layers), together with
the question and the special tokens; the other tokens keep the hidden state they had at ``layer`` and still serve
as keys and values to the tokens computed (they are "frozen", not removed: removing them cost 3-4 times the
F1). A frozen token cannot start or end an answer (its logits are those of padding).

The selection is per window, so a window's logits still depend on that window alone (the cascade, the
pre-tokenised path and the packed forward keep their properties). It runs in the CPU's packed forward
(qa/reader/packed.py); the GPU path and the cross-request batcher (windows padded to one width) compute every
token as before.

The probe lives beside the weights in ``token_probe.json`` (``qa fit-token-probe``: a ridge regression on the
fp32 reader's hidden states over seeded SQuAD *training* windows), with the sha256 of the weights it was fitted
on. A missing, unreadable or mismatched file leaves every token computed (logged), never an error: pruning is a
speed-up, not a part of the answer's meaning. ``QA_READER_TOKEN_KEEP`` overrides the share (1 = off).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.writes import file_sha256

log = logging.getLogger(__name__)

PROBE_FILE = "token_probe.json"
DROPPED_LOGIT = -1e9  # the logit of a frozen token: what padding gets (qa.reader.reader.ExtractiveReader._logits)


@dataclass(frozen=True)
class TokenProbe:
    """``score = hidden @ weight + bias`` of every token entering layer index ``layer`` (0-based: after
    ``layer`` layers); ``keep``: the share of each window's context tokens computed from there on."""

    layer: int
    keep: float
    weight: np.ndarray  # [hidden size] float32
    bias: float

    def scores(self, hidden) -> np.ndarray:
        """The probe's score of each row of ``hidden`` (a torch tensor [tokens, hidden size])."""
        import torch

        w = torch.from_numpy(self.weight)
        return (hidden.float() @ w).numpy() + self.bias


def kept_tokens(scores: np.ndarray, types: np.ndarray, lens: list[int], keep: float) -> np.ndarray:
    """Sorted indices (into the tokens laid end to end) of the tokens computed after the probe's layer: in each
    window, every token that is not context (``[CLS]``, the question, ``[SEP]``s: type 0, and the window's
    last token) and the ``ceil(keep * n)`` context tokens of highest score (ties: the earlier token)."""
    types = np.asarray(types)
    keep_mask = np.ones(len(types), dtype=bool)
    o = 0
    for n in lens:
        ctx = np.flatnonzero(types[o : o + n - 1] == 1) + o  # context tokens, the closing [SEP] excluded
        if len(ctx):
            n_keep = min(len(ctx), max(1, math.ceil(keep * len(ctx))))
            order = np.argsort(-scores[ctx], kind="stable")
            keep_mask[ctx[order[n_keep:]]] = False
        o += n
    return np.flatnonzero(keep_mask)


def probe_path(model_dir: Path) -> Path:
    return Path(model_dir) / PROBE_FILE


def load(model_dir: Path, keep: float | None = None, hidden_size: int | None = None,
         layers: int | None = None) -> TokenProbe | None:
    """The probe of the reader in ``model_dir``, or None (every token computed) when there is none, it is
    unreadable, it was fitted on other weights or does not fit this model (each logged), or ``keep`` >= 1."""
    if keep is not None and keep >= 1.0:
        return None
    path = probe_path(model_dir)
    if not path.is_file():
        log.info("no %s in %s: every token goes through every layer (run `qa fit-token-probe` to prune)",
                 PROBE_FILE, model_dir)
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        weight = np.asarray(data["weight"], dtype=np.float32)
        probe = TokenProbe(layer=int(data["layer"]), keep=float(data["keep"] if keep is None else keep),
                           weight=weight, bias=float(data["bias"]))
        if weight.ndim != 1 or not np.isfinite(weight).all() or not math.isfinite(probe.bias):
            raise ValueError("weight must be a list of finite numbers")
        if not 0.0 < probe.keep <= 1.0:
            raise ValueError(f"keep must be within (0, 1], not {probe.keep}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s is unreadable (%s): every token goes through every layer; run `qa fit-token-probe` again",
                    path, exc)
        return None
    weights = Path(model_dir) / "model.safetensors"
    if data.get("weights_sha256") != (file_sha256(weights) if weights.is_file() else None):
        log.warning("%s was fitted on other weights than %s: every token goes through every layer; run `qa "
                    "fit-token-probe` for these weights", path, weights)
        return None
    if (hidden_size is not None and len(probe.weight) != hidden_size) or (
            layers is not None and not 0 < probe.layer < layers):
        log.warning("%s does not fit this model (hidden size %s, %s layers): every token goes through every layer",
                    path, hidden_size, layers)
        return None
    return None if probe.keep >= 1.0 else probe


def save(model_dir: Path, probe: TokenProbe, source: str, extra: dict | None = None, out: Path | None = None) -> Path:
    """Write the probe as JSON (atomically) to ``out`` or ``<model_dir>/token_probe.json``; return the path."""
    path = Path(out) if out is not None else probe_path(model_dir)
    data = {
        "weights_sha256": file_sha256(Path(model_dir) / "model.safetensors"),
        "layer": probe.layer,
        "keep": probe.keep,
        "target": "max(start logit, end logit) of each context token, fp32 reader",
        "source": source,
        **(extra or {}),
        "bias": round(float(probe.bias), 7),
        "weight": [round(float(v), 7) for v in probe.weight],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(json.dumps(data) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path
