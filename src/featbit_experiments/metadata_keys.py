"""Names of the ``flag_metadata`` entries the provider sets on experiment flags.

Ordinary flags get no metadata (OpenFeature's conformance suite expects none); experiment
flags say which experiment and unit produced the value, so hooks and callers can record it.
"""

from __future__ import annotations

EXPERIMENT_KEY = "experimentKey"
ASSIGNMENT_UNIT = "assignmentUnit"
UNIT_KEY_SOURCE = "unitKeySource"
VARIATION_ID = "variationId"
#: OpenFeature's telemetry reads ``contextId`` as ``feature_flag.context.id``.
CONTEXT_ID = "contextId"
FLAG_VERSION = "version"
RUN_ID = "runId"
