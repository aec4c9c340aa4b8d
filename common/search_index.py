"""The search index's one definition: names, mappings, the document written per article, the fields searched.

The indexer writes with it and the consumer's search API reads with it (issue 16), so both agree on one shape:

- alias `{prefix}news-articles` over monthly indices `{prefix}news-articles-YYYY.MM` (by `published_at`, UTC):
  searches go to the alias, writes go to the article's month, and an old month can be dropped or moved
  to cheaper storage whole;
- index template `{prefix}news-articles` for `{prefix}news-articles-*` with explicit mappings
  (`dynamic: strict`: a field not declared here is refused, never guessed) and the alias, so every new
  month joins the alias the moment its first article is written;
- one document per article, `_id` = article id, external version = `analyzed_at` in microseconds, so a
  re-delivered or older analysis never replaces a newer one (`version_of`).

Text is analysed two ways for every article: `standard` on the field itself (exact words, any language) and
`.en` with the `english` analyzer (stemming: "running" finds "run"); a third, `{field}_cjk` with the `cjk`
analyzer (bigrams of Hangul, Han and Kana: 삼성전자가 -> 삼성/성전/전자/자가, so 삼성전자 (삼성/성전/전자) finds
it with its particle), is written only for text that holds CJK characters (`has_cjk`). A multi-field would
analyse every English body a third time for nothing: that was a third of the indexing work (docs/SEARCH.md).
Both analyzers come from OpenSearch's analysis-common module; no Korean morphological analyzer (nori) is
needed for that.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from opensearchpy import AsyncOpenSearch, JSONSerializer
from opensearchpy.exceptions import RequestError

from common.schemas import AnalyzedArticle
from common.settings import OpenSearchSettings

__all__ = [
    "ARCHIVE_FIELD",
    "BASE_NAME",
    "CJK_FIELDS",
    "SEARCH_FIELDS",
    "OrjsonSerializer",
    "alias_name",
    "document",
    "ensure_index",
    "has_cjk",
    "index_body",
    "index_name",
    "make_client",
    "template_body",
    "template_name",
    "version_of",
]

BASE_NAME = "news-articles"

# Text fields with their boosts, for `simple_query_string` / `multi_match`: a word in the title counts three
# times one in the body; each analysis of the same text (.en stems, _cjk bigrams) counts the same.
SEARCH_FIELDS: list[str] = [
    "title^3",
    "title.en^3",
    "title_cjk^3",
    "description^2",
    "description.en^2",
    "description_cjk^2",
    "content",
    "content.en",
    "content_cjk",
    "summary",
    "entities.name.text^2",
]

# Hangul (syllables, jamo, compatibility jamo), Han (CJK unified ideographs and extension A), Kana.
_CJK = re.compile("[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def has_cjk(text: str) -> bool:
    """Whether `text` holds a character the `cjk` analyzer makes bigrams of (else its `_cjk` copy is skipped)."""
    return _CJK.search(text) is not None


def alias_name(prefix: str = "") -> str:
    """What searches read: every month."""
    return f"{prefix}{BASE_NAME}"


def template_name(prefix: str = "") -> str:
    return f"{prefix}{BASE_NAME}"


def index_name(prefix: str, published_at: datetime) -> str:
    """The monthly index an article published at `published_at` is written to (UTC month)."""
    month = published_at.astimezone(UTC) if published_at.tzinfo else published_at.replace(tzinfo=UTC)
    return f"{prefix}{BASE_NAME}-{month:%Y.%m}"


def version_of(article: AnalyzedArticle) -> int:
    """External version: `analyzed_at` in microseconds since the epoch (a later analysis wins)."""
    analyzed = article.analyzed_at
    if analyzed.tzinfo is None:
        analyzed = analyzed.replace(tzinfo=UTC)
    delta = analyzed - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _text() -> dict[str, Any]:
    """A text field analysed as written and stemmed (see the module docstring)."""
    return {"type": "text", "analyzer": "standard", "fields": {"en": {"type": "text", "analyzer": "english"}}}


# The CJK bigram copies of the text fields, written only when the text has CJK characters.
CJK_FIELDS: dict[str, str] = {"title": "title_cjk", "description": "description_cjk", "content": "content_cjk"}
_CJK_MAPPINGS: dict[str, Any] = {name: {"type": "text", "analyzer": "cjk"} for name in CJK_FIELDS.values()}


# The whole analysed article, kept in `_source` and not indexed, so that `GET /news/{id}` answers the same
# shape from the archive after Redis' hot window (about 4 KB more per article on disk).
ARCHIVE_FIELD = "article"

MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        ARCHIVE_FIELD: {"type": "object", "enabled": False},
        "id": {"type": "keyword"},
        "url": {"type": "keyword", "index": False, "doc_values": False},
        "source": {"type": "keyword", "normalizer": "lowercase"},
        "language": {"type": "keyword"},
        "category": {"type": "keyword"},
        "sentiment": {"type": "keyword"},
        "sentiment_score": {"type": "float"},
        "importance_score": {"type": "float"},
        "published_at": {"type": "date"},
        "analyzed_at": {"type": "date"},
        "title": _text(),
        "description": _text(),
        "content": _text(),
        **_CJK_MAPPINGS,
        "keywords": {"type": "keyword"},
        "entities": {
            "type": "object",
            "properties": {
                "id": {"type": "keyword"},
                "name": {"type": "keyword", "fields": {"text": {"type": "text", "analyzer": "standard"}}},
                "type": {"type": "keyword"},
            },
        },
        "story_id": {"type": "keyword"},
        "summary": {"type": "text", "analyzer": "standard"},
    },
}


def index_body(settings: OpenSearchSettings) -> dict[str, Any]:
    """Settings and mappings of one monthly index."""
    return {
        "settings": {
            "index": {
                "number_of_shards": settings.shards,
                "number_of_replicas": settings.replicas,
                "refresh_interval": settings.refresh_interval,
            },
            "analysis": {
                "normalizer": {"lowercase": {"type": "custom", "filter": ["lowercase"]}},
            },
        },
        "mappings": MAPPINGS,
    }


def template_body(settings: OpenSearchSettings, prefix: str | None = None) -> dict[str, Any]:
    """The index template: every `{prefix}news-articles-*` index gets the mappings and joins the alias."""
    prefix = settings.index_prefix if prefix is None else prefix
    return {
        "index_patterns": [f"{prefix}{BASE_NAME}-*"],
        "priority": 100,
        "template": {**index_body(settings), "aliases": {alias_name(prefix): {}}},
        "_meta": {"owner": "news-suite", "defined_in": "common/search_index.py"},
    }


def document(article: AnalyzedArticle) -> dict[str, Any]:
    """The indexed document of one analysed article (`_id` = `article.id`)."""
    analysis = article.analysis
    doc: dict[str, Any] = {
        "id": article.id,
        "url": article.url,
        "source": article.source,
        "language": analysis.language,
        "category": analysis.category,
        "sentiment": analysis.sentiment,
        "sentiment_score": analysis.sentiment_score,
        "importance_score": analysis.importance_score,
        "published_at": article.published_at.isoformat(),
        "analyzed_at": article.analyzed_at.isoformat(),
        "title": article.title,
        "keywords": list(analysis.keywords),
        "entities": [{"id": e.key, "name": e.display, "type": e.type} for e in analysis.entities],
        ARCHIVE_FIELD: article.model_dump(mode="json"),
    }
    # Absent fields stay absent (not null), so `exists` queries and facets mean "has one".
    if article.description:
        doc["description"] = article.description
    if article.content:
        doc["content"] = article.content
    if analysis.summary:
        doc["summary"] = analysis.summary
    for field, cjk in CJK_FIELDS.items():
        text = doc.get(field)
        if text and has_cjk(text):
            doc[cjk] = text
    story_id = getattr(article, "story_id", None) or getattr(analysis, "story_id", None)
    if story_id:
        doc["story_id"] = story_id
    return doc


class OrjsonSerializer(JSONSerializer):
    """orjson for request bodies and answers: the standard library's encoder was the indexer's largest
    Python cost after decoding (a bulk of 500 articles is 2 to 5 MB of JSON)."""

    def dumps(self, data: Any) -> str:
        if isinstance(data, str):
            return data
        if isinstance(data, bytes):
            return data.decode("utf-8")
        try:
            return orjson.dumps(data, default=self.default).decode("utf-8")
        except TypeError:  # a type orjson does not know and `default` cannot turn into JSON either
            return str(super().dumps(data))

    def loads(self, s: str | bytes) -> Any:
        return orjson.loads(s)


def make_client(settings: OpenSearchSettings) -> AsyncOpenSearch:
    """An async client on `settings.url`; it retries nothing itself (callers decide: `common.retry`)."""
    return AsyncOpenSearch(
        hosts=[settings.url],
        timeout=settings.timeout_seconds,
        max_retries=0,
        retry_on_timeout=False,
        serializer=OrjsonSerializer(),
    )


async def ensure_index(client: AsyncOpenSearch, settings: OpenSearchSettings, *, now: datetime | None = None) -> None:
    """Write the index template (idempotent: the same body every time) and create this month's index, so the
    alias exists and a search before the first article answers "nothing" instead of "no such index".

    Existing indices keep the mappings they were created with; a change of mapping takes a new index (see
    `make reindex` in docs/SEARCH.md)."""
    prefix = settings.index_prefix
    await client.indices.put_index_template(name=template_name(prefix), body=template_body(settings))
    # Indices made before the `_cjk` fields existed get them added (adding a field is allowed in place;
    # `dynamic: strict` would otherwise refuse every Korean article written to the current month).
    # Only the missing ones: a field's options cannot change in place, so an existing one is left as it is.
    pattern = f"{prefix}{BASE_NAME}-*"
    if await client.indices.exists(index=pattern, allow_no_indices=False):
        for index, mapping in (await client.indices.get_mapping(index=pattern)).items():
            have = mapping.get("mappings", {}).get("properties", {})
            missing = {name: body for name, body in _CJK_MAPPINGS.items() if name not in have}
            if missing:
                await client.indices.put_mapping(index=index, body={"properties": missing})
    name = index_name(prefix, now or datetime.now(UTC))
    if await client.indices.exists(index=name):
        return
    try:
        await client.indices.create(index=name)
    except RequestError as exc:
        if exc.error != "resource_already_exists_exception":
            raise
