"""A FeatBit evaluation whose insight event is sent later, only if its variation is served.

With a remote store the ledger wants one round trip per evaluation: evaluate FeatBit locally,
then claim that variation or learn the unit's existing one in the same call. ``variation_detail``
would record an insight for the evaluated variation even when the ledger then serves another one
(a rollout moved under ``finish_active``), so FeatBit's experiment data would count exposures
that never happened. This module hands back the insight to send once the outcome is known.

The evaluation itself is :class:`featbit_experiments._sdk.SdkEvaluator`'s (FeatBit's own
evaluator; the one place fbclient internals are used). When the SDK lacks them,
:meth:`DeferredEvaluator.for_client` returns None and the ledger falls back to a lookup before
a public ``variation_detail``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .._sdk import SdkEvaluator
from ..resolver import Served

logger = logging.getLogger("featbit_experiments")


class DeferredEvaluator:
    """Evaluates flags through FeatBit's evaluator without recording insights yet."""

    def __init__(self, sdk: SdkEvaluator) -> None:
        self._sdk = sdk

    @classmethod
    def for_client(cls, client: Any) -> DeferredEvaluator | None:
        """An evaluator for ``client``, or None when this SDK version lacks the internals."""
        sdk = SdkEvaluator.for_client(client)
        if sdk is None:
            logger.info("fbclient internals not found; remote ledger lookups cost two round trips")
            return None
        return cls(sdk)

    def evaluate(
        self, flag_key: str, user: dict[str, str]
    ) -> tuple[Served, Callable[[], None]] | None:
        """The variation FeatBit serves ``user`` and a callable that records its insight; None
        when the evaluation is not a clean success (the caller then asks FeatBit publicly, which
        maps each error)."""
        evaluation = self._sdk.evaluate(flag_key, user)
        if isinstance(evaluation, str):
            return None
        return Served(evaluation.variation_id, evaluation.reason), evaluation.send_insight
