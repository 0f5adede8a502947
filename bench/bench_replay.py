"""Everything after retrieval, replayed on another machine: the reader, decoding, aggregation and the verifier.

    python bench/bench_replay.py --dump runs/replay.json      # here: index seeds/ (temporary), ask, save passages
    python bench/bench_replay.py --replay runs/replay.json [--device auto|cpu|cuda] [--precision auto|bf16|fp32]
        [--concurrency 1 8 32 64] [--batch-windows 64] [--json OUT.json]

`--dump` asks the seed questions through the whole pipeline and saves, for each, the passages the reader was
given (chunks, offsets, retrieval ranks and dense/BM25 scores: the verifier's features), the documents they
come from, the answer served here, and the medians of the retrieval stages. `--replay` needs only the reader
folder (models/reader) and this file: no index, no embedder, no FAISS, no web server. It is the way to time
the service's GPU path on a lent machine whose image lacks the service's other packages (bench/gpu_replay.sh).

Printed (figures only; nothing asserts a time):
- one question at a time: p50/p95 of `reader.run` (every stage after retrieval), its stage medians;
- answers against the dump's (the same top answer? score difference) and the answerable questions' EM/F1
  as served, so a faster device that changes answers shows it;
- questions/s with N threads asking at once, without and with the cross-request batcher
  (`QA_READER_BATCH_WINDOWS`), p50/p95 latency at each level;
- a stand-in for the query embedding on this device: an encoder of the embedder's shape (6 layers, 384
  wide: the reader's encoder, which was trained from the same MiniLM) over the question, mean-pooled. The
  shipped embedder's weights are not needed to time it; its vectors are not used.
- an estimated ask: replay p50 + embedding stand-in p50 + the dump's retrieval stage medians (FAISS, BM25,
  fusion, measured on the dumping machine's CPU).

The replay tokenises passages at query time (the service reads tokens stored with the index; ~1-2 ms less).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RETRIEVAL_STAGES = ("check_question", "embed_query", "dense_search", "bm25", "fusion")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


# -- the file ---------------------------------------------------------------------------------------------------
def passage_to_json(p) -> dict:
    c = p.chunk
    return {"document": c.document, "start": c.start, "end": c.end, "text": c.text, "id": c.id,
            "score": p.score, "rank": p.rank, "scores": dict(p.scores)}


def passage_from_json(d: dict):
    from qa.types import Chunk, Passage

    return Passage(Chunk(d["document"], d["start"], d["end"], d["text"], id=d.get("id", "")),
                   score=d["score"], rank=d["rank"], scores=dict(d.get("scores", {})))


def top_of(out) -> dict:
    """What a replay compares: the served top answer (or the best guess when abstaining) and its score."""
    best = out.answers[0] if out.answers else out.best_guess
    return {"answer_found": bool(out.answer_found), "text": best.text if best is not None else None,
            "score": float(best.score) if best is not None else None}


def dump(path: Path, questions_file: Path, k: int | None) -> None:
    from qa import timing
    from qa.config import Settings
    from qa.evaluation.dataset import load_eval_set
    from qa.pipeline import QAPipeline

    items = load_eval_set(questions_file)
    with tempfile.TemporaryDirectory() as tmp:
        pipe = QAPipeline(Settings(index_dir=Path(tmp) / "index", answer_cache_size=0)).warm_up()
        reader_run = pipe.reader.run
        given: list = []

        def capture(question, passages, document_text, **kw):
            given.append(list(passages))
            out = reader_run(question, passages, document_text, **kw)
            given.append(out)
            return out

        pipe.reader.run = capture
        pipe.ask(items[0].question, top_k=k)  # warm
        given.clear()
        records, documents = [], {}
        stages: dict[str, list[float]] = {s: [] for s in RETRIEVAL_STAGES}
        for it in items:
            with timing.collect() as st:
                pipe.ask(it.question, top_k=k)
            for s in RETRIEVAL_STAGES:
                stages[s].append(st.get(s, 0.0) * 1000)
            passages, out = given[-2], given[-1]
            for p in passages:
                documents.setdefault(p.chunk.document, pipe.document_text(p.chunk.document))
            records.append({"question": it.question, "answers": list(it.answers),
                            "passages": [passage_to_json(p) for p in passages], "served": top_of(out)})
        data = {"made_on": {"machine": platform.processor() or platform.machine(), "reader": pipe.reader.runtime,
                            "k": k or pipe.settings.top_k},
                "retrieval_ms": {s: statistics.median(v) for s, v in stages.items()},
                "documents": documents, "questions": records}
    path.write_text(json.dumps(data))
    print(f"wrote {len(records)} questions, {len(documents)} documents to {path} "
          f"(reader here: {data['made_on']['reader']})")


# -- the replay -------------------------------------------------------------------------------------------------
def make_reader(device: str, precision: str, batch_windows: int = 0, wait_ms: float = 2.0):
    from qa.reader.reader import ExtractiveReader

    reader = ExtractiveReader(ROOT / "models" / "reader", precision=precision, device=device,
                              batch_windows=batch_windows, batch_wait_ms=wait_ms, pretokenised=False)
    reader.warm_up()
    return reader


def answer_quality(items: list[dict], tops: list[dict]) -> dict:
    """EM/F1 of the top answers as served, over the answerable questions (an abstention scores 0)."""
    from qa.evaluation.metrics import answer_em_f1

    em, f1, n = 0.0, 0.0, 0
    for it, top in zip(items, tops):
        if not it["answers"]:
            continue
        n += 1
        if top["answer_found"]:
            e, f = answer_em_f1(top["text"] or "", it["answers"])
            em, f1 = em + e, f1 + f
    return {"answerable": n, "em": round(100 * em / max(n, 1), 1), "f1": round(100 * f1 / max(n, 1), 1)}


def run_one(reader, item: dict, documents: dict):
    passages = [passage_from_json(p) for p in item["passages"]]
    return reader.run(item["question"], passages, documents.__getitem__, max_answers=3)


def concurrent_level(reader, items: list[dict], documents: dict, clients: int, asks: int) -> dict:
    """`asks` questions (the set repeated as needed) from `clients` threads at once: questions/s and latency."""
    order = [items[i % len(items)] for i in range(asks)]
    latencies: list[float] = []
    lock = threading.Lock()

    def one(item):
        t = time.perf_counter()
        run_one(reader, item, documents)
        dt = (time.perf_counter() - t) * 1000
        with lock:
            latencies.append(dt)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, order))
    wall = time.perf_counter() - t0
    return {"clients": clients, "asks": asks, "per_s": round(asks / wall, 1),
            "p50_ms": round(pct(latencies, 0.5), 2), "p95_ms": round(pct(latencies, 0.95), 2)}


def embed_stand_in(device: str, questions: list[str], rounds: int) -> float:
    """p50 ms of a question through an encoder of the embedder's shape on `device` (see the module doc)."""
    import torch
    import transformers
    from transformers import AutoModel, AutoTokenizer

    folder = ROOT / "models" / "reader"
    tok = AutoTokenizer.from_pretrained(str(folder))
    transformers.logging.set_verbosity_error()  # the span head is left out and a pooler made up: both unused
    enc = AutoModel.from_pretrained(str(folder)).eval().to(device)
    times = []
    with torch.inference_mode():
        for r in range(rounds + 1):
            for q in questions:
                t = time.perf_counter()
                x = tok(q, return_tensors="pt", truncation=True, max_length=128).to(device)
                h = enc(**x).last_hidden_state
                v = (h * x["attention_mask"].unsqueeze(-1)).sum(1) / x["attention_mask"].sum(1, keepdim=True)
                v = torch.nn.functional.normalize(v, dim=-1).cpu()
                if r:  # the first round warms up
                    times.append((time.perf_counter() - t) * 1000)
    return pct(times, 0.5)


