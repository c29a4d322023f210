-- Exposed units: which variants each unit saw, under which assignment unit, and when.
-- A sticky unit saw one variant; a unit that saw several is "mixed" and is counted under
-- each of its variants in the split, but none of its outcomes is read.

-- One row per (unit, variant): when the unit first saw the variant, and the unit's segment
-- value as its exposures carry it.
CREATE OR REPLACE TABLE audit_unit_variants AS
SELECT
    experiment_key, run_id, unit_id, variant,
    min(ts) AS first_exposed,
    min(segment) AS segment
FROM audit_exposures
WHERE unit_id IS NOT NULL
GROUP BY experiment_key, run_id, unit_id, variant;

-- One row per exposed unit.
CREATE OR REPLACE TABLE audit_units AS
SELECT
    experiment_key, run_id, unit_id,
    count(*) AS variants,
    min(variant) AS variant,
    min(first_exposed) AS first_exposed,
    min(segment) AS segment
FROM audit_unit_variants
GROUP BY experiment_key, run_id, unit_id;

-- The (unit, variant) pairs of mixed units: what an outcome of a mixed unit is checked
-- against (a sticky unit's one variant is in audit_units). Mixed units are few, so they are
-- the side the join builds on.
CREATE OR REPLACE TABLE audit_mixed_pairs AS
SELECT p.experiment_key, p.run_id, p.unit_id, p.variant, p.first_exposed
FROM audit_unit_variants p
JOIN (
    SELECT experiment_key, run_id, unit_id FROM audit_units WHERE variants > 1
) m
  ON m.experiment_key = p.experiment_key AND m.run_id = p.run_id AND m.unit_id = p.unit_id;

-- Units per variant (a mixed unit under each of its variants), and sticky units per variant:
-- the sticky units from audit_units, the mixed ones from their pairs.
CREATE OR REPLACE TABLE audit_variant_units AS
SELECT
    experiment_key, run_id, variant,
    sum(units) AS units,
    sum(sticky_units) AS sticky_units,
    min(first_exposed) AS first_exposed
FROM (
    SELECT experiment_key, run_id, variant, count(*) AS units, count(*) AS sticky_units,
           min(first_exposed) AS first_exposed
    FROM audit_units
    WHERE variants = 1
    GROUP BY experiment_key, run_id, variant
    UNION ALL
    SELECT experiment_key, run_id, variant, count(*), 0, min(first_exposed)
    FROM audit_mixed_pairs
    GROUP BY experiment_key, run_id, variant
) parts
GROUP BY experiment_key, run_id, variant;

-- Exposed units and mixed units per run, and the first few mixed units as examples.
CREATE OR REPLACE TABLE audit_mixed_units AS
SELECT
    experiment_key, run_id,
    count(*) AS units,
    sum(CASE WHEN variants > 1 THEN 1 ELSE 0 END) AS mixed_units
FROM audit_units
GROUP BY experiment_key, run_id;

CREATE OR REPLACE TABLE audit_mixed_examples AS
SELECT experiment_key, run_id, unit_id
FROM (
    SELECT
        experiment_key, run_id, unit_id,
        row_number() OVER (PARTITION BY experiment_key, run_id ORDER BY unit_id) AS position
    FROM audit_units
    WHERE variants > 1
) mixed
WHERE position <= 5;

-- Units per assignment unit; more than one assignment unit in a run means the unit changed.
CREATE OR REPLACE TABLE audit_assignment_units AS
SELECT
    experiment_key, run_id, assignment_unit,
    count(DISTINCT unit_id) AS units,
    min(ts) AS first_seen
FROM audit_exposures
WHERE unit_id IS NOT NULL
GROUP BY experiment_key, run_id, assignment_unit;

-- The run's assignment unit: the one most units were exposed under (the earliest on a tie).
CREATE OR REPLACE TABLE audit_main_units AS
SELECT experiment_key, run_id, assignment_unit AS unit
FROM (
    SELECT
        experiment_key, run_id, assignment_unit,
        row_number() OVER (
            PARTITION BY experiment_key, run_id ORDER BY units DESC, first_seen, assignment_unit
        ) AS position
    FROM audit_assignment_units
) ranked
WHERE position = 1;

-- Exposures per reason, and exposures that carry no unit ID.
CREATE OR REPLACE TABLE audit_exposure_reasons AS
SELECT
    experiment_key, run_id, reason,
    count(*) AS exposures,
    sum(CASE WHEN unit_id IS NULL THEN 1 ELSE 0 END) AS without_unit_id
FROM audit_exposures
GROUP BY experiment_key, run_id, reason;
