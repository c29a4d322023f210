"""The variant router: :func:`experiment_branch` evaluates an experiment flag through OpenFeature
with the unit IDs of the turn and runs the branch named by the variant, inside the turn's
binding (see ``turn_scoped`` and ``turn_binding``: collected evaluations, transaction context,
the turn span current).

The flag's evaluation is pinned to the turn, so retries, fallbacks and other routers on the
same flag in the turn use it without evaluating again; a router whose branches do not name the
pinned variant runs its default branch and records ``fallback_used``. A router whose client has
no OpenFeature provider warns once, naming the fix, rather than quietly running its default
branch on every turn. Nothing here raises into the chain: an evaluation that fails serves the
default branch (OpenFeature returns the default with an error code and the provider records
the guardrail).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.base import coerce_to_runnable
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.flag_evaluation import FlagEvaluationDetails

from featbit_experiments.guardrails import EventFanout, Guardrail

from .provider_link import is_unset
from .turn import Pin, Turn
from .turn_binding import Entered
from .turn_context import TurnContextReader
from .turn_scoped import RunnableLike, TurnScoped

logger = logging.getLogger("featbit_experiments.langchain")

#: Metadata key under which the branch chosen for each flag reaches nested runs (and so every
#: tracer: LangSmith, OpenLLMetry), as ``{flag_key: branch}``.
BRANCHES_METADATA_KEY = "experiment_branches"


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

    def _choose(self, entered: Entered) -> tuple[str | None, Runnable[Any, Any]]:
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

    async def _achoose(self, entered: Entered) -> tuple[str | None, Runnable[Any, Any]]:
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

    def _turn_of(self, entered: Entered) -> Turn | None:
        turn = entered.turn
        if turn is not None and entered.tracker is not None:
            entered.tracker.learn_provider(turn, self.client.provider)
        return turn

    def _label(self, pin: Pin, entered: Entered) -> str:
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

    def _before_evaluation(self, entered: Entered) -> None:
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
        self, entered: Entered, name: Guardrail, message: str, **attributes: Any
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



def _pin(details: FlagEvaluationDetails[str], turn: Turn | None, flag_key: str) -> Pin:
    pin = Pin(str(details.value), details.variant, details.error_code is None)
    return turn.pin(flag_key, pin) if turn is not None else pin


