"""LangChain callback handlers that follow each turn: its unit IDs, spans and outcomes.

Attach one with ``config={"callbacks": [handler], "metadata": {"conversation_id": ...}}`` or
to an agent. Both handlers delegate to one :class:`~.turns.TurnTracker`; they differ only in
being sync (``BaseCallbackHandler``) or async (``AsyncCallbackHandler``).

A callback cannot make the turn's context current for the chain: LangChain runs callbacks in
copied contexts or other threads, so a ContextVar set here does not reliably reach the chain
(and may leak into the caller). The handler therefore only observes; the turn's context reaches
flag evaluations through :func:`~.router.experiment_branch` and
:func:`~.router.with_turn_context`, which read it from the ``RunnableConfig`` they are given.

Both handlers run inline (``run_inline = True``): their work is a few dictionary operations
and span calls, cheaper than LangChain's thread hop or task per handler call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult
from opentelemetry.trace import TracerProvider

from featbit_experiments.provider import FeatBitProvider

from .outcomes import TurnOutcomes
from .provider_link import ProviderLink
from .spans import CHAT, INVOKE_WORKFLOW, TEXT_COMPLETION, IdProtector, TurnSpans
from .turn_context import TurnContextReader
from .turns import TurnTracker


class TurnTracking:
    """Marks a handler that owns turns; routers look for it among a run's handlers.

    Args:
        reader: Which metadata keys carry which unit's ID (the defaults read
            ``conversation_id``, ``thread_id``, ``session_id``, ``user_id``, ``account_id``,
            ``workflow_id``).
        tracer_provider: Where spans go; the global tracer provider by default.
        turn_operation: ``"invoke_workflow"`` (default) or ``"invoke_agent"``.
        outcomes: Outcome metrics to record at the end of each turn, or None for none.
        privacy: Applied to unit IDs written to spans, e.g.
            ``featbit_experiments.privacy.Privacy.hashed(key)``; by default the provider's
            own setting, so spans never carry IDs the provider's sinks would not.
        provider: The FeatBit provider whose sinks receive the handler's guardrails
            (``fallback_used``) and whose privacy setting applies; by default the
            OpenFeature provider of the outcomes' client, else of the default domain, looked
            up when a turn starts.
    """

    tracker: TurnTracker

    def _setup(
        self,
        reader: TurnContextReader | None,
        tracer_provider: TracerProvider | None,
        turn_operation: str,
        outcomes: TurnOutcomes | None,
        privacy: IdProtector | None,
        provider: FeatBitProvider | None,
    ) -> None:
        spans = TurnSpans(tracer_provider, turn_operation=turn_operation)
        link = ProviderLink(provider, outcomes.client if outcomes is not None else None)
        self.tracker = TurnTracker(
            reader or TurnContextReader(), spans, outcomes, provider=link, privacy=privacy
        )


def _run_name(serialized: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> str:
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    if serialized:
        name = serialized.get("name")
        if isinstance(name, str) and name:
            return name
        ids = serialized.get("id")
        if isinstance(ids, list) and ids:
            return str(ids[-1])
    return "run"


class ExperimentCallbackHandler(BaseCallbackHandler, TurnTracking):
    """Sync handler: spans per turn, model and tool call; outcomes at the end of each turn.

    Args: see :class:`TurnTracking`.
    """

    run_inline = True

    def __init__(
        self,
        *,
        reader: TurnContextReader | None = None,
        tracer_provider: TracerProvider | None = None,
        turn_operation: str = INVOKE_WORKFLOW,
        outcomes: TurnOutcomes | None = None,
        privacy: IdProtector | None = None,
        provider: FeatBitProvider | None = None,
    ) -> None:
        super().__init__()
        self._setup(reader, tracer_provider, turn_operation, outcomes, privacy, provider)

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.tracker.start_run(run_id, parent_run_id, metadata, _run_name(serialized, kwargs))

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.tracker.end_run(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.tracker.end_run(run_id, error)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.tracker.start_model(
            run_id,
            parent_run_id,
            metadata,
            _run_name(serialized, kwargs),
            CHAT,
            kwargs.get("invocation_params"),
        )

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.tracker.start_model(
            run_id,
            parent_run_id,
            metadata,
            _run_name(serialized, kwargs),
            TEXT_COMPLETION,
            kwargs.get("invocation_params"),
        )

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self.tracker.end_model(run_id, response)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.tracker.end_run(run_id, error)

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.tracker.start_tool(
            run_id,
            parent_run_id,
            metadata,
            _run_name(serialized, kwargs),
            kwargs.get("tool_call_id"),
        )

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.tracker.end_run(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.tracker.end_run(run_id, error)

    def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.tracker.start_run(run_id, parent_run_id, metadata, _run_name(serialized, kwargs))

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.tracker.end_run(run_id)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.tracker.end_run(run_id, error)


class AsyncExperimentCallbackHandler(AsyncCallbackHandler, TurnTracking):
    """Async handler with the same behaviour as :class:`ExperimentCallbackHandler`.

    Args: see :class:`TurnTracking`.
    """

    run_inline = True

    def __init__(
        self,
        *,
        reader: TurnContextReader | None = None,
        tracer_provider: TracerProvider | None = None,
        turn_operation: str = INVOKE_WORKFLOW,
        outcomes: TurnOutcomes | None = None,
        privacy: IdProtector | None = None,
        provider: FeatBitProvider | None = None,
    ) -> None:
        super().__init__()
        self._setup(reader, tracer_provider, turn_operation, outcomes, privacy, provider)

    async def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.tracker.start_run(run_id, parent_run_id, metadata, _run_name(serialized, kwargs))

    async def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.tracker.end_run(run_id)

    async def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.tracker.end_run(run_id, error)

    async def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.tracker.start_model(
            run_id,
            parent_run_id,
            metadata,
            _run_name(serialized, kwargs),
            CHAT,
            kwargs.get("invocation_params"),
        )

    async def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.tracker.start_model(
            run_id,
            parent_run_id,
            metadata,
            _run_name(serialized, kwargs),
            TEXT_COMPLETION,
            kwargs.get("invocation_params"),
        )

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self.tracker.end_model(run_id, response)

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.tracker.end_run(run_id, error)

    async def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.tracker.start_tool(
            run_id,
            parent_run_id,
            metadata,
            _run_name(serialized, kwargs),
            kwargs.get("tool_call_id"),
        )

    async def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.tracker.end_run(run_id)

    async def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.tracker.end_run(run_id, error)

    async def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.tracker.start_run(run_id, parent_run_id, metadata, _run_name(serialized, kwargs))

    async def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.tracker.end_run(run_id)

    async def on_retriever_error(
        self, error: BaseException, *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.tracker.end_run(run_id, error)
