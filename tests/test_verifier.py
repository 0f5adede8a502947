"""The answer verifier: calibration on synthetic data with a known answer, the JSON model, thresholds, splits."""

import json

import numpy as np
import pytest

from qa.verifier.model import FILE_NAME, LinearCalibrated, Verifier
from qa.training.verifier import choose_threshold, fit_isotonic, fit_linear, fit_verifier, selective_summary, split_articles


def _synthetic(n, rng):
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)  # noise feature
    p_true = 1 / (1 + np.exp(-(2.0 * x1 - 0.5)))
    y = (rng.random(n) < p_true).astype(int)
    return np.c_[x1, x2], y, p_true


def _span_rows(seed: int, articles: int = 30, per_article: int = 20, removed_every: int = 0) -> list[dict]:
    """Top-answer rows of the pipeline features, all noise but ``span_logit`` (x), right with probability
    sigmoid(2x); with ``removed_every`` = n, every n-th article's questions are unanswerable (always wrong)."""
    from qa.verifier.features import FULL

    rng = np.random.default_rng(seed)
    rows = []
    for art in range(articles):
        answerable = not (removed_every and art % removed_every == 0)
        for _ in range(per_article):
            x = rng.normal()
            r = {f: float(rng.normal()) for f in FULL}
            r.update({"span_logit": x, "_article": f"a{art}", "_rank": 0, "_answerable": answerable, "_answer": "x",
                      "_label": int(answerable and rng.random() < 1 / (1 + np.exp(-2 * x)))})
            rows.append(r)
    return rows


def test_calibrated_probabilities_match_the_known_truth():
    rng = np.random.default_rng(0)
    Xtr, ytr, _ = _synthetic(4000, rng)
    Xca, yca, _ = _synthetic(4000, rng)
    Xte, yte, pte = _synthetic(4000, rng)
    m = fit_linear(Xtr, ytr, ["x1", "x2"])
    fit_isotonic(m, Xca, yca)
    p = m.predict(Xte)
    assert np.mean(np.abs(p - pte)) < 0.05  # close to the true probability of each row
    s = selective_summary(p, yte, np.ones(len(yte), bool), 0.5)
    assert s["ece"] < 0.04
    assert s["auroc_right_vs_wrong"] > 0.8
    assert abs(m.coef[1]) < 0.2 * abs(m.coef[0])  # the noise feature gets little weight


def test_a_miscalibrated_score_is_fixed_by_isotonic():
    rng = np.random.default_rng(1)
    X, y, p_true = _synthetic(6000, rng)
    m = fit_linear(X[:2000], y[:2000], ["x1", "x2"])
    m.coef = m.coef * 3  # overconfident scores, same order
    raw = m.raw(X[4000:])
    fit_isotonic(m, X[2000:4000], y[2000:4000])
    fixed = m.predict(X[4000:])
    ece = lambda p: selective_summary(p, y[4000:], np.ones(2000, bool), 0.5)["ece"]  # noqa: E731
    assert ece(raw) > 0.05
    assert ece(fixed) < ece(raw) / 2


def test_model_json_round_trip_and_load(tmp_path):
    rng = np.random.default_rng(2)
    X, y, _ = _synthetic(1000, rng)
    m = fit_linear(X, y, ["a", "b"])
    fit_isotonic(m, X, y)
    data = {"models": {"full": m.to_dict(), "reader": m.to_dict()}, "min_confidence": 0.6}
    (tmp_path / FILE_NAME).write_text(json.dumps(data))
    v = Verifier.load(tmp_path)
    rows = [{"a": float(a), "b": float(b)} for a, b in X[:50]]
    assert np.allclose(v.score(rows, "full"), m.predict(X[:50]))
    assert v.min_confidence == 0.6 and len(v.sha256) == 64
    assert Verifier.load(tmp_path / "missing") is None


def test_a_corrupt_verifier_file_says_what_to_do(tmp_path):
    (tmp_path / FILE_NAME).write_text('{"models": {"full": {"features": []}}}')
    with pytest.raises(ValueError, match="qa train-verifier"):
        Verifier.load(tmp_path)


