-- The run day by day (a day is the first ten characters of an ISO-8601 timestamp).

-- Units first exposed to each variant per day; sticky_units counts units that saw only it.
CREATE OR REPLACE TABLE audit_daily_exposures AS
SELECT experiment_key, run_id, day, variant, sum(units) AS units, sum(sticky) AS sticky_units
FROM (
    SELECT experiment_key, run_id, substr(first_exposed, 1, 10) AS day, variant,
           count(*) AS units, count(*) AS sticky
    FROM audit_units
    WHERE variants = 1 AND first_exposed IS NOT NULL
    GROUP BY experiment_key, run_id, substr(first_exposed, 1, 10), variant
    UNION ALL
    SELECT experiment_key, run_id, substr(first_exposed, 1, 10), variant, count(*), 0
    FROM audit_mixed_pairs
    WHERE first_exposed IS NOT NULL
    GROUP BY experiment_key, run_id, substr(first_exposed, 1, 10), variant
) parts
GROUP BY experiment_key, run_id, day, variant;

-- The metrics named in audit_timeline_metrics, as they stood at the end of each day: each
-- unit's running mean, turned into the day's change of its variant's n, sum and sum of
-- squares. Summing the changes up to a day gives that day's per-variant aggregates.

-- Units that reported a metric on one day only (most units): their mean is final that day.
-- The others' running means come from their outcomes day by day.
CREATE OR REPLACE TABLE audit_daily_metrics AS
SELECT
    experiment_key, run_id, metric, variant, day,
    sum(CASE WHEN previous IS NULL THEN 1 ELSE 0 END) AS new_units,
    sum(mean - coalesce(previous, 0)) AS sum_change,
    sum(mean * mean - coalesce(previous * previous, 0)) AS square_change
FROM (
    SELECT v.experiment_key, v.run_id, v.metric, v.variant, v.first_day AS day,
           v.total / v.records AS mean, CAST(NULL AS DOUBLE) AS previous
    FROM audit_unit_values v
    JOIN audit_timeline_metrics t ON t.metric = v.metric
    WHERE v.first_day = v.last_day
    UNION ALL
    SELECT
        experiment_key, run_id, metric, variant, day, mean,
        lag(mean) OVER (
            PARTITION BY experiment_key, run_id, metric, unit_id ORDER BY day
        ) AS previous
    FROM (
        SELECT
            experiment_key, run_id, metric, variant, unit_id, day,
            sum(total) OVER (
                PARTITION BY experiment_key, run_id, metric, unit_id ORDER BY day
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            ) / sum(records) OVER (
                PARTITION BY experiment_key, run_id, metric, unit_id ORDER BY day
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            ) AS mean
        FROM (
            SELECT
                s.experiment_key, s.run_id, s.metric, s.variant, s.unit_id,
                substr(s.ts, 1, 10) AS day,
                sum(s.value) AS total,
                count(*) AS records
            FROM audit_outcome_status s
            JOIN audit_unit_values v
              ON v.experiment_key = s.experiment_key AND v.run_id = s.run_id
             AND v.metric = s.metric AND v.unit_id = s.unit_id
            JOIN audit_timeline_metrics t ON t.metric = s.metric
            WHERE v.first_day <> v.last_day
              AND s.status IN ('joined', 'inferred') AND s.unit_variants = 1
              AND s.ts IS NOT NULL
            GROUP BY s.experiment_key, s.run_id, s.metric, s.variant, s.unit_id,
                     substr(s.ts, 1, 10)
        ) daily
    ) running
) changes
GROUP BY experiment_key, run_id, metric, variant, day;
