"""OpenTelemetry spans of a turn: one for the turn, one per model call, one per tool call.

Names and attributes follow the GenAI and feature-flag semantic conventions where they exist
(names come from ``featbit_experiments.telemetry_names``); experiment key, variant and unit go
under the ``experiment.`` namespace. Unit IDs pass through the turn's privacy setting before
they are written. Spans are parented explicitly (turn → call), never through the current
context, because LangChain runs callbacks in copied contexts and executor threads; the routers
make the turn span current while the runnable they chose runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.outputs import ChatGeneration, LLMResult
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.util.types import AttributeValue

from featbit_experiments import telemetry_names as names
from featbit_experiments.assignment import Assignment
from featbit_experiments.provider import PROVIDER_NAME
from featbit_experiments.telemetry import experiment_attributes

from .turn_context import TurnContext

if TYPE_CHECKING:
    from .turn import Turn

_TRACER_NAME = "featbit_experiments_langchain"

#: ``gen_ai.operation.name`` values used here.
INVOKE_WORKFLOW = "invoke_workflow"
INVOKE_AGENT = "invoke_agent"
CHAT = "chat"
TEXT_COMPLETION = "text_completion"
EXECUTE_TOOL = "execute_tool"

_MODEL_PARAM_KEYS = ("model", "model_name", "model_id")

#: The attributes every span of a turn carries (its conversation and experiments), with what
#: they were built from: the turn's context, its privacy and how many assignments it had.
SharedAttributes = tuple[TurnContext, "IdProtector | None", int, Mapping[str, AttributeValue]]


class IdProtector(Protocol):
    """What spans need from ``featbit_experiments.privacy.Privacy``: an ID as it may leave
    the process (itself, a pseudonym, or None to leave it out)."""

    def protect(self, value: str) -> str | None: ...


class TurnSpans:
    """Creates and finishes the spans of turns.

    Args:
        tracer_provider: Where spans go; the global tracer provider by default. With the
            API's default (no SDK installed) spans are non-recording and attributes are
            skipped.
        turn_operation: The turn span's ``gen_ai.operation.name``: ``"invoke_workflow"``
            (default, a chain) or ``"invoke_agent"`` (an in-process agent; the agent's name
            becomes ``gen_ai.agent.name``). The span is named ``"{operation} {name}"``.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        turn_operation: str = INVOKE_WORKFLOW,
    ) -> None:
        self._tracer = trace.get_tracer(_TRACER_NAME, tracer_provider=tracer_provider)
        self.turn_operation = turn_operation

    # -- starting -------------------------------------------------------------------------
    # Attributes go in with start_span/set_attributes, one call each: the SDK takes a lock
    # and validates per call.

    def start_turn(self, run_name: str) -> Span:
        """The turn's span, a child of whatever span is current where the turn starts."""
        attributes: dict[str, AttributeValue] = {names.GEN_AI_OPERATION_NAME: self.turn_operation}
        if self.turn_operation == INVOKE_AGENT:
            attributes[names.GEN_AI_AGENT_NAME] = run_name
        return self._tracer.start_span(
            f"{self.turn_operation} {run_name}", kind=SpanKind.INTERNAL, attributes=attributes
        )

    def rename_turn(self, span: Span, name: str) -> None:
        """Name the turn span after the agent or workflow it runs."""
        span.update_name(f"{self.turn_operation} {name}")
        if self.turn_operation == INVOKE_AGENT:
            span.set_attribute(names.GEN_AI_AGENT_NAME, name)

    def start_model(
        self,
        parent: Span,
        operation: str,
        metadata: Mapping[str, Any] | None,
        invocation_params: Mapping[str, Any] | None,
    ) -> Span:
        """A ``chat {model}`` (or ``text_completion {model}``) CLIENT span under ``parent``."""
        model = _request_model(metadata, invocation_params)
        attributes: dict[str, AttributeValue] = {names.GEN_AI_OPERATION_NAME: operation}
        provider = (metadata or {}).get("ls_provider")
        if isinstance(provider, str):
            attributes[names.GEN_AI_PROVIDER_NAME] = provider
        if model:
            attributes[names.GEN_AI_REQUEST_MODEL] = model
        return self._tracer.start_span(
            f"{operation} {model}" if model else operation,
            context=trace.set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )

    def start_tool(self, parent: Span, tool_name: str, call_id: str | None) -> Span:
        """An ``execute_tool {name}`` INTERNAL span under ``parent``."""
        attributes: dict[str, AttributeValue] = {
            names.GEN_AI_OPERATION_NAME: EXECUTE_TOOL,
            names.GEN_AI_TOOL_NAME: tool_name,
        }
        if call_id:
            attributes[names.GEN_AI_TOOL_CALL_ID] = call_id
        return self._tracer.start_span(
            f"{EXECUTE_TOOL} {tool_name}",
            context=trace.set_span_in_context(parent),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        )

    # -- finishing ------------------------------------------------------------------------

    def finish(
        self,
        span: Span,
        turn: Turn,
        *,
        error: BaseException | None = None,
        is_turn: bool = False,
        extra: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        """Tag ``span`` with the turn's conversation and experiments, then end it.

        Args:
            is_turn: ``span`` is the turn's own: also write every known unit ID
                (``experiment.unit_ids.<unit>``).
            extra: More attributes of this span (a model call's usage), written in the same
                call: the SDK takes a lock and validates per call.
        """
        if span.is_recording():
            attributes: dict[str, AttributeValue] = dict(_shared(turn))
            if is_turn:
                privacy = turn.privacy
                for unit, value in turn.context.ids.items():
                    _put_id(attributes, names.UNIT_ID_PREFIX + unit, value, privacy)
            if extra:
                attributes.update(extra)
            if error is not None:
                attributes[names.ERROR_TYPE] = type(error).__qualname__
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, str(error)))
            if attributes:
                span.set_attributes(attributes)
        span.end()

    def record_usage(self, span: Span, response: LLMResult) -> tuple[int, int] | None:
        """Write the response's token usage and model to ``span`` now; returns the usage.
        (The tracker passes them to :meth:`finish` instead, in one write.)"""
        usage, attributes = self.model_result(span, response)
        if attributes:
            span.set_attributes(attributes)
        return usage

    def model_result(
        self, span: Span, response: LLMResult
    ) -> tuple[tuple[int, int] | None, dict[str, AttributeValue] | None]:
        """The response's token usage, and the attributes it adds to the model call's
        ``span`` (usage and model; None when the span does not record), for
        :meth:`finish`."""
        usage = token_usage(response)
        if not span.is_recording():
            return usage, None
        attributes: dict[str, AttributeValue] = {}
        if usage is not None:
            attributes[names.GEN_AI_USAGE_INPUT_TOKENS] = usage[0]
            attributes[names.GEN_AI_USAGE_OUTPUT_TOKENS] = usage[1]
        model = _response_model(response)
        if model:
            attributes[names.GEN_AI_RESPONSE_MODEL] = model
        return usage, attributes


