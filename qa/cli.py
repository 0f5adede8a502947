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
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from qa.console import print_json, tolerate_unencodable_text

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INDEX = 2  # the index is missing/corrupt/stale and cannot be used
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_BROKEN_PIPE = 141  # whoever read stdout went away, e.g. `qa ask ... | head` (128 + SIGPIPE, as the shell says)


def eprint(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def _silence_stdout() -> None:
    """Point stdout at /dev/null: its reader is gone, and the interpreter's last flush must not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # a stdout without a file descriptor (tests)
        pass


def get_cli_settings():
    from qa.config import get_settings

    return get_settings()


def open_index(settings=None, embedder=None):
    """(store, embedder) for commands that search: loads the index, or builds it on first run."""
    from qa.embedding import embedder_for
    from qa.index_store import load_or_build

    settings = settings or get_cli_settings()
    embedder = embedder or embedder_for(settings)
    if settings.store != "faiss":
        writer = store_writer(settings, embedder)
        if writer.store.generation == 0:
            eprint(f"qa: the {settings.store} store is empty; indexing {settings.corpus_dir} into it (first run)")
            writer.sync_corpus(Path(settings.corpus_dir), show_progress=sys.stderr.isatty())
        return writer.store, embedder
    store = load_or_build(
        settings, embedder, announce=lambda m: eprint(f"qa: {m}"), show_progress=sys.stderr.isatty()
    )
    return store, embedder


def store_writer(settings, embedder=None):
    """QA_STORE other than faiss: a qa.store.writes.StoreWriter over the opened store."""
    from qa.chunking import Chunker
    from qa.embedding import embedder_for
    from qa.store import open_store
    from qa.store.writes import StoreWriter

    embedder = (embedder or embedder_for(settings)).warm_up()
    chunker = Chunker.from_settings(settings)
    store = open_store(settings, embedder.model_id, embedder.dimension, chunker.params)
    return StoreWriter(settings, store, embedder, chunker)


# --------------------------------------------------------------------------- index


def add_index_command(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "index",
        help="build or update the search index",
        description="Index .txt, .md, .pdf, .docx, .html and .htm documents (default: the corpus folder, "
        "QA_CORPUS_DIR). Only new or changed documents are embedded again; removed ones are dropped.",
    )
    p.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH",
        help="a corpus folder, or files/folders inside the corpus folder (default: QA_CORPUS_DIR)",
    )
    p.add_argument("--json", action="store_true",
                   help="print the build report (with --check: the differences) as JSON")
    p.add_argument("--ray", action="store_true",
                   help="chunk and embed with Ray Data (bulk indexing; needs ray[data]; RAY_ADDRESS for a cluster)")
    p.add_argument("--ray-cpus", type=int, default=None, metavar="N", help="CPUs of the local Ray (default: all)")
    p.add_argument("--ray-threads", type=int, default=1, metavar="T",
                   help="torch threads per Ray embedding worker; each worker reserves T CPUs (default 1)")
    p.add_argument("--ray-workers", type=int, default=None, metavar="W",
                   help="Ray embedding workers (default: Ray's CPUs // --ray-threads)")
    p.add_argument(
        "--check", action="store_true",
        help="only compare the corpus folder with the index and list every difference (exit 1 if any); "
        "`qa index` without --check repairs them",
    )
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


def _writer(settings, indexer=None):
    from qa.writes import Writer

    def refuse(*_a):  # recovery never indexes; it only finishes or undoes interrupted writes
        raise RuntimeError("no indexer")

    return Writer(settings, indexer or refuse)


def _faiss_lock(settings):
    """The index folder's lock (qa.index_store.index_lock) for the faiss store; nothing for milvus (no lock there)."""
    import contextlib

    from qa.index_store import index_lock

    return index_lock(settings.index_dir) if settings.store == "faiss" else contextlib.nullcontext()


def _index_ray(args: argparse.Namespace, settings, corpus: Path, paths: list[Path] | None, t0: float) -> int:
    """`qa index --ray`: qa.store.bulk.ray_index into the configured store."""
    try:
        import ray  # noqa: F401
    except ImportError:
        eprint("qa: error: --ray needs Ray Data: pip install 'ray[data]==2.60.0'")
        return EXIT_ERROR
    from qa.store.bulk import RayStats, check_ray_cpus, ray_index

    for name in ("ray_cpus", "ray_threads", "ray_workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            eprint(f"qa: error: --{name.replace('_', '-')} must be at least 1")
            return EXIT_ERROR
    try:
        check_ray_cpus(args.ray_cpus)
    except ValueError as e:
        eprint(f"qa: error: {e}")
        return EXIT_ERROR
    stats = RayStats()
    with _faiss_lock(settings):  # as `qa index`: a server's write cannot slip in between the corpus read and the commit
        if settings.store == "faiss":
            for r in _writer(settings).recover():
                eprint(f"qa: finished an interrupted {r.op} ({r.action})")
        writer = store_writer(settings)
        try:
            report = ray_index(settings, writer.store, corpus, paths, num_cpus=args.ray_cpus,
                               threads=args.ray_threads, workers=args.ray_workers, stats=stats)
        except ValueError as e:
            eprint(f"qa: error: {e}")
            return EXIT_ERROR
        finally:
            writer.store.close()
    if stats.chunks:
        (eprint if args.json else print)(stats.line())
    return _print_store_report(args, settings, corpus, paths, report, t0)


def _index_store(args: argparse.Namespace, settings, corpus: Path, paths: list[Path] | None, t0: float) -> int:
    """`qa index` with QA_STORE=milvus: write new/changed documents into the store, drop removed ones."""
    writer = store_writer(settings)
    try:
        report = writer.sync_corpus(corpus, paths, show_progress=sys.stderr.isatty())
    finally:
        writer.store.close()
    return _print_store_report(args, settings, corpus, paths, report, t0)


def _print_store_report(args: argparse.Namespace, settings, corpus: Path, paths: list[Path] | None, report,
                        t0: float) -> int:
    from qa.store import milvus_uri

    report.seconds = time.perf_counter() - t0
    if args.json:
        print_json(report.to_dict(), default=lambda o: o.__dict__)
        return EXIT_OK
    if settings.store == "milvus":
        print(f"Store: milvus {milvus_uri(settings)} (collections {settings.milvus_collection}_*)")
    else:
        print(f"Store: faiss {settings.index_dir}")
    print(f"Corpus: {corpus}")
    if report.full_rebuild_reason:  # `qa index --ray` over an index of other chunking (said as plain `qa index` does)
        print(f"Full rebuild: {report.full_rebuild_reason}")
    print(f"Documents indexed: {len(report.indexed)} ({len(report.added)} new, {len(report.changed)} changed)")
    print(f"Documents reused:  {len(report.reused)}")
    print(f"Documents removed: {len(report.removed)}")
    print(f"Documents skipped: {len(report.skipped)}")
    for sk in report.skipped:
        print(f"  skipped {sk.path}: {sk.reason}")
    print(f"Chunks: {report.chunks} ({report.chunks_embedded} embedded)")
    print(f"Time: {report.seconds:.1f}s")
    if not report.chunks and not paths:
        from qa.ingest import SUPPORTED_SUFFIXES

        print(f"The index is empty: put documents ({', '.join(SUPPORTED_SUFFIXES)}) in {corpus} (QA_CORPUS_DIR) "
              "and run `qa index` again, or upload them through the server")
    return EXIT_OK


def _print_check(as_json: bool, settings, diffs: list, count: int, where: str, repair: str) -> int:
    """`qa index --check`'s result: one line per difference and a summary, or (--json) one JSON object."""
    from dataclasses import asdict

    from qa.writes import describe

    if as_json:
        print_json({"corpus": str(settings.corpus_dir), "compared_with": where, "documents": count,
                    "differences": [asdict(d) for d in diffs]})
    else:
        for line in describe(diffs):
            print(line)
        noun = "indexed documents) and the index" if where == "index" else f"stored documents) and the {where} store"
        print(f"{len(diffs)} difference(s) between {settings.corpus_dir} ({count} {noun}" + (repair if diffs else ""))
    return EXIT_ERROR if diffs else EXIT_OK


def cmd_index_check(settings, corpus: Path | None = None, as_json: bool = False) -> int:
    """Report (never repair) every difference between the corpus folder (``corpus``, default QA_CORPUS_DIR) and
    the index."""
    from qa.index_store import IndexStore, active_documents
    from qa.writes import differences

    if corpus is not None and corpus.resolve() != Path(settings.corpus_dir).resolve():
        settings = settings.model_copy(update={"corpus_dir": corpus})
        repair = f"; run `qa index {corpus}` to repair them"
    else:
        repair = "; run `qa index` to repair them"
    if settings.store != "faiss":
        writer = store_writer(settings)
        try:
            stored = {d: i.sha256 for d, i in writer.store.documents.items()}
        finally:
            writer.store.close()
        return _print_check(as_json, settings, differences(Path(settings.corpus_dir), stored), len(stored),
                            settings.store, repair)
    recovered = _writer(settings).recover()
    for r in recovered:
        (eprint if as_json else print)(f"finished an interrupted {r.op} ({r.action})")
    indexed = active_documents(settings.index_dir)
    if indexed is None:
        eprint(f"qa: error: no readable index in {settings.index_dir}; run `qa index`")
        return EXIT_INDEX
    # The manifest alone says nothing of the files beside it: load (and verify) the version, as qa ask and qa
    # serve will, so that a check never passes an index they refuse (IndexLoadError: exit 2, one line).
    IndexStore.load(settings.index_dir)
    return _print_check(as_json, settings, differences(Path(settings.corpus_dir), indexed), len(indexed), "index",
                        repair)


def cmd_index(args: argparse.Namespace) -> int:
    from qa.chunking import Chunker
    from qa.embedding import embedder_for
    from qa.index_store import build_or_update, index_lock

    settings = get_cli_settings()
    corpus, paths = _corpus_and_paths(args.paths, Path(settings.corpus_dir))
    if args.check:
        # a folder given is the corpus to compare (it was ignored: the check compared QA_CORPUS_DIR and told to run
        # `qa index`, which would make the index follow that other folder)
        for p in args.paths:
            if not p.exists():
                eprint(f"qa: error: no such file or folder: {p}")
                return EXIT_ERROR
        if paths is not None and [p.resolve() for p in paths] != [corpus.resolve()]:
            eprint("qa: error: --check compares a whole corpus folder with the index: give no PATH (QA_CORPUS_DIR) or the "
                   "corpus folder itself")
            return EXIT_ERROR
        return cmd_index_check(settings, corpus, as_json=args.json)
    if paths is None and not corpus.is_dir():
        eprint(f"qa: error: corpus folder not found: {corpus}")
        return EXIT_ERROR
    for p in paths or []:
        if not p.exists():
            eprint(f"qa: error: no such file or folder: {p}")
            return EXIT_ERROR
        root = corpus.resolve()
        if p.resolve() != root and root not in p.resolve().parents:
            # its id would be its bare name: it could replace a corpus document's text, and nothing
            # in the corpus folder would hold it (`qa index --check` would report it missing)
            eprint(f"qa: error: {p} is not in the corpus folder {corpus}; copy it there and index that copy, "
                   "or index its own folder (`qa index FOLDER`)")
            return EXIT_ERROR
    t0 = time.perf_counter()
    if args.ray:
        return _index_ray(args, settings, corpus, paths, t0)
    if settings.store != "faiss":
        return _index_store(args, settings, corpus, paths, t0)
    embedder = embedder_for(settings)
    chunker = Chunker.from_settings(settings)
    with index_lock(settings.index_dir):  # a server's write cannot slip in between
        for r in _writer(settings).recover():
            eprint(f"qa: finished an interrupted {r.op} ({r.action})")
        store = build_or_update(
            corpus, settings, embedder, chunker, paths=paths, show_progress=sys.stderr.isatty()
        )
    report = store.build_report
    assert report is not None
    report.seconds = time.perf_counter() - t0  # include model loading
    if args.json:
        print_json(report.to_dict(), default=lambda o: o.__dict__)
        return EXIT_OK
    print(f"Index: {store.path}")
    print(f"Corpus: {corpus}")
    if report.full_rebuild_reason and report.full_rebuild_reason != "no previous index":
        print(f"Full rebuild: {report.full_rebuild_reason}")
    print(f"Documents indexed: {len(report.indexed)} ({len(report.added)} new, {len(report.changed)} changed)")
    print(f"Documents reused:  {len(report.reused)}")
    print(f"Documents removed: {len(report.removed)}")
    if report.reextracted:
        print(f"Documents re-extracted by a new converter version: {len(report.reextracted)}")
    print(f"Documents skipped: {len(report.skipped)}")
    for s in report.skipped:
        print(f"  skipped {s.path}: {s.reason}")
    print(f"Chunks: {report.chunks} ({report.chunks_embedded} embedded)")
    print(f"Time: {report.seconds:.1f}s")
    if not report.chunks and not paths:
        from qa.ingest import SUPPORTED_SUFFIXES

        print(f"The index is empty: put documents ({', '.join(SUPPORTED_SUFFIXES)}) in {corpus} (QA_CORPUS_DIR) "
              "and run `qa index` again, or upload them through the server")
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

    from qa.pipeline import QAPipeline, QuestionError

    settings = get_cli_settings()
    k = args.k if args.k is not None else settings.top_k
    try:
        QAPipeline(settings).check_question(args.question)  # the rules of qa ask and /ask (no models loaded)
        if not 1 <= k <= 50:
            raise QuestionError("-k must be between 1 and 50")
    except QuestionError as e:
        eprint(f"qa: error: {e}")
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
        print_json(rows)
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
        "end: code-point offsets into the document's text as GET /documents/{id} serves it, text[start:end] == "
        "answer (for .txt/.md that text is open(file, encoding='utf-8').read(); for .pdf/.docx/.html the text "
        "extracted from the file). Says so when no answer is found in the documents.",
    )
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None, help="passages to read (default: QA_TOP_K)")
    p.add_argument("-n", "--max-answers", type=int, default=None, help="answers to return (default: QA_MAX_ANSWERS)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(handler=cmd_ask)


def _place(c) -> str:
    """Where a citation stands, for people: ``doc.pdf p. 3 120-135``."""
    page = f" p. {c.page}" if c.page else ""
    return f"{c.document}{page} {c.start}-{c.end}"


def cmd_ask(args: argparse.Namespace) -> int:
    from qa.pipeline import QAPipeline, QuestionError

    settings = get_cli_settings()
    pipeline = QAPipeline(settings)
    try:
        pipeline.check_question(args.question)
        if args.k is not None and not 1 <= args.k <= 50:
            raise QuestionError("-k must be between 1 and 50")
        if args.max_answers is not None and not 1 <= args.max_answers <= 20:  # as QA_MAX_ANSWERS
            raise QuestionError("-n/--max-answers must be between 1 and 20")
    except QuestionError as e:
        eprint(f"qa: error: {e}")
        return EXIT_ERROR
    pipeline.warm_up(show_progress=sys.stderr.isatty())
    result = pipeline.ask(args.question, top_k=args.k, max_answers=args.max_answers)
    if args.json:
        print_json(result.model_dump(mode="json"))
        return EXIT_OK
    if not result.answer_found:
        print("Not found in the documents.")
        if not result.passages and not pipeline.documents():
            print(f"(The index holds no documents: put .txt, .md, .pdf, .docx or .html files in {settings.corpus_dir} "
                  "(QA_CORPUS_DIR) and run `qa index`.)")
        g = result.best_guess
        if g is not None:
            print(f"Best guess, not trusted: {g.text}   (probability right {g.score:.0%}, below the "
                  f"QA_MIN_CONFIDENCE threshold)   {_place(g.top)}")
        print("Closest passages:")
        for p in result.passages[:3]:
            snippet = " ".join(p.text.split())[:160]
            print(f"  [{p.rank}] {p.document} {p.start}-{p.end}: {snippet}")
        return EXIT_OK
    for i, a in enumerate(result.answers, 1):
        print(f"{i}. {a.text}   (probability right {a.score:.0%})")
        for c in a.citations:
            print(f"     {_place(c)}: {' '.join(c.context.split())}")
    return EXIT_OK


# --------------------------------------------------------------------------- keys


def add_keys_command(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "keys",
        help="manage API keys (for `qa serve`)",
        description="API keys for the HTTP API, stored hashed in QA_KEYS_FILE (default: qa-keys.json "
        "beside the index folder). Clients send `Authorization: Bearer <key>`. A running server sees "
        "changes at once.",
    )
    sub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    a = sub.add_parser("add", help="create a key; it is printed once, as the last line")
    a.add_argument("name", help="a label for the key: 1-64 ASCII letters, digits, _ . - (e.g. ci-bot)")
    a.add_argument("--scope", choices=("read", "write"), required=True,
                   help="read: ask and read documents; write: also upload, replace, delete, restore")
    sub.add_parser("list", help="list keys (names, scopes, first characters; never the keys)")
    r = sub.add_parser("revoke", help="delete a key")
    r.add_argument("name")
    p.set_defaults(handler=cmd_keys)


def cmd_keys(args: argparse.Namespace) -> int:
    from qa.keys import KeyStore, KeyStoreError

    settings = get_cli_settings()
    store = KeyStore(settings.resolved_keys_file())
    try:
        if args.keys_command == "add":
            key = store.add(args.name, args.scope)
            print(f"Created {args.scope} key {args.name!r} in {store.path}. It is shown only now:")
            print(key)
        elif args.keys_command == "list":
            records = store.records()
            if not records:
                print(f"No keys in {store.path}.")
            for rec in records:
                print(f"{rec.name}\t{rec.scope}\t{rec.hint}…\tcreated {rec.created_at}")
        else:
            store.revoke(args.name)
            print(f"Revoked key {args.name!r}.")
    except KeyStoreError as e:
        eprint(f"qa: error: {e}")
        return EXIT_ERROR
    return EXIT_OK


# --------------------------------------------------------------------------- restore


def add_restore_command(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "restore",
        help="bring a deleted or replaced document back from the trash",
        description="Restore the newest trashed version of a document (the same bytes, indexed again). "
        "A running server picks up the new index version by itself.",
    )
    p.add_argument("id", nargs="?", help="the document id (as GET /documents lists it)")
    p.add_argument("--entry", help="a specific trash entry (from --list) instead of the newest")
    p.add_argument("--list", action="store_true", help="list the trash instead")
    p.set_defaults(handler=cmd_restore)


def _restore_misuse(args: argparse.Namespace) -> str | None:
    """Why these options cannot go together (they used to be ignored: `qa restore --entry E` listed the trash)."""
    if args.list and (args.id or args.entry):
        return "--list takes no document id or --entry: run `qa restore --list` alone"
    if args.entry and not args.id:
        return "--entry needs the document id too: qa restore ID --entry ENTRY (both as `qa restore --list` shows)"
    return None


def cmd_restore(args: argparse.Namespace) -> int:
    misuse = _restore_misuse(args)
    if misuse:
        eprint(f"qa: error: {misuse}")
        return EXIT_ERROR
    settings = get_cli_settings()
    listing = args.list or not args.id
    if settings.store != "faiss":  # the store keeps its own trash (qa.store.protocol.TrashBin)
        writer = store_writer(settings)
        try:
            return _restore(args, writer.trash if listing else lambda: writer.restore(args.id, entry=args.entry)[1])
        finally:
            writer.store.close()
    if listing:
        return _restore(args, _writer(settings).trash)
    from qa.pipeline import QAPipeline

    pipeline = QAPipeline(settings)
    pipeline.embedder, pipeline.chunker = pipeline._load_models()
    store, _ = open_index(settings, pipeline.embedder)
    writer = _writer(settings, pipeline._index_changes)
    return _restore(args, lambda: writer.restore(args.id, store, pipeline._load_store, entry=args.entry)[1])


def _restore(args: argparse.Namespace, action) -> int:
    """List the trash (``action`` returns its entries) or restore (``action`` returns the entry)."""
    from qa.validation import DocumentError

    if args.list or not args.id:
        entries = action()
        if not entries:
            print("The trash is empty.")
        for t in entries:
            print(f"{t.entry}\t{t.id}\t{t.size} bytes\t{t.reason} {t.deleted_at}")
        return EXIT_OK
    try:
        entry = action()
    except KeyError:
        eprint(f"qa: error: nothing in the trash for {args.id!r} (see `qa restore --list`)")
        return EXIT_ERROR
    except DocumentError as e:
        eprint(f"qa: error: {e}")
        return EXIT_ERROR
    print(f"Restored {args.id} ({entry.size} bytes, {entry.reason} {entry.deleted_at}).")
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
    add_keys_command(subparsers)
    add_restore_command(subparsers)

    from qa.evaluation.cli import add_eval_command
    from qa.training.reader_cli import add_export_reader_command, add_soup_reader_command, add_train_reader_command

    add_serve_command(subparsers)
    add_eval_command(subparsers)
    add_train_reader_command(subparsers)
    add_export_reader_command(subparsers)
    from qa.training.quantize import add_quantize_reader_command

    add_quantize_reader_command(subparsers)
    from qa.training.quantize_embedder import add_quantize_embedder_command

    add_quantize_embedder_command(subparsers)
    from qa.training.token_probe import add_fit_token_probe_command

    add_fit_token_probe_command(subparsers)
    add_soup_reader_command(subparsers)
    from qa.training.cli import add_training_commands

    add_training_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from qa.config import ModelNotFoundError, SettingsError
    from qa.index_store import IndexLoadError
    from qa.reader.int8 import Int8Error

    try:
        parser = build_parser()  # reads the settings for its defaults
    except SettingsError as e:
        eprint(f"qa: error: {e}")
        return EXIT_ERROR
    args = parser.parse_args(argv)
    tolerate_unencodable_text()
    level = logging.WARNING - 10 * min(args.verbose, 2)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)  # on the handler: some libraries (bm25s) force their loggers to DEBUG
    logging.basicConfig(level=level, handlers=[handler])
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except IndexLoadError as e:
        eprint(f"qa: error: {e}")
        return EXIT_INDEX
    except (Int8Error, SettingsError, ModelNotFoundError) as e:  # an int8 runtime that cannot run here, a bad QA_*
        # value, a model folder without a model: it says what to do
        eprint(f"qa: error: {e}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        eprint("qa: interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
