"""Passages tokenised once, at index time, with the reader's tokenizer (issue #15).

At query time :func:`encode_windows_pretokenised` only tokenises the question and cuts the stored context
tokens into windows. It reproduces :func:`qa.reader.decode.encode_windows` exactly (same ids, token types,
offsets, word spans and window order: the fast tokenizer's ``truncation="only_second"`` overflow with
``stride``), which ``tests/test_pretokenised.py`` checks against the tokenizer over generated texts.

Stored beside an index version (``reader_tokens.npz``, :func:`save` / :func:`load`): per chunk its token ids,
character offsets (relative to the chunk text) and word ids, plus a fingerprint of the tokenizer that made
them. A reader whose tokenizer has another fingerprint, or an index without the file, tokenises at query time
as before.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.reader.decode import Windows, _word_spans, encode_windows

TOKENS_FILE = "reader_tokens.npz"


@dataclass(frozen=True)
class ContextTokens:
    """One context's tokens without special tokens: ids, (start, end) character offsets, word ids."""

    ids: np.ndarray  # int32 (n,)
    offsets: np.ndarray  # int32 (n, 2)
    word_ids: np.ndarray  # int32 (n,); -1 where the tokenizer gives none

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of what decides the tokens: the fast tokenizer's vocabulary, normaliser, pre-tokeniser, model
    and post-processor (its truncation/padding state, which every call re-sets, left out)."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec.pop("truncation", None)
    spec.pop("padding", None)
    blob = json.dumps(spec, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def tokenise_contexts(tokenizer, texts: list[str]) -> list[ContextTokens]:
    """Each text's tokens as the reader's tokenizer cuts it inside a (question, context) pair."""
    if not texts:
        return []
    enc = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, truncation=False,
                    padding=False, verbose=False)
    out = []
    for i in range(len(texts)):
        ids = np.asarray(enc["input_ids"][i], dtype=np.int32)
        offs = np.asarray(enc["offset_mapping"][i], dtype=np.int32).reshape(-1, 2)
        words = np.asarray([-1 if w is None else w for w in enc.word_ids(i)], dtype=np.int32)
        out.append(ContextTokens(ids, offs, words))
    return out


def _question_ids(tokenizer, question: str, max_query_tokens: int) -> list[int]:
    """The ids of the question as :func:`qa.reader.decode.truncate_question` cuts it."""
    q = question.strip()
    enc = tokenizer(q, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False)
    if len(enc["input_ids"]) > max_query_tokens:
        q = q[: enc["offset_mapping"][max_query_tokens - 1][1]]
        enc = tokenizer(q, add_special_tokens=False, truncation=False, verbose=False)
    return list(enc["input_ids"])


def _parts(n: int, room: int, stride: int) -> list[tuple[int, int]]:
    """The fast tokenizer's overflow (tokenizers ``Encoding.truncate``, right side): ``[0, room)``, then
    windows stepping by ``room - stride`` until one reaches the end."""
    if n <= room:
        return [(0, n)]
    step = room - stride
    parts = []
    for start in range(0, n, step):
        stop = min(start + room, n)
        parts.append((start, stop))
        if stop == n:
            break
    return parts


