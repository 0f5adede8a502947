"""`qa eval`: score the full pipeline on evaluation sets, or the reader alone on a SQuAD file.

    qa eval                                   # eval/seeds_qa.jsonl, settings' retrieval mode and k
    qa eval my_set.jsonl other.jsonl --mode bm25 -k 10 --out eval/reports/bm25
    qa eval --json                            # JSON summary on stdout (tables go to stderr)
    qa eval --squad ../shared/squad/squad-v1.1-dev-42.json --limit 500
    qa eval --open-squad ../shared/squad/squad-v1.1-dev-42.json --limit 600 --seed 0 [--remove-articles 8]
        [--workdir /tmp/open-dev42]

--squad reads each question with its own paragraph (the reader alone); --open-squad turns every
article of the file into a document, indexes them with the normal pipeline in a temporary folder (or
--workdir, kept and reused incrementally) and asks every question (or a seeded sample of --limit)
through the whole pipeline; --remove-articles N leaves N seeded articles out of the corpus, making
their questions unanswerable (qa.evaluation.open_squad). Metric definitions: qa.evaluation.metrics,
qa.evaluation.selective and docs/evaluation.md.

Bad input (unreadable or malformed files, questions the service would refuse, options out of the
settings' ranges or that the chosen mode would ignore, an --out/--workdir that cannot be written) is
refused before anything loads: one line ``qa: error: ...`` on stderr, exit code 2. A run in which some
question raised writes its report, scores those questions wrong and exits 1 (docs/evaluation.md,
"Input checks").
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from qa import machine
from qa.console import print_json
from qa.config import PROJECT_ROOT

DEFAULT_EVAL_FILE = PROJECT_ROOT / "eval" / "seeds_qa.jsonl"
REPORTS_DIR = PROJECT_ROOT / "eval" / "reports"


def add_eval_command(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate the pipeline on question sets (or the reader alone on SQuAD)",
        description="Run the full pipeline on JSONL evaluation sets and write report.json, report.md "
        "and chart.png; or, with --squad, score the reader alone on a SQuAD v1.1/v2.0 file.",
    )
    p.add_argument("files", nargs="*", type=Path, metavar="FILE",
                   help=f"JSONL evaluation set(s) (default: {DEFAULT_EVAL_FILE.relative_to(PROJECT_ROOT)})")
    p.add_argument("--json", action="store_true", help="print the JSON summary on stdout")
    p.add_argument("--out", type=Path, default=None, help="report folder (default: eval/reports/<timestamp>/)")
    p.add_argument("--mode", choices=["dense", "bm25", "hybrid"], default=None,
                   help="retrieval mode (default: settings, QA_RETRIEVAL_MODE)")
    p.add_argument("-k", "--top-k", dest="k", type=int, default=None,
                   help="passages retrieved per question; recall@k uses it (default: settings)")
    p.add_argument("--max-answers", type=int, default=None, help="answers per question (default: settings)")
    p.add_argument("--squad", type=Path, default=None, metavar="FILE",
                   help="score the reader alone on a SQuAD v1.1/v2.0 JSON file (each question with its paragraph)")
    p.add_argument("--reader-dir", type=Path, default=None, help="reader model folder for --squad (default: settings)")
    p.add_argument("--retrieval-only", action="store_true",
                   help="score retrieval alone (recall@k, MRR by type): loads the index, not the reader")
    p.add_argument("--open-squad", dest="open_squad", type=Path, default=None, metavar="FILE",
                   help="the open setting: every article of a SQuAD file becomes a document of a fresh index and "
                        "every question goes through the whole pipeline")
    p.add_argument("--remove-articles", dest="remove_articles", type=int, default=0, metavar="N",
                   help="--open-squad: leave N seeded articles out of the corpus; their questions must be abstained on")
    p.add_argument("--seed", type=int, default=0, help="--open-squad: seed of the removal and of the --limit sample")
    p.add_argument("--workdir", type=Path, default=None, metavar="DIR",
                   help="--open-squad: keep the corpus and index here and reuse them (default: a temporary folder)")
    p.add_argument("--limit", type=int, default=None,
                   help="only the first N questions (--open-squad: a seeded sample of N questions)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (none either when stderr is not a terminal)")
    p.set_defaults(handler=cmd_eval, func=cmd_eval)  # qa.cli dispatches on handler, qa.training.reader_cli on func


def _timestamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def _runtime_meta(reader: Any) -> dict:
    """Where the figures came from: the machine (qa.machine) and how the reader ran on it."""
    probe = getattr(reader, "token_probe", None)
    return {"machine": machine.describe(), "reader_runtime": getattr(reader, "runtime", None),
            "reader_token_keep": getattr(probe, "keep", None) if probe is not None else None}


def _ran_on(meta: dict) -> str:
    """``reader torch-int8 on AMD EPYC, 2 cores; ...`` and a newline, or nothing without a description."""
    if not isinstance(meta.get("machine"), dict):
        return ""
    return f"reader {meta.get('reader_runtime') or '?'} on {machine.summary(meta['machine'])}\n"


def make_pipeline(settings: Any) -> Any:
    """The real pipeline, warmed up (tests replace this)."""
    from qa.pipeline import QAPipeline

    pipeline = QAPipeline(settings)
    pipeline.warm_up()
    return pipeline


def make_reader(model_dir: Path, settings: Any = None) -> Any:
    """The served reader, configured like the pipeline's (tests replace this)."""
    from qa.reader.reader import ExtractiveReader

    reader = ExtractiveReader(model_dir) if settings is None else ExtractiveReader.from_settings(settings, model_dir)
    reader.warm_up()
    return reader


