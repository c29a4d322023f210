"""The audit's statistics against reference values: chi-square critical values (standard
tables), closed forms of the chi-square survival function, and the worked examples of
Newcombe (1998) for Wilson intervals and differences of proportions."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from featbit_experiments.audit.stats import (
    Interval,
    chi_square_sf,
    chi_square_statistic,
    mean_difference,
    mean_interval,
    rate_difference,
    two_sided_z,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("x", "df", "p"),
    [
        (3.841458820694124, 1, 0.05),
        (6.634896601021214, 1, 0.01),
        (10.827566170662733, 1, 0.001),
        (5.991464547107979, 2, 0.05),
        (7.814727903251178, 3, 0.05),
        (11.344866730144373, 3, 0.01),
        (9.487729036781154, 4, 0.05),
        (18.307038053275146, 10, 0.05),
        (124.34211340400407, 100, 0.05),
        (1.0, 3, 0.8012519569012008),
        (0.454936423119572, 1, 0.5),
    ],
)
def test_chi_square_sf_matches_table_values(x: float, df: int, p: float) -> None:
    assert chi_square_sf(x, df) == pytest.approx(p, rel=1e-9)


@pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 2.9, 3.1, 7.5, 20.0, 60.0, 150.0])
def test_chi_square_sf_matches_closed_forms_on_both_branches(x: float) -> None:
    h = x / 2
    assert chi_square_sf(x, 3) == pytest.approx(
        math.erfc(math.sqrt(h)) + math.sqrt(2 * x / math.pi) * math.exp(-h), rel=1e-10
    )
    assert chi_square_sf(x, 4) == pytest.approx(math.exp(-h) * (1 + h), rel=1e-10)
    assert chi_square_sf(x, 6) == pytest.approx(math.exp(-h) * (1 + h + h * h / 2), rel=1e-10)


@pytest.mark.parametrize("z", [0.1, 1.0, 1.96, 3.0, 5.0])
def test_chi_square_sf_with_one_df_is_the_two_sided_normal_tail(z: float) -> None:
    assert chi_square_sf(z * z, 1) == pytest.approx(2 * (1 - NormalDist().cdf(z)), rel=1e-9)


def test_chi_square_sf_edges() -> None:
    assert chi_square_sf(0.0, 5) == 1.0
    assert chi_square_sf(math.inf, 5) == 0.0
    assert 0 < chi_square_sf(400.0, 3) < 1e-80
    with pytest.raises(ValueError):
        chi_square_sf(1.0, 0)


def test_pearson_statistic_and_an_observed_count_where_none_is_expected() -> None:
    assert chi_square_statistic([60, 40], [50, 50]) == pytest.approx(4.0)
    assert chi_square_statistic([10, 5], [15, 0]) == math.inf
    assert chi_square_statistic([15, 0], [15, 0]) == 0.0


def test_two_sided_z_for_95_percent() -> None:
    assert two_sided_z(0.95) == pytest.approx(1.959963984540054)


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_newcombe_1998(
    successes: int, n: int, low: float, high: float
) -> None:
    interval = wilson_interval(successes, n)
    assert interval is not None
    assert (interval.low, interval.high) == (
        pytest.approx(low, abs=1e-4),
        pytest.approx(high, abs=1e-4),
    )


def test_wilson_interval_of_all_successes_ends_at_one_and_none_without_data() -> None:
    interval = wilson_interval(20, 20)
    assert interval is not None and interval.high == 1.0
    assert wilson_interval(0, 0) is None


@pytest.mark.parametrize(
    ("treatment", "control", "low", "high"),
    [
        ((56, 70), (48, 80), 0.0524, 0.3339),
        ((9, 10), (3, 10), 0.1705, 0.8090),
        ((6, 7), (2, 7), 0.0582, 0.8062),
        ((5, 56), (0, 29), -0.0381, 0.1926),
    ],
)
def test_rate_difference_matches_newcombe_method_10(
    treatment: tuple[int, int], control: tuple[int, int], low: float, high: float
) -> None:
    interval = rate_difference(treatment, control)
    assert interval is not None
    assert (interval.low, interval.high) == (
        pytest.approx(low, abs=1e-4),
        pytest.approx(high, abs=1e-4),
    )


def test_mean_interval_and_difference_use_the_normal_approximation() -> None:
    interval = mean_interval(10.0, 2.0, 100)
    assert interval is not None
    assert interval.low == pytest.approx(10 - 1.959963984540054 * 0.2)
    difference = mean_difference((12.0, 3.0, 50), (10.0, 4.0, 80))
    assert difference is not None
    half = 1.959963984540054 * math.sqrt(9 / 50 + 16 / 80)
    assert (difference.low, difference.high) == (pytest.approx(2 - half), pytest.approx(2 + half))
    assert mean_interval(1.0, 0.0, 1) is None
    assert mean_difference((1.0, 0.0, 1), (1.0, 0.0, 5)) is None


@pytest.mark.parametrize("df", [4, 6, 10, 20])
def test_chi_square_sf_keeps_14_digits_where_the_continued_fraction_runs(df: int) -> None:
    """Even degrees of freedom have the closed form exp(-x/2) * sum((x/2)^k / k!, k < df/2).
    The continued fraction (x/2 >= df/2 + 1) must stop once it has converged: iterating on
    multiplies rounding error into the tail probability (about 3e-13 relative)."""
    for step in range(400):
        x = df + 2 + step * 0.73
        h, term, total = x / 2, 1.0, 0.0
        for k in range(df // 2):
            total += term
            term *= h / (k + 1)
        assert chi_square_sf(x, df) == pytest.approx(math.exp(-h) * total, rel=5e-14, abs=0)


def test_chi_square_sf_refuses_nan_and_too_few_degrees_of_freedom_by_name() -> None:
    with pytest.raises(ValueError, match=r"^degrees of freedom must be at least 1$"):
        chi_square_sf(1.0, 0)
    with pytest.raises(ValueError, match=r"^x is NaN$"):
        chi_square_sf(math.nan, 3)


def test_pearson_statistic_counts_expectations_below_one_and_single_surprises() -> None:
    # An expected count below one is still an expectation, not "none expected".
    assert chi_square_statistic([1, 9], [0.5, 9.5]) == pytest.approx(0.5 + 0.25 / 9.5)
    # One observation where none is expected is already infinitely surprising.
    assert chi_square_statistic([1, 9], [0, 10]) == math.inf
    # A slot with nothing expected and nothing seen is skipped, not the end of the sum.
    assert chi_square_statistic([0, 60, 40], [0, 50, 50]) == pytest.approx(4.0)


def test_pearson_statistic_refuses_counts_and_expectations_of_different_lengths() -> None:
    with pytest.raises(ValueError):
        chi_square_statistic([10, 10, 10], [15, 15])


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.1])
def test_two_sided_z_refuses_a_confidence_outside_the_open_unit_interval(
    confidence: float,
) -> None:
    with pytest.raises(ValueError, match=r"^confidence must be between 0 and 1$"):
        two_sided_z(confidence)


@pytest.mark.parametrize("n", range(1, 31))
def test_wilson_interval_ends_exactly_at_zero_and_one_at_the_extremes(n: int) -> None:
    """Mathematically the interval touches 0 with no successes and 1 with all of them; in
    floating point ``center -/+ half`` lands an ulp either side, so the ends are set."""
    none = wilson_interval(0, n)
    every = wilson_interval(n, n)
    assert none is not None and none.low == 0.0
    assert every is not None and every.high == 1.0


@pytest.mark.parametrize(("successes", "n"), [(10.999999999999, 11), (28.999999999, 29)])
def test_wilson_interval_stays_inside_the_unit_interval_near_all_successes(
    successes: float, n: int
) -> None:
    """Weighted (fractional) successes just below ``n``: rounding puts ``center + half`` an ulp
    above 1, and the interval is still capped at 1."""
    interval = wilson_interval(successes, n)
    assert interval is not None and 0.0 < interval.low < interval.high <= 1.0


def test_wilson_and_mean_intervals_start_at_one_and_two_observations() -> None:
    single = wilson_interval(1, 1)
    assert single is not None
    assert (single.low, single.high) == (pytest.approx(0.2065, abs=1e-4), 1.0)
    pair = mean_interval(5.0, 1.0, 2)
    assert pair is not None
    half = 1.959963984540054 / math.sqrt(2)
    assert (pair.low, pair.high) == (pytest.approx(5.0 - half), pytest.approx(5.0 + half))


def test_mean_difference_needs_two_observations_on_each_side_and_no_more() -> None:
    for treatment, control in (((3.0, 1.0, 2), (1.0, 1.0, 9)), ((3.0, 1.0, 9), (1.0, 1.0, 2))):
        difference = mean_difference(treatment, control)
        assert difference is not None
        half = 1.959963984540054 * math.sqrt(1 / 2 + 1 / 9)
        assert (difference.low, difference.high) == (
            pytest.approx(2.0 - half),
            pytest.approx(2.0 + half),
        )
    assert mean_difference((3.0, 1.0, 9), (1.0, 1.0, 1)) is None


def test_rate_difference_uses_the_requested_confidence_on_both_sides() -> None:
    """Newcombe's method 10 at 99%: each Wilson interval is taken at 99% too."""
    interval = rate_difference((56, 70), (48, 80), confidence=0.99)
    assert interval is not None
    w1 = wilson_interval(56, 70, 0.99)
    w2 = wilson_interval(48, 80, 0.99)
    assert w1 is not None and w2 is not None
    p1, p2 = 56 / 70, 48 / 80
    assert interval.low == pytest.approx(
        p1 - p2 - math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2)
    )
    assert interval.high == pytest.approx(
        p1 - p2 + math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2)
    )
    at_95 = rate_difference((56, 70), (48, 80))
    assert at_95 is not None and interval.low < at_95.low and interval.high > at_95.high


def test_rate_difference_without_observations_on_either_side_is_none() -> None:
    assert rate_difference((0, 0), (3, 10)) is None
    assert rate_difference((3, 10), (0, 0)) is None


@pytest.mark.parametrize(
    ("low", "high", "excludes"),
    [(0.1, 0.2, True), (-0.2, -0.1, True), (0.0, 0.2, False), (-0.2, 0.0, False), (-1, 1, False)],
)
def test_an_interval_excludes_zero_only_strictly_on_one_side(
    low: float, high: float, excludes: bool
) -> None:
    assert Interval(low, high).excludes_zero() is excludes
