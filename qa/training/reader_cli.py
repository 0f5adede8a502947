"""`qa train-reader` and `qa export-reader` subcommands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_train_reader_command(sub) -> None:
    p = sub.add_parser("train-reader", help="fine-tune the extractive reader on SQuAD (resumable)")
    p.add_argument("--config", type=Path, default=None, help="TOML config (default: qa/training/train_config.toml)")
    p.add_argument("--squad-dir", type=Path, default=None, help="folder of the SQuAD files (QA_SQUAD_DIR)")
    p.add_argument("--run-dir", type=Path, default=None, help="checkpoints and log (default from config)")
    p.add_argument("--resume", action="store_true", help="continue from <run-dir>/checkpoint")
    p.add_argument("--sample", type=int, default=None, help="train on a seeded sample of N questions")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--learning-rate", type=float, default=None, help="peak learning rate (default from config)")
    p.add_argument("--base-model", default=None,
                   help="encoder folder to start from (default: the bundled all-MiniLM-L6-v2)")
    p.add_argument("--init-from", default=None,
                   help="start from this trained checkpoint instead of a fresh span head (warm start)")
    p.add_argument("--skip-batches", type=int, default=None,
                   help="leave out the first N batches of the seeded order (with --init-from: continue on "
                        "batches the previous stage did not see)")
    p.add_argument("--max-steps", type=int, default=None, help="stop the schedule after N steps")
    p.add_argument("--stop-after-minutes", type=float, default=None,
                   help="checkpoint and stop after this long (resume later with --resume)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.set_defaults(handler=cmd_train_reader)


def cmd_train_reader(args: argparse.Namespace) -> int:
    from qa.config import PROJECT_ROOT, get_settings
    from qa.training.train import load_config, train

    cfg = load_config(args.config, {"train_questions": args.sample, "epochs": args.epochs,
                                    "init_from": args.init_from, "skip_batches": args.skip_batches,
                                    "base_model": args.base_model, "learning_rate": args.learning_rate})
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
    add_export_reader_command(sub)
    add_soup_reader_command(sub)
    args = parser.parse_args(argv)
    return args.handler(args)



def add_export_reader_command(sub) -> None:
    p = sub.add_parser("export-reader", help="validate a checkpoint, calibrate abstention, ship it to models/reader")
    p.add_argument("checkpoint", type=Path, nargs="?", default=None,
                   help="trained checkpoint folder (default: <run_dir>/best)")
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--squad-dir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None, help="default: Settings.reader_model_dir (models/reader)")
    p.add_argument("--limit", type=int, default=None, help="validate on the first N questions only (smoke test)")
    p.add_argument("--dry-run", action="store_true", help="print the figures, write nothing")
    p.add_argument("--device", default="cpu",
                   help="cpu (default) or cuda; either way the figures are computed in fp32 unless bf16 is native "
                        "on the CPU, the precision the service runs in")
    p.add_argument("--force", action="store_true", help="ship even if the shipped model has a higher F1")
    p.set_defaults(handler=cmd_export_reader)


def cmd_export_reader(args: argparse.Namespace) -> int:
    from qa.config import PROJECT_ROOT, get_settings
    from qa.training.export import export, validate_checkpoint
    from qa.training.train import load_config

    settings = get_settings()
    cfg = load_config(args.config)
    run_dir = PROJECT_ROOT / cfg["run_dir"]
    ckpt = args.checkpoint or (run_dir / "best")
    state_path = ckpt / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    cfg = state.get("config", cfg)  # validate with the settings the checkpoint was trained with
    figures = validate_checkpoint(ckpt, cfg, args.squad_dir or settings.squad_dir, limit=args.limit,
                                  device=args.device)
    print(json.dumps(figures, indent=2))
    out = args.out or settings.reader_model_dir
    shipped = out / "reader_config.json"
    if shipped.exists() and not args.force and not args.dry_run:
        old = json.loads(shipped.read_text())["figures"]["squad_v1_dev42"]["f1"]
        if old >= figures["squad_v1_dev42"]["f1"]:
            print(f"not shipped: the shipped model's F1 {old} >= {figures['squad_v1_dev42']['f1']} (use --force)")
            return 1
    if args.dry_run:
        return 0
    if args.limit and args.out is None:
        print("--limit figures are a smoke test: give --out to write such a model elsewhere than the shipped one")
        return 1
    if args.limit:
        figures["limited_to_first_questions"] = args.limit
    card = export(ckpt, out, cfg, figures, state)
    print(f"shipped to {out} (sha256 {card['sha256']['model.safetensors']})")
    return 0


def add_soup_reader_command(sub) -> None:
    p = sub.add_parser("soup-reader", help="average the weights of reader checkpoints (a model soup)")
    p.add_argument("checkpoints", type=Path, nargs="+", help="trained checkpoint folders (e.g. runs/*/best)")
    p.add_argument("--out", type=Path, required=True, help="folder for the averaged checkpoint")
    p.set_defaults(handler=cmd_soup_reader)


def cmd_soup_reader(args: argparse.Namespace) -> int:
    from qa.training.soup import soup

    try:
        state = soup(args.checkpoints, args.out)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}")
        return 2
    print(json.dumps(state["soup"], indent=2))
    print(f"wrote {args.out}; validate and ship it with: qa export-reader {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
