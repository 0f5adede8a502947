"""Vector stores on N synthetic normalised 384-d vectors: FAISS flat / HNSW / IVF and Milvus Lite.

    python bench/bench_store.py                      # N = 1,000,000 (needs ~1.5 GB per copy of the data)
    python bench/bench_store.py -n 100000 --queries 200 --methods faiss-flat,milvus-flat
    OMP_NUM_THREADS=2 python bench/bench_store.py -n 1000000 --methods faiss-ivf --nprobe 1,2,4,8,16,32

For each method, in a fresh subprocess (so memory is its own): build time (add + train/index, for
Milvus Lite the inserts, flush and the wait until it reports every row indexed), memory (resident set growth of the process over building,
the data itself excluded; Milvus Lite's engine runs inside the process, so its own footprint
counts too), search latency of single queries (p50, p95; top 10) and recall@10
against the exact top 10 (brute force in numpy). The vectors are 384-d like all-MiniLM-L6-v2's,
drawn around 2,000 random centres (so neighbours exist, as in real embeddings) and L2-normalised;
the queries are fresh draws around the same centres (``--query-centres other`` draws them around
other centres, far from every vector: what this script did before 2026-12-05, and why its HNSW/IVF
recall then looked low). Parameters: HNSW M=32, efConstruction=200 (``--hnsw-m``,
``--ef-construction``) searched at every ``--ef-search`` value; IVF nlist=4*sqrt(N) (``--nlist``)
searched at every ``--nprobe`` value; Milvus Lite FLAT (what qa.store.milvus_store uses) and HNSW
(M=32, efConstruction=200, ef=128). Builds use OMP_NUM_THREADS threads; searches use
``--search-threads`` (default 1: a server answers concurrent questions on its other cores).
For each approximate method it names the smallest setting reaching ``--target`` recall@10 (0.95).

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
METHODS = ("faiss-flat", "faiss-hnsw", "faiss-ivf", "milvus-flat", "milvus-hnsw")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def centres(seed: int, count: int = 2000) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, DIM), dtype=np.float32)


def synthetic(n: int, c: np.ndarray, seed: int) -> np.ndarray:
    """``n`` normalised draws around the rows of ``c`` (noise 0.6 per dimension)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), np.float32)
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        x = c[rng.integers(0, len(c), m)] + 0.6 * rng.standard_normal((m, DIM), dtype=np.float32)
        out[s:s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def lowrank(n: int, basis: np.ndarray, seed: int, noise: float) -> np.ndarray:
    """``n`` normalised points ``z @ basis + noise * e`` (``z`` standard normal in ``len(basis)``
    dimensions, ``e`` in all 384): no clusters, neighbours in a continuous low-dimensional space."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), np.float32)
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        x = rng.standard_normal((m, len(basis)), dtype=np.float32) @ basis
        x += noise * rng.standard_normal((m, DIM), dtype=np.float32)
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


def timed_search(search, queries: np.ndarray, k: int) -> tuple[list[list[int]], list[float]]:
    ids, lat = [], []
    for q in queries:
        t = time.perf_counter()
        found = search(q, k)
        lat.append((time.perf_counter() - t) * 1000)
        ids.append(found)
    return ids, lat


def run_method(method: str, data: np.ndarray, queries: np.ndarray, k: int, workdir: Path,
               opts: argparse.Namespace) -> tuple[float, float, list[dict], dict]:
    """(build seconds, resident MB grown over the build, one {"setting", "ids", "lat"} per search
    setting (ids and latency in ms per query), notes)."""
    n = len(data)
    base = rss_mb()
    if method.startswith("faiss"):
        import faiss

        t0 = time.perf_counter()
        if method == "faiss-flat":
            index = faiss.IndexFlatIP(DIM)
            index.add(data)
        elif method == "faiss-hnsw":
            index = faiss.IndexHNSWFlat(DIM, opts.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = opts.ef_construction
            index.add(data)
        else:
            nlist = opts.nlist or max(16, int(4 * n ** 0.5))
            quantizer = faiss.IndexFlatIP(DIM)
            index = faiss.IndexIVFFlat(quantizer, DIM, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)
            index.train(data[rng.choice(n, min(n, opts.train_per_list * nlist), replace=False)])
            index.add(data)
        build = time.perf_counter() - t0
        grown = rss_mb() - base
        faiss.omp_set_num_threads(opts.search_threads)

        def search(q: np.ndarray, kk: int) -> list[int]:
            return [int(x) for x in index.search(q.reshape(1, -1), kk)[1][0]]

        runs = []
        if method == "faiss-hnsw":
            settings = [("efSearch", int(v)) for v in opts.ef_search.split(",")]
        elif method == "faiss-ivf":
            settings = [("nprobe", int(v)) for v in opts.nprobe.split(",")]
        else:
            settings = [("exact", 0)]
        for name, value in settings:
            if name == "efSearch":
                index.hnsw.efSearch = value
            elif name == "nprobe":
                index.nprobe = value
            search(queries[0], k)  # warm
            ids, lat = timed_search(search, queries, k)
            runs.append({"setting": {name: value} if name != "exact" else {}, "ids": ids, "lat": lat})
        notes = {"nlist": index.nlist} if method == "faiss-ivf" else {}
        return build, grown, runs, notes

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

    def search(q: np.ndarray, kk: int) -> list[int]:
        r = client.search("bench", data=[q.tolist()], anns_field="vector", limit=kk, search_params=sp)
        return [int(h["id"]) for h in r[0]]

    ids, lat = timed_search(search, queries, k)
    client.close()
    return build, grown, [{"setting": {"ef": 128} if method == "milvus-hnsw" else {}, "ids": ids, "lat": lat}], notes


def worker(args: argparse.Namespace) -> None:
    data = np.load(args.data, mmap_mode=None)
    queries = np.load(args.queries_file)
    if args.worker.startswith("faiss"):
        import faiss  # noqa: F401 - imported before measuring: the library is not the index
    else:
        import pymilvus  # noqa: F401
    build, grown, runs, notes = run_method(args.worker, data, queries, args.k, Path(args.workdir), args)
    print(json.dumps({"build_s": build, "mem_mb": grown, "runs": runs, "notes": notes}))


# ----------------------------------------------------------------------------- driver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1_000_000, help="vectors (default 1,000,000)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--query-centres", choices=["same", "other"], default="same",
                    help="draw the queries around the data's centres (default) or around other centres")
    ap.add_argument("--kind", dest="data_kind", choices=["clusters", "lowrank"], default="clusters",
                    help="clusters: around 2,000 centres (default; well separated: easy for IVF and HNSW); "
                         "lowrank: a --intrinsic-dim Gaussian mapped into 384-d plus noise (no clusters; harder)")
    ap.add_argument("--intrinsic-dim", type=int, default=32, help="--data lowrank: dimensions of the latent Gaussian")
    ap.add_argument("--lowrank-noise", type=float, default=0.05,
                    help="--data lowrank: isotropic noise per dimension (the basis rows have norm 1)")
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--ef-search", default="16,32,64,128,256,512", help="HNSW efSearch values to search with")
    ap.add_argument("--nlist", type=int, default=0, help="IVF lists (default 4*sqrt(N))")
    ap.add_argument("--train-per-list", type=int, default=50, help="IVF training sample: this many vectors per list")
    ap.add_argument("--nprobe", default="1,2,4,8,16,32,64,128", help="IVF nprobe values to search with")
    ap.add_argument("--search-threads", type=int, default=1, help="FAISS threads while searching (default 1)")
    ap.add_argument("--target", type=float, default=0.95, help="recall@10 to reach (default 0.95)")
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
        if args.data_kind == "lowrank":
            basis = np.random.default_rng(args.seed).standard_normal((args.intrinsic_dim, DIM), dtype=np.float32)
            basis /= np.linalg.norm(basis, axis=1, keepdims=True)
            data = lowrank(args.n, basis, args.seed, args.lowrank_noise)
            queries = lowrank(args.queries, basis, args.seed + 1, args.lowrank_noise)
        else:
            c = centres(args.seed)
            data = synthetic(args.n, c, args.seed)
            queries = synthetic(args.queries, c if args.query_centres == "same" else centres(args.seed + 1),
                                args.seed + 1)
        np.save(tmp / "data.npy", data)
        np.save(tmp / "queries.npy", queries)
        truth = exact_top(data, queries, args.k)
        top_sim = float(np.mean([queries[i] @ data[truth[i]].T for i in range(len(queries))]))
        del data
        kind = (f"low-rank (intrinsic dim {args.intrinsic_dim}, noise {args.lowrank_noise})"
                if args.data_kind == "lowrank" else "clustered (2,000 centres)")
        print(f"{args.n:,} {kind} vectors x {DIM}, {args.queries} queries, top {args.k} "
              f"(data and exact answers in {time.perf_counter() - t0:.1f}s; mean cosine of a query to its "
              f"true top {args.k}: {top_sim:.3f}); load average {' '.join(open('/proc/loadavg').read().split()[:3])}",
              flush=True)
        print(f"{'method':<12} {'setting':<14} {'build s':>9} {'memory MB':>10} {'p50 ms':>8} {'p95 ms':>8} "
              f"{'recall@10':>10}", flush=True)
        rows, best = [], {}
        passthrough = ["--hnsw-m", str(args.hnsw_m), "--ef-construction", str(args.ef_construction),
                       "--ef-search", args.ef_search, "--nlist", str(args.nlist), "--train-per-list",
                       str(args.train_per_list), "--nprobe", args.nprobe, "--search-threads", str(args.search_threads)]
        for m in methods:
            work = tmp / m
            work.mkdir()
            out = subprocess.run([sys.executable, __file__, "--worker", m, "--data", str(tmp / "data.npy"),
                                  "--queries-file", str(tmp / "queries.npy"), "--workdir", str(work), "-k", str(args.k),
                                  *passthrough], capture_output=True, text=True, env={**os.environ})
            if out.returncode != 0:
                print(f"{m:<12} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            for run in r["runs"]:
                recall = float(np.mean([len(set(got) & set(want.tolist())) / args.k
                                        for got, want in zip(run["ids"], truth)]))
                lat = sorted(run["lat"])
                row = {"method": m, "n": args.n, "setting": run["setting"], "build_s": round(r["build_s"], 2),
                       "mem_mb": round(r["mem_mb"], 1), "p50_ms": round(statistics.median(lat), 3),
                       "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 3), "recall_at_10": round(recall, 4),
                       **({"notes": r["notes"]} if r["notes"] else {})}
                rows.append(row)
                if m not in best and recall >= args.target:
                    best[m] = row
                setting = ",".join(f"{k2}={v}" for k2, v in run["setting"].items()) or "-"
                print(f"{m:<12} {setting:<14} {row['build_s']:>9.1f} {row['mem_mb']:>10.0f} {row['p50_ms']:>8.2f} "
                      f"{row['p95_ms']:>8.2f} {row['recall_at_10']:>10.3f}" + (f"   {r['notes']}" if r["notes"] else ""),
                      flush=True)
        for m in methods:
            if m in best:
                b = best[m]
                print(f"{m}: smallest setting with recall@10 >= {args.target}: {b['setting'] or 'exact'} "
                      f"(recall {b['recall_at_10']:.3f}, p50 {b['p50_ms']:.2f} ms)")
            elif any(r2["method"] == m for r2 in rows):
                print(f"{m}: no setting tried reached recall@10 >= {args.target}")
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
