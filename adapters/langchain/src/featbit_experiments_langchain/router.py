"""Runnables that run under the turn's OpenFeature context: a variant router and a plain scope.

:func:`experiment_branch` evaluates an experiment flag through OpenFeature with the unit IDs of
the turn, read explicitly from the ``RunnableConfig`` it is invoked with (metadata and
``configurable``), and runs the branch named by the variant. :func:`with_turn_context` runs one
runnable the same way without a flag.

While the chosen runnable runs:

- every experiment evaluation inside it is collected (``featbit_experiments.scope``) and handed
  to the turn of an :class:`~.callback.ExperimentCallbackHandler`, if one is attached, so the
  turn's spans carry each experiment's key, variant and unit;
- the turn's IDs are merged into OpenFeature's transaction context, so flag evaluations inside
  see them (effective once the application has installed a transaction context propagator);
- the router's choice is pinned to the turn, so retries and fallbacks that run the router
  again in the same turn get the same branch without evaluating again.

What is set in a context for the chosen runnable is restored when it returns (streams run in
the per-run context copy LangChain makes), so nothing set here reaches the caller. Nothing here
raises into the chain: an evaluation that fails serves the default branch (OpenFeature returns
the default with an error code and the provider records the guardrail).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
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

from featbit_experiments.assignment import Assignment
from featbit_experiments.guardrails import EventFanout, Guardrail
from featbit_experiments.scope import collect_assignments

from .callback import TurnTracking
from .turn_context import TurnContext, TurnContextReader
from .turns import Turn, TurnTracker

#: Metadata key under which the branch chosen for each flag reaches nested runs (and so every
#: tracer: LangSmith, OpenLLMetry), as ``{flag_key: branch}``.
BRANCHES_METADATA_KEY = "experiment_branches"

RunnableLike = Runnable[Any, Any] | Callable[..., Any] | Mapping[str, Any]


class _Scope:
    """One router run's assignment collection and transaction context.

    Opened where the chosen runnable runs (the caller's context for ``invoke``, LangChain's
    per-run context copy for streams) and restored by :meth:`close`. A stream abandoned by
    its consumer is closed from another context, so :meth:`abandon` reports and restores
    nothing there.
    """

    def __init__(self, context: TurnContext, turn: Turn | None) -> None:
        self._turn = turn
        self._reported = 0
        self._collecting = collect_assignments()
        self._collected: list[Assignment] = self._collecting.__enter__()
        self._previous = api.get_transaction_context()
        if not context.is_empty:
            api.set_transaction_context(self._previous.merge(context.evaluation_context))

    def report(self) -> None:
        """Hand the assignments collected since the last report to the turn."""
        if self._turn is not None and len(self._collected) > self._reported:
            self._turn.add_assignments(self._collected[self._reported :])
            self._reported = len(self._collected)

    def close(self) -> None:
        self.report()
        api.set_transaction_context(self._previous)
        self._collecting.__exit__(None, None, None)

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

    def _choose(
        self, context: TurnContext, turn: Turn | None
    ) -> tuple[str | None, Runnable[Any, Any]]:
        assert self.runnable is not None
        return None, self.runnable

    async def _achoose(
        self, context: TurnContext, turn: Turn | None
    ) -> tuple[str | None, Runnable[Any, Any]]:
        return self._choose(context, turn)

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
        context, turn = self._enter(config, run_manager)
        with _Scope(context, turn) as scope:
            label, runnable = self._choose(context, turn)
            scope.report()
            return runnable.invoke(input, self._child(config, run_manager, label), **kwargs)

    async def _ainvoke(
        self,
        input: Any,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        context, turn = self._enter(config, run_manager)
        with _Scope(context, turn) as scope:
            label, runnable = await self._achoose(context, turn)
            scope.report()
            return await runnable.ainvoke(input, self._child(config, run_manager, label), **kwargs)

    def _transform(
        self,
        input: Iterator[Any],
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Iterator[Any]:
        context, turn = self._enter(config, run_manager)
        scope = _Scope(context, turn)
        try:
            label, runnable = self._choose(context, turn)
            scope.report()
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
        context, turn = self._enter(config, run_manager)
        scope = _Scope(context, turn)
        try:
            label, runnable = await self._achoose(context, turn)
            scope.report()
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

    def _enter(
        self, config: RunnableConfig, run_manager: BaseRunManager
    ) -> tuple[TurnContext, Turn | None]:
        context = self.reader.from_config(config)
        tracker = _tracker_of(run_manager)
        turn = tracker.turn_of(run_manager.run_id) if tracker is not None else None
        if turn is not None and tracker is not None:
            tracker.absorb_context(turn, context)
        return context, turn

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

    def _choose(
        self, context: TurnContext, turn: Turn | None
    ) -> tuple[str | None, Runnable[Any, Any]]:
        pinned = turn.pinned(self.flag_key) if turn is not None else None
        if pinned is None:
            self._warn_conflicts(context)
            details = self.client.get_string_details(
                self.flag_key, self.default, context.evaluation_context
            )
            pinned = self._label(details, turn)
        return pinned, self.branches[pinned]

    async def _achoose(
        self, context: TurnContext, turn: Turn | None
    ) -> tuple[str | None, Runnable[Any, Any]]:
        pinned = turn.pinned(self.flag_key) if turn is not None else None
        if pinned is None:
            self._warn_conflicts(context)
            details = await self.client.get_string_details_async(
                self.flag_key, self.default, context.evaluation_context
            )
            pinned = self._label(details, turn)
        return pinned, self.branches[pinned]

    def _branch_metadata(self, label: str | None, config: RunnableConfig) -> dict[str, Any]:
        chosen = (config.get("metadata") or {}).get(BRANCHES_METADATA_KEY)
        merged = dict(chosen) if isinstance(chosen, Mapping) else {}
        merged[self.flag_key] = label
        return {BRANCHES_METADATA_KEY: merged}

    def _label(self, details: FlagEvaluationDetails[str], turn: Turn | None) -> str:
        if details.value in self.branches:
            label = details.value
        elif details.variant is not None and details.variant in self.branches:
            label = details.variant
        else:
            label = self.default
            self._guardrail(
                Guardrail.FALLBACK_USED,
                f"flag {self.flag_key!r} served {details.value!r} (variant "
                f"{details.variant!r}), which names no branch of {list(self.branches)}; "
                f"running the default branch {self.default!r}",
            )
        return turn.pin(self.flag_key, label) if turn is not None else label

    def _warn_conflicts(self, context: TurnContext) -> None:
        if context.conflicts:
            self._guardrail(
                Guardrail.INVALID_UNIT_ID,
                f"run metadata and configurable disagree on {', '.join(context.conflicts)}; "
                "those IDs are left out of the turn's context",
            )

    def _guardrail(self, name: Guardrail, message: str) -> None:
        events = getattr(self.client.provider, "events", None)
        if isinstance(events, EventFanout):
            events.guardrail(name, message, flagKey=self.flag_key)


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