def test_choose_threshold_by_hand():
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    y = np.array([1, 1, 0, 1, 0])
    # answered above 0.8: 2/2; above 0.7: 2/3; above 0.6: 3/4 = 0.75; above 0.5: 3/5
    assert choose_threshold(p, y, 0.75) == 0.6
    assert choose_threshold(p, y, 0.9) == 0.8
    assert choose_threshold(p, y, 1.01) == 1.0  # unreachable: answer nothing


def test_splits_are_by_article_and_disjoint():
    titles = [f"t{i}" for i in range(50)]
    a, b, c = split_articles(titles, seed=3)
    assert not (a & b) and not (a & c) and not (b & c) and (a | b | c) == set(titles)
    assert split_articles(titles, seed=3) == (a, b, c)


def test_fit_verifier_keeps_articles_apart():
    rows = _span_rows(4)
    data = fit_verifier(rows, seed=0, target_precision=0.8)
    sp = data["splits"]
    assert not (set(sp["train"]) & set(sp["test"])) and not (set(sp["calibration"]) & set(sp["test"]))
    assert data["metrics"]["full"]["test"]["auroc_right_vs_wrong"] > 0.7
    assert 0.0 <= data["min_confidence"] <= 1.0


def test_dropped_features_are_left_out_of_the_pipeline_models_only():
    from qa.verifier.features import FULL, READER

    dropped = ["q_in_sentence", "q_in_sentence_max"]
    rows = _span_rows(5)
    data = fit_verifier(rows, seed=0, target_precision=0.8, drop_features=dropped)
    assert data["models"]["full"]["features"] == [f for f in FULL if f not in dropped]
    assert data["models"]["reader"]["features"] == READER
    with pytest.raises(ValueError, match="not a pipeline feature"):
        fit_verifier(rows, seed=0, target_precision=0.8, drop_features=["no_such_feature"])


def test_question_coverage_features_see_what_the_answer_sentence_lacks():
    from qa.verifier.features import content_terms, coverage

    q = "What sentence did Karim Massimov receive?"
    assert content_terms(q) == {"sente", "karim", "massi", "recei"}  # function words and the question word go
    arrested = "Karim Massimov was arrested on 6 January on suspicion of high treason."
    sentenced = "In 2023 a court sentenced Karim Massimov to 18 years; he received the sentence calmly."
    assert coverage(content_terms(q), arrested) == pytest.approx(0.5)  # the name only: on topic, not the answer
    assert coverage(content_terms(q), sentenced) == 1.0
    assert coverage(set(), "anything") == 1.0


def test_q_in_passages_is_the_coverage_of_the_passages_read_together():
    """Made once per set of passages (cached): each answer, and each new set of passages, gets its own figure."""
    from qa.reader.aggregate import Located, group_answers
    from qa.reader.reader import sentence_bounds
    from qa.types import Chunk, Passage
    from qa.verifier.features import answer_features, content_terms, coverage

    q = "What sentence did Karim Massimov receive?"
    sets = [["Karim Massimov was arrested.", "A court sentenced him."], ["Massimov received visitors.", "Rain."],
            ["Karim Massimov was arrested.", "A court sentenced him."]]
    for texts in sets:
        doc = "\n".join(texts)
        passages = [Passage(chunk=Chunk("d.txt", doc.index(t), doc.index(t) + len(t), t), score=1.0, rank=i + 1,
                            scores={"dense": 0.5, "bm25": 1.0}) for i, t in enumerate(texts)]
        groups = group_answers([Located("d.txt", 0, 5, 0.6, 0), Located("d.txt", len(texts[0]) + 1,
                                                                         len(texts[0]) + 2, 0.2, 1)],
                               {"d.txt": doc}.__getitem__, sentence_bounds)
        want = coverage(content_terms(q), " ".join(texts))
        for i in range(len(groups)):
            f = answer_features(groups, i, 0.1, q, "x", [g.key for g in groups], passages)
            assert f["q_in_passages"] == pytest.approx(want)
    assert coverage(content_terms(q), " ".join(sets[1])) != coverage(content_terms(q), " ".join(sets[0]))


