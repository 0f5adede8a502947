"""The fitted verifier as data, scored with numpy, then isotonic calibration.

``verifier.json`` (beside the reader's weights) holds, per feature set (``full``, ``reader``), one of:

- ``"kind": "linear"`` (the default when absent): the feature names, their means and scales, the logistic
  coefficients and intercept;
- ``"kind": "trees"``: gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier, exported node by
  node: feature, threshold, left/right child, leaf value), their sum plus ``baseline`` is a logit;

and the isotonic curve (x: the model's probability, y: the calibrated P(correct)) fitted on held-out articles.
No pickles: the file is plain JSON and loads without scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE_NAME = "verifier.json"


def _platt_of(d: dict) -> tuple[float, float] | None:
    p = d.get("platt")
    return (float(p["a"]), float(p["b"])) if p else None


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def calibrate(p: np.ndarray, iso_x: np.ndarray, iso_y: np.ndarray, platt: tuple[float, float] | None) -> np.ndarray:
    """The calibration step: Platt scaling (sigmoid(a * logit(p) + b)) when fitted, else the isotonic curve,
    else ``p`` unchanged."""
    if platt is not None:
        return 1.0 / (1.0 + np.exp(-(platt[0] * logit(p) + platt[1])))
    if len(iso_x) == 0:
        return p
    return np.interp(p, iso_x, iso_y)


@dataclass
class LinearCalibrated:
    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    iso_x: np.ndarray
    iso_y: np.ndarray
    platt: tuple[float, float] | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "LinearCalibrated":
        return cls(list(d["features"]), np.asarray(d["mean"], float), np.asarray(d["scale"], float),
                   np.asarray(d["coef"], float), float(d["intercept"]), np.asarray(d["isotonic"]["x"], float),
                   np.asarray(d["isotonic"]["y"], float), _platt_of(d))

    def to_dict(self) -> dict:
        return {"kind": "linear", "features": self.features, "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept,
                "isotonic": {"x": self.iso_x.tolist(), "y": self.iso_y.tolist()},
                **({"platt": {"a": self.platt[0], "b": self.platt[1]}} if self.platt else {})}

    def raw(self, X: np.ndarray) -> np.ndarray:
        z = (X - self.mean) / self.scale @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return calibrate(self.raw(X), self.iso_x, self.iso_y, self.platt)

    def matrix(self, rows: list[dict[str, float]]) -> np.ndarray:
        return np.array([[float(r[f]) for f in self.features] for r in rows], dtype=float).reshape(len(rows),
                                                                                                   len(self.features))


@dataclass
class TreesCalibrated:
    features: list[str]
    baseline: float
    trees: list[dict]  # each: feature, threshold, left, right, leaf, value, missing_left (lists, one per node)
    iso_x: np.ndarray
    iso_y: np.ndarray
    platt: tuple[float, float] | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "TreesCalibrated":
        trees = []
        for t in d["trees"]:
            tree = {"feature": np.asarray(t["feature"], int), "threshold": np.asarray(t["threshold"], float),
                    "left": np.asarray(t["left"], int), "right": np.asarray(t["right"], int),
                    "leaf": np.asarray(t["leaf"], bool), "value": np.asarray(t["value"], float),
                    "missing_left": np.asarray(t["missing_left"], bool)}
            n = len(tree["value"])
            if any(len(v) != n for v in tree.values()) or n == 0:
                raise ValueError("a tree's node arrays differ in length")
            inner = ~tree["leaf"]
            if inner.any() and (tree["left"][inner].max() >= n or tree["right"][inner].max() >= n
                                or tree["feature"][inner].max() >= len(d["features"])):
                raise ValueError("a tree points outside its nodes or features")
            trees.append(tree)
        return cls(list(d["features"]), float(d["baseline"]), trees, np.asarray(d["isotonic"]["x"], float),
                   np.asarray(d["isotonic"]["y"], float), _platt_of(d))

    @classmethod
    def from_sklearn(cls, clf, features: list[str]) -> "TreesCalibrated":
        """Export a fitted binary HistGradientBoostingClassifier (numerical features, no categorical ones)."""
        trees = []
        for (pred,) in clf._predictors:
            nodes = pred.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported")
            trees.append({"feature": nodes["feature_idx"].astype(int).tolist(),
                          "threshold": nodes["num_threshold"].astype(float).tolist(),
                          "left": nodes["left"].astype(int).tolist(), "right": nodes["right"].astype(int).tolist(),
                          "leaf": nodes["is_leaf"].astype(bool).tolist(), "value": nodes["value"].astype(float).tolist(),
                          "missing_left": nodes["missing_go_to_left"].astype(bool).tolist()})
        return cls.from_dict({"features": features, "baseline": float(np.ravel(clf._baseline_prediction)[0]),
                              "trees": trees, "isotonic": {"x": [], "y": []}})

    def to_dict(self) -> dict:
        return {"kind": "trees", "features": self.features, "baseline": self.baseline,
                "trees": [{k: v.tolist() for k, v in t.items()} for t in self.trees],
                "isotonic": {"x": self.iso_x.tolist(), "y": self.iso_y.tolist()},
                **({"platt": {"a": self.platt[0], "b": self.platt[1]}} if self.platt else {})}

    def __post_init__(self) -> None:
        # all trees in flat arrays (children offset to their tree's start) so that every tree is walked at once
        sizes = [len(t["value"]) for t in self.trees]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int) if sizes else np.zeros(0, int)
        cat = lambda key: np.concatenate([t[key] for t in self.trees]) if self.trees else np.zeros(0)  # noqa: E731
        self._roots = offsets
        self._feature = cat("feature").astype(int)
        self._threshold = cat("threshold").astype(float)
        self._left = np.concatenate([t["left"] + o for t, o in zip(self.trees, offsets)]) if self.trees else np.zeros(0, int)
        self._right = np.concatenate([t["right"] + o for t, o in zip(self.trees, offsets)]) if self.trees else np.zeros(0, int)
        self._leaf = cat("leaf").astype(bool)
        self._value = cat("value").astype(float)
        self._missing_left = cat("missing_left").astype(bool)
        self._max_steps = max(sizes, default=0)

    def raw(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, float).reshape(-1, len(self.features))
        z = np.full(len(X), self.baseline)
        if not self.trees or not len(X):
            return 1.0 / (1.0 + np.exp(-z))
        node = np.tile(self._roots, (len(X), 1))  # (samples, trees)
        rows = np.arange(len(X))[:, None]
        for _ in range(self._max_steps):  # a path is never longer than its tree's node count
            inner = ~self._leaf[node]
            if not inner.any():
                break
            x = X[rows, self._feature[node]]
            go_left = np.where(np.isnan(x), self._missing_left[node], x <= self._threshold[node])
            node = np.where(inner, np.where(go_left, self._left[node], self._right[node]), node)
        z += self._value[node].sum(axis=1)
        return 1.0 / (1.0 + np.exp(-z))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return calibrate(self.raw(X), self.iso_x, self.iso_y, self.platt)

    matrix = LinearCalibrated.matrix


def model_from_dict(d: dict) -> "LinearCalibrated | TreesCalibrated":
    kind = d.get("kind", "linear")
    if kind == "linear":
        return LinearCalibrated.from_dict(d)
    if kind == "trees":
        return TreesCalibrated.from_dict(d)
    raise ValueError(f"unknown verifier model kind {kind!r}")


class Verifier:
    """``Verifier.load(model_dir)`` -> scores feature rows; ``None`` when the folder has no verifier."""

    def __init__(self, data: dict, path: Path | None = None) -> None:
        self.data = data
        self.path = path
        self.models = {name: model_from_dict(m) for name, m in data["models"].items()}
        self.min_confidence = float(data.get("min_confidence", 0.5))
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest() if path is not None else None

    @classmethod
    def load(cls, model_dir: str | Path) -> "Verifier | None":
        path = Path(model_dir) / FILE_NAME
        if not path.exists():
            return None
        try:
            return cls(json.loads(path.read_text(encoding="utf-8")), path)
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path.name} in the reader folder is not a valid verifier ({e}); "
                             f"retrain it with `qa train-verifier` or remove it to serve without one") from None

    def has(self, kind: str) -> bool:
        return kind in self.models

    def score(self, rows: list[dict[str, float]], kind: str) -> np.ndarray:
        if not rows:
            return np.zeros(0)
        m = self.models[kind]
        return np.clip(m.predict(m.matrix(rows)), 0.0, 1.0)
