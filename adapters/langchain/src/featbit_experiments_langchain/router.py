"""Runnables that run under the turn's OpenFeature context: a variant router and a plain scope.

:func:`experiment_branch` evaluates an experiment flag through OpenFeature with the unit IDs of
the turn, read explicitly from the ``RunnableConfig`` it is invoked with (metadata and
``configurable``), and runs the branch named by the variant. :func:`with_turn_context` runs one
runnable the same way without a flag.

While the chosen runnable runs:

- every experiment evaluation inside it is collected (``featbit_experiments.scope``) and handed
  to the turn of an :class:`~.callback.ExperimentCallbackHandler`, if one is attached, so the
  turn's spans carry each experiment's key, variant and unit (and to any scope outside, such
  as the web request's);
- the turn's span (or the span of the run the router is nested in) is OpenTelemetry's current
  span, so spans started inside (an instrumented HTTP client's, the flag evaluation events)
  nest under it in the turn's trace;
- the turn's IDs are merged into OpenFeature's transaction context, so flag evaluations inside
  see them (effective once the application has installed a transaction context propagator);
- the flag's evaluation is pinned to the turn, so retries, fallbacks and other routers on the
  same flag in the turn use it without evaluating again; a router whose branches do not name
  the pinned variant runs its default branch and records ``fallback_used``.

A router at the root of a turn names the turn after the runnable it chose (the agent or
graph), not after itself. A router whose client has no OpenFeature provider warns once, naming
the fix, rather than quietly running its default branch on every turn.

What is set in a context for the chosen runnable is restored when it returns (streams run in
the per-run context copy LangChain makes), so nothing set here reaches the caller. Nothing here
raises into the chain: an evaluation that fails serves the default branch (OpenFeature returns
the default with an error code and the provider records the guardrail).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    BaseRunManager,
    CallbackManagerForChainRun,
)
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.base import coerce_to_runnable
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
    patch_config,
)
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.flag_evaluation import FlagEvaluationDetails
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span

from featbit_experiments.assignment import Assignment
from featbit_experiments.guardrails import EventFanout, Guardrail
from featbit_experiments.scope import collect_assignments, record_assignment

from .callback import TurnTracking
from .provider_link import is_unset
from .turn_context import TurnContext, TurnContextReader
from .turns import Pin, Turn, TurnTracker

logger = logging.getLogger("featbit_experiments.langchain")

#: Metadata key under which the branch chosen for each flag reaches nested runs (and so every
#: tracer: LangSmith, OpenLLMetry), as ``{flag_key: branch}``.
BRANCHES_METADATA_KEY = "experiment_branches"

RunnableLike = Runnable[Any, Any] | Callable[..., Any] | Mapping[str, Any]


@dataclass(frozen=True)
class _Entered:
    """What a router run knows about its turn when it starts."""

    context: TurnContext
    turn: Turn | None
    tracker: TurnTracker | None
    #: The span the run's children are parented to (the turn span for chains).
    span: Span | None
    #: Whether the run is the turn's root run.
    is_root: bool


class _Scope:
    """One router run's assignment collection, transaction context and current span.

    Opened where the chosen runnable runs (the caller's context for ``invoke``, LangChain's
    per-run context copy for streams) and restored by :meth:`close`. A stream abandoned by
    its consumer is closed from another context, so :meth:`abandon` reports and restores
    nothing there.
    """

    def __init__(self, entered: _Entered) -> None:
        self._turn = entered.turn
        self._reported = 0
        self._collecting = collect_assignments()
        self._collected: list[Assignment] = self._collecting.__enter__()
        self._previous = api.get_transaction_context()
        context = entered.context
        if not context.is_empty:
            api.set_transaction_context(self._previous.merge(context.evaluation_context))
        self._span_token = (
            otel_context.attach(trace.set_span_in_context(entered.span))
            if entered.span is not None
            else None
        )

    def report(self) -> None:
        """Hand the assignments collected since the last report to the turn."""
        if self._turn is not None and len(self._collected) > self._reported:
            self._turn.add_assignments(self._collected[self._reported :])
            self._reported = len(self._collected)

    def close(self) -> None:
        self.report()
        if self._span_token is not None:
            otel_context.detach(self._span_token)
        api.set_transaction_context(self._previous)
        self._collecting.__exit__(None, None, None)
        for assignment in self._collected:  # the scope outside (a web request's) sees them too
            record_assignment(assignment)

    def abandon(self) -> None:
        self.report()
        # Closed from the consumer's context, where none of ours is set: the reset fails
        # there and there is nothing to undo; the transaction context is left alone.
        with contextlib.suppress(ValueError):
            self._collecting.__exit__(None, None, None)

    def __enter__(self) -> _Scope:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class TurnScoped(Runnable[Any, Any]):
    """Runs a runnable chosen per turn under the turn's context (see the module docstring).

    Subclasses choose the runnable; :func:`with_turn_context` returns the plain one.

    Args:
        runnable: The runnable to run.
        reader: Which metadata/configurable keys carry which unit's ID.
        name: The run name.
    """

    def __init__(
        self,
        runnable: RunnableLike | None = None,
        *,
        reader: TurnContextReader | None = None,
        name: str | None = None,
    ) -> None:
        self.runnable: Runnable[Any, Any] | None = (
            coerce_to_runnable(runnable) if runnable is not None else None
        )
        self.reader = reader or TurnContextReader()
        self.name = name

    # -- choosing (overridden by the router) ----------------------------------------------

    def _choose(self, entered: _Entered) -> tuple[str | None, Runnable[Any, Any]]:
        assert self.runnable is not None
        return None, self.runnable

    async def _achoose(self, entered: _Entered) -> tuple[str | None, Runnable[Any, Any]]:
        return self._choose(entered)

    def _branch_metadata(self, label: str | None, config: RunnableConfig) -> dict[str, Any]:
        return {}

    # -- Runnable -------------------------------------------------------------------------

    # invoke/ainvoke start the run themselves, as RunnableBranch does, rather than through
    # _call_with_config, which inspects the body's signature on every call. The scope is
    # opened and closed in the caller's context, so it is restored, not copied.

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        config = ensure_config(config)
        run_manager = get_callback_manager_for_config(config).on_chain_start(
            None,
            input,
            name=config.get("run_name") or self.get_name(),
            run_id=config.pop("run_id", None),
        )
        try:
            output = self._invoke(input, run_manager, config, **kwargs)
        except BaseException as error:
            run_manager.on_chain_error(error)
            raise
        run_manager.on_chain_end(output)
        return output

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        config = ensure_config(config)
        run_manager = await get_async_callback_manager_for_config(config).on_chain_start(
            None,
            input,
            name=config.get("run_name") or self.get_name(),
            run_id=config.pop("run_id", None),
        )
        try:
            output = await self._ainvoke(input, run_manager, config, **kwargs)
        except BaseException as error:
            await run_manager.on_chain_error(error)
            raise
        await run_manager.on_chain_end(output)
        return output

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> Iterator[Any]:
        yield from self.transform(iter([input]), config, **kwargs)

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> AsyncIterator[Any]:
        async with _closing(self.atransform(_one(input), config, **kwargs)) as chunks:
            async for chunk in chunks:
                yield chunk

    def transform(
        self, input: Iterator[Any], config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> Iterator[Any]:
        yield from self._transform_stream_with_config(input, self._transform, config, **kwargs)

    async def atransform(
        self,
        input: AsyncIterator[Any],
        config: RunnableConfig | None = None,
        **kwargs: Any | None,
    ) -> AsyncIterator[Any]:
        # aclosing: a consumer that stops early closes the run now, not when GC finds it.
        async with _closing(
            self._atransform_stream_with_config(input, self._atransform, config, **kwargs)
        ) as chunks:
            async for chunk in chunks:
                yield chunk

    # -- the four paths -------------------------------------------------------------------

    def _invoke(
        self,
        input: Any,
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        entered = self._enter(config, run_manager)
        with _Scope(entered) as scope:
            label, runnable = self._choose(entered)
            scope.report()
            _name_turn(entered, runnable)
            return runnable.invoke(input, self._child(config, run_manager, label), **kwargs)

    async def _ainvoke(
        self,
        input: Any,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        entered = self._enter(config, run_manager)
        with _Scope(entered) as scope:
            label, runnable = await self._achoose(entered)
            scope.report()
            _name_turn(entered, runnable)
            return await runnable.ainvoke(input, self._child(config, run_manager, label), **kwargs)

    def _transform(
        self,
        input: Iterator[Any],
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Iterator[Any]:
        entered = self._enter(config, run_manager)
        scope = _Scope(entered)
        try:
            label, runnable = self._choose(entered)
            scope.report()
            _name_turn(entered, runnable)
            yield from runnable.transform(input, self._child(config, run_manager, label), **kwargs)
        except GeneratorExit:
            scope.abandon()
            raise
        except BaseException:
            scope.close()
            raise
        scope.close()

    async def _atransform(
        self,
        input: AsyncIterator[Any],
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        entered = self._enter(config, run_manager)
        scope = _Scope(entered)
        try:
            label, runnable = await self._achoose(entered)
            scope.report()
            _name_turn(entered, runnable)
            async with _closing(
                runnable.atransform(input, self._child(config, run_manager, label), **kwargs)
            ) as chunks:
                async for chunk in chunks:
                    yield chunk
        except GeneratorExit:
            scope.abandon()
            raise
        except BaseException:
            scope.close()
            raise
        scope.close()

    # -- shared steps ---------------------------------------------------------------------

    def _enter(self, config: RunnableConfig, run_manager: BaseRunManager) -> _Entered:
        context = self.reader.from_config(config)
        tracker = _tracker_of(run_manager)
        run_id = run_manager.run_id
        turn = tracker.turn_of(run_id) if tracker is not None else None
        if turn is None or tracker is None:
            return _Entered(context, None, tracker, None, False)
        tracker.absorb_context(turn, context)
        return _Entered(context, turn, tracker, tracker.anchor_of(run_id), turn.run_id == run_id)

    def _child(
        self,
        config: RunnableConfig,
        run_manager: CallbackManagerForChainRun | AsyncCallbackManagerForChainRun,
        label: str | None,
    ) -> RunnableConfig:
        callbacks = run_manager.get_child(f"branch:{label}" if label is not None else None)
        metadata = self._branch_metadata(label, config)
        if metadata:
            return patch_config(
                {**config, "metadata": {**(config.get("metadata") or {}), **metadata}},
                callbacks=callbacks,
            )
        return patch_config(config, callbacks=callbacks)


class ExperimentBranch(TurnScoped):
    """Routes each turn to the branch named by an experiment flag's variant.

    The flag is evaluated as a string flag; the branch is the one keyed by the served value,
    else by the variant name. When the evaluation fails (no usable unit ID, provider not
    ready, ...) OpenFeature returns ``default`` and the default branch runs; a served value
    that names no branch also runs the default branch and records a ``fallback_used``
    guardrail.

    Args:
        flag_key: The FeatBit flag key.
        branches: Runnables by variant (``{"control": chain_a, "retrieval_profile_b": b}``).
        default: The branch for turns the flag cannot be evaluated for; ``"control"`` when
            present, else the first branch.
        client: The OpenFeature client; ``api.get_client(domain)`` by default.
        domain: The OpenFeature domain of the default client.
        reader: Which metadata/configurable keys carry which unit's ID.
        name: The run name; ``"experiment_branch:<flag_key>"`` by default.
    """

    def __init__(
        self,
        flag_key: str,
        branches: Mapping[str, RunnableLike],
        *,
        default: str | None = None,
        client: OpenFeatureClient | None = None,
        domain: str | None = None,
        reader: TurnContextReader | None = None,
        name: str | None = None,
    ) -> None:
        if not branches:
            raise ValueError(f"experiment_branch({flag_key!r}) needs at least one branch")
        super().__init__(reader=reader, name=name or f"experiment_branch:{flag_key}")
        self.flag_key = flag_key
        self.branches: dict[str, Runnable[Any, Any]] = {
            label: coerce_to_runnable(runnable) for label, runnable in branches.items()
        }
        if default is None:
            default = "control" if "control" in self.branches else next(iter(self.branches))
        if default not in self.branches:
            raise ValueError(f"default branch {default!r} is not one of {list(self.branches)}")
        self.default = default
        self.client = client if client is not None else api.get_client(domain)
        self._warned_unset = False

    def _choose(self, entered: _Entered) -> tuple[str | None, Runnable[Any, Any]]:
        turn = self._turn_of(entered)
        pin = turn.pinned(self.flag_key) if turn is not None else None
        if pin is None:
            self._before_evaluation(entered)
            details = self.client.get_string_details(
                self.flag_key, self.default, entered.context.evaluation_context
            )
            pin = _pin(details, turn, self.flag_key)
        label = self._label(pin, entered)
        return label, self.branches[label]

    async def _achoose(self, entered: _Entered) -> tuple[str | None, Runnable[Any, Any]]:
        turn = self._turn_of(entered)
        pin = turn.pinned(self.flag_key) if turn is not None else None
        if pin is None:
            self._before_evaluation(entered)
            details = await self.client.get_string_details_async(
                self.flag_key, self.default, entered.context.evaluation_context
            )
            pin = _pin(details, turn, self.flag_key)
        label = self._label(pin, entered)
        return label, self.branches[label]

    def _branch_metadata(self, label: str | None, config: RunnableConfig) -> dict[str, Any]:
        chosen = (config.get("metadata") or {}).get(BRANCHES_METADATA_KEY)
        merged = dict(chosen) if isinstance(chosen, Mapping) else {}
        merged[self.flag_key] = label
        return {BRANCHES_METADATA_KEY: merged}

    def _turn_of(self, entered: _Entered) -> Turn | None:
        turn = entered.turn
        if turn is not None and entered.tracker is not None:
            entered.tracker.learn_provider(turn, self.client.provider)
        return turn

    def _label(self, pin: Pin, entered: _Entered) -> str:
        """This router's branch for the flag's evaluation: the one keyed by the served value,
        else by the variant; the default branch when the evaluation failed (the provider has
        recorded why) or names no branch here (recorded now)."""
        if not pin.served:
            return self.default
        if pin.value in self.branches:
            return pin.value
        if pin.variant is not None and pin.variant in self.branches:
            return pin.variant
        self._guardrail(
            entered,
            Guardrail.FALLBACK_USED,
            f"flag {self.flag_key!r} served {pin.value!r} (variant {pin.variant!r}), which "
            f"names no branch of {list(self.branches)}; running the default branch "
            f"{self.default!r}",
            variation=pin.variant,
        )
        return self.default

    def _before_evaluation(self, entered: _Entered) -> None:
        """Say what will make the evaluation untrustworthy before it happens: IDs left out
        for disagreeing, or no OpenFeature provider at all (every turn would quietly get the
        default branch)."""
        if entered.context.conflicts:
            self._guardrail(
                entered,
                Guardrail.INVALID_UNIT_ID,
                "run metadata and configurable disagree on "
                f"{', '.join(entered.context.conflicts)}; those IDs are left out of the "
                "turn's context",
            )
        if is_unset(self.client.provider):
            message = (
                f"experiment_branch({self.flag_key!r}) has no OpenFeature provider, so every "
                f"turn runs the default branch {self.default!r}; call "
                "api.set_provider_and_wait(FeatBitProvider...) at start-up, or pass a "
                "client= bound to a domain that has one"
            )
            if not self._warned_unset:
                self._warned_unset = True
                logger.warning(message)
            self._guardrail(entered, Guardrail.PROVIDER_NOT_READY, message)

    def _guardrail(
        self, entered: _Entered, name: Guardrail, message: str, **attributes: Any
    ) -> None:
        """Record a guardrail through the client's provider, else the handler's."""
        events = getattr(self.client.provider, "events", None)
        if not isinstance(events, EventFanout) and entered.tracker is not None:
            events = entered.tracker.provider.events()
        if isinstance(events, EventFanout):
            events.guardrail(name, message, flagKey=self.flag_key, **attributes)


def experiment_branch(
    flag_key: str,
    branches: Mapping[str, RunnableLike],
    *,
    default: str | None = None,
    client: OpenFeatureClient | None = None,
    domain: str | None = None,
    reader: TurnContextReader | None = None,
    name: str | None = None,
) -> ExperimentBranch:
    """A runnable that runs the branch named by ``flag_key``'s variant for each turn.

    See :class:`ExperimentBranch` for the arguments.
    """
    return ExperimentBranch(
        flag_key,
        branches,
        default=default,
        client=client,
        domain=domain,
        reader=reader,
        name=name,
    )


def with_turn_context(
    runnable: RunnableLike, *, reader: TurnContextReader | None = None, name: str | None = None
) -> TurnScoped:
    """``runnable`` run under the turn's OpenFeature context, with every experiment evaluated
    inside it reported to the turn (see the module docstring)."""
    return TurnScoped(runnable, reader=reader, name=name or "with_turn_context")


def _pin(details: FlagEvaluationDetails[str], turn: Turn | None, flag_key: str) -> Pin:
    pin = Pin(str(details.value), details.variant, details.error_code is None)
    return turn.pin(flag_key, pin) if turn is not None else pin


def _name_turn(entered: _Entered, runnable: Runnable[Any, Any]) -> None:
    """At the root of a turn, the turn is the agent or graph the router chose."""
    if entered.is_root and entered.tracker is not None and entered.turn is not None:
        entered.tracker.name_turn(entered.turn, runnable.get_name())


def _tracker_of(run_manager: BaseRunManager) -> TurnTracker | None:
    for handler in run_manager.handlers:
        if isinstance(handler, TurnTracking):
            return handler.tracker
    return None


async def _one(value: Any) -> AsyncIterator[Any]:
    yield value


@contextlib.asynccontextmanager
async def _closing(chunks: AsyncIterator[Any]) -> AsyncIterator[AsyncIterator[Any]]:
    """Close ``chunks`` (when it can be closed) as soon as its reader stops."""
    try:
        yield chunks
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
