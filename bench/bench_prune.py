"""Untrained feed-forward cuts of the reader (qa/training/prune.py): for each width, dev-42 forced F1 of the reader
alone on its own paragraph, and the forward time of 5 windows x 190 tokens. Figures only, nothing asserted.

    python bench/bench_prune.py [--widths 1536 1280 1024 768] [--examples 384] [--dev 600]
    (AVX2-emulated: ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2)
"""
import sys as _sys
from pathlib import Path as _Path
_ROOT = _Path(__file__).resolve().parent.parent
_sys.path.insert(0, str(_ROOT))

import argparse, random, statistics, time

import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

from qa.config import get_settings
from qa.training.groups import split_articles
from qa.training.prune import ffn_importance, prune_ffn
from qa.training.squad import build_train_features, load_squad
from qa.training.validate import predict_examples, score_answerable

ap = argparse.ArgumentParser()
ap.add_argument("--reader", default=str(_ROOT / "models" / "reader"))
ap.add_argument("--widths", type=int, nargs="*", default=[1536, 1280, 1024, 768])
ap.add_argument("--examples", type=int, default=384, help="training questions the importance is taken on")
ap.add_argument("--dev", type=int, default=600, help="dev-42 answerable questions scored")
args = ap.parse_args()
squad_dir = get_settings().squad_dir
torch.manual_seed(0)
tok = AutoTokenizer.from_pretrained(args.reader)
load = lambda: AutoModelForQuestionAnswering.from_pretrained(args.reader, dtype=torch.float32).eval()  # noqa: E731
train = load_squad(squad_dir / "squad-v1.1-train.json")
train_titles, _ = split_articles(sorted({e.title for e in train}), 60, 42)
pool = [e for e in train if e.title in train_titles and not e.is_impossible and e.answers]
t0 = time.time()
importance = ffn_importance(load(), build_train_features(random.Random(0).sample(pool, args.examples), tok, 256, 96))
print(f"torch capability {torch.backends.cpu.get_cpu_capability()}, threads {torch.get_num_threads()}; "
      f"importance from {args.examples} training questions in {time.time() - t0:.0f} s")
dev = load_squad(squad_dir / "squad-v1.1-dev-42.json")
dev = random.Random(1).sample([e for e in dev if not e.is_impossible], args.dev)
ids = torch.randint(1000, 20000, (5, 190), generator=torch.Generator().manual_seed(0))
base = None
for width in args.widths:
    m = load()
    if width < m.config.intermediate_size:
        prune_ffn(m, width, importance)
    f1 = score_answerable(dev, predict_examples(m, tok, dev, bf16=False, progress=False))["f1"]
    ts = []
    with torch.inference_mode():
        for _ in range(25):
            t = time.perf_counter(); m(input_ids=ids, attention_mask=torch.ones_like(ids)); ts.append(time.perf_counter() - t)
    ms = statistics.median(ts[5:]) * 1000
    base = base or ms
    print(f"width {width:5d}  dev-42 forced F1 {f1:5.1f} ({args.dev} questions)  forward 5x190 {ms:6.1f} ms  "
          f"ratio {ms / base:.3f}", flush=True)
