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

from qa.textfile import read_utf8


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
    text = read_utf8(path, "a SQuAD file", SquadFormatError)
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


#: What a field of a SQuAD file must be, said as in the error message, and the test of it.
_WANT = {
    "an object": lambda x: isinstance(x, dict),
    "an array": lambda x: isinstance(x, list),
    "a string": lambda x: isinstance(x, str),
    "a string or an integer": lambda x: isinstance(x, str) or _is_int(x),
    "an integer": _is_int,
    "true or false": lambda x: isinstance(x, bool),
}


def _field(obj: dict, key: str, want: str, where: str, *, required: bool = False, default: Any = None) -> Any:
    """``obj[key]`` if it is ``want`` (a key of ``_WANT``); ``default`` when absent and not ``required``;
    SquadFormatError naming ``where`` otherwise."""
    if key not in obj or (default is not None and obj[key] is None):
        if required:
            raise SquadFormatError(f"{where}: no {key!r}")
        return default
    value = obj[key]
    if not _WANT[want](value):
        raise SquadFormatError(f"{where}: {key!r} must be {want}, not {_kind(value)}")
    return value


def _object(value: Any, where: str, what: str) -> dict:
    if not isinstance(value, dict):
        raise SquadFormatError(f"{where} must be an object ({what}), not {_kind(value)}")
    return value


def check_squad(data: list, path: str | Path, unique_ids: bool = False) -> None:
    """Raise SquadFormatError at the first malformed article, paragraph, question or answer of a SQuAD
    file's ``data`` list (module docstring); with ``unique_ids``, also at a repeated question id (the
    evaluation scores questions by id)."""
    ids: dict[str, str] = {}
    for ai, article in enumerate(data):
        where = f"{path}: data[{ai}]"
        _field(_object(article, where, "an article"), "title", "a string", where)
        for pi, para in enumerate(_field(article, "paragraphs", "an array", where, default=[])):
            pwhere = f"{where}.paragraphs[{pi}]"
            _field(_object(para, pwhere, "a paragraph"), "context", "a string", pwhere, required=True)
            for qi, qa in enumerate(_field(para, "qas", "an array", pwhere, default=[])):
                qwhere = f"{pwhere}.qas[{qi}]"
                if _object(qa, qwhere, "a question").get("id") in (None, ""):
                    raise SquadFormatError(f"{qwhere}: no 'id'")
                qid = str(_field(qa, "id", "a string or an integer", qwhere))
                place = f"data[{ai}].paragraphs[{pi}].qas[{qi}]"
                qwhere = f"{qwhere} (id {qid!r})"
                if unique_ids and qid in ids:
                    raise SquadFormatError(f"{qwhere}: duplicate id (also {ids[qid]})")
                ids[qid] = place
                _field(qa, "question", "a string", qwhere, required=True)
                _field(qa, "is_impossible", "true or false", qwhere)
                for ni, ans in enumerate(_field(qa, "answers", "an array", qwhere, default=[])):
                    awhere = f"{qwhere}: answers[{ni}]"
                    _object(ans, awhere, "with 'text'")
                    if not isinstance(ans.get("text"), str):
                        raise SquadFormatError(f"{awhere}: 'text' must be a string, not {_kind(ans.get('text'))}")
                    _field(ans, "answer_start", "an integer", awhere)


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