def _shared(turn: Turn) -> Mapping[str, AttributeValue]:
    """The conversation ID and experiments of ``turn``, the same on each of its spans: built
    once, and again only when the turn's context, privacy or assignments changed."""
    assignments = turn.assignments
    context, privacy = turn.context, turn.privacy
    kept = turn.span_attributes
    if kept is not None and kept[:3] == (context, privacy, len(assignments)):
        return kept[3]
    attributes: dict[str, AttributeValue] = {}
    if context.conversation_id is not None:
        _put_id(attributes, names.GEN_AI_CONVERSATION_ID, context.conversation_id, privacy)
    if assignments:
        _put_experiments(attributes, assignments, privacy)
    turn.span_attributes = (context, privacy, len(assignments), attributes)
    return attributes


def _put_experiments(
    attributes: dict[str, AttributeValue],
    assignments: Sequence[Assignment],
    privacy: IdProtector | None,
) -> None:
    protect = None if privacy is None else privacy.protect
    attributes.update(experiment_attributes(assignments, protect, PROVIDER_NAME))


def _put_id(
    attributes: dict[str, AttributeValue], name: str, value: str, privacy: IdProtector | None
) -> None:
    protected = value if privacy is None else privacy.protect(value)
    if protected is not None:
        attributes[name] = protected


def token_usage(response: LLMResult) -> tuple[int, int] | None:
    """(input, output) tokens summed over the response's messages, or None when the model
    reported none (``usage_metadata`` on chat messages; ``llm_output["token_usage"]``
    for completion models)."""
    found = False
    input_tokens = output_tokens = 0
    for generation in _generations(response.generations):
        if isinstance(generation, ChatGeneration):
            usage = getattr(generation.message, "usage_metadata", None)
            if usage:
                found = True
                input_tokens += int(usage.get("input_tokens", 0))
                output_tokens += int(usage.get("output_tokens", 0))
    if not found and response.llm_output:
        usage = response.llm_output.get("token_usage")
        if isinstance(usage, Mapping):
            found = True
            input_tokens = int(usage.get("prompt_tokens", usage.get("input_tokens", 0)))
            output_tokens = int(usage.get("completion_tokens", usage.get("output_tokens", 0)))
    return (input_tokens, output_tokens) if found else None


def _generations(nested: Iterable[Iterable[Any]]) -> Iterable[Any]:
    for group in nested:
        yield from group


def _request_model(
    metadata: Mapping[str, Any] | None, invocation_params: Mapping[str, Any] | None
) -> str | None:
    model = (metadata or {}).get("ls_model_name")
    if isinstance(model, str) and model:
        return model
    for key in _MODEL_PARAM_KEYS:
        model = (invocation_params or {}).get(key)
        if isinstance(model, str) and model:
            return model
    return None


def _response_model(response: LLMResult) -> str | None:
    for generation in _generations(response.generations):
        if isinstance(generation, ChatGeneration):
            metadata = generation.message.response_metadata or {}
            for key in ("model_name", "model"):
                model = metadata.get(key)
                if isinstance(model, str) and model:
                    return model
    return None
