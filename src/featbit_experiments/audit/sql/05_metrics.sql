-- Per-unit values and their per-variant aggregates: the tables the statistics read (and the
-- first and last day a unit reported the metric on, for the timeline).
-- A unit is one sample: its outcomes of a metric are averaged first, so ten turns of one
-- conversation do not count as ten samples. Only outcomes that joined a sticky unit (one
-- that saw a single variant) are read.

CREATE OR REPLACE TABLE audit_unit_values AS
SELECT
    experiment_key, run_id, metric, variant, unit_id,
    sum(value) AS total,
    count(*) AS records,
    min(CASE WHEN value = 1 THEN 1 ELSE 0 END) AS all_ones,
    substr(min(ts), 1, 10) AS first_day,
    substr(max(ts), 1, 10) AS last_day
FROM audit_outcome_status
WHERE status IN ('joined', 'inferred') AND unit_variants = 1
GROUP BY experiment_key, run_id, metric, variant, unit_id;

-- n units, the sum and sample SD of their means; all_ones: every record was 1 (a metric
-- tracked only on success, a conversion); binary: every unit's mean is 0 or 1.
CREATE OR REPLACE TABLE audit_metric_variants AS
SELECT
    experiment_key, run_id, metric, variant,
    count(*) AS units,
    sum(total / records) AS total,
    coalesce(stddev_samp(total / records), 0) AS sd,
    min(all_ones) AS all_ones,
    min(CASE WHEN total / records IN (0, 1) THEN 1 ELSE 0 END) AS is_binary
FROM audit_unit_values
GROUP BY experiment_key, run_id, metric, variant;

-- Outcomes measured (metricUnit) or keyed (assignmentUnit) at another unit than the run's.
CREATE OR REPLACE TABLE audit_metric_unit_mismatches AS
SELECT o.experiment_key, o.run_id, o.metric, o.other AS unit, count(*) AS outcomes
FROM (
    SELECT experiment_key, run_id, metric, metric_unit AS other
    FROM audit_outcomes WHERE value IS NOT NULL
    UNION ALL
    SELECT experiment_key, run_id, metric, assignment_unit
    FROM audit_outcomes
    WHERE value IS NOT NULL AND (metric_unit IS NULL OR assignment_unit <> metric_unit)
) o
JOIN audit_main_units m ON m.experiment_key = o.experiment_key AND m.run_id = o.run_id
WHERE o.other IS NOT NULL AND o.other <> m.unit
GROUP BY o.experiment_key, o.run_id, o.metric, o.other;

-- Which way each metric is better, as its outcome records say (metricDirection).
CREATE OR REPLACE TABLE audit_metric_directions AS
SELECT experiment_key, run_id, metric, metric_direction AS direction, count(*) AS outcomes
FROM audit_outcomes
WHERE metric_direction IS NOT NULL
GROUP BY experiment_key, run_id, metric, metric_direction;
