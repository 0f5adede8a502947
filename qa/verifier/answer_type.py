"""Does the answer have the form the question asks for?

A reader that finds no answer in on-topic documents still returns a span, and it is often of the wrong form:
a clock time ("22:37") for "How many paratroopers…", a common noun ("prosecutor's") for "What is the name of
the party…", a number of *bandits* for "How many people live in…". Classic QA systems checked the expected
answer type; these features give the verifier the same evidence, computed from the question, the answer text
and the sentence it was cut from (no model, no lists of entities: the verifier's trees learn what each is worth).

- ``q_type``: what the question asks for (``QUESTION_TYPES``; 0 when none is recognised);
- ``a_clock``, ``a_date``: the answer contains a clock time; a month, weekday, year or other date word;
- ``a_capitalised``: share of the answer's alphabetic words that start with a capital letter;
- ``type_match``: +1 when the answer's form fits the question type, -1 when it cannot, 0 when the rule does
  not know (see :func:`type_match`);
- ``unit_near``: for "how many X / how much X" questions, 1 when one of X's content words is right next to the
  answer in its sentence, else 0 ("20,000 bandits" for "How many people…" gives 0); -1 for other questions,
  when X is empty or the answer is not in the sentence.
"""

from __future__ import annotations

import re

from qa.verifier.features import content_terms

FEATURES = ["q_type", "a_clock", "a_date", "a_capitalised", "type_match", "unit_near"]

QUESTION_TYPES = {"other": 0.0, "quantity": 1.0, "time": 2.0, "place": 3.0, "person": 4.0, "name": 5.0}

_QUANTITY = re.compile(r"\b(how (many|much|long|old|far|large|big|tall|high|often|fast)|"
                       r"what (number|percentage|percent|proportion|share|amount|age|size))\b")
_TIME = re.compile(r"\b(when|(what|which) (year|years|date|day|month|time|century|decade|period))\b")
_PLACE = re.compile(r"\b(where|(what|which|in what|in which) (city|cities|country|countries|town|region|state|"
                    r"province|place|capital|village|continent|river|area|district|island|street))\b")
_PERSON = re.compile(r"\b(who|whom|whose)\b")
_NAME = re.compile(r"\b(what (is|was|are|were) (the|its|his|her|their) names?|what .* called|(what|which) "
                   r"(company|organi[sz]ation|party|team|newspaper|agency|group|band|brand))\b")
_QUANTITY_UNIT = re.compile(r"\bhow (many|much) ([\w'’\- ]+)")

_NUMBER_WORDS = frozenset("""
zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen
eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred hundreds thousand thousands million
millions billion billions trillion dozen dozens half quarter several first second third once twice
""".split())
_DATE_WORDS = frozenset("""
january february march april may june july august september october november december jan feb mar apr jun jul aug
sep sept oct nov dec monday tuesday wednesday thursday friday saturday sunday year years century centuries decade
decades month months week weeks day days ago yesterday today tomorrow morning evening night spring summer autumn fall
winter bc ad bce ce
""".split())
_CLOCK = re.compile(r"\b\d{1,2}[:.]\d{2}\b")
_YEAR = re.compile(r"\b(1\d{3}|20\d{2})s?\b")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*", re.UNICODE)
_TOKEN = re.compile(r"\S+")
# words that end the "X" of "how many X": the verb or preposition after the counted thing
_UNIT_STOP = frozenset("""
did do does is are was were will would can could have has had be been being in on at of for from to by with during
since after before there that which who per
""".split())


def question_type(question: str) -> str:
    """The kind of answer ``question`` asks for: quantity, time, place, person, name or other (first match in
    that order, so "In which city … on January 2?" is a place, "How many people…" a quantity and "What is the
    name of the party whose…" a name)."""
    q = " ".join(question.lower().split())
    for name, pattern in (("quantity", _QUANTITY), ("time", _TIME), ("place", _PLACE), ("name", _NAME),
                          ("person", _PERSON)):
        if pattern.search(q):
            return name
    return "other"


def has_number(text: str) -> bool:
    return any(ch.isdigit() for ch in text) or any(w.lower() in _NUMBER_WORDS for w in _WORD.findall(text))


def is_clock(text: str) -> bool:
    return _CLOCK.search(text) is not None


def is_date(text: str) -> bool:
    return _YEAR.search(text) is not None or any(w.lower() in _DATE_WORDS for w in _WORD.findall(text))


def capitalised_share(text: str) -> float:
    words = _WORD.findall(text)
    return sum(1 for w in words if w[0].isupper()) / len(words) if words else 0.0


def type_match(qtype: str, answer: str) -> float:
    """+1: the answer has the question type's form; -1: it cannot be one; 0: no rule (``other``) or unsure.

    quantity: a number (digits or a number word) that is not a clock time; time: a date word, a year, a clock time
    or a number; place, person, name: no digits and at least half the words capitalised (-1 when none is)."""
    if qtype == "quantity":
        return 1.0 if has_number(answer) and not is_clock(answer) else -1.0
    if qtype == "time":
        return 1.0 if (is_date(answer) or is_clock(answer) or has_number(answer)) else -1.0
    if qtype in ("place", "person", "name"):
        if any(ch.isdigit() for ch in answer):
            return -1.0
        share = capitalised_share(answer)
        if share == 0.0:
            return -1.0
        return 1.0 if share >= 0.5 else 0.0
    return 0.0


def quantity_unit(question: str) -> set[str]:
    """Content terms of X in "how many X" / "how much X" (up to the verb or preposition that follows it)."""
    m = _QUANTITY_UNIT.search(" ".join(question.lower().split()))
    if not m:
        return set()
    words = []
    for w in m.group(2).split():
        if w in _UNIT_STOP:
            break
        words.append(w)
    return content_terms(" ".join(words))


def unit_near(question: str, answer: str, sentence: str, before: int = 2, after: int = 4) -> float:
    """1 when one of the counted thing's terms (:func:`quantity_unit`) lies within ``before`` words before or
    ``after`` words after the answer's first occurrence in ``sentence``, else 0; -1 when the question counts
    nothing named or the answer is not in the sentence. (Any term, not all: X may run on into the question's
    verb, "how many people live…".)"""
    unit = quantity_unit(question)
    if not unit or not sentence or not answer:
        return -1.0
    at = sentence.find(answer)
    if at < 0:
        return -1.0
    left = _TOKEN.findall(sentence[:at])[-before:] if before else []
    right = _TOKEN.findall(sentence[at + len(answer):])[:after]
    near = content_terms(" ".join(left + [answer] + right))
    return 1.0 if unit & near else 0.0


def answer_type_features(question: str, answer: str, sentence: str = "") -> dict[str, float]:
    """The :data:`FEATURES` of one answer (``sentence``: the sentence its best citation lies in)."""
    qtype = question_type(question)
    return {
        "q_type": QUESTION_TYPES[qtype],
        "a_clock": 1.0 if is_clock(answer) else 0.0,
        "a_date": 1.0 if is_date(answer) else 0.0,
        "a_capitalised": capitalised_share(answer),
        "type_match": type_match(qtype, answer),
        "unit_near": unit_near(question, answer, sentence),
    }
