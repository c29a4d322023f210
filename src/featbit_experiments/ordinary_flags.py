"""An ordinary flag (no experiment declared): FeatBit's answer for the context's targeting key,
refused loudly where bucketing would put everyone together.

A flag that splits traffic on the targeting key, asked without one, or on an attribute the
context lacks, serves the default with ``TARGETING_KEY_MISSING`` and a ``missing_unit_id``
guardrail: FeatBit would hash the missing value as ``""``. A flag that serves everyone alike is
evaluated for :data:`ANONYMOUS_KEY`. No ledger, no exposure: those are for experiments.
"""

from __future__ import annotations

from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagType

from . import _sdk
from .featbit_evaluation import FeatBitEvaluation
from .featbit_user import featbit_user
from .flag_plan import FlagPlan
from .flag_results import Mismatch
from .flag_view import KEY_DISPATCH
from .guardrails import EventFanout, Guardrail
from .results import Served, error_result, no_variation, with_default

#: Key used for ordinary (non-experiment) flags when the context has no targeting key and
#: the flag serves everyone alike, so the key cannot influence bucketing.
ANONYMOUS_KEY = "anonymous"


def resolve_ordinary(
    plan: FlagPlan,
    default: Any,
    flag_type: FlagType,
    context: EvaluationContext,
    featbit: FeatBitEvaluation,
    events: EventFanout,
) -> FlagResolutionDetails[Any]:
    """OpenFeature's result for an ordinary flag; never raises on bad input."""
    view = plan.view
    key = context.targeting_key
    fallthrough = view.rollouts[0]
    if not key:
        needs_key = (
            fallthrough.is_split and (fallthrough.dispatch_key or "").lower() in KEY_DISPATCH
        )
        if needs_key:
            message = (
                f"flag {view.key!r} splits traffic on the targeting key and the context has "
                "none; serving the default instead of bucketing everyone together"
            )
            events.guardrail(Guardrail.MISSING_UNIT_ID, message, flagKey=view.key)
            return error_result(default, ErrorCode.TARGETING_KEY_MISSING, message)
        key = ANONYMOUS_KEY
    user = featbit_user(key, context.attributes)
    dispatch = fallthrough.dispatch_key
    if (
        fallthrough.is_split
        and dispatch
        and dispatch.lower() not in KEY_DISPATCH
        and not _sdk.user_attribute(user, dispatch)
    ):
        message = (
            f"flag {view.key!r} splits traffic on attribute {dispatch!r}, which the "
            "context lacks (FeatBit matches custom attributes case-sensitively); serving "
            "the default instead of bucketing everyone together"
        )
        events.guardrail(Guardrail.MISSING_UNIT_ID, message, flagKey=view.key)
        return error_result(default, ErrorCode.TARGETING_KEY_MISSING, message)
    served = featbit.evaluate(view.key, user, plan.source)
    if not isinstance(served, Served):
        return with_default(served, default)
    results = plan.results
    variation = results.variations.get(served.variation_id)
    if variation is None:
        return no_variation(view.key, served, default)
    value = results.value(variation, flag_type)
    if isinstance(value, Mismatch):
        return error_result(default, value.code, value.message)
    return FlagResolutionDetails(
        value=value, reason=results.reason(served.featbit_reason), variant=variation.variant
    )
