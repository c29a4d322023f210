"""The values the resolver and the assignment ledger share: what FeatBit (or the ledger) served,
and OpenFeature's error result.

Below both the resolver and ``continuity``, so neither imports the other for them. No logic
beyond building these values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, TypeAlias

from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason

#: The ``featbit_reason`` of a variation served from the assignment ledger (OpenFeature: CACHED).
LEDGER_REASON = "assignment ledger"

#: FeatBit's failure reasons, as ``FBClient.variation_detail`` reports them, and their codes.
FEATBIT_ERRORS: Mapping[str, ErrorCode] = {
    "client not ready": ErrorCode.PROVIDER_NOT_READY,
    "flag not found": ErrorCode.FLAG_NOT_FOUND,
    "user not specified": ErrorCode.TARGETING_KEY_MISSING,
    "wrong type": ErrorCode.TYPE_MISMATCH,
    "error in evaluation": ErrorCode.GENERAL,
}


class Served(NamedTuple):
    """What FeatBit (or a remembered assignment) served: a variation and FeatBit's reason."""

    variation_id: str
    featbit_reason: str


#: A FeatBit evaluation's outcome: the variation served, or an error result.
Result: TypeAlias = "Served | FlagResolutionDetails[Any]"


def error_result(
    default: Any,
    code: ErrorCode,
    message: str,
    metadata: Mapping[str, str | int] | None = None,
) -> FlagResolutionDetails[Any]:
    """The caller's own default with an error code; ``reason=ERROR`` and no variant."""
    return FlagResolutionDetails(
        value=default,
        error_code=code,
        error_message=message,
        reason=Reason.ERROR,
        variant=None,
        flag_metadata=dict(metadata or {}),
    )


def featbit_error(reason: str) -> FlagResolutionDetails[Any]:
    """FeatBit's failure reason as an error result (the caller puts its default in)."""
    code = FEATBIT_ERRORS.get(reason, ErrorCode.GENERAL)
    return error_result(None, code, f"FeatBit: {reason}")


def with_default(
    result: FlagResolutionDetails[Any],
    default: Any,
    metadata: Mapping[str, str | int] | None = None,
) -> FlagResolutionDetails[Any]:
    """An error result from below, with the caller's default and metadata."""
    return error_result(
        default, result.error_code or ErrorCode.GENERAL, result.error_message or "", metadata
    )


def no_variation(
    flag_key: str,
    served: Served,
    default: Any,
    metadata: Mapping[str, str | int] | None = None,
) -> FlagResolutionDetails[Any]:
    """FeatBit (or the ledger) served a variation the flag version does not have."""
    return error_result(
        default,
        ErrorCode.GENERAL,
        f"flag {flag_key!r} has no variation {served.variation_id!r}",
        metadata,
    )
