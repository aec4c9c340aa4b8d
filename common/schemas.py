"""The message contract: every Kafka and Redis payload in the suite is one of these models.

Models are strict and frozen and carry `schema_version`. Validators normalise what arrives
(markup to text, NFC, one space, UTC dates, canonical URL and stable id, length limits);
what cannot be made valid raises a `pydantic.ValidationError` that names the field and why.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from common.text import article_id, canonical_url, clean_text, truncate
from common.vectors import EMBEDDING_PATTERN

__all__ = [
    "CATEGORIES",
    "SCHEMA_VERSION",
    "SENTIMENTS",
    "STORED",
    "TEXT_ONLY",
    "Analysis",
    "AnalyzedArticle",
    "ArticleBase",
    "ArticleIn",
    "DeadLetter",
    "Entity",
    "NewsApiSource",
    "RawArticle",
    "Sentiment",
    "parse_datetime",
    "unencodable",
]

SCHEMA_VERSION = 1

# Documented limits (characters, after markup is stripped). Longer input is cut, not rejected.
TITLE_MAX = 500
DESCRIPTION_MAX = 2_000
CONTENT_MAX = 20_000
SOURCE_MAX = 200
AUTHOR_MAX = 300
URL_MAX = 2_048
CANONICAL_URL_MAX = 3 * URL_MAX + 1
"""Canonicalising re-encodes the query (`?a=é` -> `?a=%C3%A9`), so a URL of `URL_MAX` may grow; see URL_PATTERN."""

Sentiment = Literal["positive", "neutral", "negative"]
SENTIMENTS: tuple[str, ...] = ("positive", "neutral", "negative")
CATEGORIES: tuple[str, ...] = (
    "world",
    "politics",
    "business",
    "technology",
    "science",
    "health",
    "sports",
    "entertainment",
    "other",
)


def parse_datetime(value: Any) -> datetime:
    """Parse ISO 8601, RFC 2822 or epoch seconds to an aware UTC datetime; naive input is taken as UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        dt = datetime.fromtimestamp(float(value), tz=UTC)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("date is empty")
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            dt = _parse_other(text)
    else:
        raise ValueError(f"date must be a string, a number or a datetime, not {type(value).__name__}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    # 1990 to 2100 as written anywhere on Earth: a day either side in UTC, so that 1990-01-01 at +05:00
    # (which the HTTP pattern admits) is valid, and stays valid when the stored UTC date is read back.
    if not _EARLIEST <= dt < _LATEST:
        raise ValueError(f"date out of range: {dt.isoformat()}")
    return dt


_EARLIEST, _LATEST = datetime(1989, 12, 31, tzinfo=UTC), datetime(2101, 1, 2, tzinfo=UTC)
_OTHER_FORMATS = ("%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "%d.%m.%Y", "%Y%m%d")


def _parse_other(text: str) -> datetime:
    try:
        return parsedate_to_datetime(text)  # RFC 2822, as RSS writes dates
    except (TypeError, ValueError, IndexError):
        pass
    for fmt in _OTHER_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"not a recognisable date: {text[:40]!r}")


def unencodable(text: str) -> str | None:
    """Why `text` cannot be written as UTF-8 (an unpaired UTF-16 surrogate, which JSON's `\\udXXX` escapes can
    carry), or None when it can. Such text would fail later, in Kafka, Redis or a JSON answer: refuse it on entry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"text is not valid Unicode: unpaired surrogate U+{ord(text[exc.start]):04X} at character {exc.start}"
    return None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _text(limit: int) -> BeforeValidator:
    """Text produced inside the suite (entity names, keywords, summaries): never parsed as markup."""

    def normalise(value: Any) -> Any:
        if isinstance(value, str):
            return truncate(clean_text(value, markup=False), limit)
        return value

    return BeforeValidator(normalise)


def _optional_text(limit: int) -> BeforeValidator:
    def normalise(value: Any) -> Any:
        if isinstance(value, str):
            return truncate(clean_text(value, markup=False), limit) or None
        return value

    return BeforeValidator(normalise)


UtcDatetime = Annotated[datetime, BeforeValidator(parse_datetime)]

_TEXT_LIMITS = {
    "title": TITLE_MAX,
    "description": DESCRIPTION_MAX,
    "content": CONTENT_MAX,
    "source": SOURCE_MAX,
    "author": AUTHOR_MAX,
}
_REQUIRED_TEXT = frozenset({"title", "source"})
TEXT_ONLY: dict[str, Any] = {"text_only": True}
"""Validation context for text the suite already normalised: never parse it as markup again."""
STORED: dict[str, Any] = {"text_only": True, "stored": True}
"""Validation context for records read back from the suite's own store: they were fully validated
and normalised on the way in, so the text pass is skipped (types and limits are still checked)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", str_max_length=200_000)


class Entity(_Frozen):
    """A named entity found in an article: its surface `text`, one `type` (PERSON, ORG, LOC, MISC, ...) and,
    where the engine could resolve it, the canonical `id` and `name` shared by every surface form of the same
    real-world entity ("Trump", "Donald Trump", "President Trump" -> `person:donald_trump`, "Donald Trump").
    Older records carry neither; readers fall back to the surface text."""

    text: Annotated[str, _text(200), Field(min_length=1)]
    type: Annotated[str, Field(min_length=1, max_length=32)]
    id: Annotated[str | None, Field(min_length=1, max_length=240)] = None
    name: Annotated[str | None, _optional_text(200)] = None

    @property
    def key(self) -> str:
        """What counts as one entity in trends and filters: the canonical id, else type and folded text."""
        return self.id or f"{self.type.lower()}:{self.text.casefold()}"

    @property
    def display(self) -> str:
        return self.name or self.text


class ArticleBase(_Frozen):
    """Fields every article carries, raw or analysed."""

    # Producers may send anything here; it is normalised, so extra markup or a 5 MB
    # body are cut to the documented limits instead of being stored as they came.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore", str_max_length=20_000_000)

    # Whether text fields are read as HTML when validated. Only RawArticle does it, and only
    # for input from outside (see `TEXT_ONLY`); analysed articles hold the suite's own text.
    _markup: ClassVar[bool] = False

    schema_version: Literal[1] = 1  # SCHEMA_VERSION
    id: str = ""
    url: Annotated[str, Field(min_length=1, max_length=CANONICAL_URL_MAX)]
    title: Annotated[str, Field(min_length=1, max_length=TITLE_MAX)]
    description: Annotated[str | None, Field(max_length=DESCRIPTION_MAX)] = None
    content: Annotated[str | None, Field(max_length=CONTENT_MAX)] = None
    source: Annotated[str, Field(min_length=1, max_length=SOURCE_MAX)] = "unknown"
    author: Annotated[str | None, Field(max_length=AUTHOR_MAX)] = None
    published_at: UtcDatetime
    fetched_at: UtcDatetime = Field(default_factory=_utc_now)
    origin: Annotated[str, Field(min_length=1, max_length=32)] = "push"
    language_hint: Annotated[str | None, Field(max_length=16)] = None

    @model_validator(mode="before")
    @classmethod
    def _normalise_text(cls, data: Any, info: ValidationInfo) -> Any:
        context = info.context or {}
        if not isinstance(data, dict) or context.get("stored"):
            return data
        markup = cls._markup and not context.get("text_only", False)
        data = dict(data)
        source = data.get("source")
        if isinstance(source, dict):  # NewsAPI's {"id": ..., "name": ...} source object
            name, ident = source.get("name"), source.get("id")
            data["source"] = (
                name if isinstance(name, str) and name.strip() else ident if isinstance(ident, str) else None
            )
            if data["source"] is None:
                del data["source"]
        for field in ("url", "title", "description", "content", "source", "author", "origin", "language_hint"):
            value = data.get(field)
            if isinstance(value, str) and (reason := unencodable(value)):
                raise ValueError(f"{field}: {reason}")
        for field, limit in _TEXT_LIMITS.items():
            value = data.get(field)
            if isinstance(value, str):
                text = truncate(clean_text(value, markup=markup), limit)
                data[field] = text if text or field in _REQUIRED_TEXT else None
        return data

    @field_validator("url", mode="before")
    @classmethod
    def _canonical(cls, value: Any) -> Any:
        if isinstance(value, str):
            if len(value) > URL_MAX:
                raise ValueError(f"URL longer than {URL_MAX} characters")
            return canonical_url(value)
        return value

    @model_validator(mode="after")
    def _stable_id(self) -> ArticleBase:
        # The id is derived, never trusted: two fetches of one story must share it.
        object.__setattr__(self, "id", article_id(self.url))
        return self


class RawArticle(ArticleBase):
    """An article as it enters the suite (Kafka topic `news.raw`).

    Its text fields are read as HTML and reduced to text. A stage that re-reads a RawArticle
    the suite itself wrote (the stream worker reading `news.raw`) validates it with
    `context=TEXT_ONLY`, so that text which merely looks like markup is not stripped twice.
    """

    _markup: ClassVar[bool] = True


# --- what clients send over HTTP (producer `POST /articles`, inference `/v1/analyze*`) ---

# Exactly the URLs `canonical_url` accepts: http(s), an ASCII host of DNS labels, an optional port.
# Written for both ECMA (the OpenAPI document) and Rust regex (pydantic): explicit classes, no look-around.
_LABEL = "[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_PORT = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0)"
# The query is printable ASCII: canonical_url re-encodes it (at most 3 characters for one), while a path is
# kept as it is, so an accepted URL's canonical form always fits `CANONICAL_URL_MAX`.
URL_PATTERN = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://{_LABEL}(?:\.{_LABEL})*\.?(?::{_PORT})?"
    r"(?:/[^\x00-\x1f\x7f?#]*)?(?:\?[!-\x22\x24-~]*)?(?:#[^\x00-\x20\x7f]*)?$"
)
# ISO 8601 dates from 1990 to 2100 (a day or a time of day, optional seconds, fraction and offset), every
# one a real calendar date, so that what the pattern admits always parses: the schema is the validation.
# It admits every date a RawArticle holds, so the stream worker can send its articles to the inference service.
_YEAR = "(?:199[0-9]|20[0-9]{2}|2100)"
_LEAP = "(?:199[26]|20(?:[02468][048]|[13579][26]))"
_MONTH_DAY = "(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
_TIME = (
    "(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.][0-9]{1,6})?)?"
    "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])?)?"
)
DATE_PATTERN = f"^(?:{_YEAR}-{_MONTH_DAY}|{_LEAP}-02-29){_TIME}$"
EPOCH_MIN, EPOCH_MAX = 631_152_000, 4_133_980_799  # 1990-01-01 .. 2100-12-31 23:59:59 UTC, seconds
TEXT_IN_MAX = 2_000_000
"""Hard cap on one text field as sent (characters): longer is refused (422); up to it, text is cut to the
field's documented limit (title 500, description 2,000, content 20,000)."""
_TRUNCATION_MARKER = re.compile(r"\s*\[\+\d+ chars\]\s*$")

