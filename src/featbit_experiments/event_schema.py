"""Field names of the experiment event records (exposure, outcome, guardrail) that sinks
receive and the audit reads. One JSON object per event, JSON Lines on disk.

Every record carries ``event``, ``timestamp``, ``experimentKey``, ``assignmentUnit`` and
``unitId`` (the assigned unit's ID, hashed when privacy hashing is on), plus the other known
unit IDs under their canonical attribute names (``conversationId``, ``userId``,
``accountId``, ``workflowId``, ``requestId``).
"""

from __future__ import annotations

EXPOSURE = "experiment_exposure"
OUTCOME = "experiment_outcome"
GUARDRAIL = "experiment_guardrail"

EVENT = "event"
TIMESTAMP = "timestamp"
EXPERIMENT_KEY = "experimentKey"
RUN_ID = "runId"
FLAG_KEY = "flagKey"
FLAG_VERSION = "flagVersion"
ASSIGNMENT_UNIT = "assignmentUnit"
UNIT_ID = "unitId"
VARIATION = "variation"
VARIATION_ID = "variationId"
REASON = "reason"
METRIC = "metric"
METRIC_UNIT = "metricUnit"
VALUE = "value"
ATTRIBUTES = "attributes"
GUARDRAIL_NAME = "guardrail"
MESSAGE = "message"
ERROR_CODE = "errorCode"
#: On outcome records: which way the metric is better, ``higher_is_better`` or
#: ``lower_is_better`` (a latency or an error count), so the audit reads it from the log.
METRIC_DIRECTION = "metricDirection"
HIGHER_IS_BETTER = "higher_is_better"
LOWER_IS_BETTER = "lower_is_better"

#: Canonical attribute names of the standard units' IDs, carried on every record.
UNIT_ID_FIELDS = ("conversationId", "userId", "accountId", "workflowId", "requestId")