def encode_windows_pretokenised(tokenizer, question: str, contexts: list[str], tokens: list[ContextTokens | None],
                                max_length: int, stride: int, max_query_tokens: int = 64) -> Windows:
    """The windows :func:`qa.reader.decode.encode_windows` gives, from stored context tokens (a context whose
    entry is None is tokenised here). A BERT-style pair ``[CLS] q [SEP] c [SEP]`` (token types 0 then 1)."""
    q_ids = _question_ids(tokenizer, question, max_query_tokens)
    room = max_length - len(q_ids) - 3
    missing = [i for i, t in enumerate(tokens) if t is None]
    if missing:
        made = tokenise_contexts(tokenizer, [contexts[i] for i in missing])
        tokens = list(tokens)
        for i, t in zip(missing, made):
            tokens[i] = t
    if room <= 0 or (room <= stride and any(len(t) > room for t in tokens)):
        # the tokenizer refuses (stride >= room) or the question leaves no room: its own error
        return encode_windows(tokenizer, question, contexts, max_length, stride, max_query_tokens)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    head = [cls, *q_ids, sep]
    head_types = [0] * len(head)
    head_offs: list = [None] * len(head)
    input_ids, types, context_of, offsets, word_spans = [], [], [], [], []
    for ci, t in enumerate(tokens):
        ids, offs, words = t.ids.tolist(), t.offsets.tolist(), t.word_ids.tolist()
        for a, b in _parts(len(ids), room, stride):
            input_ids.append(head + ids[a:b] + [sep])
            types.append(head_types + [1] * (b - a + 1))
            context_of.append(ci)
            offs_w = head_offs + [tuple(o) for o in offs[a:b]] + [None]
            offsets.append(offs_w)
            word_ids = [None] * len(head) + [None if w < 0 else w for w in words[a:b]] + [None]
            word_spans.append(_word_spans(offs_w, word_ids))
    return Windows({"input_ids": input_ids, "token_type_ids": types}, context_of, offsets, word_spans)


def matches_tokenizer(tokenizer, max_length: int, stride: int) -> bool:
    """True when the pre-tokenised windows equal the tokenizer's on a probe (a long context that overflows,
    Unicode, a long question): the check that this tokenizer follows the pair template assumed here."""
    question = "What did the committee decide about the naïve budget proposal in Zürich? " * 3
    contexts = ["Le comité a décidé — après 3 heures — d'accepter le budget; 東京 und Straße. " * 40,
                "A short one.", "Ünïcödé wörds: naïve café résumé ﬁnance. " * 7]
    try:
        ref = encode_windows(tokenizer, question, contexts, max_length, stride)
        got = encode_windows_pretokenised(tokenizer, question, contexts, [None] * len(contexts), max_length, stride)
    except Exception:  # noqa: BLE001 - any failure means: do not use the stored tokens
        return False
    return same_windows(ref, got)


def same_windows(a: Windows, b: Windows) -> bool:
    return (list(map(list, a.encoding["input_ids"])) == list(map(list, b.encoding["input_ids"]))
            and list(map(list, a.encoding["token_type_ids"])) == list(map(list, b.encoding["token_type_ids"]))
            and list(a.context_of) == list(b.context_of) and a.offsets == b.offsets and a.word_spans == b.word_spans)


# -- storage ------------------------------------------------------------------------------------------------
def save(folder: Path, fingerprint: str, tokens: list[ContextTokens]) -> Path:
    """Write ``tokens`` (one per chunk, in chunk order) to ``folder/reader_tokens.npz``."""
    lengths = np.array([len(t) for t in tokens], dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    cat = (lambda xs, shape: np.concatenate(xs) if xs else np.zeros(shape, np.int32))
    path = Path(folder) / TOKENS_FILE
    with open(path, "wb") as f:
        np.savez(f, fingerprint=np.array(fingerprint), bounds=bounds,
                 ids=cat([t.ids for t in tokens], (0,)).astype(np.int32),
                 offsets=cat([t.offsets for t in tokens], (0, 2)).astype(np.int32).reshape(-1, 2),
                 word_ids=cat([t.word_ids for t in tokens], (0,)).astype(np.int32))
    return path


def load(folder: Path, n_chunks: int) -> tuple[str, list[ContextTokens]] | None:
    """(fingerprint, tokens per chunk) from ``folder``, or None when absent. Raises ValueError when damaged."""
    path = Path(folder) / TOKENS_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        fingerprint = str(z["fingerprint"])
        bounds, ids, offs, words = z["bounds"], z["ids"], z["offsets"], z["word_ids"]
    if bounds.shape != (n_chunks + 1,) or bounds[0] != 0 or bounds[-1] != len(ids) or np.any(np.diff(bounds) < 0) \
            or offs.shape != (len(ids), 2) or words.shape != ids.shape:
        raise ValueError(f"{path} does not match the {n_chunks} chunks")
    return fingerprint, [ContextTokens(ids[a:b], offs[a:b], words[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
