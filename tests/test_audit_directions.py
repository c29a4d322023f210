"""Which way a metric is better: the options when they say, else the records'
``metricDirection`` (written by the producers), else the role's default; records that
disagree are a reported conflict, and a deciding metric nothing settles cannot decide."""

from __future__ import annotations

import json

from featbit_experiments import event_schema as schema
from featbit_experiments.audit import AuditOptions, ExperimentAudit, audit_records
from tests.support.event_logs import ARMS, EventLogBuilder

TREATMENT = ARMS[1]


def log_with(directions: list[str | None]) -> EventLogBuilder:
    """400 conversations per arm; treatment's ``errors`` metric is higher (worse if lower is
    better); each outcome carries the next direction of ``directions`` (cycling)."""
    log = EventLogBuilder()
    n = 0
    for variant, rate in (("control", 0.2), (TREATMENT, 0.5)):
        for i in range(400):
            unit = f"c-{variant}-{i}"
            log.expose(unit, variant)
            log.outcome(unit, "errors", 1.0 if i < rate * 400 else 0.0, variant)
            direction = directions[n % len(directions)]
            n += 1
            if direction is not None:
                record = log.records[-1]
                record[schema.METRIC_DIRECTION] = direction
                log.lines[-1] = json.dumps(record)
    return log


def audit(log: EventLogBuilder, options: AuditOptions) -> ExperimentAudit:
    [only] = audit_records(log.records, options).experiments
    return only


def test_a_secondary_metric_takes_its_direction_from_the_records() -> None:
    result = audit(log_with([schema.LOWER_IS_BETTER]), AuditOptions())
    [errors] = result.metrics
    assert not errors.higher_is_better and errors.direction_from == "log"
    assert errors.effects[0].verdict == "worse"


def test_a_primary_named_without_direction_takes_the_records_direction() -> None:
    result = audit(log_with([schema.LOWER_IS_BETTER]), AuditOptions(primary_metric="errors"))
    assert result.metrics[0].direction_from == "log"
    assert result.decision.rule == "roll_back.metric_worse"


def test_a_direction_the_options_name_wins_and_a_disagreement_is_reported() -> None:
    options = AuditOptions(primary_metric="errors:higher")
    result = audit(log_with([schema.LOWER_IS_BETTER]), options)
    assert result.metrics[0].higher_is_better and result.metrics[0].direction_from == "options"
    [conflict] = result.direction_conflicts
    assert conflict.directions == {schema.LOWER_IS_BETTER: 800}
    assert result.decision.rule == "ship.primary_better"


def test_records_that_disagree_are_a_conflict_that_pauses_a_deciding_metric() -> None:
    mixed = [schema.LOWER_IS_BETTER, schema.HIGHER_IS_BETTER]
    result = audit(log_with(mixed), AuditOptions(primary_metric="errors"))
    [conflict] = result.direction_conflicts
    assert conflict.directions == {schema.HIGHER_IS_BETTER: 400, schema.LOWER_IS_BETTER: 400}
    assert "metric_direction_conflict" in {f.code for f in result.findings}
    assert result.decision.rule == "pause.metric_direction"


def test_records_without_a_direction_leave_the_role_default() -> None:
    result = audit(log_with([None]), AuditOptions(guardrail_metrics=("errors",)))
    assert not result.metrics[0].higher_is_better
    assert result.metrics[0].direction_from == "default" and result.direction_conflicts == ()
