"""The one SQuAD v1.1/v2.0 JSON loader: training (qa.training.squad) and evaluation
(qa.evaluation.squad) both read files through :func:`read_squad`.

One rule for unanswerable questions (:func:`is_impossible`): a question is unanswerable when the
file flags it (v2.0 ``is_impossible``) or when it has no gold answer with text. (v1.1 files always
have answers; the official v2.0 script scores a question without answers as unanswerable too.)

Every reader of a file (:func:`read_squad`, :func:`squad_titles`, :func:`load_squad_json`) checks the
whole file first and raises :class:`SquadFormatError` (a ValueError) with one line naming the file and
the place (``data[3].paragraphs[0].qas[7] (id '5733...')``): not UTF-8, not JSON, no ``data`` list, an
article/paragraph/question that is not an object, a missing or non-string ``context`` or ``question``,
a missing id or one that is not a string or an integer, a repeated id (``unique_ids``: the evaluation
loaders ask for it), an answer whose ``text`` is not a
string or whose ``answer_start`` is not an integer, an ``is_impossible`` that is not a boolean.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SquadItem:
    id: str
    title: str
    context: str
    question: str
    answers: tuple[dict[str, Any], ...] = field(default_factory=tuple)  # {"text", "answer_start"?}
    is_impossible: bool = False

    @property
    def answer_texts(self) -> tuple[str, ...]:
        return tuple(a["text"] for a in self.answers)


class SquadFormatError(ValueError):
    """A file that is not a well-formed SQuAD v1.1/v2.0 file; the message names the file and the place."""


def is_impossible(qa: dict[str, Any]) -> bool:
    """The project's single rule: flagged ``is_impossible``, or no answer with text."""
    return bool(qa.get("is_impossible", False)) or not _answers(qa)


