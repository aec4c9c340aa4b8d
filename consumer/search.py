"""The consumer's search routes and its reader of the archive (OpenSearch; issue 16).

`GET /search` answers full-text queries over every archived article (the indexer writes them; Redis
holds only the hot window): hits with highlights, facets, `search_after` paging and the query's volume
and mean sentiment over time. `Archive.get_json` is what `GET /news/{id}` falls back to once an
article has left Redis.

OpenSearch is not waited for at start-up: the live feed does not need it. While it does not answer,
these routes say so with 503; a query OpenSearch refuses (too many terms for its clause limit, too
many histogram buckets) is the caller's to change, so it is a 422 naming `q` or `interval`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError
from pydantic import ValidationError

from common.errors import StoreError
from common.schemas import Sentiment
from common.search_index import alias_name
from common.search_query import (
    ARCHIVE_FIELD,
    CURSOR_PATTERN,
    MAX_QUERY_LENGTH,
    QUERY_PATTERN,
    Interval,
    SearchParams,
    SearchResult,
    archived_article,
    build_query,
    parse_result,
)
from consumer.api import _UNAVAILABLE, _UTF8, IsoDateTime, _FilterText

__all__ = ["Archive", "ArchiveUnavailable", "search_router"]

log = logging.getLogger(__name__)


class ArchiveUnavailable(StoreError):
    """OpenSearch did not answer (down, unreachable, or timed out): 503, try again."""


# Failures caused by the query itself (the engine answers 500 for some of them): the caller's to change.
_QUERY_FAULTS = frozenset(
    {"too_many_clauses", "too_many_nested_clauses", "too_many_buckets_exception", "query_shard_exception"}
)


def _cause(exc: TransportError) -> tuple[str, str]:
    """The root cause's type and reason, as OpenSearch reported them."""
    info: Any = exc.info
    error = info.get("error") if isinstance(info, dict) else None
    if isinstance(error, dict):
        causes = error.get("root_cause") or []
        first = causes[0] if causes and isinstance(causes[0], dict) else error
        return str(first.get("type", "")), str(first.get("reason") or first.get("type") or error)[:500]
    return "", str(exc.error)[:500]


