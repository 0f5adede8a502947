"""Multi-passage training groups for the shared-normalisation reader (Clark & Gardner, 2018).

Each group is one question read together with several paragraphs, as the service reads it:

* **answerable** -- its own paragraph plus up to ``k - 1`` distractors retrieved the way the service
  retrieves (MiniLM dense + BM25, reciprocal rank fusion) from the whole corpus, so they come from the
  same article and from others. A distractor that contains one of the gold answer texts is dropped
  (it might hold the answer too; training it as wrong would teach the wrong lesson).
* **null** -- the question's whole article is left out and the top ``k`` retrieved paragraphs of other
  articles (none containing an answer text) are read: the "not in the documents" case the service
  faces. These train the null answer.
* **single** -- the own paragraph alone (keeps the single-paragraph behaviour the reader had).

Groups refer to paragraphs by their index in :func:`paragraphs` order (article order, then paragraph
order) so a file of groups is small enough to carry to a lent GPU beside the SQuAD file itself.

    python -m qa.training.groups --squad ../shared/squad/squad-v1.1-train.json --out groups.jsonl.gz
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Paragraph:
    index: int
    title: str
    text: str


@dataclass
class Group:
    qid: str
    question: str
    kind: str  # "answerable" | "null" | "single"
    passages: list[int]  # paragraph indices, retrieval order (own paragraph first for answerable/single)
    gold: int  # paragraph index holding the answer, -1 for null groups
    answer_start: int  # in the gold paragraph, -1 for null groups
    answer_text: str


def load_articles(path: str | Path) -> list[dict]:
    return json.loads(Path(path).read_text(encoding="utf-8"))["data"]


def paragraphs(articles: list[dict]) -> list[Paragraph]:
    out: list[Paragraph] = []
    for a in articles:
        for p in a["paragraphs"]:
            out.append(Paragraph(len(out), a.get("title", ""), p["context"]))
    return out


def split_articles(titles: list[str], held_out: int, seed: int) -> tuple[set[str], set[str]]:
    """(reader-training titles, held-out titles): a seeded choice of ``held_out`` articles kept away from
    reader training (the answer verifier is trained and calibrated on them)."""
    ordered = sorted(set(titles))
    random.Random(seed).shuffle(ordered)
    return set(ordered[held_out:]), set(ordered[:held_out])


class ParagraphRetriever:
    """Dense (MiniLM, cosine) + BM25 over paragraphs, fused by reciprocal rank fusion like the service."""

    def __init__(self, paras: list[Paragraph], embedder=None, rrf_k: int = 60, show_progress: bool = True,
                 cache: str | Path | None = None):
        from qa.retriever.bm25 import BM25Retriever
        from qa.types import Chunk

        if embedder is None:
            from qa.embedding import get_embedder

            embedder = get_embedder(batch_size=64)
            if _native_bf16():  # training data only: bf16 embeddings pick the same distractors, ~3x faster
                import torch

                embedder.model.to(torch.bfloat16)
            embedder.model.max_seq_length = 128  # the paragraph's opening is enough to pick distractors
        self.paras = paras
        self.embedder = embedder
        self.rrf_k = rrf_k
        self.chunks = [Chunk(str(p.index), 0, len(p.text), p.text) for p in paras]
        self.bm25 = BM25Retriever(self.chunks).warm_up()
        self.vectors = None
        if cache is not None and Path(cache).exists():
            v = np.load(cache)
            if v.shape[0] == len(paras):
                self.vectors = v
        if self.vectors is None:
            self.vectors = embedder.embed_documents([p.text for p in paras], show_progress=show_progress)
            if cache is not None:
                np.save(cache, self.vectors)

    def search_many(self, questions: list[str], k: int, exclude: list[set[int]] | None = None,
                    candidates: int = 40) -> list[list[int]]:
        """Fused top-``k`` paragraph indices per question, leaving out ``exclude[i]`` for question ``i``.
        Batched: one matrix product for the dense side, one bm25s call for the lexical side."""
        qv = self.embedder.embed_documents(questions)
        dense_scores = qv @ self.vectors.T
        widest = max((len(e) for e in exclude), default=0) if exclude else 0
        n_bm = min(len(self.paras), candidates + widest)
        tok = self.bm25._tokenizer
        empty = tok.get_vocab_dict().get("")
        q_ids = [[i for i in ids if i != empty] for ids in
                 tok.tokenize(questions, update_vocab=False, return_as="ids", show_progress=False)]
        nonempty = [i for i, q in enumerate(q_ids) if q]
        bm_docs: dict[int, list[int]] = {}
        if nonempty:
            docs, scores = self.bm25._model.retrieve([q_ids[i] for i in nonempty], k=n_bm, show_progress=False,
                                                     n_threads=0, return_as="tuple")
            for row, i in enumerate(nonempty):
                bm_docs[i] = [int(d) for d, sc in zip(docs[row].tolist(), scores[row].tolist()) if sc > 0]
        out: list[list[int]] = []
        for i in range(len(questions)):
            ex = exclude[i] if exclude else set()
            dense_top = np.argpartition(-dense_scores[i], min(len(self.paras) - 1, candidates + len(ex)))
            dense_top = dense_top[: candidates + len(ex)]
            dense_top = dense_top[np.argsort(-dense_scores[i][dense_top])]
            dense_rank = [int(j) for j in dense_top if int(j) not in ex][:candidates]
            bm_rank = [j for j in bm_docs.get(i, []) if j not in ex][:candidates]
            fused: dict[int, float] = {}
            for ranking in (dense_rank, bm_rank):
                for r, j in enumerate(ranking, start=1):
                    fused[j] = fused.get(j, 0.0) + 1.0 / (self.rrf_k + r)
            out.append([j for j, _ in sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))][:k])
        return out


def _native_bf16() -> bool:
    from qa.reader.reader import native_bf16

    return native_bf16()


def _contains_answer(text: str, answers: list[str]) -> bool:
    low = text.lower()
    return any(a.strip() and a.strip().lower() in low for a in answers)


def build_groups(articles: list[dict], titles: set[str], n_questions: int, seed: int, k: int = 5,
                 null_fraction: float = 0.2, single_fraction: float = 0.1, retriever: ParagraphRetriever | None = None,
                 batch: int = 256, show_progress: bool = True, cache: str | Path | None = None
                 ) -> tuple[list[Group], list[Paragraph]]:
    """Groups for a seeded sample of ``n_questions`` questions of the articles in ``titles``.

    Retrieval runs over *all* paragraphs of ``articles`` (the corpus), so distractors can come from any article.
    """
    paras = paragraphs(articles)
    by_title: dict[str, list[int]] = {}
    for p in paras:
        by_title.setdefault(p.title, []).append(p.index)
    items = []
    pi = 0
    for a in articles:
        for p in a["paragraphs"]:
            if a.get("title", "") in titles:
                for qa in p["qas"]:
                    if qa.get("answers") and not qa.get("is_impossible"):
                        items.append((pi, qa))
            pi += 1
    rng = random.Random(seed)
    rng.shuffle(items)
    items = items[:n_questions] if n_questions else items
    retriever = retriever or ParagraphRetriever(paras, show_progress=show_progress, cache=cache)
    groups: list[Group] = []
    from tqdm.auto import tqdm

    bar = tqdm(total=len(items), desc="groups", disable=not show_progress)
    for b in range(0, len(items), batch):
        part = items[b : b + batch]
        kinds = []
        for _ in part:
            u = rng.random()
            kinds.append("null" if u < null_fraction else "single" if u < null_fraction + single_fraction else "answerable")
        excludes = []
        for (pidx, qa), kind in zip(part, kinds):
            ex = set(by_title[paras[pidx].title]) if kind == "null" else {pidx}
            excludes.append(ex)
        found = retriever.search_many([qa["question"] for _, qa in part], k + 6, excludes)
        for (pidx, qa), kind, hits in zip(part, kinds, found):
            answers = [x["text"] for x in qa["answers"]]
            clean = [j for j in hits if not _contains_answer(paras[j].text, answers)]
            ans = qa["answers"][0]
            if kind == "null":
                groups.append(Group(qa["id"], qa["question"], kind, clean[:k], -1, -1, ""))
            elif kind == "single":
                groups.append(Group(qa["id"], qa["question"], kind, [pidx], pidx, ans["answer_start"], ans["text"]))
            else:
                groups.append(Group(qa["id"], qa["question"], kind, [pidx] + clean[: k - 1], pidx,
                                    ans["answer_start"], ans["text"]))
        bar.update(len(part))
    bar.close()
    return groups, paras


def save_groups(groups: list[Group], path: str | Path) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for g in groups:
            f.write(json.dumps(asdict(g), ensure_ascii=False) + "\n")


def load_groups(path: str | Path) -> list[Group]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [Group(**json.loads(line)) for line in f if line.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--questions", type=int, default=0, help="0 = every question of the chosen articles")
    ap.add_argument("--held-out", type=int, default=0, help="articles kept away from these groups (seeded)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--null-fraction", type=float, default=0.2)
    ap.add_argument("--single-fraction", type=float, default=0.1)
    ap.add_argument("--cache", type=Path, default=None, help="save/reuse the paragraph vectors here (.npy)")
    args = ap.parse_args(argv)
    articles = load_articles(args.squad)
    titles = [a.get("title", "") for a in articles]
    train_titles, held = split_articles(titles, args.held_out, args.seed)
    groups, _ = build_groups(articles, train_titles, args.questions, args.seed, args.k, args.null_fraction,
                             args.single_fraction, cache=args.cache)
    save_groups(groups, args.out)
    kinds = {}
    for g in groups:
        kinds[g.kind] = kinds.get(g.kind, 0) + 1
    print(json.dumps({"groups": len(groups), "kinds": kinds, "held_out_titles": sorted(held)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
