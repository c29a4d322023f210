"""Runnables that run under the turn's context: :class:`TurnScoped` runs a runnable it chooses
per turn inside a :class:`~.turn_binding.TurnBinding`, and :func:`with_turn_context` wraps one
runnable that way without a flag.

The turn's unit IDs are read explicitly from the ``RunnableConfig`` the runnable is invoked
with (metadata and ``configurable``), never from a callback: LangChain runs callbacks in copied
contexts, so a ContextVar set there would not reach the chain. At the root of a turn, the turn
is named after the runnable chosen (the agent or graph), not after the wrapper. What is set in
a context for the chosen runnable is restored when it returns (streams run in the per-run
context copy LangChain makes), so nothing set here reaches the caller.
"""

from __future__ import annotations

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

from .turn_binding import Entered, TurnBinding, closing, name_turn, one, tracker_of
from .turn_context import TurnContextReader

RunnableLike = Runnable[Any, Any] | Callable[..., Any] | Mapping[str, Any]


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

    def _choose(self, entered: Entered) -> tuple[str | None, Runnable[Any, Any]]:
        assert self.runnable is not None
        return None, self.runnable

    async def _achoose(self, entered: Entered) -> tuple[str | None, Runnable[Any, Any]]:
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
        async with closing(self.atransform(one(input), config, **kwargs)) as chunks:
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
        async with closing(
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
        with TurnBinding(entered) as scope:
            label, runnable = self._choose(entered)
            scope.report()
            name_turn(entered, runnable)
            return runnable.invoke(input, self._child(config, run_manager, label), **kwargs)

    async def _ainvoke(
        self,
        input: Any,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        entered = self._enter(config, run_manager)
        with TurnBinding(entered) as scope:
            label, runnable = await self._achoose(entered)
            scope.report()
            name_turn(entered, runnable)
            return await runnable.ainvoke(input, self._child(config, run_manager, label), **kwargs)

    def _transform(
        self,
        input: Iterator[Any],
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Iterator[Any]:
        entered = self._enter(config, run_manager)
        scope = TurnBinding(entered)
        try:
            label, runnable = self._choose(entered)
            scope.report()
            name_turn(entered, runnable)
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
        scope = TurnBinding(entered)
        try:
            label, runnable = await self._achoose(entered)
            scope.report()
            name_turn(entered, runnable)
            async with closing(
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

    def _enter(self, config: RunnableConfig, run_manager: BaseRunManager) -> Entered:
        context = self.reader.from_config(config)
        tracker = tracker_of(run_manager)
        run_id = run_manager.run_id
        turn = tracker.turn_of(run_id) if tracker is not None else None
        if turn is None or tracker is None:
            return Entered(context, None, tracker, None, False)
        tracker.absorb_context(turn, context)
        return Entered(context, turn, tracker, tracker.anchor_of(run_id), turn.run_id == run_id)

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


def with_turn_context(
    runnable: RunnableLike, *, reader: TurnContextReader | None = None, name: str | None = None
) -> TurnScoped:
    """``runnable`` run under the turn's OpenFeature context, with every experiment evaluated
    inside it reported to the turn (see the module docstring)."""
    return TurnScoped(runnable, reader=reader, name=name or "with_turn_context")