def replay(args) -> int:
    import torch

    from qa import timing

    data = json.loads(args.replay.read_text())
    items, documents = data["questions"], data["documents"]
    if args.limit:
        items = items[: args.limit]
    reader = make_reader(args.device, args.precision)
    gpu = torch.cuda.get_device_name(0) if reader.device == "cuda" else None
    print(f"device: {reader.device}{' (' + gpu + ')' if gpu else ''}; reader runtime {reader.runtime}; "
          f"packed windows {'on' if reader.packed else 'off'}; torch {torch.__version__}; "
          f"CPU threads {torch.get_num_threads()}; {len(items)} questions")
    figures: dict = {"device": reader.device, "gpu": gpu, "runtime": reader.runtime, "packed": bool(reader.packed),
                     "torch": torch.__version__, "questions": len(items), "dump": data["made_on"]}
    for it in items[:3]:
        run_one(reader, it, documents)  # warm (CUDA kernels, allocator)

    # one question at a time
    times, tops = [], []
    stages: dict[str, list[float]] = {}
    for r in range(args.rounds):
        for it in items:
            with timing.collect() as st:
                t = time.perf_counter()
                out = run_one(reader, it, documents)
                times.append((time.perf_counter() - t) * 1000)
            for s, v in st.items():
                stages.setdefault(s, []).append(v * 1000)
            if r == 0:
                tops.append(top_of(out))
    same = sum(a["text"] == b["served"]["text"] and a["answer_found"] == b["served"]["answer_found"]
               for a, b in zip(tops, items))
    diffs = [abs(a["score"] - b["served"]["score"]) for a, b in zip(tops, items)
             if a["score"] is not None and b["served"]["score"] is not None]
    q_here, q_dump = answer_quality(items, tops), answer_quality(items, [it["served"] for it in items])
    p50, p95 = pct(times, 0.5), pct(times, 0.95)
    print(f"after retrieval, one question at a time ({len(times)} asks): p50 {p50:.2f} ms   p95 {p95:.2f} ms   "
          f"mean {statistics.mean(times):.2f} ms")
    med = {s: round(statistics.median(v), 2) for s, v in stages.items() if any(v)}
    print("  stage medians (ms): " + ", ".join(f"{s} {v}" for s, v in med.items()))
    print(f"answers: the same top answer as the dump on {same} of {len(items)} questions; score difference "
          f"median {statistics.median(diffs) if diffs else 0:.4f}, max {max(diffs) if diffs else 0:.4f}")
    print(f"answerable questions as served: EM {q_here['em']} / F1 {q_here['f1']} here, "
          f"EM {q_dump['em']} / F1 {q_dump['f1']} in the dump ({q_here['answerable']} questions)")
    figures.update(single={"p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "stages_ms": med},
                   same_top_answer=same, quality=q_here, quality_dump=q_dump)

    # several clients at once, without and with the cross-request batcher
    asks = args.asks or 2 * len(items)
    levels = []
    batched = make_reader(args.device, args.precision, args.batch_windows, args.batch_wait_ms) \
        if args.batch_windows else None
    for clients in args.concurrency:
        for name, rdr in (("plain", reader), (f"batched {args.batch_windows}", batched)):
            if rdr is None:
                continue
            lv = concurrent_level(rdr, items, documents, clients, asks)
            lv["mode"] = name
            levels.append(lv)
            print(f"{clients:>3} clients, {name:<12}: {lv['per_s']:8.1f} questions/s   p50 {lv['p50_ms']:8.2f} ms   "
                  f"p95 {lv['p95_ms']:8.2f} ms   ({asks} asks)")
    figures["concurrency"] = levels

    emb = embed_stand_in(reader.device, [it["question"] for it in items], 1)
    retrieval = data["retrieval_ms"]
    rest = sum(v for s, v in retrieval.items() if s != "embed_query")
    print(f"query embedding stand-in on {reader.device}: p50 {emb:.2f} ms (dump's CPU: "
          f"{retrieval.get('embed_query', 0):.2f} ms); FAISS + BM25 + fusion on the dump's CPU: {rest:.2f} ms")
    print(f"estimated ask p50 on this device: {p50 + emb + rest:.1f} ms (replay p50 + embedding + retrieval)")
    figures.update(embed_stand_in_ms=round(emb, 2), retrieval_dump_ms=retrieval,
                   estimated_ask_p50_ms=round(p50 + emb + rest, 1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1))
        print(f"figures written to {args.json}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", type=Path)
    ap.add_argument("--replay", type=Path)
    ap.add_argument("--questions", type=Path, default=ROOT / "eval" / "seeds_qa.jsonl")
    ap.add_argument("-k", type=int, default=None)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="replay the first N questions only")
    ap.add_argument("--concurrency", type=int, nargs="*", default=[1, 8, 32])
    ap.add_argument("--asks", type=int, default=0, help="questions per concurrency level (default: 2x the set)")
    ap.add_argument("--batch-windows", type=int, default=64, help="batcher size for the batched runs (0: none)")
    ap.add_argument("--batch-wait-ms", type=float, default=2.0)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    if args.dump:
        dump(args.dump, args.questions, args.k)
        return 0
    if args.replay:
        return replay(args)
    ap.error("give --dump FILE or --replay FILE")
    return 2


if __name__ == "__main__":
    sys.exit(main())
