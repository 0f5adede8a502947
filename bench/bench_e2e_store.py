"""End to end on both stores: every SQuAD paragraph through `qa index`, then SQuAD questions through `qa eval`.

    python bench/bench_e2e_store.py                                  # train + dev-42, 500 dev questions
    python bench/bench_e2e_store.py --questions 200 --stores faiss   # smaller, one backend
    python bench/bench_e2e_store.py --articles 20                    # a quick run (20 train articles + dev-42)

The corpus: every article of the SQuAD v1.1 training file and of the held-out dev file (``--squad-dir``,
default ``/work/shared/squad``; 442 + 42 articles, 20,792 paragraphs), one ``.txt`` document per article
(its paragraphs joined by a blank line; :mod:`qa.evaluation.open_squad`). The questions: a seeded sample of
``--questions`` questions of the **dev** articles only (the reader was trained on the training articles;
those are distractors here), with their gold spans mapped into the documents, written as an evaluation
set (``questions.jsonl``).

For each store (``--stores faiss,milvus``; milvus = Milvus Lite in-process, a ``.db`` file):

1. ``qa index --json`` into a fresh index under ``/usr/bin/time -v``: wall time, chunks, chunks/s, the
   process's peak resident memory (for Milvus Lite, its engine runs inside the process and is included);
2. ``qa eval questions.jsonl --json``: EM/F1, recall@k, citation validity, coverage, latency p50/p95 of
   the whole pipeline (retrieval + reader + verifier) over the big index, with peak memory again.

The stores run one after the other (never at once: two processes on two cores would slow each other), with
``OMP_NUM_THREADS`` as set by the caller (default: torch's). Prints one line per step, a table and a JSON
line; asserts nothing. docs/scaling.md has measured figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.evaluation.open_squad import build_open_setting, safe_title, write_corpus  # noqa: E402

PEAK_RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def timed(cmd: list[str], env: dict[str, str], log: Path) -> tuple[str, float, float]:
    """Run ``cmd`` under /usr/bin/time -v; (stdout, wall seconds, peak RSS in MB). Fails loudly."""
    t = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t
    log.write_text(out.stdout + "\n---- stderr ----\n" + out.stderr, encoding="utf-8")
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}); log: {log}\n{out.stderr[-3000:]}")
    m = PEAK_RSS.search(out.stderr)
    return out.stdout, wall, (int(m.group(1)) / 1024 if m else float("nan"))


def build_corpus(squad_dir: Path, folder: Path, questions_file: Path, questions: int, seed: int,
                 articles: int | None) -> dict:
    dev = build_open_setting(squad_dir / "squad-v1.1-dev-42.json", seed=seed, limit=questions)
    write_corpus(dev, folder)
    train = json.loads((squad_dir / "squad-v1.1-train.json").read_text(encoding="utf-8"))["data"]
    if articles is not None:
        train = train[:articles]
    paragraphs = sum(len(a["paragraphs"]) for a in train) + sum(
        1 for t in dev.documents.values() for _ in t.split("\n\n"))
    for art in train:
        text = "\n\n".join(p["context"] for p in art["paragraphs"])
        (folder / f"train-{safe_title(art['title'])}.txt").write_text(text, encoding="utf-8")
    with questions_file.open("w", encoding="utf-8") as f:
        for it in dev.items:
            f.write(json.dumps({"id": it.id, "question": it.question, "answers": list(it.answers),
                                "evidence": [{"document": e.document, "start": e.start, "end": e.end}
                                             for e in it.evidence], "type": "squad-dev"}, ensure_ascii=False) + "\n")
    return {"documents": len(dev.documents) + len(train), "paragraphs": paragraphs,
            "questions": len(dev.items), "bytes": sum(p.stat().st_size for p in folder.iterdir())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad-dir", type=Path, default=Path(os.environ.get("QA_SQUAD_DIR", "/work/shared/squad")))
    ap.add_argument("--questions", type=int, default=500, help="seeded sample of dev-42 questions (default 500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--articles", type=int, default=None, help="only the first N training articles (default: all)")
    ap.add_argument("--stores", default="faiss,milvus")
    ap.add_argument("--keep", type=Path, default=None, help="keep the work folder here (logs, indexes, reports)")
    args = ap.parse_args()

    qa = [sys.executable, "-c", "import sys; from qa.cli import main; sys.exit(main())"]
    base_env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "QA_ANSWER_CACHE_SIZE": "0"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        corpus, qfile = work / "corpus", work / "questions.jsonl"
        corpus.mkdir(exist_ok=True)
        info = build_corpus(args.squad_dir, corpus, qfile, args.questions, args.seed, args.articles)
        print(f"corpus: {info['documents']} documents, {info['paragraphs']} paragraphs, "
              f"{info['bytes'] / 1e6:.1f} MB; {info['questions']} dev-42 questions", flush=True)
        for store in [s.strip() for s in args.stores.split(",") if s.strip()]:
            env = {**base_env, "QA_STORE": store, "QA_CORPUS_DIR": str(corpus),
                   "QA_INDEX_DIR": str(work / f"index-{store}")}
            if store == "milvus":
                env["QA_MILVUS_URI"] = str(work / f"index-{store}" / "milvus.db")
            la0 = loadavg()
            out, wall, rss = timed([*qa, "index", "--json"], env, work / f"index-{store}.log")
            rep = json.loads(out)
            chunks = rep.get("chunks_embedded") or rep.get("chunks")
            row = {"store": store, "index_wall_s": round(wall, 1), "chunks": rep.get("chunks"),
                   "chunks_per_s": round(chunks / wall, 1), "index_peak_rss_mb": round(rss),
                   "load_before_index": la0}
            print(f"{store}: qa index {wall:.0f}s, {rep.get('chunks')} chunks, {chunks / wall:.1f} chunks/s "
                  f"(whole command), peak RSS {rss:.0f} MB, load {la0} -> {loadavg()}", flush=True)
            la0 = loadavg()
            out, wall, rss = timed([*qa, "eval", str(qfile), "--json", "--no-progress",
                                    "--out", str(work / f"report-{store}")], env, work / f"eval-{store}.log")
            ov = json.loads(out)["overall"]
            keep = ("exact_match", "f1", "recall@k", "citation_validity", "coverage", "auroc_correct", "latency_p50_ms",
                    "latency_p95_ms")
            row.update({k: ov.get(k) for k in keep})
            row.update({"eval_wall_s": round(wall, 1), "eval_peak_rss_mb": round(rss), "load_before_eval": la0})
            print(f"{store}: qa eval {wall:.0f}s, " + ", ".join(f"{k} {ov.get(k)}" for k in keep)
                  + f", peak RSS {rss:.0f} MB, load {la0} -> {loadavg()}", flush=True)
            rows.append(row)
    print("\n| store | chunks | qa index | chunks/s | peak RSS (index) | EM | F1 | recall@k | citations | coverage "
          "| AUROC | p50 | p95 | peak RSS (eval) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        r = {k: (round(v, 3 if k == "auroc_correct" else 1) if isinstance(v, float) else v) for k, v in r.items()}
        print(f"| {r['store']} | {r['chunks']} | {r['index_wall_s']} s | {r['chunks_per_s']} | {r['index_peak_rss_mb']} MB "
              f"| {r['exact_match']} | {r['f1']} | {r['recall@k']} | {r['citation_validity']} | {r['coverage']} "
              f"| {r['auroc_correct']} | {r['latency_p50_ms']} ms | {r['latency_p95_ms']} ms | {r['eval_peak_rss_mb']} MB |")
    print(json.dumps({"corpus": info, "rows": rows}))


if __name__ == "__main__":
    main()
