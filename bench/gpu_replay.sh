#!/usr/bin/env bash
# #15's GPU figures in one prepared call of the device tool (docs/benchmarks.md, "On a GPU").
#
# Here, once (needs the index build and the embedder; ~4 min on 2 cores):
#   bash bench/gpu_replay.sh --prepare
# writes .gpu/replay.json (the seed questions' passages, served here in fp32) and .gpu/wheels/ (pydantic for the
# device image's Python 3.12, which lacks it). Then one call of the device tool, carrying .gpu:
#   run(command="bash bench/gpu_replay.sh", carry=[".gpu"], timeout_s=420)
# On the GPU: everything after retrieval (reader, decoding, aggregation, verifier) in fp32 and in the GPU's
# half precision, one question at a time and from 1/8/32/64 threads with and without the cross-request
# batcher, answers checked against the dump; figures to $OUT/replay_*.json and $OUT/log.txt.
set -uo pipefail
if [ "${1:-}" = "--prepare" ]; then
  set -e
  mkdir -p .gpu/wheels
  QA_READER_PRECISION=fp32 HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_replay.py --dump .gpu/replay.json
  .venv/bin/pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d .gpu/wheels \
    "pydantic==$(.venv/bin/python -c 'import pydantic; print(pydantic.VERSION)')"
  du -sh .gpu/replay.json .gpu/wheels
  exit 0
fi
OUT=${OUT:-runs/gpu-replay}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
{
  nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
  python3 -c "import pydantic" 2>/dev/null || python3 -m pip install -q --no-index --no-deps .gpu/wheels/*.whl
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
  for P in fp32 auto; do
    echo "== precision $P"
    python3 bench/bench_replay.py --replay .gpu/replay.json --device "${DEVICE:-auto}" --precision "$P" \
      --rounds "${ROUNDS:-3}" --limit "${LIMIT:-0}" --asks "${ASKS:-0}" --concurrency 1 8 32 64 --batch-windows "${BATCH_WINDOWS:-64}" \
      --json "$OUT/replay_$P.json"
  done
} 2>&1 | grep -v -i "warn" | tee "$OUT/log.txt"
