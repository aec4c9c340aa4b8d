"""Local stand-ins for paid APIs, speaking their real wire format: an OpenAI-compatible chat-completions
server and Hugging Face's Inference Providers router. Each runs uvicorn in a thread on a free loopback port.

Behaviour is scripted per server: `mode` is one of "ok", "malformed", "429", "500", "slow" (and, for Hugging
Face, "401", "402", "404" with the router's error bodies); `fail_times`
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


# The router's answers for a model it cannot serve, a retired route, and a spent account (their `error` texts).
_HF_ERRORS = {
    "401": (401, {"error": "Invalid credentials in Authorization header"}),
    "402": (402, {"error": "You have exceeded your monthly included credits for Inference Providers."}),
    "404": (404, {"error": "Model not supported by provider hf-inference"}),
}


def _hf_app(server_ref: list[FakeServer]) -> FastAPI:
    """Hugging Face Inference Providers' router: `/{provider}/models/{model}` (the hf-inference pipelines),
    `/v1/chat/completions` (OpenAI-compatible), and the retired serverless route `/models/{model}` answering 410."""
    app = FastAPI()

    async def common(request: Request, record: dict[str, Any]) -> tuple[str, Response | None]:
        server = server_ref[0]
        body = orjson.loads(await request.body())
        server.requests.append({**record, **body})
        if not request.headers.get("authorization", "").startswith("Bearer hf_"):
            status, error = _HF_ERRORS["401"]
            return "ok", JSONResponse(error, status_code=status)
        mode = server.current_mode()
        if mode == "slow":
            await asyncio.sleep(server.slow_s)
        if mode in _HF_ERRORS:
            status, error = _HF_ERRORS[mode]
            return mode, JSONResponse(error, status_code=status)
        failure = _error(mode, server, openai_style=record["route"] == "chat")
        if failure is not None:
            return mode, failure
        return mode, None

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        mode, failure = await common(request, {"route": "chat"})
        if failure is not None:
            return failure
        body = server_ref[0].requests[-1]
        return JSONResponse(
            {
                "id": "chatcmpl-fake-hf",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "A summary from the fake Hugging Face model."},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 90, "completion_tokens": 12, "total_tokens": 102},
            }
        )

    @app.post("/models/{model:path}")
    async def retired(model: str) -> Response:
        return JSONResponse(
            {
                "error": "https://api-inference.huggingface.co is no longer supported. "
                "Please use https://router.huggingface.co/hf-inference instead."
            },
            status_code=410,
        )

    @app.post("/{provider}/models/{model:path}")
    async def pipeline(provider: str, model: str, request: Request) -> Response:
        mode, failure = await common(request, {"route": "pipeline", "provider": provider, "model": model})
        if failure is not None:
            return failure
        if provider != "hf-inference":
            return JSONResponse({"error": f"Model {model} is not supported by provider {provider}"}, 404)
        body = server_ref[0].requests[-1]
        params = body.get("parameters") or {}
        if "candidate_labels" in params:  # zero-shot: one {label, score} per candidate, best first
            labels = list(params["candidate_labels"])
            scores = [0.6] + [0.4 / (len(labels) - 1)] * (len(labels) - 1)
            return JSONResponse([{"label": lab, "score": sc} for lab, sc in zip(labels, scores, strict=True)])
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
