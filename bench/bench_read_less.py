"""Quality (seed EM/F1) and cost (context tokens through the model) of read-less variants, one process.

    PREC=fp32|auto python bench/bench_read_less.py base k=4 casc:1:0.9 focus:128 ...   (docs/benchmarks.md, #15)
Figures only: nothing here asserts a time.
"""
import sys as _sys
from pathlib import Path as _Path
_ROOT = _Path(__file__).resolve().parent.parent
_sys.path.insert(0, str(_ROOT))
import os as _os
_os.chdir(_ROOT)

import os, re, sys, tempfile, time, statistics
from dataclasses import replace
from pathlib import Path
from qa.config import Settings
from qa.pipeline import QAPipeline
from qa.evaluation.dataset import load_eval_set
from qa.evaluation.metrics import aggregate, score_item
from qa.types import Chunk, Passage

items = load_eval_set(Path("eval/seeds_qa.jsonl"))
tmp = tempfile.mkdtemp()
pipe = QAPipeline(Settings(index_dir=Path(tmp) / "index", answer_cache_size=0,
                           reader_precision=os.environ.get("PREC", "fp32"))).warm_up()
R = pipe.reader
print("runtime", R.runtime, flush=True)
cost = {"tok": 0, "win": 0}
orig = R._forward_rows
def counting(rows, **kw):
    cost["tok"] += sum(len(r[0]) for r in rows); cost["win"] += len(rows)
    return orig(rows, **kw)
R._forward_rows = counting

STOP = set("the a an of in on at to for and or is was were are be been by with from as that this which who what when where why how did do does it its their his her they he she after before about into than".split())
def words(t): return [w for w in re.findall(r"\w+", t.lower()) if w not in STOP]

def focus(q, passages, n_tokens):
    """Each passage cut to ~n_tokens reader tokens around its sentence with most question words."""
    qw = set(words(q)); out = []
    tok = pipe.store.reader_tokens([p.chunk for p in passages], R.tokenizer_fingerprint)
    for p, t in zip(passages, tok):
        c = p.chunk
        if len(t) <= n_tokens: out.append(p); continue
        sents = [(m.start(), m.end()) for m in re.finditer(r"[^.!?\n]+[.!?]*", c.text)]
        best = max(sents, key=lambda se: len(qw & set(words(c.text[se[0]:se[1]]))))
        mid = (best[0] + best[1]) // 2
        offs = t.offsets
        centre = int(((offs[:, 0] + offs[:, 1]) // 2 < mid).sum())
        a = max(0, min(centre - n_tokens // 2, len(t) - n_tokens)); b = a + n_tokens
        s, e = int(offs[a, 0]), int(offs[b - 1, 1])
        out.append(Passage(Chunk(c.document, c.start + s, c.start + e, c.text[s:e], id=c.id + f"#{s}"), p.score, p.rank))
    return out

def run(name, k=5, first=0, by="span", bar=0.9, focus_n=0):
    R.first_passages, R.early_exit_by, R.early_exit_score = first, by, bar; pipe.settings = pipe.settings
    cost["tok"] = cost["win"] = 0
    scored, times, exits = [], [], 0
    for it in items:
        t0 = time.perf_counter()
        if focus_n:
            state = pipe._require()
            ps = state.retriever.run(it.question, k)
            ps = focus(it.question, ps, focus_n)
            out = R.run(it.question, ps, state.store.document_text, max_answers=3)
            res = pipe._result(it.question, ps, out, state, t0, t0, time.perf_counter())
        else:
            res = pipe.ask(it.question, top_k=k)
        times.append((time.perf_counter() - t0) * 1000)
        exits += res.passages_read < len(res.passages)
        scored.append(score_item(it, res, pipe.document_text, times[-1]))
    m = aggregate(scored, 5)
    print(f"{name:38s} EM {m['exact_match']:5.1f} F1 {m['f1']:5.1f} F1ans {m['f1_answerable']:5.1f} cit {m['citation_validity']:5.1f} "
          f"answered {m['answered']:3d} exits {exits:3d} ctx-tokens/q {cost['tok']/len(items):6.0f} win/q {cost['win']/len(items):4.2f} "
          f"p50 {statistics.median(times):6.1f} ms AUROC {m.get('auroc_correct') or 0:.3f} ECE {m.get('ece') or 0:.3f} noans-rec {m.get('no_answer_recall') or 0:.1f}", flush=True)

V = sys.argv[1:] or ["base"]
for v in V:
    if v == "base": run("base k=5")
    elif v.startswith("k="): run(v, k=int(v[2:]))
    elif v.startswith("casc"):  # casc:first:bar
        _, f, b = v.split(":"); run(f"cascade conf first={f} bar={b}", first=int(f), by="confidence", bar=float(b))
    elif v.startswith("focus"):
        n = int(v.split(":")[1]); run(f"focus {n} tokens", focus_n=n)
