-- Guardrail events by experiment, run, flag and name. A throttled guardrail stands for
-- itself and the `suppressed` records it replaced, so both are summed. run_id stays NULL
-- when the record names none (it is attributed to the experiment's only run, if it has one).
CREATE OR REPLACE TABLE audit_guardrails AS
SELECT
    experiment_key,
    run_id,
    flag_key,
    coalesce(guardrail, '(unnamed)') AS guardrail,
    count(*) AS records,
    sum(coalesce(suppressed, 0)) AS suppressed,
    count(DISTINCT unit_id) AS units,
    sum(CASE WHEN unit_id IS NULL THEN 1 ELSE 0 END) AS records_without_unit_id
FROM events
WHERE event = 'experiment_guardrail'
GROUP BY experiment_key, run_id, flag_key, coalesce(guardrail, '(unnamed)');
