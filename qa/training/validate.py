"""Run the reader over SQuAD-style examples (question + its own paragraph) and score it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from qa.metrics import squad_em_f1
from qa.reader.decode import decode, encode_windows, pad_batch
from qa.reader.forward import forward_logits
from qa.training.squad import QAExample


@dataclass
class Prediction:
    id: str
    text: str  # best span ("" when the context has no window)
    prob: float  # best span probability
    null_prob: float


def predict_examples(model, tokenizer, examples: list[QAExample], max_length: int = 256, stride: int = 96,
                     max_answer_tokens: int = 30, batch_size: int = 64, device: str = "cpu", bf16: bool = True,
                     progress: bool = True, temperature: float = 1.0) -> list[Prediction]:
    model.eval()
    preds: list[Prediction] = []
    group = 256
    bar = tqdm(total=len(examples), desc="validate", disable=not progress, leave=False)
    for g in range(0, len(examples), group):
        part = examples[g : g + group]
        encs = [encode_windows(tokenizer, ex.question, [ex.context], max_length, stride) for ex in part]
        # flatten windows, sort by length for dynamic padding
        flat = [(e, w) for e, enc in enumerate(encs) for w in range(len(enc.context_of))]
        flat.sort(key=lambda t: len(encs[t[0]].encoding["input_ids"][t[1]]))
        starts: dict[tuple[int, int], np.ndarray] = {}
        ends: dict[tuple[int, int], np.ndarray] = {}
        for b in range(0, len(flat), batch_size):
            chunk = flat[b : b + batch_size]
            n = max(len(encs[e].encoding["input_ids"][w]) for e, w in chunk)
            ids = np.zeros((len(chunk), n), dtype=np.int64)
            mask = np.zeros_like(ids)
            tt = np.zeros_like(ids)
            for r, (e, w) in enumerate(chunk):
                x = encs[e].encoding["input_ids"][w]
                ids[r, : len(x)] = x
                mask[r, : len(x)] = 1
                tt[r, : len(x)] = encs[e].encoding["token_type_ids"][w]
            s, en = forward_logits(model, ids, mask, tt, device, bf16)
            for r, (e, w) in enumerate(chunk):
                L = len(encs[e].encoding["input_ids"][w])
                starts[(e, w)], ends[(e, w)] = s[r, :L], en[r, :L]
        for e, (ex, enc) in enumerate(zip(part, encs)):
            nw = len(enc.context_of)
            width = max(len(x) for x in enc.encoding["input_ids"])
            S = np.full((nw, width), -1e9, dtype=np.float32)
            E = np.full((nw, width), -1e9, dtype=np.float32)
            for w in range(nw):
                S[w, : len(starts[(e, w)])] = starts[(e, w)]
                E[w, : len(ends[(e, w)])] = ends[(e, w)]
            cands, null = decode(S, E, enc, max_answer_tokens=max_answer_tokens, temperature=temperature)
            if cands:
                c = cands[0]
                preds.append(Prediction(ex.id, ex.context[c.start : c.end], c.prob, null[0]))
            else:
                preds.append(Prediction(ex.id, "", 0.0, null[0] if null else 1.0))
        bar.update(len(part))
    bar.close()
    return preds


def score_answerable(examples: list[QAExample], preds: list[Prediction]) -> dict:
    refs = {ex.id: [a["text"] for a in ex.answers] for ex in examples if not ex.is_impossible}
    return squad_em_f1({p.id: p.text for p in preds}, refs)


def calibrate_threshold(pos_probs: list[float], neg_probs: list[float]) -> tuple[float, float]:
    """Threshold on best-span probability that maximises balanced accuracy (answer if prob >= t)."""
    cand = sorted(set(np.round(pos_probs + neg_probs, 4).tolist())) or [0.5]
    pos = np.array(pos_probs)
    neg = np.array(neg_probs)
    best_t, best_acc = 0.5, -1.0
    for t in cand:
        acc = 0.5 * ((pos >= t).mean() if len(pos) else 1.0) + 0.5 * ((neg < t).mean() if len(neg) else 1.0)
        if acc > best_acc:
            best_t, best_acc = t, acc
    return float(best_t), float(best_acc)


TEMPERATURE_GRID = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)


def multi_passage_sets(examples: list[QAExample], n: int, seed: int, distractors: int = 4):
    """A seeded sample of n questions, each with its own paragraph and the `distractors` other paragraphs of
    its article that share the most words with the question, in shuffled order: what a retriever hands
    the reader, where the right span must outscore confident spans in the wrong passages."""
    import random
    import re
    from collections import defaultdict

    words = lambda t: set(re.findall(r"\w+", t.lower()))  # noqa: E731
    paragraphs: dict[str, list[str]] = defaultdict(list)
    for ex in examples:
        if ex.context not in paragraphs[ex.title]:
            paragraphs[ex.title].append(ex.context)
    rng = random.Random(seed)
    answerable = [ex for ex in examples if not ex.is_impossible and len(paragraphs[ex.title]) > 1]
    out = []
    for ex in rng.sample(answerable, min(n, len(answerable))):
        q = words(ex.question)
        others = sorted((c for c in paragraphs[ex.title] if c != ex.context), key=lambda c: -len(q & words(c)))
        contexts = others[:distractors] + [ex.context]
        rng.shuffle(contexts)
        out.append((ex, contexts))
    return out


def fit_temperature(model, tokenizer, sets, max_length: int = 256, stride: int = 96, max_answer_tokens: int = 30,
                    device: str = "cpu", bf16: bool = False, grid=TEMPERATURE_GRID) -> dict:
    """The softmax temperature that maximises top-answer F1 over several passages (`multi_passage_sets`).

    A longer-trained reader is sharp in every window, wrong passages included; dividing the logits by a
    temperature leaves the ranking inside a window alone and makes probabilities comparable across windows.
    Answers are grouped and ranked as the service does (normalised text, noisy-or over places)."""
    from collections import defaultdict

    from qa.metrics import best_over, f1, normalize_answer

    model.eval()
    logits = []
    for ex, contexts in sets:
        enc = encode_windows(tokenizer, ex.question, contexts, max_length, stride)
        ids, mask, tt = pad_batch(enc)
        s, e = forward_logits(model, ids, mask, tt, device, bf16)
        s = np.where(mask == 1, s, -1e9).astype(np.float32)
        e = np.where(mask == 1, e, -1e9).astype(np.float32)
        logits.append((enc, s, e))
    scores = {}
    for t in grid:
        total = 0.0
        for (ex, contexts), (enc, s, e) in zip(sets, logits):
            cands, _ = decode(s, e, enc, max_answer_tokens=max_answer_tokens, temperature=t)
            miss: dict[str, float] = defaultdict(lambda: 1.0)
            for c in cands:
                miss[normalize_answer(contexts[c.context_index][c.start : c.end])] *= 1.0 - c.prob
            top = min(miss, key=miss.get) if miss else ""
            total += best_over(f1, top, [a["text"] for a in ex.answers])
        scores[t] = round(100 * total / max(1, len(sets)), 2)
    best = max(grid, key=lambda t: (scores[t], -abs(t - 1.0)))
    return {"value": best, "multi_passage_f1": {str(t): v for t, v in scores.items()}, "questions": len(sets)}
