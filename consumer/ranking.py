"""`GET /news/top` ranks stories (issue 15): one representative article per story, best story first, then
the articles that have no story yet in the seed's order (`importance_score`).

The body keeps the seed's shape (a list of AnalyzedArticle). The representative of a story is its first
article (the story's id), or, when that one is not stored (expired, or not ingested yet), its most recently
joined stored member. A story is listed when its representative matches the filters and `since`.

Order: stories by `common.story_store.story_score` at the request's `now` (ties: the representative's own
`importance_score`, then the story's last_seen, then its id), ranking the `SCORE_CANDIDATES` most recently
seen stories; after them every article no story has claimed, by `importance_score` as before.

Cursors: `ts_<now>_<score>_<story id>` continues the stories (ranked with the same `now`, so the order is
the same on every page while the stories do not change); `t_<importance>_<article id>`, the seed's cursor,
continues the articles without a story (an old client's cursor still pages on, among those).
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass
from datetime import datetime

from common.schemas import STORED, AnalyzedArticle
from common.store import CURSOR_PATTERNS, ArticleFilters, ArticleStore, cursor_after, epoch_seconds
from common.story_store import StoryStore

__all__ = ["TOP_CURSOR_PATTERN", "TopPage", "top_page"]

_NUM = r"-?[0-9]{1,20}(\.[0-9]{1,20})?(e-?[0-9]{1,3})?"
_STORY_CURSOR = f"ts_{_NUM}_{_NUM}_[0-9a-f]{{32}}"
TOP_CURSOR_PATTERN = f"^(?:{_STORY_CURSOR}|{CURSOR_PATTERNS['top'][1:-1]})$"
_MEMBERS_TRIED = 5  # members looked at for a representative when the story's first article is not stored


@dataclass(frozen=True)
class TopPage:
    raw: list[str]  # each article's stored JSON
    next_cursor: str | None


@dataclass(frozen=True)
class _Item:
    raw: str
    cursor: str  # the cursor that continues after this item


async def _representatives(articles: ArticleStore, stories: StoryStore, ids: list[str]) -> list[str | None]:
    found = await articles.get_many_json(ids)
    for n, (story_id, raw) in enumerate(zip(ids, found, strict=True)):
        if raw is None:
            members = [m for m in await stories.members(story_id, _MEMBERS_TRIED) if m != story_id]
            found[n] = next((r for r in await articles.get_many_json(members) if r is not None), None)
    return found


async def top_page(
    articles: ArticleStore,
    stories: StoryStore,
    limit: int,
    *,
    filters: ArticleFilters,
    since: datetime | None,
    cursor: str | None,
    now: float | None = None,
) -> TopPage:
    """One page of `/news/top` (module docstring); `cursor` matches `TOP_CURSOR_PATTERN`."""
    if cursor is not None and not re.fullmatch(TOP_CURSOR_PATTERN, cursor):
        raise ValueError("not a cursor returned by /news/top")
    since_s = None if since is None else epoch_seconds(since)
    out: list[_Item] = []
    article_cursor: str | None = None
    if cursor is None or cursor.startswith("ts_"):
        if cursor is None:
            at, position = (time.time() if now is None else now), None
        else:
            _, frozen, score, story_id = cursor.split("_")
            at, position = float(frozen), (float(score), story_id)
        ranked = await stories.ranked(at, since=since)
        if position is not None:
            ranked = [r for r in ranked if r[0] <= position[0]]
        for score, group in itertools.groupby(ranked, key=lambda r: r[0]):
            members = list(group)
            reps = await _representatives(articles, stories, [m[2] for m in members])
            keyed = []
            for (_, last_seen, story_id), raw in zip(members, reps, strict=True):
                if raw is None:
                    continue
                article = AnalyzedArticle.model_validate_json(raw, context=STORED)
                if not filters.matches(article):
                    continue
                if since_s is not None and epoch_seconds(article.published_at) < since_s:
                    continue
                keyed.append(((article.analysis.importance_score, last_seen, story_id), raw))
            keyed.sort(key=lambda k: k[0], reverse=True)
            if position is not None and score == position[0]:
                ids = [k[0][2] for k in keyed]
                if position[1] in ids:
                    keyed = keyed[ids.index(position[1]) + 1 :]
            out += [_Item(raw, f"ts_{at!r}_{score!r}_{key[2]}".replace("e+", "e")) for key, raw in keyed]
            if len(out) > limit:
                break
    else:
        article_cursor = cursor
    while len(out) <= limit:
        page = await articles.query("top", limit + 1 - len(out), filters=filters, since=since, cursor=article_cursor)
        claimed = await stories.stories_of([a.id for a in page.items])
        out += [
            _Item(raw, cursor_after("top", article))
            for article, raw, story in zip(page.items, page.raw, claimed, strict=True)
            if story is None
        ]
        if page.next_cursor is None:
            break
        article_cursor = page.next_cursor
    page_items = out[:limit]
    return TopPage([i.raw for i in page_items], page_items[-1].cursor if len(out) > limit else None)
