"""SQuAD-format data: loading, title splits, synthetic negatives and training features."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from qa.reader.decode import truncate_question

from qa.squad_data import read_squad, squad_titles  # noqa: F401 - squad_titles re-exported for callers


@dataclass
class QAExample:
    id: str
    title: str
    context: str
    question: str
    answers: list[dict] = field(default_factory=list)  # [{"text", "answer_start"}]
    is_impossible: bool = False


def load_squad(path: str | Path, titles: set[str] | None = None) -> list[QAExample]:
    """Read a SQuAD v1.1/v2.0 JSON file (optionally only the articles with the given titles), through
    the project's one loader, :func:`qa.squad_data.read_squad` (its ``is_impossible`` rule)."""
    _, items = read_squad(path, titles=titles)
    return [QAExample(id=i.id, title=i.title, context=i.context, question=i.question,
                      answers=[dict(a) for a in i.answers], is_impossible=i.is_impossible) for i in items]


def split_titles(titles: list[str], fraction: float, seed: int) -> tuple[set[str], set[str]]:
    """Deterministic split of article titles: (first part ~fraction, rest)."""
    ordered = sorted(set(titles))
    random.Random(seed).shuffle(ordered)
    n = round(len(ordered) * fraction)
    return set(ordered[:n]), set(ordered[n:])


def synthetic_negatives(examples: list[QAExample], fraction: float, seed: int) -> list[QAExample]:
    """Unanswerable pairs: a question with another paragraph of the same article that does not
    contain any of its answers (a retriever's typical near-miss)."""
    rng = random.Random(seed)
    by_title: dict[str, list[str]] = {}
    for ex in examples:
        ctxs = by_title.setdefault(ex.title, [])
        if not ctxs or ctxs[-1] != ex.context:
            ctxs.append(ex.context)
    pool = [ex for ex in examples if not ex.is_impossible]
    rng.shuffle(pool)
    out: list[QAExample] = []
    want = int(len(pool) * fraction)
    for ex in pool:
        if len(out) >= want:
            break
        others = [c for c in by_title.get(ex.title, []) if c != ex.context]
        if not others:
            continue
        ctx = rng.choice(others)
        texts = [a["text"].lower() for a in ex.answers]
        if any(t and t in ctx.lower() for t in texts):
            continue
        out.append(QAExample(ex.id + "-neg", ex.title, ctx, ex.question, [], True))
    return out


def build_train_features(examples: list[QAExample], tokenizer, max_length: int, stride: int,
                         max_query_tokens: int = 64) -> list[dict]:
    """Tokenise (question, context) pairs into overlapping windows with span labels.

    A window that does not contain the whole answer, and every unanswerable example, is labelled
    with the [CLS] position (index 0): the model's null answer.
    """
    feats: list[dict] = []
    batch = 512
    for i in range(0, len(examples), batch):
        part = examples[i : i + batch]
        questions = [truncate_question(tokenizer, ex.question, max_query_tokens) for ex in part]
        enc = tokenizer(
            questions,
            [ex.context for ex in part],
            truncation="only_second",
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=False,
        )
        for j, input_ids in enumerate(enc["input_ids"]):
            ex = part[enc["overflow_to_sample_mapping"][j]]
            offsets = enc["offset_mapping"][j]
            seq_ids = enc.sequence_ids(j)
            start_pos = end_pos = 0
            if not ex.is_impossible and ex.answers:
                ans = ex.answers[0]
                a_start = ans["answer_start"]
                a_end = a_start + len(ans["text"])
                ctx_idx = [k for k, s in enumerate(seq_ids) if s == 1]
                if ctx_idx:
                    c0, c1 = ctx_idx[0], ctx_idx[-1]
                    if offsets[c0][0] <= a_start and offsets[c1][1] >= a_end:
                        s = c0
                        while s <= c1 and offsets[s][1] <= a_start:
                            s += 1
                        e = c1
                        while e >= c0 and offsets[e][0] >= a_end:
                            e -= 1
                        if s <= e:
                            start_pos, end_pos = s, e
            feats.append(
                {
                    "input_ids": input_ids,
                    "token_type_ids": enc["token_type_ids"][j],
                    "start_positions": start_pos,
                    "end_positions": end_pos,
                }
            )
    return feats
