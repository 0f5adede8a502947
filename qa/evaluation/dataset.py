"""The evaluation-set format (one JSON object a line) and its loader.

Each line::

    {"id": "kz-001", "question": "...", "answers": ["January 2", ...],
     "evidence": [{"document": "000_x.txt", "start": 1035, "end": 1044}, ...],
     "type": "date"}

``answers`` empty (and ``evidence`` empty) means no document answers the question: the correct
behaviour is to abstain. ``type`` is optional (default: "answerable"/"unanswerable"); any other
fields are kept in :attr:`EvalItem.extra`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


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

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


class EvalSetError(ValueError):
    pass


def parse_item(obj: dict, where: str = "") -> EvalItem:
    if not isinstance(obj, dict):
        raise EvalSetError(f"{where}: expected a JSON object")
    for name in ("id", "question"):
        if not isinstance(obj.get(name), (str, int)) or not str(obj.get(name)).strip():
            raise EvalSetError(f"{where}: missing or empty {name!r}")
    answers = obj.get("answers", [])
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise EvalSetError(f"{where}: 'answers' must be a list of strings")
    evidence_raw = obj.get("evidence", [])
    if not isinstance(evidence_raw, list):
        raise EvalSetError(f"{where}: 'evidence' must be a list")
    evidence = []
    for ev in evidence_raw:
        try:
            span = EvidenceSpan(str(ev["document"]), int(ev["start"]), int(ev["end"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise EvalSetError(f"{where}: bad evidence {ev!r}") from exc
        if not 0 <= span.start < span.end:
            raise EvalSetError(f"{where}: bad evidence offsets {ev!r}")
        evidence.append(span)
    answers = [a for a in answers if a.strip()]
    qtype = obj.get("type") or ("answerable" if answers else "unanswerable")
    known = {"id", "question", "answers", "evidence", "type"}
    return EvalItem(
        id=str(obj["id"]),
        question=str(obj["question"]),
        answers=tuple(answers),
        evidence=tuple(evidence),
        type=str(qtype),
        extra={k: v for k, v in obj.items() if k not in known},
    )


def load_eval_set(*paths: str | Path) -> list[EvalItem]:
    """Items of one or more JSONL files, in order. Ids repeated across files get the file's stem
    as a prefix (``stem:id``); an id repeated within one file is an error."""
    items: list[EvalItem] = []
    seen: set[str] = set()
    for path in paths:
        path = Path(path)
        file_ids: set[str] = set()
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise EvalSetError(f"{where}: invalid JSON: {exc}") from exc
                item = parse_item(obj, where)
                if item.id in file_ids:
                    raise EvalSetError(f"{where}: duplicate id {item.id!r}")
                file_ids.add(item.id)
                if item.id in seen:
                    item = EvalItem(f"{path.stem}:{item.id}", item.question, item.answers,
                                    item.evidence, item.type, item.extra)
                seen.add(item.id)
                items.append(item)
    return items
