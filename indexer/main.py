"""Indexer service (port 8003): the composition root. `news.analyzed` -> OpenSearch (issue 16).

    python -m indexer                                   # or: uvicorn indexer.main:app --port 8003

Why a process of its own rather than a stage of the consumer: the consumer serves the live feed
(WebSocket, REST) from Redis, and the archive must not be able to slow it down or take it with it.
Bulk indexing is CPU and I/O heavy under a replay (`make reindex` reads the whole topic), and while
OpenSearch is down the indexer deliberately stops polling and holds its batch (backpressure); in the
consumer's process either would compete with the feed's event loop, and holding back would mean one
consumer group for two jobs with different speeds. Its own consumer group gives it its own offsets
(its lag is the index's lag, alerted on by itself), it scales and restarts on its own, and it runs from
the consumer's image (`python -m indexer`), so no extra image to build.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry

from common.kafka import open_consumer, open_producer
from common.search_index import make_client
from common.topics import Topics
from common.webapp import configure_logging, install_error_handlers, ops_router
from indexer.bulk import Indexer
from indexer.metrics import IndexerMetrics
from indexer.settings import IndexerSettings, get_settings
from indexer.stories import StoryLinker

__all__ = ["app", "create_app"]

log = logging.getLogger(__name__)


def _start(stack: AsyncExitStack, coroutine: Coroutine[Any, Any, None], name: str) -> None:
    """Run `coroutine` as a task that `stack` cancels (and waits for) on the way out."""
    task = asyncio.create_task(coroutine, name=name)

    def done(finished: asyncio.Task[None]) -> None:
        if not finished.cancelled() and finished.exception() is not None:
            log.error("%s stopped", name, exc_info=finished.exception())

    task.add_done_callback(done)

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)


async def _readiness(request: Request) -> dict[str, bool]:
    indexer: Indexer | None = getattr(request.app.state, "indexer", None)
    linker: StoryLinker | None = getattr(request.app.state, "linker", None)
    if indexer is None or linker is None:
        return {"opensearch": False, "indexing": False, "story_links": False}
    return {
        "opensearch": await indexer.opensearch_answers(),
        "indexing": indexer.running and indexer.index_ready,
        "story_links": linker.running,
    }


def create_app(settings: IndexerSettings | None = None, registry: CollectorRegistry | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Its own registry: nothing of the consumer's (or a library's default collectors) mixes in.
    registry = registry or CollectorRegistry()
    configure_logging(settings.log_level)
    metrics = IndexerMetrics.create(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings.indexer
        topics = Topics.of(settings.kafka.topics)
        async with AsyncExitStack() as stack:
            # OpenSearch is not waited for here: the service starts, reports not-ready, and the loop writes
            # the index template as soon as OpenSearch answers. Kafka is: without it there is nothing to do.
            client = make_client(settings.opensearch)
            stack.push_async_callback(client.close)
            dlq = await open_producer(
                stack,
                settings.kafka,
                client_id="news-indexer-dlq",
                topics=[topics.dead_letters.name],
                timeout=config.startup_timeout,
            )
            consumer = await open_consumer(
                stack,
                settings.kafka,
                topics.analyzed.name,
                timeout=config.startup_timeout,
                group_id=config.group_id,
                client_id="news-indexer",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=config.batch_size,
                # A long OpenSearch outage holds a batch without polling; stay in the group meanwhile.
                max_poll_interval_ms=30 * 60 * 1000,
            )
            indexer = Indexer(
                consumer,
                dlq,
                client,
                topics,
                settings.opensearch,
                metrics,
                batch_size=config.batch_size,
                poll_timeout_ms=config.poll_timeout_ms,
                retry_max_seconds=config.retry_max_seconds,
            )
            # Story links (`news.stories` -> story_id): a second consumer with its own group and offsets, so a
            # link waiting for its article never holds the articles back.
            story_consumer = await open_consumer(
                stack,
                settings.kafka,
                topics.stories.name,
                timeout=config.startup_timeout,
                group_id=f"{config.group_id}-stories",
                client_id="news-indexer-stories",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=config.batch_size,
                max_poll_interval_ms=30 * 60 * 1000,
            )
            linker = StoryLinker(
                story_consumer,
                dlq,
                client,
                topics,
                settings.opensearch,
                metrics,
                batch_size=config.batch_size,
                poll_timeout_ms=config.poll_timeout_ms,
                retry_max_seconds=config.retry_max_seconds,
                wait_seconds=config.story_wait_seconds,
            )
            app.state.indexer, app.state.linker = indexer, linker
            _start(stack, indexer.run(depth=config.in_flight), "index")
            _start(stack, linker.run(), "story-links")
            _start(stack, indexer.watch_lag(config.lag_interval), "lag")
            yield

    app = FastAPI(title="News indexer", version="0.1.0", lifespan=lifespan)
    app.state.settings, app.state.registry, app.state.metrics = settings, registry, metrics
    install_error_handlers(app)
    app.include_router(ops_router(lambda r: r.app.state.registry, _readiness))
    return app


app = create_app()