# ------------------------------------------------------------------------------------- input checks
#
# Bad input is refused before anything heavy loads: one line on stderr, ``qa: error: ...``, exit code 2
# (docs/evaluation.md, "Input checks"). A run whose questions raised at run time still writes its
# report, and exits 1.

EXIT_ERRORS = 1  # the run finished and wrote its report, but some question raised: its figures count it wrong
EXIT_INPUT = 2  # bad input (files, options): nothing was run

# option -> the Settings field whose range it must respect (the same range as its QA_* variable)
_OPTION_FIELDS = {"k": ("-k", "top_k"), "max_answers": ("--max-answers", "max_answers")}


class EvalInputError(ValueError):
    """Bad input to ``qa eval``: the message is the whole one-line explanation."""


def _range_error(option: str, field_name: str, value: Any) -> str | None:
    """Why ``value`` is outside the range the settings accept for ``field_name`` (None when inside)."""
    from typing import Annotated

    from pydantic import TypeAdapter, ValidationError

    from qa.config import Settings

    info = Settings.model_fields[field_name]
    try:
        TypeAdapter(Annotated[(info.annotation, *info.metadata)]).validate_python(value)
    except ValidationError:
        lo = next((m.ge for m in info.metadata if getattr(m, "ge", None) is not None), None)
        hi = next((m.le for m in info.metadata if getattr(m, "le", None) is not None), None)
        bounds = (f"between {lo} and {hi}" if lo is not None and hi is not None
                  else f">= {lo}" if lo is not None else f"<= {hi}")
        return f"{option} must be {bounds} (as QA_{field_name.upper()}), not {value}"
    return None


