"""The real :class:`qa.pipeline.QAPipeline` (index store, write transactions, journal, trash) with
small deterministic stand-ins for the models, so write-path tests run in milliseconds:

* ``HashEmbedder``: bag of hashed words -> 64-dim unit vectors (same text, same vector);
* ``CharChunker``: ~300-character chunks split at whitespace (exact offsets);
* ``OverlapReader``: answers with the retrieved sentence sharing most words with the question
  (so ``document_text[start:end] == answer.text`` holds like with the real reader).

``python tests/lite_pipeline.py --port N`` serves it (the kill-point suite runs it as a
subprocess and ``kill -9``s it); the corpus and index folders come from QA_* variables.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.config import Settings  # noqa: E402
from qa.pipeline import QAPipeline  # noqa: E402
from qa.types import Answer, Chunk, Citation  # noqa: E402

WORD = re.compile(r"\w+")
SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
STOP = {"the", "a", "an", "of", "in", "is", "was", "what", "when", "did", "who", "to", "and", "do", "does", "how"}


class HashEmbedder:
    model_id = "test-hash-embedder-64"
    dimension = 64

    def warm_up(self):
        return self

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimension, np.float32)
        for w in WORD.findall(text.lower()):
            h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
            v[h % self.dimension] += 1.0
        n = float(np.linalg.norm(v))
        return v / n if n else v

    def embed_documents(self, texts, show_progress=False):
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)

    def embed_query(self, text):
        return self._vec(text)


class CharChunker:
    params = {"chunk_tokens": 300, "chunk_overlap": 0, "unit": "chars"}

    def chunk(self, doc) -> list[Chunk]:
        text, out, start = doc.text, [], 0
        while start < len(text):
            end = min(len(text), start + 300)
            if end < len(text):
                space = text.rfind(" ", start + 1, end)
                end = space if space > start else end
            if text[start:end].strip():
                out.append(Chunk(doc.id, start, end, text[start:end]))
            start = end
        return out


@dataclass
class _Out:
    answer_found: bool
    answers: list
    no_answer_score: float
    passages_read: int = 0
    best_guess: object = None  # AskResult.best_guess (main): the top candidate, here the first answer
    extra: dict = field(default_factory=dict)


class OverlapReader:
    runtime = "test-overlap"

    def run(self, question, passages, document_text, max_answers=3, cascade=None):
        q = {w.lower() for w in WORD.findall(question)} - STOP
        scored = []
        for p in passages:
            c = p.chunk
            text = document_text(c.document)
            for m in SENTENCE.finditer(text, c.start, c.end):
                s = m.group().strip()
                if not s:
                    continue
                start = m.start() + (len(m.group()) - len(m.group().lstrip()))
                overlap = len(q & {w.lower() for w in WORD.findall(s)})
                if overlap:
                    scored.append((overlap, c.document, start, start + len(s), text))
        scored.sort(key=lambda x: (-x[0], x[1], x[2]))
        answers, seen = [], set()
        for o, d, s, e, t in scored:
            if (d, s) in seen or len(answers) >= max_answers:
                continue
            seen.add((d, s))
            score = min(1.0, o / max(1, len(q)))
            cit = Citation(document=d, start=s, end=e, text=t[s:e], score=score, context=t[s:e],
                           context_start=s, context_end=e)
            answers.append(Answer(text=t[s:e], score=score, citations=[cit]))
        return _Out(bool(answers), answers, 0.1 if answers else 0.9, len(passages), answers[0] if answers else None)


class LitePipeline(QAPipeline):
    def _load_models(self):
        return HashEmbedder(), CharChunker()

    def _load_reader(self):
        return OverlapReader()


def lite_settings(corpus: Path, index: Path, **overrides) -> Settings:
    return Settings(corpus_dir=corpus, index_dir=index, retrieval_mode="dense", **overrides)


if __name__ == "__main__":  # the kill-point suite's server
    import argparse

    import uvicorn

    from api.app import create_app

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    s = Settings(retrieval_mode="dense", reload_interval_s=0)
    uvicorn.run(create_app(s, LitePipeline(s)), host="127.0.0.1", port=args.port, log_level="warning")
