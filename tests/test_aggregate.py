"""Aggregation counts evidence, not repetition: near-duplicate passages count once, independent documents add."""

from qa.reader.aggregate import Located, group_answers, independent_sources, jaccard, shingles
from qa.reader.reader import sentence_bounds

STORY = "Tokayev said on Friday that order had been restored in Almaty after the protests."
OTHER = "Residents of Almaty told reporters that the army had restored order by Friday evening."


def _docs(**texts):
    return texts.__getitem__


def test_shingles_and_jaccard_by_hand():
    a = shingles("a b c d")  # {(a,b,c), (b,c,d)}
    b = shingles("b c d e")  # {(b,c,d), (c,d,e)}
    assert a == {("a", "b", "c"), ("b", "c", "d")}
    assert jaccard(a, b) == 1 / 3
    assert jaccard(set(), b) == 0.0


def test_wire_copies_count_once_independent_documents_add():
    texts = {"wire1.txt": STORY, "wire2.txt": "Update: " + STORY, "own.txt": OTHER}
    i = STORY.index("Almaty")
    j = OTHER.index("Almaty")
    located = [Located("wire1.txt", i, i + 6, 0.5, 0), Located("wire2.txt", i + 8, i + 14, 0.5, 1)]
    g = group_answers(located, texts.__getitem__, sentence_bounds)[0]
    assert g.sources == 1 and g.documents == 2
    assert abs(g.support - 0.5) < 1e-9  # copies: the best one, not 1 - 0.5 * 0.5
    located.append(Located("own.txt", j, j + 6, 0.5, 2))
    g = group_answers(located, texts.__getitem__, sentence_bounds)[0]
    assert g.sources == 2 and g.documents == 3
    assert abs(g.support - 0.75) < 1e-9  # two independent witnesses


def test_one_document_repeating_a_name_is_one_source():
    text = "Almaty is big. " * 2 + "Almaty again."
    located = [Located("d.txt", 0, 6, 0.4, 0), Located("d.txt", 15, 21, 0.4, 0), Located("d.txt", 30, 36, 0.4, 0)]
    g = group_answers(located, {"d.txt": text}.__getitem__, sentence_bounds)[0]
    assert g.sources == 1 and len(g.citations) == 3
    assert abs(g.support - 0.4) < 1e-9


def test_many_mentions_do_not_beat_one_strong_answer():
    # a name mentioned in 4 wire copies at 0.3 each used to reach 1 - 0.7**4 = 0.76 > 0.6
    texts = {f"w{k}.txt": STORY for k in range(4)}
    texts["x.txt"] = OTHER
    i = STORY.index("Tokayev")
    j = OTHER.index("the army")
    located = [Located(f"w{k}.txt", i, i + 7, 0.3, k) for k in range(4)] + [Located("x.txt", j, j + 8, 0.6, 4)]
    groups = group_answers(located, texts.__getitem__, sentence_bounds)
    assert groups[0].key == "army"


def test_clusters_are_deterministic_and_cover_everything():
    cits = [Located("a", 0, 1, 0.1), Located("b", 0, 1, 0.1), Located("a", 5, 6, 0.1)]
    cl = independent_sources(cits, ["x y z w", "p q r s", "k l m n"])
    assert sorted(i for c in cl for i in c) == [0, 1, 2]
    assert [0, 2] in cl and [1] in cl


def test_mass_sums_every_place_so_copies_of_a_story_do_not_dilute_an_answer():
    # shared normalisation splits one answer's probability over the copies that repeat it: 4 x 0.2 is 0.8 of the
    # question's mass, although each place alone (and the near-duplicate sources merged) says only 0.2
    texts = {f"w{k}.txt": STORY for k in range(4)}
    i = STORY.index("Tokayev")
    g = group_answers([Located(f"w{k}.txt", i, i + 7, 0.2, k) for k in range(4)], texts.__getitem__,
                      sentence_bounds)[0]
    assert g.sources == 1 and abs(g.support - 0.2) < 1e-9
    assert abs(g.mass - 0.8) < 1e-9
    g = group_answers([Located(f"w{k}.txt", i, i + 7, 0.6, k) for k in range(4)], texts.__getitem__,
                      sentence_bounds)[0]
    assert g.mass == 1.0  # capped
