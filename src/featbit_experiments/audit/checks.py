"""The checks of one experiment run, each a function of the run's tallies.

- :func:`exposure_split`: exposed units per variant, and the sample-ratio-mismatch test
  against the expected split (equal over the variants seen unless given).
- :func:`join_outcomes`: which outcome records join an exposure on unit ID and variant, and
  why the others do not (no unit ID, no exposure, another variant, another unit's ID).
- :func:`mixed_units`: units exposed to more than one variant.
- :func:`metric_unit_mismatches`: outcomes measured or keyed at another unit than the run's.

Outcomes of units with mixed variants join but are not handed on to the readouts (their
outcome has no single cause); see ``readouts``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from ..units import STANDARD_UNITS
from .collect import OutcomeCell, OutcomeKey, RunEvents
from .model import (
    JoinSummary,
    MetricUnitMismatch,
    MixedUnits,
    SampleRatioTest,
    VariantExposure,
)
from .stats import (
    chi_square_sf,
    chi_square_statistic,
)

__all__ = [
    "JoinedOutcome",
    "assignment_unit",
    "exposure_split",
    "join_outcomes",
    "metric_unit_mismatches",
    "mixed_units",
]

_UNIT_OF_FIELD = {unit.attribute: unit.name for unit in STANDARD_UNITS}
_FIELD_OF_UNIT = {unit.name: unit.attribute for unit in STANDARD_UNITS}
#: Fewest expected units per variant for the chi-square approximation to be trusted.
_MIN_EXPECTED = 5
_MAX_EXAMPLES = 5


@dataclass(frozen=True)
class JoinedOutcome:
    """Outcome records that joined: their metric, unit, variant, segment and values."""

    metric: str
    unit_id: str
    variant: str
    segment: str | None
    cell: OutcomeCell


def assignment_unit(run: RunEvents) -> tuple[str | None, Counter[str]]:
    """The run's assignment unit (the one most units were exposed under) and units per
    assignment unit; more than one means the unit changed mid-run."""
    counts: Counter[str] = Counter()
    for units in run.unit_assignment.values():
        counts.update(units.keys())
    main = counts.most_common(1)[0][0] if counts else None
    return main, counts


def exposure_split(
    run: RunEvents, expected: Mapping[str, float] | None
) -> tuple[tuple[VariantExposure, ...], SampleRatioTest | None]:
    """Units per variant (a unit with mixed variants counts under each) and the SRM test."""
    counts: Counter[str] = Counter()
    for variants in run.unit_variants.values():
        counts.update(variants.keys())
    names = sorted(counts)
    if expected is not None:
        names = [name for name in expected if name in counts] + [
            name for name in names if name not in expected
        ]
        names += [name for name in expected if name not in counts]
        weights = {name: float(expected.get(name, 0.0)) for name in names}
    else:
        weights = dict.fromkeys(names, 1.0)
    total_weight = sum(weights.values())
    total = sum(counts.values())
    rows = tuple(
        VariantExposure(
            name,
            counts[name],
            counts[name] / total if total else 0.0,
            weights[name] / total_weight if total_weight else None,
        )
        for name in names
    )
    if len(names) < 2 or total == 0 or total_weight <= 0:
        return rows, None
    observed = [float(row.units) for row in rows]
    wanted = [total * (row.expected_share or 0.0) for row in rows]
    statistic = chi_square_statistic(observed, wanted)
    reliable = math.isinf(statistic) or min(w for w in wanted if w > 0) >= _MIN_EXPECTED
    df = len(names) - 1
    return rows, SampleRatioTest(statistic, df, chi_square_sf(statistic, df), reliable)


def mixed_units(run: RunEvents) -> MixedUnits:
    mixed = [unit for unit, variants in run.unit_variants.items() if len(variants) > 1]
    return MixedUnits(len(mixed), len(run.unit_variants), tuple(sorted(mixed)[:_MAX_EXAMPLES]))


def join_outcomes(run: RunEvents, unit: str | None) -> tuple[JoinSummary, list[JoinedOutcome]]:
    """Join every outcome cell to the run's exposures on unit ID and variant."""
    own_field = _FIELD_OF_UNIT.get(unit) if unit is not None else None
    tally: Counter[str] = Counter()
    other_unit: Counter[str] = Counter()
    joined: list[JoinedOutcome] = []
    for key, cell in run.outcomes.items():
        if key.unit_id is None:
            tally["no_unit_id"] += cell.count
            continue
        variants = run.unit_variants.get(key.unit_id)
        if variants is None:
            wrong = _other_unit_of(key, run, own_field)
            if wrong is not None:
                other_unit[wrong] += cell.count
            else:
                tally["no_exposure"] += cell.count
            continue
        if key.variant is None and len(variants) == 1:
            tally["joined"] += cell.count
            tally["inferred"] += cell.count
            variant = next(iter(variants))
        elif key.variant is not None and key.variant in variants:
            tally["joined"] += cell.count
            variant = key.variant
        else:
            tally["variant_mismatch"] += cell.count
            continue
        if len(variants) == 1:
            joined.append(JoinedOutcome(key.metric, key.unit_id, variant, key.segment, cell))
    summary = JoinSummary(
        outcomes=sum(cell.count for cell in run.outcomes.values()),
        joined=tally["joined"],
        variant_inferred=tally["inferred"],
        variant_mismatch=tally["variant_mismatch"],
        no_exposure=tally["no_exposure"],
        no_unit_id=tally["no_unit_id"],
        keyed_at_other_unit=dict(other_unit),
    )
    return summary, joined


def _other_unit_of(key: OutcomeKey, run: RunEvents, own_field: str | None) -> str | None:
    """The unit whose ID an unjoined outcome is keyed by, if it can be told."""
    for name, values in run.other_ids.items():
        if key.unit_id in values:
            return _UNIT_OF_FIELD.get(name, name)
    ids = dict(key.ids)
    if own_field is not None and ids.get(own_field) not in (None, key.unit_id):
        for name, value in ids.items():
            if value == key.unit_id and name != own_field:
                return _UNIT_OF_FIELD.get(name, name)
        return "another unit"
    return None


def metric_unit_mismatches(run: RunEvents, unit: str | None) -> tuple[MetricUnitMismatch, ...]:
    """Outcome records measured (``metricUnit``) or keyed (``assignmentUnit``) at another
    unit than the run's assignment unit, per metric and unit."""
    if unit is None:
        return ()
    counts: Counter[tuple[str, str]] = Counter()
    for key, cell in run.outcomes.items():
        for other in {key.metric_unit, key.assignment_unit}:
            if other is not None and other != unit:
                counts[(key.metric, other)] += cell.count
    return tuple(MetricUnitMismatch(m, u, n) for (m, u), n in sorted(counts.items()))
