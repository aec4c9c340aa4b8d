"""Stories: near-duplicate detection and story clustering, as plain libraries the stream stage drives.

Nothing here imports faust, Kafka or Redis: the stage owns the I/O and keeps this package's state (signatures,
links) where it survives a restart, then rebuilds the in-memory indexes from it.
"""

__all__: list[str] = []
