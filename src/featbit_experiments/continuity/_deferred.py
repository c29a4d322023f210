"""A FeatBit evaluation whose insight event is sent later, only if its variation is served.

With a remote store the ledger wants one round trip per evaluation: evaluate FeatBit locally,
then claim that variation or learn the unit's existing one in the same call. ``variation_detail``
would record an insight for the evaluated variation even when the ledger then serves another one
(a rollout moved under ``finish_active``), so FeatBit's experiment data would count exposures
that never happened. This module evaluates with the SDK's own evaluator and hands back the
insight to send once the outcome is known.

It uses ``fbclient`` internals (``_evaluator``, ``_get_flag_internal``, ``_event_handler``; stable
across 1.1.x, which the project pins). When they are missing, :meth:`DeferredEvaluator.for_client`
returns None and the ledger falls back to a lookup before a public ``variation_detail``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..resolver import Served

logger = logging.getLogger("featbit_experiments")

_REQUIRED = ("_evaluator", "_get_flag_internal", "_event_handler")


class DeferredEvaluator:
    """Evaluates flags through ``client``'s evaluator without recording insights yet."""

    def __init__(self, client: Any) -> None:
        from fbclient.common_types import FBUser
        from fbclient.event_types import FlagEvent

        self._client = client
        self._user_of = FBUser.from_dict
        self._event_for = FlagEvent

    @classmethod
    def for_client(cls, client: Any) -> DeferredEvaluator | None:
        """An evaluator for ``client``, or None when this SDK version lacks the internals."""
        if all(hasattr(client, name) for name in _REQUIRED):
            try:
                return cls(client)
            except ImportError:
                pass
        logger.info("fbclient internals not found; remote ledger lookups cost two round trips")
        return None

    def evaluate(
        self, flag_key: str, user: dict[str, str]
    ) -> tuple[Served, Callable[[], None]] | None:
        """The variation FeatBit serves ``user`` and a callable that records its insight; None
        when the evaluation is not a clean success (the caller then asks FeatBit publicly, which
        maps each error)."""
        try:
            flag = self._client._get_flag_internal(flag_key)
            if not flag:
                return None
            user_object = self._user_of(user)
            event = self._event_for(user_object)
            result = self._client._evaluator.evaluate(flag, user_object, event)
        except Exception:
            logger.debug("deferred evaluation of %r failed", flag_key, exc_info=True)
            return None
        if not result.is_success:
            return None
        send: Callable[[Any], None] = self._client._event_handler
        return Served(str(result.id), str(result.reason)), lambda: send(event)
