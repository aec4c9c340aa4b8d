"""The worker's context opens before the agents and closes after them, on mode's own service ordering."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import mode
import pytest
from prometheus_client import CollectorRegistry

from common.schemas import Analysis, RawArticle
from common.settings import KafkaSettings, TopicNames
from stream_worker.context import ContextService
from stream_worker.settings import WorkerConfig, WorkerSettings

pytestmark = pytest.mark.unit

SETTINGS = WorkerSettings(
    kafka=KafkaSettings(topics=TopicNames(prefix="unit.")), worker=WorkerConfig(stats_enabled=False)
)


class ClosableAnalyzer:
    """Refuses work once closed, like `HttpAnalyzer` over a closed httpx client."""

    def __init__(self) -> None:
        self.closed = False

    async def analyze_batch(self, articles: Sequence[RawArticle]) -> list[Analysis]:
        await asyncio.sleep(0.2)  # a batch in flight while the stop begins
        if self.closed:
            raise RuntimeError("analyser used after close")
        return [Analysis(sentiment="neutral", sentiment_score=0.0) for _ in articles]

    async def aclose(self) -> None:
        self.closed = True


class AgentLike(mode.Service):
    """Stops like a faust `Agent`: its stop waits for the actor's task, here a batch using the analyser."""

    def __init__(self, context: ContextService) -> None:
        super().__init__()
        self.context = context
        self.batch: asyncio.Task[list[Analysis]] | None = None

    async def on_started(self) -> None:
        article = RawArticle(url="https://example.com/a", title="a", published_at=datetime(2024, 1, 1, tzinfo=UTC))
        self.batch = asyncio.ensure_future(self.context.ctx.analyzer.analyze_batch([article]))

    async def on_stop(self) -> None:
        assert self.batch is not None
        await self.batch


class AppLike(mode.Service):
    """Like `faust.App`: more children come from `on_init_dependencies` when it starts."""

    def __init__(self, agent: AgentLike) -> None:
        super().__init__()
        self.agent = agent

    def on_init_dependencies(self) -> list[mode.Service]:
        return [self.agent]


async def test_the_context_outlives_an_in_flight_batch_on_stop() -> None:
    analyzer = ClosableAnalyzer()
    context = ContextService(SETTINGS, registry=CollectorRegistry(), analyzer=analyzer, admin=False)
    agent = AgentLike(context)
    app = AppLike(agent)
    app.add_dependency(context)  # what stream_worker.app does, before the app starts
    await app.start()
    assert context.is_open and agent.batch is not None
    await app.stop()
    assert agent.batch.result()  # the batch finished with an open analyser...
    assert analyzer.closed and not context.is_open  # ...which was closed afterwards


async def test_the_context_closes_what_it_opened_when_start_up_fails() -> None:
    analyzer = ClosableAnalyzer()
    broken = SETTINGS.model_copy(update={"kafka": KafkaSettings(bootstrap_servers="127.0.0.1:1")})
    context = ContextService(broken, registry=CollectorRegistry(), analyzer=analyzer, admin=True)
    with pytest.raises(Exception):  # noqa: B017,PT011  (aiokafka's connection error)
        await asyncio.wait_for(context.on_start(), 30)
    assert analyzer.closed and not context.is_open


def test_the_real_app_opens_the_context_first_and_closes_it_last() -> None:
    from stream_worker.app import app, context

    # mode starts children in this order and stops them in reverse; faust adds its own (producer,
    # consumer, agents, tables, web) after this one when the app starts.
    assert app._children[0] is context  # noqa: SLF001
    assert type(app)._stop_children is mode.Service._stop_children  # noqa: SLF001  (faust keeps mode's order)
