"""The Kafka side of the producer: `news.raw` keyed by article id, dead letters to `news.dlq`."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer

from common.kafka import send_dead_letter
from common.schemas import DeadLetter, RawArticle
from common.settings import TopicNames

__all__ = ["KafkaSink"]


class KafkaSink:
    def __init__(self, producer: AIOKafkaProducer, topics: TopicNames) -> None:
        self._producer = producer
        self._topics = topics

    async def send(self, article: RawArticle) -> asyncio.Future[Any]:
        # send() returns once the record is in the batch buffer; the future resolves on the broker's ack.
        future: asyncio.Future[Any] = await self._producer.send(
            self._topics.raw_topic, article.model_dump_json().encode("utf-8"), key=article.id.encode("ascii")
        )
        return future

    async def dead_letter(self, letter: DeadLetter) -> None:
        await send_dead_letter(self._producer, self._topics.dlq_topic, letter)
