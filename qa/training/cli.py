"""Training subcommands that are not the per-paragraph reader recipe (qa/training/reader_cli.py):

    qa train-reader-shared ...   the shared-normalisation reader (qa.training.shared_norm)
    qa train-verifier ...        the answer verifier (qa.training.verifier)
    qa build-groups ...          multi-passage training groups (qa.training.groups)

Each forwards its arguments to the module's own ``main`` (``qa <command> --help`` lists them).
"""

from __future__ import annotations

import argparse

_COMMANDS = {
    "train-reader-shared": ("qa.training.shared_norm", "train the reader to compare passages (shared normalisation)"),
    "train-verifier": ("qa.training.verifier", "fit the answer verifier (calibrated P(correct)) on held-out SQuAD articles"),
    "build-groups": ("qa.training.groups", "build multi-passage training groups from a SQuAD file"),
}


def add_training_commands(sub) -> None:
    for name, (module, help_text) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_text, add_help=False, prefix_chars="\0")
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(handler=_forward(module))


def _forward(module: str):
    def run(args: argparse.Namespace) -> int:
        import importlib

        return int(importlib.import_module(module).main(list(args.rest)) or 0)

    return run
