-- A unit changed without its label changing: exposures whose unitId is not the record's own
-- ID of its assignment unit (a conversation experiment whose unitId became the user's ID).
-- `matched_field` names the ID field unitId equals instead, when one does.
CREATE OR REPLACE TABLE audit_unit_id_changes AS
SELECT
    experiment_key, run_id, assignment_unit, matched_field,
    count(*) AS exposures,
    count(DISTINCT unit_id) AS units,
    min(ts) AS since
FROM (
    SELECT
        experiment_key, run_id, assignment_unit, unit_id, ts,
        CASE assignment_unit
            WHEN 'conversation' THEN conversation_id
            WHEN 'user' THEN user_id
            WHEN 'account' THEN account_id
            WHEN 'workflow' THEN workflow_id
            WHEN 'request' THEN request_id
        END AS own_id,
        CASE
            WHEN assignment_unit <> 'conversation' AND unit_id = conversation_id
                THEN 'conversationId'
            WHEN assignment_unit <> 'user' AND unit_id = user_id THEN 'userId'
            WHEN assignment_unit <> 'account' AND unit_id = account_id THEN 'accountId'
            WHEN assignment_unit <> 'workflow' AND unit_id = workflow_id THEN 'workflowId'
            WHEN assignment_unit <> 'request' AND unit_id = request_id THEN 'requestId'
        END AS matched_field
    FROM audit_exposures
    WHERE unit_id IS NOT NULL
) exposures
WHERE own_id IS NOT NULL AND own_id <> unit_id
GROUP BY experiment_key, run_id, assignment_unit, matched_field;
