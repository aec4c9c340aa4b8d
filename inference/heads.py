"""Small trained heads over features (softmax regression, numpy) and the character n-grams of the Korean model.

The trained weights live in `inference/artifacts/` with a JSON card saying how they were made
(`python -m training.train`); this module only loads and applies them, and fits them.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ARTIFACTS", "LinearHead", "char_ngrams", "fit_softmax"]

ARTIFACTS = Path(__file__).parent / "artifacts"
Matrix = npt.NDArray[np.float32]


def _softmax(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: npt.NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
    return out


def fit_softmax(
    x: Matrix,
    y: npt.NDArray[np.int64],
    n_classes: int,
    *,
    l2: float = 1e-3,
    steps: int = 600,
    lr: float = 0.05,
    balanced: bool = True,
    seed: int = 0,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Full-batch multinomial logistic regression with Adam; class-balanced sample weights by default."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    xd = x.astype(np.float64)
    w = rng.normal(0, 0.01, (d, n_classes))
    b = np.zeros(n_classes)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    sample_w = (n / (n_classes * np.clip(counts, 1, None)))[y] if balanced else np.ones(n)
    sample_w = sample_w / sample_w.sum()
    onehot = np.eye(n_classes)[y]
    m_w, v_w, m_b, v_b = np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)
    for t in range(1, steps + 1):
        p = _softmax(xd @ w + b)
        err = (p - onehot) * sample_w[:, None]
        g_w = xd.T @ err + l2 * w
        g_b = err.sum(axis=0)
        for g, m, v in ((g_w, m_w, v_w), (g_b, m_b, v_b)):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
        w -= lr * (m_w / (1 - 0.9**t)) / (np.sqrt(v_w / (1 - 0.999**t)) + 1e-8)
        b -= lr * (m_b / (1 - 0.9**t)) / (np.sqrt(v_b / (1 - 0.999**t)) + 1e-8)
    return w.astype(np.float32), b.astype(np.float32)


@dataclass(frozen=True)
class LinearHead:
    """Softmax regression over a fixed feature vector; `classes[i]` is column i."""

    name: str
    classes: tuple[str, ...]
    weights: Matrix
    bias: npt.NDArray[np.float32]
    card: dict[str, Any]

    def predict_proba(self, x: Matrix) -> npt.NDArray[np.float64]:
        return _softmax(x.astype(np.float64) @ self.weights + self.bias)

    def save(self, directory: Path = ARTIFACTS) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(directory / f"{self.name}.npz", weights=self.weights, bias=self.bias)
        card = {**self.card, "classes": list(self.classes), "kind": "softmax"}
        (directory / f"{self.name}.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, name: str, directory: Path = ARTIFACTS) -> LinearHead:
        card = json.loads((directory / f"{name}.json").read_text())
        with np.load(directory / f"{name}.npz") as data:
            return cls(name, tuple(card["classes"]), data["weights"], data["bias"], card)


def char_ngrams(text: str, n_min: int = 1, n_max: int = 3) -> list[str]:
    """Character n-grams of a lightly normalised text (NFKC, lower case, one space), with word edges marked."""
    norm = " ".join(unicodedata.normalize("NFKC", text).lower().split())
    padded = f" {norm} "
    return [padded[i : i + n] for n in range(n_min, n_max + 1) for i in range(len(padded) - n + 1)]
