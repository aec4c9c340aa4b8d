"""The message contract under hostile input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from common.schemas import (
    CONTENT_MAX,
    TEXT_ONLY,
    TITLE_MAX,
    Analysis,
    AnalyzedArticle,
    ArticleIn,
    DeadLetter,
    RawArticle,
    unencodable,
)
from common.text import article_id, canonical_url, clean_text

pytestmark = pytest.mark.unit


def make(**overrides: object) -> RawArticle:
    data: dict[str, object] = {
        "url": "https://news.example.com/a/1",
        "title": "Plain title",
        "published_at": "2024-11-26T05:00:00Z",
    }
    data.update(overrides)
    return RawArticle.model_validate(data)


def test_markup_and_script_become_text() -> None:
    a = make(
        title='<h1>Big <b>news</b></h1><script>alert("x")</script> &amp; more &lt;3',
        description="<p>one</p><style>p{}</style><p>two</p>",
    )
    assert a.title == "Big news & more <3"
    assert "alert" not in a.title and "<" not in a.title.replace("<3", "")
    assert a.description == "onetwo" or a.description == "one two"


def test_title_that_is_only_markup_is_rejected_with_reason() -> None:
    with pytest.raises(ValidationError) as info:
        make(title="<script>alert(1)</script>")
    assert info.value.errors()[0]["loc"] == ("title",)


def test_whitespace_nfc_and_invisible_characters() -> None:
    decomposed = "Cafe\u0301"  # e + combining acute
    a = make(title=f"  {decomposed}\u200b \t\n  news\u202e  ")
    assert a.title == "Café news"


def test_korean_text_survives_untouched() -> None:
    title = "삼성전자, 3분기 영업이익 10조 돌파… 반도체 회복세"
    a = make(title=title, description="서울=연합뉴스 기자")
    assert a.title == title
    assert a.description == "서울=연합뉴스 기자"


def test_five_megabyte_body_is_cut_to_the_limit() -> None:
    body = ("word " * 1_100_000)[:5_500_000]
    a = make(content=body, title="t" * 10_000)
    assert a.content is not None and len(a.content) <= CONTENT_MAX
    assert a.content.endswith("…")
    assert len(a.title) <= TITLE_MAX


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-11-26T05:00:00Z", datetime(2024, 11, 26, 5, tzinfo=UTC)),
        ("2024-11-26T14:00:00+09:00", datetime(2024, 11, 26, 5, tzinfo=UTC)),
        ("2024-11-26T05:00:00", datetime(2024, 11, 26, 5, tzinfo=UTC)),  # naive: taken as UTC
        ("Tue, 26 Nov 2024 05:00:00 GMT", datetime(2024, 11, 26, 5, tzinfo=UTC)),
        ("2017/2/7", datetime(2017, 2, 7, tzinfo=UTC)),
        (1732597200, datetime(2024, 11, 26, 5, tzinfo=UTC)),
    ],
)
def test_dates_become_aware_utc(raw: object, expected: datetime) -> None:
    a = make(published_at=raw)
    assert a.published_at == expected
    assert a.published_at.tzinfo is not None and a.published_at.utcoffset() == timedelta(0)


def test_aware_datetime_object_is_converted() -> None:
    kst = timezone(timedelta(hours=9))
    a = make(published_at=datetime(2024, 1, 1, 9, tzinfo=kst))
    assert a.published_at == datetime(2024, 1, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["not a date", "    ", "2024-13-45", "1800-01-01T00:00:00Z", None, True])
def test_invalid_dates_are_rejected(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        make(published_at=bad)
    assert info.value.errors()[0]["loc"] == ("published_at",)


@pytest.mark.parametrize("missing", ["url", "title", "published_at"])
def test_missing_required_fields(missing: str) -> None:
    data = {"url": "https://x.example/a", "title": "t", "published_at": "2024-01-01"}
    del data[missing]
    with pytest.raises(ValidationError) as info:
        RawArticle.model_validate(data)
    assert any(e["loc"] == (missing,) and e["type"] == "missing" for e in info.value.errors())


@pytest.mark.parametrize("url", ["ftp://example.com/a", "javascript:alert(1)", "/relative/path", "https://"])
def test_non_http_urls_are_rejected(url: str) -> None:
    with pytest.raises(ValidationError):
        make(url=url)


def test_tracking_parameters_and_fragment_do_not_change_identity() -> None:
    plain = make(url="https://News.Example.com/story?id=7&page=2")
    tracked = make(url="HTTPS://news.example.com:443/story?utm_source=tw&page=2&fbclid=abc&id=7#comments")
    assert tracked.url == plain.url == "https://news.example.com/story?id=7&page=2"
    assert tracked.id == plain.id == article_id("https://news.example.com/story?page=2&id=7")
    assert len(plain.id) == 32


def test_meaningful_query_and_port_do_change_identity() -> None:
    assert make(url="https://e.com/s?id=1").id != make(url="https://e.com/s?id=2").id
    assert canonical_url("http://e.com:8080/x") == "http://e.com:8080/x"


def test_supplied_id_is_not_trusted() -> None:
    a = make(id="attacker-chosen")
    assert a.id == article_id(a.url)


def test_models_are_frozen_and_strict() -> None:
    a = make()
    with pytest.raises(ValidationError):
        a.title = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Analysis(sentiment="positive", sentiment_score="0.5")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Analysis(sentiment="happy", sentiment_score=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Analysis(sentiment="positive", sentiment_score=1.5)
    with pytest.raises(ValidationError):
        Analysis(sentiment="positive", sentiment_score=0.1, importance_score=11)


def test_round_trip_through_json() -> None:
    raw = make(title="서울 <b>증시</b> 상승", content="본문")
    analysis = Analysis(
        sentiment="positive",
        sentiment_score=0.4,
        keywords=["증시", "증시", "서울"],
        importance_score=6.5,
        language="ko",
    )
    analyzed = AnalyzedArticle.from_raw(raw, analysis)
    again = AnalyzedArticle.model_validate_json(analyzed.model_dump_json())
    assert again == analyzed
    assert again.analysis.keywords == ["증시", "서울"]
    assert again.schema_version == 1


def test_dead_letter_keeps_original_bytes() -> None:
    for payload in (b"\xff\xfe not utf-8", b"plain text", b""):
        letter = DeadLetter.wrap(payload, stage="test", error="bad", key=b"k")
        assert DeadLetter.model_validate_json(letter.model_dump_json()).original_bytes() == payload


def test_escaped_markup_is_text_and_survives_every_later_validation() -> None:
    raw = make(title="How to use the &lt;canvas&gt; element &amp; &lt;script&gt;")
    assert raw.title == "How to use the <canvas> element & <script>"
    # the worker re-reads news.raw with TEXT_ONLY, the consumer and the store read AnalyzedArticle
    again = RawArticle.model_validate_json(raw.model_dump_json(), context=TEXT_ONLY)
    assert again.title == raw.title
    analyzed = AnalyzedArticle.from_raw(again, Analysis(sentiment="neutral", sentiment_score=0.0))
    stored = AnalyzedArticle.model_validate_json(analyzed.model_dump_json())
    assert stored.title == raw.title


def test_analyzed_articles_are_limited_but_never_parsed_as_markup() -> None:
    analysis = Analysis(sentiment="neutral", sentiment_score=0.0)
    article = AnalyzedArticle.model_validate(
        {
            "url": "https://e.com/x",
            "title": "<b>bold</b>\u200b  " + "x" * 1000,
            "published_at": "2024-01-01",
            "analysis": analysis.model_dump(),
        }
    )
    assert article.title.startswith("<b>bold</b> x")
    assert len(article.title) <= TITLE_MAX


def test_clean_text_is_idempotent_after_the_markup_pass() -> None:
    for value in ["a &lt;b&gt; c", "<p>x</p>&amp;amp;", "  한국어\u200b  뉴스 ", "Cafe\u0301 &#x3C;3"]:
        once = clean_text(value)
        assert clean_text(once, markup=False) == once


def test_canonical_entity_is_found_by_surface_text_and_canonical_name() -> None:
    from common.schemas import Entity
    from common.store import ArticleFilters

    trump = Entity(text="Trump", type="PERSON", id="person:donald_trump", name="Donald Trump")
    old = Entity(text="Seoul", type="GPE")  # a record written before canonical ids
    assert (trump.key, trump.display) == ("person:donald_trump", "Donald Trump")
    assert (old.key, old.display) == ("gpe:seoul", "Seoul")
    raw = RawArticle(url="https://e.example/t", title="Trump speaks", published_at=datetime(2024, 1, 1, tzinfo=UTC))
    article = AnalyzedArticle.from_raw(raw, Analysis(sentiment="neutral", sentiment_score=0.0, entities=[trump, old]))
    for wanted in ("Trump", "donald trump", "SEOUL"):
        assert ArticleFilters(entity=wanted).matches(article)
    assert not ArticleFilters(entity="Donald").matches(article)


def test_newsapi_source_object_is_read_as_its_name() -> None:
    base = {"url": "https://e.example/n", "title": "T", "published_at": "2024-11-26T05:00:00Z"}
    assert RawArticle.model_validate({**base, "source": {"id": "bbc-news", "name": "BBC News"}}).source == "BBC News"
    assert RawArticle.model_validate({**base, "source": {"id": "reuters", "name": None}}).source == "reuters"
    assert RawArticle.model_validate({**base, "source": {"id": None, "name": None}}).source == "unknown"


def test_unpaired_surrogates_are_refused_with_the_field_named() -> None:
    assert unencodable("fine \U0001f680") is None
    assert unencodable("bad \udb82") == "text is not valid Unicode: unpaired surrogate U+DB82 at character 4"
    for field in ("title", "description", "url", "source"):
        with pytest.raises(ValidationError) as info:
            make(**{field: "https://e.example/\udb82" if field == "url" else "x \udb82"})
        assert f"{field}: text is not valid Unicode" in str(info.value)


NEWSAPI = {
    "source": {"id": "bbc-news", "name": "BBC News"},
    "author": None,
    "title": "Acme wins contract",
    "description": "The deal is worth 100 million pounds.",
    "url": "https://www.bbc.co.uk/news/business-1",
    "urlToImage": None,
    "publishedAt": "2024-11-26T05:00:00Z",
    "content": "The company said on Monday... [+2829 chars]",
}


def test_article_in_takes_newsapi_objects_as_they_come() -> None:
    raw = ArticleIn.model_validate(NEWSAPI).to_raw()
    assert (raw.source, raw.published_at, raw.content) == (
        "BBC News",
        datetime(2024, 11, 26, 5, tzinfo=UTC),
        "The company said on Monday...",
    )
    assert ArticleIn.model_validate({**NEWSAPI, "source": {"id": "bbc", "name": " "}}).to_raw().source == "bbc"
    assert ArticleIn.model_validate({**NEWSAPI, "source": ""}).to_raw().source == "unknown"
    undated = ArticleIn.model_validate({"url": "https://e.example/u", "title": "T"}).to_raw()
    assert datetime.now(UTC) - undated.published_at < timedelta(seconds=5)
    both = ArticleIn.model_validate({**NEWSAPI, "published_at": 1_700_000_000}).to_raw()
    assert both.published_at == datetime.fromtimestamp(1_700_000_000, UTC)  # the suite's own name wins


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("url", "ftp://e.example/x"),
        ("url", "https://user@e.example/x"),  # userinfo: not what the pattern (and so the document) allows
        ("url", "https://e.example:99999/x"),
        ("published_at", "2023-02-29"),
        ("published_at", "Tue, 26 Nov 2024 05:00:00 GMT"),  # RFC 2822 is read from feeds, not over HTTP
        ("published_at", 1e12),  # milliseconds, not seconds
        ("title", " \u200b\u3000 "),
        ("title", "t" * 2_000_001),
    ],
)
def test_article_in_refuses_what_its_schema_refuses(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        ArticleIn.model_validate({"url": "https://e.example/x", "title": "T", field: value})
    assert info.value.errors()[0]["loc"][0] == field


def test_article_in_schema_is_its_validation() -> None:
    """The patterns in the JSON schema (the OpenAPI document) are the ones pydantic enforces."""
    schema = ArticleIn.model_json_schema()
    props = schema["properties"]
    assert props["url"]["pattern"] and props["title"]["pattern"] and props["title"]["maxLength"] == 2_000_000
    assert schema["required"] == ["url", "title"] and schema["examples"][0]["source"]["name"] == "BBC News"
    dates = [s for s in props["published_at"]["anyOf"] if s.get("type") == "string"]
    assert dates and dates[0]["pattern"].startswith("^")


def test_every_raw_article_passes_as_article_in() -> None:
    """The stream worker sends its RawArticles to the inference service's `/v1/analyze/batch` as they are: the
    HTTP contract must admit whatever a RawArticle holds (canonical URL, UTC dates at either end of the range)."""
    for url, published in [
        ("https://my_host.example.org/a path/é?q=é&b#f", "1990-01-01T00:00:00Z"),
        ("http://e.example:8080/?a", "2100-12-31T23:59:59.999999+00:00"),
    ]:
        raw = make(url=url, published_at=published, source="S", content="c", author="A")
        again = ArticleIn.model_validate(json.loads(raw.model_dump_json())).to_raw()
        assert (again.id, again.published_at, again.title) == (raw.id, raw.published_at, raw.title)