def test_add_impossible_brings_on_topic_unanswerable_questions(tmp_path):
    from qa.evaluation.open_squad import build_open_setting
    from qa.training.verifier import add_impossible

    def art(title, ctx, qas):
        return {"title": title, "paragraphs": [{"context": ctx, "qas": qas}]}

    train = {"data": [art("Alpha", "Alpha was founded in 1901 by Ada.",
                          [{"id": "a1", "question": "When was Alpha founded?",
                            "answers": [{"text": "1901", "answer_start": 22}]}])]}
    v2 = {"data": [art("Beta", "Beta river floods every spring.",
                       [{"id": "b1", "question": "When does the Beta river floods?", "is_impossible": False,
                         "answers": [{"text": "every spring", "answer_start": 17}]},
                        {"id": "b2", "question": "Who named the Beta river?", "is_impossible": True, "answers": []},
                        {"id": "b3", "question": "How long is the Beta river?", "is_impossible": True,
                         "answers": []}])]}
    (tmp_path / "t.json").write_text(json.dumps(train), encoding="utf-8")
    (tmp_path / "v2.json").write_text(json.dumps(v2), encoding="utf-8")
    s = build_open_setting(tmp_path / "t.json")
    assert add_impossible(s, tmp_path / "v2.json", limit=1, seed=0) == 1
    assert set(s.documents) == {"Alpha.txt", "Beta.txt"}  # the unanswered questions' article is in the corpus
    added = s.items[-1]
    assert added.id in {"b2", "b3"} and not added.answerable and added.extra["title"] == "Beta"
    assert [i.id for i in s.items[:-1]] == ["a1"]  # v2's answerable questions are not taken
    with pytest.raises(ValueError, match="also in the training corpus"):
        add_impossible(s, tmp_path / "v2.json", limit=1, seed=0)


def test_class_weights_give_the_unanswerable_questions_the_asked_share():
    from qa.training.verifier import class_weights

    rows = ([{"_answerable": True, "_rank": 0}] * 30 + [{"_answerable": True, "_rank": 1}] * 10
            + [{"_answerable": False, "_rank": 0}] * 70 + [{"_answerable": False, "_rank": 1}] * 5)
    w = class_weights(rows, 0.25)
    top_un = sum(wi for wi, r in zip(w, rows) if r["_rank"] == 0 and not r["_answerable"])
    top_all = sum(wi for wi, r in zip(w, rows) if r["_rank"] == 0)
    assert top_un / top_all == pytest.approx(0.25)
    assert all(wi == 1.0 for wi, r in zip(w, rows) if r["_answerable"])
    assert (class_weights(rows, None) == 1.0).all()
    with pytest.raises(ValueError):
        class_weights(rows, 1.0)


def test_weighted_threshold_by_hand():
    p = np.array([0.9, 0.8, 0.7, 0.6])
    y = np.array([1, 0, 1, 0])
    # unweighted: above 0.7 precision 2/3; the wrong answer at 0.8 weighted 3: above 0.7 precision 2/5
    assert choose_threshold(p, y, 0.6) == 0.7
    assert choose_threshold(p, y, 0.6, np.array([1.0, 3.0, 1.0, 1.0])) == 0.9


def test_rebalancing_lowers_the_threshold_when_unanswerable_questions_are_rarer():
    """The same data, fitted for a service where 'not in the documents' is rarer: P(correct) rises for
    every answer, so the threshold at the same precision cannot rise."""
    from qa.verifier.features import FULL

    rng = np.random.default_rng(5)
    rows = []
    for art in range(40):
        answerable = art % 2 == 0
        for q in range(25):
            x = rng.normal() + (1.0 if answerable else -1.0)
            y = int(answerable and rng.random() < 1 / (1 + np.exp(-2 * x)))
            r = {f: float(rng.normal()) for f in FULL}
            r["span_logit"] = x
            r.update({"_article": f"a{art}", "_rank": 0, "_label": y, "_answerable": answerable, "_answer": "x"})
            rows.append(r)
    even = fit_verifier(rows, seed=0, target_precision=0.8)
    rare = fit_verifier(rows, seed=0, target_precision=0.8, unanswerable_share=0.1)
    assert rare["unanswerable_share"] == 0.1
    assert rare["min_confidence"] <= even["min_confidence"]
    assert (rare["metrics"]["full"]["test"]["answerable_refused"]
            <= even["metrics"]["full"]["test"]["answerable_refused"])


