"""The evaluation-set format (one JSON object a line) and its loader.

Each line::

    {"id": "kz-001", "question": "...", "answers": ["January 2", ...],
     "evidence": [{"document": "000_x.txt", "start": 1035, "end": 1044}, ...],
     "type": "date"}

``answers`` empty (and ``evidence`` empty) means no document answers the question: the correct
behaviour is to abstain. ``type`` is optional (default: "answerable"/"unanswerable"); any other
fields are kept in :attr:`EvalItem.extra`.

Refused (:class:`EvalSetError`, naming the file and line): a file that is not UTF-8, a line that is
not a JSON object (or nests too deeply); an ``id`` that is not a non-empty string or an integer; a
``question`` that is not a non-empty string; ``answers`` other than a list of non-blank strings;
evidence other than ``{"document": non-empty string, "start": int, "end": int}`` with
``0 <= start < end`` (floats, strings and booleans are not offsets); evidence without answers; a
``type`` that is not a string, ``"answerable"`` without answers or ``"unanswerable"`` with answers;
an id repeated within a file. Questions are checked against the service's own rule by the CLI
(:func:`check_questions`), which needs the settings' ``max_question_chars``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qa.textfile import read_utf8


@dataclass(frozen=True)
class EvidenceSpan:
    document: str
    start: int
    end: int

    def overlaps(self, document: str, start: int, end: int) -> bool:
        """True when ``document[start:end]`` shares at least one character with this span."""
        return document == self.document and start < self.end and self.start < end


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    answers: tuple[str, ...]
    evidence: tuple[EvidenceSpan, ...]
    type: str
    extra: dict = field(default_factory=dict, compare=False, hash=False)
    #: where the item comes from, for messages: ``FILE:LINE`` (empty when built in code)
    where: str = field(default="", compare=False, hash=False, repr=False)

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


class EvalSetError(ValueError):
    pass


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _nonblank_str(x: object) -> bool:
    return isinstance(x, str) and bool(x.strip())


def parse_item(obj: dict, where: str = "") -> EvalItem:
    if not isinstance(obj, dict):
        raise EvalSetError(f"{where}: expected a JSON object")
    qid = obj.get("id")
    if qid is None or (isinstance(qid, str) and not qid.strip()):
        raise EvalSetError(f"{where}: missing or empty 'id'")
    if not (isinstance(qid, str) or _is_int(qid)):
        raise EvalSetError(f"{where}: 'id' must be a string or an integer, not {_json_type(qid)}")
    question = obj.get("question")
    if question is None or (isinstance(question, str) and not question.strip()):
        raise EvalSetError(f"{where}: missing or empty 'question'")
    if not isinstance(question, str):
        raise EvalSetError(f"{where}: 'question' must be a string, not {_json_type(question)}")
    answers = obj.get("answers", [])
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise EvalSetError(f"{where}: 'answers' must be a list of strings")
    if not all(a.strip() for a in answers):
        raise EvalSetError(f"{where}: 'answers' holds a blank answer; an unanswerable question has \"answers\": []")
    evidence_raw = obj.get("evidence", [])
    if not isinstance(evidence_raw, list):
        raise EvalSetError(f"{where}: 'evidence' must be a list")
    evidence = []
    for ev in evidence_raw:
        if not isinstance(ev, dict) or not all(k in ev for k in ("document", "start", "end")):
            raise EvalSetError(f"{where}: bad evidence {_short(ev)}: expected "
                               '{"document": ..., "start": ..., "end": ...}')
        if not _nonblank_str(ev["document"]):
            raise EvalSetError(f"{where}: bad evidence {_short(ev)}: 'document' must be a non-empty string")
        if not (_is_int(ev["start"]) and _is_int(ev["end"])):
            raise EvalSetError(f"{where}: bad evidence {_short(ev)}: 'start' and 'end' must be integers")
        span = EvidenceSpan(ev["document"], ev["start"], ev["end"])
        if not 0 <= span.start < span.end:
            raise EvalSetError(f"{where}: bad evidence offsets {_short(ev)}")
        evidence.append(span)
    qtype = obj.get("type")
    if qtype is not None and not isinstance(qtype, str):
        raise EvalSetError(f"{where}: 'type' must be a string, not {_json_type(qtype)}")
    if not answers:
        if evidence:
            raise EvalSetError(f"{where}: evidence without answers; an unanswerable question has no evidence, "
                               "an answerable one needs its answers")
        if qtype == "answerable":
            raise EvalSetError(f"{where}: type 'answerable' but no answers (a question without answers is "
                               "unanswerable)")
    elif qtype == "unanswerable":
        raise EvalSetError(f"{where}: type 'unanswerable' but it has answers")
    qtype = qtype or ("answerable" if answers else "unanswerable")
    known = {"id", "question", "answers", "evidence", "type"}
    return EvalItem(
        id=str(qid),
        question=question,
        answers=tuple(answers),
        evidence=tuple(evidence),
        type=qtype,
        extra={k: v for k, v in obj.items() if k not in known},
        where=where,
    )


def _json_type(value: object) -> str:
    """The JSON name of a parsed value's type (``true`` is a boolean, ``1.5`` a number...)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {dict: "an object", list: "an array", str: "a string"}.get(type(value), type(value).__name__)


def _short(value: object, n: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def read_jsonl_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line) of a UTF-8 text file, lines split as text-mode reading splits them
    (``\\n``, ``\\r\\n``, ``\\r``). EvalSetError for a folder, an unreadable file or bytes that are not UTF-8."""
    text = read_utf8(path, "an evaluation file", EvalSetError)
    return list(enumerate(io.StringIO(text, newline=None), start=1))


def load_eval_set(*paths: str | Path) -> list[EvalItem]:
    """Items of one or more JSONL files, in order. Ids repeated across files get the file's stem
    as a prefix (``stem:id``); an id repeated within one file is an error, and so is a prefixed id
    that is still taken."""
    items: list[EvalItem] = []
    seen: dict[str, str] = {}  # id -> where
    for path in paths:
        path = Path(path)
        file_ids: set[str] = set()
        for lineno, line in read_jsonl_lines(path):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except RecursionError:
                raise EvalSetError(f"{where}: invalid JSON: nested too deeply") from None
            except ValueError as exc:  # JSONDecodeError, or an integer of more than 4300 digits
                raise EvalSetError(f"{where}: invalid JSON: {exc}") from None
            item = parse_item(obj, where)
            if item.id in file_ids:
                raise EvalSetError(f"{where}: duplicate id {item.id!r}")
            file_ids.add(item.id)
            if item.id in seen:
                prefixed = f"{path.stem}:{item.id}"
                if prefixed in seen:
                    raise EvalSetError(f"{where}: id {item.id!r} is taken ({seen[item.id]}) and so is "
                                       f"{prefixed!r} ({seen[prefixed]}); give the questions distinct ids")
                item = EvalItem(prefixed, item.question, item.answers, item.evidence, item.type, item.extra,
                                where)
            seen[item.id] = where
            items.append(item)
    return items


def check_questions(items: Sequence[EvalItem], check: Callable[[str], object]) -> None:
    """Raise EvalSetError naming the first item whose question ``check`` refuses (raises ValueError):
    the CLI passes the service's own rule, :meth:`qa.pipeline.QAPipeline.check_question`."""
    for item in items:
        try:
            check(item.question)
        except ValueError as exc:
            raise EvalSetError(f"{item.where or f'question {item.id!r}'}: {exc}") from None
