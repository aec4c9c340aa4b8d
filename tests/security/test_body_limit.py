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
