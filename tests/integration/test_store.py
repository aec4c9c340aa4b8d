"""ArticleStore against a real Redis: idempotency, versioning, secondary indexes, paging, expiry, the event log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from common.schemas import AnalyzedArticle
from common.settings import RedisSettings
from common.store import LEAD_MAX, ArticleFilters, ArticleStore, InvalidCursor, Order, PutResult, list_view

pytestmark = pytest.mark.integration

BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_article(
    n: int,
    *,
    sentiment: str = "neutral",
    score: float = 0.0,
    source: str = "Example News",
    category: str = "world",
    language: str = "en",
    entities: tuple[str, ...] = (),
    importance: float = 5.0,
    published: datetime | None = None,
    analyzed: datetime | None = None,
    title: str | None = None,
    content: str | None = None,
) -> AnalyzedArticle:
    """Article number `n` (its URL, so its id, depends on n only): published n minutes after BASE by default."""
    return AnalyzedArticle.model_validate(
        {
            "url": f"https://example.com/story/{n}",
            "title": title or f"Story {n}",
            "description": f"About story {n}",
            "content": content,
            "source": source,
            "published_at": (published or BASE + timedelta(minutes=n)).isoformat(),
            "analyzed_at": (analyzed or BASE + timedelta(hours=1)).isoformat(),
            "analysis": {
                "sentiment": sentiment,
                "sentiment_score": score,
                "keywords": ["story"],
                "entities": [{"text": e, "type": "ORG"} for e in entities],
                "category": category,
                "language": language,
                "importance_score": importance,
            },
        },
        strict=False,
    )


@pytest.fixture
def store(redis: Redis, redis_settings: RedisSettings) -> ArticleStore:
    return ArticleStore(redis, prefix=redis_settings.key_prefix, ttl_seconds=3600, stream_maxlen=50)


async def test_same_message_three_times_is_stored_and_announced_once(store: ArticleStore) -> None:
    article = make_article(1)
    results = [await store.put_with_cursor(article) for _ in range(3)]
    assert [r for r, _ in results] == [PutResult.CREATED, PutResult.DUPLICATE, PutResult.DUPLICATE]
    assert results[0][1] is not None and results[1][1] is None
    assert await store.count() == 1
    assert [a.id for a in await store.recent(10)] == [article.id]
    _, events = await store.events_after("0-0", count=100)
    assert [e.article.id for e in events] == [article.id]


async def test_older_analysis_after_newer_changes_nothing(store: ArticleStore) -> None:
    old = make_article(1, sentiment="negative", analyzed=BASE)
    new = make_article(1, sentiment="positive", analyzed=BASE + timedelta(minutes=5))
    assert await store.put(new) is PutResult.CREATED
    assert await store.put(old) is PutResult.DUPLICATE
    stored = await store.get(new.id)
    assert stored is not None and stored.analysis.sentiment == "positive"
    assert (await store.query("recent", 10, filters=ArticleFilters(sentiment="negative"))).items == []


async def test_reanalysis_with_the_same_result_is_a_duplicate(store: ArticleStore) -> None:
    # What a worker restarted after a crash produces: the same analysis, later, with another latency.
    first = make_article(1, sentiment="negative", analyzed=BASE)
    again = AnalyzedArticle.model_validate(
        {
            **first.model_dump(),
            "analyzed_at": BASE + timedelta(seconds=5),
            "analysis": {**first.analysis.model_dump(), "latency_ms": 123.0},
        },
        strict=False,
    )
    assert await store.put(first) is PutResult.CREATED
    assert await store.put(again) is PutResult.DUPLICATE
    _, events = await store.events_after("0-0", count=100)
    assert len(events) == 1


async def test_newer_analysis_replaces_and_moves_between_indexes(store: ArticleStore) -> None:
    old = make_article(1, sentiment="negative", entities=("Acme",), analyzed=BASE)
    new = make_article(1, sentiment="positive", entities=("Globex",), analyzed=BASE + timedelta(minutes=5))
    assert await store.put(old) is PutResult.CREATED
    assert await store.put(new) is PutResult.REPLACED
    assert await store.count() == 1
    neg = await store.query("recent", 10, filters=ArticleFilters(sentiment="negative"))
    acme = await store.query("recent", 10, filters=ArticleFilters(entity="acme"))
    pos = await store.query("recent", 10, filters=ArticleFilters(sentiment="positive", entity="GLOBEX"))
    assert neg.items == [] and acme.items == []
    assert [a.analysis.sentiment for a in pos.items] == ["positive"]
    # The log has both writes; only the current one is delivered.
    _, events = await store.events_after("0-0", count=100)
    assert [e.article.analysis.sentiment for e in events] == ["positive"]


async def test_filters_combine_and_are_case_insensitive(store: ArticleStore) -> None:
    articles = [
        make_article(
            i,
            sentiment=("positive", "negative")[i % 2],
            source=("BBC News", "Reuters")[i % 3 == 0],
            category=("world", "business")[i % 2],
            language=("en", "ko")[i % 5 == 0],
            entities=("Seoul",) if i % 4 == 0 else (),
        )
        for i in range(1, 31)
    ]
    for a in articles:
        await store.put(a)

    async def ids(**filters: Any) -> list[str]:
        return [a.id for a in (await store.query("recent", 200, filters=ArticleFilters(**filters))).items]

    def expected(pred: Any) -> list[str]:
        return [a.id for a in sorted(articles, key=lambda a: a.published_at, reverse=True) if pred(a)]

    assert await ids(sentiment="positive") == expected(lambda a: a.analysis.sentiment == "positive")
    assert await ids(source="reuters") == expected(lambda a: a.source == "Reuters")
    assert await ids(source=" BBC   news ") == expected(lambda a: a.source == "BBC News")
    assert await ids(language="KO", category="world") == expected(
        lambda a: a.analysis.language == "ko" and a.analysis.category == "world"
    )
    assert await ids(entity="seoul", sentiment="negative") == expected(
        lambda a: any(e.text == "Seoul" for e in a.analysis.entities) and a.analysis.sentiment == "negative"
    )
    assert await ids(entity="nowhere") == []


async def test_cursor_paging_is_complete_without_repeats(store: ArticleStore) -> None:
    # Ties on purpose: five articles share each importance and each publication minute.
    articles = [make_article(i, importance=float(i % 3), published=BASE + timedelta(minutes=i // 5)) for i in range(23)]
    for a in articles:
        await store.put(a)
    orders: tuple[Order, ...] = ("recent", "top")
    for order in orders:
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = await store.query(order, 5, cursor=cursor)
            seen += [a.id for a in page.items]
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        assert pages == 5
        assert sorted(seen) == sorted(a.id for a in articles) and len(seen) == len(set(seen))
        by_id = {a.id: a for a in articles}
        values = [
            by_id[i].published_at.timestamp() if order == "recent" else by_id[i].analysis.importance_score for i in seen
        ]
        assert values == sorted(values, reverse=True)


async def test_filtered_top_with_since_pages(store: ArticleStore) -> None:
    articles = [make_article(i, importance=float(i % 10), sentiment=("positive", "negative")[i % 2]) for i in range(40)]
    for a in articles:
        await store.put(a)
    since = BASE + timedelta(minutes=10)
    want = sorted(
        (a for a in articles if a.published_at >= since and a.analysis.sentiment == "positive"),
        key=lambda a: (a.analysis.importance_score, a.id),
        reverse=True,
    )
    got: list[AnalyzedArticle] = []
    cursor = None
    while True:
        page = await store.query("top", 4, filters=ArticleFilters(sentiment="positive"), since=since, cursor=cursor)
        got += page.items
        if (cursor := page.next_cursor) is None:
            break
    assert [a.id for a in got] == [a.id for a in want]
    recent = await store.query("recent", 200, since=since)
    assert {a.id for a in recent.items} == {a.id for a in articles if a.published_at >= since}


async def test_bad_cursors_are_refused(store: ArticleStore) -> None:
    for a in (make_article(1), make_article(2)):
        await store.put(a)
    page = await store.query("recent", 1)
    assert page.next_cursor is not None
    with pytest.raises(InvalidCursor):
        await store.query("top", 1, cursor=page.next_cursor)  # a recent cursor on top
    for bad in ("", "x", "bm9wZQ", "cnxuYW58" + "a" * 10):
        with pytest.raises(InvalidCursor):
            await store.query("recent", 1, cursor=bad)


async def test_expired_articles_never_returned_and_swept_from_every_index(redis: Redis, namespace: str) -> None:
    store = ArticleStore(redis, prefix=f"{namespace}:", ttl_seconds=1)
    short = make_article(1, sentiment="negative", entities=("Acme",))
    await store.put(short)
    long_store = ArticleStore(redis, prefix=f"{namespace}:", ttl_seconds=3600)
    kept = make_article(2, sentiment="negative", entities=("Acme",))
    await long_store.put(kept)
    await asyncio.sleep(2.2)  # the record of `short` has expired; its index entries are still there
    assert await store.get(short.id) is None
    orders: tuple[Order, ...] = ("recent", "top")
    for filters in (ArticleFilters(), ArticleFilters(sentiment="negative"), ArticleFilters(entity="acme")):
        for order in orders:
            page = await store.query(order, 10, filters=filters)
            assert [a.id for a in page.items] == [kept.id]
    # The read found the stale id and swept it: no index still names it.
    keys = [k async for k in redis.scan_iter(match=f"{namespace}:idx:*")]
    for key in keys:
        if (await redis.type(key)) == b"zset":
            assert await redis.zscore(key, short.id) is None, key
    assert await redis.exists(f"{namespace}:ix:{short.id}") == 0
    assert await store.count() == 1
    _, events = await store.events_after("0-0", count=100)
    assert [e.article.id for e in events] == [kept.id]


async def test_sweep_alone_cleans_expired(redis: Redis, namespace: str) -> None:
    store = ArticleStore(redis, prefix=f"{namespace}:", ttl_seconds=1)
    for i in range(5):
        await store.put(make_article(i, source="Gone Daily"))
    await asyncio.sleep(2.2)
    assert await store.sweep() == 5
    assert await redis.zcard(store.index_key("source", "Gone Daily")) == 0
    assert await store.count() == 0


async def test_event_log_is_bounded_and_knows_what_it_cannot_resume(redis: Redis, namespace: str) -> None:
    store = ArticleStore(redis, prefix=f"{namespace}:", stream_maxlen=10)
    first = await store.last_cursor()
    assert first == "0-0" and await store.can_resume(first)
    cursors: list[str] = []
    for i in range(25):
        _, cursor = await store.put_with_cursor(make_article(i))
        assert cursor is not None
        cursors.append(cursor)
    assert await redis.xlen(store.stream_key) == 10
    assert not await store.can_resume(cursors[5])  # events after it were trimmed
    assert await store.can_resume(cursors[14])
    _, events = await store.events_after(cursors[14], count=100)
    assert [e.cursor for e in events] == cursors[15:]
    assert not await store.can_resume("99999999999999-0")  # from the future (another Redis)


# --- list views and one-round-trip pages (issue 18) -----------------------------------------------


async def test_lean_and_full_pages_send_what_is_stored(store: ArticleStore) -> None:
    long_body = "word " * 200
    with_description = make_article(1, content=long_body)
    body_only = make_article(2, content=long_body).model_copy(update={"description": None})
    bare = make_article(3).model_copy(update={"description": None})
    articles = [with_description, body_only, bare]
    for a in articles:
        await store.put(a)
    full = orjson.loads((await store.page_json("recent", 10, view="full")).body)
    # `view="full"` is the stored records themselves, byte for byte (in order, newest first).
    assert full == [orjson.loads(a.model_dump_json()) for a in reversed(articles)]
    lean_page = await store.page_json("recent", 10)
    assert lean_page.count == 3 and lean_page.next_cursor is None
    lean = {item["id"]: item for item in orjson.loads(lean_page.body)}
    for item in lean.values():
        assert "content" not in item and "description" not in item and "embedding" not in item["analysis"]
    assert lean[with_description.id]["lead"] == "About story 1"
    lead = lean[body_only.id]["lead"]
    assert lead.endswith("\u2026") and len(lead) <= LEAD_MAX and long_body.startswith(lead[:-1])
    assert lean[bare.id]["lead"] is None
    # Everything else is the stored record's.
    stored = orjson.loads(with_description.model_dump_json())
    del stored["analysis"]["embedding"]
    assert {k: v for k, v in stored.items() if k not in ("description", "content")} == {
        k: v for k, v in lean[with_description.id].items() if k != "lead"
    }


async def test_records_stored_before_list_views_are_projected_on_read(
    redis: Redis, redis_settings: RedisSettings, store: ArticleStore
) -> None:
    articles = [make_article(i, content="Body text.") for i in range(4)]
    for a in articles:
        await store.put(a)
    before = (await store.page_json("recent", 10)).body
    # What an older consumer wrote: the record without its list view.
    assert await redis.hdel(f"{redis_settings.key_prefix}article:{articles[1].id}", "l") == 1
    after = await store.page_json("recent", 10)
    assert after.body == before and after.count == 4
    assert [a["id"] for a in orjson.loads(after.body)] == [a.id for a in reversed(articles)]
    # The list view written at store time and the projection at read time are the same bytes.
    assert list_view(articles[1].model_dump_json()) in before


async def test_json_pages_page_like_the_model_pages(store: ArticleStore) -> None:
    articles = [make_article(i, importance=float(i % 3), published=BASE + timedelta(minutes=i // 4)) for i in range(17)]
    for a in articles:
        await store.put(a)
    orders: tuple[Order, ...] = ("recent", "top")
    for order in orders:
        json_ids: list[str] = []
        model_ids: list[str] = []
        cursor = model_cursor = None
        while True:
            page = await store.page_json(order, 5, cursor=cursor)
            models = await store.query(order, 5, cursor=model_cursor)
            json_ids += [a["id"] for a in orjson.loads(page.body)]
            model_ids += [a.id for a in models.items]
            assert page.next_cursor == models.next_cursor
            cursor = model_cursor = page.next_cursor
            if cursor is None:
                break
        assert json_ids == model_ids and sorted(json_ids) == sorted(a.id for a in articles)
