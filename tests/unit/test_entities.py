"""inference.entities: junk filter, canonical ids and types, determinism, and the NER model end to end."""

from __future__ import annotations

import pytest

from common.schemas import Entity
from inference import entities
from inference.canonical import entity_id


def _ids(found: list[Entity]) -> list[str]:
    return [e.id or "" for e in found]


@pytest.mark.parametrize(
    "span",
    [
        "Topshop Wants You To Buy 'Mom Jeans'",
        'more,"?or',
        "Stephen Colbert-tore",
        "Trump Says He Will",
        "the president",
        "1999",
        "X",
        "(Reuters",
        "Ministry of Foreign Affairs of the Russian Federation",
        "Bank of",
    ],
)
def test_junk_spans_are_dropped(span: str) -> None:
    assert entities.is_junk(span)


@pytest.mark.parametrize(
    "span",
    ["Donald Trump", "U.S.", "Coca-Cola", "O'Brien", "McDonald's", "Federal Bureau of Investigation", "iPhone", "AT&T"],
)
def test_names_are_kept(span: str) -> None:
    assert not entities.is_junk(span)


def test_short_forms_resolve_to_the_longest_mention_with_one_type() -> None:
    found = entities.canonicalize(
        [
            Entity(text="Donald Trump", type="PERSON"),
            Entity(text="Trump", type="ORG"),
            Entity(text="President Trump", type="PERSON"),
            Entity(text="Mr Trump", type="PERSON"),
        ]
    )
    assert _ids(found) == ["person:donald_trump"]
    assert found[0].name == "Donald Trump" and found[0].type == "PERSON" and found[0].text == "Donald Trump"


def test_short_form_resolves_within_the_article_without_the_alias_table() -> None:
    found = entities.canonicalize(
        [Entity(text="Angela Zuckerfeld", type="PERSON"), Entity(text="Zuckerfeld", type="ORG")]
    )
    assert _ids(found) == ["person:angela_zuckerfeld"]


def test_a_person_name_does_not_swallow_a_longer_org() -> None:
    found = entities.canonicalize(
        [Entity(text="Donald Trump", type="PERSON"), Entity(text="Trump Organization", type="ORG")]
    )
    assert sorted(_ids(found)) == ["org:trump_organization", "person:donald_trump"]


def test_united_states_surface_forms_share_one_id() -> None:
    forms = ["US", "U.S.", "United States", "the United States", "America"]
    ids = {_ids(entities.canonicalize([Entity(text=f, type=t)]))[0] for f in forms for t in ("LOC", "ORG")}
    assert ids == {entity_id("LOC", "United States")}


def test_titles_are_stripped_from_people_only() -> None:
    assert entities.strip_title("President Donald J. Trump") == "Donald Trump"
    assert entities.strip_title("General Motors", person=False) == "General Motors"
    assert entities.strip_title("트럼프 대통령") == "트럼프"


def test_canonicalize_is_deterministic_and_order_of_first_mention() -> None:
    items = [
        Entity(text="Paris", type="LOC"),
        Entity(text="Emmanuel Macron", type="PERSON"),
        Entity(text="Macron", type="PERSON"),
        Entity(text="Paris", type="ORG"),
        Entity(text="Paris", type="LOC"),
    ]
    first = entities.canonicalize(items)
    assert first == entities.canonicalize(list(items))
    assert _ids(first) == ["loc:paris", "person:emmanuel_macron"]


def test_english_entities_end_to_end() -> None:
    text = (
        "Donald Trump met Angela Merkel in Washington on Friday. President Trump said the United States and "
        "Germany would work with the European Union and NATO. Trump later flew to New York."
    )
    first = entities.english_entities([text, "", text])
    assert first[0] == first[2] and first[1] == []
    ids = _ids(first[0])
    assert "person:donald_trump" in ids and "person:angela_merkel" in ids
    assert sum(i.endswith("trump") for i in ids) == 1
    assert all(not entities.is_junk(e.text) for e in first[0])
    assert all(e.type in {"PERSON", "ORG", "LOC", "MISC"} and e.id == entity_id(e.type, e.name or "") for e in first[0])


def test_text_beyond_the_bound_is_not_read() -> None:
    tail = " Barack Obama spoke."
    text = "x " * (entities.ENTITY_CHARS // 2) + tail
    assert entities.english_entities([text]) == [[]]
