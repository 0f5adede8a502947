"""Narrower feed-forward layers for the reader: structured pruning of the intermediate neurons.

The feed-forward layers are ~60 % of the reader's arithmetic per token (two 384 x 1,536 products per layer, against
four 384 x 384 ones for attention's projections). Each intermediate neuron gets an importance from a first-order
Taylor estimate of what removing it would cost the span loss -- |sum over a window's tokens of activation x
gradient|, summed over windows of SQuAD training questions (Molchanov et al., 2017; Michel et al., 2019 for heads)
-- and every layer keeps its ``keep`` most important neurons. Every layer keeps the same number, so the result is
a standard BERT with a smaller ``intermediate_size`` that transformers, the packed forward, ONNX and OpenVINO load
as before. Recover what pruning cost by distilling from the unpruned reader (``qa.training.shared_norm --init
PRUNED --teacher models/reader --distill 0.8``; docs/reader.md#narrower-feed-forward-layers).

    python -m qa.training.prune --init models/reader --squad ../shared/squad/squad-v1.1-train.json \
        --keep 1024 --out runs/prune/k1024 [--examples 384 --held-out 60 --seed 42]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path


def ffn_modules(model) -> list[tuple[object, object]]:
    """(intermediate linear, output linear) of each encoder layer of a BERT-style model."""
    layers = model.base_model.encoder.layer
    out = []
    for layer in layers:
        inter = getattr(getattr(layer, "intermediate", None), "dense", None)
        outp = getattr(getattr(layer, "output", None), "dense", None)
        if inter is None or outp is None:
            raise ValueError("the model's layers are not laid out as BERT's (layer.intermediate.dense, "
                             "layer.output.dense): it cannot be pruned here")
        out.append((inter, outp))
    return out


def ffn_importance(model, features: list[dict], batch_size: int = 16) -> list:
    """One importance per intermediate neuron and layer (a list of 1-D float tensors): the sum over windows of
    |sum over the window's real tokens of activation x d(span loss)/d(activation)|. ``features`` are
    qa.training.squad.build_train_features rows (input_ids, token_type_ids, start/end positions)."""
    import torch

    mods = ffn_modules(model)
    acts: dict[int, object] = {}
    hooks = []
    for i, (inter, _) in enumerate(mods):
        def keep_grad(_m, _inp, out, i=i):
            out.retain_grad()
            acts[i] = out
        hooks.append(inter.register_forward_hook(keep_grad))
    imp = [torch.zeros(inter.out_features, dtype=torch.float64) for inter, _ in mods]
    was_training = model.training
    model.eval()  # no dropout: the estimate is about the served model
    try:
        for b in range(0, len(features), batch_size):
            rows = features[b:b + batch_size]
            n = max(len(f["input_ids"]) for f in rows)
            ids = torch.zeros(len(rows), n, dtype=torch.long)
            mask = torch.zeros_like(ids)
            types = torch.zeros_like(ids)
            for r, f in enumerate(rows):
                length = len(f["input_ids"])
                ids[r, :length] = torch.tensor(f["input_ids"])
                mask[r, :length] = 1
                types[r, :length] = torch.tensor(f["token_type_ids"])
            out = model(input_ids=ids, attention_mask=mask, token_type_ids=types,
                        start_positions=torch.tensor([f["start_positions"] for f in rows]),
                        end_positions=torch.tensor([f["end_positions"] for f in rows]))
            model.zero_grad(set_to_none=True)
            out.loss.backward()
            for i in range(len(mods)):
                a = acts[i]
                contrib = (a.detach() * a.grad * mask[..., None]).sum(dim=1)  # [windows, neurons]
                imp[i] += contrib.abs().sum(dim=0).double()
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return [x.float() for x in imp]


def prune_ffn(model, keep: int, importance: list) -> list[list[int]]:
    """Keep each layer's ``keep`` most important intermediate neurons (in their original order), in place; the
    config's intermediate_size follows. Returns the kept indices per layer. The pruned model computes exactly what
    the original computes with the other neurons' outputs set to zero."""
    import torch

    mods = ffn_modules(model)
    if len(importance) != len(mods):
        raise ValueError(f"{len(importance)} importance vectors for {len(mods)} layers")
    width = mods[0][0].out_features
    if not 0 < keep <= width:
        raise ValueError(f"keep must be between 1 and the current width {width}, not {keep}")
    kept = []
    for layer, ((inter, outp), score) in zip(model.base_model.encoder.layer, zip(mods, importance)):
        if score.numel() != inter.out_features:
            raise ValueError("an importance vector does not match its layer's width")
        idx = torch.argsort(score, descending=True, stable=True)[:keep].sort().values
        new_in = torch.nn.Linear(inter.in_features, keep, dtype=inter.weight.dtype)
        new_out = torch.nn.Linear(keep, outp.out_features, dtype=outp.weight.dtype)
        with torch.no_grad():
            new_in.weight.copy_(inter.weight[idx])
            new_in.bias.copy_(inter.bias[idx])
            new_out.weight.copy_(outp.weight[:, idx])
            new_out.bias.copy_(outp.bias)
        layer.intermediate.dense = new_in
        layer.output.dense = new_out
        kept.append(idx.tolist())
    model.config.intermediate_size = keep
    return kept


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m qa.training.prune", description=__doc__.split("\n\n")[0])
    ap.add_argument("--init", required=True, help="reader folder to prune (e.g. models/reader)")
    ap.add_argument("--squad", required=True, help="SQuAD training JSON: the questions the importance is taken on")
    ap.add_argument("--keep", type=int, required=True, help="intermediate neurons kept per layer (of 1,536)")
    ap.add_argument("--out", required=True, type=Path, help="folder for the pruned reader (model/ inside)")
    ap.add_argument("--examples", type=int, default=384, help="answerable training questions sampled")
    ap.add_argument("--held-out", type=int, default=60,
                    help="articles never sampled (the same seeded choice as qa build-groups --held-out)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--stride", type=int, default=96)
    args = ap.parse_args(argv)

    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from qa.training.groups import split_articles
    from qa.training.squad import build_train_features, load_squad

    torch.manual_seed(args.seed)
    examples = load_squad(args.squad)
    titles = sorted({e.title for e in examples})
    train_titles, held = split_articles(titles, args.held_out, args.seed)
    pool = [e for e in examples if e.title in train_titles and not e.is_impossible and e.answers]
    sample = random.Random(args.seed).sample(pool, min(args.examples, len(pool)))
    tokenizer = AutoTokenizer.from_pretrained(args.init)
    model = AutoModelForQuestionAnswering.from_pretrained(args.init, dtype=torch.float32)
    feats = build_train_features(sample, tokenizer, args.max_length, args.stride)
    t0 = time.time()
    importance = ffn_importance(model, feats)
    width = model.config.intermediate_size
    kept = prune_ffn(model, args.keep, importance)
    out = args.out / "model"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    summary = {"init": str(args.init), "keep": args.keep, "width_before": width, "questions": len(sample),
               "windows": len(feats), "held_out_articles": len(held), "seed": args.seed,
               "seconds": round(time.time() - t0, 1), "kept_per_layer": kept}
    (args.out / "prune.json").write_text(json.dumps(summary))
    print(json.dumps({k: v for k, v in summary.items() if k != "kept_per_layer"}))
    print(f"wrote {out}; recover with: python -m qa.training.shared_norm --init {out} --teacher {args.init} "
          "--distill 0.8 ...")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
