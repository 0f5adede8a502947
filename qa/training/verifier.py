"""`qa train-verifier`: fit the answer verifier on an open setting built from held-out SQuAD *train* articles.

1. The articles: the ``--held-out`` articles that :mod:`qa.training.groups` keeps away from reader training
   (same seeded split). They become one corpus (one document per article); ``--remove-articles`` of them are
   left out, so their questions are "not in the documents" -- what the service faces.
2. Every sampled question goes through the real pipeline (hybrid retrieval, the reader, aggregation) with
   the verifier off; each of the top answers becomes a feature row (:mod:`qa.verifier.features`) labelled
   correct when its token F1 against a gold answer is >= 0.5 (answers to removed-article questions: wrong).
3. Articles are split train / calibration / test (seeded, by article). A logistic regression (scikit-learn)
   is fitted on the train rows, an isotonic regression on the calibration rows' top answers maps its output
   to P(correct); the test rows report AUROC, ECE and coverage at the chosen precision.
4. ``min_confidence``: the lowest threshold whose answered top answers reach ``--target-precision`` on the
   calibration split. Everything goes to ``<reader>/verifier.json`` (plain JSON, see model.py).

    qa train-verifier --reader models/reader --questions 3000
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import random
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.verifier.features import DIRECTIONS, FULL, READER
from qa.verifier.model import FILE_NAME, LinearCalibrated, TreesCalibrated, model_from_dict
from qa.writes import file_sha256

F1_CORRECT = 0.5


def label_rows(rows: list[dict], answers: list[str], answerable: bool) -> list[int]:
    from qa.metrics import best_over, f1

    return [int(answerable and best_over(f1, r["_answer"], answers) >= F1_CORRECT) for r in rows]


def _hides_evidence(passage: Any, item: Any) -> bool:
    """True when a retrieved passage overlaps the item's evidence or contains one of its answers."""
    ch = passage.chunk
    if any(ev.overlaps(ch.document, ch.start, ch.end) for ev in item.evidence):
        return True
    low = ch.text.lower()
    return any(a.strip() and a.strip().lower() in low for a in item.answers)


def _answer_spans(chunk: Any, item: Any) -> list[tuple[int, int]]:
    """Document offsets of the item's evidence and of every occurrence of an answer text in ``chunk``."""
    spans = [(ev.start, ev.end) for ev in item.evidence if ev.overlaps(chunk.document, chunk.start, chunk.end)]
    for a in {a.strip() for a in item.answers if a.strip()}:
        spans += [(chunk.start + m.start(), chunk.start + m.end())
                  for m in re.finditer(re.escape(a), chunk.text, re.IGNORECASE)]
    return spans


def cut_evidence_sentences(passages: list, item: Any, document_text: Any,
                           min_chars: int = 40) -> tuple[list, Any] | None:
    """The same retrieved passages with every sentence that holds the item's evidence or one of its answer
    texts cut out of its document: still on the question's topic, now without the fact -- the seed set's
    "How many were killed?" read in a passage that says how many were hospitalised. Returns the new passages
    (same ranks and retrieval scores; a passage left with under ``min_chars`` characters is dropped) and a
    ``document_text`` serving the cut documents, or None when no passage held the evidence or an answer."""
    from qa.reader.reader import sentence_bounds
    from qa.types import Chunk, Passage

    cuts: dict[str, list[tuple[int, int]]] = {}
    for p in passages:
        text = None
        for s, e in _answer_spans(p.chunk, item):
            text = text if text is not None else document_text(p.chunk.document)
            cuts.setdefault(p.chunk.document, []).append(sentence_bounds(text, s, e))
    if not cuts:
        return None
    new_docs: dict[str, tuple[str, list[tuple[int, int]]]] = {}
    for doc, ranges in cuts.items():
        text = document_text(doc)
        merged: list[tuple[int, int]] = []
        for s, e in sorted(ranges):
            while e < len(text) and text[e] in " \t":  # the space after a cut sentence goes with it
                e += 1
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        kept, pos = [], 0
        for s, e in merged:
            kept.append(text[pos:s])
            pos = e
        kept.append(text[pos:])
        new_docs[doc] = ("".join(kept), merged)

    def moved(x: int, merged: list[tuple[int, int]]) -> int:
        shift = 0
        for s, e in merged:
            if x >= e:
                shift += e - s
            elif x > s:  # inside a cut: where the cut was
                return s - shift
            else:
                break
        return x - shift

    out = []
    for p in passages:
        ch = p.chunk
        if ch.document not in new_docs:
            out.append(p)
            continue
        text, merged = new_docs[ch.document]
        a, b = moved(ch.start, merged), moved(ch.end, merged)
        if len(text[a:b].strip()) >= min_chars:
            out.append(Passage(chunk=Chunk(ch.document, a, b, text[a:b], ch.id), score=p.score, rank=p.rank,
                               scores=dict(p.scores)))
    if not out:
        return None
    return out, (lambda d: new_docs[d][0] if d in new_docs else document_text(d))


