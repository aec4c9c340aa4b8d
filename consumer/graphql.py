"""GraphQL at `/graphql` (issue 20 item 2): the consumer's data (articles, stories, entity and keyword
timelines, search, statistics) as one typed graph, and a subscription to new analyses.

Nothing here reads Redis or OpenSearch on its own: every resolver calls what REST calls (the article and
story stores' `query`, `consumer.ranking.top_page`, `consumer.timelines`, `consumer.api.sentiment_stats`,
`Archive.search`), with the same filters (`ArticleFilters`, `StoryFilters`, `SearchParams`) and the same
cursors, so the two answer the same data. Field names are the REST/JSON names (snake_case: the schema is
built with `auto_camel_case=False`), so a client can move between them without a mapping.

The object types are views: resolvers return the stored Pydantic models (`AnalyzedArticle`, `RankedStory`,
`Timeline`, ...) and Strawberry reads each field by attribute, so nothing is copied into a second model.

Paging is Relay-like: a list answers `{nodes, page_info {end_cursor, has_next_page}}`, where `end_cursor`
is exactly the value REST sends in `X-Next-Cursor` (and accepts back as `cursor`).

The subscription `new_analysis(filters)` registers with the WebSocket's hub (`consumer.ws.Hub.register`),
so it is fed by the same per-replica reader of the store's event stream as `/ws`, with the same filters
and the same bounded queue (a subscriber that does not read loses articles, never slows the others).
It speaks graphql-transport-ws (and the legacy graphql-ws).

Limits: query depth (`QueryDepthLimiter`), tokens (`MaxTokensLimiter`), aliases (`MaxAliasesLimiter`) and
an estimated cost (`CostLimiter`: each list field's `limit`/`size` multiplies what is below it), refused
before anything is read.

Authentication is REST's: over HTTP the router is one of main.py's READ_ROUTERS (any read token, GET or
POST: there are no mutations). A WebSocket is authorised as `/ws` is, at the handshake (`?ticket=` from
`POST /ws/ticket`, or an `Authorization: Bearer` header), or, with neither, by graphql-transport-ws's
`connection_init` payload (`{"ticket": ...}`, `{"token": ...}` or `{"Authorization": "Bearer ..."}`), so a
browser needs no credential in the URL at all; a socket without any is closed with 4403.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncGenerator, Callable, Iterator
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar, cast, get_args

import strawberry
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from pydantic import ValidationError
from starlette.requests import HTTPConnection, Request
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.fastapi import GraphQLRouter
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info

from common.messages import NewAnalysis
from common.schemas import STORED, AnalyzedArticle
from common.search_query import SearchParams, SearchResult
from common.stats import TrendsSnapshot
from common.store import ArticleFilters, ArticleStore, InvalidCursor
from common.story_store import InvalidStoryCursor, RankedStory, StoryFilters, StoryStore, newest_first
from common.timelines import BucketName, Timeline, TimelineStore, TopSubject, WindowName
from common.webapp import AccessTokens, bearer_token
from consumer.api import BUCKET_PATTERN, WINDOW_PATTERN, SentimentStats, sentiment_stats
from consumer.ranking import top_page
from consumer.tickets import authorize_websocket
from consumer.timelines import _timeline
from consumer.ws import Hub, filters_error

__all__ = [
    "MAX_COST",
    "MAX_DEPTH",
    "MAX_TOKENS",
    "CostLimiter",
    "graphql_router",
    "query_cost",
    "schema",
    "schema_text",
]

log = logging.getLogger(__name__)

MAX_DEPTH = 8  # Query > stories > nodes > articles > analysis > entities > text is 7
MAX_TOKENS = 2_000
MAX_ALIASES = 30
# Estimated rows a query may touch: each list field's `limit`/`size` multiplies the cost below it. 200
# articles with everything on them (the most one REST page gives) cost about 200 * 3 = 600; 10 stories with
# 50 articles each, 10 * (1 + 50 * 3) = 1,510. 5,000 leaves room for a dashboard's page and refuses a
# query that asks for 200 stories of 200 articles (40,000 documents) in one go.
MAX_COST = 5_000


# --- input checking -----------------------------------------------------------------------------


def _bad(argument: str, message: str) -> GraphQLError:
    return GraphQLError(f"{argument}: {message}", extensions={"code": "BAD_USER_INPUT", "argument": argument})


def _limit(value: int, most: int, argument: str = "limit") -> int:
    if not 1 <= value <= most:
        raise _bad(argument, f"must be between 1 and {most}, not {value}")
    return value


def _one_of(value: str, allowed: tuple[str, ...], argument: str) -> str:
    if value not in allowed:
        raise _bad(argument, f"{value[:40]!r} is not one of {', '.join(allowed)}")
    return value


def _matches(value: str, pattern: str, argument: str) -> str:
    if not re.fullmatch(pattern, value):
        raise _bad(argument, f"{value[:40]!r} is not a valid value (see the field's description)")
    return value


# --- types (views on the stored models; see the module docstring) -------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def _field(description: str) -> Callable[[F], F]:
    """`strawberry.field(description=...)` as a typed decorator (Strawberry's is untyped without its plugin)."""
    return cast(Callable[[F], F], strawberry.field(description=description))


def _subscription(description: str) -> Callable[[F], F]:
    return cast(Callable[[F], F], strawberry.subscription(description=description))


@strawberry.enum(description="an article's sentiment")
class Sentiment(Enum):
    positive = "positive"
    neutral = "neutral"
    negative = "negative"


@strawberry.enum(description="`recent`: newest published first (/news/recent); `top`: top stories (/news/top)")
class ArticleOrder(Enum):
    recent = "recent"
    top = "top"


@strawberry.enum(description="`score`: importance from coverage, best first; `recent`: last seen first")
class StoryOrder(Enum):
    score = "score"
    recent = "recent"


@strawberry.type(description="a named entity found in an article")
class Entity:
    text: str
    type: str
    id: str | None = strawberry.field(description="canonical id, e.g. person:donald_trump")
    name: str | None = strawberry.field(description="canonical name")


@strawberry.type(description="what the engine found in an article")
class Analysis:
    sentiment: Sentiment
    sentiment_score: float
    keywords: list[str]
    entities: list[Entity]
    category: str
    language: str
    importance_score: float
    summary: str | None
    providers: JSON = strawberry.field(description="task -> provider")
    models: JSON = strawberry.field(description="task -> model")
    engine_version: str
    latency_ms: float


@strawberry.type(description="an analysed article, as `GET /news/{id}` answers it")
class Article:
    id: str
    url: str
    title: str
    description: str | None
    content: str | None
    source: str
    author: str | None
    published_at: datetime
    fetched_at: datetime
    origin: str
    language_hint: str | None
    analyzed_at: datetime
    analysis: Analysis

    @_field("the story the article joined (null: none yet, or expired)")
    async def story(self, info: Info) -> Story | None:
        stories = _state(info).stories
        story_id = await stories.story_of(cast(AnalyzedArticle, self).id)
        return None if story_id is None else await _ranked_story(stories, story_id)


@strawberry.type
class PageInfo:
    end_cursor: str | None = strawberry.field(description="pass as `cursor` for the next page (REST's X-Next-Cursor)")
    has_next_page: bool


@strawberry.type
class ArticleConnection:
    nodes: list[Article]
    page_info: PageInfo


@strawberry.type
class StoryEntity:
    id: str
    name: str
    type: str
    count: int


@strawberry.type
class StoryTimelineBucket:
    start: datetime
    count: int


@strawberry.type
class SentimentMix:
    positive: int
    neutral: int
    negative: int
    mean_score: float


@strawberry.type(description="a story (articles about one event), with its score now, as `GET /stories` answers it")
class Story:
    id: str
    title: str
    language: str
    first_seen: datetime
    last_seen: datetime
    article_count: int
    source_count: int
    sources: JSON = strawberry.field(description="source -> articles")
    languages: JSON = strawberry.field(description="language -> articles")
    entities: list[StoryEntity]
    keywords: list[str]
    sentiment: SentimentMix
    timeline: list[StoryTimelineBucket]
    active: bool
    duplicate_count: int
    score: float

    @_field("stored member articles, newest published first (as GET /stories/{id})")
    async def articles(self, info: Info, limit: int = 50) -> list[Article]:
        _limit(limit, 200)
        state = _state(info)
        members = await state.stories.members(cast(RankedStory, self).id, limit * 2)
        found = [r for r in await state.store.get_many_json(members) if r is not None] if members else []
        return [_article(raw) for raw in newest_first(found)[:limit]]


@strawberry.type
class StoryConnection:
    nodes: list[Story]
    page_info: PageInfo


@strawberry.type
class TimelinePoint:
    start: datetime
    count: int


@strawberry.type(description="articles naming a subject per bucket, oldest first, zeros included")
class SubjectTimeline:
    id: str
    kind: str
    bucket: str
    since: datetime
    until: datetime
    points: list[TimelinePoint]


@strawberry.type
class RankedSubject:
    id: str
    name: str
    type: str | None
    count: int


@strawberry.type
class SentimentBucket:
    start: datetime
    end: datetime
    source: str | None
    positive: int
    neutral: int
    negative: int
    count: int
    mean_score: float | None


@strawberry.type(description="as GET /stats/sentiment")
class SentimentStatistics:
    since: datetime
    until: datetime
    bucket_seconds: int
    source: str | None
    buckets: list[SentimentBucket]


@strawberry.type
class TrendItem:
    term: str
    count: int
    type: str | None


@strawberry.type(description="as GET /trends")
class Trends:
    window_start: datetime
    window_end: datetime
    window_minutes: int
    keywords: list[TrendItem]
    entities: list[TrendItem]


@strawberry.type
class SearchHit:
    id: str
    url: str
    title: str
    description: str | None
    source: str
    language: str
    category: str
    sentiment: Sentiment
    sentiment_score: float
    importance_score: float
    published_at: datetime
    story_id: str | None
    score: float
    highlights: JSON = strawberry.field(description="field -> fragments, the matches marked with <mark>")


@strawberry.type
class FacetCount:
    value: str
    count: int


@strawberry.type
class Facets:
    source: list[FacetCount]
    language: list[FacetCount]
    category: list[FacetCount]
    sentiment: list[FacetCount]
    entity: list[FacetCount]


@strawberry.type
class HistogramBucket:
    start: datetime
    count: int
    mean_sentiment: float | None


@strawberry.type(description="as GET /search")
class Search:
    total: int
    hits: list[SearchHit]
    next_cursor: str | None
    facets: Facets
    interval: str
    histogram: list[HistogramBucket]


@strawberry.input(description="every filter given must match (as REST's query parameters)")
class ArticleFilterInput:
    sentiment: Sentiment | None = None
    source: str | None = None
    category: str | None = None
    language: str | None = None
    entity: str | None = None


@strawberry.input(description="every filter given must match (as GET /stories)")
class StoryFilterInput:
    language: str | None = None
    source: str | None = None
    entity: str | None = strawberry.field(default=None, description="a canonical entity id")


# --- helpers ------------------------------------------------------------------------------------


def _state(info: Info) -> Any:
    connection: HTTPConnection = info.context["request"]
    return connection.app.state


def _article(raw: str) -> Article:
    return cast(Article, AnalyzedArticle.model_validate_json(raw, context=STORED))


async def _ranked_story(stories: StoryStore, story_id: str) -> Story | None:
    from consumer.api import _ranked  # the score REST computes for one story

    raw = await stories.get_json(story_id)
    return None if raw is None else cast(Story, RankedStory.model_validate_json(_ranked(raw)))


def article_filters(given: ArticleFilterInput | None) -> ArticleFilters:
    """REST's `ArticleFilters` from the input; a bad value is an error naming the filter."""
    if given is None:
        return ArticleFilters()
    try:
        return ArticleFilters(
            sentiment=None if given.sentiment is None else given.sentiment.value,
            source=given.source,
            category=given.category,
            language=given.language,
            entity=given.entity,
        )
    except ValidationError as exc:
        raise _bad("filters", filters_error(exc)) from exc


def _page(end_cursor: str | None) -> PageInfo:
    return PageInfo(end_cursor=end_cursor, has_next_page=end_cursor is not None)


# --- queries ------------------------------------------------------------------------------------

_BUCKETS: tuple[str, ...] = get_args(BucketName)
_WINDOWS: tuple[str, ...] = get_args(WindowName)


@strawberry.type
class Query:
    @_field("articles, filtered and paged: GET /news/recent (order recent) or /news/top (top)")
    async def articles(
        self,
        info: Info,
        order: ArticleOrder = ArticleOrder.recent,
        limit: int = 20,
        filters: ArticleFilterInput | None = None,
        since: datetime | None = None,
        cursor: str | None = None,
    ) -> ArticleConnection:
        _limit(limit, 200)
        chosen = article_filters(filters)
        state = _state(info)
        store: ArticleStore = state.store
        try:
            if order is ArticleOrder.recent:
                page = await store.query("recent", limit, filters=chosen, since=since, cursor=cursor)
                return ArticleConnection(nodes=cast(list[Article], page.items), page_info=_page(page.next_cursor))
            top = await top_page(store, state.stories, limit, filters=chosen, since=since, cursor=cursor)
        except (InvalidCursor, ValueError) as exc:
            raise _bad("cursor", str(exc)) from exc
        return ArticleConnection(nodes=[_article(raw) for raw in top.raw], page_info=_page(top.next_cursor))

    @_field("one article: from the hot window (Redis), else the archive (as GET /news/{id})")
    async def article(self, info: Info, id: str) -> Article | None:
        state = _state(info)
        raw = await state.store.get_json(id)
        archive = getattr(state, "archive", None)
        if raw is None and archive is not None:
            raw = await archive.get_json(id)
        return None if raw is None else _article(raw)

    @_field("stories, filtered and paged (as GET /stories)")
    async def stories(
        self,
        info: Info,
        order: StoryOrder = StoryOrder.score,
        limit: int = 20,
        filters: StoryFilterInput | None = None,
        since: datetime | None = None,
        cursor: str | None = None,
    ) -> StoryConnection:
        _limit(limit, 200)
        try:
            chosen = StoryFilters(
                language=filters.language if filters else None,
                source=filters.source if filters else None,
                entity=filters.entity if filters else None,
            )
        except ValidationError as exc:
            raise _bad("filters", filters_error(exc)) from exc
        # A cursor carries its order (as in REST): it pages on in the order of the page that returned it.
        ordering: Literal["score", "recent"] = order.value
        if cursor is not None:
            ordering = "recent" if cursor.startswith("sr_") else "score"
        stories: StoryStore = _state(info).stories
        try:
            page = await stories.query(ordering, limit, filters=chosen, since=since, cursor=cursor)
        except InvalidStoryCursor as exc:
            raise _bad("cursor", str(exc)) from exc
        nodes = [cast(Story, RankedStory.model_validate_json(raw)) for raw in page.ranked_json()]
        return StoryConnection(nodes=nodes, page_info=_page(page.next_cursor))

    @_field("one story with its score now (its articles: the `articles` field)")
    async def story(self, info: Info, id: str) -> Story | None:
        return await _ranked_story(_state(info).stories, id)

    @_field("articles naming an entity per bucket (as GET /entities/{id}/timeline)")
    async def entity_timeline(
        self,
        info: Info,
        id: str,
        bucket: Annotated[str, strawberry.argument(description="15m, 1h or 1d")] = "1h",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> SubjectTimeline:
        kind: BucketName = cast(BucketName, _one_of(bucket, _BUCKETS, "bucket"))
        timeline: Timeline = await _timeline(info.context["request"], "entity", id, kind, since, until)
        return cast(SubjectTimeline, timeline)

    @_field("articles with a keyword per bucket (as GET /keywords/{keyword}/timeline)")
    async def keyword_timeline(
        self,
        info: Info,
        keyword: str,
        bucket: Annotated[str, strawberry.argument(description="15m, 1h or 1d")] = "1h",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> SubjectTimeline:
        kind: BucketName = cast(BucketName, _one_of(bucket, _BUCKETS, "bucket"))
        timeline: Timeline = await _timeline(info.context["request"], "keyword", keyword, kind, since, until)
        return cast(SubjectTimeline, timeline)

    @_field("the most named entities in the window (as GET /entities/top)")
    async def top_entities(
        self,
        info: Info,
        window: Annotated[str, strawberry.argument(description="15m, 1h, 24h or 7d")] = "24h",
        limit: int = 20,
    ) -> list[RankedSubject]:
        return await _top(info, "entity", window, limit)

    @_field("the most used keywords in the window (as GET /keywords/top)")
    async def top_keywords(
        self,
        info: Info,
        window: Annotated[str, strawberry.argument(description="15m, 1h, 24h or 7d")] = "24h",
        limit: int = 20,
    ) -> list[RankedSubject]:
        return await _top(info, "keyword", window, limit)

    @_field("full-text search over the archive (as GET /search; OpenSearch)")
    async def search(
        self,
        info: Info,
        q: str = "",
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
        lang: str | None = None,
        source: str | None = None,
        category: str | None = None,
        sentiment: Sentiment | None = None,
        entity: str | None = None,
        story: str | None = None,
        size: int = 20,
        after: str | None = None,
        interval: str | None = None,
    ) -> Search:
        _limit(size, 100, "size")
        try:
            params = SearchParams.model_validate(
                {
                    "q": q,
                    "since": from_,
                    "until": to,
                    "lang": lang,
                    "source": source,
                    "category": category,
                    "sentiment": None if sentiment is None else sentiment.value,
                    "entity": entity,
                    "story": story,
                    "size": size,
                    "after": after,
                    "interval": interval,
                }
            )
        except ValidationError as exc:
            raise _bad("search", filters_error(exc)) from exc
        archive = getattr(_state(info), "archive", None)
        if archive is None:
            raise GraphQLError("search: the archive (OpenSearch) is not configured", extensions={"code": "UNAVAILABLE"})
        result: SearchResult = await archive.search(params)
        return cast(Search, result)

    @_field("counts per sentiment and mean score per time bucket (as GET /stats/sentiment)")
    async def sentiment_stats(
        self,
        info: Info,
        bucket: Annotated[str, strawberry.argument(description="a multiple of 5 minutes up to 7 days")] = "5m",
        window: Annotated[str, strawberry.argument(description="how far back when `since` is absent")] = "24h",
        since: datetime | None = None,
        until: datetime | None = None,
        source: str | None = None,
        by_source: bool = False,
    ) -> SentimentStatistics:
        _matches(bucket, BUCKET_PATTERN, "bucket")
        _matches(window, WINDOW_PATTERN, "window")
        if source is not None and not source.strip():
            raise _bad("source", "must hold something besides whitespace")
        found: SentimentStats = await sentiment_stats(
            _state(info).stats, bucket, window, since, until, source, by_source
        )
        return cast(SentimentStatistics, found)

    @_field("the most frequent keywords and entities of the last 15 minutes (as GET /trends)")
    async def trends(self, info: Info, limit: int = 20) -> Trends:
        _limit(limit, 100)
        found: TrendsSnapshot = await _state(info).stats.trends(window_minutes=15, limit=limit)
        return cast(Trends, found)


# --- the subscription ---------------------------------------------------------------------------


@strawberry.type
class Subscription:
    @_subscription("each newly stored analysis that matches the filters, from now on (the /ws feed's articles)")
    async def new_analysis(self, info: Info, filters: ArticleFilterInput | None = None) -> AsyncGenerator[Article]:
        chosen = article_filters(filters)
        hub: Hub = _state(info).hub
        client = hub.register(info.context["request"], chosen, stories=False)
        try:
            while True:
                message = (await client.queue.get())[-1]  # (seq, position, frame): the frame is last
                article = _new_analysis(message)
                if article is not None:
                    yield article
        finally:
            hub.unregister(client)


def _new_analysis(frame: str | bytes) -> Article | None:
    """The article of a hub frame, or None for any other frame (alerts go to every client)."""
    decoded = json.loads(frame)
    if decoded.get("type") != NewAnalysis.model_fields["type"].default:
        return None
    return cast(Article, AnalyzedArticle.model_validate(decoded["data"], context=STORED))


# --- limits -------------------------------------------------------------------------------------

_MULTIPLIERS = ("limit", "size")
_LIST_DEFAULTS = {"articles": 20, "stories": 20, "search": 20, "top_entities": 20, "top_keywords": 20, "trends": 20}


def query_cost(document: Any, variables: dict[str, Any] | None = None) -> int:
    """Estimated rows a document reads: a field costs 1 plus its children's cost, times its `limit`/`size`
    (or the field's default page size) for the fields that return pages; fragments are followed."""
    variables = variables or {}
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    def factor(field: FieldNode) -> int:
        for argument in field.arguments or ():
            if argument.name.value in _MULTIPLIERS:
                value = argument.value
                if isinstance(value, IntValueNode):
                    return max(1, int(value.value))
                if isinstance(value, VariableNode):
                    given = variables.get(value.name.value)
                    return max(1, given) if isinstance(given, int) else 200
        return _LIST_DEFAULTS.get(field.name.value, 1)

    def cost(selections: SelectionSetNode | None, seen: frozenset[str]) -> int:
        total = 0
        for node in selections.selections if selections else ():
            if isinstance(node, FieldNode):
                below = cost(node.selection_set, seen)
                total += factor(node) * (1 + below) if below else 1
            elif isinstance(node, InlineFragmentNode):
                total += cost(node.selection_set, seen)
            elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
                fragment = fragments.get(node.name.value)
                if fragment is not None:
                    total += cost(fragment.selection_set, seen | {node.name.value})
        return total

    return max(
        (cost(d.selection_set, frozenset()) for d in document.definitions if isinstance(d, OperationDefinitionNode)),
        default=0,
    )


class CostLimiter(SchemaExtension):
    """Refuse a query whose estimated cost (`query_cost`) is above `max_cost`, before it is executed."""

    def __init__(self, max_cost: int = MAX_COST) -> None:
        self.max_cost = max_cost

    def on_validate(self) -> Iterator[None]:
        # Before validation: a refusal set here is what the request answers, and nothing runs.
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            estimated = query_cost(document, context.variables)
            if estimated > self.max_cost:
                context.pre_execution_errors = [
                    GraphQLError(
                        f"the query's estimated cost {estimated} is above the limit {self.max_cost}: "
                        "ask for fewer rows (`limit`, `size`) or fewer nested lists",
                        extensions={"code": "QUERY_TOO_COSTLY", "cost": estimated, "max_cost": self.max_cost},
                    )
                ]
        yield


schema = strawberry.Schema(
    query=Query,
    subscription=Subscription,
    config=StrawberryConfig(auto_camel_case=False),
    extensions=[
        # Factories, so that each request gets its own extension instances (Strawberry's advice).
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        CostLimiter,
    ],
)


# --- the router ---------------------------------------------------------------------------------


def _payload_token(params: dict[str, object]) -> str | None:
    token = params.get("token")
    if isinstance(token, str):
        return token
    header = params.get("Authorization", params.get("authorization"))
    return header[7:].strip() if isinstance(header, str) and header[:7].lower() == "bearer " else None


class _Router(GraphQLRouter[Any, None]):
    """Strawberry's FastAPI router, with its WebSocket route as a plain Starlette route.

    The HTTP routes are mounted behind REST's access dependency (main.py's READ_ROUTERS: a query sent as a
    POST only reads). A FastAPI WebSocket route would inherit that dependency too, and a dependency that takes
    a `Request` cannot run on a WebSocket (FastAPI raises); a Starlette `WebSocketRoute` is carried by
    `include_router` without dependencies, and the subscription is authorised here, as `/ws` is.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        path = self.prefix + kwargs.get("path", "")
        self.routes[:] = [r for r in self.routes if not isinstance(r, WebSocketRoute)]
        self.routes.append(WebSocketRoute(path, self._websocket, name="graphql_ws"))

    async def _websocket(self, websocket: WebSocket) -> None:
        """At the handshake: a `?ticket=` (POST /ws/ticket) or an `Authorization: Bearer` header, checked as
        `/ws` checks them (a bad one is refused with 4401 there and then). With neither, the token or a ticket
        may come in `connection_init` instead (`on_ws_connect`), which keeps it out of the URL."""
        state = websocket.app.state
        access: AccessTokens = state.access
        authorized = access.open
        if not authorized and ("ticket" in websocket.query_params or bearer_token(websocket) is not None):
            if not await authorize_websocket(websocket, access, state.tickets):
                return
            authorized = True
        context = {"request": websocket, "authorized_at_handshake": authorized}
        await self.run(request=websocket, context=context, root_value=None)

    async def on_ws_connect(self, context: Any) -> Any:
        """graphql-transport-ws's `connection_init`: unless the handshake was authorised, its payload must carry
        a read token (`{"token": ...}` or `{"Authorization": "Bearer ..."}`) or a fresh ticket
        (`{"ticket": ...}`); else the socket is closed with 4403 before any operation runs."""
        if not context.get("authorized_at_handshake"):
            state = context["request"].app.state
            params = context.get("connection_params") or {}
            ticket = params.get("ticket")
            if isinstance(ticket, str):
                allowed = await state.tickets.redeem(ticket)
            else:
                allowed = state.access.scope_of(_payload_token(params)) is not None
            if not allowed:
                raise ConnectionRejectionError({"reason": "missing or wrong token or ticket"})
        return await super().on_ws_connect(context)


async def _top(info: Info, kind: Literal["entity", "keyword"], window: str, limit: int) -> list[RankedSubject]:
    """`top_entities` / `top_keywords`: the window checked as GET /{kind}s/top checks it, then the store's top."""
    _limit(limit, 100)
    chosen = cast(WindowName, _one_of(window, _WINDOWS, "window"))
    timelines: TimelineStore = _state(info).timelines
    found: list[TopSubject] = await timelines.top(kind, chosen, limit)
    return cast(list[RankedSubject], found)


async def _context(request: Request) -> dict[str, Any]:
    return {"request": request}


# Not in the OpenAPI document: GraphQL describes itself (consumer/schema.graphql, introspection), and an
# OpenAPI operation for it would be a shapeless body that fuzzers and the generated dashboard types misread.
graphql_router = _Router(schema, path="/graphql", context_getter=_context, graphql_ide=None, include_in_schema=False)
graphql_router.tags = ["graphql"]


def schema_text() -> str:
    """The schema in SDL, as committed in consumer/schema.graphql (`make graphql-schema` writes it)."""
    return schema.as_str() + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