def _check_options(args: argparse.Namespace) -> None:
    """EvalInputError for options out of range or that the chosen mode would silently ignore."""
    files = list(getattr(args, "files", None) or [])
    squad, open_squad = getattr(args, "squad", None), getattr(args, "open_squad", None)
    retrieval_only = bool(getattr(args, "retrieval_only", False))
    for attr, (option, field_name) in _OPTION_FIELDS.items():
        value = getattr(args, attr, None)
        if value is not None:
            problem = _range_error(option, field_name, value)
            if problem:
                raise EvalInputError(problem)
    if getattr(args, "limit", None) is not None and args.limit < 1:
        raise EvalInputError("--limit must be >= 1")
    if (getattr(args, "remove_articles", 0) or 0) < 0:
        raise EvalInputError("--remove-articles must be >= 0")
    if squad is not None and open_squad is not None:
        raise EvalInputError("--squad and --open-squad cannot be combined: run them one at a time")
    if files and (squad is not None or open_squad is not None):
        which = "--squad" if squad is not None else "--open-squad"
        raise EvalInputError(f"evaluation files ({files[0]}) cannot be combined with {which}: run them one at a time")
    if retrieval_only and (squad is not None or open_squad is not None):
        raise EvalInputError("--retrieval-only scores JSONL evaluation sets; it cannot be combined with "
                             + ("--squad" if squad is not None else "--open-squad"))
    if open_squad is None:
        for attr, option, default in (("remove_articles", "--remove-articles", 0), ("seed", "--seed", 0),
                                      ("workdir", "--workdir", None)):
            if getattr(args, attr, default) != default:
                raise EvalInputError(f"{option} applies only to --open-squad")
    if squad is None and getattr(args, "reader_dir", None) is not None:
        raise EvalInputError("--reader-dir applies only to --squad (the pipeline uses QA_READER_MODEL_DIR)")
    if squad is not None:
        for attr, option in (("mode", "--mode"), ("k", "-k"), ("max_answers", "--max-answers")):
            if getattr(args, attr, None) is not None:
                raise EvalInputError(f"{option} does not apply to --squad (the reader alone reads each question "
                                     "with its own paragraph: no retrieval)")
    if retrieval_only and getattr(args, "max_answers", None) is not None:
        raise EvalInputError("--max-answers does not apply to --retrieval-only (no reader)")


def _settings_for(args: argparse.Namespace) -> Any:
    """The settings with the command line's --mode, -k and --max-answers, validated like QA_* values
    (EvalInputError for a value out of range)."""
    from qa.config import get_settings

    updates: dict[str, Any] = {}
    if getattr(args, "mode", None):
        updates["retrieval_mode"] = args.mode
    if getattr(args, "k", None) is not None:
        updates["top_k"] = args.k
    if getattr(args, "max_answers", None) is not None:
        updates["max_answers"] = args.max_answers
    for attr, (option, field_name) in _OPTION_FIELDS.items():
        if field_name in updates:
            problem = _range_error(option, field_name, updates[field_name])
            if problem:
                raise EvalInputError(problem)
    return get_settings().model_copy(update=updates)


def _question_check(settings: Any) -> Any:
    """The service's own question rule (QAPipeline.check_question: a letter or digit, at most
    ``settings.max_question_chars`` characters) as a function of the question."""
    from types import SimpleNamespace

    from qa.pipeline import QAPipeline

    holder = SimpleNamespace(settings=settings)  # check_question reads only .settings
    return lambda question: QAPipeline.check_question(holder, question)  # type: ignore[arg-type]


def _prepare_dir(path: Path, option: str) -> list[Path]:
    """Create ``path`` (and its parents) and check that files can be written there, before the run:
    EvalInputError otherwise. Returns the folders it created (deepest first), for :func:`_remove_empty`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise EvalInputError(f"{option} {path}: is a file, not a folder")
    created: list[Path] = []
    p = path
    while not p.exists() and p != p.parent:
        created.append(p)
        p = p.parent
    try:
        path.mkdir(parents=True, exist_ok=True)
        import tempfile

        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        _remove_empty(created)
        raise EvalInputError(f"{option} {path}: cannot write there: {exc.strerror or exc}") from None
    return created


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders :func:`_prepare_dir` created, deepest first, while they are empty (a run that
    stopped before writing leaves nothing behind)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _evidence_problems(items: list, document_text: Any) -> list[str]:
    """One line per evidence span that no passage can overlap: its document is not indexed, or it
    ends past the document's text. Such spans count as retrieval misses."""
    lengths: dict[str, int | None] = {}
    lines: list[str] = []
    for item in items:
        for ev in item.evidence:
            if ev.document not in lengths:
                try:
                    lengths[ev.document] = len(document_text(ev.document))
                except Exception:  # KeyError (unknown document) or any failure to read it
                    lengths[ev.document] = None
            n = lengths[ev.document]
            where = item.where or f"question {item.id!r}"
            if n is None:
                lines.append(f"{where}: evidence document {ev.document!r} is not in the index")
            elif ev.end > n:
                lines.append(f"{where}: evidence {ev.document}[{ev.start}:{ev.end}] ends past the document's "
                             f"{n} characters")
    return lines


