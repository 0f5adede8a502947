"""The shipped reader's folder and a short text with questions, shared by the tests of its runtimes."""

from hypothesis import strategies as st

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
