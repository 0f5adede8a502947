"""`qa quantize-reader`: calibrate the int8 reader (qa.reader.int8) on SQuAD training windows.

    qa quantize-reader                         # 128 seeded questions of squad-v1.1-train.json, models/reader
    qa quantize-reader --questions 256 --seed 1 --model-dir runs/reader/export

Each sampled training question is read with its own paragraph, tokenised into the reader's windows exactly
as serving does (same max length and stride); ONNX Runtime records every tensor's min/max over those windows
(MinMax calibration). The ranges go to ``<model-dir>/int8_calibration.json`` and what they belong to to
``<model-dir>/int8.json``; ``QA_READER_PRECISION=int8`` then builds the int8 model from them at warm-up,
with no SQuAD data. Calibrate on training articles only: dev-42 is for evaluation.

    qa quantize-reader --runtime torch         # int8_torch.json for QA_READER_PRECISION=int8-torch

With ``--runtime torch`` the same windows go through the fp32 PyTorch model instead, and what is kept is the
largest absolute input of every linear layer's channels (qa.reader.int8_torch: the smoothing scales and input
ranges of its int8 layers, smoothing exponent ``--alpha``), in ``<model-dir>/int8_torch.json`` with the sha256 of
the weights.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def add_quantize_reader_command(sub) -> None:
    p = sub.add_parser("quantize-reader", help="calibrate the int8 reader (QA_READER_PRECISION=int8, or int8-torch with --runtime torch)")
    p.add_argument("--model-dir", type=Path, default=None, help="reader folder (default: QA_READER_MODEL_DIR)")
    p.add_argument("--squad-dir", type=Path, default=None, help="folder of the SQuAD files (QA_SQUAD_DIR)")
    p.add_argument("--questions", type=int, default=128, help="seeded sample of training questions (default 128)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runtime", choices=["onnxruntime", "torch"], default="onnxruntime",
                   help="onnxruntime: int8_calibration.json for QA_READER_PRECISION=int8 (default); torch: "
                        "int8_torch.json for QA_READER_PRECISION=int8-torch")
    p.add_argument("--alpha", type=float, default=None,
                   help="with --runtime torch: the smoothing exponent, 0 (none) to 1 (default 0.8)")
    p.set_defaults(handler=cmd_quantize_reader, func=cmd_quantize_reader)


def calibration_windows(reader, squad_file: Path, questions: int, seed: int) -> list:
    """The serving windows ``(input_ids, token_type_ids)`` of a seeded sample of answerable questions."""
    from qa.training.squad import load_squad

    examples = [e for e in load_squad(squad_file) if not e.is_impossible]
    picked = random.Random(seed).sample(examples, min(questions, len(examples)))
    windows = []
    for ex in picked:
        enc = reader.encode(ex.question, [ex.context]).encoding
        windows.extend(zip(enc["input_ids"], enc["token_type_ids"]))
    import numpy as np

    return [(np.asarray(i, dtype=np.int64), np.asarray(t, dtype=np.int64)) for i, t in windows]


def training_file(args: argparse.Namespace, settings) -> tuple[Path, int | None]:
    """The SQuAD training file a calibration samples ``args.questions`` from (``--squad-dir`` or QA_SQUAD_DIR),
    and None; or, having said what is wrong, the command's exit code."""
    squad_file = (args.squad_dir or settings.squad_dir) / "squad-v1.1-train.json"
    if not squad_file.is_file():
        print(f"error: training data not found: {squad_file} (set --squad-dir or QA_SQUAD_DIR)")
        return squad_file, 2
    if args.questions < 1:
        print("error: --questions must be >= 1")
        return squad_file, 2
    return squad_file, None


def cmd_quantize_reader(args: argparse.Namespace) -> int:
    from qa.config import get_settings
    from qa.reader.int8 import Int8Error, calibrate
    from qa.reader.reader import ExtractiveReader

    settings = get_settings()
    model_dir = args.model_dir or settings.reader_model_dir
    squad_file, error = training_file(args, settings)
    if error is not None:
        return error
    if args.alpha is not None and not (args.runtime == "torch" and 0.0 <= args.alpha <= 1.0):
        print("error: --alpha goes with --runtime torch and lies within [0, 1]")
        return 2
    reader = ExtractiveReader.from_settings(settings.model_copy(update={"reader_precision": "fp32",
                                                                        "device": "cpu"}), model_dir)
    reader.warm_up()
    windows = calibration_windows(reader, squad_file, args.questions, args.seed)
    source = f"{squad_file.name}: {args.questions} questions, seed {args.seed}"
    try:
        if args.runtime == "torch":
            from qa.reader import int8_torch

            manifest = int8_torch.calibrate(Path(model_dir), reader.model, windows, source,
                                            alpha=int8_torch.ALPHA if args.alpha is None else args.alpha)
        else:
            manifest = calibrate(Path(model_dir), windows, source)
    except Int8Error as exc:
        print(f"error: {exc}")
        return 1
    print(json.dumps(manifest, indent=2))
    return 0
