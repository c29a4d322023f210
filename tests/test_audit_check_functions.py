"""The audit's integrity checks on hand-made run tallies: each check is a function of the
counts the SQL produces, so its arithmetic (orders, shares, the sample-ratio test and when to
trust it, how outcomes and guardrails add up) is pinned here exactly, without a log to scan.
``test_audit_checks.py`` covers the same checks end to end, from planted defects in a log."""

from __future__ import annotations

import math

import pytest

from featbit_experiments.audit.checks import (
    exposure_split,
    integrity_impacts,
    join_summary,
    metric_unit_mismatches,
    mixed_units,
)
from featbit_experiments.audit.model import (
    GuardrailImpact,
    JoinSummary,
    MetricUnitMismatch,
    MixedUnits,
    SampleRatioTest,
    VariantExposure,
)
from featbit_experiments.audit.tallies import GuardrailTally, RunTallies


def run(**fields: object) -> RunTallies:
    return RunTallies("support-retrieval", "run-1", **fields)  # type: ignore[arg-type]


def guardrail(
    name: str, records: int, units: int, suppressed: int = 0, unkeyed: int = 0
) -> GuardrailTally:
    return GuardrailTally(
        "support-retrieval", "run-1", "flag", name, records, suppressed, units, unkeyed
    )


# -- exposure_split ---------------------------------------------------------------------------


def test_without_an_expected_split_variants_are_sorted_and_expected_equal() -> None:
    rows, srm = exposure_split(run(variant_units={"control": 20, "b": 30}), None)

    assert rows == (VariantExposure("b", 30, 0.6, 0.5), VariantExposure("control", 20, 0.4, 0.5))
    # observed 30/20 against 25/25: (5^2 + 5^2) / 25
    assert srm == SampleRatioTest(2.0, 1, pytest.approx(math.erfc(1.0)), True)


def test_an_expected_split_orders_its_variants_first_then_unexpected_then_unseen() -> None:
    tallies = run(variant_units={"x": 5, "control": 40, "a": 10})
    rows, srm = exposure_split(tallies, {"control": 0.8, "missing": 0.0, "a": 0.2})

    assert rows == (
        VariantExposure("control", 40, 40 / 55, 0.8),
        VariantExposure("a", 10, 10 / 55, 0.2),
        VariantExposure("x", 5, 5 / 55, 0.0),
        VariantExposure("missing", 0, 0.0, 0.0),
    )
    # Units on a variant the split gives no share are infinitely unlikely under it.
    assert srm == SampleRatioTest(math.inf, 3, 0.0, True)


def test_expected_weights_are_normalized_and_a_matching_split_is_no_mismatch() -> None:
    rows, srm = exposure_split(run(variant_units={"control": 80, "b": 20}), {"control": 4, "b": 1})

    assert [(row.variant, row.expected_share) for row in rows] == [("control", 0.8), ("b", 0.2)]
    assert srm == SampleRatioTest(0.0, 1, 1.0, True)


def test_a_three_way_split_has_two_degrees_of_freedom() -> None:
    _, srm = exposure_split(run(variant_units={"a": 30, "b": 30, "c": 60}), None)
    # expected 40 each: (100 + 100 + 400) / 40
    assert srm == SampleRatioTest(15.0, 2, pytest.approx(math.exp(-7.5)), True)


def test_one_variant_no_units_or_no_weight_give_no_sample_ratio_test() -> None:
    rows, srm = exposure_split(run(variant_units={"control": 12}), None)
    assert rows == (VariantExposure("control", 12, 1.0, 1.0),) and srm is None

    rows, srm = exposure_split(run(), {"control": 1, "b": 1})
    assert rows == (VariantExposure("control", 0, 0.0, 0.5), VariantExposure("b", 0, 0.0, 0.5))
    assert srm is None

    rows, srm = exposure_split(run(variant_units={"control": 6, "b": 4}), {"control": 0, "b": 0})
    assert rows == (VariantExposure("control", 6, 0.6, None), VariantExposure("b", 4, 0.4, None))
    assert srm is None


@pytest.mark.parametrize(
    ("units", "reliable"),
    [
        ({"control": 4, "b": 5}, False),  # 4.5 expected per variant
        ({"control": 5, "b": 5}, True),  # exactly five expected: trusted
        ({"control": 6, "b": 4, "z": 0}, True),  # a variant expected to get none is not counted
    ],
)
def test_the_sample_ratio_test_is_trusted_from_five_expected_units_per_variant(
    units: dict[str, int], reliable: bool
) -> None:
    _, srm = exposure_split(run(variant_units=units), {"control": 1, "b": 1, "z": 0})
    assert srm is not None and srm.reliable is reliable and math.isfinite(srm.chi_square)


