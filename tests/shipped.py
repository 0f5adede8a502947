"""The shipped reader's folder and a short text with questions, shared by the tests of its runtimes."""

from hypothesis import HealthCheck, given, settings, strategies as st

from qa.config import PROJECT_ROOT
from qa.types import Chunk, Passage

SHIPPED = PROJECT_ROOT / "models" / "reader"
UNREST = ("Unrest began in the city of Zhanaozen on 2 January 2022 after fuel prices doubled. "
          "By 5 January the protests had spread to Almaty, the largest city, where the airport was seized. "
          "The government resigned on 5 January and a state of emergency was declared for two weeks.")
UNREST_QUESTIONS = ["When did the unrest begin?", "Where did the protests spread?", "What was seized in Almaty?",
                    "How long was the state of emergency?", "Why did the unrest begin?", "Who resigned on 5 January?"]
OTHER = ("The Collective Security Treaty Organization sent peacekeepers at the request of the president. "
         "Russian paratroopers guarded the airport and power stations in Almaty until mid-January.")
RUNTIME_QUESTIONS = UNREST_QUESTIONS + ["Who sent peacekeepers?"]

# generated document texts for the citation property: accents composed and combining, CJK, emoji, zero-width
# and BOM characters, ligatures, RTL, newlines, a long word
CITATION_TEXTS = st.lists(st.sampled_from(list("abc XYZ019.,!?\n") + ["é", "e\u0301", "日本語", "😀", "\u200b", "ß", "ﬁ",
                                                                     "עברית", "\ufeff", "a" * 120, " 2 January 2022 ",
                                                                     " Almaty "]),
                          min_size=1, max_size=60).map("".join).filter(lambda t: t.strip())


def two_passages(text: str, other: str = OTHER) -> tuple[str, list[Passage]]:
    """A document of ``text`` and ``other`` and its two passages (retrieval scores made up)."""
    doc = text + "\n\n" + other
    cut = len(text) + 2
    return doc, [Passage(chunk=Chunk("d.txt", 0, len(text), text), score=1.0, rank=1, scores={"dense": 0.6, "bm25": 3.0}),
                 Passage(chunk=Chunk("d.txt", cut, len(doc), other), score=0.5, rank=2, scores={"dense": 0.4, "bm25": 1.0})]


def assert_same_answers(reader, reference, tolerance: float) -> None:
    """``reader`` answers the runtime questions over the two passages as ``reference`` does: same texts and
    offsets, best guess and its score within ``tolerance``."""
    doc, passages = two_passages(UNREST)
    for q in RUNTIME_QUESTIONS:
        a = reader.run(q, passages, lambda d: doc)
        b = reference.run(q, passages, lambda d: doc)
        assert [(x.text, [(c.start, c.end) for c in x.citations]) for x in a.answers] == \
               [(x.text, [(c.start, c.end) for c in x.citations]) for x in b.answers]
        assert a.best_guess.text == b.best_guess.text
        assert abs(a.best_guess.score - b.best_guess.score) <= tolerance


def logit_agreement(reader, reference, text: str = UNREST, questions=UNREST_QUESTIONS) -> list[tuple[int, float, bool]]:
    """Per question over ``text`` alone: how many of the start/end argmaxes of ``reader`` are ``reference``'s (0-2),
    the correlation of their start logits, and whether the logits differ at all (another computation)."""
    import numpy as np

    out = []
    for q in questions:
        w = reference.encode(q, [text])
        S_ref, E_ref = reference._logits(w)
        S, E = reader._logits(w)
        n = len(w.encoding["input_ids"][0])
        same = int(np.argmax(S_ref[0, :n]) == np.argmax(S[0, :n])) + int(np.argmax(E_ref[0, :n]) == np.argmax(E[0, :n]))
        out.append((same, float(np.corrcoef(S_ref[0, :n], S[0, :n])[0, 1]), not np.array_equal(S_ref[0, :n], S[0, :n])))
    return out


def assert_citations_exact(reader, text: str, question: str, **run) -> None:
    """Every answer and best-guess citation of ``reader`` over a document made of ``text`` slices it exactly
    (``run``: more arguments of ``reader.run``, e.g. a per-call ``cascade``)."""
    doc, passages = two_passages(text)
    out = reader.run(question, passages, lambda d: doc, **run)
    for a in out.answers + ([out.best_guess] if out.best_guess else []):
        for c in a.citations:
            assert doc[c.start:c.end] == c.text and c.text.strip()


def citation_property(test):
    """Runs ``test(reader_fixture, text, question)`` as a hypothesis property over generated texts and the runtime
    questions (the runtimes' citation property: pair it with :func:`assert_citations_exact`)."""
    return settings(max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])(
        given(text=CITATION_TEXTS, question=st.sampled_from(RUNTIME_QUESTIONS))(test))
