"""Verifier feature rows of an open setting over any SQuAD-format file (for verifier experiments).

    python eval/verifier_rows.py ../shared/qa-extra/qamr-test-wikinews.json rows.jsonl \
        --remove-articles 6 --questions 500 --workdir runs/news_test

Every article of FILE becomes one corpus document (``--remove-articles`` of them left out: their questions are
"not in the documents"), a seeded sample of ``--questions`` goes through the real pipeline with the verifier
off, and every considered answer's features and label (F1 >= 0.5 against a reference answer) are written as
JSONL — the rows `qa train-verifier --rows` fits on. The corpus and index go to ``--workdir`` (kept, so a
rerun reuses the index)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", type=Path, help="a SQuAD-format JSON file")
    ap.add_argument("out", type=Path, help="where to write the rows (JSONL)")
    ap.add_argument("--remove-articles", type=int, default=0)
    ap.add_argument("--questions", type=int, default=None, help="a seeded sample of this many (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, required=True, help="corpus and index folder (not seeds/ or index/)")
    args = ap.parse_args(argv)

    from qa.config import get_settings
    from qa.evaluation.open_squad import build_open_setting, write_corpus
    from qa.pipeline import QAPipeline
    from qa.training.verifier import collect

    setting = build_open_setting(args.file, remove_articles=args.remove_articles, seed=args.seed, limit=args.questions)
    corpus = write_corpus(setting, args.workdir / "corpus")
    settings = get_settings().model_copy(update={"corpus_dir": corpus, "index_dir": args.workdir / "index",
                                                 "verifier": False})
    pipeline = QAPipeline(settings)
    pipeline.warm_up()
    rows = collect(pipeline, setting.items, settings.top_k, progress=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    answerable = sum(1 for it in setting.items if it.answers)
    print(f"{len(rows)} rows; {len(setting.items)} questions, {answerable} answerable")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
