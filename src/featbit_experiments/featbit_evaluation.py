"""The FeatBit step of an evaluation: ask FeatBit's evaluator for a user's variation, and send
the insight FeatBit's experiments count, now or once the assignment ledger has decided.

Shared by the resolver (ordinary flags, experiments without a ledger) and the ledger (a unit
FeatBit has to place), so neither calls into the other for it. It bridges to ``_sdk``, where
the SDK's internals are; it decides nothing about what to serve.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import _sdk
from .guardrails import EventFanout, Guardrail
from .results import FEATBIT_ERRORS, Result, Served, featbit_error


class FeatBitEvaluation:
    """Evaluates flags for FeatBit users through one client.

    Args:
        client: The FeatBit client (thread-safe; shared by every evaluation).
        events: Where the one ``exposures_not_counted`` guardrail goes when the SDK lacks the
            internals that mark insights ``sendToExperiment``.
    """

    def __init__(self, client: Any, events: EventFanout) -> None:
        self._client = client
        #: None: the SDK lacks the internals, so evaluations go through ``variation_detail``.
        self._sdk = _sdk.SdkEvaluator.for_client(client)
        if self._sdk is None:
            events.guardrail(
                Guardrail.EXPOSURES_NOT_COUNTED,
                "this fbclient version lacks the internals the provider uses to mark insights "
                f"sendToExperiment (checked against {', '.join(_sdk.CHECKED_AGAINST)}); "
                "FeatBit's experiment results will not count these exposures",
            )

    def evaluate(
        self, flag_key: str, user: dict[str, str], flag: Mapping[str, Any] | None = None
    ) -> Result:
        """Ask FeatBit and send its insight; its errors come back as an error result.
        ``flag``: the flag as just read from the client's store, if at hand."""
        if self._sdk is None:
            detail = self._client.variation_detail(flag_key, user, None)
            variation_id = getattr(detail, "variation_id", None)
            if variation_id is None or detail.reason in FEATBIT_ERRORS:
                return featbit_error(str(detail.reason))
            return Served(str(variation_id), str(detail.reason))
        evaluation = self._sdk.evaluate(flag_key, user, flag)
        if isinstance(evaluation, str):
            return featbit_error(evaluation)
        evaluation.send_insight()
        return Served(evaluation.variation_id, evaluation.reason)

    def deferred(
        self, flag_key: str, user: dict[str, str], flag: Mapping[str, Any] | None = None
    ) -> tuple[Served, Callable[[], None]] | None:
        """FeatBit's variation and a callable that sends its insight, for the ledger to call
        only if that variation is served (a remote store claims it in the same round trip);
        None when the SDK lacks the internals or the evaluation is not a clean success (the
        caller then asks :meth:`evaluate`, which maps each error)."""
        if self._sdk is None:
            return None
        evaluation = self._sdk.evaluate(flag_key, user, flag)
        if isinstance(evaluation, str):
            return None
        return Served(evaluation.variation_id, evaluation.reason), evaluation.send_insight
