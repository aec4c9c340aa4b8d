"""The inference engine: a library first (used in-process by the stream worker), served by `inference.main`."""

from inference.engine import Engine, get_engine

__all__ = ["Engine", "get_engine"]
