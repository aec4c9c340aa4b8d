"""The stream worker: faust-streaming agents that batch `news.raw` through the inference engine."""
