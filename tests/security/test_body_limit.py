"""common.webapp.BodySizeLimit: 413 with a reason for a declared or a streamed body over the limit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from common.webapp import BodySizeLimit

pytestmark = pytest.mark.unit


def _app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(BodySizeLimit, max_bytes=1024)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    return app


async def test_small_body_passes_large_ones_get_413_with_a_reason() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t") as client:
        assert (await client.post("/echo", content=b"x" * 1000)).json() == {"size": 1000}
        declared = await client.post("/echo", content=b"x" * 5000)
        assert declared.status_code == 413
        assert "limit of 1024 bytes" in declared.json()["detail"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams in
            for _ in range(10):
                yield b"y" * 300

        streamed = await client.post("/echo", content=chunks())
        assert streamed.status_code == 413
        assert "over the limit" in streamed.json()["detail"]


def _wire_app() -> FastAPI:
    from fastapi import APIRouter

    from common.webapp import JsonBodyRoute, install_error_handlers

    app = FastAPI()
    install_error_handlers(app)
    router = APIRouter(route_class=JsonBodyRoute)

    @router.post("/items")
    async def items(body: dict[str, list[str]]) -> dict[str, int]:
        return {"items": sum(len(v) for v in body.values())}

    app.include_router(router)
    return app


@pytest.mark.parametrize(
    ("body", "loc", "says"),
    [
        (b'{"a": ["ok", "bad \\udb82"]}', ["body", "a", 1], "unpaired surrogate U+DB82"),
        (b'{"\\udf5e": []}', ["body", "\\udf5e"], "key text is not valid Unicode"),
        (b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", ["body", "a", *[0] * 31], "deeper than 32"),
        (b"[" * 5000 + b"]" * 5000, ["body", 1025], "depth limit exceeded"),
        (b'{"a": ["\xff"]}', ["body", 8], "body is not UTF-8: invalid start byte"),
    ],
)
async def test_json_bodies_that_are_not_unicode_or_too_deep_get_422_naming_where(
    body: bytes, loc: list[object], says: str
) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_wire_app()), base_url="http://t") as client:
        json_type = {"content-type": "application/json"}
        ok = await client.post("/items", content=b'{"a": ["x", "\\ud83d\\ude80"]}', headers=json_type)
        assert ok.json() == {"items": 2}
        response = await client.post("/items", content=body, headers=json_type)
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"][: len(loc)] == loc and says in error["msg"], error
