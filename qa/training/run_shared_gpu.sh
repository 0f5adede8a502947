#!/usr/bin/env bash
# One prepared call on a lent GPU (the device tool): train the shared-normalisation reader from models/reader
# and evaluate it before and after. Inputs, carried in .gpu/ (see docs/reader.md, "Shared normalisation"):
#   train.json.gz        gzip of squad-v1.1-train.json
#   train_groups.jsonl.gz  python -m qa.training.groups --squad .../squad-v1.1-train.json --held-out 60 --seed 42
#   dev.json.gz, dev_groups.jsonl.gz  the same for squad-v1.1-dev-42.json (evaluation only)
# Writes figures.json, log.txt, config.json and the fp16 weights split in 15 MB parts to $OUT.
# EXTRA_ARGS passes more options to qa.training.shared_norm, e.g. a 3-layer student distilled from the reader
# (docs/reader.md#a-smaller-reader-distilled):
#   EXTRA_ARGS="--student-layers 0,2,4 --freeze-embeddings --distill 0.8" EPOCHS=2 MINUTES=8 LR=1e-4 bash qa/training/run_shared_gpu.sh
set -uo pipefail
OUT=${OUT:-runs/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
python3 -m qa.training.shared_norm --squad .gpu/train.json.gz --groups .gpu/train_groups.jsonl.gz \
  --init models/reader --out /tmp/sn --dev-squad .gpu/dev.json.gz --dev-groups .gpu/dev_groups.jsonl.gz \
  --dev-limit "${DEV_LIMIT:-2000}" --single-limit "${SINGLE_LIMIT:-3000}" --old-temperature 3 ${EVAL_BEFORE:---eval-before} --eval-after \
  --extra-single "${EXTRA_SINGLE:-0}" --interpolate "${INTERPOLATE:-}" --min-single-f1 "${MIN_SINGLE_F1:-0}" \
  --epochs "${EPOCHS:-2}" --minutes "${MINUTES:-4}" --groups-per-batch "${GROUPS_PER_BATCH:-32}" --lr "${LR:-3e-5}" \
  --save-fp16 ${EXTRA_ARGS:-} 2>&1 | grep -v -i warn | tee "$OUT/log.txt"
cp /tmp/sn/figures.json /tmp/sn/model/config.json "$OUT/" 2>/dev/null
split -b 15M /tmp/sn/model/model.safetensors "$OUT/model.part." 2>/dev/null
ls -la "$OUT"
