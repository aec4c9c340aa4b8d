"""Local stand-ins for paid APIs, speaking their real wire format: an OpenAI-compatible chat-completions
server and a Hugging Face Inference API server. Each runs uvicorn in a thread on a free loopback port.

Behaviour is scripted per server: `mode` is one of "ok", "malformed", "429", "500", "slow"; `fail_times`
makes the first N calls fail with that mode and later calls answer "ok" (to test retries).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from harness.infra import free_port

__all__ = ["FakeServer", "fake_huggingface", "fake_openai"]


class FakeServer:
    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mode = "ok"
        self.fail_times: int | None = None
        self.retry_after = "1"
        self.slow_s = 5.0
        self.calls = 0
        self.requests: list[dict[str, Any]] = []
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def current_mode(self) -> str:
        self.calls += 1
        if self.fail_times is not None and self.calls > self.fail_times:
            return "ok"
        return self.mode

    def start(self) -> FakeServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("fake server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def _error(mode: str, server: FakeServer, openai_style: bool) -> Response | None:
    if mode == "429":
        body = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
        if not openai_style:
            body = {"error": "Rate limit reached. You reached free usage limit (reset hourly)."}  # type: ignore[dict-item]
        return JSONResponse(body, status_code=429, headers={"Retry-After": server.retry_after})
    if mode == "500":
        if openai_style:
            return JSONResponse({"error": {"message": "The server had an error", "type": "server_error"}}, 500)
        return JSONResponse({"error": "Model is currently loading", "estimated_time": 20.0}, status_code=503)
    if mode == "malformed":
        return PlainTextResponse("{not json", media_type="application/json")
    return None


def _openai_app(server_ref: list[FakeServer]) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        server = server_ref[0]
        body = orjson.loads(await request.body())
        server.requests.append(body)
        mode = server.current_mode()
        if mode == "slow":
            await asyncio.sleep(server.slow_s)
        failure = _error(mode, server, openai_style=True)
        if failure is not None and mode != "malformed":
            return failure
        text = " ".join(m["content"] for m in body["messages"] if m["role"] == "user")
        negative = any(w in text.lower() for w in ("kill", "crash", "war", "dead"))
        content = orjson.dumps(
            {
                "sentiment": "negative" if negative else "neutral",
                "sentiment_score": -0.7 if negative else 0.0,
                "category": "world",
                "summary": "A short summary from the fake LLM.",
            }
        ).decode()
        if mode == "malformed":  # the HTTP answer is fine; the model's JSON inside it is not
            content = '{"sentiment": "sort of happy", "category": '
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160},
            }
        )

    return app


def _hf_app(server_ref: list[FakeServer]) -> FastAPI:
    app = FastAPI()

    @app.post("/models/{model:path}")
    async def model(model: str, request: Request) -> Response:
        server = server_ref[0]
        body = orjson.loads(await request.body())
        server.requests.append({"model": model, **body})
        mode = server.current_mode()
        if mode == "slow":
            await asyncio.sleep(server.slow_s)
        failure = _error(mode, server, openai_style=False)
        if failure is not None:
            return failure
        params = body.get("parameters") or {}
        if "candidate_labels" in params:
            labels = list(params["candidate_labels"])
            scores = [1 / len(labels)] * len(labels)
            return JSONResponse({"sequence": body["inputs"], "labels": labels, "scores": scores})
        if "summar" in model or "cnn" in model:  # distilbart-cnn, bart-large-cnn, *summarization*
            return JSONResponse([{"summary_text": "A summary from the fake Hugging Face model."}])
        return JSONResponse(
            [
                [
                    {"label": "negative", "score": 0.8},
                    {"label": "neutral", "score": 0.15},
                    {"label": "positive", "score": 0.05},
                ]
            ]
        )

    return app


@contextmanager
def fake_openai() -> Iterator[FakeServer]:
    ref: list[FakeServer] = []
    server = FakeServer(_openai_app(ref))
    ref.append(server)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def fake_huggingface() -> Iterator[FakeServer]:
    ref: list[FakeServer] = []
    server = FakeServer(_hf_app(ref))
    ref.append(server)
    server.start()
    try:
        yield server
    finally:
        server.stop()
