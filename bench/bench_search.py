"""Index build time (fresh build of seeds/ into a temp dir) and warm search latency.

    python bench/bench_search.py [--queries 50] [--k 5] [--index-type flat|hnsw]

Prints figures only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def questions(n: int) -> list[str]:
    path = ROOT / "eval" / "seeds_qa.jsonl"
    qs: list[str] = []
    if path.is_file():
        qs = [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not qs:
        qs = ["When did the protests in Kazakhstan begin?"]
    return [qs[i % len(qs)] for i in range(n)]


def fmt(ms: list[float]) -> str:
    return f"median {statistics.median(ms):7.2f} ms   p95 {pct(ms, 0.95):7.2f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--index-type", choices=("flat", "hnsw"), default="flat")
    ap.add_argument("--corpus", type=Path, default=ROOT / "seeds")
    args = ap.parse_args()

    from qa.chunking import Chunker
    from qa.config import Settings
    from qa.embedding import Embedder
    from qa.index_store import IndexStore, build_or_update
    from qa.retriever.dense import DenseRetriever
    from qa.retriever.hybrid import make_retriever

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(index_dir=Path(tmp) / "index", corpus_dir=args.corpus, index_type=args.index_type)
        t0 = time.perf_counter()
        embedder = Embedder.from_settings(settings).warm_up()
        chunker = Chunker.from_settings(settings)
        t_load = time.perf_counter() - t0

        t1 = time.perf_counter()
        store = build_or_update(settings.corpus_dir, settings, embedder, chunker)
        t_build = time.perf_counter() - t1
        r = store.build_report

        t2 = time.perf_counter()
        again = build_or_update(settings.corpus_dir, settings, embedder, chunker)
        t_noop = time.perf_counter() - t2

        t3 = time.perf_counter()
        IndexStore.load(settings.index_dir, embedder.model_id, embedder.dimension)
        t_open = time.perf_counter() - t3

        print(f"corpus: {settings.corpus_dir}  ({r.documents} documents, {r.chunks} chunks, index {args.index_type})")
        print(f"model + tokenizer load:           {t_load:7.2f} s")
        print(f"fresh index build (chunk+embed):  {t_build:7.2f} s")
        print(f"no-change update (all reused):    {t_noop:7.2f} s  ({len(again.build_report.reused)} reused)")
        print(f"index load + verify:              {t_open * 1000:7.1f} ms")

        qs = questions(args.queries)
        dense = DenseRetriever(store, embedder)
        hybrid = make_retriever("hybrid", store, embedder, settings)
        for q in qs[:3]:  # warm up
            dense.run(q, args.k)
            hybrid.run(q, args.k)
        qvecs = [embedder.embed_query(q) for q in qs]

        def timed(fn) -> list[float]:
            out = []
            for i, q in enumerate(qs):
                t = time.perf_counter()
                fn(i, q)
                out.append((time.perf_counter() - t) * 1000)
            return out

        print(f"warm latency over {len(qs)} queries, k={args.k}:")
        print(f"  store.search (FAISS only):      {fmt(timed(lambda i, q: store.search(qvecs[i], args.k)))}")
        print(f"  embed_query:                    {fmt(timed(lambda i, q: embedder.embed_query(q)))}")
        print(f"  dense search (embed + FAISS):   {fmt(timed(lambda i, q: dense.run(q, args.k)))}")
        print(f"  hybrid search (dense + BM25):   {fmt(timed(lambda i, q: hybrid.run(q, args.k)))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
