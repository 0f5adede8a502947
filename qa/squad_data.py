"""The one SQuAD v1.1/v2.0 JSON loader: training (qa.training.squad) and evaluation
(qa.evaluation.squad) both read files through :func:`read_squad`.

One rule for unanswerable questions (:func:`is_impossible`): a question is unanswerable when the
file flags it (v2.0 ``is_impossible``) or when it has no gold answer with text. (v1.1 files always
have answers; the official v2.0 script scores a question without answers as unanswerable too.)
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


def is_impossible(qa: dict[str, Any]) -> bool:
    """The project's single rule: flagged ``is_impossible``, or no answer with text."""
    return bool(qa.get("is_impossible", False)) or not _answers(qa)


def _answers(qa: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    return tuple(dict(a) for a in qa.get("answers", []) or [] if isinstance(a, dict) and isinstance(a.get("text"), str))


def _data(path: str | Path) -> tuple[str, list]:
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise ValueError(f"{path}: not a SQuAD file (no 'data' list)")
    return str(raw.get("version", "")), raw["data"]


def read_squad(
    path: str | Path, titles: set[str] | None = None, limit: int | None = None
) -> tuple[str, list[SquadItem]]:
    """(version, questions in file order) of a SQuAD v1.1/v2.0 file; only the articles whose title
    is in ``titles`` when given; at most ``limit`` questions. Raises ValueError for a non-SQuAD file."""
    version, data = _data(path)
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