def collect(pipeline: Any, items: list, top_k: int, progress: bool = True, hard_negative_fraction: float = 0.0,
            seed: int = 0, first_passages: int = 0, sentence_negative_fraction: float = 0.0) -> list[dict]:
    """Feature rows (verifier off) for every item: one per considered answer, with label and article.

    With ``first_passages`` (the served cascade's ``QA_READER_FIRST_PASSAGES``), every question is also read with
    only its best ``first_passages`` passages, as the cascade's first step reads it: those rows (``_read ==
    "first"``; the others ``"all"``) teach the verifier what a confident answer from one passage is worth, so
    that its score can decide the early exit and still rank answers.

    With ``hard_negative_fraction``, that share of the answerable questions is also asked a second time with
    every retrieved passage that holds its evidence or an answer text left out (the next ones move up): the
    documents are on the question's topic but do not answer it, the hard "not in the documents" case
    (a removed article is the easy one: nothing on the topic is retrieved). Those rows are labelled wrong.

    With ``sentence_negative_fraction``, that share of the answerable questions is also asked with the same
    retrieved passages after every sentence that holds the evidence or an answer text was cut out of them
    (:func:`cut_evidence_sentences`, ``_variant == "sentence-removed"``), labelled wrong: the nearest miss, a
    passage on the very event that lacks the one fact asked for.
    """
    state = pipeline._require()
    reader = pipeline.reader
    rows: list[dict] = []
    rng = random.Random(f"{seed}:hard-negatives")
    from tqdm.auto import tqdm

    cut_rng = random.Random(f"{seed}:sentence-negatives")

    def read(item: Any, passages: list, answerable: bool, variant: str, how: str,
             document_text: Any = None) -> None:
        first = reader.first_passages
        reader.first_passages = 0  # features of exactly the passages given
        try:
            out = reader.run(item.question, passages, document_text or state.store.document_text, max_answers=3)
        finally:
            reader.first_passages = first
        feats = out.extra.get("features") or []
        for rank, (f, text) in enumerate(zip(feats, _answer_texts(out))):
            r = dict(f)
            r["_answer"] = text
            r["_rank"] = rank
            r["_id"] = item.id
            r["_variant"] = variant
            r["_read"] = how
            r["_question"] = item.question
            if rank == 0 and out.best_guess is not None:  # the top answer's cited sentence, for models reading it
                top = out.best_guess.citations[0]
                r["_sentence"] = top.context
                r["_span"] = [top.start - top.context_start, top.end - top.context_start]
            r["_article"] = item.extra.get("title", item.type) if getattr(item, "extra", None) else ""
            r["_answerable"] = answerable
            r["_label"] = label_rows([r], list(item.answers), answerable)[0]
            rows.append(r)

    def add(item: Any, passages: list, answerable: bool, variant: str, document_text: Any = None) -> None:
        read(item, passages, answerable, variant, "all", document_text)
        if first_passages and len(passages) > first_passages:
            read(item, passages[:first_passages], answerable, variant, "first", document_text)

    for item in tqdm(items, desc="verifier data", disable=not progress):
        variant = (getattr(item, "extra", None) or {}).get("variant", "as-retrieved")
        retrieved = state.retriever.run(item.question, top_k)
        add(item, retrieved, item.answerable, variant)
        if item.answerable and cut_rng.random() < sentence_negative_fraction:
            cut = cut_evidence_sentences(retrieved, item, state.store.document_text)
            if cut is not None:
                add(item, cut[0], False, "sentence-removed", cut[1])
        if item.answerable and rng.random() < hard_negative_fraction:
            wider = state.retriever.run(item.question, top_k + 10)
            kept = [p for p in wider if not _hides_evidence(p, item)][:top_k]
            if kept:
                add(item, kept, False, "evidence-removed")
    return rows


