"""`qa train-reader` and `qa export-reader` subcommands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_train_reader_command(sub) -> None:
    p = sub.add_parser("train-reader", help="fine-tune the extractive reader on SQuAD (resumable)")
    p.add_argument("--config", type=Path, default=None, help="TOML config (default: qa/reader/train_config.toml)")
    p.add_argument("--squad-dir", type=Path, default=None, help="folder of the SQuAD files (QA_SQUAD_DIR)")
    p.add_argument("--run-dir", type=Path, default=None, help="checkpoints and log (default from config)")
    p.add_argument("--resume", action="store_true", help="continue from <run-dir>/checkpoint")
    p.add_argument("--sample", type=int, default=None, help="train on a seeded sample of N questions")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--max-steps", type=int, default=None, help="stop the schedule after N steps")
    p.add_argument("--stop-after-minutes", type=float, default=None,
                   help="checkpoint and stop after this long (resume later with --resume)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.set_defaults(func=cmd_train_reader)


def cmd_train_reader(args: argparse.Namespace) -> int:
    from qa.config import PROJECT_ROOT, get_settings
    from qa.reader.train import load_config, train

    cfg = load_config(args.config, {"train_questions": args.sample, "epochs": args.epochs})
    squad_dir = args.squad_dir or get_settings().squad_dir
    run_dir = args.run_dir or (PROJECT_ROOT / cfg["run_dir"])
    if not (squad_dir / cfg["train_file"]).exists():
        print(f"error: training data not found: {squad_dir / cfg['train_file']} (set --squad-dir or QA_SQUAD_DIR)")
        return 2
    result = train(cfg, squad_dir, run_dir, resume=args.resume, max_steps=args.max_steps, device=args.device,
                   stop_after_minutes=args.stop_after_minutes)
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qa-reader")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_reader_command(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
