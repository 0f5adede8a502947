"""From span candidates to answers: one citation per place, one answer per normalised text, and support
that counts independent evidence rather than repetition.

Support of an answer is a noisy-or over *independent* sources: citations in one document form one source
(a document that repeats a name is one witness, not several), and documents whose cited sentences are
near-duplicates of each other (wire copies of one story: word-shingle Jaccard >= ``dup_threshold``) are
merged into one source too. Each source counts with its best citation's probability.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qa.metrics import normalize_answer

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Located:
    """A span candidate placed in a document: ``passage`` is its index in the retrieved list (-1: none)."""

    document: str
    start: int
    end: int
    prob: float
    passage: int = -1


@dataclass
class AnswerGroup:
    key: str  # normalised answer text
    citations: list[Located]  # distinct, non-nested places, best first
    contexts: list[tuple[int, int]]  # sentence bounds of each citation
    support: float = 0.0  # noisy-or over independent sources
    mass: float = 0.0  # sum of the distinct places' probabilities (with shared normalisation: the answer's share
    # of the question's probability, however many copies of the story repeat it), at most 1
    sources: int = 0  # independent sources (documents after near-duplicate merging)
    documents: int = 0  # distinct documents cited
    extra: dict = field(default_factory=dict)

    @property
    def best(self) -> Located:
        return self.citations[0]


def shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set, b: set) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def independent_sources(citations: list[Located], context_text: list[str], dup_threshold: float = 0.5) -> list[list[int]]:
    """Clusters (lists of citation indices) of citations that are not independent evidence: the same document,
    or documents whose cited sentences are near-duplicates. Union-find; deterministic."""
    n = len(citations)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    sh: list[set | None] = [None] * n  # made when first compared (most answers have one citation: none)

    def shingles_of(i: int) -> set:
        if sh[i] is None:
            sh[i] = shingles(context_text[i])
        return sh[i]

    for i in range(n):
        for j in range(i + 1, n):
            if (citations[i].document == citations[j].document
                    or jaccard(shingles_of(i), shingles_of(j)) >= dup_threshold):
                union(i, j)
    clusters: dict[int, list[int]] = {}
    for i in range(n):
        clusters.setdefault(find(i), []).append(i)
    return [clusters[r] for r in sorted(clusters)]


def group_answers(located: list[Located], document_text, sentence_bounds, dup_threshold: float = 0.5) -> list[AnswerGroup]:
    """Answer groups, best support first. ``document_text(doc)`` gives a document's text and
    ``sentence_bounds(text, start, end)`` the sentence around a span."""
    best_at: dict[tuple[str, int, int], Located] = {}
    for c in located:
        key = (c.document, c.start, c.end)
        if key not in best_at or c.prob > best_at[key].prob:
            best_at[key] = c
    texts: dict[str, str] = {}
    groups: dict[str, list[Located]] = {}
    for (doc, s, e), c in best_at.items():
        if doc not in texts:
            texts[doc] = document_text(doc)
        span = texts[doc][s:e]
        key = normalize_answer(span) or span.strip().lower()
        if not key:
            continue
        groups.setdefault(key, []).append(c)
    out: list[AnswerGroup] = []
    for key, cits in groups.items():
        cits.sort(key=lambda c: (-c.prob, c.document, c.start))
        kept: list[Located] = []
        for c in cits:  # several occurrences: drop those nested in a better citation of the same answer
            if not any(k.document == c.document and k.start < c.end and c.start < k.end for k in kept):
                kept.append(c)
        bounds = [sentence_bounds(texts[c.document], c.start, c.end) for c in kept]
        ctx_text = [texts[c.document][b[0] : b[1]] for c, b in zip(kept, bounds)]
        clusters = independent_sources(kept, ctx_text, dup_threshold)
        miss = 1.0
        for cl in clusters:
            miss *= 1.0 - max(kept[i].prob for i in cl)
        out.append(AnswerGroup(key=key, citations=kept, contexts=bounds, support=1.0 - miss, sources=len(clusters),
                               documents=len({c.document for c in kept}), mass=min(1.0, sum(c.prob for c in kept))))
    out.sort(key=lambda g: (-g.support, -g.best.prob, g.key))
    return out
