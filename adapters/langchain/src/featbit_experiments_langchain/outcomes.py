"""End-of-turn outcomes: latency, tokens and error sent through OpenFeature's ``track()``.

One event per metric per experiment evaluated in the turn, named with the ``experimentKey``
tracking attribute and the metric's direction (``metricDirection``: every turn metric here is
better when lower, so the audit reads that from the log rather than guessing), with the
turn's unit IDs as the evaluation context. The provider then keys
each metric by its declared unit, or by the experiment's unit, and flags a mismatch: this
module never picks the key itself. A turn with no experiment records nothing (there is no
experiment to attribute it to). Never raises into the chain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openfeature.client import OpenFeatureClient
from openfeature.track import TrackingEventDetails, TrackingValue

from featbit_experiments import event_schema as schema
from featbit_experiments.tracking import EXPERIMENT_KEY_ATTRIBUTE

if TYPE_CHECKING:
    from .turns import Turn

logger = logging.getLogger("featbit_experiments.langchain")


@dataclass(frozen=True)
class TurnOutcomes:
    """Which outcome metrics to record at the end of each turn.

    Args:
        client: The OpenFeature client to ``track()`` through.
        latency: Metric name for the turn's wall-clock time in milliseconds, or None.
        input_tokens: Metric name for the input tokens the turn's model calls reported.
        output_tokens: Metric name for their output tokens. Token metrics are sent only
            when some model call reported usage.
        error: Metric name for whether the turn ended in an exception (1.0 or 0.0).

    Each metric is sent with ``metricDirection`` = ``lower_is_better`` (a faster, cheaper,
    error-free turn is better).
    """

    client: OpenFeatureClient
    latency: str | None = "turn_latency_ms"
    input_tokens: str | None = "turn_input_tokens"
    output_tokens: str | None = "turn_output_tokens"
    error: str | None = "turn_error"

    def values(self, turn: Turn) -> list[tuple[str, float]]:
        """The (metric, value) pairs one turn produces."""
        values: list[tuple[str, float]] = []
        if self.latency:
            values.append((self.latency, turn.latency_ms))
        if turn.saw_usage:
            if self.input_tokens:
                values.append((self.input_tokens, float(turn.input_tokens)))
            if self.output_tokens:
                values.append((self.output_tokens, float(turn.output_tokens)))
        if self.error:
            values.append((self.error, 1.0 if turn.error is not None else 0.0))
        return values

    def record(self, turn: Turn) -> None:
        experiment_keys = dict.fromkeys(a.experiment_key for a in turn.assignments)
        if not experiment_keys:
            return
        values = self.values(turn)
        context = turn.context.evaluation_context
        for experiment_key in experiment_keys:
            attributes: dict[str, TrackingValue] = {
                EXPERIMENT_KEY_ATTRIBUTE: experiment_key,
                schema.METRIC_DIRECTION: schema.LOWER_IS_BETTER,
            }
            for metric, value in values:
                try:
                    self.client.track(
                        metric, context, TrackingEventDetails(value=value, attributes=attributes)
                    )
                except Exception:
                    logger.exception("could not record outcome %r of turn %s", metric, turn.run_id)