# A title must have text: at least one visible character (not a space, control or invisible character) outside
# markup, where markup starts as the HTML parser says: `<` then a letter, `/`, `!` or `?`, ending at `>`. So
# `<b></b>`, `<p` and `<!-- x -->` are refused by the pattern, as they are by the cleaning (and a bare `<` at
# the end, which the cleaning would keep: no `$`, whose meaning differs between regex engines); left to the cleaning
# alone: `<script>`/`<style>` bodies and character references to invisible characters (`&#8203;`).
_INVISIBLE = r"\x00-\x20\x7f-\xa0\xad\u1680\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ufeff"
_VISIBLE = rf"(?:^|>)(?:[^<]|<[^A-Za-z/!?])*?(?:[^{_INVISIBLE}<]|<[^A-Za-z/!?])"
_InText = Annotated[str, Strict(), Field(max_length=TEXT_IN_MAX)]
_InDate = (
    Annotated[str, Strict(), Field(pattern=DATE_PATTERN)]
    | Annotated[float, Field(ge=EPOCH_MIN, le=EPOCH_MAX, allow_inf_nan=False)]
)

_NEWSAPI_EXAMPLE: dict[str, Any] = {
    "source": {"id": "bbc-news", "name": "BBC News"},
    "author": "BBC News",
    "title": "Acme wins contract to build new bridge",
    "description": "The deal is worth 100 million pounds.",
    "url": "https://www.bbc.co.uk/news/business-1",
    "urlToImage": "https://ichef.bbci.co.uk/news/1024/acme.jpg",
    "publishedAt": "2024-11-26T05:00:00Z",
    "content": "The company said on Monday that it had won the contract… [+2829 chars]",
}


