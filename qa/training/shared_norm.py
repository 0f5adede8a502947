"""Train the reader to compare passages: shared normalisation over a question's windows (Clark & Gardner, 2018).

Every training question is read with several passages (:mod:`qa.training.groups`): its own paragraph and
retrieved distractors, or (null groups) only paragraphs of other articles. The start (and end) logits of all
the group's windows share one softmax, plus one null whose logit is ``log mean_w exp(cls_w)``; the loss is the
negative log of the probability mass on the gold start (end) tokens, or on the null for null groups. Serving
decodes the same way (:func:`qa.reader.decode.decode_shared`), so a span's probability is comparable across
passages instead of being normalised inside each window.

Warm-starts from a reader folder (the shipped ``models/reader``). Runs on a GPU when there is one (bf16
autocast), else on the CPU (bf16 only where native). ``--minutes`` bounds the training time: the number of
steps is fixed after a short throughput probe so the linear schedule ends when the time does. Deliberately
free of the service's web/pydantic imports, so it runs on a bare PyTorch machine (a lent GPU) with only
torch, transformers and numpy.

    python -m qa.training.shared_norm --squad train.json.gz --groups train_groups.jsonl.gz \\
        --dev-squad dev.json.gz --dev-groups dev_groups.jsonl.gz --init models/reader --out runs/shared --minutes 4
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import time
from pathlib import Path

import numpy as np


def read_json(path: Path) -> dict:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def paragraph_texts(articles: list[dict]) -> list[str]:
    return [p["context"] for a in articles for p in a["paragraphs"]]


def read_groups(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ------------------------------------------------------------------------------------------- features
def featurize(groups: list[dict], texts: list[str], tokenizer, max_length: int = 256, stride: int = 96,
              max_query_tokens: int = 64, batch: int = 2048) -> dict:
    """Windows of every (question, passage) pair of every group, with gold token positions (-1: none here)."""
    pairs = []  # (group index, paragraph index, is gold)
    for gi, g in enumerate(groups):
        for p in g["passages"]:
            pairs.append((gi, p))
    from qa.reader.decode import truncate_question

    questions = [truncate_question(tokenizer, g["question"], max_query_tokens) for g in groups]
    ids, tts, ctx_masks, starts, ends, group_of = [], [], [], [], [], []
    for b in range(0, len(pairs), batch):
        part = pairs[b : b + batch]
        enc = tokenizer([questions[gi] for gi, _ in part], [texts[p] for _, p in part], truncation="only_second",
                        max_length=max_length, stride=stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True, padding=False)
        for w, x in enumerate(enc["input_ids"]):
            gi, p = part[enc["overflow_to_sample_mapping"][w]]
            g = groups[gi]
            seq = enc.sequence_ids(w)
            offs = enc["offset_mapping"][w]
            ctx = np.array([s == 1 for s in seq], dtype=bool)
            sp = ep = -1
            if g["gold"] == p and g["answer_start"] >= 0:
                a0 = g["answer_start"]
                a1 = a0 + len(g["answer_text"])
                cidx = np.flatnonzero(ctx)
                if len(cidx) and offs[cidx[0]][0] <= a0 and offs[cidx[-1]][1] >= a1:
                    s = cidx[0]
                    while s <= cidx[-1] and offs[s][1] <= a0:
                        s += 1
                    e = cidx[-1]
                    while e >= cidx[0] and offs[e][0] >= a1:
                        e -= 1
                    if s <= e:
                        sp, ep = int(s), int(e)
            ids.append(np.asarray(x, dtype=np.int32))
            tts.append(np.asarray(enc["token_type_ids"][w], dtype=np.int8))
            ctx_masks.append(ctx)
            starts.append(sp)
            ends.append(ep)
            group_of.append(gi)
    windows_of: list[list[int]] = [[] for _ in groups]
    for w, gi in enumerate(group_of):
        windows_of[gi].append(w)
    return {"ids": ids, "tt": tts, "ctx": ctx_masks, "start": starts, "end": ends, "windows_of": windows_of,
            "null": [g["gold"] < 0 for g in groups]}


def group_batches(feats: dict, groups_per_batch: int, seed: int, mega: int = 50) -> list[list[int]]:
    """Seeded batches of groups, length-grouped (groups of similar total window length together)."""
    rng = random.Random(seed)
    order = [g for g, ws in enumerate(feats["windows_of"]) if ws]
    rng.shuffle(order)
    size = lambda g: sum(len(feats["ids"][w]) for w in feats["windows_of"][g])  # noqa: E731
    out = []
    step = groups_per_batch * mega
    for m in range(0, len(order), step):
        part = sorted(order[m : m + step], key=size)
        out.extend(part[b : b + groups_per_batch] for b in range(0, len(part), groups_per_batch))
    rng.shuffle(out)
    return out


def collate(feats: dict, group_ids: list[int], device: str):
    import torch

    wins = [w for g in group_ids for w in feats["windows_of"][g]]
    n = max(len(feats["ids"][w]) for w in wins)
    B = len(wins)
    ids = np.zeros((B, n), dtype=np.int64)
    tt = np.zeros((B, n), dtype=np.int64)
    am = np.zeros((B, n), dtype=np.int64)
    ctx = np.zeros((B, n), dtype=bool)
    pos_s = np.zeros((B, n), dtype=bool)
    pos_e = np.zeros((B, n), dtype=bool)
    member = np.zeros((len(group_ids), B), dtype=bool)
    r = 0
    for gi, g in enumerate(group_ids):
        for w in feats["windows_of"][g]:
            L = len(feats["ids"][w])
            ids[r, :L] = feats["ids"][w]
            tt[r, :L] = feats["tt"][w]
            am[r, :L] = 1
            ctx[r, :L] = feats["ctx"][w]
            if feats["start"][w] >= 0:
                pos_s[r, feats["start"][w]] = True
                pos_e[r, feats["end"][w]] = True
            member[gi, r] = True
            r += 1
    null = np.array([feats["null"][g] for g in group_ids], dtype=bool)
    t = lambda a: torch.from_numpy(a).to(device, non_blocking=True)  # noqa: E731
    return {"input_ids": t(ids), "token_type_ids": t(tt), "attention_mask": t(am), "ctx": t(ctx),
            "pos_s": t(pos_s), "pos_e": t(pos_e), "member": t(member), "null": t(null)}


def shared_norm_loss(logits, ctx, pos, member, null):
    """Negative log-likelihood under one softmax per group (all its windows' context tokens + one null).

    logits [B, L] (fp32), ctx/pos [B, L] bool, member [G, B] bool, null [G] bool. A group with no gold token
    (its answer cut by every window) and not null is skipped.
    """
    import torch

    neg = torch.finfo(logits.dtype).min
    ctx_l = logits.masked_fill(~ctx, neg)
    lse_w = torch.logsumexp(ctx_l, dim=1)  # [B]
    pos_w = torch.logsumexp(logits.masked_fill(~pos, neg), dim=1)  # [B]
    has_pos_w = pos.any(dim=1)
    cls = logits[:, 0]
    counts = member.sum(dim=1).clamp(min=1)
    m = member
    null_g = torch.logsumexp(cls.unsqueeze(0).masked_fill(~m, neg), dim=1) - torch.log(counts.float())  # [G]
    all_g = torch.logsumexp(lse_w.unsqueeze(0).masked_fill(~m, neg), dim=1)
    z_g = torch.logaddexp(all_g, null_g)
    pos_mask = m & has_pos_w.unsqueeze(0)
    pos_g = torch.logsumexp(pos_w.unsqueeze(0).masked_fill(~pos_mask, neg), dim=1)
    has_pos_g = pos_mask.any(dim=1)
    target = torch.where(null, null_g, pos_g)
    use = null | has_pos_g
    if not bool(use.any()):
        return logits.sum() * 0.0
    return (z_g - target)[use].mean()


def shared_norm_log_probs(logits, ctx, member, temperature: float = 1.0):
    """Log-probabilities of every context token and of the null under one softmax per group, as served.

    Returns (token log-probs [B, L], valid where ``ctx``; null log-probs [G]). ``temperature`` divides the
    logits first (distillation); the null's logit is ``log mean_w exp(cls_w / T)`` as in :func:`shared_norm_loss`.
    """
    import torch

    neg = torch.finfo(logits.dtype).min
    lg = logits / temperature
    ctx_l = lg.masked_fill(~ctx, neg)
    lse_w = torch.logsumexp(ctx_l, dim=1)  # [B]
    counts = member.sum(dim=1).clamp(min=1)
    null_g = torch.logsumexp(lg[:, 0].unsqueeze(0).masked_fill(~member, neg), dim=1) - torch.log(counts.float())
    all_g = torch.logsumexp(lse_w.unsqueeze(0).masked_fill(~member, neg), dim=1)
    z_g = torch.logaddexp(all_g, null_g)  # [G]
    group_of_window = member.float().argmax(dim=0)  # [B]
    tok = torch.where(ctx, lg - z_g[group_of_window].unsqueeze(1), torch.zeros_like(lg))
    return tok, null_g - z_g


def distillation_loss(student_logits, teacher_logits, ctx, member, temperature: float = 2.0):
    """KL(teacher || student) between the two shared-normalisation distributions of each group (context tokens of
    all its windows + the null), averaged over groups and scaled by T^2 (Hinton et al., 2015)."""
    import torch

    s_tok, s_null = shared_norm_log_probs(student_logits, ctx, member, temperature)
    t_tok, t_null = shared_norm_log_probs(teacher_logits, ctx, member, temperature)
    p_tok = torch.where(ctx, t_tok.exp(), torch.zeros_like(t_tok))
    kl_w = (p_tok * (t_tok - s_tok)).sum(dim=1)  # [B]
    kl_g = member.float() @ kl_w + t_null.exp() * (t_null - s_null)  # [G]
    return kl_g.mean() * temperature ** 2


def keep_layers(model, layers: list[int]):
    """Cut a BERT-style encoder down to the given layers (in that order): the student's starting point."""
    import torch

    enc = model.base_model.encoder
    n = len(enc.layer)
    if not layers or any(i < 0 or i >= n for i in layers):
        raise ValueError(f"student layers {layers} must be indices of the model's {n} layers")
    enc.layer = torch.nn.ModuleList([enc.layer[i] for i in layers])
    for new_i, layer in enumerate(enc.layer):  # attention modules that know their index (caches) follow the cut
        attn = getattr(layer, "attention", None)
        for m in (attn, getattr(attn, "self", None)):
            if m is not None and hasattr(m, "layer_idx"):
                m.layer_idx = new_i
    model.config.num_hidden_layers = len(layers)
    return model


# ------------------------------------------------------------------------------------------- evaluation
def evaluate_groups(model, tokenizer, groups: list[dict], texts: list[str], device: str, shared: bool,
                    temperature: float = 1.0, max_length: int = 256, stride: int = 96, bf16: bool = True,
                    batch_windows: int = 256) -> dict:
    """Top-span F1 on answerable groups (forced), and how well the top span's probability separates
    answerable from null groups (AUROC) -- decoded per window (the old reader) or shared."""
    from qa.metrics import best_over, exact_match, f1 as token_f1
    from qa.reader.decode import decode, decode_shared, encode_windows, pad_batch
    from qa.reader.forward import forward_logits

    f1s, ems, scores, labels, correct = [], [], [], [], []
    for g in groups:
        ctxs = [texts[p] for p in g["passages"]]
        if not ctxs:
            continue
        win = encode_windows(tokenizer, g["question"], ctxs, max_length, stride)
        n = len(win.context_of)
        width = max(len(x) for x in win.encoding["input_ids"])
        S = np.full((n, width), -1e9, dtype=np.float32)
        E = np.full((n, width), -1e9, dtype=np.float32)
        for b in range(0, n, batch_windows):
            idx = list(range(b, min(n, b + batch_windows)))
            ids, mask, tt = pad_batch(win, idx)
            s, e = forward_logits(model, ids, mask, tt, device, bf16)
            for r, w in enumerate(idx):
                L = len(win.encoding["input_ids"][w])
                S[w, :L], E[w, :L] = s[r, :L], e[r, :L]
        if shared:
            cands, _ = decode_shared(S, E, win, 30, 20, temperature)
        else:
            cands, _ = decode(S, E, win, 30, 20, temperature)
        top = cands[0] if cands else None
        pred = ctxs[top.context_index][top.start : top.end] if top else ""
        score = top.prob if top else 0.0
        answerable = g["gold"] >= 0
        scores.append(score)
        labels.append(answerable)
        if answerable:
            golds = [g["answer_text"]] + g.get("other_answers", [])
            em, f1 = best_over(exact_match, pred, golds), best_over(token_f1, pred, golds)
            ems.append(em)
            f1s.append(f1)
            correct.append(f1 >= 0.5)
        else:
            correct.append(False)
    return {"groups": len(scores), "answerable": len(f1s), "forced_em": 100 * float(np.mean(ems)) if ems else None,
            "forced_f1": 100 * float(np.mean(f1s)) if f1s else None,
            "auroc_answerable_vs_null": _auroc(scores, labels), "auroc_right_vs_wrong": _auroc(scores, correct)}


def _auroc(scores: list[float], labels: list[bool]) -> float | None:
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return None
    allv = np.array(scores)
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    # average ranks for ties
    sorted_v = allv[order]
    i = 0
    while i < len(sorted_v):
        j = i
        while j + 1 < len(sorted_v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    y = np.array(labels, dtype=bool)
    return float((ranks[y].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def single_paragraph_f1(model, tokenizer, squad: dict, device: str, shared: bool, temperature: float,
                        limit: int | None = None, bf16: bool = True) -> dict:
    """SQuAD v1.1-style forced F1 of the reader on each question's own paragraph."""
    groups = []
    texts = []
    for a in squad["data"]:
        for p in a["paragraphs"]:
            texts.append(p["context"])
            for qa in p["qas"]:
                if qa.get("answers"):
                    groups.append({"question": qa["question"], "passages": [len(texts) - 1], "gold": len(texts) - 1,
                                   "answer_text": qa["answers"][0]["text"],
                                   "other_answers": [x["text"] for x in qa["answers"][1:]]})
    if limit:
        groups = random.Random(0).sample(groups, min(limit, len(groups)))
    return evaluate_groups(model, tokenizer, groups, texts, device, shared, temperature, bf16=bf16)


def dev_groups_with_answers(groups: list[dict], squad: dict) -> list[dict]:
    answers = {qa["id"]: [x["text"] for x in qa["answers"]] for a in squad["data"] for p in a["paragraphs"]
               for qa in p["qas"]}
    for g in groups:
        g["other_answers"] = answers.get(g["qid"], [])
    return groups


# ------------------------------------------------------------------------------------------- training
def train(args) -> dict:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    bf16 = device == "cuda" or args.bf16
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "log.jsonl", "a")
    t_start = time.time()

    def note(**kw):
        kw["t"] = round(time.time() - t_start, 1)
        print(json.dumps(kw), flush=True)
        log.write(json.dumps(kw) + "\n")
        log.flush()

    tokenizer = AutoTokenizer.from_pretrained(args.init)
    model = AutoModelForQuestionAnswering.from_pretrained(args.init, dtype=torch.float32).to(device)
    teacher = None
    if args.student_layers:
        layers = [int(x) for x in args.student_layers.split(",") if x.strip()]
        keep_layers(model, layers)
        figures_student = {"layers_kept": layers}
    if args.freeze_embeddings:
        # the student then shares its embeddings with --init byte for byte (ship only what differs)
        for p_ in model.base_model.embeddings.parameters():
            p_.requires_grad_(False)
    if args.distill:
        teacher = AutoModelForQuestionAnswering.from_pretrained(args.teacher or args.init, dtype=torch.float32)
        teacher = teacher.to(device).eval()
        for p_ in teacher.parameters():
            p_.requires_grad_(False)
    squad = read_json(Path(args.squad))
    texts = paragraph_texts(squad["data"])
    groups = read_groups(Path(args.groups))
    if args.max_groups:
        groups = groups[: args.max_groups]
    if args.extra_single:
        # keep the single-paragraph skill: some answerable questions also appear with their own paragraph alone
        rng = random.Random(args.seed + 7)
        extra = [dict(g, kind="single", passages=[g["gold"]]) for g in groups
                 if g["kind"] == "answerable" and rng.random() < args.extra_single]
        groups = groups + extra
    feats = featurize(groups, texts, tokenizer, args.max_length, args.stride)
    note(stage="features", groups=len(groups), windows=len(feats["ids"]))

    dev = dev_texts = dev_groups = None
    figures: dict = {"device": device, "init": str(args.init)}
    if args.student_layers:
        figures["student"] = figures_student
    if teacher is not None:
        figures["distill"] = {"teacher": str(args.teacher or args.init), "weight": args.distill,
                              "temperature": args.distill_temperature}
    if args.dev_squad:
        dev = read_json(Path(args.dev_squad))
        dev_texts = paragraph_texts(dev["data"])
        if args.dev_groups:
            dev_groups = dev_groups_with_answers(read_groups(Path(args.dev_groups)), dev)
            dev_groups = random.Random(1).sample(dev_groups, min(args.dev_limit, len(dev_groups)))

    def evaluate(tag: str, temperature_old: float | None):
        model.eval()
        res = {}
        if dev is not None:
            if temperature_old is not None:
                res["single_perwindow"] = single_paragraph_f1(model, tokenizer, dev, device, False, temperature_old,
                                                              args.single_limit, bf16)
                if dev_groups:
                    res["groups_perwindow"] = evaluate_groups(model, tokenizer, dev_groups, dev_texts, device, False,
                                                              temperature_old, bf16=bf16)
            res["single_shared"] = single_paragraph_f1(model, tokenizer, dev, device, True, 1.0, args.single_limit,
                                                       bf16)
            if dev_groups:
                res["groups_shared"] = evaluate_groups(model, tokenizer, dev_groups, dev_texts, device, True, 1.0,
                                                       bf16=bf16)
        note(stage="eval", tag=tag, **res)
        model.train()
        return res

    if args.eval_before:
        figures["before"] = evaluate("before", args.old_temperature)

    batches = group_batches(feats, args.groups_per_batch, args.seed)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm", "norm.weight")
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [
        {"params": [p for n, p in trainable if not any(k in n for k in no_decay)], "weight_decay": args.weight_decay},
        {"params": [p for n, p in trainable if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(params, lr=args.lr, fused=device == "cuda")
    planned = len(batches) * args.epochs
    if args.steps:  # a fixed number of steps: the schedule (warm-up included) is sized to it, no probe needed
        planned = min(planned, args.steps)
    warmup = max(1, int(0.05 * planned))
    lr_at = lambda step: args.lr * min(1.0, (step + 1) / warmup) * max(0.0, (total - step) / max(1, total - warmup))  # noqa: E731
    total = planned
    model.train()
    step = 0
    t_train = time.time()
    losses = []
    probe_from, probe = 10, 40  # time steps 10..40: the first steps include CUDA/autocast warm-up
    t_probe = None
    done = False
    for epoch in range(args.epochs):
        order = batches if epoch == 0 else group_batches(feats, args.groups_per_batch, args.seed + epoch)
        for gb in order:
            for pg in opt.param_groups:
                pg["lr"] = lr_at(step) if step >= warmup else args.lr * (step + 1) / warmup
            batch = collate(feats, gb, device)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                o = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          token_type_ids=batch["token_type_ids"])
            ls = shared_norm_loss(o.start_logits.float(), batch["ctx"], batch["pos_s"], batch["member"], batch["null"])
            le = shared_norm_loss(o.end_logits.float(), batch["ctx"], batch["pos_e"], batch["member"], batch["null"])
            loss = (ls + le) / 2
            if teacher is not None:
                with torch.no_grad(), torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                    ot = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                 token_type_ids=batch["token_type_ids"])
                T = args.distill_temperature
                kd = (distillation_loss(o.start_logits.float(), ot.start_logits.float(), batch["ctx"], batch["member"], T)
                      + distillation_loss(o.end_logits.float(), ot.end_logits.float(), batch["ctx"], batch["member"], T)) / 2
                loss = (1 - args.distill) * loss + args.distill * kd
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(float(loss.detach()))
            step += 1
            if step == probe_from:
                if device == "cuda":
                    torch.cuda.synchronize()
                t_probe = time.time()
            if step == probe and args.minutes:
                if device == "cuda":
                    torch.cuda.synchronize()
                per_step = (time.time() - t_probe) / (probe - probe_from)
                budget_steps = int((args.minutes * 60 - (time.time() - t_train)) / per_step) + step
                total = max(probe + 1, min(planned, budget_steps))
                note(stage="probe", sec_per_step=round(per_step, 4), planned=planned, total=total)
            if step % 100 == 0:
                note(stage="train", step=step, total=total, loss=round(float(np.mean(losses[-100:])), 4),
                     lr=opt.param_groups[0]["lr"])
            if step >= total:
                done = True
                break
        if done:
            break
    figures["train"] = {"steps": step, "planned_steps": planned, "epochs": args.epochs,
                        "groups_per_batch": args.groups_per_batch, "lr": args.lr, "groups": len(groups),
                        "windows": len(feats["ids"]), "seconds": round(time.time() - t_train, 1),
                        "final_loss": round(float(np.mean(losses[-100:])), 4) if losses else None}
    note(stage="trained", **figures["train"])
    if args.eval_after:
        figures["after"] = evaluate("after", None)
    if args.interpolate and dev is not None:
        trained = {k: v.detach().clone() for k, v in model.state_dict().items()}
        init = AutoModelForQuestionAnswering.from_pretrained(args.init, dtype=torch.float32).state_dict()
        candidates = {1.0: figures.get("after") or evaluate("a=1.0", None)}
        for a in [float(x) for x in args.interpolate.split(",") if x.strip()]:
            model.load_state_dict({k: a * trained[k] + (1 - a) * init[k].to(trained[k].device)
                                   if trained[k].is_floating_point() else trained[k] for k in trained})
            candidates[a] = evaluate(f"a={a}", None)
        ok = {a: r for a, r in candidates.items()
              if (r.get("single_shared") or {}).get("forced_f1", 0) >= args.min_single_f1}
        pool = ok or candidates
        best = max(pool, key=lambda a: (pool[a].get("groups_shared") or {}).get("forced_f1", 0))
        figures["interpolation"] = {"candidates": {str(a): r for a, r in candidates.items()}, "chosen": best,
                                    "min_single_f1": args.min_single_f1, "rule_met": bool(ok)}
        model.load_state_dict({k: best * trained[k] + (1 - best) * init[k].to(trained[k].device)
                               if trained[k].is_floating_point() else trained[k] for k in trained})
        note(stage="interpolation", chosen=best, rule_met=bool(ok))
    model.eval()
    save_dir = out / "model"
    model.to("cpu")
    if args.save_fp16:
        model = model.half()
    model.save_pretrained(save_dir)
    tokenizer.save_pretrained(save_dir)
    (out / "figures.json").write_text(json.dumps(figures, indent=1))
    note(stage="saved", dir=str(save_dir))
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", required=True, help="SQuAD JSON (or .json.gz) the groups refer to")
    ap.add_argument("--groups", required=True, help="groups from qa.training.groups (.jsonl.gz)")
    ap.add_argument("--init", required=True, help="reader folder to warm-start from")
    ap.add_argument("--out", required=True)
    ap.add_argument("--dev-squad", default=None)
    ap.add_argument("--dev-groups", default=None)
    ap.add_argument("--dev-limit", type=int, default=3000)
    ap.add_argument("--single-limit", type=int, default=None)
    ap.add_argument("--old-temperature", type=float, default=None,
                    help="evaluate the warm-start reader per window at this temperature too (before training)")
    ap.add_argument("--eval-before", action="store_true")
    ap.add_argument("--eval-after", action="store_true")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=0.0, help="training time budget (0 = none)")
    ap.add_argument("--steps", type=int, default=0,
                    help="train this many steps at most, the schedule sized to them (0 = the epochs'); unlike "
                         "--minutes, not sized by a throughput probe that a busy CPU would make too slow")
    ap.add_argument("--groups-per-batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--max-groups", type=int, default=0)
    ap.add_argument("--extra-single", type=float, default=0.0,
                    help="also train this share of answerable questions on their own paragraph alone")
    ap.add_argument("--interpolate", default="",
                    help="comma-separated weights a of the trained model in a*trained + (1-a)*init to evaluate "
                         "after training (WiSE-FT); the best by --min-single-f1 rule is saved")
    ap.add_argument("--min-single-f1", type=float, default=0.0,
                    help="with --interpolate: keep the best multi-passage F1 among weights whose single-paragraph "
                         "F1 (shared decoding) is at least this")
    ap.add_argument("--student-layers", default="",
                    help="comma-separated encoder layers of --init to keep (e.g. 0,2,5): train a smaller reader")
    ap.add_argument("--distill", type=float, default=0.0,
                    help="weight of the distillation loss (KL to --teacher's shared-normalisation distribution); "
                         "the gold loss gets 1 - this. 0 = no teacher")
    ap.add_argument("--freeze-embeddings", action="store_true",
                    help="do not train the embeddings (they stay those of --init)")
    ap.add_argument("--teacher", default=None, help="reader folder to distil from (default: --init)")
    ap.add_argument("--distill-temperature", type=float, default=2.0)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--stride", type=int, default=96)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast on the CPU (only where native)")
    ap.add_argument("--save-fp16", action="store_true")
    args = ap.parse_args(argv)
    if args.student_layers and args.interpolate:
        ap.error("--interpolate mixes weights with --init, which a student with fewer layers cannot do")
    if not 0.0 <= args.distill <= 1.0:
        ap.error("--distill is a weight between 0 and 1")
    train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
