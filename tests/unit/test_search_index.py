"""The search index's definition: names, the template, the document of an article, the external version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from common.schemas import AnalyzedArticle
from common.search_index import (
    CJK_FIELDS,
    MAPPINGS,
    SEARCH_FIELDS,
    alias_name,
    document,
    has_cjk,
    index_name,
    template_body,
    version_of,
)
from common.settings import OpenSearchSettings, ServiceSettings
from tests.integration.test_store import make_article


def test_names_are_prefixed_and_monthly_in_utc() -> None:
    assert alias_name("t1-") == "t1-news-articles"
    assert index_name("t1-", datetime(2024, 5, 31, 23, 30, tzinfo=UTC)) == "t1-news-articles-2024.05"
    # 1 June 01:30 in UTC+3 is still 31 May in UTC
    east = timezone(timedelta(hours=3))
    assert index_name("", datetime(2024, 6, 1, 1, 30, tzinfo=east)) == "news-articles-2024.05"


def test_template_matches_the_months_joins_the_alias_and_is_strict() -> None:
    body = template_body(OpenSearchSettings(index_prefix="p-", replicas=1, shards=2))
    assert body["index_patterns"] == ["p-news-articles-*"]
    assert body["template"]["aliases"] == {"p-news-articles": {}}
    assert body["template"]["mappings"]["dynamic"] == "strict"
    index = body["template"]["settings"]["index"]
    assert (index["number_of_shards"], index["number_of_replicas"]) == (2, 1)


def test_every_text_field_has_english_and_cjk_analyses() -> None:
    props = MAPPINGS["properties"]
    for name in ("title", "description", "content"):
        assert props[name]["analyzer"] == "standard"
        assert set(props[name]["fields"]) == {"en"}  # no third analysis of every English body
        assert props[name]["fields"]["en"]["analyzer"] == "english"
        assert props[CJK_FIELDS[name]]["analyzer"] == "cjk"
    assert props["source"]["normalizer"] == "lowercase"
    assert props["url"]["index"] is False
    for field in SEARCH_FIELDS:
        path = field.split("^")[0].split(".")
        node = props[path[0]]
        for part in path[1:]:
            node = node.get("fields", node.get("properties", {}))[part]
        assert node["type"] == "text", field


def test_document_has_only_mapped_fields_and_skips_absent_ones() -> None:
    article = make_article(1, entities=("Samsung",), content=None)
    doc = document(article)
    assert set(doc) <= set(MAPPINGS["properties"])
    assert doc["id"] == article.id
    assert "content" not in doc and "story_id" not in doc
    assert doc["entities"] and set(doc["entities"][0]) == {"id", "name", "type"}
    assert doc["published_at"].startswith("2024-05-01T12:01")


def test_cjk_copies_are_written_only_for_text_with_cjk_characters() -> None:
    assert has_cjk("삼성전자가") and has_cjk("東京") and has_cjk("カタカナ") and has_cjk("ㄱ")
    assert not has_cjk("Markets rally; prices fell 3%") and not has_cjk("Ærøskøbing, São Paulo, Москва")
    english = document(make_article(1, title="Markets rally", content="Prices rose."))
    assert not set(CJK_FIELDS.values()) & set(english)
    mixed = document(make_article(2, title="Samsung (삼성전자) results", content="Prices rose."))
    assert mixed["title_cjk"] == mixed["title"] and "content_cjk" not in mixed
    assert set(mixed) <= set(MAPPINGS["properties"])


def test_version_is_analyzed_at_in_microseconds_and_grows_with_it() -> None:
    at = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    older = make_article(1, analyzed=at)
    newer = make_article(1, analyzed=at + timedelta(microseconds=1))
    assert version_of(older) == int(at.timestamp()) * 1_000_000 + 123456
    assert version_of(newer) == version_of(older) + 1
    assert isinstance(older, AnalyzedArticle)


def test_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSEARCH__URL", "http://search:9200")
    monkeypatch.setenv("OPENSEARCH__INDEX_PREFIX", "staging-")
    settings = ServiceSettings()
    assert settings.opensearch.url == "http://search:9200"
    assert settings.opensearch.index_prefix == "staging-"
    monkeypatch.setenv("OPENSEARCH__INDEX_PREFIX", "Bad Prefix")
    with pytest.raises(ValueError, match="index_prefix"):
        ServiceSettings()
