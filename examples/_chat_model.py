"""The examples' chat model: langchain-core's ``GenericFakeChatModel`` saying one scripted reply,
with native async paths.

``GenericFakeChatModel`` implements only the sync ``_generate`` and ``_stream``; LangChain runs
those from ``ainvoke``/``astream`` in a thread pool, one hop per streamed word. Its replies are
computed in memory, so the hops buy nothing, and on a busy machine each one waits for the GIL
(up to the 5 ms switch interval), which made a streamed fake turn look ten times slower than an
invoked one. Here the async paths run the same code on the event loop. Chunks, callbacks
(``on_llm_new_token``) and spans are those of the parent class.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

__all__ = ["ScriptedChatModel", "scripted"]


class ScriptedChatModel(GenericFakeChatModel):
    """``GenericFakeChatModel`` with async generation and streaming on the event loop, and a
    model name (spans report it as ``gen_ai.request.model``)."""

    model_name: str = "scripted-fake"

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._generate(messages, stop=stop, **kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._stream(messages, stop=stop, **kwargs):
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


def scripted(reply: str, model_name: str = "scripted-fake") -> ScriptedChatModel:
    """A chat model whose next (and only) answer is ``reply``."""
    return ScriptedChatModel(messages=iter([AIMessage(reply)]), model_name=model_name)