def _warn_lines(lines: list[str], tail: str, shown: int = 20) -> None:
    for line in lines[:shown]:
        print(f"warning: {line}", file=sys.stderr)
    if len(lines) > shown:
        print(f"warning: ... and {len(lines) - shown} more", file=sys.stderr)
    if lines:
        print(f"warning: {tail}", file=sys.stderr)


def _errors_exit(errors: int, markdown: Path) -> int:
    """The exit code of a finished run: EXIT_ERRORS (and a line saying why) when questions raised."""
    if not errors:
        return 0
    print(f"qa: error: {errors} question(s) raised an error and are scored wrong; see {markdown}", file=sys.stderr)
    return EXIT_ERRORS


def cmd_eval(args: argparse.Namespace) -> int:
    if not getattr(args, "no_progress", True) and not sys.stderr.isatty():
        args.no_progress = True  # a log file or CI: no progress bars in it (as `qa index`)
    try:
        _check_options(args)
    except EvalInputError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    try:
        if getattr(args, "open_squad", None) is not None:
            return _cmd_open_squad(args)
        if args.squad is not None:
            return _cmd_squad(args)
        return _cmd_eval_sets(args)
    except EvalInputError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return EXIT_INPUT


def make_retriever_for(settings: Any) -> Any:
    """The retriever of ``settings.retrieval_mode`` over the active index (tests replace this)."""
    from qa.evaluation.retrieval import load_index
    from qa.retriever.hybrid import make_retriever

    store, embedder = load_index(settings)
    retriever = make_retriever(settings.retrieval_mode, store, embedder, settings)
    if hasattr(retriever, "warm_up"):
        retriever.warm_up()
    return retriever


def _document_text_of(obj: Any) -> Any:
    """``document_text(doc_id)`` of a pipeline, or of the store under a retriever; None if there is none."""
    for candidate in (obj, getattr(obj, "store", None), getattr(getattr(obj, "dense", None), "store", None),
                      getattr(getattr(obj, "bm25", None), "store", None)):
        fn = getattr(candidate, "document_text", None)
        if callable(fn):
            return fn
    return None


def _cmd_retrieval_only(args: argparse.Namespace, files: list[Path], items: list, settings: Any = None) -> int:
    settings = settings if settings is not None else _settings_for(args)
    out_dir = args.out or (REPORTS_DIR / f"retrieval-{settings.retrieval_mode}-{_timestamp()}")
    created = _prepare_dir(out_dir, "--out")
    try:
        return _run_retrieval_only(args, files, items, settings, out_dir)
    finally:
        _remove_empty(created)


