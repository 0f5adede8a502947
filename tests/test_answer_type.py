"""Answer-type features of the verifier: the question's expected answer form against the answer's."""

import math

import pytest
from hypothesis import given, settings, strategies as st

from qa.training.verifier import add_answer_type_features
from qa.verifier.answer_type import (FEATURES, QUESTION_TYPES, answer_type_features, quantity_unit, question_type,
                                     type_match, unit_near)
from qa.verifier.features import FULL


@pytest.mark.parametrize("question,expected", [
    ("How many people were arrested during the unrest?", "quantity"),
    ("How much did the price of gas rise?", "quantity"),
    ("How long was the Internet shut down?", "quantity"),
    ("What percentage of voters backed him?", "quantity"),
    ("When did the protests begin?", "time"),
    ("On what date was Karim Massimov arrested?", "time"),
    ("In what year was the CSTO founded?", "time"),
    ("In which city did the first protests break out on January 2?", "place"),  # place before the date words
    ("Where did the protests begin?", "place"),
    ("Who replaced Karim Massimov?", "person"),
    ("What is the name of the ruling party whose office was set on fire?", "name"),  # not "whose": person
    ("Which company raised its prices?", "name"),
    ("What sentence did Karim Massimov receive?", "other"),
    ("Why did the protests start?", "other"),
])
def test_question_types(question, expected):
    assert question_type(question) == expected


@pytest.mark.parametrize("qtype,answer,expected", [
    ("quantity", "20,000", 1.0),
    ("quantity", "two thousand", 1.0),
    ("quantity", "22:37", -1.0),  # a clock time is not a count
    ("quantity", "the paratroopers", -1.0),
    ("time", "January 11", 1.0),
    ("time", "2022", 1.0),
    ("time", "on Tuesday", 1.0),
    ("time", "the President", -1.0),
    ("person", "Kassym-Zhomart Tokayev", 1.0),
    ("person", "prosecutor’s", -1.0),  # no capital: not a name
    ("person", "the former head of the KNB", 0.0),  # a capital or two: unsure
    ("place", "Zhanaozen", 1.0),
    ("place", "Route 66", -1.0),
    ("name", "Nur Otan", 1.0),
    ("other", "treason", 0.0),
])
def test_type_match(qtype, answer, expected):
    assert type_match(qtype, answer) == expected


def test_unit_near_reads_the_counted_thing_beside_the_answer():
    q = "How many people live in Alma-Ata?"
    assert quantity_unit(q) == {"peopl", "live"}  # X runs on into the verb: any of its words counts
    assert unit_near(q, "20,000", "Alma-Ata alone was attacked by 20,000 bandits, Tokayev said.") == 0.0
    assert unit_near(q, "2 million", "Some 2 million people live in the city.") == 1.0
    assert unit_near("How many Russian paratroopers were sent?", "3,000",
                     "Russia sent 3,000 paratroopers.") == 1.0
    # -1: nothing counted by name, not a quantity question, the answer not in the sentence, no sentence
    assert unit_near("How much did it cost?", "$5", "It cost $5.") == -1.0
    assert unit_near("Who came?", "Tokayev", "Tokayev came.") == -1.0
    assert unit_near(q, "400", "A different sentence.") == -1.0
    assert unit_near(q, "400", "") == -1.0


def test_the_seed_sets_wrong_forms_are_flagged():
    """Three answers the shipped verifier scored 0.48-0.83 for unanswerable seed questions (2026-12-06)."""
    f = answer_type_features("How many Russian paratroopers were sent to Kazakhstan?", "22:37",
                             "Updated 24 December 2022, 22:37")
    assert f["a_clock"] == 1.0 and f["type_match"] == -1.0
    f = answer_type_features("What is the name of the ruling party whose office was set on fire?", "prosecutor’s",
                             "set fire to the building of the prosecutor’s office and the office of the ruling party.")
    assert f["q_type"] == QUESTION_TYPES["name"] and f["type_match"] == -1.0
    f = answer_type_features("How many people live in Alma-Ata?", "20,000",
                             "Alma-Ata alone was attacked by 20,000 bandits, ”Tokayev said on January 7.")
    assert f["type_match"] == 1.0 and f["unit_near"] == 0.0


def test_full_feature_set_has_them():
    assert set(FEATURES) <= set(FULL)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.text(max_size=30), st.text(max_size=120))
def test_features_are_bounded_floats_for_any_text(question, answer, sentence):
    f = answer_type_features(question, answer, sentence)
    assert list(f) == FEATURES
    assert all(isinstance(v, float) and math.isfinite(v) for v in f.values())
    assert f["q_type"] in QUESTION_TYPES.values()
    assert f["a_clock"] in (0.0, 1.0) and f["a_date"] in (0.0, 1.0)
    assert 0.0 <= f["a_capitalised"] <= 1.0
    assert f["type_match"] in (-1.0, 0.0, 1.0) and f["unit_near"] in (-1.0, 0.0, 1.0)


def test_saved_rows_are_backfilled_as_the_reader_computes_them():
    q, a, s = "How many people were killed?", "164", "In total 164 people were killed."
    top = {"_question": q, "_answer": a, "_sentence": s, "passage_rank": 1.0, "_rank": 0}
    other = {"_question": q, "_answer": "Almaty", "passage_rank": 2.0, "_rank": 1}  # no sentence recorded
    reader_alone = {"_question": q, "_answer": a, "span_logit": 0.0}  # no retrieval features: left alone
    done = {**top, **answer_type_features(q, a, s), "unit_near": 0.5}  # already has them: left alone
    rows = [top, other, reader_alone, done]
    assert add_answer_type_features(rows) == 2
    assert {k: top[k] for k in FEATURES} == answer_type_features(q, a, s)
    assert top["unit_near"] == 1.0
    assert other["unit_near"] == -1.0 and other["type_match"] == -1.0
    assert not set(FEATURES) & set(reader_alone)
    assert done["unit_near"] == 0.5
