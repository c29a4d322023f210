"""The preflight's power arithmetic against statsmodels' reference implementation (a test-only
dependency): detection power, the minimum detectable effect for proportions and means, and the
units needed for a target effect, over balanced and unbalanced arms."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power
from statsmodels.stats.proportion import proportion_effectsize

from featbit_experiments.preflight import power

ARMS = [(50, 1.0), (400, 1.0), (7_000, 1.0), (300, 3.0), (1_000, 0.25)]


@pytest.mark.parametrize(("n1", "ratio"), ARMS)
@pytest.mark.parametrize("effect", [0.02, 0.1, 0.35])
def test_detection_power_equals_statsmodels_normal_power(
    n1: int, ratio: float, effect: float
) -> None:
    reference = NormalIndPower().power(effect, n1, alpha=0.05, ratio=ratio)
    assert power.detection_power(effect, n1, n1 * ratio) == pytest.approx(reference, abs=1e-12)


@pytest.mark.parametrize(("n1", "ratio"), ARMS)
def test_standardized_mde_matches_statsmodels_solve_power(n1: int, ratio: float) -> None:
    mde = power.standardized_mde(n1, n1 * ratio)
    solved = NormalIndPower().solve_power(None, nobs1=n1, alpha=0.05, power=0.8, ratio=ratio)
    assert mde == pytest.approx(solved, rel=1e-4)  # statsmodels' root finder stops at ~1e-5
    # ...and ours sits on the 80% curve of the reference's own power function, to rounding.
    assert NormalIndPower().power(mde, n1, alpha=0.05, ratio=ratio) == pytest.approx(0.8, abs=1e-9)


@pytest.mark.parametrize(("n1", "ratio"), ARMS)
def test_mean_mde_matches_statsmodels_z_test_in_units_of_the_metric(n1: int, ratio: float) -> None:
    sd = 420.0
    solved = zt_ind_solve_power(None, nobs1=n1, alpha=0.05, power=0.8, ratio=ratio)
    assert power.mean_mde(sd, n1, n1 * ratio) == pytest.approx(solved * sd, rel=1e-4)


@pytest.mark.parametrize("baseline", [0.05, 0.35, 0.62, 0.9])
@pytest.mark.parametrize(("n1", "ratio"), ARMS)
def test_proportion_mde_is_the_rate_whose_cohens_h_is_the_detectable_effect(
    baseline: float, n1: int, ratio: float
) -> None:
    lift = power.proportion_mde(baseline, n1, n1 * ratio)
    if lift is None:  # no rate up to 1 is far enough: the reference agrees h exceeds the room
        room = proportion_effectsize(1.0, baseline)
        assert power.standardized_mde(n1, n1 * ratio) > room
        return
    h = proportion_effectsize(baseline + lift, baseline)
    assert NormalIndPower().power(h, n1, alpha=0.05, ratio=ratio) == pytest.approx(0.8, abs=1e-9)


def test_proportion_mde_downwards_for_a_metric_where_lower_is_better() -> None:
    drop = power.proportion_mde(0.2, 2_000, 2_000, higher_is_better=False)
    assert drop is not None and drop < 0
    h = proportion_effectsize(0.2 + drop, 0.2)
    assert NormalIndPower().power(h, 2_000, alpha=0.05) == pytest.approx(0.8, abs=1e-9)


@pytest.mark.parametrize("ratio", [1.0, 3.0, 0.25])
@pytest.mark.parametrize("effect", [0.05, 0.2, 0.6])
def test_units_for_effect_matches_statsmodels_sample_size(effect: float, ratio: float) -> None:
    solved = NormalIndPower().solve_power(effect, nobs1=None, alpha=0.05, power=0.8, ratio=ratio)
    assert power.units_for_effect(effect, ratio) == pytest.approx(solved, rel=1e-6)


def test_cohens_h_equals_statsmodels_proportion_effectsize() -> None:
    assert power.proportion_effect(0.35, 0.4) == pytest.approx(
        proportion_effectsize(0.4, 0.35), abs=1e-15
    )


def test_mde_shrinks_with_the_square_root_of_the_units() -> None:
    assert power.standardized_mde(4_000, 4_000) == pytest.approx(
        power.standardized_mde(1_000, 1_000) / 2, rel=1e-6
    )


def test_no_effect_needs_infinitely_many_units() -> None:
    assert math.isinf(power.units_for_effect(0.0))