def _run_retrieval_only(args: argparse.Namespace, files: list[Path], items: list, settings: Any,
                        out_dir: Path) -> int:
    from qa.evaluation.report import fmt
    from qa.evaluation.retrieval import retrieval_report

    retriever = make_retriever_for(settings)
    document_text = _document_text_of(retriever)
    problems = _evidence_problems(items, document_text) if document_text is not None else []
    _warn_lines(problems, "these spans cannot overlap any passage: they count as retrieval misses")
    k = settings.top_k
    result = retrieval_report(retriever, items, k, progress=not args.no_progress)
    result["meta"] = {"created": _dt.datetime.now().isoformat(timespec="seconds"),
                      "eval_files": [str(f) for f in files], "retrieval_mode": settings.retrieval_mode,
                      "top_k": k, "git_commit": _git_commit(), "machine": machine.describe()}
    if problems:
        result["meta"]["input_warnings"] = problems
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    keys = [key for key in result["overall"] if key.startswith("recall@")] + ["mrr"]
    lines = [f"retrieval only ({settings.retrieval_mode}, k={k}): {result['overall']['count']} answerable questions",
             "type".ljust(16) + "".join(key.rjust(11) for key in ["n", *keys])]
    for name, agg in [("overall", result["overall"]), *result["by_type"].items()]:
        vals = [fmt(agg["count"], "int")] + [fmt(agg[key], "ratio" if key == "mrr" else "pct") for key in keys]
        lines.append(name.ljust(16) + "".join(v.rjust(11) for v in vals))
    lines.append(f"report: {out_dir / 'report.json'}")
    if args.json:
        print("\n".join(lines), file=sys.stderr)
        print_json({k2: v for k2, v in result.items() if k2 != "items"})
    else:
        print("\n".join(lines))
    return 0


def _eval_files(args: argparse.Namespace) -> list[Path]:
    """The JSONL files to evaluate; EvalInputError when one is given twice (it would count twice)."""
    files = list(args.files) or [DEFAULT_EVAL_FILE]
    seen: dict[Path, Path] = {}
    for f in files:
        key = Path(f).resolve()
        if key in seen:
            raise EvalInputError(f"{f}: given twice" + (f" (as {seen[key]})" if seen[key] != f else "")
                                 + "; its questions would count twice")
        seen[key] = Path(f)
    return files


def _cmd_eval_sets(args: argparse.Namespace) -> int:
    from qa.evaluation.dataset import EvalSetError, check_questions, load_eval_set

    files = _eval_files(args)
    settings = _settings_for(args)
    try:
        items = load_eval_set(*files)
        check_questions(items, _question_check(settings))
    except EvalSetError as exc:
        raise EvalInputError(str(exc)) from None
    if args.limit is not None:
        items = items[: args.limit]
    if not items:
        raise EvalInputError("no questions to evaluate")
    if getattr(args, "retrieval_only", False):
        return _cmd_retrieval_only(args, files, items, settings)
    out_dir = args.out or (REPORTS_DIR / _timestamp())
    created = _prepare_dir(out_dir, "--out")
    try:
        return _run_eval_sets(args, files, items, settings, out_dir)
    finally:
        _remove_empty(created)


def _run_eval_sets(args: argparse.Namespace, files: list[Path], items: list, settings: Any, out_dir: Path) -> int:
    from qa.evaluation.report import build_report, summary_table, write_report
    from qa.evaluation.runner import run_pipeline

    try:
        pipeline = make_pipeline(settings)
    except FileNotFoundError as exc:  # no reader model yet, no corpus...
        print(f"qa: error: {exc}", file=sys.stderr)
        return 1
    document_text = _document_text_of(pipeline)
    problems = _evidence_problems(items, document_text) if document_text is not None else []
    _warn_lines(problems, "these spans cannot overlap any passage or citation: they count as misses")
    results = run_pipeline(pipeline, items, top_k=settings.top_k, max_answers=settings.max_answers,
                           progress=not args.no_progress)
    meta = {
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "eval_files": [str(f) for f in files],
        "retrieval_mode": settings.retrieval_mode,
        "top_k": settings.top_k,
        "max_answers": settings.max_answers,
        "reader_model_dir": str(settings.reader_model_dir),
        "index_dir": str(settings.index_dir),
        "git_commit": _git_commit(),
        **_runtime_meta(getattr(pipeline, "reader", None)),
    }
    if problems:
        meta["input_warnings"] = problems
    report = build_report(results, settings.top_k, meta)
    paths = write_report(report, out_dir)
    table = summary_table(report)
    where = _ran_on(report.meta) + "report: " + ", ".join(str(p) for p in paths.values())
    if args.json:
        print(table, file=sys.stderr)
        print(where, file=sys.stderr)
        summary = {"meta": report.meta, "overall": report.overall, "by_type": report.by_type,
                   "report_files": {k: str(v) for k, v in paths.items()}}
        print_json(summary)
    else:
        print(table)
        print(where)
    return _errors_exit(report.overall.get("errors") or 0, paths["markdown"])


