"""Hostile input on real processes: poison on Kafka goes to the DLQ with a reason while the stream flows;
markup, scripts, bidi/zero-width controls, 1 MB titles, emoji and mixed Korean/English are stored as text;
request size and batch limits answer 413/422 with a reason."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
import pytest

from common.schemas import DeadLetter, RawArticle
from common.settings import KafkaSettings
from harness.infra import ROOT
from harness.processes import ServiceProcess
from tests.support.chaos import Outcome, stored_ids, wait_until
from tests.support.worker_support import produce, read_topic, real_articles

pytestmark = pytest.mark.integration

WORKER = {"INFERENCE__TIER": "fast", "WORKER__BATCH_SIZE": "5", "WORKER__BATCH_TIMEOUT": "0.2"}


async def test_poison_goes_to_dlq_with_reasons_while_the_stream_flows(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    consumer = spawn("consumer")
    spawn("worker", env=WORKER)
    base = f"http://127.0.0.1:{consumer.port}"
    articles = real_articles(20)
    good = [(a.id.encode(), a.model_dump_json().encode()) for a in articles]
    valid = orjson.loads(articles[0].model_dump_json())
    poison = [
        (b"p-utf16", orjson.dumps(valid).decode().encode("utf-16")),  # right JSON, wrong encoding
        (b"p-latin1", '{"title": "caf\xe9"}'.encode("latin-1")),
        (b"p-array", b"[1, 2, 3]"),
        (b"p-null", b"null"),
        (b"p-nested", b"[" * 5000 + b"]" * 5000),
        (b"p-types", orjson.dumps({**valid, "published_at": {"not": "a date"}, "title": 42})),
        (b"p-huge", b'{"title": "' + b"a" * (12 * 2**20) + b'"}'),
    ]
    await produce(kafka_settings, kafka_settings.topics.raw_topic, good[:10] + poison + good[10:])
    await wait_until(lambda: _have(base, {a.id for a in articles}), 90, "every good article stored")
    letters = await read_topic(
        kafka_settings, kafka_settings.topics.dlq_topic, until=lambda rs: len(rs) >= len(poison), timeout=60
    )
    by_key = {r.key: DeadLetter.model_validate_json(r.value) for r in letters}
    listed = await stored_ids(base)
    outcome = Outcome("poison-kafka", f"{len(poison)} poison messages among 20 articles on news.raw", 20)
    outcome.count({a.id for a in articles}, listed)
    outcome.notes.append(f"dead letters: {sorted(k.decode() for k in by_key)}")
    outcome.write()
    assert by_key.keys() == {k for k, _ in poison}
    for key, letter in by_key.items():
        assert letter.stage == "stream_worker" and letter.error, key
    assert by_key[b"p-utf16"].original_bytes() == poison[0][1]
    assert "Invalid JSON" in by_key[b"p-latin1"].error or "utf-8" in by_key[b"p-latin1"].error.lower()
    assert "12582" in by_key[b"p-huge"].error  # says how big the message was
    assert outcome.lost == 0 and outcome.duplicates_rest == 0


async def _have(base: str, ids: set[str]) -> bool:
    return ids <= set(await stored_ids(base))


HOSTILE = {
    "script": "<script>alert('x')</script><b>Markets</b> rally &amp; <img src=x onerror=alert(1)>close up",
    "rtl": "\u202eBreaking\u202c news: \u05d7\u05d3\u05e9\u05d5\u05ea \u0623\u062e\u0628\u0627\u0631 today",
    "zero-width": "Zero\u200bwidth\u200d joiners\ufeff inside",
    "huge": "Huge title " + "word " * 210_000,  # about 1 MB
    "emoji": "Rocket launch \U0001f680 succeeds \U0001f389\U0001f1f0\U0001f1f7",
    "mixed": "삼성전자 Samsung unveils 차세대 HBM4 memory for AI",
}


async def test_hostile_text_is_stored_as_text(spawn: Callable[..., ServiceProcess]) -> None:
    consumer = spawn("consumer")
    spawn("worker", env=WORKER)
    producer = spawn("producer", env={"PRODUCER__POLLING": "false"})
    items = [
        {"url": f"https://hostile.example.org/{name}", "title": title, "published_at": "2024-11-26T05:00:00Z"}
        for name, title in HOSTILE.items()
    ]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{producer.port}", timeout=60) as client:
        response = await client.post("/articles", json={"articles": items})
    assert response.status_code == 200, response.text[:500]
    results = response.json()["items"]
    assert [r["status"] for r in results] == ["accepted"] * len(items), results
    ids = {name: r["id"] for name, r in zip(HOSTILE, results, strict=True)}
    base = f"http://127.0.0.1:{consumer.port}"
    await wait_until(lambda: _have(base, set(ids.values())), 90, "hostile articles stored")
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        title = {name: (await client.get(f"/news/{i}")).json()["title"] for name, i in ids.items()}
    assert "<" not in title["script"] and "alert" not in title["script"], title["script"]
    assert "Markets rally & close up" in " ".join(title["script"].split())
    assert "\u202e" not in title["rtl"] and "\u05d7\u05d3\u05e9\u05d5\u05ea" in title["rtl"]
    assert not any(c in title["zero-width"] for c in "\u200b\u200d\ufeff")
    assert len(title["huge"]) <= 500
    assert "\U0001f680" in title["emoji"] and "\U0001f1f0\U0001f1f7" in title["emoji"]
    assert title["mixed"] == HOSTILE["mixed"]


def test_dashboard_renders_text_only() -> None:
    """The dashboard never turns article text into markup (no v-html, innerHTML or document.write)."""
    offenders = [
        f"{path.relative_to(ROOT)}: {needle}"
        for path in (ROOT / "frontend" / "src").rglob("*")
        if path.suffix in {".vue", ".ts"}
        for needle in ("v-html", "innerHTML", "outerHTML", "document.write", "insertAdjacentHTML")
        if needle in path.read_text(errors="replace")
    ]
    assert not offenders


async def test_push_limits_answer_413_and_422_with_reasons(spawn: Callable[..., ServiceProcess]) -> None:
    producer = spawn("producer", env={"PRODUCER__POLLING": "false", "PRODUCER__MAX_PUSH_ITEMS": "10"})
    item = {"url": "https://limits.example.org/1", "title": "t", "published_at": "2024-11-26T05:00:00Z"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{producer.port}", timeout=60) as client:
        too_many = await client.post("/articles", json={"articles": [item] * 11})
        assert too_many.status_code == 413 and "at most 10" in too_many.json()["detail"]
        empty = await client.post("/articles", json={"articles": []})
        assert empty.status_code == 422 and empty.json()["detail"]
        not_json = await client.post("/articles", content=b"{nope", headers={"content-type": "application/json"})
        assert not_json.status_code == 422
        bad = await client.post("/articles", json={"articles": [item, {"title": "no url"}]})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "articles", 1, "url"]


async def test_push_body_over_the_size_limit_gets_413(spawn: Callable[..., ServiceProcess]) -> None:
    producer = spawn("producer", env={"PRODUCER__POLLING": "false"})
    body = b'{"articles": [{"url": "https://x.example.org/1", "title": "' + b"a" * (20 * 2**20) + b'"}]}'
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{producer.port}", timeout=60) as client:
        response = await client.post("/articles", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413, response.status_code


# --- text that is not Unicode, NUL bytes, deep nesting and oversized fields, on every write route ---

_URL = "https://hostile.example.org/wire"


def _article_json(title: str = '"Plain title"', url: str = f'"{_URL}"', extra: str = "") -> bytes:
    """One article as raw JSON text, so that escapes such as a lone `\\udb82` reach the server as written."""
    return f'{{"url": {url}, "title": {title}{extra}, "published_at": "2024-11-26T05:00:00Z"}}'.encode()


# (case, article JSON, expected status, the error's location inside the article, or None when accepted)
_WIRE_CASES: list[tuple[str, bytes, int, list[object] | None]] = [
    ("surrogate-value", _article_json(title='"bad \\udb82\\udb82 text"'), 422, ["title"]),
    ("surrogate-pair-ok", _article_json(title='"emoji \\ud83d\\ude80 ok"'), 200, None),
    ("surrogate-key", _article_json(extra=', "\\udf5e": 1'), 422, ["\\udf5e"]),
    ("surrogate-source-object", _article_json(extra=', "source": {"id": null, "name": "\\ud800"}'), 422, None),
    ("nul-in-title", _article_json(title='"nul\\u0000byte"', url=f'"{_URL}/nul"'), 200, None),
    ("nul-in-url", _article_json(url=f'"{_URL}\\u0000x"'), 422, ["url"]),
    ("deep-in-ignored-field", _article_json(extra=', "x": ' + "[" * 40 + "]" * 40), 422, None),
    ("oversized-title", _article_json(title='"' + "a" * 2_000_001 + '"'), 422, ["title"]),
    ("oversized-url", _article_json(url='"https://h.example.org/' + "a" * 2_100 + '"'), 422, ["url"]),
]


def _check(case: str, response: httpx.Response, status: int, where: list[object], inside: list[object] | None) -> None:
    assert response.status_code == status, (case, response.status_code, response.text[:500])
    if status == 422:
        errors = response.json()["detail"]
        assert errors and all(e["msg"] for e in errors), (case, errors)
        assert all(e["loc"][: len(where)] == where for e in errors), (case, errors)
        if inside is not None:
            assert [e["loc"][len(where) :] for e in errors] == [inside], (case, errors)


async def test_producer_refuses_hostile_wire_input_whole_and_produces_nothing(
    spawn: Callable[..., ServiceProcess], kafka_settings: KafkaSettings
) -> None:
    producer = spawn("producer", env={"PRODUCER__POLLING": "false"})
    headers = {"content-type": "application/json"}
    accepted: list[str] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{producer.port}", timeout=60) as client:
        for case, article, status, inside in _WIRE_CASES:
            # The hostile article second, after a good one: a refused request produces neither.
            good = _article_json(url=f'"https://hostile.example.org/good-{case}"')
            body = b'{"articles": [' + good + b", " + article + b"]}"
            response = await client.post("/articles", content=body, headers=headers)
            _check(case, response, status, ["body", "articles", 1], inside)
            if status == 200:
                accepted += [i["id"] for i in response.json()["items"] if i["status"] == "accepted"]
        deep = b'{"articles": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        nested = await client.post("/articles", content=deep, headers=headers)
        assert nested.status_code == 422 and "depth" in nested.text, nested.text[:300]
        too_big = await client.post(
            "/articles", content=b'{"articles": ["' + b"a" * 9 * 2**20 + b'"]}', headers=headers
        )
        assert too_big.status_code == 413
        assert (await client.get("/readyz")).status_code == 200  # still serving
    topics = kafka_settings.topics
    raw = await read_topic(kafka_settings, topics.raw_topic, until=lambda rs: len(rs) >= len(accepted), timeout=30)
    assert sorted(r.key.decode() for r in raw) == sorted(accepted)  # only the accepted requests' articles
    stored = {RawArticle.model_validate_json(r.value).title for r in raw}
    assert "nul byte" in stored and "emoji \U0001f680 ok" in stored
    assert await read_topic(kafka_settings, topics.dlq_topic, until=None, timeout=2) == []


def test_inference_refuses_hostile_wire_input_on_both_routes(spawn: Callable[..., ServiceProcess]) -> None:
    proc = spawn("inference", env={"INFERENCE__TIER": "fast"})
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=f"http://127.0.0.1:{proc.port}", timeout=60) as client:
        for case, article, status, inside in _WIRE_CASES:
            one = client.post("/v1/analyze", content=article, headers=headers)
            _check(case, one, status, ["body"], inside)
            good = _article_json(url='"https://hostile.example.org/good"')
            batch = client.post(
                "/v1/analyze/batch", content=b'{"articles": [' + good + b", " + article + b"]}", headers=headers
            )
            _check(case, batch, status, ["body", "articles", 1], inside)
            if status == 200:
                assert len(batch.json()["results"]) == 2
        for path in ("/v1/analyze", "/v1/analyze/batch"):
            nested = client.post(path, content=b"[" * 5000 + b"]" * 5000, headers=headers)
            assert nested.status_code == 422 and "depth" in nested.text, nested.text[:300]
            assert client.post(path, content=b"\xff\xfe{", headers=headers).status_code == 422  # not UTF-8
            assert client.post(path, content=b'"' + b"a" * 17 * 2**20 + b'"', headers=headers).status_code == 413
        assert client.get("/readyz").status_code == 200
