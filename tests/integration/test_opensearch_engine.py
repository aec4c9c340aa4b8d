"""The OpenSearch that scripts/opensearch.sh starts has what the search index relies on.

The minimal distribution ships without analyzers beyond `standard`; the script adds the
analysis-common module. These tests fail if it is missing or broken: the english analyzer must stem,
cjk_bigram must exist, and a document must round-trip through index, search and delete with the
async client the services use.
"""

from __future__ import annotations

from opensearchpy import AsyncOpenSearch, NotFoundError

__all__: list[str] = []


async def _tokens(client: AsyncOpenSearch, body: dict[str, object]) -> list[str]:
    answer = await client.indices.analyze(body=body)
    return [t["token"] for t in answer["tokens"]]


async def test_english_analyzer_stems(opensearch: AsyncOpenSearch) -> None:
    tokens = await _tokens(opensearch, {"analyzer": "english", "text": "The runners were running quickly"})
    # "the" is a stop word; porter stemming turns running into run.
    assert tokens == ["runner", "were", "run", "quickli"]
    stemmed = await _tokens(
        opensearch,
        {
            "tokenizer": "standard",
            "filter": ["lowercase", {"type": "stemmer", "language": "english"}],
            "text": "Elections",
        },
    )
    assert stemmed == ["elect"]


async def test_cjk_bigram_splits_korean(opensearch: AsyncOpenSearch) -> None:
    tokens = await _tokens(
        opensearch, {"tokenizer": "standard", "filter": ["cjk_width", "lowercase", "cjk_bigram"], "text": "삼성전자가"}
    )
    # The bigrams of the bare word are a subset of those of the word with a particle: what lets
    # a query for 삼성전자 match 삼성전자가.
    assert tokens == ["삼성", "성전", "전자", "자가"]
    assert set(await _tokens(opensearch, {"analyzer": "cjk", "text": "삼성전자"})) <= set(tokens)


async def test_index_search_delete(opensearch: AsyncOpenSearch, search_prefix: str) -> None:
    index = f"{search_prefix}articles"
    await opensearch.indices.create(
        index=index,
        body={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {"properties": {"title": {"type": "text", "analyzer": "english"}}},
        },
    )
    await opensearch.index(index=index, id="a1", body={"title": "Markets rallied as investors returned"}, refresh=True)

    found = await opensearch.search(index=index, body={"query": {"match": {"title": "rally"}}})
    assert [hit["_id"] for hit in found["hits"]["hits"]] == ["a1"]
    missed = await opensearch.search(index=index, body={"query": {"match": {"title": "football"}}})
    assert missed["hits"]["total"]["value"] == 0

    await opensearch.delete(index=index, id="a1", refresh=True)
    gone = await opensearch.search(index=index, body={"query": {"match_all": {}}})
    assert gone["hits"]["total"]["value"] == 0
    try:
        await opensearch.get(index=index, id="a1")
    except NotFoundError:
        pass
    else:
        raise AssertionError("a deleted document was still returned")