def collect_single(reader: Any, setting: Any, limit: int, seed: int, negative_fraction: float = 0.3,
                   progress: bool = True) -> list[dict]:
    """Rows for the reader-alone setting (``qa eval --squad``): each answerable question read with its own
    paragraph only, and for ``negative_fraction`` of them also with another paragraph of its article that holds
    no answer text (labelled wrong) -- what the ``reader`` feature set is fitted on."""
    from qa.evaluation.open_squad import PARAGRAPH_SEPARATOR

    rng = random.Random(f"{seed}:single")
    items = [it for it in setting.items if it.answerable and it.evidence]
    rng.shuffle(items)
    rows: list[dict] = []
    from tqdm.auto import tqdm

    def add(item: Any, paragraph: str, answerable: bool, variant: str) -> None:
        out = reader.read_contexts(item.question, [("p", paragraph)], max_answers=3)
        for rank, (f, text) in enumerate(zip(out.extra.get("features") or [], _answer_texts(out))):
            r = dict(f)
            r.update({"_answer": text, "_rank": rank, "_id": item.id, "_variant": variant,
                      "_article": item.extra.get("title", ""), "_answerable": answerable})
            r["_label"] = label_rows([r], list(item.answers), answerable)[0]
            rows.append(r)

    for item in tqdm(items[:limit], desc="verifier data (reader alone)", disable=not progress):
        text = setting.documents[item.extra["document"]]
        ev = item.evidence[0]
        a = text.rfind(PARAGRAPH_SEPARATOR, 0, ev.start)
        a = 0 if a < 0 else a + len(PARAGRAPH_SEPARATOR)
        b = text.find(PARAGRAPH_SEPARATOR, ev.end)
        b = len(text) if b < 0 else b
        add(item, text[a:b], True, "own-paragraph")
        if rng.random() < negative_fraction:
            others = [p for p in text.split(PARAGRAPH_SEPARATOR)
                      if p != text[a:b] and not any(x.lower() in p.lower() for x in item.answers if x.strip())]
            if others:
                add(item, rng.choice(others), False, "other-paragraph")
    return rows


def add_impossible(setting: Any, path: Path, limit: int, seed: int) -> int:
    """Add a SQuAD v2.0 file's articles to ``setting``'s corpus and a seeded sample of ``limit`` of its
    unanswerable questions to its items (they keep type "present": their article is in the corpus, but no
    passage answers them). Returns how many were added. Titles must not clash with the setting's."""
    from qa.evaluation.open_squad import build_open_setting

    extra = build_open_setting(path, seed=seed)
    clash = set(extra.documents) & set(setting.documents)
    if clash:
        raise ValueError(f"{path}: document names also in the training corpus: {sorted(clash)[:3]}")
    impossible = [it for it in extra.items if not it.answers]
    random.Random(f"{seed}:impossible").shuffle(impossible)
    picked = impossible[:limit]
    for it in picked:
        it.extra["variant"] = "impossible"
    setting.documents.update(extra.documents)
    setting.items.extend(picked)
    return len(picked)


def _answer_texts(out: Any) -> list[str]:
    """Texts of the answers the features describe, in the same order (all considered answers, scored)."""
    return list(out.extra.get("answer_texts") or [])


def class_weights(rows: list[dict], share: float | None, base: np.ndarray | None = None) -> np.ndarray:
    """Sample weights under which the questions without an answer in the documents make up ``share`` of the
    (weighted) top answers; ``base`` weights (default 1) are kept within each class, ``share=None`` returns
    them unchanged. The open setting is about half unanswerable; a service mostly gets answerable questions,
    and P(correct) and the precision threshold depend on that mix."""
    w = np.ones(len(rows)) if base is None else np.asarray(base, float).copy()
    if share is None or not rows:
        return w
    if not 0.0 < share < 1.0:
        raise ValueError(f"unanswerable share must be between 0 and 1, got {share}")
    un = np.array([not r["_answerable"] for r in rows])
    top = np.array([r["_rank"] == 0 for r in rows])
    n_ans, n_un = float(w[~un & top].sum()), float(w[un & top].sum())
    if n_ans and n_un:
        w[un] *= share / (1.0 - share) * n_ans / n_un
    return w


def row_weights(rows: list[dict], share: float | None, impossible_weight: float = 1.0) -> np.ndarray:
    """:func:`class_weights` over base weights that count each SQuAD v2 impossible question
    (``_variant == "impossible"``) as ``impossible_weight`` of a question."""
    base = np.array([impossible_weight if r.get("_variant") == "impossible" else 1.0 for r in rows])
    return class_weights(rows, share, base)


def fit_linear(X: np.ndarray, y: np.ndarray, features: list[str], C: float = 1.0,
               sample_weight: np.ndarray | None = None) -> LinearCalibrated:
    from sklearn.linear_model import LogisticRegression

    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    lr = LogisticRegression(C=C, max_iter=2000)
    lr.fit((X - mean) / scale, y, sample_weight=sample_weight)
    return LinearCalibrated(features, mean, scale, lr.coef_[0].astype(float), float(lr.intercept_[0]),
                            np.zeros(0), np.zeros(0))


