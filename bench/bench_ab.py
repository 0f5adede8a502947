"""Per-question interleaved A/B in one process (robust to the machine's changing load): for each seed question,
the configurations in rotating order. 'before' = passages tokenised at query time and every passage read (the
code path of baced1b); 'after' = stored tokens (default); 'after+cascade' = stored tokens + QA_READER_FIRST_PASSAGES=1,
QA_READER_EARLY_EXIT_BY=confidence, score 0.9.

    python bench/bench_ab.py [ROUNDS]   (AVX2-emulated: ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 QA_READER_PRECISION=fp32)
Figures only: nothing here asserts a time.
"""
import sys as _sys
from pathlib import Path as _Path
_ROOT = _Path(__file__).resolve().parent.parent
_sys.path.insert(0, str(_ROOT))
import os as _os
_os.chdir(_ROOT)

import os, statistics, sys, tempfile, time
from pathlib import Path
from qa import timing
from qa.config import Settings
from qa.pipeline import QAPipeline
from qa.evaluation.dataset import load_eval_set
from qa.evaluation.metrics import aggregate, score_item
items = load_eval_set(Path("eval/seeds_qa.jsonl"))
pipe = QAPipeline(Settings(index_dir=Path(tempfile.mkdtemp()) / "index", answer_cache_size=0)).warm_up()
R = pipe.reader
import torch
print(f"runtime {R.runtime}, torch capability {torch.backends.cpu.get_cpu_capability()}, threads {torch.get_num_threads()}")
CONF = {"before": dict(pretokenised=False, first_passages=0, early_exit_by="span"),
        "after": dict(pretokenised=True, first_passages=0, early_exit_by="span"),
        "after+cascade": dict(pretokenised=True, first_passages=1, early_exit_by="confidence")}
names = list(CONF)
tot = {n: [] for n in names}; tok = {n: [] for n in names}; fwd = {n: [] for n in names}; scored = {n: [] for n in names}
pipe.ask(items[0].question)
loads = [os.getloadavg()[0]]
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1
for rnd in range(rounds):
    for i, it in enumerate(items):
        order = names[i % 3:] + names[: i % 3]
        for n in order:
            for k, v in CONF[n].items():
                setattr(R, k, v)
            with timing.collect() as st:
                t0 = time.perf_counter(); r = pipe.ask(it.question); dt = (time.perf_counter() - t0) * 1000
            tot[n].append(dt); tok[n].append(st.get("reader_tokenise", 0) * 1000); fwd[n].append(st.get("reader_forward", 0) * 1000)
            if rnd == 0:
                scored[n].append(score_item(it, r, pipe.document_text, dt))
        if i % 40 == 0:
            loads.append(os.getloadavg()[0])
loads.append(os.getloadavg()[0])
p95 = lambda v: sorted(v)[min(len(v) - 1, round(0.95 * (len(v) - 1)))]
print(f"load average (1 min) during the run: {min(loads):.2f}-{max(loads):.2f}")
b = statistics.median(tot["before"])
for n in names:
    m = aggregate(scored[n], 5)
    print(f"{n:14s} ask p50 {statistics.median(tot[n]):7.1f} ms  p95 {p95(tot[n]):7.1f} ms  p50/before {statistics.median(tot[n])/b:.3f}  "
          f"reader_tokenise p50 {statistics.median(tok[n]):5.2f} ms  reader_forward p50 {statistics.median(fwd[n]):6.1f} ms  "
          f"EM {m['exact_match']:.1f} F1 {m['f1']:.1f} AUROC {m.get('auroc_correct') or 0:.3f} cit {m['citation_validity']:.1f}")
