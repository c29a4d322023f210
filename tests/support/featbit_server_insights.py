"""``POST /api/public/insight/track`` as FeatBit's evaluation server answers it.

Read in featbit/featbit ``modules/evaluation-server`` at ``366b4a1``: ``InsightController``
binds ``ICollection<Insight>`` with System.Text.Json's web defaults (property names in any case,
numbers also from strings, no ``NaN``/``Infinity``), ``Insight``/``EndUser``/
``VariationInsight``/``MetricInsight`` give each field its .NET type, and items whose user has
no ``keyId`` are skipped. What follows from that, and is reproduced here:

* 400 for the whole request when the body is not JSON (a bare ``NaN`` or ``Infinity`` token
  included), is not an array, or any bound field has the wrong JSON kind (a string where a
  number goes, ``null`` for a ``bool``/``long``/``float``, a fraction for a ``long``, an
  unpaired UTF-16 surrogate in a bound string);
* 500 for the whole request when a kept item has ``null`` ``variations``/``metrics``, a
  ``null`` item, or a ``numericValue`` beyond float32 (it binds as infinity, and serializing
  the stored message then throws): none of it is stored;
* otherwise 200, and only the items with a non-blank ``user.keyId`` count.

The rate limiter's 429 is not modelled (fault injection sets statuses instead).
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_INT64 = (-(2**63), 2**63 - 1)
_INTEGER_TEXT = re.compile(r"-?(0|[1-9][0-9]*)")
_NUMBER_TEXT = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class BoundInsights:
    """What the endpoint answers and which items it keeps (only when ``status`` is 200)."""

    status: int
    items: tuple[Mapping[str, Any], ...] = ()
    error: str = ""


class _Rejected(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status


def bind_insights(body: bytes) -> BoundInsights:
    """Bind a request body the way FeatBit's ``InsightController`` does."""
    try:
        parsed = json.loads(body.decode("utf-8"), parse_constant=_no_named_numbers)
    except (UnicodeDecodeError, ValueError) as error:
        return BoundInsights(400, error=f"invalid JSON: {error}")
    try:
        if not isinstance(parsed, list):
            raise _Rejected(400, "the body must be a JSON array of insights")
        bound = [_insight(item) for item in parsed]
        kept = [(raw, item) for raw, item in zip(parsed, bound, strict=True) if _is_valid(item)]
        for _, item in kept:
            _check_storable(item)
        if any(item is None for item in bound):
            raise _Rejected(500, "a null insight (NullReferenceException in IsValid)")
    except _Rejected as rejected:
        return BoundInsights(rejected.status, error=str(rejected))
    return BoundInsights(200, tuple(raw for raw, _ in kept))


def _no_named_numbers(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


# --------------------------------------------------------------------------------------------
# The model: each function returns the bound value or raises _Rejected(400)


def _insight(value: Any) -> dict[str, Any] | None:
    fields = _object(value, "insight")
    if fields is None:
        return None
    return {
        "user": _end_user(fields.get("user")),
        "variations": _array(fields, "variations", _variation_insight),
        "metrics": _array(fields, "metrics", _metric_insight),
    }


def _end_user(value: Any) -> dict[str, Any] | None:
    fields = _object(value, "user")
    if fields is None:
        return None
    return {
        "keyId": _string(fields.get("keyid")),
        "name": _string(fields.get("name")),
        "customizedProperties": _array(fields, "customizedproperties", _property),
    }


def _property(value: Any) -> dict[str, Any] | None:
    fields = _object(value, "customized property")
    if fields is None:
        return None
    return {"name": _string(fields.get("name")), "value": _string(fields.get("value"))}


def _variation_insight(value: Any) -> dict[str, Any] | None:
    fields = _object(value, "variation insight")
    if fields is None:
        return None
    variation = _object(fields.get("variation"), "variation")
    return {
        "featureFlagKey": _string(fields.get("featureflagkey")),
        "variation": None
        if variation is None
        else {"id": _string(variation.get("id")), "value": _string(variation.get("value"))},
        "sendToExperiment": _bool(fields.get("sendtoexperiment", False)),
        "timestamp": _long(fields.get("timestamp", 0)),
    }


def _metric_insight(value: Any) -> dict[str, Any] | None:
    fields = _object(value, "metric insight")
    if fields is None:
        return None
    return {
        **{k: _string(fields.get(k.lower())) for k in ("route", "type", "eventName", "appType")},
        "numericValue": _float32(fields.get("numericvalue", 0)),
        "timestamp": _long(fields.get("timestamp", 0)),
    }


def _object(value: Any, what: str) -> dict[str, Any] | None:
    """A JSON object with its property names folded (web defaults match them in any case)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Rejected(400, f"{what} must be an object")
    return {str(key).lower(): item for key, item in value.items()}


def _array(
    fields: Mapping[str, Any], name: str, bind: Callable[[Any], Any]
) -> list[Any] | None:
    if name not in fields:
        return []  # the C# initializer: ``= []``
    value = fields[name]
    if value is None:
        return None
    if not isinstance(value, list):
        raise _Rejected(400, f"{name} must be an array")
    return [bind(item) for item in value]


def _string(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Rejected(400, f"expected a string, got {json.dumps(value)}")
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise _Rejected(400, "cannot read invalid UTF-16 JSON text (unpaired surrogate)")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Rejected(400, f"expected true or false, got {json.dumps(value)}")
    return value


def _long(value: Any) -> int:
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        value = int(value)  # AllowReadingFromString
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Rejected(400, f"expected an integer, got {json.dumps(value)}")
    if not _INT64[0] <= value <= _INT64[1]:
        raise _Rejected(400, f"{value} is outside the range of a long")
    return value


def _float32(value: Any) -> float:
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
        value = float(value)  # AllowReadingFromString (named literals stay refused)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Rejected(400, f"expected a number, got {json.dumps(value)}")
    try:
        return float(struct.unpack("<f", struct.pack("<f", float(value)))[0])
    except OverflowError:  # .NET Core parses a too-large number as infinity
        return math.copysign(math.inf, float(value))


def _is_valid(item: Mapping[str, Any] | None) -> bool:
    """``Insight.IsValid``: a user with a non-blank ``keyId``."""
    if item is None:
        return False
    user = item["user"]
    return user is not None and bool((user["keyId"] or "").strip())


def _check_storable(item: Mapping[str, Any]) -> None:
    """What ``InsightMessages`` and the usage count would throw on (a 500)."""
    variations, metrics = item["variations"], item["metrics"]
    if variations is None or metrics is None or None in variations or None in metrics:
        raise _Rejected(500, "a null array or element (NullReferenceException)")
    for metric in metrics:
        if not math.isfinite(metric["numericValue"]):
            raise _Rejected(500, "numericValue beyond float32 cannot be serialized")
