"""Top-answer F1 of a reader when its question comes with distractor paragraphs, per softmax temperature.

    python bench/bench_multi_passage.py [MODEL_DIR ...] [--questions 400] [--seed 42]

Each of N seeded dev-42 questions is read with its own paragraph and the 4 paragraphs of its article that
share the most words with it (`qa.training.validate.multi_passage_sets`, the task `qa export-reader` fits the
temperature on; seed 42 is the one export uses). Prints F1 at every temperature of the grid. Figures only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", type=Path, default=[ROOT / "models" / "reader"])
    ap.add_argument("--questions", type=int, default=400)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--squad-dir", type=Path, default=None)
    args = ap.parse_args()

    from qa.config import get_settings
    from qa.reader.reader import ExtractiveReader
    from qa.training.squad import load_squad
    from qa.training.validate import fit_temperature, multi_passage_sets

    valid = load_squad((args.squad_dir or get_settings().squad_dir) / "squad-v1.1-dev-42.json")
    sets = multi_passage_sets(valid, args.questions, args.seed)
    for model_dir in args.models:
        reader = ExtractiveReader(model_dir, precision="fp32")
        reader.warm_up()
        fit = fit_temperature(reader.model, reader.tokenizer, sets, reader.max_length, reader.stride,
                              reader.max_answer_tokens)
        grid = "  ".join(f"T={t}: {f}" for t, f in fit["multi_passage_f1"].items())
        print(f"{model_dir} (shipped temperature {reader.temperature}): {len(sets)} questions; {grid}; best T={fit['value']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
