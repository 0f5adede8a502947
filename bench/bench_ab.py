"""Per-question interleaved A/B in one process (robust to the machine's changing load): for each seed question,
the configurations in rotating order. 'every passage' = the default (stored tokens, every retrieved passage read);
'cascade BAR' = QA_READER_FIRST_PASSAGES=1, QA_READER_EARLY_EXIT_BY=confidence, QA_READER_EARLY_EXIT_SCORE=BAR, the
first step scored by the verifier's first-passages model; 'cascade BAR, full model' = the same scored by the full
model (the cascade before that model existed); 'cascade Np BAR' (--cascades N:BAR[:VERIFIER]) = N passages first,
the first step scored by VERIFIER's first-passages model; --backends torch openvino runs each configuration with each
reader backend (QA_READER_BACKEND); --packed adds, for the torch backend, a twin of each configuration whose windows
run unpadded (QA_READER_PACKED, qa/reader/packed.py); --readers NAME=DIR runs each configuration with another
reader folder too (its own weights and verifier: e.g. a pruned reader against the shipped one); --precisions P runs
each configuration with the shipped reader in precision P too (QA_READER_PRECISION, e.g. int8-torch); 'tokenise at query
time' (--with-query-time) = every passage, passages tokenised at query time (the code path of baced1b).

    python bench/bench_ab.py [--rounds N] [--bars 0.7 0.8 0.9] [--full-model-bar 0.9] [--with-query-time]
        [--backends torch openvino] [--packed] [--cascades 2:0.7:runs/v.json ...] [--readers pruned=runs/p/reader]
        [--precisions int8-torch]
    (AVX2-emulated: ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 QA_READER_PRECISION=fp32)
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
import argparse
ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=1)
ap.add_argument("--bars", type=float, nargs="*", default=[0.7, 0.8])
ap.add_argument("--full-model-bar", type=float, nargs="*", default=[0.9])
ap.add_argument("--with-query-time", action="store_true")
ap.add_argument("--backends", nargs="*", default=[R.backend],
                help="reader backends to compare (torch, openvino): each configuration runs on each")
ap.add_argument("--cascades", nargs="*", default=[], metavar="N:BAR[:VERIFIER]",
                help="more cascades: read the best N passages first, exit at BAR, the first step scored by the "
                     "'first' model of VERIFIER (a verifier.json; default: the reader folder's)")
ap.add_argument("--packed", action="store_true",
                help="also run every torch configuration with its windows unpadded (QA_READER_PACKED)")
ap.add_argument("--precisions", nargs="*", default=[], metavar="PRECISION",
                help="other QA_READER_PRECISION values (e.g. int8-torch): each configuration also runs with the "
                     "shipped reader in each")
ap.add_argument("--readers", nargs="*", default=[], metavar="NAME=DIR",
                help="other reader folders (weights, reader_config.json, verifier.json): each configuration also "
                     "runs with each, scored by its own verifier")
args = ap.parse_args()
readers = {}
for b in args.backends:
    if b == R.backend:
        readers[b] = R
    else:
        from qa.reader.reader import ExtractiveReader
        readers[b] = ExtractiveReader.from_settings(pipe.settings.model_copy(update={"reader_backend": b}))
        readers[b].warm_up()
    print(f"backend {b}: runtime {readers[b].runtime}")
for prec in args.precisions:
    from qa.reader.reader import ExtractiveReader
    readers[prec] = ExtractiveReader.from_settings(pipe.settings.model_copy(update={"reader_precision": prec}))
    readers[prec].warm_up()
    print(f"precision {prec}: runtime {readers[prec].runtime}")
for spec in args.readers:
    name, _, folder = spec.partition("=")
    from qa.reader.reader import ExtractiveReader
    readers[name] = ExtractiveReader.from_settings(pipe.settings.model_copy(update={"reader_model_dir": Path(folder)}))
    readers[name].warm_up()
    print(f"reader {name} ({folder}): runtime {readers[name].runtime}")
if args.packed:
    from qa.reader.packed import matches_padded
    assert "torch" in readers and matches_padded(readers["torch"].model), "the packed forward does not apply here"
CONF = {}
for b, rd in readers.items():
    models = dict(rd.verifier.models) if rd.verifier is not None else {}
    no_first = {k: v for k, v in models.items() if k != "first"}
    tag = f" [{b}]" if len(readers) > 1 else ""
    CONF["every passage" + tag] = dict(pretokenised=True, first_passages=0, early_exit_by="span", _models=models, _reader=rd)
    if args.with_query_time:
        CONF["tokenise at query time" + tag] = dict(pretokenised=False, first_passages=0, early_exit_by="span",
                                                    _models=models, _reader=rd)
    for bar in args.bars:
        CONF[f"cascade {bar}" + tag] = dict(pretokenised=True, first_passages=1, early_exit_by="confidence",
                                            early_exit_score=bar, _models=models, _reader=rd)
    for spec in args.cascades:
        n_first, bar, *path = spec.split(":", 2)
        models_c = dict(models)
        if path:
            import json as _json
            from qa.verifier.model import Verifier
            models_c["first"] = Verifier(_json.loads(Path(path[0]).read_text(encoding="utf-8"))).models["first"]
        label = f"cascade {n_first}p {bar}" + (f" ({Path(path[0]).parent.name}/{Path(path[0]).name})" if path else "")
        CONF[label + tag] = dict(pretokenised=True, first_passages=int(n_first), early_exit_by="confidence",
                                 early_exit_score=float(bar), _models=models_c, _reader=rd)
    for bar in args.full_model_bar:
        CONF[f"cascade {bar}, full model" + tag] = dict(pretokenised=True, first_passages=1, early_exit_by="confidence",
                                                        early_exit_score=bar, _models=no_first, _reader=rd)
for n, c in list(CONF.items()):
    c["packed"] = False
    if args.packed and c["_reader"].backend == "torch" and c["_reader"].int8 is None:
        CONF[n + ", packed"] = dict(c, packed=True)
names = list(CONF)
tot = {n: [] for n in names}; tok = {n: [] for n in names}; fwd = {n: [] for n in names}; scored = {n: [] for n in names}
exits = {n: 0 for n in names}
pipe.ask(items[0].question)
loads = [os.getloadavg()[0]]
rounds = args.rounds
for rnd in range(rounds):
    for i, it in enumerate(items):
        order = names[i % len(names):] + names[: i % len(names)]
        for n in order:
            R = CONF[n]["_reader"]
            pipe.reader = R
            for k, v in CONF[n].items():
                if k == "_models":
                    if R.verifier is not None:
                        R.verifier.models = v
                elif k != "_reader":
                    setattr(R, k, v)
            with timing.collect() as st:
                t0 = time.perf_counter(); r = pipe.ask(it.question); dt = (time.perf_counter() - t0) * 1000
            tot[n].append(dt); tok[n].append(st.get("reader_tokenise", 0) * 1000); fwd[n].append(st.get("reader_forward", 0) * 1000)
            if rnd == 0:
                scored[n].append(score_item(it, r, pipe.document_text, dt))
                exits[n] += r.passages_read < len(r.passages)
        if i % 40 == 0:
            loads.append(os.getloadavg()[0])
loads.append(os.getloadavg()[0])
p95 = lambda v: sorted(v)[min(len(v) - 1, round(0.95 * (len(v) - 1)))]
print(f"load average (1 min) during the run: {min(loads):.2f}-{max(loads):.2f}")
b = statistics.median(tot[names[0]])
for n in names:
    m = aggregate(scored[n], 5)
    print(f"{n:37s} ask p50 {statistics.median(tot[n]):7.1f} ms  p95 {p95(tot[n]):7.1f} ms  p50/first {statistics.median(tot[n])/b:.3f}  "
          f"reader_forward p50 {statistics.median(fwd[n]):6.1f} ms  exits {exits[n]:3d}  "
          f"EM {m['exact_match']:.1f} F1 {m['f1']:.1f} F1ans {m['f1_answerable']:.1f} AUROC {m.get('auroc_correct') or 0:.3f} "
          f"ECE {m.get('ece') or 0:.3f} caught {m.get('no_answer_recall') or 0:.1f} cit {m['citation_validity']:.1f}")