def test_exported_trees_score_like_scikit_learn_and_survive_json(tmp_path):
    from sklearn.ensemble import HistGradientBoostingClassifier

    from qa.verifier.model import TreesCalibrated, model_from_dict

    rng = np.random.default_rng(6)
    X = rng.normal(size=(3000, 3))
    # an interaction a linear model cannot express: right only when both are high
    y = ((X[:, 0] > 0) & (X[:, 1] > 0) | (rng.random(3000) < 0.05)).astype(int)
    clf = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=7, random_state=0).fit(X, y)
    m = TreesCalibrated.from_sklearn(clf, ["a", "b", "c"])
    Xt = rng.normal(size=(500, 3))
    assert np.allclose(m.raw(Xt), clf.predict_proba(Xt)[:, 1], atol=1e-9)
    back = model_from_dict(json.loads(json.dumps(m.to_dict())))
    assert np.allclose(back.raw(Xt), m.raw(Xt))
    # a missing value follows the side scikit-learn learned for it
    Xn = Xt.copy()
    Xn[:10, 0] = np.nan
    assert np.allclose(m.raw(Xn), clf.predict_proba(Xn)[:, 1], atol=1e-9)


def test_a_tree_pointing_outside_its_nodes_is_rejected(tmp_path):
    from qa.verifier.model import model_from_dict

    bad = {"kind": "trees", "features": ["a"], "baseline": 0.0, "isotonic": {"x": [], "y": []},
           "trees": [{"feature": [0, 0, 0], "threshold": [0.0, 0, 0], "left": [5, 0, 0], "right": [2, 0, 0],
                      "leaf": [False, True, True], "value": [0.0, 1, -1], "missing_left": [True, True, True]}]}
    with pytest.raises(ValueError, match="outside"):
        model_from_dict(bad)
    with pytest.raises(ValueError, match="kind"):
        model_from_dict({"kind": "forest"})


def test_trees_verifier_learns_an_interaction_and_calibrates():
    from qa.verifier.features import FULL

    rng = np.random.default_rng(7)
    rows = []
    for art in range(40):
        for q in range(50):
            a, b = rng.normal(), rng.normal()
            y = int(((a > 0) and (b > 0)) if rng.random() > 0.05 else rng.random() < 0.5)
            r = {f: float(rng.normal()) for f in FULL}
            r["span_logit"], r["q_in_sentence"] = a, b
            r.update({"_article": f"a{art}", "_rank": 0, "_label": y, "_answerable": True, "_answer": "x"})
            rows.append(r)
    lin = fit_verifier(rows, seed=0, target_precision=0.8)
    trees = fit_verifier(rows, seed=0, target_precision=0.8, model="trees")
    assert trees["models"]["full"]["kind"] == "trees" and trees["models"]["reader"]["kind"] == "linear"
    t, l_ = trees["metrics"]["full"]["test"], lin["metrics"]["full"]["test"]
    assert t["auroc_right_vs_wrong"] > l_["auroc_right_vs_wrong"] + 0.03
    assert t["ece"] < 0.06
    v = Verifier(trees)
    p = v.score([{**{f: 0.0 for f in FULL}, "span_logit": 2.0, "q_in_sentence": 2.0},
                 {**{f: 0.0 for f in FULL}, "span_logit": 2.0, "q_in_sentence": -2.0}], "full")
    assert p[0] > 0.8 > 0.2 > p[1]


