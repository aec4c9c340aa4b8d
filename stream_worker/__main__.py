"""`python -m stream_worker worker` starts a worker (faust's own command line).

The topics are created first: faust does not create the topics it consumes, and a worker that
starts before them would sit with no partitions assigned until its next metadata refresh.
"""

import asyncio

import stream_worker.agents  # noqa: F401  (registers the agents and views)
import stream_worker.tables  # noqa: F401  (registers the tables and their agents)
from common.kafka import ensure_topics, wait_for_kafka
from stream_worker.app import app, settings


def _prepare() -> None:
    topics = settings.kafka.topics
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # faust runs on this loop afterwards
    loop.run_until_complete(wait_for_kafka(settings.kafka))
    loop.run_until_complete(ensure_topics(settings.kafka, [topics.raw_topic, topics.analyzed_topic, topics.dlq_topic]))


if __name__ == "__main__":
    _prepare()
    app.main()
