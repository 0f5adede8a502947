"""Vector stores on N synthetic normalised 384-d vectors: FAISS flat / HNSW / IVF and Milvus Lite.

    python bench/bench_store.py                      # N = 1,000,000 (needs ~1.5 GB per copy of the data)
    python bench/bench_store.py -n 100000 --queries 200 --methods faiss-flat,milvus-flat

For each method, in a fresh subprocess (so memory is its own): build time (add + train/index, for
Milvus Lite the inserts, flush and the wait until it reports every row indexed), memory (resident set growth of the process over building,
the data itself excluded; Milvus Lite's engine runs inside the process, so its own footprint
counts too), search latency of single queries (p50, p95; top 10) and recall@10
against the exact top 10 (brute force in numpy). The vectors are 384-d like all-MiniLM-L6-v2's,
drawn around 2,000 random centres (so neighbours exist, as in real embeddings) and L2-normalised;
the queries are fresh draws from the same mixture. Parameters: HNSW M=32, efConstruction=200,
efSearch=128 (the values qa.index_store uses for QA_INDEX_TYPE=hnsw); IVF nlist=4*sqrt(N),
nprobe=32 (BENCH_NPROBE); Milvus Lite FLAT (what qa.store.milvus_store uses) and HNSW with the same M/ef.

Prints a table and a JSON line; asserts nothing. docs/scaling.md has measured figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIM = 384
NPROBE = int(os.environ.get("BENCH_NPROBE", "32"))
METHODS = ("faiss-flat", "faiss-hnsw", "faiss-ivf", "milvus-flat", "milvus-hnsw")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def synthetic(n: int, seed: int, centres: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, DIM), dtype=np.float32)
    out = np.empty((n, DIM), np.float32)
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        x = c[rng.integers(0, centres, m)] + 0.6 * rng.standard_normal((m, DIM), dtype=np.float32)
        out[s:s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def exact_top(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    for s in range(0, len(data), 200_000):
        scores = queries @ data[s:s + 200_000].T
        idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        sc = np.take_along_axis(scores, idx, 1)
        allsc, alli = np.concatenate([best_s, sc], 1), np.concatenate([best_i, idx + s], 1)
        order = np.argsort(-allsc, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(allsc, order, 1), np.take_along_axis(alli, order, 1)
    return best_i


# ----------------------------------------------------------------------------- one method, in a worker


def run_method(method: str, data: np.ndarray, queries: np.ndarray, k: int,
               workdir: Path) -> tuple[float, float, list[list[int]], list[float], dict]:
    """(build seconds, resident MB grown over the build, ids per query, latency ms per query, notes)."""
    n = len(data)
    base = rss_mb()
    if method.startswith("faiss"):
        import faiss

        t0 = time.perf_counter()
        if method == "faiss-flat":
            index = faiss.IndexFlatIP(DIM)
            index.add(data)
        elif method == "faiss-hnsw":
            index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 200
            index.add(data)
            index.hnsw.efSearch = 128
        else:
            nlist = max(16, int(4 * n ** 0.5))
            quantizer = faiss.IndexFlatIP(DIM)
            index = faiss.IndexIVFFlat(quantizer, DIM, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)
            index.train(data[rng.choice(n, min(n, 50 * nlist), replace=False)])
            index.add(data)
            index.nprobe = NPROBE
        build = time.perf_counter() - t0
        grown = rss_mb() - base
        ids, lat = [], []
        for q in queries:
            t = time.perf_counter()
            _, i = index.search(q.reshape(1, -1), k)
            lat.append((time.perf_counter() - t) * 1000)
            ids.append([int(x) for x in i[0]])
        return build, grown, ids, lat, {}

    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(workdir / "bench.db"))
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    params = {"M": 32, "efConstruction": 200} if method == "milvus-hnsw" else {}
    index_params = client.prepare_index_params()
    index_params.add_index(field_name="vector", index_type="HNSW" if method == "milvus-hnsw" else "FLAT",
                           metric_type="IP", params=params)
    t0 = time.perf_counter()
    client.create_collection("bench", schema=schema, index_params=index_params, consistency_level="Strong")
    for s in range(0, n, 5000):
        block = data[s:s + 5000]
        client.insert("bench", [{"id": s + j, "vector": v} for j, v in enumerate(block.tolist())])
    client.flush("bench")
    # wait (at most 20 minutes) until Milvus reports every row indexed: part of building
    deadline = time.monotonic() + 1200
    while True:
        info = client.describe_index("bench", "vector")
        if int(info.get("pending_index_rows", 0)) == 0 and info.get("state") in ("Finished", None):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    client.search("bench", data=[queries[0].tolist()], anns_field="vector", limit=k, search_params={"metric_type": "IP"})
    build = time.perf_counter() - t0
    grown = rss_mb() - base
    notes = {k2: info.get(k2) for k2 in ("index_type", "state", "indexed_rows", "pending_index_rows", "total_rows")}
    sp = {"metric_type": "IP", "params": {"ef": 128}} if method == "milvus-hnsw" else {"metric_type": "IP"}
    ids, lat = [], []
    for q in queries:
        t = time.perf_counter()
        r = client.search("bench", data=[q.tolist()], anns_field="vector", limit=k, search_params=sp)
        lat.append((time.perf_counter() - t) * 1000)
        ids.append([int(h["id"]) for h in r[0]])
    client.close()
    return build, grown, ids, lat, notes


def worker(args: argparse.Namespace) -> None:
    data = np.load(args.data, mmap_mode=None)
    queries = np.load(args.queries_file)
    if args.worker.startswith("faiss"):
        import faiss  # noqa: F401 - imported before measuring: the library is not the index
    else:
        import pymilvus  # noqa: F401
    build, grown, ids, lat, notes = run_method(args.worker, data, queries, args.k, Path(args.workdir))
    print(json.dumps({"build_s": build, "mem_mb": grown, "ids": ids, "lat": lat, "notes": notes}))


# ----------------------------------------------------------------------------- driver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1_000_000, help="vectors (default 1,000,000)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--queries-file", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - set(METHODS)
    if unknown:
        ap.error(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        data = synthetic(args.n, args.seed)
        queries = synthetic(args.queries, args.seed + 1)
        np.save(tmp / "data.npy", data)
        np.save(tmp / "queries.npy", queries)
        truth = exact_top(data, queries, args.k)
        del data
        print(f"{args.n:,} vectors x {DIM}, {args.queries} queries, top {args.k} "
              f"(data and exact answers in {time.perf_counter() - t0:.1f}s)", flush=True)
        print(f"{'method':<12} {'build s':>9} {'memory MB':>10} {'p50 ms':>8} {'p95 ms':>8} {'recall@10':>10}", flush=True)
        rows = []
        for m in methods:
            work = tmp / m
            work.mkdir()
            out = subprocess.run([sys.executable, __file__, "--worker", m, "--data", str(tmp / "data.npy"),
                                  "--queries-file", str(tmp / "queries.npy"), "--workdir", str(work), "-k", str(args.k)],
                                 capture_output=True, text=True, env={**os.environ})
            if out.returncode != 0:
                print(f"{m:<12} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            recall = float(np.mean([len(set(got) & set(want.tolist())) / args.k for got, want in zip(r["ids"], truth)]))
            lat = sorted(r["lat"])
            row = {"method": m, "n": args.n, "build_s": round(r["build_s"], 2), "mem_mb": round(r["mem_mb"], 1),
                   "p50_ms": round(statistics.median(lat), 3), "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 3),
                   "recall_at_10": round(recall, 4), **({"milvus_index": r["notes"]} if r["notes"] else {})}
            rows.append(row)
            print(f"{m:<12} {row['build_s']:>9.1f} {row['mem_mb']:>10.0f} {row['p50_ms']:>8.2f} {row['p95_ms']:>8.2f} "
                  f"{row['recall_at_10']:>10.3f}" + (f"   {r['notes']}" if r["notes"] else ""), flush=True)
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