def test_platt_scaling_fixes_an_overconfident_model_and_survives_json():
    """Trees fitted on few rows are over-confident; Platt scaling on held-out rows brings their probabilities
    back to the truth, and the saved model scores the same after a JSON round trip."""
    from qa.training.verifier import fit_platt, fit_trees
    from qa.verifier.model import model_from_dict

    rng = np.random.default_rng(8)
    Xtr, ytr, _ = _synthetic(600, rng)
    Xca, yca, _ = _synthetic(4000, rng)
    Xte, yte, pte = _synthetic(4000, rng)
    m = fit_trees(Xtr, ytr, ["x1", "x2"])
    before = np.mean(np.abs(m.predict(Xte) - pte))
    fit_platt(m, Xca, yca)
    p = m.predict(Xte)
    assert m.platt is not None and m.platt[0] > 0
    assert np.mean(np.abs(p - pte)) < before
    assert selective_summary(p, yte, np.ones(len(yte), bool), 0.5)["ece"] < 0.04
    back = model_from_dict(json.loads(json.dumps(m.to_dict())))
    assert np.allclose(back.predict(Xte), p)


def test_cascade_served_takes_the_first_read_only_at_or_above_the_bar():
    from qa.training.verifier import cascade_served

    rows = [{"_id": "q1", "_variant": "v", "_read": "all"}, {"_id": "q1", "_variant": "v", "_read": "first"},
            {"_id": "q2", "_variant": "v", "_read": "all"}, {"_id": "q2", "_variant": "v", "_read": "first"},
            {"_id": "q2", "_variant": "w", "_read": "all"},  # the same question, another variant: no first read
            {"_id": "q3", "_variant": "v"}]  # saved before cascade rows existed: a full read
    p = np.array([0.5, 0.95, 0.99, 0.6, 0.3, 0.2])
    served, exited = cascade_served(rows, p, bar=0.9)
    assert sorted(zip(served.tolist(), exited.tolist())) == [(1, True), (2, False), (4, False), (5, False)]
    served, exited = cascade_served(rows, p, bar=0.95)  # at the bar exactly: exits
    assert (1, True) in list(zip(served.tolist(), exited.tolist()))
    served, exited = cascade_served(rows, p, bar=0.96)
    assert not exited.any() and sorted(served.tolist()) == [0, 2, 4, 5]


def test_fit_verifier_learns_that_one_passage_is_worth_less_and_reports_the_cascade():
    """First-passage reads whose span logit means less than a full read's: they get a model of their own
    (``first``), each calibrated to its own truth, and the served cascade is reported; ``keep`` adds that model
    to an existing verifier without refitting the others."""
    from qa.verifier.features import FULL

    rng = np.random.default_rng(7)
    rows = []
    for art in range(40):
        for q in range(25):
            for how, passages, shift in (("all", 5.0, 0.0), ("first", 1.0, -2.0)):
                x = rng.normal(1.0, 1.5)
                y = int(rng.random() < 1 / (1 + np.exp(-(2 * x + shift))))
                r = {f: 0.0 for f in FULL}
                r.update({"span_logit": x, "passages": passages, "_article": f"a{art}", "_id": f"a{art}q{q}",
                          "_variant": "as-retrieved", "_read": how, "_rank": 0, "_label": y, "_answerable": True,
                          "_answer": "x"})
                rows.append(r)
    data = fit_verifier(rows, seed=0, target_precision=0.8, model="trees", calibration="platt", exit_bar=0.9)
    assert set(data["models"]) == {"full", "reader", "first"} and data["first_passage_rows"] == 1000
    m = data["metrics"]
    assert m["full"]["test"]["n"] == m["first"]["test"]["n"] > 0  # one full and one first read per test question
    assert 0.0 < m["cascade"]["test"]["exited"] < 1.0 and m["cascade"]["test"]["exit_bar"] == 0.9
    from qa.verifier.model import model_from_dict

    probe = {f: 0.0 for f in FULL}
    X = np.array([[dict(probe, span_logit=1.0)[f] for f in FULL]])
    p_one = model_from_dict(data["models"]["first"]).predict(X)[0]
    p_five = model_from_dict(data["models"]["full"]).predict(X)[0]
    # the truth at span logit 1: sigmoid(0) = 0.5 for a first-passage read, sigmoid(2) = 0.88 for a full read
    assert abs(p_one - 0.5) < 0.15 and abs(p_five - 0.88) < 0.1

    # keep the full and reader models of an existing verifier, add only the first-passages model
    kept = fit_verifier([r for r in rows if r["_read"] == "all"], seed=1, target_precision=0.8, model="linear")
    both = fit_verifier(rows, seed=0, target_precision=0.8, model="trees", calibration="platt",
                        keep={"models": {k: kept["models"][k] for k in ("full", "reader")},
                              "min_confidence": kept["min_confidence"],
                              "fallback_span_threshold": kept["fallback_span_threshold"]})
    assert both["models"]["full"] == kept["models"]["full"] and both["models"]["reader"] == kept["models"]["reader"]
    assert both["models"]["first"]["kind"] == "trees" and both["kept_models"] == ["full", "reader"]
    assert both["min_confidence"] == kept["min_confidence"]
    with pytest.raises(ValueError, match="other features"):
        fit_verifier(rows, seed=0, target_precision=0.8,
                     keep={"models": {"full": dict(kept["models"]["full"], features=["span_logit"], mean=[0.0],
                                                   scale=[1.0], coef=[1.0])}})


