"""`python -m stream_worker worker` starts a worker (faust's own command line).

The topics are created first: faust does not create the topics it consumes, and a worker that
starts before them would sit with no partitions assigned until its next metadata refresh.
"""
# ruff: noqa: E402  (the thread settings below must precede the imports that load numpy)

import os

# The worker's own process runs one asyncio thread (the engine runs in its own processes, which set their
# threads themselves): BLAS threads would only spin beside the story stage's small matrix products, costing CPU
# the engine needs. Set before numpy is imported; an explicit setting wins.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import asyncio

import stream_worker.agents  # noqa: F401  (registers the agents)
import stream_worker.stats  # noqa: F401  (registers the statistics agent)
import stream_worker.story_agents  # noqa: F401  (registers the story stage's agent)
import stream_worker.views  # noqa: F401  (registers the web views)
from common.kafka import ensure_topics, wait_for_kafka
from common.topics import Topics
from stream_worker.app import app, settings


def _prepare() -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # faust runs on this loop afterwards
    loop.run_until_complete(wait_for_kafka(settings.kafka))
    loop.run_until_complete(ensure_topics(settings.kafka, Topics.of(settings.kafka.topics).names()))


if __name__ == "__main__":
    _prepare()
    app.main()
