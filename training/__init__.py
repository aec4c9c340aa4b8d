"""Training and evaluation of the local heads: `train` (make train), `evaluate` (make eval), `data` (the corpora)."""
