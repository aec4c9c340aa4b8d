"""The indexer as a real process on real Kafka and real OpenSearch: articles produced to `news.analyzed` are
searchable (English stems, Korean bigrams), a late older analysis never wins, a refused document is
dead-lettered with OpenSearch's reason, and a kill mid-stream loses nothing (offsets follow the bulk ack)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from opensearchpy import AsyncOpenSearch

from common.schemas import AnalyzedArticle, DeadLetter
from common.search_index import SEARCH_FIELDS, alias_name, version_of
from common.settings import KafkaSettings
from harness.infra import free_port
from harness.processes import ServiceProcess, python
from tests.integration.test_consumer import produce
from tests.integration.test_store import make_article

pytestmark = pytest.mark.integration

Spawn = Callable[..., ServiceProcess]


@pytest.fixture
def indexer_env(service_env: dict[str, str], opensearch_url: str, search_prefix: str, namespace: str) -> dict[str, str]:
    return {
        **service_env,
        "OPENSEARCH__URL": opensearch_url,
        "OPENSEARCH__INDEX_PREFIX": search_prefix,
        "INDEXER__GROUP_ID": f"{namespace}-indexer",
        "INDEXER__LAG_INTERVAL": "1",
        "INDEXER__RETRY_MAX_SECONDS": "1",
    }


@pytest.fixture
def spawn_indexer(tmp_path: Path, indexer_env: dict[str, str]) -> Iterator[Spawn]:
    """Start indexer processes (uvicorn indexer.main:app); each is stopped at teardown."""
    started: list[ServiceProcess] = []

    def _spawn(env: dict[str, str] | None = None, *, ready: bool = True) -> ServiceProcess:
        port = free_port()
        argv = python("-m", "uvicorn", "indexer.main:app", "--host", "127.0.0.1", "--port", str(port))
        proc = ServiceProcess(
            f"indexer-{port}",
            argv,
            {**indexer_env, **(env or {})},
            tmp_path,
            port=port,
            ready_url=f"http://127.0.0.1:{port}/readyz",
        )
        started.append(proc.start())
        if ready:
            proc.wait_ready()
        return proc

    yield _spawn
    for proc in reversed(started):
        proc.stop()


async def indexed_ids(client: AsyncOpenSearch, prefix: str) -> list[str]:
    """Every `_id` under the alias (a duplicate shows twice), after a refresh."""
    alias = alias_name(prefix)
    await client.indices.refresh(index=alias)
    answer = await client.search(index=alias, body={"size": 10_000, "_source": False, "query": {"match_all": {}}})
    return [hit["_id"] for hit in answer["hits"]["hits"]]


async def wait_indexed(client: AsyncOpenSearch, prefix: str, ids: Sequence[str], timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    found: list[str] = []
    while time.monotonic() < deadline:
        if await client.indices.exists(index=alias_name(prefix)):
            found = await indexed_ids(client, prefix)
            if set(ids) <= set(found):
                return found
        await asyncio.sleep(0.3)
    raise AssertionError(f"{len(set(ids) - set(found))} of {len(ids)} articles not indexed within {timeout}s")


async def search(client: AsyncOpenSearch, prefix: str, query: dict[str, Any]) -> list[str]:
    answer = await client.search(index=alias_name(prefix), body={"query": query, "size": 100})
    return [hit["_id"] for hit in answer["hits"]["hits"]]


def metric(proc: ServiceProcess, name: str) -> float:
    """Sum of every sample of `name` on the process's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{proc.port}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#") and line[len(name)] in " {"
    )


