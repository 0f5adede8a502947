"""`qa index --ray` throughput: chunks/s with 1 vs 2 embedding workers (and 1 worker with 2 threads).

    python bench/bench_ray_index.py                                   # 3,000 SQuAD paragraphs, 2 rounds
    python bench/bench_ray_index.py --paragraphs 6000 --rounds 3 --configs 1x1,2x1,1x2

A corpus of ``--paragraphs`` SQuAD v1.1 training paragraphs (``--squad``, default
/work/shared/squad/squad-v1.1-train.json), ``--per-file`` paragraphs to a .txt file, is written to a
temporary folder; then each configuration ``WxT`` (W embedding workers with T torch threads each, on a
local Ray with W*T CPUs: ``qa index --ray --ray-cpus W*T --ray-workers W --ray-threads T``) indexes it
into a fresh temporary FAISS index, the configurations interleaved round by round (so a busy machine
slows all of them alike). Each run prints the CLI's ``Ray:`` line: chunks/s over the embedding (first
batch's start to last batch's end, across workers: Ray start-up and model loading excluded) and over the
whole pipeline after ``ray.init``; the load average (``/proc/loadavg``) is recorded before and after each
run. ``--plain`` adds a plain ``qa index`` run per round (no Ray; torch's default threads).

Prints one line per run, a summary (median per configuration, speed-up of each over 1x1) and a JSON
line; asserts nothing. docs/scaling.md has measured figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAY_LINE = re.compile(r"Ray: (\d+) embedding worker\(s\) x (\d+) torch thread\(s\) on (\d+) CPU\(s\); (\d+) chunks "
                      r"embedded in ([\d.]+)s \(([\d.]+) chunks/s.*pipeline ([\d.]+)s after ray.init \(([\d.]+) "
                      r"chunks/s\); ray.init ([\d.]+)s")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def write_corpus(squad: Path, root: Path, paragraphs: int, per_file: int) -> int:
    data = json.loads(squad.read_text(encoding="utf-8"))["data"]
    paras = [p["context"] for art in data for p in art["paragraphs"]][:paragraphs]
    for i in range(0, len(paras), per_file):
        (root / f"squad-{i // per_file:05d}.txt").write_text("\n\n".join(paras[i:i + per_file]) + "\n", encoding="utf-8")
    return len(paras)


def run(cmd: list[str], env: dict[str, str]) -> tuple[str, float]:
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout + out.stderr, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", type=Path, default=Path("/work/shared/squad/squad-v1.1-train.json"))
    ap.add_argument("--paragraphs", type=int, default=3000)
    ap.add_argument("--per-file", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--configs", default="1x1,2x1,1x2", help="WxT: W workers with T threads each (default 1x1,2x1,1x2)")
    ap.add_argument("--plain", action="store_true", help="also a plain `qa index` run per round")
    args = ap.parse_args()
    configs = [tuple(int(x) for x in c.split("x")) for c in args.configs.split(",") if c.strip()]

    qa = [sys.executable, "-c", "import sys; from qa.cli import main; sys.exit(main())"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("OMP_NUM_THREADS", None)  # the threads are set per worker (--ray-threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        tmp = Path(tmp)
        corpus = tmp / "corpus"
        corpus.mkdir()
        n = write_corpus(args.squad, corpus, args.paragraphs, args.per_file)
        print(f"{n} SQuAD paragraphs in {len(list(corpus.glob('*.txt')))} files; configurations "
              f"{args.configs}{' + plain' if args.plain else ''}, {args.rounds} round(s)", flush=True)
        for rnd in range(args.rounds):
            plan = [("ray", w, t) for w, t in configs] + ([("plain", 0, 0)] if args.plain else [])
            if rnd % 2:  # alternate the order, so no configuration always runs first
                plan.reverse()
            for kind, w, t in plan:
                index = tmp / f"index-{rnd}-{kind}-{w}x{t}"
                e = {**env, "QA_CORPUS_DIR": str(corpus), "QA_INDEX_DIR": str(index)}
                before = loadavg()
                if kind == "ray":
                    text, wall = run(qa + ["index", "--ray", "--ray-cpus", str(w * t), "--ray-workers", str(w),
                                           "--ray-threads", str(t), str(corpus)], e)
                    m = RAY_LINE.search(text)
                    if not m:
                        raise SystemExit(f"no Ray: line in\n{text}")
                    row = {"config": f"{w}x{t}", "round": rnd, "chunks": int(m[4]), "embed_s": float(m[5]),
                           "chunks_per_s": float(m[6]), "pipeline_s": float(m[7]),
                           "pipeline_chunks_per_s": float(m[8]), "ray_init_s": float(m[9])}
                else:
                    text, wall = run(qa + ["index", str(corpus)], e)
                    chunks = int(re.search(r"Chunks: (\d+)", text)[1])
                    row = {"config": "plain", "round": rnd, "chunks": chunks, "embed_s": None, "chunks_per_s": None,
                           "pipeline_s": None, "pipeline_chunks_per_s": None, "ray_init_s": None}
                row.update({"wall_s": round(wall, 1), "wall_chunks_per_s": round(row["chunks"] / wall, 1),
                            "load_before": before, "load_after": loadavg()})
                rows.append(row)
                print(json.dumps(row), flush=True)

    print(f"\n{'config':<7} {'chunks/s (embedding)':>21} {'speed-up':>9} {'chunks/s (pipeline)':>20} "
          f"{'chunks/s (wall)':>16}")
    base = None
    for cfg in [f"{w}x{t}" for w, t in configs] + (["plain"] if args.plain else []):
        rs = [r for r in rows if r["config"] == cfg]
        wall = statistics.median(r["wall_chunks_per_s"] for r in rs)
        if cfg == "plain":
            print(f"{cfg:<7} {'-':>21} {'-':>9} {'-':>20} {wall:>16.1f}")
            continue
        emb = statistics.median(r["chunks_per_s"] for r in rs)
        pipe = statistics.median(r["pipeline_chunks_per_s"] for r in rs)
        base = base or (emb if cfg == "1x1" else None)
        print(f"{cfg:<7} {emb:>21.1f} {(f'{emb / base:.2f}x' if base else '-'):>9} {pipe:>20.1f} {wall:>16.1f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