def test_monotonic_trees_never_lower_p_correct_as_coverage_rises():
    """Rows where a few high-coverage answers happen to be wrong (sparse, noisy): unconstrained trees learn the
    reversal, trees fitted under DIRECTIONS cannot -- P(correct) is non-decreasing in ``q_in_sentence`` and
    ``span_logit`` and non-increasing in ``null_logit``, checked on a grid of the other features."""
    from qa.training.verifier import fit_trees
    from qa.verifier.features import DIRECTIONS, FULL

    rng = np.random.default_rng(11)
    n = 4000
    X = rng.normal(size=(n, len(FULL)))
    i_cov, i_span, i_null = FULL.index("q_in_sentence"), FULL.index("span_logit"), FULL.index("null_logit")
    logit_true = 1.5 * X[:, i_cov] + X[:, i_span] - 0.5 * X[:, i_null]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit_true))).astype(int)
    y[X[:, i_cov] > 1.8] = 0  # the sparse top of the coverage range: wrong by construction (noise to ignore)
    free = fit_trees(X, y, FULL, seed=0)
    mono = fit_trees(X, y, FULL, seed=0, directions=DIRECTIONS)
    grid = np.linspace(-3, 3, 25)
    base = rng.normal(size=(30, len(FULL)))
    for row in base:
        for col, sign in ((i_cov, 1), (i_span, 1), (i_null, -1)):
            Xg = np.repeat(row[None, :], len(grid), axis=0)
            Xg[:, col] = grid
            p = mono.raw(Xg)
            assert np.all(sign * np.diff(p) >= -1e-9), (FULL[col], p)
    # the unconstrained fit does learn the reversal at the top of the coverage range
    Xg = np.zeros((2, len(FULL)))
    Xg[:, i_cov] = [1.0, 2.5]
    assert free.raw(Xg)[1] < free.raw(Xg)[0] and mono.raw(Xg)[1] >= mono.raw(Xg)[0]


def test_a_kept_model_without_rows_of_its_own_is_carried_over():
    """Refitting ``full`` from full reads only (no first-passage rows) keeps the ``first`` model asked for."""
    rows = _span_rows(12)
    first = fit_verifier(rows, seed=1, target_precision=0.8, model="trees")["models"]["full"]
    data = fit_verifier(rows, seed=0, target_precision=0.8, model="trees", calibration="platt", monotonic=True,
                        keep={"models": {"first": first}})
    assert set(data["models"]) == {"full", "reader", "first"} and data["models"]["first"] == first
    assert data["kept_models"] == ["first"] and data["models"]["full"] != first