async def test_produced_articles_are_searchable_in_english_and_korean(
    spawn_indexer: Spawn, kafka_settings: KafkaSettings, opensearch: AsyncOpenSearch, search_prefix: str
) -> None:
    proc = spawn_indexer()
    ready = httpx.get(proc.ready_url, timeout=5).json()
    assert ready["checks"]["opensearch"] is True
    korean = make_article(1, language="ko", title="삼성전자가 새 반도체 공장을 짓는다")
    english = make_article(2, title="Markets rally", content="Investors were running for the exits on Monday.")
    others = [make_article(n) for n in range(3, 23)]
    articles = [korean, english, *others]
    await produce(kafka_settings, articles)
    found = await wait_indexed(opensearch, search_prefix, [a.id for a in articles])
    assert sorted(found) == sorted(a.id for a in articles)

    # Korean: the word with its particle is found by the word alone, through the bigram subfield only.
    assert await search(opensearch, search_prefix, {"match": {"title_cjk": "삼성전자"}}) == [korean.id]
    assert await search(opensearch, search_prefix, {"match": {"title": "삼성전자"}}) == []
    hits = await search(
        opensearch, search_prefix, {"simple_query_string": {"query": "삼성전자", "fields": SEARCH_FIELDS}}
    )
    assert hits[:1] == [korean.id]
    # English: "run" finds "running" through the stemmed subfield only.
    assert await search(opensearch, search_prefix, {"match": {"content.en": "run"}}) == [english.id]
    assert await search(opensearch, search_prefix, {"match": {"content": "run"}}) == []
    # Keyword facets: the source is normalised to lower case.
    assert len(await search(opensearch, search_prefix, {"term": {"source": "example news"}})) == len(articles)

    assert metric(proc, "news_indexer_documents_total") == len(articles)
    deadline = time.monotonic() + 15
    while metric(proc, "news_indexer_lag") != 0 or metric(proc, "news_indexer_last_commit_timestamp_seconds") == 0:
        assert time.monotonic() < deadline, "lag never reported as 0 after everything was indexed"
        await asyncio.sleep(0.5)
    assert metric(proc, "news_indexer_bulk_duration_seconds_count") >= 1


async def test_a_redelivered_older_analysis_never_replaces_a_newer_one(
    spawn_indexer: Spawn, kafka_settings: KafkaSettings, opensearch: AsyncOpenSearch, search_prefix: str
) -> None:
    at = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
    newer = make_article(7, title="Second analysis", analyzed=at + timedelta(seconds=5))
    older = make_article(7, title="First analysis", analyzed=at)
    assert newer.id == older.id
    proc = spawn_indexer()
    await produce(kafka_settings, [newer])
    await wait_indexed(opensearch, search_prefix, [newer.id])
    await produce(kafka_settings, [older, newer])  # a late older one, and the newer one re-delivered
    deadline = time.monotonic() + 30
    while metric(proc, 'news_indexer_documents_total{result="stale"}') < 2:
        assert time.monotonic() < deadline, "the late records were never handled"
        await asyncio.sleep(0.3)
    hits = await opensearch.search(index=alias_name(search_prefix), body={"version": True, "query": {"match_all": {}}})
    assert hits["hits"]["total"]["value"] == 1
    hit = hits["hits"]["hits"][0]
    assert hit["_source"]["title"] == "Second analysis"
    assert hit["_version"] == version_of(newer)

    even_newer = make_article(7, title="Third analysis", analyzed=at + timedelta(seconds=9))
    await produce(kafka_settings, [even_newer])
    deadline = time.monotonic() + 30
    while (await opensearch.get(index=hit["_index"], id=newer.id))["_source"]["title"] != "Third analysis":
        assert time.monotonic() < deadline, "a newer analysis did not replace the older one"
        await asyncio.sleep(0.3)