def build_open_index(settings: Any, progress: bool = False) -> Any:
    """Index the open-setting corpus (``settings.corpus_dir``) into ``settings.index_dir``,
    incrementally (tests replace this)."""
    from qa.evaluation.open_squad import build_index

    return build_index(settings, show_progress=progress)


def _cmd_open_squad(args: argparse.Namespace) -> int:
    from qa.evaluation.dataset import EvalSetError, check_questions
    from qa.evaluation.open_squad import (
        TRAIN_FILE_NAME,
        TrainingArticlesError,
        build_open_setting,
        check_no_training_articles,
    )

    path = args.open_squad
    settings = _settings_for(args)
    train = Path(settings.squad_dir) / TRAIN_FILE_NAME
    try:
        if train.is_file():
            check_no_training_articles(path, train)
        setting = build_open_setting(path, remove_articles=args.remove_articles, seed=args.seed, limit=args.limit)
        check_questions(setting.items, _question_check(settings))
    except (TrainingArticlesError, EvalSetError, ValueError) as exc:
        raise EvalInputError(str(exc)) from None
    if not setting.items:
        raise EvalInputError("no questions to evaluate")
    if args.workdir is not None:
        # the work folder's corpus/ is synchronised (other .txt/.md files deleted) and index/ rebuilt:
        # never let it be the service's own corpus or index
        for sub, own in (("corpus", settings.corpus_dir), ("index", settings.index_dir)):
            if (Path(args.workdir) / sub).resolve() == Path(own).resolve():
                raise EvalInputError(f"--workdir {args.workdir}: {sub}/ there is the service's own {sub} folder; "
                                     "choose another folder")
    _warn_lines(setting.warnings, "such answers have no evidence span: retrieval cannot find them")
    out_dir = args.out or (REPORTS_DIR / f"open-squad-{_timestamp()}")
    created = _prepare_dir(out_dir, "--out")
    created_work: list[Path] = []
    try:
        if args.workdir is not None:
            created_work = _prepare_dir(args.workdir, "--workdir")
        return _run_open_squad(args, setting, settings, out_dir)
    finally:
        _remove_empty(created_work)
        _remove_empty(created)


def _run_open_squad(args: argparse.Namespace, setting: Any, settings: Any, out_dir: Path) -> int:
    import tempfile

    from qa.evaluation.open_squad import work_settings, write_corpus
    from qa.evaluation.report import build_report, summary_table, write_report
    from qa.evaluation.runner import run_pipeline

    path = args.open_squad
    with tempfile.TemporaryDirectory(prefix="qa-open-squad-") as tmp:
        work = Path(args.workdir) if args.workdir is not None else Path(tmp)
        corpus = write_corpus(setting, work / "corpus")
        settings = work_settings(settings, corpus, work / "index")
        (work / "setting.json").write_text(json.dumps(setting.summary(), indent=2, ensure_ascii=False) + "\n",
                                           encoding="utf-8")
        try:
            store = build_open_index(settings, progress=not args.no_progress)
            pipeline = make_pipeline(settings)
        except FileNotFoundError as exc:
            print(f"qa: error: {exc}", file=sys.stderr)
            return 1
        build = getattr(store, "build_report", None)
        results = run_pipeline(pipeline, setting.items, top_k=settings.top_k, max_answers=settings.max_answers,
                               progress=not args.no_progress)
        meta = {
            "created": _dt.datetime.now().isoformat(timespec="seconds"),
            "eval_files": [str(path)],
            "setting": "open-squad",
            "open_squad": setting.summary(),
            "remove_articles": args.remove_articles,
            "seed": args.seed,
            "limit": args.limit,
            "workdir": str(args.workdir) if args.workdir is not None else None,
            "index_build": build.summary() if build is not None and hasattr(build, "summary") else None,
            "retrieval_mode": settings.retrieval_mode,
            "top_k": settings.top_k,
            "max_answers": settings.max_answers,
            "reader_model_dir": str(settings.reader_model_dir),
            "git_commit": _git_commit(),
            **_runtime_meta(getattr(pipeline, "reader", None)),
        }
        if setting.warnings:
            meta["input_warnings"] = list(setting.warnings)
    report = build_report(results, settings.top_k, meta)
    paths = write_report(report, out_dir)
    s = setting.summary()
    head = (f"open SQuAD: {path}: {s['articles']} articles ({len(setting.removed_titles)} removed), "
            f"{s['questions']} questions ({s['questions_present']} present, {s['questions_removed']} removed), "
            f"seed {args.seed}")
    table = summary_table(report)
    where = _ran_on(report.meta) + "report: " + ", ".join(str(p) for p in paths.values())
    if args.json:
        print(head, file=sys.stderr)
        print(table, file=sys.stderr)
        print(where, file=sys.stderr)
        summary = {"meta": report.meta, "overall": report.overall, "by_type": report.by_type,
                   "report_files": {k: str(v) for k, v in paths.items()}}
        print_json(summary)
    else:
        print(head)
        print(table)
        print(where)
    return _errors_exit(report.overall.get("errors") or 0, paths["markdown"])


