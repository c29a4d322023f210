"""The integrity checks of one experiment run, each a function of the run's tallies.

- :func:`exposure_split`: exposed units per variant, and the sample-ratio-mismatch test
  against the expected split (equal over the variants seen unless given).
- :func:`join_summary`: how many outcome records join an exposure on unit ID and variant,
  and why the others do not (no unit ID, no exposure, another variant, another unit's ID).
- :func:`mixed_units`: units exposed to more than one variant.
- :func:`metric_unit_mismatches`: outcomes measured or keyed at another unit than the run's.
- :func:`integrity_impacts`: integrity guardrails (fallbacks...) as a share of the units.

The joins themselves run in SQL (``sql/04_outcome_join.sql``); these read their counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from .model import (
    GuardrailImpact,
    JoinSummary,
    MetricUnitMismatch,
    MixedUnits,
    SampleRatioTest,
    VariantExposure,
)
from .stats import chi_square_sf, chi_square_statistic
from .tallies import GuardrailTally, RunTallies

__all__ = [
    "exposure_split",
    "integrity_impacts",
    "join_summary",
    "metric_unit_mismatches",
    "mixed_units",
]

#: Fewest expected units per variant for the chi-square approximation to be trusted.
_MIN_EXPECTED = 5


def exposure_split(
    run: RunTallies, expected: Mapping[str, float] | None
) -> tuple[tuple[VariantExposure, ...], SampleRatioTest | None]:
    """Units per variant (a unit with mixed variants counts under each) and the SRM test."""
    counts = run.variant_units
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
            counts.get(name, 0),
            counts.get(name, 0) / total if total else 0.0,
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


def mixed_units(run: RunTallies) -> MixedUnits:
    return MixedUnits(run.mixed_units, run.exposed_units, run.mixed_examples)


def join_summary(run: RunTallies) -> JoinSummary:
    counts = run.join
    return JoinSummary(
        outcomes=sum(counts.values()),
        joined=counts.get("joined", 0) + counts.get("inferred", 0),
        variant_inferred=counts.get("inferred", 0),
        variant_mismatch=counts.get("variant_mismatch", 0),
        no_exposure=counts.get("no_exposure", 0),
        no_unit_id=counts.get("no_unit_id", 0),
        keyed_at_other_unit=dict(run.keyed_at_other_unit),
    )


def metric_unit_mismatches(run: RunTallies) -> tuple[MetricUnitMismatch, ...]:
    """Outcome records measured (``metricUnit``) or keyed (``assignmentUnit``) at another
    unit than the run's assignment unit, per metric and unit."""
    return tuple(MetricUnitMismatch(m, u, n) for m, u, n in run.metric_unit_mismatches)


def integrity_impacts(
    run: RunTallies, tallies: Iterable[GuardrailTally], names: Iterable[str]
) -> tuple[GuardrailImpact, ...]:
    """Each integrity guardrail attributed to the run: occurrences, the units it touched at
    most, and their share of the run's exposed units (capped at 1)."""
    wanted = set(names)
    events: dict[str, int] = {}
    units: dict[str, int] = {}
    for tally in tallies:
        if tally.name in wanted:
            events[tally.name] = events.get(tally.name, 0) + tally.events
            units[tally.name] = units.get(tally.name, 0) + tally.affected_units
    impacts = []
    for name in sorted(events, key=lambda n: (-units[n], n)):
        base = run.exposed_units
        share = min(1.0, units[name] / base) if base else (1.0 if units[name] else 0.0)
        impacts.append(GuardrailImpact(name, events[name], units[name], share))
    return tuple(impacts)