class Archive:
    """Reads the search alias: searches, and whole articles by id."""

    def __init__(self, client: AsyncOpenSearch, prefix: str, url: str) -> None:
        self._client = client
        self.alias = alias_name(prefix)
        self._url = url

    def _unavailable(self, exc: Exception) -> ArchiveUnavailable:
        reason = _cause(exc)[1] if isinstance(exc, TransportError) else ""
        return ArchiveUnavailable(
            f"the archive (OpenSearch at {self._url}) did not answer: {type(exc).__name__} {reason}".strip()
        )

    async def search(self, params: SearchParams) -> SearchResult:
        try:
            answer = await self._client.search(index=self.alias, body=build_query(params))
        except NotFoundError:  # no article archived yet: the alias does not exist
            return parse_result(params, _EMPTY)
        except OpenSearchConnectionError as exc:
            raise self._unavailable(exc) from exc
        except TransportError as exc:
            kind, reason = _cause(exc)
            if not isinstance(exc, RequestError) and kind not in _QUERY_FAULTS:
                raise self._unavailable(exc) from exc
            # Refused because of the query (400, or a limit the query broke): the caller's to change.
            field = "interval" if "bucket" in kind else "q"
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("query", field), "msg": f"the search engine refused it: {reason}"}]
            ) from exc
        return parse_result(params, answer)

    async def answers(self, timeout: float = 0.5) -> bool:
        """Whether OpenSearch answers a ping within `timeout` seconds (for `/readyz`, which reports it without
        gating on it: the live feed does not need the archive; docs/SEARCH.md)."""
        try:
            return bool(await asyncio.wait_for(self._client.ping(), timeout=timeout))
        except (TransportError, OSError, TimeoutError):
            return False

    async def hits(self, body: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The raw hits of a search body over the alias (an export reads each hit's stored article); None when
        nothing is archived yet (no alias). A body the engine refuses raises its RequestError."""
        try:
            answer = await self._client.search(index=self.alias, body=body)
        except NotFoundError:
            return None
        except RequestError:
            raise
        except (OpenSearchConnectionError, TransportError) as exc:
            raise self._unavailable(exc) from exc
        found: list[dict[str, Any]] = answer["hits"]["hits"]
        return found

    async def get_json(self, article_id: str) -> str | None:
        """The archived article's JSON (the same shape Redis stored), or None."""
        body = {"query": {"ids": {"values": [article_id]}}, "_source": [ARCHIVE_FIELD], "size": 1}
        try:
            answer = await self._client.search(index=self.alias, body=body)
        except NotFoundError:
            return None
        except (OpenSearchConnectionError, TransportError) as exc:
            raise self._unavailable(exc) from exc
        hits = answer["hits"]["hits"]
        if not hits:
            return None
        article = archived_article(hits[0]["_source"])
        if article is None:
            log.warning("archived document %s has no %r field; it cannot be served whole", article_id, ARCHIVE_FIELD)
            return None
        return article.model_dump_json()


_EMPTY: dict[str, Any] = {"hits": {"total": {"value": 0}, "hits": []}, "aggregations": {}}


def _archive(request: Request) -> Archive:
    return request.app.state.archive  # type: ignore[no-any-return]


ArchiveDep = Annotated[Archive, Depends(_archive)]


def search_params(
    q: Annotated[
        str,
        Query(
            max_length=MAX_QUERY_LENGTH,
            pattern=QUERY_PATTERN,
            description='words (all must match), "a phrase", a | b (or), -word (not), prefix*, (grouping); '
            "empty: every article, newest and filtered",
        ),
    ] = "",
    from_: Annotated[
        IsoDateTime | None,
        Query(alias="from", description="published at or after (ISO 8601; no zone means UTC)"),
    ] = None,
    to: Annotated[IsoDateTime | None, Query(description="published before (ISO 8601; no zone means UTC)")] = None,
    lang: Annotated[str | None, _FilterText, Query(description="language code, e.g. en, ko")] = None,
    source: Annotated[str | None, _FilterText, Query(description="source name (case-insensitive)")] = None,
    category: Annotated[str | None, _FilterText, Query(description="category, e.g. politics")] = None,
    sentiment: Annotated[Sentiment | None, Query(description="positive, neutral or negative")] = None,
    entity: Annotated[
        str | None, _FilterText, Query(description="an entity's canonical id (as in the facets) or its name")
    ] = None,
    story: Annotated[str | None, _FilterText, Query(description="a story's id")] = None,
    size: Annotated[int, Query(ge=1, le=100, description="hits per page (1-100)")] = 20,
    after: Annotated[
        str | None,
        Query(pattern=CURSOR_PATTERN, description="continue after the page that returned this `next_cursor`"),
    ] = None,
    interval: Annotated[
        Interval | None, Query(description="histogram bucket width; default: chosen from the range")
    ] = None,
) -> SearchParams:
    try:
        return SearchParams(
            q=q,
            since=from_,
            until=to,
            lang=lang,
            source=source,
            category=category,
            sentiment=sentiment,
            entity=entity,
            story=story,
            size=size,
            after=after,
            interval=interval,
        )
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
        ) from exc


search_router = APIRouter()


@search_router.get(
    "/search",
    response_model=SearchResult,
    responses={
        503: {**_UNAVAILABLE[503], "description": "the archive (OpenSearch) did not answer; try again"},
    },
    tags=["search"],
    dependencies=_UTF8,
)
async def search(archive: ArchiveDep, params: Annotated[SearchParams, Depends(search_params)]) -> SearchResult:
    """Full-text search over every archived article: hits with highlights, facet counts, the query's volume and
    mean sentiment over time; page on with `after`."""
    return await archive.search(params)