def test_train_verifier_from_saved_rows_writes_the_file_and_its_checksum(tmp_path):
    """`qa train-verifier --rows` refits from saved rows into the reader folder: verifier.json, the fallback
    threshold and the checksum reader_config.json cites (which the model card test compares) move together."""
    import hashlib

    from qa.training.verifier import main

    rows_path = tmp_path / "rows.jsonl"
    rows_path.write_text("".join(json.dumps(r) + "\n" for r in _span_rows(13, removed_every=5)))
    reader = tmp_path / "reader"
    reader.mkdir()
    (reader / "reader_config.json").write_text(json.dumps({"threshold": 0.5, "sha256": {FILE_NAME: "stale"}}))
    assert main(["--reader", str(reader), "--rows", str(rows_path), "--model", "trees"]) == 0
    written = (reader / FILE_NAME).read_bytes()
    cfg = json.loads((reader / "reader_config.json").read_text())
    assert cfg["sha256"][FILE_NAME] == hashlib.sha256(written).hexdigest()
    data = json.loads(written)
    assert cfg["threshold"] == data["fallback_span_threshold"] and data["trained_on"]["monotonic"] is True
    assert Verifier.load(reader) is not None


def test_cut_evidence_sentences_removes_the_fact_and_keeps_offsets_exact():
    """`qa train-verifier --sentence-negatives`: the same passages, minus every sentence that holds the evidence
    or an answer text; each new passage is its cut document's text at its new offsets."""
    import types

    from qa.evaluation.dataset import EvidenceSpan
    from qa.training.verifier import cut_evidence_sentences
    from qa.types import Chunk, Passage

    a = ("Riots broke out in the city. About 1000 people were injured and 400 were hospitalised. "
         "The government resigned on January 5. Shops reopened a week later.")
    b = "Another report. Officials said 400 people were treated in hospital. Nothing else was said here at all."
    docs = {"a.txt": a, "b.txt": b, "c.txt": "An unrelated passage about the weather in the mountains that week."}
    ev = a.index("400")
    passages = [Passage(chunk=Chunk("a.txt", 0, len(a), a), score=0.9, rank=1, scores={"dense": 0.5}),
                Passage(chunk=Chunk("b.txt", 0, len(b), b), score=0.8, rank=2),
                Passage(chunk=Chunk("c.txt", 0, len(docs["c.txt"]), docs["c.txt"]), score=0.7, rank=3)]
    item = types.SimpleNamespace(answers=["400"], evidence=[EvidenceSpan("a.txt", ev, ev + 3)])
    cut, text_of = cut_evidence_sentences(passages, item, docs.__getitem__)
    assert [p.rank for p in cut] == [1, 2, 3] and cut[0].scores == {"dense": 0.5}
    for p in cut:
        assert text_of(p.chunk.document)[p.chunk.start : p.chunk.end] == p.chunk.text
        assert "400" not in p.chunk.text
    assert text_of("a.txt") == ("Riots broke out in the city. The government resigned on January 5. "
                                "Shops reopened a week later.")
    assert text_of("b.txt") == "Another report. Nothing else was said here at all."
    assert cut[2] == passages[2] and text_of("c.txt") == docs["c.txt"]
    # a chunk that starts inside a cut sentence starts where the cut was
    inner = Passage(chunk=Chunk("a.txt", ev - 10, len(a), a[ev - 10 :]), score=0.9, rank=1)
    (p,), text_of = cut_evidence_sentences([inner], item, docs.__getitem__)
    assert p.chunk.text == "The government resigned on January 5. Shops reopened a week later."
    assert text_of("a.txt")[p.chunk.start : p.chunk.end] == p.chunk.text
    # nothing to cut: None; a passage left too short is dropped
    assert cut_evidence_sentences(passages[2:], item, docs.__getitem__) is None
    short = {"s.txt": "It was 400."}
    only = [Passage(chunk=Chunk("s.txt", 0, 11, short["s.txt"]), score=1.0, rank=1)]
    assert cut_evidence_sentences(only, types.SimpleNamespace(answers=["400"], evidence=[]), short.__getitem__) is None
