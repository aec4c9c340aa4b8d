"""Small trained heads over features: softmax regression (numpy) and a hashed character n-gram classifier.

The trained weights live in `inference/artifacts/` with a JSON card saying how they were made
(`python -m inference.training.train`); this module only loads and applies them, and fits them.
"""

from __future__ import annotations

import json
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ARTIFACTS", "LinearHead", "NgramHead", "char_ngrams", "fit_softmax"]

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


def _hash(grams: Sequence[str], buckets: int) -> npt.NDArray[np.int64]:
    return np.fromiter((zlib.crc32(g.encode("utf-8")) % buckets for g in grams), dtype=np.int64, count=len(grams))


@dataclass(frozen=True)
class NgramHead:
    """Binary logistic regression over hashed character 1-3-grams (strong and cheap for Korean short text)."""

    name: str
    weights: npt.NDArray[np.float32]
    bias: float
    card: dict[str, Any]

    @property
    def buckets(self) -> int:
        return int(self.weights.shape[0])

    def positive_proba(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        out = np.empty(len(texts))
        for i, text in enumerate(texts):
            idx = _hash(char_ngrams(text), self.buckets)
            z = float(self.weights[idx].sum()) / max(1.0, np.sqrt(len(idx))) + self.bias
            out[i] = 1.0 / (1.0 + np.exp(-z))
        return out

    @classmethod
    def fit(
        cls,
        name: str,
        texts: Sequence[str],
        labels: Sequence[int],
        *,
        buckets: int = 1 << 18,
        epochs: int = 60,
        lr: float = 0.5,
        l2: float = 1e-6,
        card: dict[str, Any] | None = None,
    ) -> NgramHead:
        docs = [_hash(char_ngrams(t), buckets) for t in texts]
        lengths = np.array([len(d) for d in docs])
        flat = np.concatenate(docs)
        owner = np.repeat(np.arange(len(docs)), lengths)
        scale = 1.0 / np.sqrt(np.clip(lengths, 1, None))
        y = np.asarray(labels, dtype=np.float64)
        w = np.zeros(buckets)
        b = 0.0
        m, v = np.zeros(buckets), np.zeros(buckets)
        for t in range(1, epochs + 1):
            z = np.bincount(owner, weights=w[flat], minlength=len(docs)) * scale + b
            err = (1.0 / (1.0 + np.exp(-z)) - y) / len(docs)
            g = np.bincount(flat, weights=(err * scale)[owner], minlength=buckets) + l2 * w
            b -= lr * err.sum()
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            w -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8) * 0.02
        return cls(name, w.astype(np.float32), float(b), card or {})

    def save(self, directory: Path = ARTIFACTS) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(directory / f"{self.name}.npz", weights=self.weights.astype(np.float16))
        card = {**self.card, "kind": "char-ngram-logreg", "bias": self.bias, "buckets": self.buckets}
        (directory / f"{self.name}.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, name: str, directory: Path = ARTIFACTS) -> NgramHead:
        card = json.loads((directory / f"{name}.json").read_text())
        with np.load(directory / f"{name}.npz") as data:
            return cls(name, data["weights"].astype(np.float32), float(card["bias"]), card)
