-- What the log holds, before anything is joined: records per event kind, and whether they
-- name an experiment. A record with no `event` field has event NULL here.
--
-- Input: the `events` table (one row per record; see docs/audit-sql.md for its columns).

CREATE OR REPLACE TABLE audit_record_kinds AS
SELECT
    event,
    CASE WHEN experiment_key IS NULL THEN 0 ELSE 1 END AS names_experiment,
    count(*) AS records
FROM events
GROUP BY event, CASE WHEN experiment_key IS NULL THEN 0 ELSE 1 END;

-- Exposures and outcomes of experiment runs. A record without a run id belongs to run ''.
CREATE OR REPLACE VIEW audit_exposures AS
SELECT
    experiment_key,
    coalesce(run_id, '') AS run_id,
    flag_key,
    unit_id,
    coalesce(variant, '(none)') AS variant,
    coalesce(assignment_unit, '(none)') AS assignment_unit,
    coalesce(reason, '(none)') AS reason,
    ts,
    segment,
    conversation_id,
    user_id,
    account_id,
    workflow_id,
    request_id
FROM events
WHERE event = 'experiment_exposure' AND experiment_key IS NOT NULL;

CREATE OR REPLACE VIEW audit_outcomes AS
SELECT
    experiment_key,
    coalesce(run_id, '') AS run_id,
    flag_key,
    coalesce(metric, '(unnamed)') AS metric,
    unit_id,
    variant,
    metric_unit,
    assignment_unit,
    metric_direction,
    value,
    ts,
    segment,
    conversation_id,
    user_id,
    account_id,
    workflow_id,
    request_id
FROM events
WHERE event = 'experiment_outcome' AND experiment_key IS NOT NULL;

-- Runs: every (experiment key, run id) with an exposure or an outcome, its timestamps' span.
CREATE OR REPLACE TABLE audit_runs AS
SELECT experiment_key, run_id, min(ts) AS first_timestamp, max(ts) AS last_timestamp
FROM (
    SELECT experiment_key, run_id, ts FROM audit_exposures
    UNION ALL
    SELECT experiment_key, run_id, ts FROM audit_outcomes
) run_events
GROUP BY experiment_key, run_id;

CREATE OR REPLACE TABLE audit_run_flags AS
SELECT experiment_key, run_id, flag_key, min(ts) AS first_seen
FROM (
    SELECT experiment_key, run_id, flag_key, ts FROM audit_exposures
    UNION ALL
    SELECT experiment_key, run_id, flag_key, ts FROM audit_outcomes
) run_events
WHERE flag_key IS NOT NULL
GROUP BY experiment_key, run_id, flag_key;
