-- Every outcome with a numeric value, joined to its unit's exposures on unit ID and variant.
-- status:
--   joined            an exposure of this run has the same unit ID and variant
--   inferred          no variant on the outcome, and its unit saw exactly one
--   variant_mismatch  its unit saw other variants only
--   no_exposure       no exposure of this run has its unit ID
--   other_unit        no exposure has its unit ID, which is another unit's ID (other_unit
--                     names which: 'user' for a user ID in a conversation experiment)
--   no_unit_id        it carries no unit ID
-- The segment is the outcome's own value, else its unit's (from the unit's exposures).
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
        WHEN u.unit_id IS NULL AND o.other_unit IS NOT NULL THEN 'other_unit'
        WHEN u.unit_id IS NULL THEN 'no_exposure'
        WHEN o.variant IS NULL AND u.variants = 1 THEN 'inferred'
        WHEN p.unit_id IS NOT NULL THEN 'joined'
        ELSE 'variant_mismatch'
    END AS status,
    CASE WHEN u.unit_id IS NULL THEN o.other_unit END AS other_unit
FROM (
    SELECT
        o.*,
        CASE
            WHEN x.field_rank = 1 THEN 'conversation'
            WHEN x.field_rank = 2 THEN 'user'
            WHEN x.field_rank = 3 THEN 'account'
            WHEN x.field_rank = 4 THEN 'workflow'
            WHEN x.field_rank = 5 THEN 'request'
            -- The outcome's own ID of the run's unit differs from its key: keyed by another.
            WHEN (CASE m.unit
                      WHEN 'conversation' THEN o.conversation_id
                      WHEN 'user' THEN o.user_id
                      WHEN 'account' THEN o.account_id
                      WHEN 'workflow' THEN o.workflow_id
                      WHEN 'request' THEN o.request_id
                  END) <> o.unit_id THEN
                CASE
                    WHEN m.unit <> 'conversation' AND o.unit_id = o.conversation_id
                        THEN 'conversation'
                    WHEN m.unit <> 'user' AND o.unit_id = o.user_id THEN 'user'
                    WHEN m.unit <> 'account' AND o.unit_id = o.account_id THEN 'account'
                    WHEN m.unit <> 'workflow' AND o.unit_id = o.workflow_id THEN 'workflow'
                    WHEN m.unit <> 'request' AND o.unit_id = o.request_id THEN 'request'
                    ELSE 'another unit'
                END
        END AS other_unit
    FROM audit_outcomes o
    LEFT JOIN audit_other_ids x
      ON x.experiment_key = o.experiment_key AND x.run_id = o.run_id AND x.id = o.unit_id
    LEFT JOIN audit_main_units m
      ON m.experiment_key = o.experiment_key AND m.run_id = o.run_id
    WHERE o.value IS NOT NULL
) o
LEFT JOIN audit_units u
  ON u.experiment_key = o.experiment_key AND u.run_id = o.run_id AND u.unit_id = o.unit_id
LEFT JOIN audit_unit_variants p
  ON p.experiment_key = o.experiment_key AND p.run_id = o.run_id
 AND p.unit_id = o.unit_id AND p.variant = o.variant;

-- Outcomes per join status (and per other unit), the join summary's counts.
CREATE OR REPLACE TABLE audit_join AS
SELECT experiment_key, run_id, status, other_unit, count(*) AS outcomes
FROM audit_outcome_status
GROUP BY experiment_key, run_id, status, other_unit;

-- Outcome records without a numeric value.
CREATE OR REPLACE TABLE audit_valueless_outcomes AS
SELECT experiment_key, run_id, count(*) AS outcomes
FROM audit_outcomes
WHERE value IS NULL
GROUP BY experiment_key, run_id;