def _answers(qa: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    return tuple(dict(a) for a in qa.get("answers", []) or [] if isinstance(a, dict) and isinstance(a.get("text"), str))


def _read_json(path: str | Path) -> Any:
    path = Path(path)
    if path.is_dir():
        raise SquadFormatError(f"{path}: is a directory, not a SQuAD file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SquadFormatError(f"SQuAD file not found: {path}") from None
    except OSError as exc:
        raise SquadFormatError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SquadFormatError(f"{path}:{line}: not valid UTF-8") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise SquadFormatError(f"{path}: invalid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError (names line and column), or an integer of > 4300 digits
        raise SquadFormatError(f"{path}: invalid JSON: {exc}") from None


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _kind(x: Any) -> str:
    if isinstance(x, bool):
        return "a boolean"
    if isinstance(x, (int, float)):
        return "a number"
    if x is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string"}.get(type(x), type(x).__name__)


def check_squad(data: list, path: str | Path, unique_ids: bool = False) -> None:
    """Raise SquadFormatError at the first malformed article, paragraph, question or answer of a SQuAD
    file's ``data`` list (module docstring); with ``unique_ids``, also at a repeated question id (the
    evaluation scores questions by id)."""
    ids: dict[str, str] = {}
    for ai, article in enumerate(data):
        where = f"{path}: data[{ai}]"
        if not isinstance(article, dict):
            raise SquadFormatError(f"{where} must be an object (an article), not {_kind(article)}")
        if "title" in article and not isinstance(article["title"], str):
            raise SquadFormatError(f"{where}: 'title' must be a string, not {_kind(article['title'])}")
        paragraphs = article.get("paragraphs", [])
        if not isinstance(paragraphs, list):
            raise SquadFormatError(f"{where}: 'paragraphs' must be an array, not {_kind(paragraphs)}")
        for pi, para in enumerate(paragraphs):
            pwhere = f"{where}.paragraphs[{pi}]"
            if not isinstance(para, dict):
                raise SquadFormatError(f"{pwhere} must be an object (a paragraph), not {_kind(para)}")
            if "context" not in para:
                raise SquadFormatError(f"{pwhere}: no 'context'")
            if not isinstance(para["context"], str):
                raise SquadFormatError(f"{pwhere}: 'context' must be a string, not {_kind(para['context'])}")
            qas = para.get("qas", [])
            if not isinstance(qas, list):
                raise SquadFormatError(f"{pwhere}: 'qas' must be an array, not {_kind(qas)}")
            for qi, qa in enumerate(qas):
                qwhere = f"{pwhere}.qas[{qi}]"
                if not isinstance(qa, dict):
                    raise SquadFormatError(f"{qwhere} must be an object (a question), not {_kind(qa)}")
                qid = qa.get("id")
                if qid is None or qid == "":
                    raise SquadFormatError(f"{qwhere}: no 'id'")
                if not (isinstance(qid, str) or _is_int(qid)):
                    raise SquadFormatError(f"{qwhere}: 'id' must be a string or an integer, not {_kind(qid)}")
                place = f"data[{ai}].paragraphs[{pi}].qas[{qi}]"
                qwhere = f"{qwhere} (id {str(qid)!r})"
                if unique_ids and str(qid) in ids:
                    raise SquadFormatError(f"{qwhere}: duplicate id (also {ids[str(qid)]})")
                ids[str(qid)] = place
                if "question" not in qa:
                    raise SquadFormatError(f"{qwhere}: no 'question'")
                if not isinstance(qa["question"], str):
                    raise SquadFormatError(f"{qwhere}: 'question' must be a string, not {_kind(qa['question'])}")
                if "is_impossible" in qa and not isinstance(qa["is_impossible"], bool):
                    raise SquadFormatError(f"{qwhere}: 'is_impossible' must be true or false, "
                                           f"not {_kind(qa['is_impossible'])}")
                answers = qa.get("answers", [])
                if answers is None:
                    answers = []
                if not isinstance(answers, list):
                    raise SquadFormatError(f"{qwhere}: 'answers' must be an array, not {_kind(answers)}")
                for ni, ans in enumerate(answers):
                    awhere = f"{qwhere}: answers[{ni}]"
                    if not isinstance(ans, dict):
                        raise SquadFormatError(f"{awhere} must be an object with 'text', not {_kind(ans)}")
                    if not isinstance(ans.get("text"), str):
                        raise SquadFormatError(f"{awhere}: 'text' must be a string, not {_kind(ans.get('text'))}")
                    if "answer_start" in ans and not _is_int(ans["answer_start"]):
                        raise SquadFormatError(f"{awhere}: 'answer_start' must be an integer, "
                                               f"not {_kind(ans['answer_start'])}")


def load_squad_json(path: str | Path, unique_ids: bool = False) -> tuple[str, list]:
    """(version, data) of a SQuAD file, checked (:func:`check_squad`); SquadFormatError otherwise."""
    raw = _read_json(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise SquadFormatError(f"{path}: not a SQuAD file (no 'data' list)")
    check_squad(raw["data"], path, unique_ids)
    return str(raw.get("version", "")), raw["data"]


def _data(path: str | Path, unique_ids: bool = False) -> tuple[str, list]:
    return load_squad_json(path, unique_ids)


def read_squad(
    path: str | Path, titles: set[str] | None = None, limit: int | None = None, unique_ids: bool = False
) -> tuple[str, list[SquadItem]]:
    """(version, questions in file order) of a SQuAD v1.1/v2.0 file; only the articles whose title
    is in ``titles`` when given; at most ``limit`` questions. The whole file is checked first:
    SquadFormatError (a ValueError) for a malformed one, and with ``unique_ids`` for a repeated id."""
    version, data = _data(path, unique_ids)
    out: list[SquadItem] = []
    for article in data:
        title = article.get("title", "")
        if titles is not None and title not in titles:
            continue
        for para in article.get("paragraphs", []):
            context = para["context"]
            for qa in para.get("qas", []):
                out.append(SquadItem(id=str(qa["id"]), title=title, context=context, question=qa["question"],
                                     answers=_answers(qa), is_impossible=is_impossible(qa)))
                if limit is not None and len(out) >= limit:
                    return version, out
    return version, out


def squad_titles(path: str | Path) -> list[str]:
    """Article titles in file order."""
    return [a.get("title", "") for a in _data(path)[1]]