def fit_trees(X: np.ndarray, y: np.ndarray, features: list[str], sample_weight: np.ndarray | None = None,
              seed: int = 0, directions: dict[str, int] | None = None) -> TreesCalibrated:
    """Gradient-boosted trees (scikit-learn HistGradientBoostingClassifier, small and regularised), exported to
    plain data (:class:`TreesCalibrated`). Trees need no standardising and model interactions the logistic
    regression cannot (e.g. a confident span whose sentence shares no word with the question).
    ``directions``: feature -> +1 / -1, the output constrained to be non-decreasing / non-increasing in it
    (``monotonic_cst``; features not named are free)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    cst = [int(np.sign((directions or {}).get(f, 0))) for f in features]
    clf = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=40,
                                         l2_regularization=1.0, early_stopping=False, random_state=seed,
                                         monotonic_cst=cst if any(cst) else None)
    clf.fit(X, y, sample_weight=sample_weight)
    return TreesCalibrated.from_sklearn(clf, features)


def fit_isotonic(model: LinearCalibrated | TreesCalibrated, X: np.ndarray, y: np.ndarray,
                 sample_weight: np.ndarray | None = None) -> None:
    from sklearn.isotonic import IsotonicRegression

    raw = model.raw(X)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(raw, y, sample_weight=sample_weight)
    model.iso_x = np.asarray(iso.X_thresholds_, float)
    model.iso_y = np.asarray(iso.y_thresholds_, float)
    model.platt = None


def fit_platt(model: LinearCalibrated | TreesCalibrated, X: np.ndarray, y: np.ndarray,
              sample_weight: np.ndarray | None = None) -> None:
    """Platt scaling on held-out rows: a one-feature logistic regression on the model's logit. Smooth (every
    answer its own score) where isotonic regression on a few hundred rows gives a handful of steps."""
    from sklearn.linear_model import LogisticRegression

    from qa.verifier.model import logit

    lr = LogisticRegression(C=100.0, max_iter=1000)
    lr.fit(logit(model.raw(X))[:, None], y, sample_weight=sample_weight)
    model.platt = (float(lr.coef_[0][0]), float(lr.intercept_[0]))
    model.iso_x = np.zeros(0)
    model.iso_y = np.zeros(0)


def selective_summary(p: np.ndarray, y: np.ndarray, answerable: np.ndarray, threshold: float) -> dict:
    from sklearn.metrics import roc_auc_score

    out: dict[str, Any] = {"n": int(len(p)), "accuracy_of_top": float(y.mean()) if len(y) else None}
    out["auroc_right_vs_wrong"] = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None
    out["auroc_answerable"] = float(roc_auc_score(answerable, p)) if 0 < answerable.sum() < len(answerable) else None
    bins = np.clip((p * 10).astype(int), 0, 9)
    ece = 0.0
    for b in range(10):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(y[m].mean() - p[m].mean())
    out["ece"] = float(ece)
    answered = p >= threshold
    out["threshold"] = threshold
    out["coverage"] = float(answered.mean())
    out["precision_answered"] = float(y[answered].mean()) if answered.any() else None
    out["answerable_refused"] = float((~answered[answerable.astype(bool)]).mean()) if answerable.any() else None
    out["unanswerable_caught"] = (float((~answered[~answerable.astype(bool)]).mean())
                                  if (~answerable.astype(bool)).any() else None)
    return out


def choose_threshold(p: np.ndarray, y: np.ndarray, target_precision: float,
                     sample_weight: np.ndarray | None = None) -> float:
    """The lowest threshold whose answered items reach ``target_precision`` (over thresholds at the scores;
    precision weighted by ``sample_weight`` when given)."""
    w = np.ones(len(p)) if sample_weight is None else np.asarray(sample_weight, float)
    best = 1.0
    for t in sorted(set(np.round(p, 4).tolist()), reverse=True):
        m = p >= t
        if m.any() and (y[m] * w[m]).sum() / w[m].sum() >= target_precision:
            best = t
    return float(best)


def split_articles(titles: list[str], seed: int, fractions=(0.6, 0.2)) -> tuple[set, set, set]:
    """Seeded (train, calibration, test) split of article titles. The seed is salted: the open setting draws the
    removed articles with ``random.Random(seed)`` from the same sorted titles, and an unsalted shuffle would line
    up with that draw."""
    ordered = sorted(set(titles))
    random.Random(f"{seed}:verifier-split").shuffle(ordered)
    a = round(len(ordered) * fractions[0])
    b = a + round(len(ordered) * fractions[1])
    return set(ordered[:a]), set(ordered[a:b]), set(ordered[b:])


def split_rows_by_article(rows: list[dict], seed: int) -> tuple[set, set, set]:
    """Split articles so that each part has articles with and without their questions' answers in the corpus
    (present and removed articles are split separately, 60/20/20)."""
    present = sorted({r["_article"] for r in rows if r["_answerable"]})
    removed = sorted({r["_article"] for r in rows if not r["_answerable"]} - set(present))
    parts = [split_articles(present, seed), split_articles(removed, seed)]
    return tuple(parts[0][i] | parts[1][i] for i in range(3))  # type: ignore[return-value]


def is_full_read(row: dict) -> bool:
    """True for a row of a question read with all its retrieved passages (rows saved before the cascade rows
    existed have no ``_read``: they are full reads)."""
    return row.get("_read", "all") != "first"


def cascade_served(rows: list[dict], p: np.ndarray, bar: float) -> tuple[np.ndarray, np.ndarray]:
    """What the served cascade would answer: for each question (``_id`` and ``_variant``) of the top-answer
    ``rows`` scored ``p``, its first-passages read when that score reaches ``bar``, else its full read. Returns
    the indices of the served rows and a mask of which of them exited early."""
    first: dict[tuple, int] = {}
    full: dict[tuple, int] = {}
    for i, r in enumerate(rows):
        (full if is_full_read(r) else first)[(r["_id"], r.get("_variant", ""))] = i
    served, exited = [], []
    for key, i in full.items():
        j = first.get(key)
        if j is not None and p[j] >= bar:
            served.append(j)
            exited.append(True)
        else:
            served.append(i)
            exited.append(False)
    return np.array(served, dtype=int), np.array(exited, dtype=bool)


def fit_verifier(rows: list[dict], seed: int, target_precision: float, single_rows: list[dict] | None = None,
                 unanswerable_share: float | None = None, model: str = "linear", calibration: str = "isotonic",
                 fit_top_only: bool = False, impossible_weight: float = 1.0, exit_bar: float = 0.9,
                 keep: dict | None = None, drop_features: Sequence[str] = (), monotonic: bool = False) -> dict:
    """Fit both feature sets on rows (from :func:`collect`) split by article; returns the verifier.json dict.
    ``single_rows`` (from :func:`collect_single`), when given, are what the ``reader`` model is fitted on.
    ``unanswerable_share`` reweights the ``full`` model's rows (fit, calibration and threshold; see
    :func:`class_weights`); test figures stay unweighted. ``model``: ``linear`` (logistic regression) or
    ``trees`` (:func:`fit_trees`) for the ``full`` model; the reader-alone model stays linear.
    ``calibration``: ``isotonic`` or ``platt`` (:func:`fit_platt`) for the ``full`` model. ``fit_top_only``: fit
    the ``full`` model on each question's top answer only (the one whose score is served). ``impossible_weight``:
    see :func:`row_weights`.

    Rows of first-passages reads (``collect(first_passages=...)``) get a model of their own, ``first``, fitted and
    calibrated the same way on those reads only (the ``full`` model stays a model of full reads): the served
    cascade scores its first step with it, exits when that score reaches ``QA_READER_EARLY_EXIT_SCORE``, and
    serves it. ``metrics["cascade"]`` reports that cascade on the test articles at ``exit_bar``
    (:func:`cascade_served`).

    ``keep``: an existing verifier.json dict whose models are kept as they are instead of refitted (e.g. add a
    ``first`` model to a shipped verifier without changing how full reads are scored); its ``min_confidence``
    and ``fallback_span_threshold`` are kept with them, and the test figures are computed with the kept models.

    ``drop_features``: pipeline features the ``full`` and ``first`` models leave out (ablations: what a feature
    group is worth on the same rows).

    ``monotonic``: the ``full`` and ``first`` trees are fitted under :data:`qa.verifier.features.DIRECTIONS`
    (P(correct) never falls as the span's probability or the question's coverage rises, ...)."""
    if model not in ("linear", "trees"):
        raise ValueError(f"model must be 'linear' or 'trees', got {model!r}")
    if calibration not in ("isotonic", "platt"):
        raise ValueError(f"calibration must be 'isotonic' or 'platt', got {calibration!r}")
    arts = sorted({r["_article"] for r in rows})
    tr, ca, te = split_rows_by_article(rows, seed)
    data: dict[str, Any] = {"models": {}, "splits": {"train": sorted(tr), "calibration": sorted(ca), "test": sorted(te)}}
    metrics = {}
    for name, part in (("train", tr), ("calibration", ca), ("test", te)):
        if not [r for r in rows if r["_article"] in part and r["_rank"] == 0]:
            raise ValueError(f"no answered questions in the {name} split ({len(rows)} rows from {len(arts)} articles): "
                             "collect more questions (--questions)")
    first_rows = [r for r in rows if not is_full_read(r)]
    full_rows = [r for r in rows if is_full_read(r)]
    unknown = sorted(set(drop_features) - set(FULL))
    if unknown:
        raise ValueError(f"cannot drop {unknown[0]!r}: not a pipeline feature ({', '.join(FULL)})")
    pipeline_feats = [f for f in FULL if f not in set(drop_features)]
    fits = [("full", pipeline_feats, full_rows), ("reader", READER, single_rows or full_rows)]
    if first_rows:
        fits.append(("first", pipeline_feats, first_rows))
    predictions: dict[str, tuple[list[dict], np.ndarray]] = {}
    for kind, feats, data_rows in fits:
        pick = lambda s, top_only=False: [r for r in data_rows if r["_article"] in s  # noqa: E731
                                          and (not top_only or r["_rank"] == 0)]
        pipeline_model = kind in ("full", "first")  # the pipeline's feature set and recipe
        share = unanswerable_share if pipeline_model else None
        weigh = lambda rs: row_weights(rs, share, impossible_weight if pipeline_model else 1.0)  # noqa: E731
        cal = pick(ca, True)
        wc = weigh(cal)
        if keep is not None and kind in keep.get("models", {}):
            m = model_from_dict(keep["models"][kind])
            if list(m.features) != list(feats):
                raise ValueError(f"the kept {kind!r} model has other features than this code computes: refit it")
        else:
            fit_rows = pick(tr, pipeline_model and fit_top_only)
            Xtr = np.array([[r[f] for f in feats] for r in fit_rows])
            ytr = np.array([r["_label"] for r in fit_rows])
            if pipeline_model and model == "trees":
                m = fit_trees(Xtr, ytr, feats, sample_weight=weigh(fit_rows), seed=seed,
                              directions=DIRECTIONS if monotonic else None)
            else:
                m = fit_linear(Xtr, ytr, feats, sample_weight=weigh(fit_rows))
            calibrate = fit_platt if (pipeline_model and calibration == "platt") else fit_isotonic
            calibrate(m, np.array([[r[f] for f in feats] for r in cal]), np.array([r["_label"] for r in cal]), wc)
        data["models"][kind] = m.to_dict()
        pc = m.predict(np.array([[r[f] for f in feats] for r in cal]))
        yc = np.array([r["_label"] for r in cal])
        thr = choose_threshold(pc, yc, target_precision, wc)
        if keep is not None and kind == "full" and "full" in keep.get("models", {}):
            thr = float(keep.get("min_confidence", thr))
        test = pick(te, True)
        pt = m.predict(np.array([[r[f] for f in feats] for r in test]))
        yt = np.array([r["_label"] for r in test])
        at = np.array([r["_answerable"] for r in test])
        predictions[kind] = (test, pt)
        metrics[kind] = {"threshold_at_target": thr,
                         "calibration": selective_summary(pc, yc, np.array([r["_answerable"] for r in cal]), thr),
                         "test": selective_summary(pt, yt, at, thr)}
    if first_rows:
        # the served cascade on the test articles: the first read's score ("first" model) decides the exit and is
        # served when it exits; otherwise the full read's ("full" model) is
        test = predictions["full"][0] + predictions["first"][0]
        p = np.concatenate([predictions["full"][1], predictions["first"][1]])
        idx, exited = cascade_served(test, p, exit_bar)
        thr = metrics["full"]["threshold_at_target"]
        summary = selective_summary(p[idx], np.array([test[i]["_label"] for i in idx]),
                                    np.array([test[i]["_answerable"] for i in idx]), thr)
        summary.update({"exit_bar": exit_bar, "exited": float(exited.mean()) if len(exited) else 0.0})
        metrics["cascade"] = {"test": summary}
    data["min_confidence"] = round(metrics["full"]["threshold_at_target"], 4)
    # for serving without the verifier (QA_VERIFIER=false): the same precision target on the raw span probability
    cal = [r for r in rows if r["_article"] in ca and r["_rank"] == 0 and is_full_read(r)]
    span_p = 1.0 / (1.0 + np.exp(-np.array([r["span_logit"] for r in cal])))
    data["fallback_span_threshold"] = round(choose_threshold(span_p, np.array([r["_label"] for r in cal]),
                                                             target_precision,
                                                             row_weights(cal, unanswerable_share, impossible_weight)), 4)
    if keep is not None and "full" in keep.get("models", {}) and "fallback_span_threshold" in keep:
        data["fallback_span_threshold"] = keep["fallback_span_threshold"]
    for kind, kept_model in (keep or {}).get("models", {}).items():
        # a kept model this run has no rows for (e.g. ``first`` when refitting ``full`` from full reads only)
        data["models"].setdefault(kind, kept_model)
    data["kept_models"] = sorted(set(keep.get("models", {})) & set(data["models"])) if keep is not None else []
    data["target_precision"] = target_precision
    data["unanswerable_share"] = unanswerable_share
    data["model"] = model
    data["calibration"] = calibration
    data["fit_top_only"] = fit_top_only
    data["impossible_weight"] = impossible_weight
    data["first_passage_rows"] = len(first_rows)
    data["metrics"] = metrics
    data["rows"] = {"train": sum(1 for r in full_rows if r["_article"] in tr),
                    "calibration": sum(1 for r in full_rows if r["_article"] in ca and r["_rank"] == 0),
                    "test": sum(1 for r in full_rows if r["_article"] in te and r["_rank"] == 0),
                    "reader_alone": len(single_rows or [])}
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="qa train-verifier", description=__doc__.split("\n\n")[0])
    ap.add_argument("--reader", type=Path, default=None, help="reader folder (default: settings)")
    ap.add_argument("--squad", type=Path, default=None, help="SQuAD train file (default: QA_SQUAD_DIR/squad-v1.1-train.json)")
    ap.add_argument("--held-out", type=int, default=60, help="articles held out of reader training (qa.training.groups)")
    ap.add_argument("--split-seed", type=int, default=42, help="seed of that held-out split")
    ap.add_argument("--remove-articles", type=int, default=12)
    ap.add_argument("--questions", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target-precision", type=float, default=0.8)
    ap.add_argument("--hard-negatives", type=float, default=0.3,
                    help="share of answerable questions also asked with their evidence passages left out")
    ap.add_argument("--sentence-negatives", type=float, default=0.0,
                    help="share of answerable questions also asked with the same passages after the sentences "
                         "holding their evidence or an answer were cut out (labelled wrong)")
    ap.add_argument("--workdir", type=Path, default=Path("runs/verifier"))
    ap.add_argument("--rows", type=Path, default=None, help="reuse feature rows saved by an earlier run (JSONL)")
    ap.add_argument("--dry-run", action="store_true", help="fit and print, do not write verifier.json")
    ap.add_argument("--single-questions", type=int, default=1000,
                    help="questions read alone with their own paragraph (and some with another) for the reader-alone model")
    ap.add_argument("--impossible", type=Path, default=None,
                    help="a SQuAD v2.0 file: its articles join the corpus and a sample of its unanswerable questions "
                         "(written against a paragraph that does not answer them) join the questions, labelled "
                         "wrong: the on-topic 'not in the documents' case")
    ap.add_argument("--impossible-questions", type=int, default=800, help="how many of them (with --impossible)")
    ap.add_argument("--unanswerable-share", type=float, default=0.2,
                    help="weight the pipeline model's rows so that questions with no answer in the documents are "
                         "this share of the questions (fit, calibration, threshold); 0 keeps the open setting's mix")
    ap.add_argument("--model", choices=("linear", "trees"), default="trees",
                    help="the pipeline model: logistic regression or gradient-boosted trees (both plain JSON)")
    ap.add_argument("--calibration", choices=("isotonic", "platt"), default="platt",
                    help="how the pipeline model's output is mapped to P(correct) on the calibration articles")
    ap.add_argument("--fit-rows", choices=("all", "top"), default="top",
                    help="fit the pipeline model on every considered answer or on each question's top answer")
    ap.add_argument("--impossible-weight", type=float, default=0.25,
                    help="weight of one --impossible question relative to the others (they are adversarial: at "
                         "full weight the verifier doubts every answerable question that looks like them)")
    ap.add_argument("--first-passages", type=int, default=1,
                    help="also read every question with only its best N passages (the cascade's first step, "
                         "QA_READER_FIRST_PASSAGES) and fit on those reads too; 0: full reads only")
    ap.add_argument("--exit-bar", type=float, default=0.9,
                    help="the cascade's QA_READER_EARLY_EXIT_SCORE, for the test figures of the served cascade")
    ap.add_argument("--keep-models", default="",
                    help="comma-separated models of the reader folder's verifier.json to keep as they are (e.g. "
                         "full,reader: add the first-passages model without refitting the others)")
    ap.add_argument("--drop-features", default="",
                    help="comma-separated pipeline features to leave out of the full and first models (ablations)")
    ap.add_argument("--monotonic", action=argparse.BooleanOptionalAction, default=True,
                    help="fit the pipeline trees under qa.verifier.features.DIRECTIONS (P(correct) never falls as "
                         "the span's probability or the question's coverage rises...); --no-monotonic: unconstrained "
                         "(the recipe before 2026-12-07)")
    ap.add_argument("--out", type=Path, default=None,
                    help="write verifier.json here instead of into the reader folder (then reader_config.json is "
                         "left alone): a variant to compare before shipping it (eval/verifier_compare.py)")
    ap.add_argument("--single-only", action="store_true",
                    help="with --rows: collect only the reader-alone rows (own paragraph / other paragraph)")
    args = ap.parse_args(argv)

    from qa.config import get_settings
    from qa.training.groups import split_articles as reader_split

    s = get_settings()
    reader_dir = args.reader or s.reader_model_dir
    squad = args.squad or (s.squad_dir / "squad-v1.1-train.json")
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows_path = args.rows or (args.workdir / "rows.jsonl")
    single_path = rows_path.with_name(rows_path.stem + "_single.jsonl")
    if args.rows is None or args.single_only:
        from qa.evaluation.open_squad import build_open_setting, work_settings, write_corpus
        from qa.pipeline import QAPipeline

        titles = [a.get("title", "") for a in json.loads(squad.read_text(encoding="utf-8"))["data"]]
        _, held = reader_split(titles, args.held_out, args.split_seed)
        setting = build_open_setting(squad, titles=held, remove_articles=args.remove_articles, seed=args.seed,
                                     limit=args.questions)
        if args.impossible is not None:
            add_impossible(setting, args.impossible, args.impossible_questions, args.seed)
        corpus = write_corpus(setting, args.workdir / "corpus")
        settings = work_settings(s, corpus, args.workdir / "index", reader_model_dir=reader_dir, verifier=False)
        pipeline = QAPipeline(settings)
        pipeline.warm_up(show_progress=True)
        if not args.single_only:
            rows = collect(pipeline, setting.items, settings.top_k, hard_negative_fraction=args.hard_negatives,
                           seed=args.seed, first_passages=args.first_passages,
                           sentence_negative_fraction=args.sentence_negatives)
            with rows_path.open("w", encoding="utf-8") as f:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
        single = collect_single(pipeline.reader, setting, args.single_questions, args.seed)
        with single_path.open("w", encoding="utf-8") as f:
            for r in single:
                f.write(json.dumps(r) + "\n")
    rows = [json.loads(x) for x in rows_path.read_text(encoding="utf-8").splitlines() if x.strip()]
    if args.impossible is not None:  # rows saved before the variant was recorded: mark them by article
        v2_titles = {a.get("title", "") for a in json.loads(args.impossible.read_text(encoding="utf-8"))["data"]}
        for r in rows:
            if not r["_answerable"] and r["_article"] in v2_titles and r.get("_variant") == "as-retrieved":
                r["_variant"] = "impossible"
    single = ([json.loads(x) for x in single_path.read_text(encoding="utf-8").splitlines() if x.strip()]
              if single_path.exists() else None)
    keep = None
    if args.keep_models:
        existing = json.loads((Path(reader_dir) / FILE_NAME).read_text(encoding="utf-8"))
        names = [x.strip() for x in args.keep_models.split(",") if x.strip()]
        missing = [x for x in names if x not in existing.get("models", {})]
        if missing:
            raise SystemExit(f"--keep-models: {Path(reader_dir) / FILE_NAME} has no model {missing[0]!r}")
        keep = dict(existing, models={x: existing["models"][x] for x in names})
    dropped = [x.strip() for x in args.drop_features.split(",") if x.strip()]
    data = fit_verifier(rows, args.seed, args.target_precision, single, args.unanswerable_share or None,
                        args.model, args.calibration, args.fit_rows == "top", args.impossible_weight,
                        args.exit_bar, keep, dropped, monotonic=args.monotonic and args.model == "trees")
    data["version"] = 1
    data["date"] = _dt.date.today().isoformat()
    data["trained_on"] = {"squad_file": squad.name, "held_out_articles": args.held_out, "split_seed": args.split_seed,
                          "removed_articles": args.remove_articles, "questions": args.questions, "seed": args.seed,
                          "hard_negatives": args.hard_negatives,
                          "sentence_negatives": args.sentence_negatives,
                          "impossible_file": args.impossible.name if args.impossible else None,
                          "impossible_questions": args.impossible_questions if args.impossible else 0,
                          "unanswerable_share": args.unanswerable_share or None, "model": args.model,
                          "calibration": args.calibration, "fit_rows": args.fit_rows,
                          "impossible_weight": args.impossible_weight, "first_passages": args.first_passages,
                          "exit_bar": args.exit_bar, "f1_correct": F1_CORRECT,
                          "dropped_features": dropped,
                          "monotonic": bool(args.monotonic and args.model == "trees")}
    if keep is not None:  # what the kept models were fitted on, and the file they came from
        kept_path = Path(reader_dir) / FILE_NAME
        data["kept_from"] = {"date": keep.get("date"), "trained_on": keep.get("trained_on"),
                             "sha256": file_sha256(kept_path)}
    weights = Path(reader_dir) / "model.safetensors"
    if weights.exists():
        data["reader_sha256"] = file_sha256(weights)
    print(json.dumps({"min_confidence": data["min_confidence"], "rows": data["rows"], "metrics": data["metrics"]},
                     indent=1))
    if not args.dry_run and args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    elif not args.dry_run:
        written = Path(reader_dir) / FILE_NAME
        written.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        cfg_path = Path(reader_dir) / "reader_config.json"
        if cfg_path.exists():  # the no-verifier fallback threshold, on the same precision target
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
            cfg["threshold"] = data["fallback_span_threshold"]
            if isinstance(cfg.get("sha256"), dict) and FILE_NAME in cfg["sha256"]:  # the checksum the card cites
                cfg["sha256"][FILE_NAME] = file_sha256(written)
            cfg_path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {Path(reader_dir) / FILE_NAME}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
