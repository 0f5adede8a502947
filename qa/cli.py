"""The ``qa`` command line.

Adding a command: write ``add_<name>_command(subparsers)`` (creates the sub-parser and calls
``p.set_defaults(handler=cmd_<name>)``) and ``cmd_<name>(args) -> int`` (the exit code), then call
the ``add_`` function in :func:`build_parser`. Import heavy modules inside the handler so that
``qa --help`` stays fast. :func:`main` turns an :class:`~qa.index_store.IndexLoadError` into a
one-line message on stderr and exit code 2; use :func:`open_index` to get the index with the
same first-run behaviour as ``qa search``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INDEX = 2  # the index is missing/corrupt/stale and cannot be used


def eprint(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def get_cli_settings():
    from qa.config import get_settings

    return get_settings()


def open_index(settings=None, embedder=None):
    """(store, embedder) for commands that search: loads the index, or builds it on first run."""
    from qa.embedding import get_embedder
    from qa.index_store import load_or_build

    settings = settings or get_cli_settings()
    embedder = embedder or get_embedder(
        settings.resolved_embedding_model(), settings.embedding_batch_size
    )
    store = load_or_build(
        settings, embedder, announce=lambda m: eprint(f"qa: {m}"), show_progress=sys.stderr.isatty()
    )
    return store, embedder


# --------------------------------------------------------------------------- index


def add_index_command(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "index",
        help="build or update the search index",
        description="Index .txt/.md documents (default: the corpus folder, QA_CORPUS_DIR). Only "
        "new or changed documents are embedded again; removed ones are dropped.",
    )
    p.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH",
        help="a corpus folder, or files/folders inside the corpus folder (default: QA_CORPUS_DIR)",
    )
    p.add_argument("--json", action="store_true", help="print the build report as JSON")
    p.set_defaults(handler=cmd_index)


def _corpus_and_paths(paths: list[Path], default_root: Path) -> tuple[Path, list[Path] | None]:
    """One folder → that folder is the corpus; otherwise files/folders under the default root."""
    if not paths:
        return default_root, None
    if len(paths) == 1 and paths[0].is_dir():
        root = paths[0].resolve()
        default = default_root.resolve()
        if root != default and default not in root.parents:
            return root, None
    return default_root, [p for p in paths]


def cmd_index(args: argparse.Namespace) -> int:
    from qa.chunking import Chunker
    from qa.embedding import get_embedder
    from qa.index_store import build_or_update

    settings = get_cli_settings()
    corpus, paths = _corpus_and_paths(args.paths, Path(settings.corpus_dir))
    if paths is None and not corpus.is_dir():
        eprint(f"qa: corpus folder not found: {corpus}")
        return EXIT_ERROR
    for p in paths or []:
        if not p.exists():
            eprint(f"qa: no such file or folder: {p}")
            return EXIT_ERROR
    t0 = time.perf_counter()
    embedder = get_embedder(settings.resolved_embedding_model(), settings.embedding_batch_size)
    chunker = Chunker.from_settings(settings)
    store = build_or_update(
        corpus, settings, embedder, chunker, paths=paths, show_progress=sys.stderr.isatty()
    )
    report = store.build_report
    assert report is not None
    report.seconds = time.perf_counter() - t0  # include model loading
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=lambda o: o.__dict__))
        return EXIT_OK
    print(f"Index: {store.path}")
    print(f"Corpus: {corpus}")
    if report.full_rebuild_reason and report.full_rebuild_reason != "no previous index":
        print(f"Full rebuild: {report.full_rebuild_reason}")
    print(f"Documents indexed: {len(report.indexed)} ({len(report.added)} new, {len(report.changed)} changed)")
    print(f"Documents reused:  {len(report.reused)}")
    print(f"Documents removed: {len(report.removed)}")
    print(f"Documents skipped: {len(report.skipped)}")
    for s in report.skipped:
        print(f"  skipped {s.path}: {s.reason}")
    print(f"Chunks: {report.chunks} ({report.chunks_embedded} embedded)")
    print(f"Time: {report.seconds:.1f}s")
    return EXIT_OK


# -------------------------------------------------------------------------- search


def add_search_command(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "search",
        help="retrieve the passages most relevant to a question",
        description="Rank indexed passages for a question (builds the index first if there is none).",
    )
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None, help="number of passages (default: QA_TOP_K)")
    p.add_argument(
        "--mode", choices=("dense", "bm25", "hybrid"), default=None,
        help="retriever (default: QA_RETRIEVAL_MODE)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of passages")
    p.set_defaults(handler=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    from qa.retriever.hybrid import make_retriever

    settings = get_cli_settings()
    k = args.k if args.k is not None else settings.top_k
    if k < 1:
        eprint("qa: -k must be at least 1")
        return EXIT_ERROR
    if not args.question.strip():
        eprint("qa: the question is empty")
        return EXIT_ERROR
    store, embedder = open_index(settings)
    retriever = make_retriever(args.mode or settings.retrieval_mode, store, embedder, settings)
    passages = retriever.run(args.question, k)
    rows = [
        {
            "rank": p.rank,
            "document": p.chunk.document,
            "start": p.chunk.start,
            "end": p.chunk.end,
            "score": p.score,
            "scores": p.scores,
            "text": p.chunk.text,
        }
        for p in passages
    ]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not rows:
        print("No passages found.")
    for r in rows:
        print(f"#{r['rank']}  {r['document']}  [{r['start']}:{r['end']}]  score={r['score']:.4f}")
        body = " ".join(r["text"].split())
        print(f"    {body[:600]}{'…' if len(body) > 600 else ''}")
        print()
    return EXIT_OK


# -------------------------------------------------------------------------- parser

# --------------------------------------------------------------------------- ask


def add_ask_command(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "ask",
        help="answer a question from the documents, citing file and offsets",
        description="Retrieve passages and extract answer spans. Each answer cites document, start and "
        "end (code-point offsets: open(file, encoding='utf-8').read()[start:end] == answer). "
        "Says so when no answer is found in the documents.",
    )
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None, help="passages to read (default: QA_TOP_K)")
    p.add_argument("-n", "--max-answers", type=int, default=None, help="answers to return (default: QA_MAX_ANSWERS)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(handler=cmd_ask)


def cmd_ask(args: argparse.Namespace) -> int:
    from qa.pipeline import QAPipeline, QuestionError

    settings = get_cli_settings()
    pipeline = QAPipeline(settings)
    try:
        pipeline.check_question(args.question)
        if args.k is not None and not 1 <= args.k <= 50:
            raise QuestionError("-k must be between 1 and 50")
    except QuestionError as e:
        eprint(f"qa: error: {e}")
        return EXIT_ERROR
    pipeline.warm_up(show_progress=sys.stderr.isatty())
    result = pipeline.ask(args.question, top_k=args.k, max_answers=args.max_answers)
    if args.json:
        print(result.model_dump_json(indent=2))
        return EXIT_OK
    if not result.answer_found:
        print("No answer found in the documents. Closest passages:")
        for p in result.passages[:3]:
            snippet = " ".join(p.text.split())[:160]
            print(f"  [{p.rank}] {p.document} {p.start}-{p.end}: {snippet}")
        return EXIT_OK
    for i, a in enumerate(result.answers, 1):
        print(f"{i}. {a.text}   (confidence {a.score:.0%})")
        for c in a.citations:
            print(f"     {c.document} {c.start}-{c.end}: {' '.join(c.context.split())}")
    return EXIT_OK


# --------------------------------------------------------------------------- serve


def add_serve_command(subparsers: Any) -> argparse.ArgumentParser:
    settings = get_cli_settings()
    p = subparsers.add_parser(
        "serve",
        help="serve the HTTP API and chat page",
        description=(
            "Serve the HTTP API and the chat page. On first run the index is built from the corpus "
            "folder (QA_CORPUS_DIR, default seeds/) into QA_INDEX_DIR."
        ),
    )
    p.add_argument("--host", default=settings.host, help=f"interface to listen on (default {settings.host}; QA_HOST)")
    p.add_argument("--port", type=int, default=settings.port, help=f"port (default {settings.port}; QA_PORT)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(handler=cmd_serve)
    return p


def cmd_serve(args: argparse.Namespace) -> int:
    # The web layer (FastAPI, uvicorn) is imported only when the server actually runs.
    from api.serve import run_server

    return run_server(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qa", description="Document-grounded extractive question answering with exact citations."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_index_command(subparsers)
    add_search_command(subparsers)
    add_ask_command(subparsers)

    from qa.evaluation.cli import add_eval_command
    from qa.reader.cli import add_export_reader_command, add_soup_reader_command, add_train_reader_command

    add_serve_command(subparsers)
    add_eval_command(subparsers)
    add_train_reader_command(subparsers)
    add_export_reader_command(subparsers)
    add_soup_reader_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from qa.index_store import IndexLoadError

    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)  # on the handler: some libraries (bm25s) force their loggers to DEBUG
    logging.basicConfig(level=level, handlers=[handler])
    try:
        return int(args.handler(args) or 0)
    except IndexLoadError as e:
        eprint(f"qa: error: {e}")
        return EXIT_INDEX
    except KeyboardInterrupt:
        eprint("qa: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
