"""Every telemetry attribute and event name the library writes, in one place.

Standard names follow the OpenTelemetry semantic conventions (feature flags: v1.40+, GenAI:
v1.41). What the conventions lack (experiment key, variant, unit) lives under the
``experiment.`` namespace. Adapters import these names; none spells them itself.
"""

from __future__ import annotations

# -- OpenTelemetry feature-flag semantic conventions -----------------------------------------
FEATURE_FLAG_EVALUATION_EVENT = "feature_flag.evaluation"
FEATURE_FLAG_KEY = "feature_flag.key"
FEATURE_FLAG_RESULT_VARIANT = "feature_flag.result.variant"
FEATURE_FLAG_RESULT_VALUE = "feature_flag.result.value"
FEATURE_FLAG_RESULT_REASON = "feature_flag.result.reason"
FEATURE_FLAG_PROVIDER_NAME = "feature_flag.provider.name"
FEATURE_FLAG_CONTEXT_ID = "feature_flag.context.id"
FEATURE_FLAG_VERSION = "feature_flag.version"
FEATURE_FLAG_SET_ID = "feature_flag.set.id"
FEATURE_FLAG_ERROR_MESSAGE = "feature_flag.error.message"
ERROR_TYPE = "error.type"

# -- OpenTelemetry GenAI semantic conventions ------------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
USER_ID = "user.id"

# -- Our namespace: what the conventions do not cover ----------------------------------------
EXPERIMENT_KEY = "experiment.key"
EXPERIMENT_VARIANT = "experiment.variant"
EXPERIMENT_UNIT = "experiment.unit"
EXPERIMENT_UNIT_ID = "experiment.unit.id"
EXPERIMENT_RUN_ID = "experiment.run_id"
#: Span attributes listing every experiment evaluated under a span (parallel arrays).
EXPERIMENT_KEYS = "experiment.keys"
EXPERIMENT_VARIANTS = "experiment.variants"
EXPERIMENT_UNITS = "experiment.units"
#: Unit IDs attached to a request or turn span: ``experiment.unit_ids.<unit>``.
UNIT_ID_PREFIX = "experiment.unit_ids."
GUARDRAIL_EVENT = "experiment.guardrail"
GUARDRAIL_NAME = "experiment.guardrail.name"
GUARDRAIL_MESSAGE = "experiment.guardrail.message"
#: Guardrail fields without a name of their own: ``experiment.guardrail.<field>``.
GUARDRAIL_ATTRIBUTE_PREFIX = "experiment.guardrail."
#: The outcome metric a guardrail (metric-unit mismatch) is about, and its unit.
EXPERIMENT_METRIC = "experiment.metric.name"
EXPERIMENT_METRIC_UNIT = "experiment.metric.unit"
