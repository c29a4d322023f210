"""A loopback HTTP server and a chat model that calls it, as a real model client does: its
HTTP requests go through httpx, instrumented with OpenTelemetry's httpx instrumentation, so
each call starts a real CLIENT span inside the model call."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.trace import TracerProvider
from pydantic import ConfigDict, PrivateAttr


class _Answer(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = b"answer to " + self.rfile.read(length)
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


class LoopbackServer:
    """An HTTP server on 127.0.0.1 (a free port) answering every POST with its body."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1/chat"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class LoopbackChatModel(BaseChatModel):
    """A chat model whose every call is an HTTP POST of the last message to ``url``, through
    httpx clients instrumented with the given tracer provider."""

    url: str
    tracer_provider: Any
    model_config = ConfigDict(arbitrary_types_allowed=True)
    _client: httpx.Client = PrivateAttr()
    _async_client: httpx.AsyncClient = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        provider: TracerProvider = self.tracer_provider
        self._client = httpx.Client()
        self._async_client = httpx.AsyncClient()
        HTTPXClientInstrumentor.instrument_client(self._client, tracer_provider=provider)
        HTTPXClientInstrumentor.instrument_client(self._async_client, tracer_provider=provider)

    @property
    def _llm_type(self) -> str:
        return "loopback"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self._client.post(self.url, content=str(messages[-1].content)).text
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        response = await self._async_client.post(self.url, content=str(messages[-1].content))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(response.text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        with self._client.stream("POST", self.url, content=str(messages[-1].content)) as reply:
            for word in reply.read().decode().split(" "):
                yield ChatGenerationChunk(message=AIMessageChunk(word + " "))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async with self._async_client.stream(
            "POST", self.url, content=str(messages[-1].content)
        ) as reply:
            for word in (await reply.aread()).decode().split(" "):
                yield ChatGenerationChunk(message=AIMessageChunk(word + " "))
