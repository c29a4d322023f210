"""Event-log builders for the audit tests and benchmarks (no tests here): records shaped
exactly like the core's producers write them (``exposures.exposure_record``,
``OutcomeRecorder``, guardrail events), so a planted defect is one wrong field, not a
different format. :class:`EventLogBuilder` plants defects record by record;
:func:`simulated_events` generates whole experiments (days, random assignment, true effects)
for the statistics and for logs of millions of records."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from featbit_experiments import event_schema as schema

SUPPORT = "support-retrieval-test"
ARMS = ("control", "retrieval_profile_b")
_UNIT_FIELDS = {
    "conversation": "conversationId",
    "user": "userId",
    "account": "accountId",
    "workflow": "workflowId",
    "request": "requestId",
}


class EventLogBuilder:
    """Builds one experiment's event log record by record.

    Args:
        experiment: The experiment (and flag) key.
        unit: The assignment unit.
        run_id: The run id.
    """

    def __init__(self, experiment: str = SUPPORT, unit: str = "conversation", run_id: str = ""):
        self.experiment = experiment
        self.unit = unit
        self.run_id = run_id
        self.lines: list[str] = []
        self._clock = 0

    def _stamp(self) -> str:
        self._clock += 1
        minutes, seconds = divmod(self._clock, 60)
        hours, minutes = divmod(minutes, 60)
        return f"2026-06-05T{10 + hours:02d}:{minutes:02d}:{seconds:02d}.000Z"

    def _base(self, kind: str, unit: str | None, run_id: str | None) -> dict[str, Any]:
        return {
            schema.EVENT: kind,
            schema.TIMESTAMP: self._stamp(),
            schema.EXPERIMENT_KEY: self.experiment,
            schema.RUN_ID: self.run_id if run_id is None else run_id,
            schema.FLAG_KEY: self.experiment,
            schema.ASSIGNMENT_UNIT: unit or self.unit,
        }

    def add(self, record: dict[str, Any]) -> EventLogBuilder:
        self.lines.append(json.dumps(record))
        return self

    def raw(self, line: str) -> EventLogBuilder:
        """A line as is (malformed ones)."""
        self.lines.append(line)
        return self

    def expose(
        self,
        unit_id: str,
        variant: str,
        *,
        unit: str | None = None,
        run_id: str | None = None,
        user: str | None = None,
        own_id: str | None = None,
        attributes: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> EventLogBuilder:
        """An exposure of ``unit_id`` (of ``unit``, the builder's by default) to ``variant``;
        the user ID is carried too (``u-<unit_id>`` unless given). ``own_id`` is the record's
        own ID of its unit (``conversationId``...), ``unit_id`` unless given: a different one
        plants a unit that changed without its label. ``fields`` adds top-level fields."""
        unit = unit or self.unit
        record = self._base(schema.EXPOSURE, unit, run_id)
        record[schema.FLAG_VERSION] = 1735689601000
        record[schema.UNIT_ID] = unit_id
        record[_UNIT_FIELDS[unit]] = own_id or unit_id
        if attributes:
            record[schema.ATTRIBUTES] = attributes
        if unit != "user":
            record["userId"] = user or f"u-{unit_id}"
        record[schema.VARIATION] = variant
        record[schema.VARIATION_ID] = f"{self.experiment}-{variant}"
        record[schema.REASON] = "SPLIT"
        record.update(fields or {})
        return self.add(record)

    def outcome(
        self,
        unit_id: str | None,
        metric: str,
        value: float,
        variant: str | None,
        *,
        metric_unit: str | None = None,
        unit: str | None = None,
        run_id: str | None = None,
        attributes: dict[str, Any] | None = None,
        **ids: str,
    ) -> EventLogBuilder:
        """An outcome keyed by ``unit_id`` with the variant the producer looked up (None:
        unknown). ``ids`` adds other unit ID fields (``userId="u-1"``)."""
        record = self._base(schema.OUTCOME, unit, run_id)
        record[schema.METRIC] = metric
        record[schema.METRIC_UNIT] = metric_unit or unit or self.unit
        record[schema.VALUE] = value
        if unit_id is not None:
            record[schema.UNIT_ID] = unit_id
            record.setdefault(_UNIT_FIELDS[unit or self.unit], unit_id)
        record.update(ids)
        if attributes:
            record[schema.ATTRIBUTES] = attributes
        if variant is not None:
            record[schema.VARIATION] = variant
            record[schema.VARIATION_ID] = f"{self.experiment}-{variant}"
        return self.add(record)

    def guardrail(self, name: str, **fields: Any) -> EventLogBuilder:
        record = {
            schema.EVENT: schema.GUARDRAIL,
            schema.GUARDRAIL_NAME: name,
            schema.MESSAGE: f"planted {name}",
            schema.TIMESTAMP: self._stamp(),
        }
        record.update(fields)
        return self.add(record)

    def extend(self, other: EventLogBuilder) -> EventLogBuilder:
        self.lines.extend(other.lines)
        return self

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def write(self, path: Path) -> Path:
        path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")
        return path


def conversation_log(
    per_arm: Iterable[tuple[str, int, float]] = (("control", 100, 0.6), (ARMS[1], 100, 0.6)),
    *,
    experiment: str = SUPPORT,
    run_id: str = "",
    turns: int = 2,
    latency_shift: dict[str, float] | None = None,
) -> EventLogBuilder:
    """A clean conversation-level log: for each ``(variant, conversations, resolved_rate)``,
    that many conversations exposed once, with ``turns`` latency outcomes each and one 0/1
    ``resolved`` outcome (the first ``rate`` share of them resolved; deterministic).
    ``latency_shift`` adds milliseconds to a variant's latencies."""
    log = EventLogBuilder(experiment, "conversation", run_id)
    for variant, count, rate in per_arm:
        resolved = round(count * rate)
        for i in range(count):
            conversation = f"c-{variant}-{i}"
            log.expose(conversation, variant)
            for turn in range(turns):
                latency = 900.0 + 10 * (i % 7) + 5 * turn
                latency += (latency_shift or {}).get(variant, 0.0)
                log.outcome(conversation, "latency_ms", latency, variant)
            log.outcome(conversation, "resolved", 1.0 if i < resolved else 0.0, variant)
    return log


# -- simulated experiments ------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    """One variant of a simulated experiment and its true outcome rates.

    Args:
        variant: The variant's name.
        resolved: Chance a conversation is resolved (the primary metric).
        latency_ms: Mean turn latency (a guardrail; normal, SD 100 ms).
        handoff: Chance of a human handoff (a guardrail).
    """

    variant: str
    resolved: float = 0.5
    latency_ms: float = 900.0
    handoff: float = 0.1


NULL_ARMS = (Arm("control"), Arm(ARMS[1]))


def simulated_events(
    *,
    experiment: str = SUPPORT,
    arms: Sequence[Arm] = NULL_ARMS,
    units_per_day: int = 100,
    days: int = 14,
    turns: int = 1,
    seed: int = 0,
    start: date = date(2026, 6, 1),
    run_id: str = "",
    prefix: str = "c",
    plans: Sequence[str] = (),
) -> Iterator[dict[str, Any]]:
    """Records of a conversation experiment over ``days`` days, day by day, shaped like the
    producers': each conversation is exposed once to a variant drawn at random with equal
    weights, then has ``turns`` latency outcomes, one 0/1 ``resolved`` and one 0/1
    ``handoff``, each with its ``metricDirection``. ``plans`` puts a ``plan`` attribute on
    the exposures (segment review from exposures). Deterministic for a ``seed``."""
    rng = random.Random(seed)
    builder = _RecordShape(experiment, run_id)
    for day in range(days):
        stamp = (start + timedelta(days=day)).isoformat()
        for i in range(units_per_day):
            arm = arms[rng.randrange(len(arms))]
            unit = f"{prefix}-{experiment}-{day}-{i}"
            seconds = i * 86400 // units_per_day
            ts = f"{stamp}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000Z"
            exposure = builder.exposure(unit, arm.variant, ts)
            if plans:
                exposure[schema.ATTRIBUTES] = {"plan": plans[i % len(plans)]}
            yield exposure
            for _ in range(turns):
                latency = rng.gauss(arm.latency_ms, 100.0)
                yield builder.outcome(unit, arm.variant, ts, "latency_ms", latency, lower=True)
            resolved = 1.0 if rng.random() < arm.resolved else 0.0
            yield builder.outcome(unit, arm.variant, ts, "resolved", resolved, lower=False)
            handoff = 1.0 if rng.random() < arm.handoff else 0.0
            yield builder.outcome(unit, arm.variant, ts, "handoff", handoff, lower=True)


class _RecordShape:
    """The producers' record shapes, filled in fast (for logs of millions of records)."""

    def __init__(self, experiment: str, run_id: str) -> None:
        self._base = {
            schema.EXPERIMENT_KEY: experiment,
            schema.RUN_ID: run_id,
            schema.FLAG_KEY: experiment,
            schema.ASSIGNMENT_UNIT: "conversation",
        }
        self._experiment = experiment

    def exposure(self, unit: str, variant: str, ts: str) -> dict[str, Any]:
        return {
            schema.EVENT: schema.EXPOSURE,
            schema.TIMESTAMP: ts,
            **self._base,
            schema.FLAG_VERSION: 1735689601000,
            schema.UNIT_ID: unit,
            "conversationId": unit,
            "userId": f"u-{unit}",
            schema.VARIATION: variant,
            schema.VARIATION_ID: f"{self._experiment}-{variant}",
            schema.REASON: "SPLIT",
        }

    def outcome(
        self, unit: str, variant: str, ts: str, metric: str, value: float, *, lower: bool
    ) -> dict[str, Any]:
        return {
            schema.EVENT: schema.OUTCOME,
            schema.TIMESTAMP: ts,
            **self._base,
            schema.METRIC: metric,
            schema.METRIC_UNIT: "conversation",
            schema.METRIC_DIRECTION: schema.LOWER_IS_BETTER if lower else schema.HIGHER_IS_BETTER,
            schema.VALUE: value,
            schema.UNIT_ID: unit,
            "conversationId": unit,
            schema.VARIATION: variant,
            schema.VARIATION_ID: f"{self._experiment}-{variant}",
        }


def write_jsonl(records: Iterable[dict[str, Any]], path: Path) -> int:
    """Write ``records`` as JSON Lines; returns how many."""
    count = 0
    with path.open("w", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record) + "\n")
            count += 1
    return count
