"""`qa quantize-embedder`: calibrate the int8 question embeddings (qa.query_int8) on SQuAD training questions.

    qa quantize-embedder                       # 1,500 seeded questions of squad-v1.1-train.json -> QA_QUERY_INT8_SCALES
    qa quantize-embedder --questions 3000 --seed 1 --out runs/query_int8.json

Each sampled question is embedded by the fp32 query walk (qa.query_encoder) while every linear layer's input
range is recorded; the ranges, the smoothing exponent and the sha256 of the embedding model's weights go to the
scales file, which ``QA_QUERY_PRECISION=auto`` then uses on the CPU. Calibrate on training questions only: dev-42
is for evaluation. Remake it whenever QA_EMBEDDING_MODEL changes (a file made for other weights is not used).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def add_quantize_embedder_command(sub) -> None:
    p = sub.add_parser("quantize-embedder", help="calibrate the int8 question embeddings (QA_QUERY_PRECISION)")
    p.add_argument("--squad-dir", type=Path, default=None, help="folder of the SQuAD files (QA_SQUAD_DIR)")
    p.add_argument("--questions", type=int, default=1500, help="seeded sample of training questions (default 1500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alpha", type=float, default=None, help="smoothing exponent, 0 (none) to 1 (default 0.9)")
    p.add_argument("--out", type=Path, default=None, help="scales file (default: QA_QUERY_INT8_SCALES)")
    p.set_defaults(handler=cmd_quantize_embedder, func=cmd_quantize_embedder)


def cmd_quantize_embedder(args: argparse.Namespace) -> int:
    from qa import query_int8
    from qa.config import get_settings
    from qa.embedding import Embedder
    from qa.reader.int8 import Int8Error
    from qa.squad_data import read_squad
    from qa.training.quantize import training_file

    settings = get_settings()
    squad_file, error = training_file(args, settings)
    if error is not None:
        return error
    alpha = query_int8.ALPHA if args.alpha is None else args.alpha
    if not 0.0 <= alpha <= 1.0:
        print("error: --alpha lies within [0, 1]")
        return 2
    _, items = read_squad(squad_file)
    questions = sorted({i.question for i in items})
    questions = random.Random(args.seed).sample(questions, min(args.questions, len(questions)))
    embedder = Embedder(settings.resolved_embedding_model(), device="cpu", query_precision="fp32").warm_up()
    direct = embedder._query_encoder
    if direct is None:
        print(f"error: {embedder.model_path} has no BERT layout that the query walk (qa.query_encoder) follows")
        return 1
    out = args.out or settings.query_int8_scales
    source = f"{squad_file.name}: {len(questions)} questions, seed {args.seed}"
    try:
        manifest = query_int8.calibrate(direct, questions, query_int8.weights_file(embedder.model_path), Path(out),
                                        source, alpha=alpha)
    except Int8Error as exc:
        print(f"error: {exc}")
        return 1
    print(json.dumps(manifest | {"out": str(out)}, indent=2))
    return 0