def test_a_mismatch_on_few_units_is_still_trusted_when_it_is_impossible() -> None:
    _, srm = exposure_split(run(variant_units={"control": 2, "b": 1}), {"control": 1})
    assert srm == SampleRatioTest(math.inf, 1, 0.0, True)


# -- mixed units, joins, metric units ---------------------------------------------------------


def test_mixed_units_are_read_with_their_denominator_and_examples() -> None:
    tallies = run(mixed_units=3, exposed_units=40, mixed_examples=("c-1", "c-2"))
    assert mixed_units(tallies) == MixedUnits(3, 40, ("c-1", "c-2"))


def test_a_join_summary_adds_inferred_variants_to_the_joined_outcomes() -> None:
    tallies = run(
        join={
            "joined": 50,
            "inferred": 7,
            "variant_mismatch": 3,
            "no_exposure": 4,
            "no_unit_id": 2,
        },
        keyed_at_other_unit={"user": 4},
    )
    assert join_summary(tallies) == JoinSummary(
        outcomes=66,
        joined=57,
        variant_inferred=7,
        variant_mismatch=3,
        no_exposure=4,
        no_unit_id=2,
        keyed_at_other_unit={"user": 4},
    )


def test_a_join_summary_of_a_run_without_outcomes_is_all_zero() -> None:
    assert join_summary(run()) == JoinSummary(0, 0, 0, 0, 0, 0, {})
    assert join_summary(run(join={"no_exposure": 3})) == JoinSummary(3, 0, 0, 0, 3, 0, {})


def test_metric_unit_mismatches_keep_metric_unit_and_count() -> None:
    tallies = run(metric_unit_mismatches=(("resolved", "user", 12), ("latency_ms", "account", 1)))
    assert metric_unit_mismatches(tallies) == (
        MetricUnitMismatch("resolved", "user", 12),
        MetricUnitMismatch("latency_ms", "account", 1),
    )


# -- integrity_impacts ------------------------------------------------------------------------


def test_integrity_guardrails_add_up_by_name_and_sort_by_units_touched() -> None:
    tallies = [
        guardrail("fallback_used", records=4, units=3),
        guardrail("fallback_used", records=2, units=1, suppressed=5, unkeyed=1),
        guardrail("variant_switched", records=9, units=9),
        guardrail("assignment_continuity_lost", records=9, units=9),
        guardrail("provider_not_ready", records=50, units=50),  # not an integrity guardrail
    ]
    impacts = integrity_impacts(
        run(exposed_units=100),
        tallies,
        ["fallback_used", "variant_switched", "assignment_continuity_lost"],
    )
    assert impacts == (
        # 3 + (1 named + 1 without an ID + 5 suppressed) units; 4 + 2 + 5 events
        GuardrailImpact("fallback_used", 11, 10, 0.1),
        # equal units: by name
        GuardrailImpact("assignment_continuity_lost", 9, 9, 0.09),
        GuardrailImpact("variant_switched", 9, 9, 0.09),
    )


def test_an_impact_share_is_capped_at_all_units_and_defined_without_exposures() -> None:
    impacts = integrity_impacts(
        run(exposed_units=4), [guardrail("fallback_used", records=6, units=6)], ["fallback_used"]
    )
    assert impacts == (GuardrailImpact("fallback_used", 6, 6, 1.0),)

    no_exposures = run(exposed_units=0)
    assert integrity_impacts(
        no_exposures, [guardrail("fallback_used", records=2, units=2)], ["fallback_used"]
    ) == (GuardrailImpact("fallback_used", 2, 2, 1.0),)
    assert integrity_impacts(
        no_exposures, [guardrail("fallback_used", records=2, units=0)], ["fallback_used"]
    ) == (GuardrailImpact("fallback_used", 2, 0, 0.0),)


def test_no_integrity_guardrail_no_impact() -> None:
    assert integrity_impacts(run(exposed_units=10), [], ["fallback_used"]) == ()
    assert (
        integrity_impacts(
            run(exposed_units=10), [guardrail("provider_not_ready", 1, 1)], ["fallback_used"]
        )
        == ()
    )
