"""The Kafka side of the producer: `news.raw` keyed by article id, dead letters to `news.dlq`, and the
look-up that tells whether an interrupted publish had already reached the topic."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from common.errors import BrokerError
from common.kafka import send_dead_letter
from common.schemas import DeadLetter, RawArticle
from common.settings import KafkaSettings
from common.topics import Topics

__all__ = ["KafkaSink"]


class KafkaSink:
    def __init__(self, producer: AIOKafkaProducer, settings: KafkaSettings, *, scan_timeout: float = 60.0) -> None:
        self._producer = producer
        self._settings = settings
        self._topics = Topics.of(settings.topics)
        self._scan_timeout = scan_timeout

    async def send(self, article: RawArticle) -> asyncio.Future[Any]:
        # send() returns once the record is in the batch buffer; the future resolves on the broker's ack.
        record = self._topics.raw.encode(article)
        future: asyncio.Future[Any] = await self._producer.send(self._topics.raw.name, record.value, key=record.key)
        return future

    async def dead_letter(self, letter: DeadLetter) -> None:
        await send_dead_letter(self._producer, self._topics.dead_letters, letter)

    async def find_produced(self, ids: Sequence[str], since_ms: int) -> set[str]:
        """Read `news.raw` from `since_ms` (record timestamps) to its end and return the ids seen as keys.

        Only used for claims an interrupted publish left behind, so the range read is the records
        written since that publish began, typically seconds to minutes of traffic.
        """
        wanted = {i.encode("ascii") for i in ids}
        found: set[str] = set()
        topic = self._topics.raw.name
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            client_id="news-producer-recovery",
        )
        try:
            await consumer.start()
            partitions = [TopicPartition(topic, p) for p in sorted(await self._producer.partitions_for(topic))]
            if not partitions:
                return found
            consumer.assign(partitions)
            starts = await consumer.offsets_for_times(dict.fromkeys(partitions, max(0, since_ms)))
            ends = await consumer.end_offsets(partitions)
            remaining: dict[TopicPartition, int] = {}
            for tp in partitions:
                start = starts[tp].offset if starts.get(tp) is not None else ends[tp]
                if start < ends[tp]:
                    consumer.seek(tp, start)
                    remaining[tp] = ends[tp]
                else:
                    consumer.pause(tp)
            async with asyncio.timeout(self._scan_timeout):
                while remaining and len(found) < len(wanted):
                    batch = await consumer.getmany(timeout_ms=500, max_records=5_000)
                    for records in batch.values():
                        found.update(r.key.decode("ascii") for r in records if r.key in wanted)
                    for tp in list(remaining):
                        if await consumer.position(tp) >= remaining[tp]:
                            consumer.pause(tp)
                            del remaining[tp]
        except (KafkaError, TimeoutError, OSError) as exc:
            raise BrokerError(f"could not check Kafka for the records of an interrupted publish: {exc}") from exc
        finally:
            await consumer.stop()
        return found
