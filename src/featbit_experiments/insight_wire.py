"""FeatBit's insight wire contract, as its evaluation server binds it: what can be sent and
what an answer means.

``InsightController`` binds the whole POST with System.Text.Json: a bare ``NaN``/``Infinity``
token fails every event in it with 400, and a ``numericValue`` beyond float32 (a C# ``float``)
binds as infinity and fails it with 500 when stored. So an event is written on its own, as
strict JSON, and a metric value is checked against float32 before it becomes an event at all.

Pure functions; no I/O, no policy.
"""

from __future__ import annotations

import json
import logging
import math
import struct
from enum import Enum
from typing import Any

logger = logging.getLogger("featbit_experiments")

#: Rejections about the request rather than its events: splitting the batch cannot help.
REQUEST_REJECTIONS = frozenset({401, 403, 404, 405})
#: 4xx answers that mean "try again later".
TRANSIENT_CLIENT_ERRORS = frozenset({408, 429})


class Answer(Enum):
    """What an insights POST's answer means for the events in it."""

    DELIVERED = "delivered"
    TRANSIENT = "transient"  # no answer, 5xx, 408, 429: keep them and retry
    CONTENT_REJECTED = "content_rejected"  # another 4xx: some event in the batch is refused
    REQUEST_REJECTED = "request_rejected"  # 401/403/404/405: every event, whatever it holds


def answer_to(status: int | None) -> Answer:
    if status is not None and 200 <= status < 300:
        return Answer.DELIVERED
    if status is None or status >= 500 or status < 400 or status in TRANSIENT_CLIENT_ERRORS:
        return Answer.TRANSIENT
    if status in REQUEST_REJECTIONS:
        return Answer.REQUEST_REJECTED
    return Answer.CONTENT_REJECTED


def metric_value_problem(value: float) -> str | None:
    """Why FeatBit cannot take ``value`` as a metric's ``numericValue``, or None."""
    if not math.isfinite(value):
        return f"{value!r} is not a finite number"
    try:
        struct.pack("<f", value)
    except OverflowError:
        return f"{value!r} is beyond FeatBit's float32 range"
    return None


def write_event(event: Any) -> str | None:
    """One ``fbclient`` event as FeatBit's JSON, or None when FeatBit could not bind it."""
    try:
        item = event.to_json_dict()
        for metric in item.get("metrics") or ():
            if metric_value_problem(float(metric.get("numericValue", 0.0))) is not None:
                return None
        return json.dumps(item, allow_nan=False)
    except Exception:
        logger.debug("insight event %r could not be written", event, exc_info=True)
        return None
