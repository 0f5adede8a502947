"""The open setting on SQuAD: every article is a document, every question goes through the whole pipeline.

    qa eval --open-squad ../shared/squad/squad-v1.1-dev-42.json --limit 600 --seed 0
    qa eval --open-squad ../shared/squad/squad-v1.1-dev-42.json --limit 600 --seed 0 --remove-articles 8
    qa eval --open-squad FILE --workdir /tmp/open-dev42     # keep corpus + index between runs

* Each article of the SQuAD file becomes one document ``<safe title>.txt`` whose text is the
  article's paragraph contexts joined by ``"\\n\\n"`` (:data:`PARAGRAPH_SEPARATOR`). Every gold answer's
  ``answer_start`` is mapped into that text, so an item's evidence spans slice exactly to the answer
  (``text[start:end] == answer``; an answer whose offset does not slice is looked up in its paragraph,
  nearest to the given offset, and dropped only if absent: :attr:`OpenSetting.warnings` names such
  questions, and the CLI prints them).
* ``remove_articles=N``: N articles, drawn with ``random.Random(seed)`` from the sorted titles, are
  left out of the corpus. Their questions stay in the evaluation as unanswerable items (no answers,
  no evidence): the right response is to abstain. Items are typed ``"present"`` or ``"removed"``,
  so the report's per-type tables give both groups separately.
* ``limit=Q``: a seeded sample of Q questions (``random.Random(f"{seed}:questions")``), drawn from
  ALL questions of the selected articles before any removal, so runs with and without
  ``--remove-articles`` and the same seed ask the same questions, in file order.
* ``titles``: only these articles (e.g. a split of SQuAD train articles for verifier training data).

Nothing here loads a model: :func:`build_open_setting` and :func:`write_corpus` are plain file work;
:func:`build_index` (embedder + chunker) is imported lazily by the CLI.

Never evaluate on articles the reader was trained on: :func:`check_no_training_articles` refuses a
file that shares titles with the SQuAD training file (the CLI checks ``Settings.squad_dir /
squad-v1.1-train.json`` when it exists).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.evaluation.dataset import EvalItem, EvidenceSpan
from qa.squad_data import load_squad_json

PARAGRAPH_SEPARATOR = "\n\n"
TRAIN_FILE_NAME = "squad-v1.1-train.json"
_UNSAFE = re.compile(r"[^\w.-]+")
MAX_NAME_BYTES = 200  # of a file name's stem: file systems allow 255 bytes a name (suffixes and ".txt" fit after it)


class TrainingArticlesError(ValueError):
    """The evaluation file shares articles with the training file."""


@dataclass
class OpenSetting:
    """Documents (file name -> text) and the evaluation items of one open-setting run."""

    documents: dict[str, str]  # the corpus: present articles only
    items: list[EvalItem]
    removed_titles: set[str] = field(default_factory=set)
    present_titles: set[str] = field(default_factory=set)
    document_of_title: dict[str, str] = field(default_factory=dict)  # every selected title -> file name
    source: str = ""
    seed: int = 0
    #: gold answers found nowhere in their paragraph (kept as answers, without evidence), one line each
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "seed": self.seed,
            "articles": len(self.present_titles) + len(self.removed_titles),
            "present_articles": len(self.present_titles),
            "removed_articles": sorted(self.removed_titles),
            "questions": len(self.items),
            "questions_present": sum(1 for i in self.items if i.type == "present"),
            "questions_removed": sum(1 for i in self.items if i.type == "removed"),
        }


def safe_title(title: str) -> str:
    """A file-name-safe version of an article title (letters and digits, Unicode included, and ``._-``
    kept; runs of anything else -> ``_``; no leading/trailing dots or underscores; cut to
    :data:`MAX_NAME_BYTES` bytes of UTF-8)."""
    name = _UNSAFE.sub("_", title).strip("._")
    name = name.encode("utf-8")[:MAX_NAME_BYTES].decode("utf-8", "ignore").rstrip("._")
    return name or "article"


def _load(path: str | Path, unique_ids: bool = False) -> list[dict]:
    """The articles of a SQuAD file, checked by the project's one loader (qa.squad_data.load_squad_json:
    a malformed file raises its SquadFormatError, a ValueError naming the file and the question)."""
    return load_squad_json(path, unique_ids)[1]


def squad_titles(path: str | Path) -> list[str]:
    """The article titles of a SQuAD file, in file order."""
    return [str(a.get("title", "")) for a in _load(path)]


def check_no_training_articles(eval_path: str | Path, train_path: str | Path) -> None:
    """Raise :class:`TrainingArticlesError` when ``eval_path`` shares article titles with ``train_path``."""
    overlap = sorted(set(squad_titles(eval_path)) & set(squad_titles(train_path)))
    if overlap:
        shown = ", ".join(overlap[:5]) + (f" and {len(overlap) - 5} more" if len(overlap) > 5 else "")
        raise TrainingArticlesError(
            f"{eval_path} shares {len(overlap)} article(s) with the training file {train_path} ({shown}); "
            "the reader has seen their questions, so the open-setting figures would be inflated. "
            "Evaluate on articles outside the training file (e.g. squad-v1.1-dev-42.json)."
        )


def _locate(context: str, text: str, start: Any) -> int | None:
    """Offset of ``text`` in ``context``: ``start`` if it slices, else the occurrence nearest to it."""
    try:
        s = int(start)
    except (TypeError, ValueError):
        s = 0
    if 0 <= s and context[s : s + len(text)] == text:
        return s
    found = [m.start() for m in re.finditer(re.escape(text), context)] if text else []
    return min(found, key=lambda x: abs(x - s)) if found else None


def build_open_setting(
    squad_path: str | Path,
    titles: Iterable[str] | None = None,
    remove_articles: int = 0,
    seed: int = 0,
    limit: int | None = None,
) -> OpenSetting:
    """The open setting of a SQuAD file (see the module docstring).

    ``titles``: restrict to these articles (all when None; unknown titles are an error).
    ``remove_articles``: how many of the selected articles to leave out of the corpus (0 <= N <= count).
    ``limit``: a seeded sample of this many questions (all when None or larger than the total).
    """
    articles = [a for a in _load(squad_path, unique_ids=True)]
    by_title: dict[str, dict] = {}
    for a in articles:
        t = str(a.get("title", ""))
        if t in by_title:
            raise ValueError(f"{squad_path}: article title {t!r} appears twice")
        by_title[t] = a
    if titles is not None:
        wanted = set(titles)
        unknown = sorted(wanted - set(by_title))
        if unknown:
            raise ValueError(f"{squad_path}: no article titled {', '.join(map(repr, unknown[:5]))}")
        articles = [a for a in articles if str(a.get("title", "")) in wanted]
    if remove_articles < 0:
        raise ValueError("remove_articles must be >= 0")
    if remove_articles > len(articles):
        raise ValueError(f"cannot remove {remove_articles} articles: only {len(articles)} selected")
    if limit is not None and limit < 1:
        raise ValueError("limit must be >= 1")

    # file names: safe titles, made unique in file order
    names: dict[str, str] = {}
    used: set[str] = set()
    for a in articles:
        base = safe_title(str(a.get("title", "")))
        name, n = f"{base}.txt", 2
        while name.lower() in used:
            name, n = f"{base}_{n}.txt", n + 1
        used.add(name.lower())
        names[str(a.get("title", ""))] = name

    all_titles = sorted(names)
    removed = set(random.Random(seed).sample(all_titles, remove_articles)) if remove_articles else set()

    documents: dict[str, str] = {}
    texts: dict[str, str] = {}
    raw_items: list[tuple[str, str, str, list[str], list[EvidenceSpan]]] = []  # title, id, question, answers, spans
    warnings: dict[int, list[str]] = {}  # index in raw_items -> lines
    for a in articles:
        title = str(a.get("title", ""))
        doc = names[title]
        parts: list[str] = []
        offset = 0
        for para in a.get("paragraphs", []):
            context = para["context"]
            if parts:
                offset += len(PARAGRAPH_SEPARATOR)
            for qa in para.get("qas", []):
                answers: list[str] = []
                spans: list[EvidenceSpan] = []
                impossible = bool(qa.get("is_impossible", False))
                for ans in [] if impossible else qa.get("answers") or []:
                    text = ans.get("text", "") if isinstance(ans, dict) else ""
                    if not text.strip():
                        continue
                    if text not in answers:
                        answers.append(text)
                    s = _locate(context, text, ans.get("answer_start"))
                    if s is not None:
                        span = EvidenceSpan(doc, offset + s, offset + s + len(text))
                        if span not in spans:
                            spans.append(span)
                    elif title not in removed:
                        warnings.setdefault(len(raw_items), []).append(
                            f"{squad_path}: question {str(qa['id'])!r}: gold answer {text!r} is not in its "
                            "paragraph (no evidence span for it)")
                raw_items.append((title, str(qa["id"]), str(qa["question"]), answers, spans))
            parts.append(context)
            offset += len(context)
        text = PARAGRAPH_SEPARATOR.join(parts)
        assert len(text) == offset
        texts[title] = text
        if title not in removed:
            if "\r" in text:  # refused here, with the input checks (write_corpus raised it as a traceback)
                raise ValueError(f"{squad_path}: article {title!r} has a carriage return in a paragraph: its file "
                                 "would read back with other offsets; replace it with a newline in the file")
            documents[doc] = text

    if limit is not None and limit < len(raw_items):
        keep = set(random.Random(f"{seed}:questions").sample(range(len(raw_items)), limit))
        raw_items = [r for i, r in enumerate(raw_items) if i in keep]
        warnings = {i: w for i, w in warnings.items() if i in keep}

    items: list[EvalItem] = []
    for title, qid, question, answers, spans in raw_items:
        where = f"{squad_path}: question {qid!r}"
        if title in removed:
            items.append(EvalItem(qid, question, (), (), "removed",
                                  {"title": title, "document": names[title], "removed_answers": answers}, where))
        else:
            items.append(EvalItem(qid, question, tuple(answers), tuple(spans), "present",
                                  {"title": title, "document": names[title]}, where))
    return OpenSetting(documents=documents, items=items, removed_titles=removed,
                       present_titles=set(names) - removed, document_of_title=names,
                       source=str(squad_path), seed=seed,
                       warnings=[line for i in sorted(warnings) for line in warnings[i]])


def write_corpus(setting: OpenSetting, folder: str | Path) -> Path:
    """Make ``folder`` hold exactly the setting's documents (UTF-8, written byte-exact so that
    reading them back gives the same text): writes new or changed files, deletes other .txt/.md
    files (so a kept work folder can be reused with another ``--remove-articles``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in setting.documents.items():
        if "\r" in text:
            raise ValueError(f"document {name} contains a carriage return; offsets would not survive reading")
        data = text.encode("utf-8")
        path = folder / name
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
    for path in folder.iterdir():
        if path.is_file() and path.suffix.lower() in (".txt", ".md") and path.name not in setting.documents:
            path.unlink()
    return folder


def work_settings(settings: Any, corpus: str | Path, index_dir: str | Path, **updates: Any) -> Any:
    """``settings`` for a run on an open setting: its own corpus folder and a FAISS index in ``index_dir``,
    whatever ``QA_STORE`` says (with ``QA_STORE=milvus`` the pipeline would read, or fill, the service's own
    Milvus store instead)."""
    return settings.model_copy(update={"corpus_dir": Path(corpus), "index_dir": Path(index_dir), "store": "faiss",
                                       **updates})


def build_index(settings: Any, show_progress: bool = False) -> Any:
    """Index ``settings.corpus_dir`` into ``settings.index_dir`` (incrementally: unchanged documents
    keep their vectors) and return the store. Loads the embedder."""
    from qa.chunking import Chunker
    from qa.embedding import embedder_for
    from qa.index_store import build_or_update

    embedder = embedder_for(settings).warm_up()
    return build_or_update(settings.corpus_dir, settings, embedder, Chunker.from_settings(settings),
                           show_progress=show_progress)
