"""Several verifier files scored on the same saved answers: which one serves the better confidence?

    # rows of the seed set (seeds/ indexed into a temporary folder, the verifier off), saved for reuse
    python eval/verifier_compare.py --eval-set eval/seeds_qa.jsonl --save runs/seeds_rows.jsonl \
        --verifier shipped=models/reader/verifier.json --verifier new=runs/verifier/verifier.json
    # rows of an open setting (eval/verifier_rows.py), or the seed rows saved above
    python eval/verifier_compare.py --rows runs/open_dev42_rows.jsonl --verifier shipped=... --verifier new=...

Each verifier scores every question's top answer of a full read (what the service serves) with its ``full``
model and abstains below its own ``min_confidence``; printed per verifier: AUROC right vs wrong, ECE, AURC,
answerable questions refused, unanswerable questions caught. Right = token F1 >= 0.5 against a reference
answer (``qa train-verifier``'s label; the same as ``qa eval``'s best-guess correctness). Since the rows are
collected once, the comparison is exact: the same answers, only the scores differ. Figures only."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def collect_eval_set(eval_set: Path, corpus: Path, progress: bool) -> list[dict]:
    from qa.config import get_settings
    from qa.evaluation.dataset import load_eval_set
    from qa.pipeline import QAPipeline
    from qa.training.verifier import collect

    items = load_eval_set(eval_set)
    with tempfile.TemporaryDirectory(prefix="verifier-compare-") as tmp:
        settings = get_settings().model_copy(update={"corpus_dir": corpus, "index_dir": Path(tmp) / "index",
                                                     "verifier": False})
        pipeline = QAPipeline(settings)
        pipeline.warm_up()
        return collect(pipeline, items, settings.top_k, progress=progress)


def scored(rows: list[dict], verifier_path: Path) -> dict:
    import numpy as np

    from qa.evaluation.selective import aurc, auroc, expected_calibration_error
    from qa.verifier.model import Verifier

    v = Verifier(json.loads(verifier_path.read_text(encoding="utf-8")), verifier_path)
    top = [r for r in rows if r["_rank"] == 0 and r.get("_read", "all") == "all"]
    p = np.asarray(v.score(top, "full"), float)
    right = [bool(r["_label"]) for r in top]
    answerable = [bool(r["_answerable"]) for r in top]
    thr = v.min_confidence
    refused = [bool(pi < thr) for pi, a in zip(p, answerable) if a]
    caught = [bool(pi < thr) for pi, a in zip(p, answerable) if not a]
    num = lambda x: None if x is None else float(x)  # noqa: E731
    return {"questions": len(top), "threshold": thr, "auroc": num(auroc(p.tolist(), right)),
            "ece": num(expected_calibration_error(p.tolist(), right)), "aurc": num(aurc(p.tolist(), right)),
            "refused": (sum(refused) / len(refused)) if refused else None, "answerable": len(refused),
            "caught": sum(caught), "unanswerable": len(caught)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--rows", type=Path, help="saved feature rows (JSONL: qa train-verifier, eval/verifier_rows.py, "
                                               "or --save of this script)")
    src.add_argument("--eval-set", type=Path, help="a JSONL evaluation set: collect its rows through the pipeline")
    ap.add_argument("--corpus", type=Path, default=ROOT / "seeds", help="--eval-set: the documents (indexed into a "
                                                                       "temporary folder)")
    ap.add_argument("--save", type=Path, help="--eval-set: write the collected rows here")
    ap.add_argument("--verifier", action="append", required=True, metavar="NAME=PATH",
                    help="a verifier.json to score with (repeatable)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)

    if args.rows is not None:
        rows = [json.loads(x) for x in args.rows.read_text(encoding="utf-8").splitlines() if x.strip()]
    else:
        rows = collect_eval_set(args.eval_set, args.corpus, progress=sys.stderr.isatty())
        if args.save is not None:
            args.save.parent.mkdir(parents=True, exist_ok=True)
            args.save.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = {}
    print(f"{'verifier':<14} {'questions':>9} {'threshold':>9} {'AUROC':>6} {'ECE':>6} {'AURC':>6} "
          f"{'refused':>8} {'caught':>9}")
    for spec in args.verifier:
        name, _, path = spec.partition("=")
        if not path:
            ap.error(f"--verifier {spec!r}: expected NAME=PATH")
        m = out[name] = scored(rows, Path(path))
        fmt = lambda x, d=3: "–" if x is None else f"{x:.{d}f}"  # noqa: E731
        refused = "–" if m["refused"] is None else f"{100 * m['refused']:.1f} %"
        print(f"{name:<14} {m['questions']:>9} {m['threshold']:>9.4f} {fmt(m['auroc']):>6} {fmt(m['ece']):>6} "
              f"{fmt(m['aurc']):>6} {refused:>8} {m['caught']:>4} of {m['unanswerable']:<3}")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
