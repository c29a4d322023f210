-- Every metric per segment: the same per-unit aggregation as 05_metrics.sql within each
-- segment value, and the sticky units exposed per segment (a conversion's denominators, which
-- exist only when exposures carry the segment field).

CREATE OR REPLACE TABLE audit_segment_variants AS
SELECT
    experiment_key, run_id, metric, segment, variant,
    count(*) AS units,
    sum(total / records) AS total,
    coalesce(stddev_samp(total / records), 0) AS sd,
    min(all_ones) AS all_ones,
    min(CASE WHEN total / records IN (0, 1) THEN 1 ELSE 0 END) AS is_binary
FROM (
    SELECT
        experiment_key, run_id, metric, segment, variant, unit_id,
        sum(value) AS total,
        count(*) AS records,
        min(CASE WHEN value = 1 THEN 1 ELSE 0 END) AS all_ones
    FROM audit_outcome_status
    WHERE status IN ('joined', 'inferred') AND unit_variants = 1 AND segment IS NOT NULL
    GROUP BY experiment_key, run_id, metric, segment, variant, unit_id
) unit_values
GROUP BY experiment_key, run_id, metric, segment, variant;

CREATE OR REPLACE TABLE audit_segment_units AS
SELECT experiment_key, run_id, segment, variant, count(*) AS units
FROM audit_units
WHERE variants = 1 AND segment IS NOT NULL
GROUP BY experiment_key, run_id, segment, variant;

-- How many exposure and outcome records carry the segment field at all, so a field that no
-- record has (misspelled, or on neither kind) is said, not shown as an empty breakdown.
CREATE OR REPLACE TABLE audit_segment_coverage AS
SELECT
    experiment_key, run_id,
    sum(CASE WHEN kind = 'exposure' THEN 1 ELSE 0 END) AS exposures,
    sum(CASE WHEN kind = 'outcome' THEN 1 ELSE 0 END) AS outcomes
FROM (
    SELECT experiment_key, run_id, 'exposure' AS kind FROM audit_exposures
    WHERE segment IS NOT NULL
    UNION ALL
    SELECT experiment_key, run_id, 'outcome' FROM audit_outcomes WHERE segment IS NOT NULL
) carried
GROUP BY experiment_key, run_id;