async def dead_letters(kafka: KafkaSettings, want: int, timeout: float = 30) -> list[DeadLetter]:
    consumer = AIOKafkaConsumer(
        kafka.topics.dlq_topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    letters: list[DeadLetter] = []
    try:
        deadline = time.monotonic() + timeout
        while len(letters) < want and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            letters += [DeadLetter.model_validate_json(m.value) for ms in batches.values() for m in ms]
    finally:
        await consumer.stop()
    return letters


async def test_a_document_opensearch_refuses_is_dead_lettered_with_the_reason(
    spawn_indexer: Spawn, kafka_settings: KafkaSettings, opensearch: AsyncOpenSearch, search_prefix: str
) -> None:
    # A month whose index was made by hand with a score field that takes no fractions: OpenSearch refuses
    # the article (mapper_parsing_exception, 400), which no retry can fix.
    refused_month = datetime(2019, 1, 15, tzinfo=UTC)
    await opensearch.indices.create(
        index=f"{search_prefix}news-articles-2019.01",
        body={"mappings": {"properties": {"sentiment_score": {"type": "integer", "coerce": False}}}},
    )
    bad = make_article(1, published=refused_month, score=0.5)
    good = [make_article(n) for n in range(2, 6)]
    proc = spawn_indexer()
    await produce(kafka_settings, [bad, *good, b"not json at all"])
    await wait_indexed(opensearch, search_prefix, [a.id for a in good])
    letters = await dead_letters(kafka_settings, want=2)
    by_stage = {letter.original_key: letter for letter in letters if letter.stage == "indexer"}
    assert set(by_stage) == {bad.id, "junk"}
    assert "mapper_parsing_exception" in by_stage[bad.id].error
    assert "(400)" in by_stage[bad.id].error
    assert AnalyzedArticle.model_validate_json(by_stage[bad.id].original).id == bad.id
    assert "not_json" in by_stage["junk"].error
    assert metric(proc, 'news_indexer_documents_total{result="failed"}') == 2
    assert bad.id not in await indexed_ids(opensearch, search_prefix)


async def test_killed_mid_stream_nothing_is_missing_after_restart(
    spawn_indexer: Spawn, kafka_settings: KafkaSettings, opensearch: AsyncOpenSearch, search_prefix: str
) -> None:
    articles = [make_article(n, content="A body of some length. " * 40) for n in range(600)]
    first = spawn_indexer({"INDEXER__BATCH_SIZE": "25"})
    await produce(kafka_settings, articles)
    deadline = time.monotonic() + 60
    while metric(first, 'news_indexer_documents_total{result="indexed"}') < 50:
        assert time.monotonic() < deadline, "the first indexer indexed nothing"
        await asyncio.sleep(0.05)
    first.kill()  # SIGKILL: no clean shutdown, whatever batch was in flight is lost with the process
    partial = await indexed_ids(opensearch, search_prefix)
    assert 0 < len(partial) < len(articles), "the kill did not land mid-stream"
    spawn_indexer()
    found = await wait_indexed(opensearch, search_prefix, [a.id for a in articles], timeout=90)
    assert len(found) == len(set(found)) == len(articles)


async def test_story_links_set_story_id_also_when_the_link_comes_before_its_article(
    spawn_indexer: Spawn, kafka_settings: KafkaSettings, opensearch: AsyncOpenSearch, search_prefix: str
) -> None:
    from tests.integration.test_consumer_stories import produce_updates, updates_for

    members = [make_article(n, title=f"Harbour strike day {n}") for n in range(1, 4)]
    late = make_article(9, title="Harbour strike ends")
    loner = make_article(10)
    updates = updates_for([*members, late])
    proc = spawn_indexer()
    # Three members are indexed first; the fourth's link arrives before its article (the indexer may lag).
    await produce(kafka_settings, [*members, loner])
    await wait_indexed(opensearch, search_prefix, [a.id for a in [*members, loner]])
    await produce_updates(kafka_settings, [*updates, b"not a story update"])
    await asyncio.sleep(2)
    await produce(kafka_settings, [late])
    story = members[0].id
    deadline = time.monotonic() + 60
    while True:
        linked = await search(opensearch, search_prefix, {"term": {"story_id": story}})
        if sorted(linked) == sorted(a.id for a in [*members, late]):
            break
        assert time.monotonic() < deadline, f"only {len(linked)} of 4 articles linked to the story"
        await asyncio.sleep(0.5)
    assert await search(opensearch, search_prefix, {"term": {"story_id": loner.id}}) == []
    # A re-delivered copy of an analysis stays stale (the update bumped the version) and keeps the link.
    await produce(kafka_settings, [members[1]])
    deadline = time.monotonic() + 30
    while metric(proc, 'news_indexer_documents_total{result="stale"}') < 1:
        assert time.monotonic() < deadline, "the re-delivered article was never answered as stale"
        await asyncio.sleep(0.3)
    assert members[1].id in await search(opensearch, search_prefix, {"term": {"story_id": story}})
    assert metric(proc, 'news_indexer_documents_total{result="story_linked"}') >= 4
    letters = await dead_letters(kafka_settings, want=1)
    assert [letter.stage for letter in letters] == ["indexer-stories"]
    assert "not_json" in letters[0].error


async def test_reindex_rebuilds_articles_and_story_links_from_kafka(
    kafka_settings: KafkaSettings, opensearch: AsyncOpenSearch, opensearch_url: str, search_prefix: str, namespace: str
) -> None:
    from common.settings import OpenSearchSettings
    from indexer.reindex import reindex
    from indexer.settings import IndexerConfig, IndexerSettings
    from tests.integration.test_consumer_stories import produce_updates, updates_for

    members = [make_article(n, title=f"Budget vote {n}") for n in range(1, 4)]
    others = [make_article(n) for n in range(4, 40)]
    await produce(kafka_settings, [*members, *others])
    await produce_updates(kafka_settings, updates_for(members))
    settings = IndexerSettings(
        kafka=kafka_settings,
        opensearch=OpenSearchSettings(url=opensearch_url, index_prefix=search_prefix),
        indexer=IndexerConfig(batch_size=10, in_flight=2),
    )
    summary = await reindex(settings, group=f"{namespace}-reindex", batch_size=10)
    assert (summary["records"], summary["indexed"], summary["story_link_records"]) == (39, 39, 3)
    assert sorted(await indexed_ids(opensearch, search_prefix)) == sorted(a.id for a in [*members, *others])
    linked = await search(opensearch, search_prefix, {"term": {"story_id": members[0].id}})
    assert sorted(linked) == sorted(a.id for a in members)
    # Again into the same index: nothing changes (equal versions are stale), nothing duplicates.
    again = await reindex(settings, group=f"{namespace}-reindex-2", batch_size=10)
    assert (again["indexed"], again["stale"]) == (0, 39)
    assert len(await indexed_ids(opensearch, search_prefix)) == 39


async def test_ensure_index_adds_the_cjk_fields_to_indices_made_before_them(
    opensearch: AsyncOpenSearch, opensearch_url: str, search_prefix: str
) -> None:
    import copy

    from common.search_index import MAPPINGS, document, ensure_index, index_name
    from common.settings import OpenSearchSettings

    # A month made by the previous template: `.cjk` multi-fields, no `_cjk` fields, strict.
    old = copy.deepcopy(MAPPINGS)
    for name in ("title_cjk", "description_cjk", "content_cjk"):
        del old["properties"][name]
    for name in ("title", "description", "content"):
        old["properties"][name] = {
            "type": "text",
            "fields": {"en": {"type": "text", "analyzer": "english"}, "cjk": {"type": "text", "analyzer": "cjk"}},
        }
    korean = make_article(1, language="ko", title="삼성전자가 새 공장을 짓는다")
    month = index_name(search_prefix, korean.published_at)
    await opensearch.indices.create(index=month, body={"mappings": old})
    settings = OpenSearchSettings(url=opensearch_url, index_prefix=search_prefix)
    await ensure_index(opensearch, settings)
    await ensure_index(opensearch, settings)  # again: nothing to add, no conflict
    await opensearch.index(index=month, id=korean.id, body=document(korean), refresh=True)
    answer = await opensearch.search(index=month, body={"query": {"match": {"title_cjk": "삼성전자"}}})
    assert [hit["_id"] for hit in answer["hits"]["hits"]] == [korean.id]
