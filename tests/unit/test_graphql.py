"""GraphQL schema (consumer/graphql.py): the committed snapshot, and the limits that refuse a query before
anything is read (depth, tokens, aliases, estimated cost, page sizes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from graphql import parse

from consumer.graphql import MAX_COST, MAX_DEPTH, query_cost, schema, schema_text

SNAPSHOT = Path(__file__).resolve().parents[2] / "consumer" / "schema.graphql"


def test_schema_matches_the_committed_snapshot() -> None:
    assert SNAPSHOT.read_text(encoding="utf-8") == schema_text(), (
        "the GraphQL schema changed: run `make graphql-schema` and commit consumer/schema.graphql"
    )


def test_field_names_are_the_rest_names() -> None:
    text = schema_text()
    assert "published_at: DateTime!" in text
    assert "sentiment_score: Float!" in text
    assert "new_analysis(filters: ArticleFilterInput = null): Article!" in text
    assert "publishedAt" not in text


async def run(query: str, variables: dict[str, Any] | None = None) -> list[str]:
    """The error messages of executing `query` with no store behind it (a refused query reads nothing)."""
    result = await schema.execute(query, variable_values=variables, context_value={})
    return [e.message for e in result.errors or []]


def test_cost_multiplies_page_sizes() -> None:
    # A leaf costs 1; a field with children costs its page size times (1 + what is below it).
    assert query_cost(parse('{ article(id: "x") { id title } }')) == 1 * (1 + 2)
    assert query_cost(parse("{ trends { window_minutes } }")) == 20 * (1 + 1)  # trends' default page
    # articles: 100 * (1 + nodes); nodes: 1 * (1 + id + title)
    assert query_cost(parse("{ articles(limit: 100) { nodes { id title } } }")) == 100 * (1 + 3)
    # stories: 10 * (1 + nodes); nodes: 1 * (1 + id + articles); articles: 50 * (1 + id)
    query = "{ stories(limit: 10) { nodes { id articles(limit: 50) { id } } } }"
    assert query_cost(parse(query)) == 10 * (1 + (1 + 1 + 50 * 2))


def test_cost_follows_variables_and_fragments() -> None:
    query = "query($n: Int!) { articles(limit: $n) { ...f } } fragment f on ArticleConnection { nodes { id } }"
    assert query_cost(parse(query), {"n": 7}) == 7 * (1 + 1 * (1 + 1))
    # A variable not given counts as the largest page.
    assert query_cost(parse(query), {}) == 200 * (1 + 2)


async def test_a_costly_query_is_refused_before_it_runs() -> None:
    query = "{ stories(limit: 200) { nodes { articles(limit: 200) { id title } } } }"
    assert query_cost(parse(query)) > MAX_COST
    errors = await run(query)
    assert len(errors) == 1 and "estimated cost" in errors[0] and str(MAX_COST) in errors[0]


async def test_a_deep_query_is_refused() -> None:
    inner = "id"
    for _ in range(MAX_DEPTH):  # article > story > articles > story > ... deeper than the limit
        inner = f"story {{ articles(limit: 1) {{ {inner} }} }}"
    errors = await run(f'{{ article(id: "x") {{ {inner} }} }}')
    assert errors and "exceeds maximum operation depth" in errors[0]


async def test_too_many_tokens_and_aliases_are_refused() -> None:
    many = " ".join(f'a{i}: article(id: "x") {{ id }}' for i in range(40))
    errors = await run("{ " + many + " }")
    assert errors and any("aliases" in e for e in errors)
    huge = '{ article(id: "x") { ' + " ".join(["id"] * 2_500) + " } }"
    errors = await run(huge)
    assert errors and "token" in errors[0].lower()


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("{ articles(limit: 0) { nodes { id } } }", "limit: must be between 1 and 200, not 0"),
        ("{ articles(limit: 201) { nodes { id } } }", "limit: must be between 1 and 200, not 201"),
        ('{ articles(filters: {source: "   "}) { nodes { id } } }', "filters: source"),
        ('{ entity_timeline(id: "person:x", bucket: "2h") { id } }', "bucket: '2h' is not one of 15m, 1h, 1d"),
        ('{ top_keywords(window: "3d") { id } }', "window: '3d' is not one of 15m, 1h, 24h, 7d"),
        ('{ sentiment_stats(bucket: "7m") { bucket_seconds } }', "bucket: '7m' is not a valid value"),
        ("{ search(size: 101) { total } }", "size: must be between 1 and 100, not 101"),
        ('{ search(q: "a", after: "nope") { total } }', "search: after"),
    ],
)
async def test_bad_arguments_get_an_error_naming_them(query: str, needle: str) -> None:
    errors = await run(query)
    assert len(errors) == 1 and needle in errors[0], errors
