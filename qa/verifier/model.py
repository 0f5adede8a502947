"""The fitted verifier as data, scored with numpy: standardise -> logistic regression -> isotonic calibration.

``verifier.json`` (beside the reader's weights) holds, per feature set (``full``, ``reader``): the feature
names, their means and scales, the logistic coefficients and intercept, and the isotonic curve (x: the
logistic probability, y: the calibrated P(correct)) fitted on held-out articles. No pickles: the file is
plain JSON and loads without scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE_NAME = "verifier.json"


@dataclass
class LinearCalibrated:
    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    iso_x: np.ndarray
    iso_y: np.ndarray

    @classmethod
    def from_dict(cls, d: dict) -> "LinearCalibrated":
        return cls(list(d["features"]), np.asarray(d["mean"], float), np.asarray(d["scale"], float),
                   np.asarray(d["coef"], float), float(d["intercept"]), np.asarray(d["isotonic"]["x"], float),
                   np.asarray(d["isotonic"]["y"], float))

    def to_dict(self) -> dict:
        return {"features": self.features, "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept,
                "isotonic": {"x": self.iso_x.tolist(), "y": self.iso_y.tolist()}}

    def raw(self, X: np.ndarray) -> np.ndarray:
        z = (X - self.mean) / self.scale @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def predict(self, X: np.ndarray) -> np.ndarray:
        p = self.raw(X)
        if len(self.iso_x) == 0:
            return p
        return np.interp(p, self.iso_x, self.iso_y)

    def matrix(self, rows: list[dict[str, float]]) -> np.ndarray:
        return np.array([[float(r[f]) for f in self.features] for r in rows], dtype=float).reshape(len(rows),
                                                                                                   len(self.features))


class Verifier:
    """``Verifier.load(model_dir)`` -> scores feature rows; ``None`` when the folder has no verifier."""

    def __init__(self, data: dict, path: Path | None = None) -> None:
        self.data = data
        self.path = path
        self.models = {name: LinearCalibrated.from_dict(m) for name, m in data["models"].items()}
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

    def score(self, rows: list[dict[str, float]], kind: str) -> np.ndarray:
        if not rows:
            return np.zeros(0)
        m = self.models[kind]
        return np.clip(m.predict(m.matrix(rows)), 0.0, 1.0)
