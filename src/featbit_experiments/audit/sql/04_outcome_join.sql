-- Every outcome with a numeric value, joined to its unit's exposures on unit ID and variant.
-- status:
--   joined            an exposure of this run has the same unit ID and variant
--   inferred          no variant on the outcome, and its unit saw exactly one
--   variant_mismatch  its unit saw other variants only
--   unexposed         no exposure of this run has its unit ID (told apart below)
--   no_unit_id        it carries no unit ID
-- The segment is the outcome's own value, else its unit's (from the unit's exposures). The
-- other units' IDs are kept for unexposed outcomes only (the rest need none).
CREATE OR REPLACE TABLE audit_outcome_status AS
SELECT
    o.experiment_key,
    o.run_id,
    o.metric,
    o.unit_id,
    coalesce(o.variant, u.variant) AS variant,
    o.value,
    o.ts,
    coalesce(o.segment, u.segment) AS segment,
    u.variants AS unit_variants,
    CASE
        WHEN o.unit_id IS NULL THEN 'no_unit_id'
        WHEN u.unit_id IS NULL THEN 'unexposed'
        WHEN o.variant IS NULL AND u.variants = 1 THEN 'inferred'
        WHEN u.variants = 1 AND o.variant = u.variant THEN 'joined'
        WHEN p.unit_id IS NOT NULL THEN 'joined'
        ELSE 'variant_mismatch'
    END AS status,
    CASE WHEN u.unit_id IS NULL THEN o.conversation_id END AS conversation_id,
    CASE WHEN u.unit_id IS NULL THEN o.user_id END AS user_id,
    CASE WHEN u.unit_id IS NULL THEN o.account_id END AS account_id,
    CASE WHEN u.unit_id IS NULL THEN o.workflow_id END AS workflow_id,
    CASE WHEN u.unit_id IS NULL THEN o.request_id END AS request_id
FROM audit_outcomes o
LEFT JOIN audit_units u
  ON u.experiment_key = o.experiment_key AND u.run_id = o.run_id AND u.unit_id = o.unit_id
LEFT JOIN audit_mixed_pairs p
  ON p.experiment_key = o.experiment_key AND p.run_id = o.run_id
 AND p.unit_id = o.unit_id AND p.variant = o.variant
WHERE o.value IS NOT NULL;

-- Other units' IDs that exposures carry (the user ID on a conversation's exposure), for the
-- unit IDs of unexposed outcomes only, so such an outcome can be named rather than counted
-- as "no exposure". field_rank: 1 conversationId, 2 userId, 3 accountId, 4 workflowId,
-- 5 requestId.
CREATE OR REPLACE TABLE audit_other_ids AS
SELECT experiment_key, run_id, id, min(field_rank) AS field_rank
FROM (
    SELECT experiment_key, run_id, conversation_id AS id, 1 AS field_rank
    FROM audit_exposures WHERE unit_id IS NOT NULL AND conversation_id <> unit_id
    UNION ALL
    SELECT experiment_key, run_id, user_id, 2
    FROM audit_exposures WHERE unit_id IS NOT NULL AND user_id <> unit_id
    UNION ALL
    SELECT experiment_key, run_id, account_id, 3
    FROM audit_exposures WHERE unit_id IS NOT NULL AND account_id <> unit_id
    UNION ALL
    SELECT experiment_key, run_id, workflow_id, 4
    FROM audit_exposures WHERE unit_id IS NOT NULL AND workflow_id <> unit_id
    UNION ALL
    SELECT experiment_key, run_id, request_id, 5
    FROM audit_exposures WHERE unit_id IS NOT NULL AND request_id <> unit_id
) other_ids
WHERE id IN (SELECT unit_id FROM audit_outcome_status WHERE status = 'unexposed')
GROUP BY experiment_key, run_id, id;

-- Unexposed outcomes told apart: keyed by another unit's ID (other_unit names which: 'user'
-- for a user ID in a conversation experiment), or simply without an exposure.
CREATE OR REPLACE TABLE audit_unexposed AS
SELECT experiment_key, run_id, other_unit, count(*) AS outcomes
FROM (
    SELECT
        s.experiment_key, s.run_id,
        CASE
            WHEN x.field_rank = 1 THEN 'conversation'
            WHEN x.field_rank = 2 THEN 'user'
            WHEN x.field_rank = 3 THEN 'account'
            WHEN x.field_rank = 4 THEN 'workflow'
            WHEN x.field_rank = 5 THEN 'request'
            -- The outcome's own ID of the run's unit differs from its key: keyed by another.
            WHEN (CASE m.unit
                      WHEN 'conversation' THEN s.conversation_id
                      WHEN 'user' THEN s.user_id
                      WHEN 'account' THEN s.account_id
                      WHEN 'workflow' THEN s.workflow_id
                      WHEN 'request' THEN s.request_id
                  END) <> s.unit_id THEN
                CASE
                    WHEN m.unit <> 'conversation' AND s.unit_id = s.conversation_id
                        THEN 'conversation'
                    WHEN m.unit <> 'user' AND s.unit_id = s.user_id THEN 'user'
                    WHEN m.unit <> 'account' AND s.unit_id = s.account_id THEN 'account'
                    WHEN m.unit <> 'workflow' AND s.unit_id = s.workflow_id THEN 'workflow'
                    WHEN m.unit <> 'request' AND s.unit_id = s.request_id THEN 'request'
                    ELSE 'another unit'
                END
        END AS other_unit
    FROM audit_outcome_status s
    LEFT JOIN audit_other_ids x
      ON x.experiment_key = s.experiment_key AND x.run_id = s.run_id AND x.id = s.unit_id
    LEFT JOIN audit_main_units m
      ON m.experiment_key = s.experiment_key AND m.run_id = s.run_id
    WHERE s.status = 'unexposed'
) unexposed
GROUP BY experiment_key, run_id, other_unit;

-- Outcomes per join status (and per other unit), the join summary's counts.
CREATE OR REPLACE TABLE audit_join AS
SELECT experiment_key, run_id, status, CAST(NULL AS VARCHAR) AS other_unit, count(*) AS outcomes
FROM audit_outcome_status
WHERE status <> 'unexposed'
GROUP BY experiment_key, run_id, status
UNION ALL
SELECT
    experiment_key, run_id,
    CASE WHEN other_unit IS NULL THEN 'no_exposure' ELSE 'other_unit' END,
    other_unit,
    outcomes
FROM audit_unexposed;

-- Outcome records without a numeric value.
CREATE OR REPLACE TABLE audit_valueless_outcomes AS
SELECT experiment_key, run_id, count(*) AS outcomes
FROM audit_outcomes
WHERE value IS NULL
GROUP BY experiment_key, run_id;
