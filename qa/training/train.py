"""Fine-tune a span-extraction head on the bundled MiniLM encoder (qa train-reader).

Resumable (checkpoint every N steps, --resume), bf16 autocast, dynamic padding with length-grouped
batches, optional sample, the GPU when one is present. Logs loss and validation EM/F1 to
<run_dir>/log.jsonl.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CONFIG_PATH = Path(__file__).with_name("train_config.toml")


@dataclass
class TrainPaths:
    squad_dir: Path
    run_dir: Path


def load_config(path: Path | None = None, overrides: dict | None = None) -> dict:
    cfg = tomllib.loads(Path(path or CONFIG_PATH).read_text())
    for k, v in (overrides or {}).items():
        if v is not None:
            cfg[k] = v
    return cfg


def base_model_path(cfg: dict) -> str:
    if cfg.get("base_model"):
        return cfg["base_model"]
    from qa.config import default_embedding_model

    return default_embedding_model()


def set_seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def length_grouped_batches(lengths: list[int], batch_size: int, group: int, seed: int) -> list[list[int]]:
    """Shuffle, sort within mega-batches by length, cut into batches, shuffle the batches."""
    rng = random.Random(seed)
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    mega = batch_size * group
    batches = []
    for m in range(0, len(idx), mega):
        part = sorted(idx[m : m + mega], key=lambda i: lengths[i])
        batches.extend(part[b : b + batch_size] for b in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def batch_schedule(lengths: list[int], cfg: dict) -> list[list[int]]:
    """The seeded order of batches over all epochs, less the first `skip_batches` ones.

    The order depends only on the lengths, the batch settings and the seed, so a warm-started stage
    (`init_from`) given `skip_batches` = the steps of the previous stage continues on batches it did not see.
    """
    epoch_batches = [
        length_grouped_batches(lengths, cfg["batch_size"], cfg["length_group_size"], cfg["seed"] + e)
        for e in range(cfg["epochs"])
    ]
    return [b for eb in epoch_batches for b in eb][cfg.get("skip_batches", 0):]


def prepare_data(cfg: dict, squad_dir: Path, tokenizer):
    from qa.training.squad import build_train_features, load_squad, split_titles, squad_titles, synthetic_negatives

    train = load_squad(squad_dir / cfg["train_file"])
    if cfg["train_questions"] and cfg["train_questions"] < len(train):
        rng = random.Random(cfg["seed"])
        train = rng.sample(train, cfg["train_questions"])
    negs = synthetic_negatives(train, cfg["synthetic_negative_fraction"], cfg["seed"])
    noans_path = squad_dir / cfg["noans_file"]
    noans_train_titles, noans_valid_titles = split_titles(
        squad_titles(noans_path), cfg["noans_train_title_fraction"], cfg["seed"]
    )
    v2_negs = [ex for ex in load_squad(noans_path, noans_train_titles) if ex.is_impossible]
    examples = train + negs + v2_negs
    feats = build_train_features(examples, tokenizer, cfg["max_length"], cfg["doc_stride"], cfg["max_query_tokens"])
    stats = {
        "train_questions": len(train),
        "synthetic_negatives": len(negs),
        "v2_impossible_train": len(v2_negs),
        "features": len(feats),
        "noans_train_titles": sorted(noans_train_titles),
        "noans_valid_titles": sorted(noans_valid_titles),
    }
    return feats, stats


def collate(feats: list[dict], idx: list[int]):
    import torch

    n = max(len(feats[i]["input_ids"]) for i in idx)
    ids = torch.zeros((len(idx), n), dtype=torch.long)
    mask = torch.zeros_like(ids)
    tt = torch.zeros_like(ids)
    sp = torch.tensor([feats[i]["start_positions"] for i in idx])
    ep = torch.tensor([feats[i]["end_positions"] for i in idx])
    for r, i in enumerate(idx):
        x = feats[i]["input_ids"]
        ids[r, : len(x)] = torch.tensor(x)
        mask[r, : len(x)] = 1
        tt[r, : len(x)] = torch.tensor(feats[i]["token_type_ids"])
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt, "start_positions": sp, "end_positions": ep}


def _save_checkpoint(run_dir: Path, name: str, model, tokenizer, optimizer, scheduler, state: dict) -> None:
    import torch

    final = run_dir / name
    tmp = run_dir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if optimizer is not None:
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state()}, tmp / "trainer_state.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=2))
    old = run_dir / f".{name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def quick_validation(model, tokenizer, cfg: dict, examples, device: str, bf16: bool) -> dict:
    from qa.training.validate import predict_examples, score_answerable

    preds = predict_examples(model, tokenizer, examples, cfg["max_length"], cfg["doc_stride"],
                             cfg["max_answer_tokens"], device=device, bf16=bf16, progress=False)
    return score_answerable(examples, preds)


def train(cfg: dict, squad_dir: Path, run_dir: Path, resume: bool = False, max_steps: int | None = None,
          device: str | None = None, stop_after_minutes: float | None = None) -> dict:
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, get_linear_schedule_with_warmup

    from qa.reader.reader import bf16_native_on
    from qa.training.squad import load_squad

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    # cfg["bf16"] asks for bf16 autocast; it is used only where bf16 is native (else fp32, same config)
    bf16 = bool(cfg["bf16"]) and bf16_native_on(device)
    print(f"device {device}, {'bf16 autocast' if bf16 else 'fp32'}"
          + ("" if bf16 == bool(cfg["bf16"]) else " (bf16 is not native here)"))
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "log.jsonl"
    ckpt = run_dir / "checkpoint"
    set_seed(cfg["seed"])

    start_step = 0
    if resume and (ckpt / "state.json").exists():
        state = json.loads((ckpt / "state.json").read_text())
        if state["config"] != cfg:
            raise SystemExit("--resume: the checkpoint was trained with a different config; "
                             f"compare {ckpt/'state.json'} with the config file")
        start_step = state["step"]
        model_src = str(ckpt)
        print(f"resuming from step {start_step} ({ckpt})")
    else:
        state = {}
        model_src = cfg.get("init_from") or base_model_path(cfg)
        if cfg.get("init_from"):
            print(f"starting from {model_src} (init_from)")
    tokenizer = AutoTokenizer.from_pretrained(base_model_path(cfg))
    # fp32 master weights: a shipped checkpoint (models/reader) is stored in fp16, and
    # transformers 5 would otherwise keep the dtype its config names.
    model = AutoModelForQuestionAnswering.from_pretrained(model_src, dtype=torch.float32).to(device)

    t0 = time.time()
    feats, stats = prepare_data(cfg, squad_dir, tokenizer)
    print(f"data: {json.dumps({k: v for k, v in stats.items() if 'titles' not in k})} "
          f"(prepared in {time.time() - t0:.0f}s)")
    lengths = [len(f["input_ids"]) for f in feats]
    schedule = batch_schedule(lengths, cfg)
    total = len(schedule) if not max_steps else min(max_steps, len(schedule))

    no_decay = ("bias", "LayerNorm.weight")
    params = [
        {"params": [p for n, p in model.named_parameters() if not any(x in n for x in no_decay)],
         "weight_decay": cfg["weight_decay"]},
        {"params": [p for n, p in model.named_parameters() if any(x in n for x in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(params, lr=cfg["learning_rate"])
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(total * cfg["warmup_ratio"]), total)
    if start_step:
        ts = torch.load(ckpt / "trainer_state.pt", weights_only=False)
        optimizer.load_state_dict(ts["optimizer"])
        scheduler.load_state_dict(ts["scheduler"])
        torch.set_rng_state(ts["torch_rng"])

    valid_all = load_squad(squad_dir / cfg["valid_file"])
    quick_valid = random.Random(cfg["seed"]).sample(valid_all, min(cfg["eval_questions"], len(valid_all)))

    best_f1 = state.get("best_f1", -1.0)
    model.train()
    bar = tqdm(total=total, initial=start_step, desc="train-reader", unit="step")
    deadline = time.time() + stop_after_minutes * 60 if stop_after_minutes else None
    loss_acc, n_acc, tick = 0.0, 0, time.time()
    step = start_step
    with log_path.open("a") as log:
        log.write(json.dumps({"event": "start", "step": start_step, "total_steps": total, "device": device, "bf16": bf16,
                              **{k: v for k, v in stats.items() if "titles" not in k}}) + "\n")
        for step in range(start_step, total):
            batch = {k: v.to(device) for k, v in collate(feats, schedule[step]).items()}
            with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["max_grad_norm"])
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_acc += loss.item()
            n_acc += 1
            bar.update(1)
            done = step + 1
            if done % 20 == 0 or done == total:
                rec = {"event": "train", "step": done, "loss": loss_acc / n_acc, "lr": scheduler.get_last_lr()[0],
                       "s_per_step": (time.time() - tick) / n_acc}
                log.write(json.dumps(rec) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{rec['loss']:.3f}")
                loss_acc, n_acc, tick = 0.0, 0, time.time()
            if done % cfg["eval_every"] == 0 or done == total:
                m = quick_validation(model, tokenizer, cfg, quick_valid, device, bf16)
                model.train()
                log.write(json.dumps({"event": "eval", "step": done, **m}) + "\n")
                log.flush()
                tqdm.write(f"step {done}: quick validation EM {m['exact_match']:.1f} F1 {m['f1']:.1f}")
                if m["f1"] > best_f1:
                    best_f1 = m["f1"]
                    _save_checkpoint(run_dir, "best", model, tokenizer, None, None,
                                     {"step": done, "quick_valid": m, "config": cfg})
            stop = deadline is not None and time.time() > deadline
            if done % cfg["checkpoint_every"] == 0 or done == total or stop:
                _save_checkpoint(run_dir, "checkpoint", model, tokenizer, optimizer, scheduler,
                                 {"step": done, "total_steps": total, "best_f1": best_f1, "config": cfg})
            if stop:
                tqdm.write(f"stopping at step {done}/{total} (time limit); resume with --resume")
                break
    bar.close()
    return {"step": step + 1, "total_steps": total, "best_quick_f1": best_f1}
