"""Windowed encoding and n-best span decoding with exact character offsets.

Shared by training-time validation and the served reader, so what we measure is what we serve.
All offsets are code-point offsets into the context string given to :func:`encode_windows`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SpanCandidate:
    context_index: int
    start: int  # char offset in the context
    end: int
    prob: float  # p(start) * p(end) within its window
    null_prob: float  # p([CLS], [CLS]) of the same window


@dataclass
class Windows:
    encoding: object  # BatchEncoding (features are windows)
    context_of: list[int]  # window -> context index
    offsets: list[list[tuple[int, int] | None]]  # window -> token -> char span in its context, None if not context
    # window -> token -> char span of the whole word the token belongs to (as far as the window holds it)
    word_spans: list[list[tuple[int, int] | None]] | None = None


def truncate_question(tokenizer, question: str, max_tokens: int = 64) -> str:
    """The question stripped and cut after its first ``max_tokens`` tokens (training and serving alike)."""
    q = question.strip()
    qids = tokenizer(q, add_special_tokens=False, return_offsets_mapping=True)
    if len(qids["input_ids"]) > max_tokens:
        q = q[: qids["offset_mapping"][max_tokens - 1][1]]
    return q


def encode_windows(tokenizer, question: str, contexts: list[str], max_length: int, stride: int,
                   max_query_tokens: int = 64) -> Windows:
    q = truncate_question(tokenizer, question, max_query_tokens)
    enc = tokenizer(
        [q] * len(contexts),
        contexts,
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    context_of = list(enc["overflow_to_sample_mapping"])
    offsets, word_spans = [], []
    for w in range(len(enc["input_ids"])):
        seq = enc.sequence_ids(w)
        offs = [tuple(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][w], seq)]
        offsets.append(offs)
        word_spans.append(_word_spans(offs, enc.word_ids(w)))
    return Windows(enc, context_of, offsets, word_spans)


def _word_spans(offs: list, word_ids: list) -> list[tuple[int, int] | None]:
    """Char span of each context token's whole word (pre-tokenizer word: whitespace/punctuation/CJK split).

    A span decoded from sub-word tokens ("kazakhstan" + "##i" of "Kazakhstani") is widened to whole words, so an
    answer never starts or ends inside a word.
    """
    spans: list[tuple[int, int] | None] = [None] * len(offs)
    i = 0
    while i < len(offs):
        if offs[i] is None:
            i += 1
            continue
        j = i
        while j + 1 < len(offs) and offs[j + 1] is not None and word_ids[j + 1] == word_ids[i]:
            j += 1
        span = (offs[i][0], offs[j][1])
        for t in range(i, j + 1):
            spans[t] = span
        i = j + 1
    return spans


def pad_batch(windows: Windows, indices: list[int] | None = None, pad_id: int = 0):
    """Dynamic padding: numpy arrays (input_ids, attention_mask, token_type_ids) padded to the longest."""
    ids = windows.encoding["input_ids"]
    tt = windows.encoding["token_type_ids"]
    idx = list(range(len(ids))) if indices is None else indices
    n = max(len(ids[i]) for i in idx)
    input_ids = np.full((len(idx), n), pad_id, dtype=np.int64)
    mask = np.zeros((len(idx), n), dtype=np.int64)
    types = np.zeros((len(idx), n), dtype=np.int64)
    for r, i in enumerate(idx):
        L = len(ids[i])
        input_ids[r, :L] = ids[i]
        mask[r, :L] = 1
        types[r, :L] = tt[i]
    return input_ids, mask, types


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max()
    e = np.exp(x)
    return e / e.sum()


#: No answer is longer than this many characters, whatever its tokens: a run of characters the tokenizer
#: cannot split (a line of 3,000 "a"s is one [UNK] token) is not an answer.
MAX_ANSWER_CHARS = 500


def _window_spans(ls: np.ndarray, le: np.ndarray, offsets: list, context_index: int, max_answer_tokens: int,
                  n_best: int, word_spans: list | None, null_prob: float) -> list[SpanCandidate]:
    """The n-best spans of one window from its start/end log-probabilities (``-inf`` where not allowed)."""
    ctx_tokens = [i for i in range(len(offsets)) if offsets[i] is not None]
    if not ctx_tokens:
        return []
    k = min(n_best, len(ctx_tokens))
    cand_s = sorted(ctx_tokens, key=lambda i: -ls[i])[:k]
    cand_e = sorted(ctx_tokens, key=lambda i: -le[i])[:k]
    best: dict[tuple[int, int], float] = {}
    for i in cand_s:
        for j in cand_e:
            if j < i or j - i + 1 > max_answer_tokens:
                continue
            if word_spans is not None:
                start, end = word_spans[i][0], word_spans[j][1]
            else:
                start, end = offsets[i][0], offsets[j][1]
            if end <= start or end - start > MAX_ANSWER_CHARS:
                continue
            p = float(np.exp(ls[i] + le[j]))
            if p > best.get((start, end), -1.0):
                best[(start, end)] = p
    out = [SpanCandidate(context_index, s, e, p, null_prob) for (s, e), p in best.items()]
    out.sort(key=lambda c: -c.prob)
    return out[:n_best]


def _logsumexp(x: np.ndarray) -> float:
    m = float(np.max(x))
    if not np.isfinite(m):
        return m
    return m + float(np.log(np.sum(np.exp(x - m))))


def decode_window(start_logits: np.ndarray, end_logits: np.ndarray, offsets: list, context_index: int,
                  max_answer_tokens: int, n_best: int, word_spans: list | None = None,
                  temperature: float = 1.0) -> tuple[list[SpanCandidate], float]:
    """Best spans of one window. Probabilities are softmaxes over the window's context tokens plus [CLS],
    of the logits divided by ``temperature`` (> 1 softens them: the order of spans within a window stays,
    their probabilities become more comparable across windows).

    With ``word_spans`` a span is widened to whole words; spans that become equal keep the best probability.
    """
    L = len(offsets)
    valid = np.array([i == 0 or offsets[i] is not None for i in range(L)])
    s_log = np.where(valid, start_logits[:L] / temperature, -1e9)
    e_log = np.where(valid, end_logits[:L] / temperature, -1e9)
    ps, pe = _softmax(s_log), _softmax(e_log)
    null_prob = float(ps[0] * pe[0])
    with np.errstate(divide="ignore"):
        ls, le = np.log(ps), np.log(pe)
    return _window_spans(ls, le, offsets, context_index, max_answer_tokens, n_best, word_spans, null_prob), null_prob


def decode_shared(start_logits: np.ndarray, end_logits: np.ndarray, windows: Windows, max_answer_tokens: int = 30,
                  n_best: int = 20, temperature: float = 1.0) -> tuple[list[SpanCandidate], float]:
    """Shared normalisation over every window of a question (Clark & Gardner, 2018): one softmax for the
    start and one for the end over all context tokens of all windows plus one null, whose logit is the
    log of the mean of the windows' exponentiated [CLS] logits. A span's probability is then comparable
    across passages (what a reader trained with :mod:`qa.training.shared_norm` learns). Returns the
    candidates (best first) and the question's null probability.
    """
    n = len(windows.context_of)
    if n == 0:
        return [], 1.0
    parts_s, parts_e, cls_s, cls_e = [], [], [], []
    for w in range(n):
        offs = windows.offsets[w]
        ctx = np.array([o is not None for o in offs], dtype=bool)
        L = len(offs)
        s = start_logits[w, :L] / temperature
        e = end_logits[w, :L] / temperature
        parts_s.append(s[ctx])
        parts_e.append(e[ctx])
        cls_s.append(s[0])
        cls_e.append(e[0])
    null_s = _logsumexp(np.array(cls_s)) - float(np.log(n))
    null_e = _logsumexp(np.array(cls_e)) - float(np.log(n))
    zs = _logsumexp(np.concatenate(parts_s + [np.array([null_s])]))
    ze = _logsumexp(np.concatenate(parts_e + [np.array([null_e])]))
    null_prob = float(np.exp(null_s - zs + null_e - ze))
    cands: list[SpanCandidate] = []
    for w in range(n):
        offs = windows.offsets[w]
        L = len(offs)
        valid = np.array([o is not None for o in offs], dtype=bool)
        ls = np.where(valid, start_logits[w, :L] / temperature - zs, -np.inf)
        le = np.where(valid, end_logits[w, :L] / temperature - ze, -np.inf)
        ws = windows.word_spans[w] if windows.word_spans is not None else None
        cands.extend(_window_spans(ls, le, offs, windows.context_of[w], max_answer_tokens, n_best, ws, null_prob))
    cands.sort(key=lambda c: -c.prob)
    return cands, null_prob


def decode(start_logits: np.ndarray, end_logits: np.ndarray, windows: Windows, max_answer_tokens: int = 30,
           n_best: int = 20, temperature: float = 1.0) -> tuple[list[SpanCandidate], list[float]]:
    """All windows' candidates (best first) and each context's null probability (min over its windows)."""
    cands: list[SpanCandidate] = []
    n_ctx = max(windows.context_of) + 1 if windows.context_of else 0
    null = [1.0] * n_ctx
    for w, ctx in enumerate(windows.context_of):
        ws = windows.word_spans[w] if windows.word_spans is not None else None
        c, p0 = decode_window(start_logits[w], end_logits[w], windows.offsets[w], ctx, max_answer_tokens, n_best, ws,
                              temperature)
        cands.extend(c)
        null[ctx] = min(null[ctx], p0)
    cands.sort(key=lambda c: -c.prob)
    return cands, null
