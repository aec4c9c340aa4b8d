"""An article's embedding on the wire: int8-quantised and base64-encoded, so it travels with the analysis
(about 512 characters for 384 dimensions) to the stages that compare articles (story clustering).

Vectors are unit length; each component is scaled by 127 and rounded, which keeps cosine similarities
within about 0.01 of the float vectors'.
"""

from __future__ import annotations

import base64

import numpy as np
import numpy.typing as npt

__all__ = ["EMBEDDING_PATTERN", "pack", "unpack"]

# base64 of 16 to 1,024 int8 components
EMBEDDING_PATTERN = r"^[A-Za-z0-9+/]{20,1368}={0,2}$"


def pack(vector: npt.NDArray[np.floating]) -> str:
    """A unit vector as base64 of its int8 components."""
    scaled = np.clip(np.rint(np.asarray(vector, dtype=np.float32) * 127.0), -127, 127).astype(np.int8)
    return base64.b64encode(scaled.tobytes()).decode("ascii")


def unpack(text: str) -> npt.NDArray[np.float32]:
    """The unit vector back (re-normalised after quantisation)."""
    vector = np.frombuffer(base64.b64decode(text), dtype=np.int8).astype(np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector
