"""Average the weights of several reader checkpoints (qa soup-reader): a "uniform model soup".

Runs fine-tuned from the same base model with the same data but different learning rates end in one
basin more often than not, and their weight average often scores above each of them (Wortsman et al.,
2022, "Model soups"). Whether it does here is for `qa export-reader` to measure: the soup is shipped
only if its validation F1 beats the shipped model's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def soup(checkpoints: list[Path], out_dir: Path) -> dict:
    """Write the element-wise mean of the checkpoints' weights to `out_dir` (fp32, with the first
    checkpoint's config and tokenizer). Returns the state written to out_dir/state.json."""
    import torch
    from safetensors.torch import save_file

    if len(checkpoints) < 2:
        raise ValueError("a soup needs at least two checkpoints")
    states = [json.loads((c / "state.json").read_text()) if (c / "state.json").exists() else {} for c in checkpoints]
    cfgs = [s.get("config", {}) for s in states]
    ignore = {"learning_rate", "run_dir", "config_file"}
    for c, cfg in zip(checkpoints[1:], cfgs[1:]):
        diff = sorted(k for k in set(cfg) | set(cfgs[0]) if k not in ignore and cfg.get(k) != cfgs[0].get(k))
        if diff:
            raise ValueError(f"{c} was trained with other settings than {checkpoints[0]} ({', '.join(diff)}): "
                             "only runs that differ in learning rate are averaged")
    total: dict[str, torch.Tensor] = {}
    first = _weights(checkpoints[0])
    for name, t in first.items():
        total[name] = t.double() if t.is_floating_point() else t
    for c in checkpoints[1:]:
        w = _weights(c)
        if w.keys() != first.keys():
            raise ValueError(f"{c} has other tensors than {checkpoints[0]}")
        for name, t in w.items():
            if t.is_floating_point():
                total[name] += t.double()
            elif not torch.equal(t, total[name]):
                raise ValueError(f"{c}: non-float tensor {name} differs")
    avg = {k: (v / len(checkpoints)).float().contiguous() if v.is_floating_point() else v for k, v in total.items()}

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(checkpoints[0], tmp, ignore=shutil.ignore_patterns("trainer_state.pt", "state.json"))
    save_file(avg, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    state = {
        "step": max(s.get("step") or 0 for s in states),
        "config": cfgs[0],
        "soup": [{"checkpoint": str(c), "learning_rate": cfg.get("learning_rate"), "step": s.get("step"),
                  "quick_valid_f1": (s.get("quick_valid") or {}).get("f1")}
                 for c, cfg, s in zip(checkpoints, cfgs, states)],
    }
    (tmp / "state.json").write_text(json.dumps(state, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return state