def _cmd_squad(args: argparse.Namespace) -> int:
    from qa.evaluation.squad import load_squad_file

    try:
        loaded = load_squad_file(args.squad, limit=args.limit)
    except ValueError as exc:  # qa.squad_data.SquadFormatError: names the file and the question
        raise EvalInputError(str(exc)) from None
    if not loaded[1]:
        raise EvalInputError(f"no questions to evaluate in {args.squad}")
    settings = _settings_for(args)
    out_dir = args.out or (REPORTS_DIR / f"squad-{_timestamp()}")
    created = _prepare_dir(out_dir, "--out")
    try:
        return _run_squad(args, loaded, settings, out_dir)
    finally:
        _remove_empty(created)


def _run_squad(args: argparse.Namespace, loaded: tuple, settings: Any, out_dir: Path) -> int:
    from qa.evaluation.squad import evaluate_squad

    model_dir = args.reader_dir or settings.reader_model_dir
    try:
        reader = make_reader(model_dir, settings)
    except FileNotFoundError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return 1
    result = evaluate_squad(reader, args.squad, limit=args.limit, progress=not args.no_progress, loaded=loaded)
    result["reader_model_dir"] = str(model_dir)
    result["created"] = _dt.datetime.now().isoformat(timespec="seconds")
    result.update(_runtime_meta(reader))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    s = result["scores"]
    lines = [f"SQuAD {result['version'] or '?'} reader-only: {args.squad} ({s['total']} questions)"]
    for key in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "forced_exact",
                "forced_f1", "abstained", "coverage_answerable", "no_answer_accuracy", "auroc_correct",
                "auroc_answerable", "aurc", "coverage_at_90_precision", "ece", "ece_calibrated_median",
                "ece_calibrated_p90", "ece_p_value", "latency_p50_ms", "latency_p95_ms"):
        if s.get(key) is not None:
            digits = 3 if key in ("auroc_correct", "auroc_answerable", "aurc", "ece", "ece_calibrated_median",
                                  "ece_calibrated_p90", "ece_p_value") else 2
            lines.append(f"  {key:<24} {s[key]:8.{digits}f}")
    lines.append(_ran_on(result).rstrip("\n"))
    lines.append(f"report: {out_dir / 'report.json'}")
    if args.json:
        print("\n".join(lines), file=sys.stderr)
        print_json({k: v for k, v in result.items() if k not in ("predictions", "items")})
    else:
        print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m qa.evaluation.cli eval ...``)."""
    parser = argparse.ArgumentParser(prog="qa")
    sub = parser.add_subparsers(dest="command", required=True)
    add_eval_command(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
