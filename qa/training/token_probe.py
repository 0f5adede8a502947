"""`qa fit-token-probe`: fit the probe of late-layer token pruning (qa.reader.token_pruning) on SQuAD training windows.

    qa fit-token-probe                          # 800 seeded questions of squad-v1.1-train.json, models/reader
    qa fit-token-probe --layer 4 --keep 0.3 --questions 800 --seed 0 --out runs/probe.json

Each sampled training question is read with its own paragraph, in the reader's serving windows, by the fp32
reader. For every context token the hidden state entering layer ``--layer`` (0-based: after that many layers) and
the token's final span logit (the larger of its start and end logits) are recorded; a ridge regression from the
one to the other is the probe. One question in five is held out first to report how well it ranks (R² and how
often a window's three best tokens are among the ``--keep`` share kept), then the probe is refitted on every
question and written, with the sha256 of the weights, to ``<model-dir>/token_probe.json`` (or ``--out``). ~30 s
on two cores. Fit on training articles only: dev-42 is for evaluation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def add_fit_token_probe_command(sub) -> None:
    p = sub.add_parser("fit-token-probe", help="fit the probe that lets the reader's last layers skip tokens "
                                               "that cannot be an answer (token_probe.json)")
    p.add_argument("--model-dir", type=Path, default=None, help="reader folder (default: QA_READER_MODEL_DIR)")
    p.add_argument("--squad-dir", type=Path, default=None, help="folder of the SQuAD files (QA_SQUAD_DIR)")
    p.add_argument("--questions", type=int, default=800, help="seeded sample of training questions (default 800)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layer", type=int, default=4, help="prune after this many layers (default 4 of 6)")
    p.add_argument("--keep", type=float, default=0.3, help="share of each window's context tokens computed "
                                                          "after --layer (default 0.3)")
    p.add_argument("--alpha", type=float, default=10.0, help="ridge penalty (default 10)")
    p.add_argument("--out", type=Path, default=None, help="write here instead of <model-dir>/token_probe.json")
    p.set_defaults(handler=cmd_fit_token_probe, func=cmd_fit_token_probe)


def probe_data(model, windows: list, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hidden states entering ``layer``, final span logits, window number) of every context token of
    ``windows`` ``(input_ids, token_type_ids)``, read one at a time by ``model`` (fp32, CPU)."""
    from qa.reader.forward import forward_logits

    captured = []
    hook = model.base_model.encoder.layer[layer - 1].register_forward_hook(
        lambda _m, _i, out: captured.append((out[0] if isinstance(out, tuple) else out)[0].detach().float()))
    X, Y, W = [], [], []
    try:
        for w, (ids, types) in enumerate(windows):
            ids = np.asarray(ids, dtype=np.int64)[None, :]
            types = np.asarray(types, dtype=np.int64)
            captured.clear()
            s, e = forward_logits(model, ids, np.ones_like(ids), types[None, :], "cpu", False)
            ctx = np.flatnonzero(types[:-1] == 1)
            X.append(captured[-1].numpy()[ctx])
            Y.append(np.maximum(s[0], e[0])[ctx])
            W.append(np.full(len(ctx), w))
    finally:
        hook.remove()
    return np.concatenate(X), np.concatenate(Y).astype(np.float64), np.concatenate(W)


def top_recall(pred: np.ndarray, target: np.ndarray, window: np.ndarray, keep: float, top: int = 3) -> float:
    """Mean share of each window's ``top`` highest-target tokens that the ``keep`` share of highest ``pred`` holds."""
    import math

    hits = []
    for w in np.unique(window):
        sel = np.flatnonzero(window == w)
        n_keep = max(1, math.ceil(keep * len(sel)))
        kept = set(np.argsort(-pred[sel], kind="stable")[:n_keep].tolist())
        best = np.argsort(-target[sel], kind="stable")[:top]
        hits.append(np.mean([b in kept for b in best]))
    return float(np.mean(hits)) if hits else 0.0


def fit(model, windows: list, question_of: list[int], layer: int, keep: float, alpha: float = 10.0):
    """(TokenProbe fitted on every window, held-out figures: R² and top-3 recall on every fifth question)."""
    from sklearn.linear_model import Ridge

    from qa.reader.token_pruning import TokenProbe

    X, Y, W = probe_data(model, windows, layer)
    held = np.asarray(question_of)[W] % 5 == 0
    figures = {}
    if held.any() and (~held).any():
        m = Ridge(alpha=alpha).fit(X[~held], Y[~held])
        pred = m.predict(X[held])
        figures = {"heldout_r2": round(float(m.score(X[held], Y[held])), 4),
                   "heldout_top3_recall": round(top_recall(pred, Y[held], W[held], keep), 4)}
    m = Ridge(alpha=alpha).fit(X, Y)
    probe = TokenProbe(layer=layer, keep=keep, weight=m.coef_.astype(np.float32), bias=float(m.intercept_))
    return probe, figures | {"tokens": int(len(Y)), "windows": len(windows)}


def cmd_fit_token_probe(args: argparse.Namespace) -> int:
    import random

    from qa.config import get_settings
    from qa.reader import token_pruning
    from qa.reader.reader import ExtractiveReader
    from qa.training.squad import load_squad

    settings = get_settings()
    model_dir = Path(args.model_dir or settings.reader_model_dir)
    squad_file = (args.squad_dir or settings.squad_dir) / "squad-v1.1-train.json"
    if not squad_file.is_file():
        print(f"error: training data not found: {squad_file} (set --squad-dir or QA_SQUAD_DIR)")
        return 2
    if args.questions < 5 or not 0.0 < args.keep <= 1.0 or args.alpha <= 0:
        print("error: --questions must be >= 5, --keep within (0, 1], --alpha > 0")
        return 2
    reader = ExtractiveReader.from_settings(settings.model_copy(update={"reader_precision": "fp32", "device": "cpu",
                                                                        "reader_token_keep": 1.0}), model_dir)
    reader.warm_up()
    layers = reader.model.config.num_hidden_layers
    if not 0 < args.layer < layers:
        print(f"error: --layer must be within 1..{layers - 1} for this {layers}-layer reader")
        return 2
    examples = [e for e in load_squad(squad_file) if not e.is_impossible]
    picked = random.Random(args.seed).sample(examples, min(args.questions, len(examples)))
    windows, question_of = [], []
    for q, ex in enumerate(picked):
        enc = reader.encode(ex.question, [ex.context]).encoding
        for ids, types in zip(enc["input_ids"], enc["token_type_ids"]):
            windows.append((np.asarray(ids, dtype=np.int64), np.asarray(types, dtype=np.int64)))
            question_of.append(q)
    probe, figures = fit(reader.model, windows, question_of, args.layer, args.keep, args.alpha)
    source = f"{squad_file.name}: {len(picked)} questions, seed {args.seed}"
    path = token_pruning.save(model_dir, probe, source, {"ridge_alpha": args.alpha, **figures}, out=args.out)
    print(json.dumps({"written": str(path), "layer": probe.layer, "keep": probe.keep, "source": source, **figures},
                     indent=2))
    return 0