class NewsApiSource(BaseModel):
    """NewsAPI's `source` object; the article's source is its `name`, else its `id`."""

    model_config = ConfigDict(extra="ignore")

    id: _InText | None = None
    name: _InText | None = None


class ArticleIn(BaseModel):
    """An article as a client sends it: the suite's own field names, or NewsAPI's article object as it comes.

    `source` is a string or NewsAPI's `{"id", "name"}`; `publishedAt` stands for `published_at` and `urlToImage`
    is accepted and not kept; NewsAPI's `[+1234 chars]` marker is removed from `content`. Without a date the
    article is dated now. Text is read as HTML and reduced to text (control characters, NUL included, become
    spaces) and cut to the documented limits; a title with no text left is refused. Unknown fields are ignored.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_extra={"examples": [_NEWSAPI_EXAMPLE]})

    url: Annotated[str, Strict(), Field(min_length=1, max_length=URL_MAX, pattern=URL_PATTERN)]
    title: Annotated[str, Strict(), Field(min_length=1, max_length=TEXT_IN_MAX, pattern=_VISIBLE)]
    description: _InText | None = None
    content: _InText | None = None
    source: _InText | NewsApiSource | None = None
    author: _InText | None = None
    published_at: _InDate | None = Field(default=None, description="ISO 8601 (1990-2100) or epoch seconds")
    publishedAt: _InDate | None = Field(default=None, description="NewsAPI's name for `published_at`")  # noqa: N815
    urlToImage: _InText | None = Field(default=None, description="accepted, not kept")  # noqa: N815
    language_hint: Annotated[str | None, Strict(), Field(max_length=16)] = None

    def to_raw(self, *, origin: str = "push") -> RawArticle:
        """The `RawArticle` this becomes; `ValueError` naming the field when its text leaves nothing valid."""
        source = self.source
        if isinstance(source, NewsApiSource):
            source = source.name if source.name and source.name.strip() else source.id
        content = _TRUNCATION_MARKER.sub("", self.content) if self.content else self.content
        published = self.published_at if self.published_at is not None else self.publishedAt
        data: dict[str, Any] = {
            "url": self.url,
            "title": self.title,
            "description": self.description,
            "content": content,
            "author": self.author,
            "published_at": published if published is not None else _utc_now(),
            "origin": origin,
            "language_hint": self.language_hint,
        }
        if source is not None and clean_text(source, markup=True):  # a blank source is no source: "unknown"
            data["source"] = source
        try:
            return RawArticle.model_validate(data, strict=False)
        except ValidationError as exc:
            raise ValueError(
                "; ".join(f"{'.'.join(map(str, e['loc'])) or 'article'}: {e['msg']}" for e in exc.errors())
            ) from None

    @model_validator(mode="after")
    def _becomes_a_raw_article(self) -> ArticleIn:
        # Checked here so that the request is refused whole, with the field named, before anything is written.
        self.to_raw()
        return self


class Analysis(_Frozen):
    """What the inference engine says about one article."""

    sentiment: Sentiment
    sentiment_score: Annotated[float, Field(ge=-1.0, le=1.0)]
    keywords: Annotated[list[str], Field(max_length=20)] = Field(default_factory=list)
    entities: Annotated[list[Entity], Field(max_length=50)] = Field(default_factory=list)
    category: Annotated[str, Field(min_length=1, max_length=32)] = "other"
    language: Annotated[str, Field(min_length=2, max_length=16)] = "und"
    importance_score: Annotated[float, Field(ge=0.0, le=10.0)] = 0.0
    summary: Annotated[str | None, _optional_text(1_000)] = None
    providers: dict[str, str] = Field(default_factory=dict)
    models: dict[str, str] = Field(default_factory=dict)
    engine_version: str = "0"
    latency_ms: Annotated[float, Field(ge=0.0)] = 0.0
    # The one embedding the heads read (`models.embedding` names its space), int8 in base64
    # (common.vectors); what the story stage compares articles by. None from the lexicon tier.
    embedding: Annotated[str | None, Field(pattern=EMBEDDING_PATTERN)] = None

    @field_validator("keywords", mode="before")
    @classmethod
    def _dedupe_keywords(cls, value: Any) -> Any:
        if isinstance(value, list):
            seen: dict[str, str] = {}
            for item in value:
                if isinstance(item, str):
                    text = clean_text(item, markup=False)[:100]
                    if text and text.casefold() not in seen:
                        seen[text.casefold()] = text
            return list(seen.values())[:20]
        return value


class AnalyzedArticle(ArticleBase):
    """An article with its analysis (Kafka topic `news.analyzed`, Redis records, WebSocket `data`)."""

    analysis: Analysis
    analyzed_at: UtcDatetime = Field(default_factory=_utc_now)

    @classmethod
    def from_raw(cls, raw: RawArticle, analysis: Analysis) -> AnalyzedArticle:
        return cls.model_validate({**raw.model_dump(), "analysis": analysis}, strict=False, context=TEXT_ONLY)


class DeadLetter(_Frozen):
    """A message a stage could not process (Kafka topic `news.dlq`): the original bytes and why."""

    stage: str
    error: str
    attempts: int = 1
    first_failure: UtcDatetime = Field(default_factory=_utc_now)
    last_failure: UtcDatetime = Field(default_factory=_utc_now)
    original_topic: str | None = None
    original_key: str | None = None
    original: str
    original_encoding: Literal["utf-8", "base64"]

    @classmethod
    def wrap(
        cls,
        payload: bytes | str | None,
        *,
        stage: str,
        error: str,
        key: bytes | str | None = None,
        topic: str | None = None,
        attempts: int = 1,
        first_failure: datetime | None = None,
    ) -> DeadLetter:
        """Keep the original payload byte for byte: UTF-8 text as is, anything else base64."""
        raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else (payload or b"")
        try:
            original, encoding = raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            original, encoding = base64.b64encode(raw).decode("ascii"), "base64"
        key_text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        now = _utc_now()
        return cls(
            stage=stage,
            error=error[:2_000],
            attempts=attempts,
            first_failure=first_failure or now,
            last_failure=now,
            original_topic=topic,
            original_key=key_text,
            original=original,
            original_encoding=encoding,  # type: ignore[arg-type]
        )

    def original_bytes(self) -> bytes:
        if self.original_encoding == "base64":
            return base64.b64decode(self.original)
        return self.original.encode("utf-8")
