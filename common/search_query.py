"""The search API's request and answer: parameters, the OpenSearch query built from them, and the result models.

The consumer's `GET /search` (consumer/search.py) validates its parameters into `SearchParams`, sends
`build_query(params)` to the alias of `common.search_index`, and answers `parse_result(params, answer)`.
The models live in common/ because the dashboard's TypeScript types are generated from them (`make
contract`). Nothing here talks to OpenSearch, so the query can be unit-tested as data.

Query text goes through `simple_query_string`, which never fails on syntax (an unbalanced quote or
parenthesis is read as a plain character) and cannot name fields or run scripts: what a user types is
words, "phrases", `+`/`|`/`-` (AND/OR/NOT), `prefix*` and parentheses, over `SEARCH_FIELDS` only.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from common.schemas import STORED, AnalyzedArticle, Sentiment
from common.search_index import ARCHIVE_FIELD, CJK_FIELDS, SEARCH_FIELDS

__all__ = [
    "ARCHIVE_FIELD",
    "CURSOR_PATTERN",
    "HIGHLIGHT_TAGS",
    "MAX_BUCKETS",
    "MAX_QUERY_LENGTH",
    "QUERY_PATTERN",
    "FacetCount",
    "Facets",
    "HistogramBucket",
    "Interval",
    "InvalidCursor",
    "SearchHit",
    "SearchParams",
    "SearchResult",
    "archived_article",
    "build_query",
    "choose_interval",
    "decode_cursor",
    "encode_cursor",
    "parse_result",
    "resolve_interval",
]


MAX_QUERY_LENGTH = 500
HIGHLIGHT_CHARS = 2_000
# Any text but control characters (NUL included); tab, newline and carriage return are whitespace.
QUERY_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
# A page cursor is the last hit's sort values, `<score>_<published_at ms>_<id>`: readable, safe in a URL as it
# is, and exactly described by this pattern (any string of this shape is a cursor the route accepts).
# Scores are Lucene floats (32-bit): their exponent has at most two digits. Three would let a cursor carry a
# double that reads as infinity, which OpenSearch refuses (found by schemathesis): every match is finite.
CURSOR_PATTERN = r"^[0-9]{1,20}(\.[0-9]{1,20})?(e-?[0-9]{1,2})?_-?[0-9]{1,15}_[0-9a-f]{32}$"
HIGHLIGHT_TAGS = ("<mark>", "</mark>")
MAX_BUCKETS = 500  # of the histogram when the range is known; wider ranges get wider buckets
_AUTO_BUCKETS = 60  # target of the histogram when the range is open (the engine picks the width)
FACET_SIZE = 10

Interval = Literal["hour", "day", "week", "month"]
_CALENDAR: dict[str, str] = {"hour": "1h", "day": "1d", "week": "1w", "month": "1M"}
_APPROX = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=28),
}
_TEXT_FIELDS = ("title", "description", "content")


def _analyses(field: str) -> tuple[str, str, str]:
    """The indexed analyses of one text field: as written, English stems, CJK bigrams (common.search_index)."""
    return (field, f"{field}.en", CJK_FIELDS[field])


class InvalidCursor(ValueError):
    """An `after` value this API did not write."""


def encode_cursor(sort: list[Any]) -> str:
    score, published_ms, article_id = sort
    # repr round-trips the double exactly; "e+" would read as a space in an unencoded query.
    return f"{float(score)!r}_{int(published_ms)}_{article_id}".replace("e+", "e")


def decode_cursor(cursor: str) -> list[Any]:
    if not re.fullmatch(CURSOR_PATTERN, cursor):
        raise InvalidCursor("not a cursor returned by this API")
    score, published_ms, article_id = cursor.split("_")
    return [float(score), int(published_ms), article_id]


FilterText = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class SearchParams(BaseModel):
    """What `GET /search` was asked (validated; see the route for each parameter's description)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    q: Annotated[str, Field(max_length=MAX_QUERY_LENGTH, pattern=QUERY_PATTERN)] = ""
    since: datetime | None = None
    until: datetime | None = None
    lang: FilterText | None = None
    source: FilterText | None = None
    category: FilterText | None = None
    sentiment: Sentiment | None = None
    entity: FilterText | None = None
    story: FilterText | None = None
    size: Annotated[int, Field(ge=1, le=100)] = 20
    after: Annotated[str | None, Field(pattern=CURSOR_PATTERN)] = None
    interval: Interval | None = None

    @model_validator(mode="after")
    def _utc(self) -> SearchParams:
        # No zone means UTC (as everywhere in the API), never the host's zone.
        object.__setattr__(self, "since", _aware(self.since))
        object.__setattr__(self, "until", _aware(self.until))
        return self


def choose_interval(since: datetime, until: datetime) -> Interval:
    """The narrowest calendar interval that keeps the histogram of [since, until) within `MAX_BUCKETS`."""
    span = until - since
    for name in ("hour", "day", "week"):
        if span / _APPROX[name] <= MAX_BUCKETS:
            return name
    return "month"


def _utc(value: datetime) -> str:
    """ISO 8601 in UTC: OpenSearch (Java) refuses offsets beyond +-18:00, which ISO 8601 text may carry."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    try:
        return aware.astimezone(UTC).isoformat()
    except OverflowError:  # 0001-01-01 at +05:00 is before the first representable UTC instant (or 9999 after it)
        edge = datetime.min if aware.year == 1 else datetime.max
        return edge.replace(tzinfo=UTC).isoformat()


def _filters(p: SearchParams) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    window: dict[str, str] = {}
    if p.since is not None:
        window["gte"] = _utc(p.since)
    if p.until is not None:
        window["lt"] = _utc(p.until)
    if window:
        out.append({"range": {"published_at": window}})
    if p.source:
        out.append({"term": {"source": p.source}})  # the field's normalizer lower-cases both sides
    # Language codes, categories and sentiments are stored lower-case.
    if p.lang:
        out.append({"term": {"language": p.lang.lower()}})
    if p.category:
        out.append({"term": {"category": p.category.lower()}})
    if p.sentiment:
        out.append({"term": {"sentiment": p.sentiment}})
    if p.entity:
        # The canonical id (what the entity facet returns, e.g. person:donald_trump) or the display name.
        out.append(
            {
                "bool": {
                    "should": [{"term": {"entities.id": p.entity}}, {"term": {"entities.name": p.entity}}],
                    "minimum_should_match": 1,
                }
            }
        )
    if p.story:
        out.append({"term": {"story_id": p.story}})
    return out


def resolve_interval(p: SearchParams, now: datetime) -> Interval | None:
    """The histogram's interval: the one asked for, else one chosen from a known range; None lets the
    engine choose (an open or empty range)."""
    until = p.until or now
    if p.interval is not None:
        return p.interval
    if p.since is None or p.since >= until:
        return None
    return choose_interval(p.since, until)


def _histogram(p: SearchParams, now: datetime) -> dict[str, Any]:
    volume = {"mean_sentiment": {"avg": {"field": "sentiment_score"}}}
    since, until = p.since, p.until or (now if p.since is not None else None)
    interval = resolve_interval(p, now)
    if interval is None:
        return {"auto_date_histogram": {"field": "published_at", "buckets": _AUTO_BUCKETS}, "aggs": volume}
    histogram: dict[str, Any] = {"field": "published_at", "calendar_interval": _CALENDAR[interval], "min_doc_count": 1}
    if since is not None and until is not None and since < until and (until - since) / _APPROX[interval] <= MAX_BUCKETS:
        # Empty buckets inside the range too, so a chart shows the gaps.
        histogram["min_doc_count"] = 0
        histogram["extended_bounds"] = {
            "min": _utc(since),
            "max": _utc(until - timedelta(milliseconds=1)),
        }
    return {"date_histogram": histogram, "aggs": volume}


def build_query(p: SearchParams, *, now: datetime | None = None) -> dict[str, Any]:
    """The search body for `p`: the query text scored over `SEARCH_FIELDS`, the filters as non-scoring
    clauses, highlights, facets, the histogram, and `search_after` paging (score, then newest, then id)."""
    text = p.q.strip()
    must: list[dict[str, Any]] = (
        [
            {
                "simple_query_string": {
                    "query": text,
                    "fields": SEARCH_FIELDS,
                    "default_operator": "and",
                    "flags": "AND|OR|NOT|PHRASE|PREFIX|PRECEDENCE|WHITESPACE|ESCAPE",
                }
            }
        ]
        if text
        else [{"match_all": {}}]
    )
    highlight_fields: dict[str, Any] = {}
    for field in _TEXT_FIELDS:
        whole = field == "title"
        for name in _analyses(field):
            highlight_fields[name] = (
                {"number_of_fragments": 0} if whole else {"fragment_size": 160, "number_of_fragments": 3}
            )
    body: dict[str, Any] = {
        "size": p.size,
        "track_total_hits": True,
        "query": {"bool": {"must": must, "filter": _filters(p)}},
        "sort": [{"_score": "desc"}, {"published_at": "desc"}, {"id": "asc"}],
        "_source": {"excludes": ["content", ARCHIVE_FIELD]},
        "aggs": {
            "source": {"terms": {"field": "source", "size": FACET_SIZE}},
            "language": {"terms": {"field": "language", "size": FACET_SIZE}},
            "category": {"terms": {"field": "category", "size": FACET_SIZE}},
            "sentiment": {"terms": {"field": "sentiment", "size": 3}},
            "entity": {"terms": {"field": "entities.id", "size": FACET_SIZE}},
            "histogram": _histogram(p, now or datetime.now(UTC)),
        },
    }
    if text:
        body["highlight"] = {
            "pre_tags": [HIGHLIGHT_TAGS[0]],
            "post_tags": [HIGHLIGHT_TAGS[1]],
            # The text is HTML-escaped around the marks, so a client may render the fragments as HTML.
            "encoder": "html",
            "fields": highlight_fields,
            # Highlighting re-analyses each stored text (as written, .en, and _cjk when present); bodies run to
            # 20,000 characters, and that analysis was most of a search's time (docs/SEARCH.md). Snippets come
            # from the first HIGHLIGHT_CHARS characters; a match further in still counts, it is not marked.
            "max_analyzer_offset": HIGHLIGHT_CHARS,
        }
    if p.after is not None:
        body["search_after"] = decode_cursor(p.after)
    return body


# --- the answer ----------------------------------------------------------------------------------


class SearchHit(BaseModel):
    """One matching article: what a result list shows (the whole article is `GET /news/{id}`)."""

    id: str
    url: str
    title: str
    description: str | None = None
    source: str
    language: str
    category: str
    sentiment: Sentiment
    sentiment_score: float
    importance_score: float
    published_at: datetime
    story_id: str | None = None
    score: float = Field(description="relevance (1 for every hit when `q` is empty)")
    highlights: dict[str, list[str]] = Field(
        default_factory=dict,
        description="per field (title, description, content): fragments with the matches in <mark>...</mark>, "
        "the rest HTML-escaped",
    )


class FacetCount(BaseModel):
    value: str
    count: int


class Facets(BaseModel):
    """The most frequent values among all matching articles (not only this page)."""

    source: list[FacetCount]
    language: list[FacetCount]
    category: list[FacetCount]
    sentiment: list[FacetCount]
    entity: list[FacetCount] = Field(description="canonical entity ids, e.g. person:donald_trump")


class HistogramBucket(BaseModel):
    start: datetime = Field(description="the bucket's start (UTC)")
    count: int
    mean_sentiment: float | None = Field(description="mean sentiment_score of the bucket; null when it is empty")


class SearchResult(BaseModel):
    total: int = Field(description="every matching article (all pages)")
    hits: list[SearchHit]
    next_cursor: str | None = Field(
        description="pass as `after` for the next page; null on the last page", pattern=CURSOR_PATTERN
    )
    facets: Facets
    interval: str = Field(description="histogram bucket width: 1h, 1d, 1w, 1M, or the engine's choice (e.g. 3h, 7d)")
    histogram: list[HistogramBucket] = Field(description="volume and mean sentiment over time, oldest first")


def _highlights(raw: dict[str, list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for field in _TEXT_FIELDS:
        # Each analysis marks what it matched (exact words, English stems, CJK bigrams): show the one that
        # marks the most, so "banks" is marked for "bank" and 삼성전자가 for 삼성전자 (ties: exact words).
        marked = [
            (sum(f.count(HIGHLIGHT_TAGS[0]) for f in raw[name]), -rank, name)
            for rank, name in enumerate(_analyses(field))
            if raw.get(name)
        ]
        if marked:
            out[field] = raw[max(marked)[2]]
    return out


def _facet(agg: dict[str, Any]) -> list[FacetCount]:
    return [FacetCount(value=str(b["key"]), count=int(b["doc_count"])) for b in agg.get("buckets", [])]


def parse_result(p: SearchParams, answer: dict[str, Any], *, now: datetime | None = None) -> SearchResult:
    hits: list[SearchHit] = []
    raw_hits = answer["hits"]["hits"]
    for hit in raw_hits:
        src = hit["_source"]
        score = hit.get("_score")
        hits.append(
            SearchHit(
                id=src["id"],
                url=src["url"],
                title=src["title"],
                description=src.get("description"),
                source=src["source"],
                language=src["language"],
                category=src["category"],
                sentiment=src["sentiment"],
                sentiment_score=src["sentiment_score"],
                importance_score=src["importance_score"],
                published_at=src["published_at"],
                story_id=src.get("story_id"),
                score=1.0 if score is None or math.isnan(score) else float(score),
                highlights=_highlights(hit.get("highlight", {})),
            )
        )
    aggs = answer.get("aggregations", {})
    histogram = aggs.get("histogram", {})
    chosen = resolve_interval(p, now or datetime.now(UTC))
    interval = _CALENDAR[chosen] if chosen is not None else str(histogram.get("interval", "1d"))
    total = answer["hits"]["total"]["value"]
    full_page = len(raw_hits) == p.size
    return SearchResult(
        total=total,
        hits=hits,
        next_cursor=encode_cursor(raw_hits[-1]["sort"]) if raw_hits and full_page else None,
        facets=Facets(
            source=_facet(aggs.get("source", {})),
            language=_facet(aggs.get("language", {})),
            category=_facet(aggs.get("category", {})),
            sentiment=_facet(aggs.get("sentiment", {})),
            entity=_facet(aggs.get("entity", {})),
        ),
        interval=interval,
        histogram=[
            HistogramBucket(
                start=datetime.fromtimestamp(b["key"] / 1000, UTC),
                count=b["doc_count"],
                mean_sentiment=b.get("mean_sentiment", {}).get("value"),
            )
            for b in histogram.get("buckets", [])
        ],
    )


def archived_article(source: dict[str, Any]) -> AnalyzedArticle | None:
    """The article kept in an archived document, or None when the document does not carry it."""
    stored = source.get(ARCHIVE_FIELD)
    if stored is None:
        return None
    return AnalyzedArticle.model_validate(stored, context=STORED)
